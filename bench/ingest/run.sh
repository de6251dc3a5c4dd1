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
#   ROUNDS=3           closed loop: run every target this many times, round-robin (all targets,
#                      then all again, each round starting one target later), and report each
#                      target's median round by throughput (the slower middle one for an even
#                      number; a round with errors or a failed verification counts as slowest).
#                      The machine's speed moves from one ten-second window to the next (the
#                      hypervisor's steal reached 24–29 % in the worst ten-second windows of
#                      some runs, 0 % in others: bench/README.md, "Rounds"), so one short run
#                      per target compares noise; rounds spread it over every target alike.
#                      ROUNDS=1 for a quick run.
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
#   WADASH_WORKERS, WADASH_INGEST_MAX_BATCH, WADASH_INGEST_CONCURRENCY, WADASH_INGEST_LINGER_US,
#   WADASH_DB_MAX_CONNECTIONS
#                      are passed through to wadash unchanged.
#   SKIP_BUILD=1       do not run cargo build
#   CARGO_TARGET_DIR   where cargo builds and the binaries are taken from (default: target/)
#
# MODE=open: the highest arrival rate each target sustains (open loop). Twilio does not wait
# for an answer before sending the next callback, so wadash-ingest-bench --rate sends at a
# fixed rate: request i is due at start + i/rate and its latency counts from that due time, so
# time spent queued behind slow answers counts (no coordinated omission). A rate is sustained
# when, over the timed phase, the p99 latency is below P99_LIMIT_MS, every request got a 2xx
# and at least 99 % of the offered rate was acknowledged. For each target the script
#   1. ramps: starts at the target's start rate, doubles while sustained (halves while not);
#   2. bisects between the highest sustained and the lowest failed rate to within RATE_STEP %;
#   3. confirms the best rate with a full OPEN_SECS run; if that fails, steps down CONFIRM_STEP %
#      and confirms again (at most CONFIRM_TRIES runs). A 60 s run holds less than a 20 s probe
#      (late answers come in stalls, see bench/README.md), so the step is coarser than RATE_STEP.
# Every probe runs on a fresh database and a freshly started server, with WARMUP_SECS of
# warm-up at the same rate first, and stops as soon as the rate cannot be sustained
# (--stop-early); what was stored is verified after every probe. It prints the highest
# confirmed rate per target with p50/p99 there and CPU per callback, and wadash/flask and
# wadash/naive. Knobs for MODE=open:
#   OPEN_SECS=60 PROBE_SECS=20 WARMUP_SECS=5 P99_LIMIT_MS=25
#   START_RATE=        first probe for every target; else per family:
#   WADASH_START_RATE=8000 NAIVE_START_RATE=1500 FLASK_START_RATE=500
#   RATE_STEP=5        bisection precision and confirmation step down, in %
#   MIN_RATE=50 MAX_RATE=200000 CONFIRM_TRIES=6 CONFIRM_STEP=10
#   CONCURRENCY=256    connections per target (at most; a request that finds all of them busy
#                      waits, and the wait counts in its latency)
#   N is not used: each run's workload is sized from rate x (warm-up + duration).
# e.g. MODE=open bash bench/ingest/run.sh
#      MODE=open OPEN_SECS=10 PROBE_SECS=5 TARGETS="wadash naive" bash bench/ingest/run.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

