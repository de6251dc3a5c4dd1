#!/usr/bin/env bash
# Ingest benchmark: the same signed status-callback workload against
#   wadash       (group commit, src/ingest/batcher.rs)
#   flask        (peer A: the prototype's stack, Flask + gunicorn + psycopg 3, one transaction per request)
#   naive        (peer B: actix-web + sqlx with wadash's own parser and SQL, one transaction per request)
# each on a freshly created database, then verifies what was stored and prints a table.
#
# Usage: bash bench/ingest/run.sh            (from anywhere)
# Knobs (environment):
#   N=20000            messages (each yields 2-4 callbacks, ~10% sent twice)
#   CONCURRENCY=64     concurrent keep-alive connections
#   TARGETS="wadash wadash@require wadash@disable flask naive"
#                      a target is wadash, flask or naive, optionally @sslmode: without it the
#                      URL names no sslmode, as the README's DATABASE_URL (each driver's default:
#                      TLS whenever the server offers it)
#   PG_URL=postgres://postgres@127.0.0.1:5432   server to use (databases wadash_bench_* are dropped!)
#   PG_SSLMODE=        sslmode for the targets that name none (default: none in the URL)
#   BENCH_ARGS="..."    extra arguments for wadash-ingest-bench (e.g. "--seed 7 --window 512")
#   WADASH_PORT=18080 FLASK_PORT=18081 NAIVE_PORT=18082
#   FLASK_WORKERS=5 FLASK_THREADS=1     gunicorn workers x threads (pool = threads per worker)
#   FLASK_WORKER_CLASS=sync             or gthread (keeps connections alive; e.g. 4 x 8)
#   NAIVE_POOL=16 NAIVE_WORKERS=        naive peer: pool size, actix workers (default: cores)
#   WADASH_WORKERS, WADASH_INGEST_MAX_BATCH, WADASH_INGEST_CONCURRENCY, WADASH_DB_MAX_CONNECTIONS
#                      are passed through to wadash unchanged.
#   SKIP_BUILD=1       do not run cargo build
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

N=${N:-20000}
CONCURRENCY=${CONCURRENCY:-64}
TARGETS=${TARGETS:-"wadash wadash@require wadash@disable flask naive"}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_URL=${PG_URL%/}
PG_SSLMODE=${PG_SSLMODE:-}
export PG_SSLMODE
BENCH_ARGS=${BENCH_ARGS:-}
WADASH_PORT=${WADASH_PORT:-18080}
FLASK_PORT=${FLASK_PORT:-18081}
NAIVE_PORT=${NAIVE_PORT:-18082}
FLASK_WORKERS=${FLASK_WORKERS:-5}
FLASK_THREADS=${FLASK_THREADS:-1}
FLASK_WORKER_CLASS=${FLASK_WORKER_CLASS:-sync}
NAIVE_POOL=${NAIVE_POOL:-16}
NAIVE_WORKERS=${NAIVE_WORKERS:-}
TOKEN=bench-auth-token-0123456789abcdef

VENV="$ROOT/bench/.venv"
PY="$VENV/bin/python"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$ROOT/bench/results/$STAMP"
mkdir -p "$OUT"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

# --- build -----------------------------------------------------------------------------------
if [[ -z "${SKIP_BUILD:-}" ]]; then
    log "building release binaries"
    cargo build --release -p wadash -p wadash-ingest-bench -p wadash-naive-peer
fi
BIN="$ROOT/target/release"
for b in wadash wadash-ingest-bench wadash-naive-peer; do
    [[ -x "$BIN/$b" ]] || die "missing $BIN/$b (build failed?)"
done

