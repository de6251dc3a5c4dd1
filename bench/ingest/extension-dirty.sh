#!/usr/bin/env bash
# Shows where the open loop's writeback bursts come from (bench/README.md, "Where the bursts'
# pages come from"): PostgreSQL 15 writes every page a table gains as zeros through the page
# cache, so a growing table leaves its whole growth dirty in the kernel even when nothing is
# evicted from shared_buffers. The kernel writes those pages when the file's oldest dirty page
# is dirty_expire_centisecs old, all at once.
#
# The script grows a fresh table by about 25 MB (less than the default 128 MB of
# shared_buffers) and checks with pg_buffercache that every page of the table is still in
# shared_buffers and dirty there: none was evicted, so no buffer write put any of them in the
# page cache. It then asks the kernel to write the table's file (fdatasync) and reports how
# much reached the disk: what the growth itself left dirty. (pg_stat_bgwriter cannot show
# this: in PostgreSQL 15 its buffers_backend also counts every page a backend adds to a
# relation, and it is updated only when the checkpointer reports.) Run it as a user that can
# read PostgreSQL's data directory (root or postgres) on the machine PostgreSQL runs on, while
# nothing else writes.
#
#   bash bench/ingest/extension-dirty.sh [device]        # device: default vda
#
# Needs python3, a superuser connection and the pg_buffercache extension (in PostgreSQL's
# contrib, part of Debian's postgresql package). Drops and recreates the database
# wadash_bench_extension.
set -euo pipefail
dev=${1:-vda}
PSQL=${PSQL:-psql -X -h 127.0.0.1 -U postgres}
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
db=wadash_bench_extension
grep -q " $dev " /proc/diskstats || { echo "extension-dirty.sh: no device $dev in /proc/diskstats" >&2; exit 1; }

$PSQL -qAt -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap '$PSQL -qAt -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
# Let the database's creation reach the disk first, so that the file measured below holds only
# what the inserts wrote.
$PSQL -qAt -d "$db" -c "CREATE EXTENSION pg_buffercache" \
    -c "CREATE TABLE grow (id bigserial, filler text)" -c "CHECKPOINT"
$PSQL -qAt -d "$db" -c "INSERT INTO grow (filler) SELECT repeat('x', 200) FROM generate_series(1, 100000)"
# The table's pages in shared_buffers, and how many of them are dirty there.
in_buffers="SELECT count(*) || ' ' || count(*) FILTER (WHERE b.isdirty) FROM pg_buffercache b
    WHERE b.relfilenode = pg_relation_filenode('grow') AND b.relforknumber = 0
      AND b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
read -r size path < <($PSQL -qAt -F ' ' -d "$db" \
    -c "SELECT pg_relation_size('grow'), current_setting('data_directory') || '/' || pg_relation_filepath('grow')")
read -r resident dirty < <($PSQL -qAt -d "$db" -c "$in_buffers")

python3 - "$path" "$dev" "$size" "$resident" "$dirty" <<'PY'
import os, sys, time
path, dev = sys.argv[1], sys.argv[2]
size, resident, dirty = (int(a) for a in sys.argv[3:6])
def sectors():
    for line in open('/proc/diskstats'):
        f = line.split()
        if f[2] == dev:
            return int(f[9])
pages = size // 8192
print(f"table grew by {size / 1e6:.1f} MB ({pages} pages); in shared_buffers: {resident} of them, "
      f"{dirty} dirty")
if dirty < pages:
    print("warning: some pages are not dirty in shared_buffers (evicted or written by a "
          "checkpoint): the figure below may include buffer writes")
fd = os.open(path, os.O_RDONLY)
s0, t0 = sectors(), time.monotonic()
os.fdatasync(fd)
t1, s1 = time.monotonic(), sectors()
os.close(fd)
print(f"fdatasync of its file wrote {(s1 - s0) * 512 / 1e6:.1f} MB to {dev} in {(t1 - t0) * 1000:.0f} ms "
      "(what the growth had left dirty in the page cache)")
PY
