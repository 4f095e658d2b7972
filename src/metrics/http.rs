//! The Prometheus HTTP endpoint (coturn's `prometheus-port`, 9641): `GET <path>` scrapes,
//! `/healthz`, `/readyz` and `/load` report health and load (`health.rs`), `GET /` says where
//! they are, anything else is 404 or 405. One thread, tiny_http.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tiny_http::{Header, Method, Request, Response, Server};

use super::expose::{render, CONTENT_TYPE};
use super::health::{Health, Rate, RATE_SAMPLE};
use super::publish::Registry;
use crate::config::Config;

/// Where to listen: `prometheus-address` or, as coturn, every address (`[::]` is dual-stack on
/// Linux unless `net.ipv6.bindv6only` is set), on `prometheus-port`.
pub fn listen_addr(cfg: &Config) -> SocketAddr {
    let ip = cfg
        .prometheus_address
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    SocketAddr::new(ip, cfg.prometheus_port)
}

/// A running metrics endpoint; [`MetricsServer::stop`] shuts it down and joins its thread.
pub struct MetricsServer {
    server: Arc<Server>,
    local: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Without an engine behind it: `/readyz` always ready.
    pub fn start(
        addr: SocketAddr,
        path: String,
        registry: Arc<Registry>,
        username_labels: bool,
    ) -> io::Result<MetricsServer> {
        let health = Arc::new(Health::standalone());
        MetricsServer::start_with(addr, path, registry, username_labels, health)
    }

    /// `health`: what `/readyz` and `/load` report.
    pub fn start_with(
        addr: SocketAddr,
        path: String,
        registry: Arc<Registry>,
        username_labels: bool,
        health: Arc<Health>,
    ) -> io::Result<MetricsServer> {
        let server = Server::http(addr).map_err(io::Error::other)?;
        let local = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("metrics listener has no IP address"))?;
        registry.users().set_keep_users(username_labels);
        let server = Arc::new(server);
        let srv = Arc::clone(&server);
        let stopping = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stopping);
        let thread = std::thread::Builder::new()
            .name("tern-metrics".into())
            .spawn(move || {
                let site = Site {
                    path,
                    registry,
                    username_labels,
                    health,
                };
                serve(&srv, &stop_flag, &site)
            })?;
        Ok(MetricsServer {
            server,
            local,
            stopping,
            thread: Some(thread),
        })
    }

    /// The bound address (the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What the endpoint answers from.
struct Site {
    path: String,
    registry: Arc<Registry>,
    username_labels: bool,
    health: Arc<Health>,
}

fn serve(server: &Server, stopping: &AtomicBool, site: &Site) {
    let mut rate = Rate::default();
    loop {
        // Wakes at least once per rate sample, so `/load` reads a recent rate.
        let received = server.recv_timeout(RATE_SAMPLE / 2);
        rate.sample(monotonic(), &site.registry);
        match received {
            Ok(Some(req)) => answer(req, site, &rate),
            Ok(None) => {}
            Err(_) if stopping.load(Ordering::Relaxed) => return,
            // An accept error (out of file descriptors): keep serving, without spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
        if stopping.load(Ordering::Relaxed) {
            return;
        }
    }
}

/// The metrics thread times its rate samples; the protocol core never reads a clock.
#[allow(clippy::disallowed_methods)]
fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}

fn answer(req: Request, site: &Site, rate: &Rate) {
    let url = req.url();
    let url = url.split_once('?').map_or(url, |(p, _)| p);
    let text = "text/plain; charset=utf-8";
    let (status, content_type, body) = if *req.method() != Method::Get {
        (405, text, String::from("method not allowed\n"))
    } else if url == site.path {
        let body = render(&site.registry, site.username_labels);
        (200, CONTENT_TYPE, body)
    } else if url == "/healthz" {
        (200, text, String::from("ok\n"))
    } else if url == "/readyz" {
        match site.health.readiness() {
            Ok(()) => (200, text, String::from("ready\n")),
            Err(why) => (503, text, format!("{why}\n")),
        }
    } else if url == "/load" {
        let body = site.health.load(&site.registry, rate.bps());
        (200, "application/json", body)
    } else if url == "/" {
        let body = format!(
            "tern TURN server: Prometheus metrics at {}, liveness at /healthz, readiness at \
             /readyz, load at /load\n",
            site.path
        );
        (200, text, body)
    } else {
        (404, text, String::from("not found\n"))
    };
    let mut response = Response::from_string(body).with_status_code(status);
    let allow = (status == 405).then_some(("Allow", "GET"));
    for (name, value) in [("Content-Type", content_type)].into_iter().chain(allow) {
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    // A scraper that hung up early is its own problem; nothing to do here.
    let _ = req.respond(response);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listens_everywhere_on_9641_unless_told() {
        let mut cfg = Config::default();
        assert_eq!(listen_addr(&cfg), "[::]:9641".parse().expect("addr"));
        cfg.prometheus_address = Some("127.0.0.1".parse().expect("ip"));
        cfg.prometheus_port = 9000;
        assert_eq!(listen_addr(&cfg), "127.0.0.1:9000".parse().expect("addr"));
    }
}
