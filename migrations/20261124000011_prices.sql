-- Prices (issue 7): the price table as data, one row per price, uploaded by admins as CSV and
-- replaced whole. Rows are never edited in place: a new rate is a row with a later
-- `effective_from`, so estimates for past dates keep using the rates of their day.
CREATE TABLE prices (
    effective_from date NOT NULL,
    kind           text NOT NULL
        CHECK (kind IN ('twilio_message', 'twilio_failed', 'meta_template', 'meta_conversation')),
    -- ISO 3166 alpha-2 of the recipient's calling code, or `*` for every other country.
    country        text NOT NULL CHECK (country = '*' OR country ~ '^[A-Z]{2}$'),
    category       text NOT NULL
        CHECK (category IN ('marketing', 'utility', 'authentication', 'service', '*')),
    amount         numeric NOT NULL CHECK (amount >= 0),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    uploaded_at    timestamptz NOT NULL DEFAULT now(),
    -- NULL for the default table seeded at first start.
    uploaded_by    text,
    PRIMARY KEY (effective_from, kind, country, category)
);
