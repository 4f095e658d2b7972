//! Renders the registry in the Prometheus text exposition format 0.0.4, with coturn's metric
//! names, types and labels (coturn 4.6.1 `prom_server.c`, plus the later coturn counters) and
//! tern's own metrics under `tern_`.

use std::fmt::Write;

use super::publish::Registry;
use super::users::Traffic;
use crate::fleet::FleetStats;
use crate::turn::{Counters, DropReason};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Every metric tern exposes: `(name, type, help)`. Tests and the dashboard check against it.
pub const METRICS: &[(&str, Kind, &str)] = &[
    (
        "stun_binding_request",
        Kind::Counter,
        "STUN Binding requests received",
    ),
    (
        "stun_binding_response",
        Kind::Counter,
        "STUN Binding success responses sent",
    ),
    (
        "stun_binding_error",
        Kind::Counter,
        "STUN Binding error responses sent",
    ),
    (
        "turn_traffic_rcvp",
        Kind::Counter,
        "Packets received from clients, by realm (and user)",
    ),
    (
        "turn_traffic_rcvb",
        Kind::Counter,
        "Bytes received from clients, by realm (and user)",
    ),
    (
        "turn_traffic_sentp",
        Kind::Counter,
        "Packets sent to clients, by realm (and user)",
    ),
    (
        "turn_traffic_sentb",
        Kind::Counter,
        "Bytes sent to clients, by realm (and user)",
    ),
    (
        "turn_traffic_peer_rcvp",
        Kind::Counter,
        "Packets received from peers, by realm (and user)",
    ),
    (
        "turn_traffic_peer_rcvb",
        Kind::Counter,
        "Bytes received from peers, by realm (and user)",
    ),
    (
        "turn_traffic_peer_sentp",
        Kind::Counter,
        "Packets sent to peers, by realm (and user)",
    ),
    (
        "turn_traffic_peer_sentb",
        Kind::Counter,
        "Bytes sent to peers, by realm (and user)",
    ),
    (
        "turn_total_traffic_rcvp",
        Kind::Counter,
        "Packets received from clients",
    ),
    (
        "turn_total_traffic_rcvb",
        Kind::Counter,
        "Bytes received from clients",
    ),
    (
        "turn_total_traffic_sentp",
        Kind::Counter,
        "Packets sent to clients",
    ),
    (
        "turn_total_traffic_sentb",
        Kind::Counter,
        "Bytes sent to clients",
    ),
    (
        "turn_total_traffic_peer_rcvp",
        Kind::Counter,
        "Packets received from peers",
    ),
    (
        "turn_total_traffic_peer_rcvb",
        Kind::Counter,
        "Bytes received from peers",
    ),
    (
        "turn_total_traffic_peer_sentp",
        Kind::Counter,
        "Packets sent to peers",
    ),
    (
        "turn_total_traffic_peer_sentb",
        Kind::Counter,
        "Bytes sent to peers",
    ),
    (
        "turn_total_allocations",
        Kind::Gauge,
        "Current allocations by client transport",
    ),
    (
        "turn_packet_processed",
        Kind::Counter,
        "Packets received from clients and peers",
    ),
    (
        "turn_packet_dropped",
        Kind::Counter,
        "Packets dropped: malformed, or no allocation, permission or policy",
    ),
    (
        "turn_unauthenticated_401_requests",
        Kind::Counter,
        "Requests that required a 401 answer",
    ),
    (
        "turn_unauthenticated_401_responses",
        Kind::Counter,
        "401 answers sent",
    ),
    (
        "turn_unauthenticated_401_dropped_responses",
        Kind::Counter,
        "401 answers suppressed by the rate limit",
    ),
    (
        "tern_fast_path_packets_total",
        Kind::Counter,
        "ChannelData datagrams relayed by the in-kernel fast path, by direction",
    ),
    (
        "tern_fast_path_bytes_total",
        Kind::Counter,
        "Payload bytes relayed by the in-kernel fast path, by direction",
    ),
    (
        "tern_fast_path_xdp_packets_total",
        Kind::Counter,
        "Datagrams of tern_fast_path_packets_total relayed at XDP, before the kernel made an skb",
    ),
    (
        "tern_redirects_total",
        Kind::Counter,
        "Allocates answered 300 Try Alternate (alternate-server)",
    ),
    (
        "tern_malformed_packets_total",
        Kind::Counter,
        "Malformed packets dropped without an answer",
    ),
    (
        "tern_dropped_packets_total",
        Kind::Counter,
        "Well-formed packets dropped (no allocation, no permission, policy)",
    ),
    (
        "tern_drops_total",
        Kind::Counter,
        "Input dropped or refused, by reason (malformed STUN or ChannelData, no allocation, \
         channel or permission, bandwidth, disabled, rate limited, shed under overload, dropped \
         by the kernel at a full listener queue, TLS client certificate refused)",
    ),
    (
        "tern_shard_packets_total",
        Kind::Counter,
        "Packets received from clients and peers, per shard",
    ),
    (
        "tern_allocation_setup_seconds",
        Kind::Histogram,
        "Time to answer a successful Allocate",
    ),
    (
        "tern_fleet_events_total",
        Kind::Counter,
        "Fleet quota events (redis-statsdb): allocations counted, refused by the fleet's quotas, \
         admitted or refused while Redis was unreachable, foreign keys seen, Redis failures",
    ),
];

