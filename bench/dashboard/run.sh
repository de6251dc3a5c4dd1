#!/usr/bin/env bash
# Dashboard benchmark: seeds a database with N messages and their event histories, starts a
# release build of wadash on it, and measures pages, a CSV export of ~100k rows (with the
# server's memory) and callback → browser latency under load. Prints Markdown.
#
# Usage: bash bench/dashboard/run.sh
# Knobs (environment):
#   N=5000000        messages to seed (over DAYS days)     DAYS=30
#   REUSE=1          keep an already seeded database (skip seeding if it has messages)
#   REQUESTS=50      requests per page                     EXPORT_ROWS=100000
#   RATE=2000 LIVE_SECONDS=10 CONNECTIONS=64               live-latency load
#   PG_URL=postgres://postgres@127.0.0.1:5432              (database wadash_bench_dashboard)
#   PORT=18090 SKIP_BUILD=1 SKIP=pages,export,live
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
N=${N:-5000000}
DAYS=${DAYS:-30}
REQUESTS=${REQUESTS:-50}
EXPORT_ROWS=${EXPORT_ROWS:-100000}
RATE=${RATE:-2000}
LIVE_SECONDS=${LIVE_SECONDS:-10}
CONNECTIONS=${CONNECTIONS:-64}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_URL=${PG_URL%/}
PORT=${PORT:-18090}
DB=wadash_bench_dashboard
DB_URL="$PG_URL/$DB?sslmode=disable"
TOKEN=bench-dashboard-token-0123456789
ADMIN_PW=bench-admin-password
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$ROOT/bench/results/dashboard-$STAMP"
mkdir -p "$OUT"

if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -q -p wadash -p wadash-dashboard-bench
fi

have=0
if [ -n "${REUSE:-}" ]; then
  have=$(psql "$PG_URL/$DB" -Atqc "select count(*) from messages" 2>/dev/null || echo 0)
fi
if [ "$have" = "0" ]; then
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
  DATABASE_URL="$DB_URL" ./target/release/wadash migrate >/dev/null
  echo "seeding $N messages over $DAYS days..." >&2
  t0=$(date +%s)
  psql "$PG_URL/$DB" -q -v n="$N" -v days="$DAYS" -f bench/dashboard/seed.sql > "$OUT/seed.txt"
  echo "seeded in $(( $(date +%s) - t0 )) s: $(tr -s ' \n' ' ' < "$OUT/seed.txt")" >&2
fi
SIZE=$(psql "$PG_URL/$DB" -Atqc "select pg_size_pretty(pg_database_size('$DB'))")
COUNTS=$(psql "$PG_URL/$DB" -Atqc "select (select count(*) from messages) || ' messages, ' || (select count(*) from message_events) || ' events'")
# A window holding about EXPORT_ROWS messages, a message with a long history, a busy number.
SINCE=$(psql "$PG_URL/$DB" -Atqc "select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') from messages order by created_at desc, sid desc offset $EXPORT_ROWS limit 1")
SID=$(psql "$PG_URL/$DB" -Atqc "select sid from messages where status = 'read' and sid not like 'SMzz%' order by created_at desc limit 1")
NUMBER=$(psql "$PG_URL/$DB" -Atqc "select substr(to_addr, 10) from messages where direction = 'outbound' and sid not like 'SMzz%' order by created_at desc limit 1")
psql "$PG_URL/$DB" -qc "DELETE FROM users; DELETE FROM sessions; DELETE FROM login_failures; DELETE FROM messages WHERE sid LIKE 'SMzz%'; DELETE FROM message_events WHERE message_sid LIKE 'SMzz%'"

DATABASE_URL="$DB_URL" WADASH_BIND="127.0.0.1:$PORT" TWILIO_AUTH_TOKEN="$TOKEN" \
  WADASH_ADMIN_PASSWORD="$ADMIN_PW" WADASH_RECONCILE_INTERVAL_SECS=0 RUST_LOG=warn \
  ./target/release/wadash serve > "$OUT/wadash.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
# The overview's roll-ups are computed once on a new database; wait for them (the job's
# position, jobs::rollup::POSITION_KEY).
t0=$(date +%s)
until [ -n "$(psql "$PG_URL/$DB" -Atqc "select value from instance_settings where key = 'rollup_slices_position'" 2>/dev/null)" ]; do
  sleep 1
  [ $(( $(date +%s) - t0 )) -lt 900 ] || { echo "roll-ups not computed after 15 min" >&2; exit 1; }
done
echo "roll-ups ready after $(( $(date +%s) - t0 )) s" >&2

{
  echo "## Dashboard benchmark ($STAMP)"
  echo
  echo "Database: $COUNTS, $SIZE; $(nproc) cores shared by PostgreSQL, wadash and the client."
  echo
  BENCH_ADMIN_PASSWORD="$ADMIN_PW" BENCH_TOKEN="$TOKEN" ./target/release/wadash-dashboard-bench \
    --url "http://127.0.0.1:$PORT" --pid "$PID" --requests "$REQUESTS" \
    --export-since "$SINCE" --sid "$SID" --number "$NUMBER" \
    --rate "$RATE" --seconds "$LIVE_SECONDS" --connections "$CONNECTIONS" ${SKIP:+--skip "$SKIP"}
} | tee "$OUT/report.md"
