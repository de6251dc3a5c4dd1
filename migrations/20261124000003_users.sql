-- People who use the dashboard, their sessions, and failed logins for throttling.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Stored lower-case; compared exactly.
    username      text NOT NULL UNIQUE CHECK (username = lower(username) AND length(username) BETWEEN 1 AND 64),
    -- argon2id PHC string.
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    disabled_at   timestamptz
);

-- A session is found by the SHA-256 of the random token in the cookie; the token itself is
-- never stored, so a copy of this table does not let anyone in.
CREATE TABLE sessions (
    id           bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Synchroniser token for the forms of this session.
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);

CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expiry_idx ON sessions (expires_at);

-- One row per failed login, keyed by account ("user:<name>") and by client ("ip:<addr>").
CREATE TABLE login_failures (
    key text NOT NULL,
    at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX login_failures_key_idx ON login_failures (key, at);

ALTER TABLE api_tokens ADD COLUMN created_by bigint REFERENCES users (id) ON DELETE SET NULL;
