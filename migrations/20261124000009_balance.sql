-- The Twilio balance over time (issue 7): one reading per poll interval across all instances.
CREATE TABLE balance_readings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    read_at     timestamptz NOT NULL DEFAULT now(),
    -- Exact, as Twilio writes it ("-0.00500" style strings parsed to decimals).
    balance     numeric(16, 5) NOT NULL,
    currency    text NOT NULL,
    account_sid text
);
CREATE INDEX balance_readings_read_at_idx ON balance_readings (read_at DESC);