MODE=${MODE:-closed}
[[ "$MODE" == closed || "$MODE" == open ]] || { echo "run.sh: MODE must be closed or open" >&2; exit 1; }
N=${N:-20000}
ROUNDS=${ROUNDS:-3}
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: ROUNDS must be a positive whole number" >&2; exit 1; }
if [[ "$MODE" == open ]]; then CONCURRENCY=${CONCURRENCY:-256}; else CONCURRENCY=${CONCURRENCY:-64}; fi
OPEN_SECS=${OPEN_SECS:-60}
PROBE_SECS=${PROBE_SECS:-20}
WARMUP_SECS=${WARMUP_SECS:-5}
P99_LIMIT_MS=${P99_LIMIT_MS:-25}
export P99_LIMIT_MS
START_RATE=${START_RATE:-}
WADASH_START_RATE=${WADASH_START_RATE:-8000}
NAIVE_START_RATE=${NAIVE_START_RATE:-1500}
FLASK_START_RATE=${FLASK_START_RATE:-500}
RATE_STEP=${RATE_STEP:-5}
MIN_RATE=${MIN_RATE:-50}
MAX_RATE=${MAX_RATE:-200000}
CONFIRM_TRIES=${CONFIRM_TRIES:-6}
CONFIRM_STEP=${CONFIRM_STEP:-10}
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
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
[[ "$TARGET_DIR" == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
BIN="$TARGET_DIR/release"
needed_bins="wadash wadash-ingest-bench"
[[ " $TARGETS " == *" naive"* ]] && needed_bins="$needed_bins wadash-naive-peer"
for b in $needed_bins; do
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
    if [[ "$MODE" == open ]]; then
        echo "MODE=open CONCURRENCY=$CONCURRENCY OPEN_SECS=$OPEN_SECS PROBE_SECS=$PROBE_SECS WARMUP_SECS=$WARMUP_SECS P99_LIMIT_MS=$P99_LIMIT_MS RATE_STEP=$RATE_STEP CONFIRM_STEP=$CONFIRM_STEP CONFIRM_TRIES=$CONFIRM_TRIES BENCH_ARGS=$BENCH_ARGS"
        echo "start rates: ${START_RATE:-wadash $WADASH_START_RATE, naive $NAIVE_START_RATE, flask $FLASK_START_RATE}"
    else
        echo "N=$N ROUNDS=$ROUNDS CONCURRENCY=$CONCURRENCY BENCH_ARGS=$BENCH_ARGS"
    fi
    echo "wadash env: $(env | grep -E '^WADASH_(WORKERS|INGEST_|DB_)' | tr '\n' ' ')"
    echo "flask: gunicorn $FLASK_WORKER_CLASS ${FLASK_WORKERS}x${FLASK_THREADS}, pool $FLASK_THREADS per worker"
    echo "naive: pool $NAIVE_POOL, workers ${NAIVE_WORKERS:-default}"
} >"$OUT/settings.txt"

# --- open loop: the highest sustained arrival rate per target ---------------------------------
if [[ "$MODE" == open ]]; then
    status=0
    # One probe: fresh database, fresh server, one open-loop run. `open_probe NAME RATE SECS TAG`
    # leaves $OUT/NAME.open-TAG.{txt,err,json,server.log} and returns 0 when the rate was
    # sustained (and what was stored verified).
    open_probe() {
        local name=$1 rate=$2 secs=$3 tag=$4
        local base db port pids p res rc=0 TAB=$'\t'
        base=$(base_of "$name")
        db=$(db_of "$name")
        port=${PORT[$base]}
        fresh_database "$db"
        start_server "$name" "$port" "$db"
        pids=$SERVER_PID
        for p in $(pgrep -P "$SERVER_PID" 2>/dev/null || true); do pids="$pids,$p"; done
        # shellcheck disable=SC2086
        "$BIN/wadash-ingest-bench" --url "http://127.0.0.1:$port" --token "$TOKEN" \
            --rate "$rate" --duration "$secs" --warmup-secs "$WARMUP_SECS" \
            --p99-limit-ms "$P99_LIMIT_MS" --stop-early --concurrency "$CONCURRENCY" \
            --database-url "$(admin_url "$db")" --server-pids "$pids" --label "$name" --json \
            $BENCH_ARGS >"$OUT/$name.open-$tag.txt" 2>"$OUT/$name.open-$tag.err" || rc=$?
        tail -n 1 "$OUT/$name.open-$tag.txt" | grep '^{' >"$OUT/$name.open-$tag.json" || true
        if [[ "$base" == wadash ]]; then
            "$PY" -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/metrics').read().decode())" \
                >"$OUT/$name.open-$tag.metrics.txt" 2>/dev/null || true
        fi
        stop_server
        mv -f "$OUT/$name.server.log" "$OUT/$name.open-$tag.server.log" 2>/dev/null || true
        if [[ $rc -eq 1 ]]; then
            echo "run.sh: $name at $rate/s: verification failed (see $OUT/$name.open-$tag.txt)" >&2
            status=1
        fi
        res=$("$PY" - "$OUT/$name.open-$tag.json" <<'EOF'
import json, sys
try:
    with open(sys.argv[1]) as f:
        r = json.loads(f.read())
except (OSError, ValueError):
    print("no\tno result (see the .err file)")
    sys.exit()
l = r["latency_ms"]
why = "; ".join(r["verdict_reasons"])
ok = r["sustained"] and r.get("verified") is not False
if r.get("verified") is False:
    why = (why + "; " if why else "") + "verification FAILED"
if r.get("stopped_early"):
    figures = f"after {r['timed_answered']} of {r['timed_requests']} timed requests"
else:
    figures = f"achieved {r['achieved_rate']:.0f}/s, p50 {l['p50']:.2f} ms, p99 {l['p99']:.2f} ms"
print(("yes" if ok else "no") + "\t" + figures + (f" ({why})" if why else ""))
EOF
)
        printf '%s\t%s\t%s\t%s\n' "$tag" "$rate" "$secs" "${res%%"$TAB"*}" >>"$OUT/$name.probes.tsv"
        if [[ "${res%%"$TAB"*}" == yes ]]; then
            log "$name: $rate/s for $secs s: sustained: ${res#*"$TAB"}"
            return 0
        fi
        log "$name: $rate/s for $secs s: NOT sustained: ${res#*"$TAB"}"
        return 1
    }

    for name in $TARGETS; do
        base=$(base_of "$name")
        [[ -n "${PORT[$base]:-}" ]] || die "unknown target $name (use wadash, flask, naive, optionally @sslmode)"
        case "$base" in
        wadash) rate=${START_RATE:-$WADASH_START_RATE} ;;
        naive) rate=${START_RATE:-$NAIVE_START_RATE} ;;
        flask) rate=${START_RATE:-$FLASK_START_RATE} ;;
        esac
        : >"$OUT/$name.probes.tsv"
        ok=0 bad=0 probe=0
        log "$name: searching the highest sustained rate from $rate/s ($PROBE_SECS s probes)"
        # Ramp: double while sustained, halve while not, until both ends are known.
        while :; do
            probe=$((probe + 1))
            if open_probe "$name" "$rate" "$PROBE_SECS" "probe$probe"; then
                ok=$rate
                [[ $bad -gt 0 || $rate -ge $MAX_RATE ]] && break
                rate=$((rate * 2 > MAX_RATE ? MAX_RATE : rate * 2))
            else
                bad=$rate
                [[ $ok -gt 0 || $rate -le $MIN_RATE ]] && break
                rate=$((rate / 2 < MIN_RATE ? MIN_RATE : rate / 2))
            fi
        done
        # Bisect until the lowest failed rate is within RATE_STEP % of the highest sustained one.
        if [[ $ok -gt 0 && $bad -gt 0 ]]; then
            while [[ $((bad * 100)) -gt $((ok * (100 + RATE_STEP))) ]]; do
                rate=$(((ok + bad) / 2))
                probe=$((probe + 1))
                if open_probe "$name" "$rate" "$PROBE_SECS" "probe$probe"; then ok=$rate; else bad=$rate; fi
            done
        fi
        # Confirm with a full-length run, stepping down CONFIRM_STEP % until one passes.
        best=0
        if [[ $ok -gt 0 ]]; then
            rate=$ok
            for try in $(seq 1 "$CONFIRM_TRIES"); do
                if open_probe "$name" "$rate" "$OPEN_SECS" "confirm$try"; then
                    best=$rate
                    cp "$OUT/$name.open-confirm$try.json" "$OUT/$name.json"
                    break
                fi
                rate=$((rate * (100 - CONFIRM_STEP) / 100))
                [[ $rate -ge $MIN_RATE ]] || break
            done
        fi
        echo "$best" >"$OUT/$name.best-rate"
        if [[ $best -gt 0 && $best -ge $MAX_RATE ]]; then echo capped >"$OUT/$name.best-note"; fi
        if [[ $best -gt 0 ]]; then
            log "$name: highest sustained rate $best/s (confirmed for $OPEN_SECS s)"
        else
            log "$name: no rate sustained for $OPEN_SECS s"
        fi
    done

    "$PY" - "$OUT" $TARGETS <<'EOF' | tee "$OUT/summary.md"
