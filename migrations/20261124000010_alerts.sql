-- Alerts (issue 7): one open alert per condition, and its deliveries to each channel.
CREATE TABLE alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- What is wrong, e.g. `credit_low`; with `subject` it names the condition.
    kind            text NOT NULL,
    subject         text NOT NULL DEFAULT '',
    severity        text NOT NULL CHECK (severity IN ('warning', 'critical')),
    state           text NOT NULL CHECK (state IN ('firing', 'acknowledged', 'resolved')),
    message         text NOT NULL,
    fired_at        timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at     timestamptz
);
-- While a condition holds there is one open alert for it: raising it again changes nothing.
CREATE UNIQUE INDEX alerts_open_idx ON alerts (kind, subject) WHERE state <> 'resolved';
CREATE INDEX alerts_recent_idx ON alerts (fired_at DESC, id DESC);

-- Each alert's firing and resolution, to each channel, delivered with retries.
CREATE TABLE alert_deliveries (
    alert_id   bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
    channel    text NOT NULL,
    event      text NOT NULL CHECK (event IN ('fired', 'resolved')),
    state      text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts   integer NOT NULL DEFAULT 0,
    next_at    timestamptz NOT NULL DEFAULT now(),
    last_error text,
    sent_at    timestamptz,
    PRIMARY KEY (alert_id, channel, event)
);
CREATE INDEX alert_deliveries_due_idx ON alert_deliveries (next_at) WHERE state = 'pending';
