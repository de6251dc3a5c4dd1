"""Benchmark peer A: wadash's POST /sts written the way the Flask prototype would write it.

Flask under gunicorn, psycopg 3, one transaction per request. It does the same work as wadash
for a status callback:

* validates X-Twilio-Signature: base64(HMAC-SHA1(token, public URL + path [+ ?query] + every
  name+value sorted)), compared in constant time (no port variants);
* parses the form (MessageSid/SmsSid, MessageStatus/SmsStatus, ErrorCode, ...);
* in ONE transaction: upserts the `messages` row with the status-rank rule (the status only
  moves to a higher rank; milestones keep the earliest time) and appends the `message_events`
  row, deduplicated on (message_sid, dedup_key);
* answers 204 after the commit (503 if not stored, 403 on a bad signature, 400 on a bad form).

Environment: DATABASE_URL, TOKEN (auth token), PUBLIC_URL (what the sender signs, without the
path; default http://127.0.0.1:8081), POOL_SIZE (connections per worker process; default 8,
one per gunicorn thread).

The connection pool is created at import, i.e. in each worker after gunicorn forks: do not run
gunicorn with --preload.
"""

import base64
import hashlib
import hmac
import os
import re

from flask import Flask, Response, request
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

DATABASE_URL = os.environ.get(
    "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/wadash_bench_flask"
)
TOKEN = os.environ.get("TOKEN", "bench-auth-token").encode()
PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:8081").rstrip("/")
POOL_SIZE = int(os.environ.get("POOL_SIZE", "8"))

# Position of each status in wadash's state machine (src/domain/status.rs).
RANK = {
    "accepted": 10,
    "scheduled": 11,
    "receiving": 15,
    "queued": 20,
    "sending": 30,
    "sent": 40,
    "partially_delivered": 45,
    "canceled": 50,
    "undelivered": 51,
    "failed": 52,
    "delivered": 60,
    "received": 65,
    "read": 70,
}
MILESTONE = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "failed",
}
SID = re.compile(r"[A-Z]{2}[A-Za-z0-9]{2,64}")

UPSERT_MESSAGE = """
INSERT INTO messages AS m (
    sid, direction, account_sid, messaging_service_sid, from_addr, to_addr, body,
    status, status_rank, error_code, error_message,
    sent_at, delivered_at, read_at, failed_at, created_at, updated_at)
VALUES (
    %(sid)s, 'outbound', %(account_sid)s, %(service_sid)s, %(from)s, %(to)s, %(body)s,
    %(status)s, %(rank)s, %(error_code)s, %(error_message)s,
    CASE WHEN %(m_sent)s THEN now() END,
    CASE WHEN %(m_delivered)s THEN now() END,
    CASE WHEN %(m_read)s THEN now() END,
    CASE WHEN %(m_failed)s THEN now() END,
    now(), now())
ON CONFLICT (sid) DO UPDATE SET
    account_sid = COALESCE(m.account_sid, EXCLUDED.account_sid),
    messaging_service_sid = COALESCE(m.messaging_service_sid, EXCLUDED.messaging_service_sid),
    from_addr = COALESCE(m.from_addr, EXCLUDED.from_addr),
    to_addr = COALESCE(m.to_addr, EXCLUDED.to_addr),
    body = COALESCE(m.body, EXCLUDED.body),
    status = CASE WHEN EXCLUDED.status_rank > m.status_rank
                  THEN EXCLUDED.status ELSE m.status END,
    status_rank = GREATEST(m.status_rank, EXCLUDED.status_rank),
    error_code = CASE
        WHEN EXCLUDED.status_rank > m.status_rank THEN EXCLUDED.error_code
        WHEN EXCLUDED.status_rank = m.status_rank THEN COALESCE(m.error_code, EXCLUDED.error_code)
        ELSE m.error_code END,
    error_message = CASE
        WHEN EXCLUDED.status_rank > m.status_rank THEN EXCLUDED.error_message
        WHEN EXCLUDED.status_rank = m.status_rank
            THEN COALESCE(m.error_message, EXCLUDED.error_message)
        ELSE m.error_message END,
    sent_at = LEAST(m.sent_at, EXCLUDED.sent_at),
    delivered_at = LEAST(m.delivered_at, EXCLUDED.delivered_at),
    read_at = LEAST(m.read_at, EXCLUDED.read_at),
    failed_at = LEAST(m.failed_at, EXCLUDED.failed_at),
    updated_at = now()
"""

