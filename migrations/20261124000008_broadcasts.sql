-- Broadcasts and reminders (issue 6): a durable per-recipient queue, sent exactly once.

-- One broadcast: what is sent, from which sender, how fast, and how far it got.
CREATE TABLE broadcasts (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              text NOT NULL,
    -- scheduled: waiting for start_at; running; paused; held (its cost would take the balance
    -- below the reserve, until an admin releases it); canceled; completed.
    status            text NOT NULL CHECK (status IN ('scheduled', 'running', 'paused', 'held',
                      'canceled', 'completed')),
    body              text,
    media             text[] NOT NULL DEFAULT '{}',
    content_sid       text,
    -- Template variables shared by every recipient (a JSON object); per-recipient
    -- variables, from CSV columns, are merged over them.
    content_variables jsonb,
    -- `whatsapp:+…` or `MG…`.
    sender            text COLLATE "C" NOT NULL,
    -- Messages per second for this broadcast (the sender's limit when it was created).
    mps               double precision NOT NULL CHECK (mps > 0 AND mps <= 1000),
    start_at          timestamptz NOT NULL,
    -- What the audience was ({"numbers": n} | {"tag": "…"} | {"all_opted_in": true}).
    audience          jsonb NOT NULL,
    -- Recipients left out before sending, with the reason: [{number, reason}].
    excluded          jsonb NOT NULL DEFAULT '[]',
    estimated_cost    numeric(14, 6),
    -- A reminder's run sends through a broadcast of its recipients.
    reminder_id       bigint,
    created_by        text,
    -- Why wadash paused or held it by itself (Twilio refused the account, the reserve).
    paused_reason     text,
    -- The client's idempotency key (`Idempotency-Key`, or the confirm form's): the same key
    -- again finds this broadcast instead of queuing a second one.
    request_key       text UNIQUE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    CHECK (body IS NOT NULL OR cardinality(media) > 0 OR content_sid IS NOT NULL)
);
CREATE INDEX broadcasts_created_idx ON broadcasts (created_at DESC, id DESC);
CREATE INDEX broadcasts_active_idx ON broadcasts (start_at) WHERE status IN ('scheduled', 'running');

-- One row per recipient. The state moves pending → sending → sent (or failed), and the row
-- records the intent ("sending", with the claim time) before Twilio is called and the
-- MessageSid after; a row left in "sending" by a process that died is looked up at Twilio
-- before it is sent again.
CREATE TABLE broadcast_recipients (
    broadcast_id  bigint NOT NULL REFERENCES broadcasts ON DELETE CASCADE,
    number        text COLLATE "C" NOT NULL,
    variables     jsonb,
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'canceled')),
    attempts      integer NOT NULL DEFAULT 0,
    next_at       timestamptz NOT NULL DEFAULT now(),
    claimed_at    timestamptz,
    message_sid   text COLLATE "C",
    -- Twilio's error code, or wadash's own reason (`recipient_opted_out`, …) when it refused.
    error_code    integer,
    error_reason  text,
    error_message text,
    retryable     boolean,
    sent_at       timestamptz,
    PRIMARY KEY (broadcast_id, number)
);
-- The queue: each broadcast's due rows, and rows left `sending` by a worker that died.
-- In claim order, so a claim reads only the rows it takes even when every recipient of a
-- large broadcast is due at the same moment.
CREATE INDEX broadcast_recipients_due_idx ON broadcast_recipients (broadcast_id, next_at, number)
    WHERE state = 'pending';
CREATE INDEX broadcast_recipients_stale_idx ON broadcast_recipients (claimed_at)
    WHERE state = 'sending';
CREATE INDEX broadcast_recipients_sid_idx ON broadcast_recipients (message_sid)
    WHERE message_sid IS NOT NULL;

-- The throughput limit of each sender, shared by every instance: the next free send slot.
-- Reserving k slots moves it on by k / mps seconds in one UPDATE.
CREATE TABLE send_slots (
    sender    text COLLATE "C" PRIMARY KEY,
    next_slot timestamptz NOT NULL
);

-- Reminders: one-off or recurring messages to a contact or to everyone with a tag.
CREATE TABLE reminders (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    to_number     text COLLATE "C",
    to_tag        text,
    body          text,
    media         text[] NOT NULL DEFAULT '{}',
    content_sid   text,
    sender        text COLLATE "C",
    -- The first time, as given.
    first_at      timestamptz NOT NULL,
    -- `once`, `daily`, `weekly:mon,thu`, `monthly:15`, `cron:0 9 * * 1-5`.
    recurrence    text NOT NULL DEFAULT 'once',
    timezone      text NOT NULL DEFAULT 'UTC',
    status        text NOT NULL CHECK (status IN ('active', 'paused', 'canceled', 'done')),
    -- The next occurrence to send; NULL when there is none.
    next_at       timestamptz,
    created_by    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((to_number IS NULL) <> (to_tag IS NULL)),
    CHECK (body IS NOT NULL OR cardinality(media) > 0 OR content_sid IS NOT NULL)
);
CREATE INDEX reminders_due_idx ON reminders (next_at) WHERE status = 'active';

-- Each occurrence of a reminder, once: sent (through a broadcast) or skipped because it was
-- found too late after downtime.
CREATE TABLE reminder_runs (
    reminder_id  bigint NOT NULL REFERENCES reminders ON DELETE CASCADE,
    due_at       timestamptz NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    outcome      text NOT NULL CHECK (outcome IN ('sent', 'skipped')),
    broadcast_id bigint REFERENCES broadcasts ON DELETE SET NULL,
    -- Why it was skipped, or who was left out.
    note         text,
    PRIMARY KEY (reminder_id, due_at)
);

ALTER TABLE broadcasts ADD CONSTRAINT broadcasts_reminder_fk
    FOREIGN KEY (reminder_id) REFERENCES reminders ON DELETE SET NULL;
