"""Drives one broadcast through a running wadash and measures it (see run.sh).

Standard library only. Talks to wadash's JSON API, reads the built-in simulator's message
list (its `wadash_received_at` field has microseconds), the server's /proc entry and
PostgreSQL's statistics views through psql.
"""

import argparse
import base64
import hashlib
import json
import subprocess
import time
import urllib.request
from datetime import datetime


def api(base, token, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + "/api/v1" + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read() or b"null")


def psql(db, sql):
    return subprocess.run(["psql", db, "-Atqc", sql], check=True, capture_output=True, text=True).stdout.strip()


def db_counters(db):
    row = psql(
        db,
        "select xact_commit, tup_inserted, tup_updated, tup_fetched, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint "
        "from pg_stat_database where datname = current_database()",
    )
    return [int(x) for x in row.split("|")]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / 100.0


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def simulator_times(sim_url, account, token):
    """Every message the simulator took: its receive time, sorted."""
    auth = "Basic " + base64.b64encode(f"{account}:{token}".encode()).decode()
    url = f"{sim_url}/2010-04-01/Accounts/{account}/Messages.json?PageSize=1000"
    times = []
    while url:
        req = urllib.request.Request(url)
        req.add_header("Authorization", auth)
        with urllib.request.urlopen(req, timeout=60) as resp:
            page = json.loads(resp.read())
        for m in page["messages"]:
            times.append(datetime.fromisoformat(m["wadash_received_at"].replace("Z", "+00:00")).timestamp())
        nxt = page.get("next_page_uri")
        url = sim_url + nxt if nxt else None
    times.sort()
    return times


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sim-token", required=True)
    p.add_argument("--sim-url", required=True)
    p.add_argument("--sim-pid", type=int, required=True)
    a = p.parse_args()

    sender = "whatsapp:+14155550100"
    api(a.url, a.token, "POST", "/senders", {"address": sender, "label": "bench", "mps": a.rate})
    numbers = [f"+9198{i:08d}" for i in range(a.n)]
    counters0, cpu0, t0 = db_counters(a.db), cpu_seconds(a.pid), time.time()
    sim_cpu0 = cpu_seconds(a.sim_pid)
    created = api(a.url, a.token, "POST", "/broadcasts",
                  {"name": "bench", "body": "Bench message", "sender": sender, "audience": {"numbers": numbers}})
    queued_in = time.time() - t0
    bid = created["id"]
    rss = []
    while True:
        time.sleep(5)
        rss.append(rss_mib(a.pid))
        b = api(a.url, a.token, "GET", f"/broadcasts/{bid}")
        if b["status"] in ("completed", "canceled"):
            break
    # Let the last callbacks arrive, so the cost per message includes them.
    time.sleep(8)
    counters1, cpu1 = db_counters(a.db), cpu_seconds(a.pid)
    wall = time.time() - t0

    account = "AC" + hashlib.sha256(a.sim_token.encode()).hexdigest()[:32]
    times = simulator_times(a.sim_url, account, a.sim_token)
    sim_cpu = cpu_seconds(a.sim_pid)

    n = len(times)
    span = times[-1] - times[0] if n > 1 else 0
    rate = (n - 1) / span if span else 0
    worst, j = 0, 0
    for i in range(n):
        while times[i] - times[j] >= 1.0:
            j += 1
        worst = max(worst, i - j + 1)
    d = [c1 - c0 for c0, c1 in zip(counters0, counters1)]
    cpu = cpu1 - cpu0
    counts = b["counts"]
    print(f"## Broadcast: {a.n:,} recipients at {a.rate:g} msg/s (simulator)\n")
    print("| Measure | Value |")
    print("| --- | --- |")
    print(f"| queued (preview + insert of every recipient) | {queued_in:.1f} s |")
    print(f"| messages the simulator received | {n:,} |")
    print(f"| rate, first to last message | **{rate:.1f} msg/s** ({(rate / a.rate - 1) * 100:+.2f} % of {a.rate:g}) |")
    print(f"| most messages in any one second | {worst} |")
    print(f"| final counts | {json.dumps(counts)} |")
    print(f"| wadash CPU per message (send, record, ~3 callbacks ingested) | {cpu / max(n, 1) * 1e6:.0f} µs ({cpu:.1f} s in {wall:.0f} s) |")
    print(f"| simulator CPU per message (its own process) | {(sim_cpu - sim_cpu0) / max(n, 1) * 1e6:.0f} µs |")
    print(f"| database per message: commits / rows inserted / rows updated / rows read | "
          f"{d[0] / max(n, 1):.1f} / {d[1] / max(n, 1):.1f} / {d[2] / max(n, 1):.1f} / {d[3] / max(n, 1):.0f} |")
    print(f"| WAL per message | {d[4] / max(n, 1) / 1024:.1f} KiB |")
    quarter = max(len(rss) // 4, 1)
    marks = " / ".join(f"{x:.0f}" for x in rss[::quarter])
    print(f"| server memory (RSS) every 5 s: min / max | {min(rss):.0f} / {max(rss):.0f} MiB (over the run: {marks}) |")


if __name__ == "__main__":
    main()
