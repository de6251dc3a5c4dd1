-- The foundation: messages (current state, one row per MessageSid), their append-only event
-- log, API tokens, and instance-wide settings.

CREATE TABLE instance_settings (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- fillfactor leaves room on each page so that status updates, which touch no indexed
-- column, stay heap-only (HOT) and never rewrite the indexes.
-- Identifiers and addresses use the "C" collation: they are ASCII, compared for equality
-- and order only, and byte-wise comparison keeps index lookups on the hot path cheap.
CREATE TABLE messages (
    sid                   text COLLATE "C" PRIMARY KEY,
    account_sid           text,
    messaging_service_sid text,
    direction             text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    from_addr             text COLLATE "C",
    to_addr               text COLLATE "C",
    body                  text,
    num_media             integer NOT NULL DEFAULT 0,
    media                 jsonb NOT NULL DEFAULT '[]',
    profile_name          text,
    wa_id                 text,
    -- NULL until a known status has been reported (a message first seen through an
    -- unknown status has no current status yet).
    status                text,
    -- Position of `status` in the state machine's total order (src/domain/status.rs);
    -- -1 when there is no status. The upsert compares ranks, never status names.
    status_rank           smallint NOT NULL DEFAULT -1,
    error_code            integer,
    error_message         text,
    price                 numeric(14, 6),
    price_unit            text,
    sent_at               timestamptz,
    delivered_at          timestamptz,
    read_at               timestamptz,
    failed_at             timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 85);

CREATE INDEX messages_created_idx ON messages (created_at DESC, sid DESC);
CREATE INDEX messages_from_idx ON messages (from_addr, created_at DESC);
CREATE INDEX messages_to_idx ON messages (to_addr, created_at DESC);

-- Every accepted callback, verbatim. Append-only: rows are never updated.
-- dedup_key is a hash of the source and every parameter, so a callback Twilio sends twice is
-- stored once (see src/ingest/record.rs). The primary key (message_sid, dedup_key) is both the
-- deduplication constraint and the index for "events of a message".
-- There is deliberately no foreign key to messages: the only writer (src/storage/events.rs)
-- upserts the message in the same statement, and an RI check would add an index lookup and
-- a row lock on messages for every callback on the hot path. `id` orders events received in
-- the same microsecond; it needs no index.
CREATE TABLE message_events (
    id          bigint GENERATED ALWAYS AS IDENTITY (CACHE 64),
    message_sid text COLLATE "C" NOT NULL,
    status      text NOT NULL,
    error_code  integer,
    source      text NOT NULL CHECK (source IN ('callback', 'inbound', 'api', 'poll')),
    params      jsonb NOT NULL,
    dedup_key   bytea NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (message_sid, dedup_key)
);

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
