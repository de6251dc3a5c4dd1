-- WhatsApp senders as Twilio's Senders API describes them (issue 21): kept by the sender sync
-- job, with the history of each sender's status, quality rating, messaging limit, webhooks and
-- presence at Twilio. Senders only wadash knows (the sandbox, hand-added numbers, Messaging
-- Services) keep these columns empty.
ALTER TABLE senders
    ADD COLUMN twilio_sid          text UNIQUE,
    -- Verbatim: ONLINE, OFFLINE, PENDING_VERIFICATION, … and any value Twilio adds.
    ADD COLUMN twilio_status       text,
    -- Twilio's reasons while OFFLINE: [{code, message, more_info}].
    ADD COLUMN offline_reasons     jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN quality_rating      text,
    ADD COLUMN messaging_limit     text,
    ADD COLUMN callback_url        text,
    ADD COLUMN status_callback_url text,
    -- Whether both webhooks point at WADASH_PUBLIC_URL (unknown without a public URL).
    ADD COLUMN webhooks_ok         boolean,
    ADD COLUMN waba_id             text,
    ADD COLUMN twilio_profile      jsonb,
    ADD COLUMN twilio_synced_at    timestamptz,
    -- Set when a sync no longer finds it at Twilio.
    ADD COLUMN twilio_gone_at      timestamptz;

CREATE TABLE sender_changes (
    id         bigserial PRIMARY KEY,
    sender_id  bigint NOT NULL REFERENCES senders (id) ON DELETE CASCADE,
    field      text NOT NULL CHECK (field IN ('status', 'quality_rating', 'messaging_limit',
                                              'webhooks', 'presence')),
    old_value  text,
    new_value  text,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sender_changes_by_sender ON sender_changes (sender_id, id);

-- One row: how the last sender syncs went, and the claim that lets one instance sync per
-- interval (the same shape as template_sync).
CREATE TABLE sender_sync (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_ok_at      timestamptz,
    last_attempt_at timestamptz,
    last_error      text,
    failures        integer NOT NULL DEFAULT 0
);
INSERT INTO sender_sync DEFAULT VALUES;
