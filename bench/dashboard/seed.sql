-- Seeds :n messages spread over the last :days days, with event histories like Twilio's:
-- 80 % outbound (read 65 %, delivered 25 %, failed 5 %, undelivered 3 %, sent 2 %), 20 %
-- inbound; two senders; 200,000 customers. Deterministic (derived from the row number).
-- Usage: psql -v n=5000000 -v days=30 -f seed.sql
\set ON_ERROR_STOP on
SET synchronous_commit = off;

CREATE TEMP TABLE seed AS
SELECT g,
       'SM' || md5(g::text) AS sid,
       (g % 5 = 0) AS inbound,
       g % 100 AS b,
       now() - (:days * interval '1 day') * ((:n - g)::float8 / :n) AS created,
       'whatsapp:+9199' || lpad((g % 200000)::text, 8, '0') AS customer,
       CASE WHEN g % 3 = 0 THEN 'whatsapp:+14155550100' ELSE 'whatsapp:+14155238886' END AS sender
FROM generate_series(1, :n) AS g;

INSERT INTO messages (sid, account_sid, direction, from_addr, to_addr, body, num_media, profile_name, wa_id,
                      status, status_rank, error_code, error_message,
                      sent_at, delivered_at, read_at, failed_at, created_at, updated_at)
SELECT sid, 'AC00000000000000000000000000000000',
       CASE WHEN inbound THEN 'inbound' ELSE 'outbound' END,
       CASE WHEN inbound THEN customer ELSE sender END,
       CASE WHEN inbound THEN sender ELSE customer END,
       CASE WHEN inbound THEN (ARRAY['hi', 'Is my order on its way?', 'Thanks!', 'STOP', 'Where is the store?'])[1 + g % 5]
            ELSE 'Your order ' || g || ' has shipped and arrives tomorrow.' END,
       0,
       CASE WHEN inbound THEN 'Customer ' || (g % 200000) END,
       CASE WHEN inbound THEN substr(customer, 11) END,
       st.status, st.rank, st.code, st.msg,
       CASE WHEN NOT inbound AND st.rank >= 40 AND st.rank <> 52 THEN created + interval '1 second' END,
       CASE WHEN NOT inbound AND st.rank >= 60 THEN created + (2 + g % 28) * interval '1 second' END,
       CASE WHEN NOT inbound AND st.rank = 70 THEN created + (30 + g % 7200) * interval '1 second' END,
       CASE WHEN st.rank IN (51, 52) THEN created + (3 + g % 20) * interval '1 second' END,
       created, created
FROM seed,
LATERAL (SELECT * FROM (VALUES
    (inbound, 'received', 65::smallint, NULL::int, NULL::text),
    (NOT inbound AND b < 2, 'sent', 40::smallint, NULL, NULL),
    (NOT inbound AND b >= 2 AND b < 5, 'undelivered', 51::smallint, CASE WHEN g % 2 = 0 THEN 30003 ELSE 30008 END, 'Unreachable destination handset'),
    (NOT inbound AND b >= 5 AND b < 10, 'failed', 52::smallint, CASE WHEN g % 2 = 0 THEN 63016 ELSE 63003 END, 'Failed to send freeform message'),
    (NOT inbound AND b >= 10 AND b < 35, 'delivered', 60::smallint, NULL, NULL),
    (NOT inbound AND b >= 35, 'read', 70::smallint, NULL, NULL)
  ) AS v(applies, status, rank, code, msg) WHERE applies) AS st;

-- The events: one per stage reached, with the parameters a Twilio callback carries.
INSERT INTO message_events (message_sid, status, error_code, source, params, dedup_key, received_at)
SELECT m.sid, e.status, e.code, CASE WHEN m.direction = 'inbound' THEN 'inbound' ELSE 'callback' END,
       jsonb_build_object('MessageSid', m.sid, 'SmsSid', m.sid, 'MessageStatus', e.status, 'SmsStatus', e.status,
                          'To', m.to_addr, 'From', m.from_addr, 'AccountSid', m.account_sid,
                          'ApiVersion', '2010-04-01', 'ChannelPrefix', 'whatsapp')
         || CASE WHEN e.code IS NOT NULL THEN jsonb_build_object('ErrorCode', e.code::text) ELSE '{}'::jsonb END
         || CASE WHEN m.direction = 'inbound' THEN jsonb_build_object('Body', m.body, 'ProfileName', m.profile_name, 'WaId', m.wa_id, 'NumMedia', '0') ELSE '{}'::jsonb END,
       decode(md5(m.sid || e.status), 'hex'),
       e.at
FROM messages m,
LATERAL (SELECT * FROM (VALUES
    (m.direction = 'inbound', 'received', NULL::int, m.created_at),
    (m.sent_at IS NOT NULL, 'sent', NULL, m.sent_at),
    (m.delivered_at IS NOT NULL, 'delivered', NULL, m.delivered_at),
    (m.read_at IS NOT NULL, 'read', NULL, m.read_at),
    (m.failed_at IS NOT NULL, m.status, m.error_code, m.failed_at)
  ) AS v(applies, status, code, at) WHERE applies) AS e;

ANALYZE messages;
ANALYZE message_events;
SELECT count(*) AS messages FROM messages;
SELECT count(*) AS events FROM message_events;
