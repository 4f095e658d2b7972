#!/usr/bin/env python3
"""Median tables and ratios from scripts/bench-compare.sh's JSON lines (one per tern-load run),
as the Markdown that goes into BENCHMARKS.md."""
import datetime
import os
import json
import platform
import statistics
import subprocess
import sys

path, reps, dur, allocs, rate, setup_n, big_n = sys.argv[1:8]
runs = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
for r in runs:
    r["server"], r["case"] = r["label"].split(" ", 1)

CASES = [
    ("c160", f"ChannelData 160 B, closed loop ({allocs} allocations)"),
    ("c160r", f"ChannelData 160 B, fixed {int(rate):,} packets/s"),
    ("c1200", "ChannelData 1200 B, closed loop"),
    ("s160", "Send indications 160 B, closed loop"),
]
SERVERS = [("uring", "tern io_uring"), ("epoll", "tern epoll"), ("coturn", "coturn 4.6.1")]


def pick(server, case):
    return [r for r in runs if r["server"] == server and r["case"] == case]


def med(rs, key):
    vals = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def ratio(a, b, key, invert=False):
    """Median over repetitions of the per-repetition ratio a/b (runs paired in order)."""
    pairs = [(x.get(key), y.get(key)) for x, y in zip(a, b)]
    rs = [(y / x if invert else x / y) for x, y in pairs if x and y]
    if not rs:
        return "-"
    return f"{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"


def machine():
    model = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = int(open("/proc/meminfo").readline().split()[1]) // (1024 * 1024)
    cpus = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    coturn = subprocess.run(["turnserver", "--version"], capture_output=True, text=True)
    version = (coturn.stdout or coturn.stderr).strip().splitlines()
    return f"{cpus} vCPU \"{model}\", {mem} GiB RAM, Linux {platform.release()}; coturn {version[-1] if version else '?'}"


out = []
w = out.append
w(f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}.")
w(f"{reps} repetitions per cell, {dur} s data phase, medians; ratios are the median of the")
w("per-repetition ratios (the runs being compared ran back to back), with their range.")
w("")
w("### Relayed packets per server CPU-second")
w("")
w("| traffic | server | relayed pkts / server CPU-s | relayed pps | RTT p50 / p99 us | server CPU s | loss % | generator CPU s | other CPU s |")
w("|---|---|---|---|---|---|---|---|---|")
for case, title in CASES:
    for server, name in SERVERS:
        rs = pick(server, case)
        if not rs:
            continue
        w(f"| {title} | {name} | **{fmt(med(rs, 'pkts_per_server_cpu_s'))}** | {fmt(med(rs, 'relayed_pps'))} | "
          f"{fmt(med(rs, 'rtt_us_p50'))} / {fmt(med(rs, 'rtt_us_p99'))} | {fmt(med(rs, 'server_cpu_s'), 2)} | "
          f"{fmt(med(rs, 'loss_pct'), 3)} | {fmt(med(rs, 'gen_cpu_s'), 2)} | {fmt(med(rs, 'other_cpu_s'), 2)} |")
w("")
w("### Ratios against coturn")
w("")
w("| traffic | tern io_uring / coturn | tern epoll / coturn | target |")
w("|---|---|---|---|")
for case, title in CASES:
    c = pick("coturn", case)
    w(f"| {title}: pkts per CPU-s | {ratio(pick('uring', case), c, 'pkts_per_server_cpu_s')} | "
      f"{ratio(pick('epoll', case), c, 'pkts_per_server_cpu_s')} | >= 3.0x |")
c = pick("coturn", "c160r")
w(f"| p99 RTT at {int(rate):,} pps (coturn / tern: higher is better) | {ratio(pick('uring', 'c160r'), c, 'rtt_us_p99', invert=True)} | "
  f"{ratio(pick('epoll', 'c160r'), c, 'rtt_us_p99', invert=True)} | >= 2.0x (p99 <= 0.5x coturn) |")
c = pick("coturn", "setup")
w(f"| allocations per second ({int(setup_n):,} allocations) | {ratio(pick('uring', 'setup'), c, 'alloc_per_s')} | "
  f"{ratio(pick('epoll', 'setup'), c, 'alloc_per_s')} | >= 5.0x |")
w("")
w(f"### Setup of {int(setup_n):,} allocations (fresh server each run)")
w("")
w("| server | ok / failed | allocations/s | per-client setup p50 / p99 ms | server CPU per allocation us | RSS per allocation B | deallocated |")
w("|---|---|---|---|---|---|---|")
for server, name in SERVERS:
    rs = pick(server, "setup")
    if not rs:
        continue
    w(f"| {name} | {fmt(med(rs, 'setup_ok'))} / {fmt(med(rs, 'setup_failed'))} | **{fmt(med(rs, 'alloc_per_s'))}** | "
      f"{fmt(med(rs, 'setup_ms_p50'))} / {fmt(med(rs, 'setup_ms_p99'))} | {fmt(med(rs, 'server_cpu_us_per_alloc'))} | "
      f"**{fmt(med(rs, 'rss_per_alloc_bytes'))}** | {fmt(med(rs, 'dealloc_ok'))} |")
big = [r for r in runs if r["case"] == "big"]
if big:
    w("")
    w(f"### {int(big_n):,} concurrent allocations (6 listening/relay IPs on 127.0.0.0/8, ChannelData 160 B at {int(rate):,} pps)")
    if int(big_n) < 100_000:
        limit = os.environ.get("BENCH_FD_LIMIT", "?")
        w("")
        w(f"(Not 100,000: RLIMIT_NOFILE is {limit} here and cannot be raised; every allocation needs a")
        w("descriptor in the generator and one or two in the server, which plans for two.)")
    w("")
    w("| server | ok / failed | allocations/s | RSS before / after setup MiB | RSS per allocation B | relayed pps | RTT p50 / p99 us | loss % | pkts / server CPU-s |")
    w("|---|---|---|---|---|---|---|---|---|")
    for r in big:
        mib = lambda v: f"{v / 1048576:,.1f}" if v else "-"
        w(f"| tern {r['server']} | {r['setup_ok']:,} / {r['setup_failed']:,} {r['failures'] or ''} | {r['alloc_per_s']:,.0f} | "
          f"{mib(r['rss_before'])} / {mib(r['rss_after_setup'])} | **{fmt(r['rss_per_alloc_bytes'])}** | {r['relayed_pps']:,.0f} | "
          f"{r['rtt_us_p50']:,} / **{r['rtt_us_p99']:,}** | {r['loss_pct']:.3f} | {fmt(r['pkts_per_server_cpu_s'])} |")
w("")
print("\n".join(out))
