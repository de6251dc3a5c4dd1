#!/usr/bin/env bash
# Samples, once a second until stopped, what the disk and PostgreSQL's writers did: sectors
# written and write time of one block device (/proc/diskstats), dirty and writeback memory
# (/proc/meminfo), WAL bytes and full-page images (pg_stat_wal), and buffers written by the
# checkpointer, the background writer and the backends themselves (pg_stat_bgwriter), and the
# whole machine's CPU time in clock ticks (/proc/stat: user incl. nice, system incl. irq and
# softirq, iowait, idle, steal).
# Counters are cumulative: take differences between rows. Used to match an open loop's late
# seconds with the kernel's writeback bursts (bench/README.md, "A slow hour").
#
#   bench/ingest/sample-disk.sh out.csv [device] &   # device: default vda
#   ... run the benchmark ...; kill %1
#
# Needs PostgreSQL 14 to 16 (pg_stat_wal; PostgreSQL 17 moved the backends' and checkpointer's
# counters out of pg_stat_bgwriter). A sample whose query fails keeps its disk columns and
# leaves the PostgreSQL ones empty. pg_t is the server's clock when the query ran: opening the
# connection can take long during the very stalls being measured.
#
# Note: /proc/<pid>/io's write_bytes is no measure of disk writes on kernels with large
# folios (it counts the whole folio a small write dirties); read the device's counters.
set -euo pipefail
out=${1:?usage: sample-disk.sh out.csv [device]}
dev=${2:-vda}
PSQL=${PSQL:-psql -h 127.0.0.1 -U postgres -d postgres}
grep -q " $dev " /proc/diskstats || { echo "sample-disk.sh: no device $dev in /proc/diskstats" >&2; exit 1; }
echo "t,sectors_written,write_ms,dirty_kb,writeback_kb,pg_t,wal_bytes,wal_fpi,buffers_checkpoint,buffers_clean,buffers_backend,checkpoints,cpu_user,cpu_system,cpu_iowait,cpu_idle,cpu_steal" >"$out"
while true; do
    t=$(date +%s.%N)
    read -r sw wms < <(awk -v d="$dev" '$3==d {print $10, $11}' /proc/diskstats)
    dirty=$(awk '/^Dirty:/ {print $2}' /proc/meminfo)
    wb=$(awk '/^Writeback:/ {print $2}' /proc/meminfo)
    pg=$($PSQL -Atc "SELECT extract(epoch FROM clock_timestamp()), w.wal_bytes, w.wal_fpi, b.buffers_checkpoint, b.buffers_clean,
                            b.buffers_backend, b.checkpoints_timed + b.checkpoints_req
                     FROM pg_stat_wal w, pg_stat_bgwriter b" 2>/dev/null | tr '|' ',') || pg=",,,,,,"
    cpu=$(awk '$1=="cpu" {print $2+$3 "," $4+$7+$8 "," $6 "," $5 "," $9}' /proc/stat)
    echo "$t,$sw,$wms,$dirty,$wb,$pg,$cpu" >>"$out"
    sleep 1
done
