-- Hourly roll-ups for the overview, so a 24-hour or 7-day view reads a few hundred rows
-- instead of every message of the period (src/jobs/rollup.rs keeps them current).
--
-- One row per (hour of creation, direction, business number, messaging service): the business
-- number is the sender of outbound messages and the recipient of inbound ones. A message's status keeps changing after
-- its hour, so rows are not incremented: the job recomputes whole hours from `messages`
-- whenever the change log (`live_log`) says a message of that hour changed. Time to
-- delivered and to read are kept as histograms (bucket bounds in src/storage/rollups.rs).
CREATE TABLE message_stats_hourly (
    hour           timestamptz NOT NULL,
    direction      text NOT NULL,
    business       text COLLATE "C" NOT NULL DEFAULT '',
    service_sid    text COLLATE "C" NOT NULL DEFAULT '',
    total          bigint NOT NULL,
    sent           bigint NOT NULL,
    delivered      bigint NOT NULL,
    read           bigint NOT NULL,
    failed         bigint NOT NULL,
    undelivered    bigint NOT NULL,
    delivered_hist bigint[] NOT NULL,
    read_hist      bigint[] NOT NULL,
    PRIMARY KEY (hour, direction, business, service_sid)
);

CREATE TABLE message_failures_hourly (
    hour        timestamptz NOT NULL,
    business    text COLLATE "C" NOT NULL DEFAULT '',
    service_sid text COLLATE "C" NOT NULL DEFAULT '',
    error_code  integer NOT NULL DEFAULT -1,
    messages    bigint NOT NULL,
    PRIMARY KEY (hour, business, service_sid, error_code)
);
