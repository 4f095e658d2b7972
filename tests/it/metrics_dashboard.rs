//! The shipped Grafana dashboard queries only metrics that tern exports.

use serde_json::Value;
use tern::metrics::expose::{Kind, METRICS};

fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| exprs(i, out)),
        _ => {}
    }
}

/// Identifiers in a PromQL expression that look like tern/coturn metric names.
fn metric_names(expr: &str) -> Vec<&str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| ["turn_", "stun_", "tern_"].iter().any(|p| w.starts_with(p)))
        .collect()
}

fn exported(name: &str) -> bool {
    METRICS.iter().any(|(m, kind, _)| {
        name == *m
            || (*kind == Kind::Histogram
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(m)))
    })
}

#[test]
fn dashboard_uses_only_exported_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/grafana/tern.json");
    let text = std::fs::read_to_string(path).expect("read the dashboard");
    let json: Value = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    let mut all = Vec::new();
    exprs(&json, &mut all);
    assert!(
        all.len() >= 10,
        "the dashboard has its queries: {}",
        all.len()
    );
    let mut used = Vec::new();
    for e in &all {
        for name in metric_names(e) {
            assert!(
                exported(name),
                "{name} in `{e}` is not a metric tern exports"
            );
            used.push(name);
        }
    }
    for needed in [
        "turn_total_traffic_rcvb",
        "turn_total_traffic_sentb",
        "turn_total_allocations",
        "turn_unauthenticated_401_requests",
        "turn_packet_dropped",
    ] {
        assert!(used.contains(&needed), "the dashboard charts {needed}");
    }
}