import json, os, sys
out, targets = sys.argv[1], sys.argv[2:]
def read(path, parse=json.loads):
    try:
        with open(path) as f:
            return parse(f.read())
    except (OSError, ValueError):
        return None
def probes_of(t):
    return read(os.path.join(out, t + ".probes.tsv"),
                lambda s: [l.split("\t") for l in s.splitlines() if l]) or []
with open(os.path.join(out, "settings.txt")) as f:
    print("```\n" + f.read().rstrip() + "\n```\n")
base_names = {"wadash": "wadash (group commit)", "flask": "peer A: Flask + gunicorn + psycopg",
              "naive": "peer B: actix + sqlx, 1 tx/request"}
forced = os.environ.get("PG_SSLMODE", "")
def name(t):
    b, _, mode = t.partition("@")
    mode = mode or forced
    return base_names.get(b, b) + (f", sslmode={mode}" if mode else ", default URL (TLS if offered)")
res, best, capped = {}, {}, {}
for t in targets:
    best[t] = read(os.path.join(out, t + ".best-rate"), lambda s: int(s.strip() or 0)) or 0
    res[t] = read(os.path.join(out, t + ".json")) if best[t] else None
    capped[t] = os.path.exists(os.path.join(out, t + ".best-note"))
limit = os.environ.get("P99_LIMIT_MS", "25")
print(f"Open loop: the highest arrival rate sustained for the whole timed phase with p99 below "
      f"{limit} ms, no error and at least 99 % of the offered rate acknowledged (latency counted "
      "from each request's due time).\n")
