#!/usr/bin/env python3
"""Median tables and ratios from scripts/bench-compare.sh's JSON lines (one per tern-load run),
as the Markdown that goes into BENCHMARKS.md."""
import datetime
import json
import platform
import re
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
STREAM_CASES = [
    ("t160", "TCP: ChannelData 160 B, closed loop"),
    ("t160r", f"TCP: ChannelData 160 B, fixed {int(rate):,} packets/s"),
    ("tls160", "TLS: ChannelData 160 B, closed loop"),
    ("tls160r", f"TLS: ChannelData 160 B, fixed {int(rate):,} packets/s"),
]
SERVERS = [("uring", "tern io_uring"), ("base", "tern io_uring, BASE build"), ("epoll", "tern epoll"),
           ("coturn", "coturn 4.6.1")]
FORWARD = ("forward", "`turnload forward` (raw UDP)")
TL160 = f"ChannelData 160 B, closed loop ({allocs} allocations), turnload"


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
HEAD = ("| relayed pkts / server CPU-s | pkts / machine CPU-s less generator | relayed pps | RTT p50 / p99 us | "
        "server CPU s | loss % | generator CPU s | other CPU s |")


def figures(rs):
    """The cells every traffic table shares, medians over the repetitions."""
    return (f"**{fmt(med(rs, 'pkts_per_server_cpu_s'))}** | {fmt(med(rs, 'pkts_per_nongen_cpu_s'))} | "
            f"{fmt(med(rs, 'relayed_pps'))} | {fmt(med(rs, 'rtt_us_p50'))} / {fmt(med(rs, 'rtt_us_p99'))} | "
            f"{fmt(med(rs, 'server_cpu_s'), 2)} | {fmt(med(rs, 'loss_pct'), 3)} | {fmt(med(rs, 'gen_cpu_s'), 2)} | "
            f"{fmt(med(rs, 'other_cpu_s'), 2)} |")


def traffic_table(title, intro, cases):
    if not any(pick(server, case) for case, _ in cases for server, _ in SERVERS):
        return
    w(f"### {title}")
    w("")
    out.extend(intro)
    w("| traffic | server " + HEAD)
    w("|---|---|---|---|---|---|---|---|---|---|")
    for case, name_of_case in cases:
        for server, name in SERVERS:
            rs = pick(server, case)
            if rs:
                w(f"| {name_of_case} | {name} | {figures(rs)}")
        w("")


traffic_table("Relayed packets per server CPU-second", [
    "\"pkts / machine CPU-s less generator\" divides by all busy CPU of the machine (/proc/stat) less",
    "tern-load's own: the server plus kernel work outside its threads, plus whatever else ran.",
    "",
], CASES)
traffic_table(f"Clients over TCP and TLS ({allocs} allocations, each on its own connection)", [
    "ChannelData padded to 4 bytes on the stream (RFC 8656 §12.5); the relay leg to the echo peers",
    "is UDP. TLS with the run's self-signed certificate (not verified by tern-load).",
    "",
], STREAM_CASES)
tl = [(server, name) for server, name in SERVERS + [FORWARD] if pick(server, "tl160")]
if tl:
    w(f"### Cross-check with turnload, and the kernel-path forwarder: ChannelData 160 B closed loop, {allocs} allocations")
    w("")
    w("The same traffic from the independent generator (`turnload run`, kernel receive timestamps);")
    w("`turnload forward` gets it as raw UDP: no TURN, one relay socket per client, one `send` per")
    w("datagram.")
    w("")
    w("| server " + HEAD)
    w("|---|---|---|---|---|---|---|---|---|")
    for server, name in tl:
        w(f"| {name} | {figures(pick(server, 'tl160'))}")
    w("")
ratios = []


def ratio_row(title, case, against, key, target, invert=False):
    c = pick(against, case)
    if not c:
        return
    ratios.append(f"| {title} | {ratio(pick('uring', case), c, key, invert)} | {ratio(pick('epoll', case), c, key, invert)} | {target} |")


for case, title in CASES + [("tl160", TL160)]:
    ratio_row(f"{title}: pkts per CPU-s, tern / coturn", case, "coturn", "pkts_per_server_cpu_s", ">= 3.0x")
    ratio_row(f"{title}: pkts per machine CPU-s less generator, tern / coturn", case, "coturn",
              "pkts_per_nongen_cpu_s", "-")
for case, title in STREAM_CASES:
    ratio_row(f"{title}: pkts per CPU-s, tern / coturn", case, "coturn", "pkts_per_server_cpu_s", "-")
    ratio_row(f"{title}: pkts per machine CPU-s less generator, tern / coturn", case, "coturn",
              "pkts_per_nongen_cpu_s", "-")
