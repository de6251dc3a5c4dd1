-- Bots (issue 22): connections to AWS Lex V2, Google Dialogflow CX / ES and the built-in demo
-- bot; reply rules that hand a conversation to a bot; each conversation's bot session and
-- hand-off to a human; each bot turn as it happened.

-- A bot connection. `config` is the configuration without its secrets; the secrets
-- (`secret_access_key`, `service_account_json`) are one JSON object sealed with
-- WADASH_SECRET_KEY (src/credentials/sealed.rs, purpose "bot-secrets"), never returned.
CREATE TABLE bots (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('lex_v2', 'dialogflow_cx', 'dialogflow_es', 'demo')),
    config      jsonb NOT NULL DEFAULT '{}',
    secrets     text,
    -- Overrides the service's URL (tests, private endpoints).
    endpoint    text,
    timeout_ms  integer NOT NULL DEFAULT 8000 CHECK (timeout_ms BETWEEN 100 AND 60000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A rule may hand the message to a bot instead of answering with a fixed reply, and the kind
-- `any` matches every inbound text no earlier rule matched. A bot in use cannot be deleted.
ALTER TABLE reply_rules ADD COLUMN bot_id bigint REFERENCES bots ON DELETE RESTRICT;
CREATE INDEX reply_rules_bot_idx ON reply_rules (bot_id) WHERE bot_id IS NOT NULL;
ALTER TABLE reply_rules DROP CONSTRAINT reply_rules_kind_check;
ALTER TABLE reply_rules ADD CONSTRAINT reply_rules_kind_check
    CHECK (kind IN ('keyword', 'regex', 'image_echo', 'button', 'any'));
ALTER TABLE reply_rules DROP CONSTRAINT reply_rules_check;
ALTER TABLE reply_rules ADD CONSTRAINT reply_rules_check
    CHECK (bot_id IS NOT NULL OR reply_body IS NOT NULL OR cardinality(reply_media) > 0);

-- Automatic replies also confirm a hand-off to a human.
ALTER TABLE auto_replies DROP CONSTRAINT auto_replies_reason_check;
ALTER TABLE auto_replies ADD CONSTRAINT auto_replies_reason_check
    CHECK (reason IN ('opt_out', 'opt_in', 'rule', 'image_echo', 'bot', 'handoff'));

-- One conversation (a contact and the sender it writes to) that a bot talks in or that waits
-- for a human. The session id is what the bot service keys its context on: kept while the
-- contact keeps writing, replaced after the idle time.
CREATE TABLE bot_conversations (
    number         text COLLATE "C" NOT NULL,
    sender         text COLLATE "C" NOT NULL,
    bot_id         bigint REFERENCES bots ON DELETE SET NULL,
    session_id     text,
    session_started_at timestamptz,
    last_turn_at   timestamptz,
    -- Fallback answers in a row in this session.
    fallbacks      integer NOT NULL DEFAULT 0,
    -- Set while the conversation waits for (or is with) a human: no bot answers it.
    handoff_since  timestamptz,
    handoff_reason text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (number, sender)
);
CREATE INDEX bot_conversations_handoff_idx ON bot_conversations (handoff_since)
    WHERE handoff_since IS NOT NULL;

-- Every hand-off, for the overview's hand-off rate.
CREATE TABLE bot_handoffs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number        text COLLATE "C" NOT NULL,
    sender        text COLLATE "C" NOT NULL,
    bot_id        bigint REFERENCES bots ON DELETE SET NULL,
    reason        text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    given_back_at timestamptz
);
CREATE INDEX bot_handoffs_at_idx ON bot_handoffs (at);

-- Each inbound message given to a bot, and what came of it: the answer's intent, confidence
-- and parameters, or why there was none (timeout, throttled, auth, malformed, failed, paused
-- by the circuit breaker). Inserted (outcome `pending`) in the routing transaction, so a
-- webhook delivered twice asks the bot once.
CREATE TABLE bot_turns (
    inbound_sid  text COLLATE "C" PRIMARY KEY,
    bot_id       bigint REFERENCES bots ON DELETE SET NULL,
    bot_name     text NOT NULL,
    number       text COLLATE "C" NOT NULL,
    sender       text COLLATE "C" NOT NULL,
    session_id   text NOT NULL,
    outcome      text NOT NULL DEFAULT 'pending',
    intent       text,
    confidence   double precision,
    parameters   jsonb,
    signal       text,
    error        text,
    latency_ms   integer,
    -- Answered through the REST client after the webhook had answered (past the budget).
    late         boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    answered_at  timestamptz
);
CREATE INDEX bot_turns_number_idx ON bot_turns (number, created_at);
CREATE INDEX bot_turns_created_idx ON bot_turns (created_at);
