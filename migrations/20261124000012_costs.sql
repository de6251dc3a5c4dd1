-- Costs (issue 7): what each message sent through wadash was estimated to cost when it was
-- sent, and what Twilio actually charged once it was final. Kept beside `messages` rather
-- than in it, so that the callback hot path never touches these columns.
CREATE TABLE message_costs (
    sid             text COLLATE "C" PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- `whatsapp:+…` or `MG…`.
    sender          text COLLATE "C" NOT NULL,
    -- The recipient's number (`+…`), for "cost per user reached".
    recipient       text COLLATE "C" NOT NULL,
    -- ISO 3166 alpha-2 of the recipient's calling code, or `*`.
    country         text NOT NULL,
    category        text NOT NULL
        CHECK (category IN ('marketing', 'utility', 'authentication', 'service')),
    -- Whether the recipient's 24-hour window was open as wadash knew it at send time.
    in_window       boolean NOT NULL,
    broadcast_id    bigint,
    -- NULL when the price table had no price for the message.
    estimated       numeric(14, 6),
    currency        text,
    -- What Twilio charged (its `price`, as a positive amount), once known.
    actual          numeric(14, 6),
    actual_currency text,
    -- Whether the message reached the recipient (delivered or read), set by the price fetcher
    -- once the message is final; NULL until then (the cost page then asks `messages`).
    reached         boolean,
    -- Lookups at Twilio that came back without a price yet.
    price_checks    smallint NOT NULL DEFAULT 0,
    -- When to ask Twilio for the price next; NULL once it is known or wadash gave up.
    next_check_at   timestamptz
);
-- The cost page's date range.
CREATE INDEX message_costs_created_idx ON message_costs (created_at);
-- The price fetcher's queue: only rows still waiting for a price.
CREATE INDEX message_costs_due_idx ON message_costs (next_check_at)
    WHERE next_check_at IS NOT NULL;
-- Messages whose reach is not settled yet: the cost page joins only these with `messages`.
CREATE INDEX message_costs_unsettled_idx ON message_costs (created_at) WHERE reached IS NULL;
-- Inbound messages by day, for the cost page's Twilio fees on received messages.
CREATE INDEX messages_inbound_created_idx ON messages (created_at) WHERE direction = 'inbound';
-- Which broadcast a cost belongs to, for the broadcast's own figures.
CREATE INDEX message_costs_broadcast_idx ON message_costs (broadcast_id)
    WHERE broadcast_id IS NOT NULL;

-- The template category a broadcast was priced in, so that each of its messages is priced
-- the same way when it is sent. NULL for free-form broadcasts and for templates whose
-- category was not given (priced as marketing).
ALTER TABLE broadcasts ADD COLUMN template_category text
    CHECK (template_category IN ('marketing', 'utility', 'authentication'));