ratio_row(f"{TL160}: pkts per CPU-s, tern / `turnload forward`", "tl160", "forward", "pkts_per_server_cpu_s", ">= 1.5x")
ratio_row(f"p99 RTT at {int(rate):,} pps, coturn / tern (higher is better)", "c160r", "coturn", "rtt_us_p99",
          ">= 2.0x (p99 <= 0.5x coturn)", invert=True)
ratio_row(f"allocations per second ({int(setup_n):,} allocations), tern / coturn", "setup", "coturn", "alloc_per_s", ">= 5.0x")
if ratios:
    w("### Ratios")
    w("")
    w("| ratio | tern io_uring | tern epoll | target |")
    w("|---|---|---|---|")
    out.extend(ratios)
    w("")
if any(pick(server, "setup") for server, _ in SERVERS):
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
metas = {r["server"]: r for r in runs if r["case"] == "bigmeta"}
if metas:
    m0 = next(iter(metas.values()))
    w("")
    w(f"### {int(big_n):,} concurrent allocations (ChannelData 160 B at {int(rate):,} pps in total)")
    w("")
    nproc, ips = m0["processes"], m0["ips_per_process"]
    if nproc == 1:
        w(f"One tern process on {ips} listening/relay IPs of 127.0.0.0/8 and one tern-load process:")
        w(f"RLIMIT_NOFILE ({m0['fd_limit']:,}) allows it. \"held\" is the server's `turn_total_allocations`")
        w("gauge when the data phase starts and half-way through it.")
    else:
        own = "its own listening/relay IP" if ips == 1 else f"its own {ips} listening/relay IPs"
        w(f"{nproc} tern processes (each on {own} of 127.0.0.0/8) and")
        w(f"{nproc} tern-load processes, one per tern, all at once: RLIMIT_NOFILE is {m0['fd_limit']:,}")
        w("(hard) here, and tern plans two descriptors per allocation, so the script gives one process")
        w(f"at most {m0['per_process_cap']:,} (limit / 2 - 1,000). The generators meet after setup and start their data phases")
        w("together; \"held\" is the sum of the servers' `turn_total_allocations` gauges when they")
        w("start and half-way through. RTT p99 is the worst of the per-process p99s (an upper bound")
        w("for the p99 of all packets together); p50 is the median of the per-process p50s.")
    per_ip = -(-int(big_n) // (nproc * ips))
    per_client_ip = -(-int(big_n) // m0["client_ips"])
    lo, hi = (int(x) for x in m0["relay_ports"].split("-"))
    w(f"Ports: relay ports {m0['relay_ports']} ({hi - lo + 1:,}) on each of {nproc * ips} relay IPs, at most")
    w(f"{per_ip:,} used per IP; clients on {m0['client_ips']} IP{'s' if m0['client_ips'] > 1 else ''} 127.0.1.x with {m0['ephemeral_ports']:,}")
    w(f"ephemeral ports each, at most {per_client_ip:,} used per IP.")
    w("")
    w("| server | processes | ok / failed | held at start / mid data | allocations/s | RSS before / after setup MiB (all tern processes) | RSS per allocation B | relayed pps | RTT p50 / p99 us | loss % | pkts / server CPU-s |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    mib = lambda v: f"{v / 1048576:,.1f}"
    for server, name in SERVERS:
        m = metas.get(server)
        parts = [r for r in runs if r["server"] == server and r["case"].startswith("bigpart")]
        if not m or not parts:
            continue
        tot = lambda k: sum(r.get(k) or 0 for r in parts)
        ok, failed = tot("setup_ok"), tot("setup_failed")
        fails = {}
        for r in parts:
            for k, v in (r.get("failures") or {}).items():
                fails[k] = fails.get(k, 0) + v
        before, after = tot("rss_before"), tot("rss_after_setup")
        per_alloc = (after - before) / ok if ok else None
        setup_s = max(r["setup_s"] for r in parts)
        sent, back = tot("sent"), tot("received")
        loss = 100.0 * (sent - back) / sent if sent else None
        cpu = tot("server_cpu_s")
        traversals = tot("peer_received") + back
        p50 = statistics.median(r["rtt_us_p50"] for r in parts)
        p99 = max(r["rtt_us_p99"] for r in parts)
        w(f"| {name} | {len(parts)} x {ips} IP{'s' if ips > 1 else ''} | {ok:,} / {failed:,}{f' {fails}' if fails else ''} | "
          f"**{m['held_at_go']:,}** / {m['held_mid_data']:,} | {ok / setup_s if setup_s else 0:,.0f} | "
          f"{mib(before)} / {mib(after)} | **{fmt(per_alloc)}** | {tot('relayed_pps'):,.0f} | "
          f"{fmt(p50)} / **{fmt(p99)}** | {fmt(loss, 3)} | {fmt(traversals / cpu if cpu else None)} |")
w("")
print(re.sub(r"\n{3,}", "\n\n", "\n".join(out)))
