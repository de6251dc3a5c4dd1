-- The change log behind live updates (src/live). Every committed ingest batch appends one row
-- listing the messages it changed; each instance polls the log and pushes the rows to the
-- browsers connected to it, so a callback received by one instance reaches every browser.
--
-- Identity values are handed out at insert time but become visible at commit, so they can
-- appear out of order. `xid` (the writing transaction) solves that: a reader only takes rows
-- of transactions older than the oldest one of this database still running, which are all
-- finished, and so never skips a row that commits later (src/storage/live_log.rs).
-- Position = (xid, id).
CREATE TABLE live_log (
    xid     xid8 NOT NULL DEFAULT pg_current_xact_id(),
    id      bigint GENERATED ALWAYS AS IDENTITY (CACHE 64),
    at      timestamptz NOT NULL DEFAULT now(),
    kind    text NOT NULL,
    payload jsonb NOT NULL,
    PRIMARY KEY (xid, id)
);

CREATE INDEX live_log_at_idx ON live_log (at);
