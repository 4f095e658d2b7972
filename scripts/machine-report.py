#!/usr/bin/env python3
"""Median tables, per case, from the JSON lines of turnload or tern-load runs labelled
"SERVER CASE REP" (scripts/bench-lab.sh, scripts/turnload-compare.sh), with the machine's CPU per
relayed packet split into the generator's and the rest, and the ratios to a reference server.

    scripts/machine-report.py results.jsonl [REFERENCE]

Why the split: the kernel handles a packet where it arrives, in the sending task's softirq on
loopback and veths, so the work of a relay inside the kernel (tern's fast path) is charged
largely to the generator, whose sends carry it. "pkts / CPU-s less generator" then flatters the
fast path without bound; the generator's own CPU per packet beside it shows how much moved
there, and "pkts / machine CPU-s" (generator included) is the figure no accounting can hide.
"""
import json
import statistics
import sys

path = sys.argv[1]
ref = sys.argv[2] if len(sys.argv) > 2 else None
runs = []
for line in open(path):
    if not line.strip().startswith("{"):
        continue
    r = json.loads(line)
    r["server"], r["case"] = r["label"].split()[:2]
    relayed = r.get("relayed_pps", 0) * r.get("send_s", 0)
    gen, nongen = r.get("gen_cpu_s"), r.get("nongen_cpu_s")
    if relayed and gen is not None and nongen is not None:
        r["machine_pkts"] = relayed / (gen + nongen) if gen + nongen > 0 else None
        r["gen_us"] = gen / relayed * 1e6
        r["nongen_us"] = max(nongen, 0) / relayed * 1e6
    runs.append(r)

COLUMNS = [
    ("pkts_per_server_cpu_s", "pkts / server CPU-s", "{:,.0f}"),
    ("pkts_per_nongen_cpu_s", "pkts / CPU-s less generator", "{:,.0f}"),
    ("machine_pkts", "pkts / machine CPU-s", "{:,.0f}"),
    ("gen_us", "generator us / pkt", "{:.2f}"),
    ("nongen_us", "rest of machine us / pkt", "{:.2f}"),
    ("relayed_pps", "relayed pps", "{:,.0f}"),
    ("loss_pct", "loss %", "{:.2f}"),
    ("rtt_us_p50", "RTT p50 us", "{:,.0f}"),
    ("rtt_us_p99", "RTT p99 us", "{:,.0f}"),
]
RATIOS = ["pkts_per_server_cpu_s", "pkts_per_nongen_cpu_s", "machine_pkts", "rtt_us_p50", "rtt_us_p99"]


def med(rs, key):
    vals = [r[key] for r in rs if isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else None


def fmt(v, f):
    return "-" if v is None else f.format(v)


def reps(server, case):
    return {r["label"].split()[2] if len(r["label"].split()) > 2 else i: r
            for i, r in enumerate(x for x in runs if x["server"] == server and x["case"] == case)}


for case in dict.fromkeys(r["case"] for r in runs):
    servers = list(dict.fromkeys(r["server"] for r in runs if r["case"] == case))
    print(f"\n### {case}\n")
    print("| server | " + " | ".join(c[1] for c in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for s in servers:
        rs = [r for r in runs if r["server"] == s and r["case"] == case]
        print(f"| {s} | " + " | ".join(fmt(med(rs, k), f) for k, _, f in COLUMNS) + " |")
    if ref not in servers:
        continue
    print(f"\nratios to {ref}, median of the per-repetition ratios (range):\n")
    print("| server | " + " | ".join(dict((c[0], c[1]) for c in COLUMNS)[k] for k in RATIOS) + " |")
    print("|---" * (len(RATIOS) + 1) + "|")
    base = reps(ref, case)
    for s in servers:
        if s == ref:
            continue
        mine, cells = reps(s, case), []
        for k in RATIOS:
            ratios = [mine[n][k] / base[n][k] for n in mine if n in base
                      and isinstance(mine[n].get(k), (int, float))
                      and isinstance(base[n].get(k), (int, float)) and base[n][k] > 0]
            cells.append(f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
                         if ratios else "-")
        print(f"| {s} | " + " | ".join(cells) + " |")
