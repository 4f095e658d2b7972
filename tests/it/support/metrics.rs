//! The Prometheus endpoint of the real binary: start tern with metrics on a free loopback port,
//! scrape it, and read values with an independent text-format parser.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value};

use super::Server;

pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("send request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header/body separator");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (status, body.to_owned())
}

pub fn number(v: &Value) -> f64 {
    match v {
        Value::Counter(x) | Value::Gauge(x) | Value::Untyped(x) => *x,
        other => panic!("not a plain number: {other:?}"),
    }
}

/// The value of `name` whose labels include every pair in `labels`, if present.
pub fn find(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matches = |s: &&Sample| {
        s.metric == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(k).is_some_and(|x| x == *v))
    };
    scrape
        .samples
        .iter()
        .find(matches)
        .map(|s| number(&s.value))
}

/// tern with Prometheus on a free loopback port, and the address it logged.
pub fn start_with_metrics(extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec![
        "--allow-loopback-peers",
        "--prometheus",
        "--prometheus-port=0",
        "--prometheus-address=127.0.0.1",
    ];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let line = server
        .wait_for_log("metrics on http://", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no metrics line; log:\n{}", server.log()));
    let url = line
        .split("metrics on http://")
        .nth(1)
        .expect("address after the marker");
    let (addr, path) = url.split_at(url.find('/').expect("a path"));
    assert_eq!(path, "/metrics");
    (server, addr.parse().expect("metrics address"))
}

/// One scrape: the body and its parse.
pub fn fetch(addr: SocketAddr) -> (String, Scrape) {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    let scrape =
        Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("the exposition parses");
    (body, scrape)
}
