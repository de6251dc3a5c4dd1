-- WhatsApp templates: Twilio's Content API catalogue with WhatsApp's approval, kept by the
-- template sync job, and the history of each template's status, category and presence.
CREATE TABLE templates (
    sid              text PRIMARY KEY,
    name             text NOT NULL,
    language         text NOT NULL,
    types            jsonb NOT NULL,
    variables        jsonb NOT NULL,
    status           text NOT NULL,
    category         text,
    rejection_reason text,
    whatsapp_name    text,
    updated_at       timestamptz,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    synced_at        timestamptz NOT NULL DEFAULT now(),
    -- Set when a sync no longer finds it at Twilio; it leaves the pickers but keeps its history.
    deleted_at       timestamptz
);
CREATE INDEX templates_listing ON templates (name, sid) WHERE deleted_at IS NULL;

CREATE TABLE template_changes (
    id         bigserial PRIMARY KEY,
    sid        text NOT NULL REFERENCES templates (sid) ON DELETE CASCADE,
    field      text NOT NULL CHECK (field IN ('status', 'category', 'presence')),
    old_value  text,
    new_value  text,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX template_changes_by_template ON template_changes (sid, id);

-- One row: how the last syncs went (pages show a stale notice; an alert fires after several
-- failures in a row).
CREATE TABLE template_sync (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_ok_at      timestamptz,
    last_attempt_at timestamptz,
    last_error      text,
    failures        integer NOT NULL DEFAULT 0
);
INSERT INTO template_sync DEFAULT VALUES;