print("| target | sustained rate /s | achieved /s | p50 ms | p99 ms | p99.9 ms | errors | "
      "CPU us/callback: server + PostgreSQL + load generator | verified | probes |")
print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|")
for t in targets:
    r, n = res[t], len(probes_of(t))
    if r is None:
        print(f"| {name(t)} | none | - | - | - | - | - | - | - | {n} |")
        continue
    l = r["latency_ms"]
    u = (r.get("cpu") or {}).get("us_per_callback") or {}
    cpu = "n/a"
    if u:
        srv = "n/a" if u.get("server") is None else f"{u['server']:.0f}"
        cpu = f"{srv} + {u['other']:.0f} + {u['load_generator']:.0f} = {u['all']:.0f}"
    v = r.get("verified")
    rate = f"{best[t]:,}" + (" (= MAX_RATE)" if capped[t] else "")
    print(f"| {name(t)} | {rate} | {r['achieved_rate']:,.0f} | {l['p50']:.2f} | {l['p99']:.2f} | "
          f"{l['p999']:.2f} | {r['errors']} | {cpu} | {'yes' if v else ('no' if v is False else 'n/a')} | {n} |")
print("\nProbes in order (rate/s for seconds: sustained?):\n")
for t in targets:
    print(f"- {t}: " + ", ".join(f"{p[1]} for {p[2]} s: {p[3]}" for p in probes_of(t)))
