-- Ten-second slices of the overview roll-ups, for the buckets of the last day (issue 17).
--
-- The roll-up pass recomputed every changed five-minute bucket from `messages`: under
-- sustained traffic each pass read every message of the current bucket, up to five minutes'
-- worth, once a second. It now recomputes only the changed slices from `messages` and sums
-- the bucket's slices (at most thirty rows per sender) into `message_stats_5m`. A change to a
-- message older than a day still recomputes its whole bucket; slices older than a day and an
-- hour are pruned.
--
-- A row holds what a `message_stats_5m` row holds, for one slice, with the slice's outbound
-- failures by error code alongside (`fail_codes`, `fail_counts`: -1 for no code).
--
-- Expand only. The previous binary neither reads nor writes this table. This binary keeps its
-- own change-log position (`rollup_slices_position`); its first pass fills the slices of the
-- last day and an hour from `messages` and follows the log on from the previous binary's
-- position (`rollup_position`), up to which older buckets are current (src/jobs/rollup.rs).
CREATE TABLE message_stats_slices (
    slice          timestamptz NOT NULL,
    direction      text NOT NULL,
    business       text COLLATE "C" NOT NULL DEFAULT '',
    service_sid    text COLLATE "C" NOT NULL DEFAULT '',
    total          bigint NOT NULL,
    sent           bigint NOT NULL,
    delivered      bigint NOT NULL,
    read           bigint NOT NULL,
    failed         bigint NOT NULL,
    undelivered    bigint NOT NULL,
    settled        bigint NOT NULL,
    delivered_hist bigint[] NOT NULL,
    read_hist      bigint[] NOT NULL,
    fail_codes     integer[] NOT NULL,
    fail_counts    bigint[] NOT NULL,
    PRIMARY KEY (slice, direction, business, service_sid)
);