# --- Python venv for the Flask peer (also used for database administration) ------------------
REQS="$ROOT/bench/peers/flask/requirements.txt"
want=$(sha256sum "$REQS" | cut -d' ' -f1)
if [[ ! -x "$PY" || "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
    log "creating $VENV and installing $REQS"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS"
    echo "$want" >"$VENV/.requirements.sha256"
fi

# A target's database URL: `db_url DATABASE [SSLMODE]`; no sslmode in the URL when none is
# given (nor PG_SSLMODE). Administration and verification use sslmode=disable throughout.
db_url() {
    local mode=${2-$PG_SSLMODE}
    if [[ -n "$mode" ]]; then echo "$PG_URL/$1?sslmode=$mode"; else echo "$PG_URL/$1"; fi
}
admin_url() { db_url "$1" disable; }
base_of() { echo "${1%%@*}"; }
mode_of() { [[ "$1" == *@* ]] && echo "${1#*@}" || echo "$PG_SSLMODE"; }
db_of() { local d=${1//@/_}; echo "wadash_bench_${d//-/_}"; }

# Runs SQL on the maintenance database (autocommit), prints the first column of the result.
admin_sql() {
    "$PY" - "$(admin_url postgres)" "$1" <<'EOF'
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    cur = conn.execute(sys.argv[2])
    if cur.description:
        for row in cur:
            print(row[0])
EOF
}

sync_commit=$(admin_sql "SHOW synchronous_commit")
fsync=$(admin_sql "SHOW fsync")
pg_version=$(admin_sql "SHOW server_version")
log "PostgreSQL $pg_version: synchronous_commit=$sync_commit fsync=$fsync (left as they are)"
[[ "$sync_commit" == "on" ]] || die "synchronous_commit is '$sync_commit': results would not measure durable commits; set it to on"

# --- servers ---------------------------------------------------------------------------------
SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_ready() { # port
    local port=$1
    for _ in $(seq 1 300); do
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited during start-up (see $OUT/$name.server.log)"
        if "$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "the server on port $port did not become ready in 30 s"
}

fresh_database() { # name
    admin_sql "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
    (cd "$OUT" && DATABASE_URL=$(admin_url "$1") exec "$BIN/wadash" migrate) >"$OUT/$1.migrate.log" 2>&1 \
        || die "wadash migrate failed for $1 (see $OUT/$1.migrate.log)"
    # Start every target from the same point: no pending dirty pages from the previous one.
    admin_sql "CHECKPOINT" >/dev/null
}

start_server() { # name port database
    local name=$1 port=$2 db=$3
    local mode
    mode=$(mode_of "$name")
    port_in_use "$port" && die "port $port is already in use; set $(base_of "$name" | tr a-z A-Z)_PORT"
    case "$(base_of "$name")" in
    wadash)
        # Run from the results directory so that no stray wadash.toml is picked up.
        (cd "$OUT" && exec env -u TWILIO_ACCOUNT_SID -u TWILIO_API_KEY -u WADASH_CONFIG \
            DATABASE_URL="$(db_url "$db" "$mode")" WADASH_BIND="127.0.0.1:$port" \
            WADASH_PUBLIC_URL="http://127.0.0.1:$port" TWILIO_AUTH_TOKEN="$TOKEN" \
            "$BIN/wadash" serve) >"$OUT/$name.server.log" 2>&1 &
        ;;
    flask)
        (cd "$ROOT/bench/peers/flask" && exec env DATABASE_URL="$(db_url "$db" "$mode")" TOKEN="$TOKEN" \
            PUBLIC_URL="http://127.0.0.1:$port" POOL_SIZE="$FLASK_THREADS" \
            "$VENV/bin/gunicorn" --bind "127.0.0.1:$port" --worker-class "$FLASK_WORKER_CLASS" \
            --workers "$FLASK_WORKERS" --threads "$FLASK_THREADS" --keep-alive 30 \
            --backlog 2048 app:app) >"$OUT/$name.server.log" 2>&1 &
        ;;
    naive)
        (exec env DATABASE_URL="$(db_url "$db" "$mode")" BIND="127.0.0.1:$port" TOKEN="$TOKEN" \
            PUBLIC_URL="http://127.0.0.1:$port" POOL="$NAIVE_POOL" WORKERS="$NAIVE_WORKERS" \
            "$BIN/wadash-naive-peer") >"$OUT/$name.server.log" 2>&1 &
        ;;
    esac
    SERVER_PID=$!
    wait_ready "$port"
}

declare -A PORT=([wadash]=$WADASH_PORT [flask]=$FLASK_PORT [naive]=$NAIVE_PORT)
{
    echo "date: $STAMP"
    echo "host: $(nproc) cores, $(uname -sr)"
    echo "postgres: $pg_version synchronous_commit=$sync_commit fsync=$fsync ssl=$(admin_sql "SHOW ssl") sslmode (targets without @mode)=${PG_SSLMODE:-none in the URL}"
    echo "N=$N CONCURRENCY=$CONCURRENCY BENCH_ARGS=$BENCH_ARGS"
    echo "wadash env: $(env | grep -E '^WADASH_(WORKERS|INGEST_|DB_)' | tr '\n' ' ')"
    echo "flask: gunicorn $FLASK_WORKER_CLASS ${FLASK_WORKERS}x${FLASK_THREADS}, pool $FLASK_THREADS per worker"
    echo "naive: pool $NAIVE_POOL, workers ${NAIVE_WORKERS:-default}"
} >"$OUT/settings.txt"

status=0
for name in $TARGETS; do
    base=$(base_of "$name")
    [[ -n "${PORT[$base]:-}" ]] || die "unknown target $name (use wadash, flask, naive, optionally @sslmode)"
    db=$(db_of "$name")
    port=${PORT[$base]}
    log "$name: fresh database $db"
    fresh_database "$db"
    log "$name: starting on port $port"
    start_server "$name" "$port" "$db"
    # The server's process tree (gunicorn: master and workers), for CPU accounting.
    pids=$SERVER_PID
    for p in $(pgrep -P "$SERVER_PID" 2>/dev/null || true); do pids="$pids,$p"; done
    log "$name: sending (N=$N, concurrency $CONCURRENCY)"
    # shellcheck disable=SC2086
    if "$BIN/wadash-ingest-bench" --url "http://127.0.0.1:$port" --token "$TOKEN" \
        --messages "$N" --concurrency "$CONCURRENCY" --database-url "$(admin_url "$db")" \
        --server-pids "$pids" --label "$name" --json $BENCH_ARGS | tee "$OUT/$name.txt"; then
        :
    else
        echo "run.sh: $name: the benchmark reported a failure" >&2
        status=1
    fi
    tail -n 1 "$OUT/$name.txt" | grep '^{' >"$OUT/$name.json" || true
    if [[ "$base" == wadash ]]; then
        "$PY" -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/metrics').read().decode())" \
            >"$OUT/$name.metrics.txt" 2>/dev/null || true
    fi
    stop_server
done

# --- cross-check: every target should have stored the same rows -------------------------------
# Same seed, same bodies: the event log (sid, dedup_key, status, params) and each message's
# state must be identical across targets when everything was acknowledged.
"$PY" - "$PG_URL" $TARGETS >"$OUT/same-rows.txt" <<'EOF' || true
import sys, psycopg
base, targets = sys.argv[1], sys.argv[2:]
def rows(t):
    with psycopg.connect(f"{base}/wadash_bench_{t.replace('@', '_').replace('-', '_')}?sslmode=disable") as c:
        ev = set(c.execute("SELECT message_sid, dedup_key, status, error_code, params::text FROM message_events").fetchall())
        ms = set(c.execute("SELECT sid, status, status_rank, error_code, account_sid, from_addr, to_addr, "
                           "sent_at IS NULL, delivered_at IS NULL, read_at IS NULL, failed_at IS NULL FROM messages").fetchall())
        return ev, ms
ref = targets[0]
ref_ev, ref_ms = rows(ref)
for t in targets[1:]:
    ev, ms = rows(t)
    same = ev == ref_ev and ms == ref_ms
    print(f"{t}: {'identical to' if same else 'DIFFERENT from'} {ref} "
          f"({len(ev ^ ref_ev)} event rows and {len(ms ^ ref_ms)} message rows differ)")
EOF

# --- report ----------------------------------------------------------------------------------
"$PY" - "$OUT" $TARGETS <<'EOF' | tee "$OUT/summary.md"
import json, os, sys
out, targets = sys.argv[1], sys.argv[2:]
res = {}
for t in targets:
    try:
        with open(os.path.join(out, t + ".json")) as f:
            res[t] = json.loads(f.read())
    except (OSError, ValueError):
        res[t] = None
with open(os.path.join(out, "settings.txt")) as f:
    print("```\n" + f.read().rstrip() + "\n```\n")
base_names = {"wadash": "wadash (group commit)", "flask": "peer A: Flask + gunicorn + psycopg",
              "naive": "peer B: actix + sqlx, 1 tx/request"}
forced = os.environ.get("PG_SSLMODE", "")
class Names(dict):
    def get(self, t, default=None):
        b, _, mode = t.partition("@")
        mode = mode or forced
        return base_names.get(b, b) + (f", sslmode={mode}" if mode else ", default URL (TLS if offered)")
names = Names()
print("| target | callbacks/s | p50 ms | p99 ms | errors | verified |")
print("|---|---:|---:|---:|---:|---|")
for t in targets:
    r = res[t]
    if r is None:
        print(f"| {names.get(t, t)} | - | - | - | - | no result |")
        continue
    v = r.get("verified")
    print(f"| {names.get(t, t)} | {r['callbacks_per_s']:.0f} | {r['latency_ms']['p50']:.2f} | "
          f"{r['latency_ms']['p99']:.2f} | {r['errors']} | {'yes' if v else ('no' if v is False else 'n/a')} |")
print("\nCPU during the timed phase, microseconds per acknowledged callback "
      "(all on the same cores; 'PostgreSQL' is whatever else was busy):\n")
print("| target | cores busy | server | PostgreSQL | load generator |")
print("|---|---:|---:|---:|---:|")
for t in targets:
    r = res[t]
    c = r and r.get("cpu")
    if not c:
        continue
    u = c["us_per_callback"]
    srv = "n/a" if u["server"] is None else f"{u['server']:.0f}"
    print(f"| {names.get(t, t)} | {c['busy_share'] * 100:.0f}% | {srv} | {u['other']:.0f} | {u['load_generator']:.0f} |")
w = res.get("wadash")
if w:
    r0 = next((r for r in res.values() if r), None)
    print(f"\n{r0['requests']} requests ({r0['messages']} messages, {r0['duplicate_requests']} duplicates, "
          f"{r0['out_of_order_requests']} out of order), {r0['timed_requests']} timed, concurrency {r0['concurrency']}.")
    # Group commit at work: how many callbacks shared a transaction (from wadash's /metrics,
    # warm-up included).
    try:
        with open(os.path.join(out, "wadash.metrics.txt")) as f:
            m = dict(l.split()[:2] for l in f if l.startswith("wadash_ingest_batch_size_"))
        n, total = float(m["wadash_ingest_batch_size_count"]), float(m["wadash_ingest_batch_size_sum"])
        if n > 0:
            print(f"- wadash committed {total:.0f} callbacks in {n:.0f} transactions "
                  f"({total / n:.1f} per transaction).")
    except (OSError, KeyError, ValueError):
        pass
    def cpu_per_callback(r):
        return ((r.get("cpu") or {}).get("us_per_callback") or {}).get("all")
    for t in ("flask", "naive"):
        r = res.get(t)
        if r and r["callbacks_per_s"] > 0:
            line = (f"- wadash/{t}: {w['callbacks_per_s'] / r['callbacks_per_s']:.1f}x throughput, "
                    f"p99 {w['latency_ms']['p99']:.2f} vs {r['latency_ms']['p99']:.2f} ms")
            mine, theirs = cpu_per_callback(w), cpu_per_callback(r)
            if mine and theirs:
                line += (f"; CPU per callback {mine:.0f} vs {theirs:.0f} us "
                         f"({theirs / mine:.1f}x less), cores busy "
                         f"{w['cpu']['busy_share'] * 100:.0f}% vs {r['cpu']['busy_share'] * 100:.0f}%")
            print(line)
    for t in targets:
        r = res.get(t)
        if t.startswith("wadash@") and r and r["callbacks_per_s"] > 0:
            print(f"- wadash, default URL vs {t}: {w['callbacks_per_s'] / r['callbacks_per_s']:.2f}x "
                  f"throughput, p99 {w['latency_ms']['p99']:.2f} vs {r['latency_ms']['p99']:.2f} ms")
try:
    with open(os.path.join(out, "same-rows.txt")) as f:
        lines = [l.strip() for l in f if l.strip()]
    if lines:
        print("\nStored rows compared across targets (same seed, same bodies):")
        for l in lines:
            print(f"- {l}")
except OSError:
    pass
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(res, f, indent=2)
EOF
ln -sfn "$STAMP" "$ROOT/bench/results/latest"
log "raw results in bench/results/$STAMP (also bench/results/latest)"
exit $status
