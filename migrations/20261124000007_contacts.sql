-- WhatsApp senders, contacts and their consent, and two-way routing (issue 5).

-- The senders the business sends from: the Twilio sandbox, approved WhatsApp numbers and
-- Messaging Services. Rows are never deleted: disabling a sender (de-authorizing it) keeps
-- its messages' history and refuses new sends from it.
CREATE TABLE senders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- `whatsapp:+14155238886` for numbers, `MG…` for Messaging Services.
    address     text COLLATE "C" NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('sandbox', 'number', 'messaging_service')),
    label       text NOT NULL DEFAULT '',
    status      text NOT NULL CHECK (status IN ('active', 'pending', 'disabled')),
    -- The sandbox's `join <code>` code.
    join_code   text,
    -- Messages per second Twilio allows this sender (the sandbox: one every 3 s).
    mps         double precision NOT NULL CHECK (mps > 0 AND mps <= 1000),
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT is_default OR status = 'active')
);
-- At most one default sender.
CREATE UNIQUE INDEX senders_default_idx ON senders (is_default) WHERE is_default;

-- People the business talks to, one row per current WhatsApp number (E.164, `+…`).
-- `consent` is what the contact said; `deauthorized_at` is the business's own block, which
-- the contact's keywords do not lift.
CREATE TABLE contacts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number           text COLLATE "C" NOT NULL UNIQUE,
    wa_id            text,
    profile_name     text,
    consent          text NOT NULL DEFAULT 'unknown'
                     CHECK (consent IN ('unknown', 'opted_in', 'opted_out')),
    deauthorized_at  timestamptz,
    first_inbound_at timestamptz,
    -- Opens WhatsApp's 24-hour customer service window.
    last_inbound_at  timestamptz,
    tags             text[] NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_tags_idx ON contacts USING gin (tags);
CREATE INDEX contacts_recent_idx ON contacts (updated_at DESC, id DESC);

-- Every consent change with who or what made it and when. Append-only.
CREATE TABLE consent_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact_id  bigint NOT NULL REFERENCES contacts ON DELETE CASCADE,
    change      text NOT NULL
                CHECK (change IN ('opted_in', 'opted_out', 'deauthorized', 'reauthorized')),
    source      text NOT NULL CHECK (source IN ('sandbox_join', 'first_inbound', 'keyword',
                'dashboard', 'api', 'import', 'cli')),
    -- The keyword as received, or an operator's note.
    detail      text,
    -- The user or API token that made the change; NULL when the contact's message did.
    actor       text,
    -- The inbound message that made the change (at most one change per message, so a
    -- webhook delivered twice changes nothing twice).
    message_sid text COLLATE "C" UNIQUE,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_events_contact_idx ON consent_events (contact_id, at DESC);

-- Numbers a contact used before an operator changed them. Sending to a retired number is
-- refused while no contact owns it; the contact's conversation still shows its messages.
CREATE TABLE retired_numbers (
    number      text COLLATE "C" PRIMARY KEY,
    contact_id  bigint NOT NULL REFERENCES contacts ON DELETE CASCADE,
    replaced_by text COLLATE "C" NOT NULL,
    actor       text,
    retired_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX retired_numbers_contact_idx ON retired_numbers (contact_id);

-- Automatic replies to inbound messages, tried in order after the consent keywords:
-- keyword and regular-expression rules by position, then image-echo rules, then a bot.
CREATE TABLE reply_rules (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    position    integer NOT NULL,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('keyword', 'regex', 'image_echo')),
    -- Comma-separated keywords, or a regular expression; empty for image echo.
    pattern     text NOT NULL DEFAULT '',
    -- Only for messages to this sender (`whatsapp:+…`); NULL for every sender.
    sender      text COLLATE "C",
    reply_body  text,
    reply_media text[] NOT NULL DEFAULT '{}',
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (reply_body IS NOT NULL OR cardinality(reply_media) > 0)
);

-- Each automatic reply wadash gave, in the order of the `<Message>`s of its TwiML answer.
-- Twilio creates the reply message itself; its first status callback (to
-- `/sts?reply=<id>`) links the reply to its MessageSid and fills in the body.
CREATE TABLE auto_replies (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    inbound_sid text COLLATE "C" NOT NULL,
    position    smallint NOT NULL,
    reason      text NOT NULL CHECK (reason IN ('opt_out', 'opt_in', 'rule', 'image_echo', 'bot')),
    rule_id     bigint REFERENCES reply_rules ON DELETE SET NULL,
    from_addr   text COLLATE "C" NOT NULL,
    to_addr     text COLLATE "C" NOT NULL,
    body        text,
    media       text[] NOT NULL DEFAULT '{}',
    message_sid text COLLATE "C" UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (inbound_sid, position)
);