wt = "wadash" if res.get("wadash") else next((t for t in targets if t.startswith("wadash") and res[t]), None)
if wt:
    w = res[wt]
    print()
    for peer in ("flask", "naive"):
        r = res.get(peer)
        if not r:
            continue
        line = (f"- {wt}/{peer}: {best[wt] / best[peer]:.1f}x the sustained rate "
                f"({best[wt]:,} vs {best[peer]:,}/s), p99 {w['latency_ms']['p99']:.2f} vs "
                f"{r['latency_ms']['p99']:.2f} ms")
        mine = ((w.get("cpu") or {}).get("us_per_callback") or {}).get("all")
        theirs = ((r.get("cpu") or {}).get("us_per_callback") or {}).get("all")
        if mine and theirs:
            line += f"; CPU per callback {mine:.0f} vs {theirs:.0f} us ({theirs / mine:.1f}x less)"
        print(line)
print("\nEvery probe's stored rows were verified; they are not compared across targets, since "
      "each target ran at its own rate and so with its own workload.")
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({"mode": "open", "sustained_rate": best, "results": res}, f, indent=2)
EOF
    ln -sfn "$STAMP" "$ROOT/bench/results/latest"
    log "raw results in bench/results/$STAMP (also bench/results/latest)"
    exit $status
fi

