#!/usr/bin/env bash
# Broadcast benchmark: a release build of `wadash serve` sends one broadcast to N recipients
# at RATE messages per second to the built-in simulator, run as a separate process. Measured: the rate the simulator saw (first to
# last message, and the worst one-second window), the server's CPU time and the database's
# work (transactions, rows, WAL) per message, and the server's memory over the run.
# Prints Markdown.
#
# Usage: bash bench/broadcast/run.sh
# Knobs (environment):
#   N=100000 RATE=400        recipients and the sender's messages per second
#   PG_URL=postgres://postgres@127.0.0.1:5432   (database wadash_bench_broadcast, recreated)
#   PORT=18091 SKIP_BUILD=1
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
N=${N:-100000}
RATE=${RATE:-400}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_URL=${PG_URL%/}
PORT=${PORT:-18091}
DB=wadash_bench_broadcast
DB_URL="$PG_URL/$DB?sslmode=disable"
TOKEN=bench-broadcast-token-0123456789
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$ROOT/bench/results/broadcast-$STAMP"
mkdir -p "$OUT"

if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -q -p wadash
fi
psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
DATABASE_URL="$DB_URL" ./target/release/wadash migrate >/dev/null
API_TOKEN=$(DATABASE_URL="$DB_URL" ./target/release/wadash token create --name bench --role admin | tail -n1)

# The simulator runs as its own process (`wadash simulator`), so that what is measured of
# the server is wadash alone; wadash talks to it as to Twilio (live mode). Callbacks as Twilio
# sends them (sent, delivered, most read), none lost or failed: the server also ingests about
# three callbacks per message while it sends.
SIM_PORT=$((PORT + 1))
WADASH_SIM_FAILURE_SHARE=0 WADASH_SIM_LOST_SHARE=0 WADASH_SIM_DUPLICATE_SHARE=0 \
  WADASH_SIM_BALANCE=100000 RUST_LOG=warn \
  ./target/release/wadash simulator --bind "127.0.0.1:$SIM_PORT" --auth-token "$TOKEN" > "$OUT/simulator.txt" 2>&1 &
SIM=$!
trap 'kill $SIM 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do grep -q TWILIO_ACCOUNT_SID "$OUT/simulator.txt" && break; sleep 0.1; done
ACCOUNT=$(sed -n 's/^TWILIO_ACCOUNT_SID=//p' "$OUT/simulator.txt")

DATABASE_URL="$DB_URL" WADASH_BIND="127.0.0.1:$PORT" WADASH_PUBLIC_URL="http://127.0.0.1:$PORT" \
  TWILIO_ACCOUNT_SID="$ACCOUNT" TWILIO_AUTH_TOKEN="$TOKEN" TWILIO_API_BASE="http://127.0.0.1:$SIM_PORT" \
  WADASH_ADMIN_PASSWORD=bench-admin-password WADASH_RECONCILE_INTERVAL_SECS=0 RUST_LOG=warn \
  ./target/release/wadash serve > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER $SIM 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done

python3 bench/broadcast/measure.py \
  --url "http://127.0.0.1:$PORT" --token "$API_TOKEN" --pid "$SERVER" \
  --db "$PG_URL/$DB" --n "$N" --rate "$RATE" --out "$OUT" --sim-token "$TOKEN" \
  --sim-url "http://127.0.0.1:$SIM_PORT" --sim-pid "$SIM" | tee "$OUT/report.md"
