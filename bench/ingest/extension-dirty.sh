#!/usr/bin/env bash
# Shows where the open loop's writeback bursts come from (bench/README.md, "Where the bursts'
# pages come from"): PostgreSQL 15 writes every page a table gains as zeros through the page
# cache, so a growing table leaves its whole growth dirty in the kernel even when nothing is
# evicted from shared_buffers. The kernel writes those pages when the file's oldest dirty page
# is dirty_expire_centisecs old, all at once.
#
# The script grows a fresh table by about 25 MB (less than the default 128 MB of
# shared_buffers, so no page is evicted), checks that the backends and the background writer
# wrote no buffer meanwhile, then asks the kernel to write the table's file (fdatasync) and
# reports how much reached the disk. Run it as a user that can read PostgreSQL's data
# directory (root or postgres) on the machine PostgreSQL runs on, while nothing else writes.
#
#   bash bench/ingest/extension-dirty.sh [device]        # device: default vda
#
# Needs python3, and PostgreSQL 14 to 16 (pg_stat_bgwriter's buffer counters). Drops and
# recreates the database wadash_bench_extension.
set -euo pipefail
dev=${1:-vda}
PSQL=${PSQL:-psql -h 127.0.0.1 -U postgres}
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
db=wadash_bench_extension
grep -q " $dev " /proc/diskstats || { echo "extension-dirty.sh: no device $dev in /proc/diskstats" >&2; exit 1; }

$PSQL -qAt -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap '$PSQL -qAt -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
# Let the database's creation reach the disk first, so that the file measured below holds only
# what the inserts wrote.
$PSQL -qAt -d "$db" -c "CREATE TABLE grow (id bigserial, filler text)" -c "CHECKPOINT"

counters="SELECT buffers_backend + buffers_clean + buffers_checkpoint FROM pg_stat_bgwriter"
before=$($PSQL -qAt -d "$db" -c "$counters")
$PSQL -qAt -d "$db" -c "INSERT INTO grow (filler) SELECT repeat('x', 200) FROM generate_series(1, 100000)"
after=$($PSQL -qAt -d "$db" -c "$counters")
read -r size path < <($PSQL -qAt -F ' ' -d "$db" \
    -c "SELECT pg_relation_size('grow'), current_setting('data_directory') || '/' || pg_relation_filepath('grow')")

python3 - "$path" "$dev" "$size" "$((after - before))" <<'PY'
import os, sys, time
path, dev, size, buffers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def sectors():
    for line in open('/proc/diskstats'):
        f = line.split()
        if f[2] == dev:
            return int(f[9])
fd = os.open(path, os.O_RDONLY)
s0, t0 = sectors(), time.monotonic()
os.fdatasync(fd)
t1, s1 = time.monotonic(), sectors()
os.close(fd)
print(f"table grew by {size / 1e6:.1f} MB; buffers written meanwhile by backends, background writer "
      f"and checkpointer: {buffers}")
print(f"fdatasync of its file wrote {(s1 - s0) * 512 / 1e6:.1f} MB to {dev} in {(t1 - t0) * 1000:.0f} ms "
      "(what the growth had left dirty in the page cache)")
PY