status=0
# Round k starts with the k-th target and wraps around, so that no target always runs first
# (the targets of a run tend to get a little faster one after the other: bench/README.md).
read -r -a TARGET_LIST <<<"$TARGETS"
for round in $(seq 1 "$ROUNDS"); do
first=$(((round - 1) % ${#TARGET_LIST[@]}))
for name in "${TARGET_LIST[@]:$first}" "${TARGET_LIST[@]:0:$first}"; do
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
    log "$name: sending (N=$N, concurrency $CONCURRENCY, round $round of $ROUNDS)"
    # shellcheck disable=SC2086
    if "$BIN/wadash-ingest-bench" --url "http://127.0.0.1:$port" --token "$TOKEN" \
        --messages "$N" --concurrency "$CONCURRENCY" --database-url "$(admin_url "$db")" \
        --server-pids "$pids" --label "$name" --json $BENCH_ARGS | tee "$OUT/$name.round$round.txt"; then
        :
    else
        echo "run.sh: $name: the benchmark reported a failure in round $round" >&2
        status=1
    fi
    tail -n 1 "$OUT/$name.round$round.txt" | grep '^{' >"$OUT/$name.round$round.json" || true
    if [[ "$base" == wadash ]]; then
        "$PY" -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/metrics').read().decode())" \
            >"$OUT/$name.round$round.metrics.txt" 2>/dev/null || true
    fi
    stop_server
    mv -f "$OUT/$name.server.log" "$OUT/$name.round$round.server.log" 2>/dev/null || true
done
done

# --- each target's median round --------------------------------------------------------------
# The round with the median throughput stands for the target (the slower middle one for an
# even number of rounds): its result, text, metrics and server log become $name.json,
# $name.txt, $name.metrics.txt and $name.server.log, which the report below reads. A round
# without a result, with errors or whose stored rows failed verification counts as the
# slowest, so it is picked only when at least half the rounds failed, and the report then
# shows it failed.
# rounds.md lists every round, the ratios within each round and their median.
"$PY" - "$OUT" "$ROUNDS" $TARGETS >"$OUT/rounds.md" <<'EOF' || echo "run.sh: could not pick each target's median round" >&2
import json, os, shutil, statistics, sys
out, rounds, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def load(t, r):
    try:
        with open(os.path.join(out, f"{t}.round{r}.json")) as f:
            x = json.loads(f.read())
        float(x["callbacks_per_s"])
        return x
    except (OSError, ValueError, KeyError, TypeError):
        return None
def failed(x):
    return x is None or x.get("errors", 0) > 0 or x.get("verified") is False
runs = {t: [load(t, r) for r in range(1, rounds + 1)] for t in targets}
def rank(x):
    return -1.0 if failed(x) else x["callbacks_per_s"]
picked = {}
for t in targets:
    order = sorted(range(rounds), key=lambda i: rank(runs[t][i]))
    picked[t] = order[(rounds - 1) // 2] + 1
    for ext in ("json", "txt", "metrics.txt", "server.log"):
        src = os.path.join(out, f"{t}.round{picked[t]}.{ext}")
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(out, f"{t}.{ext}"))
if rounds > 1:
    print("Every round ran all targets in turn, each round starting one target later; each "
          "target's median round (marked *) is the one reported above; a failed round (errors, "
          "failed verification or no result) is marked !. Callbacks/s per round:\n")
    print("| target | " + " | ".join(f"round {r}" for r in range(1, rounds + 1)) + " |")
    print("|---|" + "---:|" * rounds)
    for t in targets:
        cells = [("-" if x is None else f"{x['callbacks_per_s']:.0f}") + ("!" if failed(x) else "")
                 + ("*" if i + 1 == picked[t] else "") for i, x in enumerate(runs[t])]
        print(f"| {t} | " + " | ".join(cells) + " |")
    def cpu(x):
        return ((x.get("cpu") or {}).get("us_per_callback") or {}).get("all")
    def throughput(a, b, i):
        x, y = runs[a][i], runs[b][i]
        if failed(x) or failed(y) or y["callbacks_per_s"] <= 0:
            return None
        return x["callbacks_per_s"] / y["callbacks_per_s"]
    def cpu_less(a, b, i):
        # How many times less CPU per callback a used than b.
        x, y = runs[a][i], runs[b][i]
        if failed(x) or failed(y) or not cpu(x) or not cpu(y):
            return None
        return cpu(y) / cpu(x)
    rows = []
    for a, b in (("wadash", "flask"), ("wadash", "naive"), ("wadash@require", "wadash@disable")):
        if a in targets and b in targets:
            rows.append((f"throughput {a}/{b}", lambda i, a=a, b=b: throughput(a, b, i)))
    for b in ("flask", "naive"):
        if "wadash" in targets and b in targets:
            rows.append((f"CPU per callback, {b}/wadash", lambda i, b=b: cpu_less("wadash", b, i)))
    if rows:
        print("\nRatios within each round, and their median (the ratios above compare each "
              "target's median round, which may come from different rounds):\n")
        print("| ratio | " + " | ".join(f"round {r}" for r in range(1, rounds + 1)) + " | median |")
        print("|---|" + "---:|" * (rounds + 1))
        for label, f in rows:
            vals = [f(i) for i in range(rounds)]
            ok = [v for v in vals if v is not None]
            cells = ["-" if v is None else f"{v:.2f}" for v in vals]
            cells.append(f"{statistics.median(ok):.2f}" if ok else "-")
            print(f"| {label} | " + " | ".join(cells) + " |")
EOF

# --- cross-check: every target should have stored the same rows -------------------------------
# Same seed, same bodies: the event log (sid, dedup_key, status, params) and each message's
# state must be identical across targets when everything was acknowledged.
"$PY" - "$PG_URL" $TARGETS >"$OUT/same-rows.txt" <<'EOF' || true
import sys, psycopg
base, targets = sys.argv[1], sys.argv[2:]
def rows(t):
    with psycopg.connect(f"{base}/wadash_bench_{t.replace('@', '_').replace('-', '_')}?sslmode=disable") as c:
        # Parameters compared as jsonb: wadash stores them as json text (params_json), the Flask
        # peer as jsonb (params), as the prototype did.
        ev = set(c.execute("SELECT message_sid, dedup_key, status, error_code, "
                           "COALESCE(params_json::jsonb, params)::text FROM message_events").fetchall())
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
    with open(os.path.join(out, "rounds.md")) as f:
        text = f.read().strip()
    if text:
        print("\n" + text)
except OSError:
    pass
try:
    with open(os.path.join(out, "same-rows.txt")) as f:
        lines = [l.strip() for l in f if l.strip()]
    if lines:
        print("\nStored rows compared across targets (same seed, same bodies, last round):")
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
