#!/usr/bin/env python3
"""A relay-only WebRTC data channel through a TURN server, with aiortc.

The interop tests' second, independent WebRTC stack (next to headless Chromium): aiortc's ICE
(aioice) has its own TURN client, so tern is checked against an implementation that shares no
code with libwebrtc.

Two RTCPeerConnections in one process, both with the TURN server(s) and
``iceTransportPolicy=RTCIceTransportPolicy.RELAY``; aiortc hands that to aioice as
``TransportPolicy.RELAY``, which gathers no host or server-reflexive candidates at all (only the
TURN allocation), so no candidate filtering is needed. pc1 opens a data channel, pc2 echoes every
message; pc1 sends N messages and counts the echoes. One JSON line goes to stdout:

    {"echoes": n, "sent": N, "local_candidates": [...], "remote_candidates": [...],
     "selected": {"local": "relay", "local_addr": "IP:PORT", "remote": "relay",
                  "remote_addr": "IP:PORT", "relay_protocol": "udp|tcp|tls"} or null,
     "error": null or "text"}

Exit status 0 when every message came back over a relay/relay pair, 1 otherwise (timeout and
exceptions included; the JSON line is printed anyway).

What aiortc supports: ``turn:H:P?transport=udp``, ``turn:H:P?transport=tcp`` and
``turns:H:P?transport=tcp`` (TLS over TCP); no DTLS (``turns`` over udp). It uses only the first
usable TURN URL (one TURN server per connection); further ``--url``s are passed along but ignored.
For ``turns:`` certificate verification is off (tern's test certificates are self-signed): aiortc
only passes ``turn_ssl=True``, so each connection's aioice ``Connection.turn_ssl`` is replaced,
before gathering, by an ``ssl.SSLContext`` without verification (aioice hands it on to
``loop.create_connection(ssl=...)``). The selected pair is read from aioice's nominated pair
(aiortc has no public getter for it).
"""

import argparse
import asyncio
import json
import ssl
import sys

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
)


def ice_connection(pc):
    """The aioice Connection behind pc's (single, bundled) data-channel transport."""
    return pc.sctp.transport.transport.iceGatherer._connection


def no_verify(pc):
    """turns: without certificate verification (see the docstring)."""
    conn = ice_connection(pc)
    if conn.turn_ssl is True:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn.turn_ssl = ctx


def candidates(sdp):
    return [line[2:] for line in sdp.splitlines() if line.startswith("a=candidate:")]


def selected(pc):
    if pc.sctp is None:
        return None
    conn = ice_connection(pc)
    pair = conn._nominated.get(1)
    if pair is None:
        return None
    local, remote = pair.local_candidate, pair.remote_candidate
    protocol = "udp" if conn.turn_transport == "udp" else ("tls" if conn.turn_ssl else "tcp")
    return {
        "local": local.type,
        "local_addr": f"{local.host}:{local.port}",
        "remote": remote.type,
        "remote_addr": f"{remote.host}:{remote.port}",
        "relay_protocol": protocol if local.type == "relay" else None,
    }


async def exchange(pc1, pc2, messages, result):
    channel = pc1.createDataChannel("echo")
    opened, done, failed = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @pc2.on("datachannel")
    def on_datachannel(remote):
        remote.on("message", remote.send)

    @channel.on("open")
    def on_open():
        opened.set()

    @channel.on("message")
    def on_message(_):
        result["echoes"] += 1
        if result["echoes"] == messages:
            done.set()

    def watch(pc):
        @pc.on("connectionstatechange")
        def on_state():
            if pc.connectionState == "failed":
                failed.set()

    watch(pc1)
    watch(pc2)

    no_verify(pc1)
    await pc1.setLocalDescription(await pc1.createOffer())
    await pc2.setRemoteDescription(pc1.localDescription)
    no_verify(pc2)
    await pc2.setLocalDescription(await pc2.createAnswer())
    await pc1.setRemoteDescription(pc2.localDescription)
    result["local_candidates"] = candidates(pc1.localDescription.sdp)
    result["remote_candidates"] = candidates(pc2.localDescription.sdp)
    if not result["local_candidates"] or not result["remote_candidates"]:
        raise RuntimeError("no relay candidate gathered (the TURN allocation failed)")

    async def first(event):
        """Waits for `event`, or raises as soon as either connection fails."""
        waits = [asyncio.ensure_future(e.wait()) for e in (event, failed)]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        if not event.is_set():
            raise RuntimeError("ICE connection failed")

    await first(opened)
    result["selected"] = selected(pc1)
    for i in range(messages):
        channel.send(f"tern-{i}")
    await first(done)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", action="append", required=True, help="turn:/turns: URL")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds")
    args = parser.parse_args()

    result = {
        "echoes": 0,
        "sent": args.messages,
        "local_candidates": [],
        "remote_candidates": [],
        "selected": None,
        "error": None,
    }
    config = RTCConfiguration(
        iceServers=[RTCIceServer(urls=args.url, username=args.user, credential=args.password)],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
    )
    pc1, pc2 = RTCPeerConnection(config), RTCPeerConnection(config)
    try:
        await asyncio.wait_for(exchange(pc1, pc2, args.messages, result), args.timeout)
    except asyncio.TimeoutError:
        result["error"] = f"timeout after {args.timeout} s"
    except Exception as e:  # noqa: BLE001 -- reported in the JSON, the exit status says it failed
        result["error"] = f"{type(e).__name__}: {e}"
    if result["selected"] is None:
        result["selected"] = selected(pc1)
    try:
        await asyncio.wait_for(asyncio.gather(pc1.close(), pc2.close()), 5)
    except Exception:  # noqa: BLE001 -- closing is best effort
        pass
    print(json.dumps(result), flush=True)
    pair = result["selected"] or {}
    ok = (
        result["error"] is None
        and result["echoes"] == args.messages
        and pair.get("local") == "relay"
        and pair.get("remote") == "relay"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