INSERT_EVENT = """
INSERT INTO message_events
    (message_sid, status, error_code, source, params, dedup_key, received_at)
VALUES (%(sid)s, %(event_status)s, %(error_code)s, 'callback', %(params)s, %(dedup_key)s, now())
ON CONFLICT (message_sid, dedup_key) DO NOTHING
"""

app = Flask(__name__)
# Created in each worker process (gunicorn imports the app after forking).
pool = ConnectionPool(
    DATABASE_URL,
    min_size=POOL_SIZE,
    max_size=POOL_SIZE,
    kwargs={"application_name": "wadash-bench-flask"},
    open=True,
)


def signature_for(url, pairs):
    mac = hmac.new(TOKEN, url.encode(), hashlib.sha1)
    for name, value in sorted(set(pairs)):
        mac.update(name.encode())
        mac.update(value.encode())
    return base64.b64encode(mac.digest())


def dedup_key(pairs):
    """First 16 bytes of SHA-256 over the source and the sorted parameters (as wadash)."""
    h = hashlib.sha256(b"callback")
    for name, value in sorted(pairs):
        h.update(b"\0")
        h.update(name.encode())
        h.update(b"\0")
        h.update(value.encode())
    return h.digest()[:16]


def params_json(pairs):
    out = {}
    for name, value in pairs:
        if name not in out:
            out[name] = value
        elif isinstance(out[name], list):
            out[name].append(value)
        else:
            out[name] = [out[name], value]
    return out


def first(form, *names):
    for name in names:
        value = form.get(name)
        if value:
            return value
    return None


def text(message, status):
    return Response(message + "\n", status=status, mimetype="text/plain")


@app.get("/healthz")
def healthz():
    return text("ok", 200)


@app.post("/sts")
def status_callback():
    if request.mimetype != "application/x-www-form-urlencoded":
        return text("expected application/x-www-form-urlencoded", 415)
    form = request.form
    pairs = list(form.items(multi=True))

    url = PUBLIC_URL + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    given = request.headers.get("X-Twilio-Signature", "").strip().encode()
    if not hmac.compare_digest(signature_for(url, pairs), given):
        app.logger.warning("webhook rejected: bad X-Twilio-Signature for %s", url)
        return text("invalid signature", 403)

    sid = first(form, "MessageSid", "SmsMessageSid", "SmsSid")
    if sid is None or not SID.fullmatch(sid.strip()):
        return text("missing or invalid MessageSid", 400)
    sid = sid.strip()
    raw_status = first(form, "MessageStatus", "SmsStatus")
    if raw_status is None:
        return text("missing MessageStatus", 400)
    status = raw_status.strip().lower()
    if status == "cancelled":
        status = "canceled"
    error_code = form.get("ErrorCode") or None
    if error_code is not None:
        try:
            error_code = int(error_code.strip()) or None
        except ValueError:
            return text("ErrorCode must be a number", 400)

    rank = RANK.get(status)
    milestone = MILESTONE.get(status)
    row = {
        "sid": sid,
        "account_sid": first(form, "AccountSid"),
        "service_sid": first(form, "MessagingServiceSid"),
        "from": first(form, "From"),
        "to": first(form, "To"),
        "body": first(form, "Body"),
        # Unknown statuses are stored as events but never become the current status.
        "status": status if rank is not None else None,
        "rank": rank if rank is not None else -1,
        "error_code": error_code,
        "error_message": first(form, "ErrorMessage"),
        "m_sent": milestone == "sent",
        "m_delivered": milestone == "delivered",
        "m_read": milestone == "read",
        "m_failed": milestone == "failed",
        "event_status": status,
        "params": Jsonb(params_json(pairs)),
        "dedup_key": dedup_key(pairs),
    }
    try:
        # One transaction: committed when the block ends normally, rolled back otherwise.
        with pool.connection() as conn:
            conn.execute(UPSERT_MESSAGE, row)  # first: the event references the message
            conn.execute(INSERT_EVENT, row)
    except Exception as e:  # noqa: BLE001 - any database failure means "not stored"
        app.logger.error("callback not stored: %s", e)
        return text("not stored, please retry", 503)
    return Response(status=204)