fn header(out: &mut String, name: &str) {
    if let Some((_, kind, help)) = METRICS.iter().find(|(n, _, _)| *n == name) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
    }
}

fn single(out: &mut String, name: &str, value: u64) {
    header(out, name);
    let _ = writeln!(out, "{name} {value}");
}

/// Label values escaped as the text format requires (backslash, quote, newline).
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// The whole exposition. `username_labels`: add `user` to `turn_traffic_*` (coturn's
/// `prometheus-username-labels`).
pub fn render(registry: &Registry, username_labels: bool) -> String {
    let c = registry.snapshot();
    let mut out = String::with_capacity(8192);
    coturn_metrics(&mut out, registry, &c, username_labels);
    tern_metrics(&mut out, registry, &c);
    out
}

/// The metrics under coturn's names, which existing dashboards scrape.
fn coturn_metrics(out: &mut String, registry: &Registry, c: &Counters, username_labels: bool) {
    let extra = registry.extra();
    single(out, "stun_binding_request", c.binding_requests);
    single(out, "stun_binding_response", c.binding_responses);
    single(out, "stun_binding_error", c.binding_errors);

    let rows = registry.users().totals(username_labels);
    for (i, suffix) in Traffic::NAMES.iter().enumerate() {
        let name = format!("turn_traffic_{suffix}");
        header(out, &name);
        for row in &rows {
            let value = row.traffic.fields().get(i).copied().unwrap_or(0);
            let realm = escape(&row.realm);
            match (&row.user, username_labels) {
                (Some(user), true) => {
                    let user = escape(user);
                    let _ = writeln!(out, "{name}{{realm=\"{realm}\",user=\"{user}\"}} {value}");
                }
                _ => {
                    let _ = writeln!(out, "{name}{{realm=\"{realm}\"}} {value}");
                }
            }
        }
    }

    let total = total_traffic(c);
    for (suffix, value) in Traffic::NAMES.iter().zip(total.fields()) {
        single(out, &format!("turn_total_traffic_{suffix}"), value);
    }

    header(out, "turn_total_allocations");
    for (label, n) in extra.allocations.labelled() {
        let _ = writeln!(out, "turn_total_allocations{{type=\"{label}\"}} {n}");
    }

    single(
        out,
        "turn_packet_processed",
        total.rcvp.wrapping_add(total.peer_rcvp),
    );
    single(
        out,
        "turn_packet_dropped",
        c.malformed.wrapping_add(c.dropped),
    );
    let suppressed = extra.unauthenticated_401_dropped;
    let requests = c.unauthenticated_401.wrapping_add(suppressed);
    single(out, "turn_unauthenticated_401_requests", requests);
    single(
        out,
        "turn_unauthenticated_401_responses",
        c.unauthenticated_401,
    );
    single(
        out,
        "turn_unauthenticated_401_dropped_responses",
        suppressed,
    );
}

