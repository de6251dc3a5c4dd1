-- Reconciliation: outbound messages whose callbacks may have been lost are looked up at
-- Twilio (src/jobs/reconcile.rs).
--
-- A message is settled once its status rank reaches 50 (canceled, undelivered, failed,
-- delivered, read). Rather than index the hot columns of `messages` (which would end the
-- heap-only updates the webhook path relies on), one instance at a time walks `messages` by
-- `created_at` behind a watermark and copies the unsettled ones into this small queue.
CREATE TABLE reconcile_queue (
    sid        text COLLATE "C" PRIMARY KEY,
    -- When the message was created: it is given up on after the configured maximum age.
    created_at timestamptz NOT NULL,
    -- When it is next due. A claim moves it forward by the back-off, so an instance that
    -- dies mid-lookup only delays the message, never loses it.
    next_at    timestamptz NOT NULL,
    attempts   integer NOT NULL DEFAULT 0
);

CREATE INDEX reconcile_queue_due_idx ON reconcile_queue (next_at);

-- instance_settings gains a change time, so instances can notice a value another one wrote.
ALTER TABLE instance_settings ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