/// Everything relayed, by the shards and by the fast path (whose byte counts leave out the
/// 4-byte ChannelData header the client's datagrams carried and the client's received).
fn total_traffic(c: &Counters) -> Traffic {
    let header = |packets: u64| packets.wrapping_mul(4);
    let (to_peer, to_client) = (c.fast_to_peer_packets, c.fast_to_client_packets);
    Traffic {
        rcvp: c.client_rx_packets.wrapping_add(to_peer),
        rcvb: c
            .client_rx_bytes
            .wrapping_add(c.fast_to_peer_bytes)
            .wrapping_add(header(to_peer)),
        sentp: c.client_tx_packets.wrapping_add(to_client),
        sentb: (c.client_tx_bytes.wrapping_add(c.fast_to_client_bytes))
            .wrapping_add(header(to_client)),
        peer_rcvp: c.peer_rx_packets.wrapping_add(to_client),
        peer_rcvb: c.peer_rx_bytes.wrapping_add(c.fast_to_client_bytes),
        peer_sentp: c.peer_tx_packets.wrapping_add(to_peer),
        peer_sentb: c.peer_tx_bytes.wrapping_add(c.fast_to_peer_bytes),
    }
}

/// tern's own metrics: drops by reason, per shard, the fast path, setup latency, redirects and
/// the fleet.
fn tern_metrics(out: &mut String, registry: &Registry, c: &Counters) {
    let extra = registry.extra();
    for (name, to_peer, to_client) in [
        (
            "tern_fast_path_packets_total",
            c.fast_to_peer_packets,
            c.fast_to_client_packets,
        ),
        (
            "tern_fast_path_bytes_total",
            c.fast_to_peer_bytes,
            c.fast_to_client_bytes,
        ),
    ] {
        header(out, name);
        let _ = writeln!(out, "{name}{{direction=\"to_peer\"}} {to_peer}");
        let _ = writeln!(out, "{name}{{direction=\"to_client\"}} {to_client}");
    }
    let at_xdp = registry.fast_path().map_or(0, |path| path.xdp_packets());
    single(out, "tern_fast_path_xdp_packets_total", at_xdp);
    single(out, "tern_redirects_total", c.redirects);
    single(out, "tern_malformed_packets_total", c.malformed);
    single(out, "tern_dropped_packets_total", c.dropped);

    header(out, "tern_drops_total");
    for (reason, n) in DropReason::ALL.iter().zip(extra.drops) {
        let _ = writeln!(out, "tern_drops_total{{reason=\"{}\"}} {n}", reason.name());
    }

    header(out, "tern_shard_packets_total");
    for (i, slot) in registry.slots().iter().enumerate() {
        let s = slot.counters();
        let n = s.client_rx_packets.wrapping_add(s.peer_rx_packets);
        let kind = slot.kind().label();
        let _ = writeln!(
            out,
            "tern_shard_packets_total{{shard=\"{i}\",kind=\"{kind}\"}} {n}"
        );
    }

    let name = "tern_allocation_setup_seconds";
    let h = registry.setup_latency();
    header(out, name);
    for (le, n) in h.cumulative() {
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count());
    let _ = writeln!(out, "{name}_sum {}", h.sum_seconds());
    let _ = writeln!(out, "{name}_count {}", h.count());

    let name = "tern_fleet_events_total";
    header(out, name);
    let fleet = registry
        .fleet()
        .map_or_else(|| FleetStats::default().labelled(), |f| f.labelled());
    for (event, n) in fleet {
        let _ = writeln!(out, "{name}{{event=\"{event}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }

    #[test]
    fn every_metric_has_one_help_and_one_type_line() {
        let text = render(&Registry::new(1, 1), false);
        for (name, kind, _) in METRICS {
            let help = format!("# HELP {name} ");
            let typ = format!("# TYPE {name} {}\n", kind.as_str());
            assert_eq!(text.matches(&help).count(), 1, "{name}");
            assert_eq!(text.matches(&typ).count(), 1, "{name}");
        }
    }
}
