//! The checks run against one URL, in order: reach the server (TLS details for `turns:`), a
//! Binding (RFC 8489 §6), an Allocate with the credentials (RFC 8656 §7), CreatePermission for
//! peers a server must refuse (RFC 8656 §21), a round trip through two allocations over
//! channels (§9, §12), an Allocate without credentials and one with a wrong password.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::conn::{Conn, TlsSetup};
use super::session::{Answer, Creds, Session};
use super::tls::Client;
use super::url::{Transport, Url};
use super::Options;
use crate::client::{self, Allocate, Request};
use crate::limits::{internal_range, Refusal};
use crate::stun::ErrorCode;
use crate::stun::Family;

/// Peers every relay open to the Internet must refuse: loopback, the cloud metadata service,
/// RFC 1918, and loopback again in the IPv4-mapped form that bypassed older filters. The probe
/// only asks for permissions: it never sends a packet towards them.
/// The channel the relay check binds on each allocation.
const CHANNEL: u16 = 0x4000;
/// An Allocate asking for an IPv6 relayed address (REQUESTED-ADDRESS-FAMILY, RFC 8656 §7.1).
const ALLOCATE_IPV6: Request = Request::Allocate(Allocate {
    family: Some(Family::V6),
    ..Allocate::ALLOCATE_UDP
});
/// Round-trip times in microseconds.
type Rtt = hdrhistogram::Histogram<u64>;

const FORBIDDEN_PEERS: [&str; 4] = [
    "127.0.0.1:9",
    "169.254.169.254:80",
    "10.0.0.1:9",
    "[::ffff:127.0.0.1]:9",
];
/// Marks the probe's datagrams, followed by a sequence number.
const MAGIC: &[u8; 10] = b"tern-probe";
/// The payload size of each relayed datagram.
const PAYLOAD: usize = 100;
/// How long a relayed datagram may take to come back before it counts as lost.
const ECHO_WAIT: Duration = Duration::from_millis(500);
/// Losses in a row after which the relay is taken as broken and the rest counted as lost.
const LOST_IN_A_ROW: u32 = 5;
/// The share of datagrams that must come back for the relay check to pass.
const MIN_RECEIVED: f64 = 0.9;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    Warn,
    Skip,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Warn => "warn",
            Verdict::Skip => "skip",
        }
    }
}

/// One line of the report.
pub struct Line {
    pub name: String,
    pub verdict: Verdict,
    pub detail: String,
}

/// What one URL showed: its lines, and the measured facts for `--json`.
pub struct UrlReport {
    pub url: String,
    pub transport: Transport,
    pub server: Option<SocketAddr>,
    pub lines: Vec<Line>,
    pub facts: Map<String, Value>,
}

impl UrlReport {
    fn line(&mut self, name: &str, verdict: Verdict, detail: impl Into<String>) {
        self.lines.push(Line {
            name: name.to_owned(),
            verdict,
            detail: detail.into(),
        });
    }

    pub fn passed(&self) -> bool {
        self.lines.iter().all(|l| l.verdict != Verdict::Fail)
    }
}

/// Runs every check that applies to `url`.
pub fn probe(url: &Url, opts: &Options, unix_now: u64) -> UrlReport {
    let mut r = UrlReport {
        url: url.text.clone(),
        transport: url.transport,
        server: None,
        lines: Vec::new(),
        facts: Map::new(),
    };
    if let Err(why) = run(url, opts, unix_now, &mut r) {
        r.line("stopped", Verdict::Fail, why);
    }
    r
}

/// The checks in order; Err(why) when the rest cannot run.
fn run(url: &Url, opts: &Options, unix_now: u64, r: &mut UrlReport) -> Result<(), String> {
    let addrs = resolve(&url.host, url.port)?;
    r.server = addrs.first().copied();
    let tls = match url.transport {
        Transport::Tls => Some((
            Client::new(opts.ca.as_deref())?,
            Client::server_name(&url.host)?,
        )),
        _ => None,
    };
    let setup = tls.as_ref().map(|(client, name)| TlsSetup {
        config: client.config.clone(),
        name,
    });
    let open_at = |server: SocketAddr| {
        Conn::open(server, url.transport, setup.as_ref(), opts.timeout)
            .map_err(|e| format!("cannot reach {server} over {}: {e}", url.transport.name()))
    };
    // A name may resolve to a family the server does not listen on (localhost to ::1 first):
    // streams try each address until one connects. UDP cannot tell an address nobody answers
    // on from a slow server in time, so it takes the first.
    let mut tried = Err(String::new());
    for &addr in &addrs {
        tried = open_at(addr).map(|conn| (addr, conn));
        if tried.is_ok() || url.transport == Transport::Udp {
            break;
        }
    }
    let (server, first) = tried?;
    r.server = Some(server);
    let open = || open_at(server);
    if let (Some((client, _)), Some(conn)) = (&tls, first.tls()) {
        let report = client.report(conn, unix_now);
        tls_lines(r, &report, opts.insecure);
        if report.trust.is_err() && !opts.insecure {
            return Err(
                "not going on over an untrusted connection (--insecure to probe anyway, \
                        --ca FILE to trust a private CA)"
                    .into(),
            );
        }
    }
    let mut a = Session::new(first, opts.creds.clone(), opts.timeout);
    binding(r, &mut a)?;
    if !url.turn {
        return Ok(());
    }
    let relayed_a = allocate(r, &mut a, server, opts.creds.is_some())?;
    if let Some(relayed_a) = relayed_a {
        peers(r, &mut a);
        if relayed_a.is_ipv4() {
            mapped_on_ipv6(r, open()?, opts);
        }
        let mut b = Session::new(open()?, opts.creds.clone(), opts.timeout);
        relay(r, &mut a, &mut b, relayed_a, opts.count);
        deallocate(&mut b);
        deallocate(&mut a);
    }
    no_credentials(r, open()?, opts);
    wrong_password(r, open()?, opts);
    Ok(())
}

/// The addresses of `host` in the resolver's order.
fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("cannot resolve {host}: no address"));
    }
    Ok(addrs)
}

fn tls_lines(r: &mut UrlReport, t: &super::tls::TlsReport, insecure: bool) {
    let chain: Vec<Value> = t
        .chain
        .iter()
        .map(|c| json!({"subject": c.subject, "issuer": c.issuer, "names": c.names, "not_after": c.not_after}))
        .collect();
    r.facts.insert(
        "tls".into(),
        json!({
            "version": t.version, "alpn": t.alpn, "cipher": t.cipher,
            "trusted": t.trust.is_ok(), "trust_error": t.trust.as_ref().err(),
            "days_left": t.days_left, "chain": chain,
        }),
    );
    r.line(
        "tls",
        Verdict::Pass,
        format!(
            "{}, ALPN {}, {}",
            t.version,
            t.alpn.as_deref().unwrap_or("none"),
            t.cipher.as_deref().unwrap_or("unknown cipher")
        ),
    );
    if let Some(leaf) = t.chain.first() {
        let detail = format!(
            "subject {}; issuer {}; names {}",
            leaf.subject,
            leaf.issuer,
            if leaf.names.is_empty() {
                "none".into()
            } else {
                leaf.names.join(", ")
            }
        );
        r.line("certificate", Verdict::Pass, detail);
    }
    for (i, c) in t.chain.iter().enumerate().skip(1) {
        let detail = format!("subject {}; issuer {}", c.subject, c.issuer);
        r.line(&format!("chain #{i}"), Verdict::Pass, detail);
    }
    match t.days_left {
        Some(d) if d < 0 => r.line("expiry", Verdict::Fail, format!("expired {} days ago", -d)),
        Some(d) if d < 14 => r.line("expiry", Verdict::Warn, format!("expires in {d} days")),
        Some(d) => r.line("expiry", Verdict::Pass, format!("expires in {d} days")),
        None => r.line("expiry", Verdict::Warn, "no expiry date could be read"),
    }
    match (&t.trust, insecure) {
        (Ok(()), _) => r.line("trusted", Verdict::Pass, "chain and name verified"),
        (Err(e), true) => r.line(
            "trusted",
            Verdict::Warn,
            format!("untrusted: {e} (accepted: --insecure)"),
        ),
        (Err(e), false) => r.line("trusted", Verdict::Fail, format!("untrusted: {e}")),
    }
}

fn binding(r: &mut UrlReport, s: &mut Session) -> Result<(), String> {
    let t0 = Instant::now();
    let answer = s
        .request(Request::Binding)
        .map_err(|e| format!("Binding: {e}"))?;
    let rtt = ms(t0.elapsed());
    match answer {
        Answer::Success { mapped, .. } => {
            let shown = mapped.map_or_else(|| "none".into(), |m| m.to_string());
            r.facts.insert(
                "binding".into(),
                json!({"mapped": mapped.map(|m| m.to_string()), "rtt_ms": rtt}),
            );
            r.line(
                "binding",
                Verdict::Pass,
                format!("mapped address {shown}, rtt {rtt:.2} ms"),
            );
            Ok(())
        }
        Answer::Refused(code) => Err(format!("Binding refused: {}", code_text(code))),
    }
}

/// Allocates with the credentials; the relayed address, or None when refused (a failed line).
fn allocate(
    r: &mut UrlReport,
    s: &mut Session,
    server: SocketAddr,
    signed: bool,
) -> Result<Option<SocketAddr>, String> {
    let answer = s
        .request(Request::ALLOCATE)
        .map_err(|e| format!("Allocate: {e}"))?;
    let (relayed, lifetime) = match answer {
        Answer::Success {
            relayed: Some(relayed),
            lifetime,
            ..
        } => (relayed, lifetime),
        Answer::Success { relayed: None, .. } => {
            r.line(
                "allocate",
                Verdict::Fail,
                "success without XOR-RELAYED-ADDRESS",
            );
            return Ok(None);
        }
        Answer::Refused(401) if !signed => {
            r.line(
                "allocate",
                Verdict::Skip,
                "credentials needed: give --user and --password, or --secret",
            );
            return Ok(None);
        }
        Answer::Refused(code) => {
            let hint = if code == 401 {
                " (check --user/--password or --secret)"
            } else {
                ""
            };
            r.line(
                "allocate",
                Verdict::Fail,
                format!("refused: {}{hint}", code_text(code)),
            );
            return Ok(None);
        }
    };
    let kind = address_kind(relayed.ip());
    r.facts.insert(
        "allocation".into(),
        json!({"relayed": relayed.to_string(), "relayed_kind": kind, "lifetime": lifetime}),
    );
    let life = lifetime.map_or_else(|| "no LIFETIME".into(), |l| format!("lifetime {l} s"));
    r.line(
        "allocate",
        Verdict::Pass,
        format!("relayed address {relayed} ({kind}), {life}"),
    );
    if let Some(warning) = external_ip_warning(relayed, server) {
        r.line("relayed address", Verdict::Warn, warning);
    }
    Ok(Some(relayed))
}

/// The classic `external-ip` mistake: a server reached at a public address hands out an
/// internal relayed address, which clients elsewhere cannot reach.
fn external_ip_warning(relayed: SocketAddr, server: SocketAddr) -> Option<String> {
    let kind = address_kind(relayed.ip());
    (kind != "public" && address_kind(server.ip()) == "public").then(|| {
        format!(
            "a {kind} relayed address from a server reached at a public address: clients \
             elsewhere cannot reach it (set external-ip to the public address)"
        )
    })
}

/// "public", or the internal range an address is in.
fn address_kind(ip: IpAddr) -> &'static str {
    match internal_range(ip) {
        None => "public",
        Some(Refusal::Loopback) => "loopback",
        Some(Refusal::LinkLocal) => "link-local",
        Some(Refusal::Private) => "private",
        Some(Refusal::SharedAddress) => "shared (100.64/10)",
        Some(_) => "special-purpose",
    }
}

/// CreatePermission for each forbidden peer on the first allocation: a pass when refused.
fn peers(r: &mut UrlReport, s: &mut Session) {
    let mut facts = Map::new();
    for text in FORBIDDEN_PEERS {
        let Ok(peer) = text.parse::<SocketAddr>() else {
            continue;
        };
        let (verdict, detail, code) = permission(s, peer);
        facts.insert(peer.ip().to_string(), json!({"refused": code}));
        r.line(&format!("peer {}", peer.ip()), verdict, detail);
    }
    r.facts.insert("peers".into(), Value::Object(facts));
}

/// On an IPv4 allocation the IPv4-mapped peer is refused for its family alone (443), which says
/// nothing of the server's filter; where the server also relays IPv6, the form is asked for
/// again on an IPv6 allocation, through which a filter that misses the mapped form would reach
/// the IPv4 loopback, and that answer replaces the first.
fn mapped_on_ipv6(r: &mut UrlReport, conn: Conn, opts: &Options) {
    let Some(peer) = FORBIDDEN_PEERS
        .iter()
        .filter_map(|p| p.parse::<SocketAddr>().ok())
        .find(|p| matches!(p.ip(), IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()))
    else {
        return;
    };
    let mut s = Session::new(conn, opts.creds.clone(), opts.timeout);
    let Ok(Answer::Success {
        relayed: Some(relayed),
        ..
    }) = s.request(ALLOCATE_IPV6)
    else {
        return;
    };
    let (verdict, detail, code) = permission(&mut s, peer);
    deallocate(&mut s);
    let name = format!("peer {}", peer.ip());
    if let Some(line) = r.lines.iter_mut().find(|l| l.name == name) {
        line.verdict = verdict;
        line.detail = format!("on an IPv6 allocation (relayed address {relayed}): {detail}");
    }
    if let Some(Value::Object(facts)) = r.facts.get_mut("peers") {
        facts.insert(peer.ip().to_string(), json!({"refused": code}));
    }
}

/// CreatePermission for a peer the server must refuse: the verdict, its detail, the code.
fn permission(s: &mut Session, peer: SocketAddr) -> (Verdict, String, Option<u16>) {
    match s.request(Request::CreatePermission(peer)) {
        Ok(Answer::Refused(code)) => {
            let note = if code == ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH.0 {
                " (the allocation's family cannot reach this form)"
            } else {
                ""
            };
            (
                Verdict::Pass,
                format!("refused: {}{note}", code_text(code)),
                Some(code),
            )
        }
        Ok(Answer::Success { .. }) => (
            Verdict::Fail,
            format!(
                "permission granted: the server relays to {} (refuse it with denied-peer-ip)",
                peer.ip()
            ),
            None,
        ),
        Err(e) => (Verdict::Fail, e, None),
    }
}

/// Two allocations, a permission and a channel each way, `count` datagrams from `a` through
/// both relays to `b` and echoed back.
fn relay(r: &mut UrlReport, a: &mut Session, b: &mut Session, relayed_a: SocketAddr, count: u32) {
    let result = (|| {
        let relayed_b = match b.request(Request::ALLOCATE)? {
            Answer::Success {
                relayed: Some(x), ..
            } => x,
            other => return Err(format!("the second Allocate: {}", answer_text(other))),
        };
        for (s, peer, who) in [
            (&mut *a, relayed_b, "first"),
            (&mut *b, relayed_a, "second"),
        ] {
            for req in [
                Request::CreatePermission(peer),
                Request::ChannelBind {
                    channel: CHANNEL,
                    peer,
                },
            ] {
                match s.request(req)? {
                    Answer::Success { .. } => {}
                    other => {
                        return Err(format!(
                            "{} to {peer} on the {who} allocation: {}",
                            request_name(req),
                            answer_text(other)
                        ))
                    }
                }
            }
        }
        Ok(round_trips(a, b, count))
    })();
    match result {
        Ok((received, rtt)) => {
            let loss = 100.0 * f64::from(count - received) / f64::from(count.max(1));
            let (p50, p99) = (
                ms(Duration::from_micros(rtt.value_at_quantile(0.5))),
                ms(Duration::from_micros(rtt.value_at_quantile(0.99))),
            );
            r.facts.insert(
                "relay".into(),
                json!({"sent": count, "received": received, "loss_percent": loss,
                       "rtt_p50_ms": p50, "rtt_p99_ms": p99}),
            );
            let ok = f64::from(received) >= MIN_RECEIVED * f64::from(count);
            r.line(
                "relay",
                if ok { Verdict::Pass } else { Verdict::Fail },
                format!(
                    "{received}/{count} datagrams back through both relays, loss {loss:.1}%, \
                     rtt p50 {p50:.2} ms, p99 {p99:.2} ms"
                ),
            );
        }
        Err(e) => r.line("relay", Verdict::Fail, e),
    }
}

/// Sends datagram after datagram from `a` over its channel; `b` echoes each over its own. The
/// number that came back and their round-trip times in microseconds.
fn round_trips(a: &mut Session, b: &mut Session, count: u32) -> (u32, Rtt) {
    // 1 µs to a minute (a slower echo counts as a minute) at three significant digits.
    let mut rtt = Rtt::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut received = 0;
    let mut lost_in_a_row = 0;
    let mut buf = [0u8; 4 + PAYLOAD + 4];
    for seq in 0..count {
        if lost_in_a_row >= LOST_IN_A_ROW {
            break;
        }
        let payload = datagram(seq);
        buf[4..4 + PAYLOAD].copy_from_slice(&payload);
        let t0 = Instant::now();
        let echoed = send_channel(&mut a.conn, &mut buf).is_ok()
            && wait_for(&mut b.conn, &payload).is_some()
            && send_channel(&mut b.conn, &mut buf).is_ok()
            && wait_for(&mut a.conn, &payload).is_some();
        if echoed {
            rtt.saturating_record(t0.elapsed().as_micros() as u64);
            received += 1;
            lost_in_a_row = 0;
        } else {
            lost_in_a_row += 1;
        }
    }
    (received, rtt)
}

fn datagram(seq: u32) -> [u8; PAYLOAD] {
    let mut p = [0u8; PAYLOAD];
    p[..MAGIC.len()].copy_from_slice(MAGIC);
    p[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&seq.to_be_bytes());
    p
}

/// Sends the payload at `buf[4..]` as ChannelData (padded on streams).
fn send_channel(conn: &mut Conn, buf: &mut [u8]) -> std::io::Result<()> {
    let n = if conn.is_stream() {
        client::channel_data_padded(buf, CHANNEL, PAYLOAD)
    } else {
        client::channel_data(buf, CHANNEL, PAYLOAD)
    };
    conn.send(&buf[..n])
}

/// Reads until `payload` arrives (ChannelData or a Data indication) or `ECHO_WAIT` passes.
fn wait_for(conn: &mut Conn, payload: &[u8]) -> Option<()> {
    let deadline = Instant::now() + ECHO_WAIT;
    while let Ok(Some(frame)) = conn.recv(deadline) {
        if client::incoming(&frame).map(|i| i.payload()) == Some(payload) {
            return Some(());
        }
    }
    None
}

/// An Allocate without credentials must be refused (no open relay).
fn no_credentials(r: &mut UrlReport, conn: Conn, opts: &Options) {
    let mut s = Session::new(conn, None, opts.timeout);
    let (verdict, detail) = match s.request(Request::ALLOCATE) {
        Ok(Answer::Refused(code)) => (
            Verdict::Pass,
            format!(
                "an Allocate without credentials is refused: {}",
                code_text(code)
            ),
        ),
        Ok(Answer::Success { relayed, .. }) => {
            deallocate(&mut s);
            (
                Verdict::Fail,
                format!(
                    "OPEN RELAY: an Allocate without credentials got relayed address {} \
                     (configure lt-cred-mech or use-auth-secret; never no-auth on a public server)",
                    relayed.map_or_else(|| "?".into(), |a| a.to_string())
                ),
            )
        }
        Err(e) => (Verdict::Fail, e),
    };
    r.line("no open relay", verdict, detail);
}

/// An Allocate signed with a wrong password must be refused.
fn wrong_password(r: &mut UrlReport, conn: Conn, opts: &Options) {
    let Some(creds) = &opts.creds else {
        r.line("wrong password", Verdict::Skip, "no credentials given");
        return;
    };
    let wrong = Creds {
        username: creds.username.clone(),
        password: format!("{}-not-the-password", creds.password),
    };
    let mut s = Session::new(conn, Some(wrong), opts.timeout);
    let (verdict, detail) = match s.request(Request::ALLOCATE) {
        Ok(Answer::Refused(code)) => (Verdict::Pass, format!("refused: {}", code_text(code))),
        Ok(Answer::Success { .. }) => {
            deallocate(&mut s);
            (
                Verdict::Fail,
                "an Allocate with a wrong password (or none) was accepted".into(),
            )
        }
        Err(e) => (Verdict::Fail, e),
    };
    r.line("wrong password", verdict, detail);
}

/// Refresh with LIFETIME 0 (RFC 8656 §7.2), so the probe leaves no allocation behind; an
/// unanswered one expires on its own.
fn deallocate(s: &mut Session) {
    let _ = s.request(Request::Refresh(0));
}

fn request_name(req: Request) -> &'static str {
    match req {
        Request::Binding => "Binding",
        Request::Allocate(_) => "Allocate",
        Request::CreatePermission(_) => "CreatePermission",
        Request::ChannelBind { .. } => "ChannelBind",
        Request::Refresh(_) => "Refresh",
        Request::Connect(_) => "Connect",
        Request::ConnectionBind(_) => "ConnectionBind",
    }
}

fn answer_text(a: Answer) -> String {
    match a {
        Answer::Success { .. } => "success without a relayed address".into(),
        Answer::Refused(code) => format!("refused: {}", code_text(code)),
    }
}

fn code_text(code: u16) -> String {
    format!("{code} {}", ErrorCode(code).reason())
}

/// Milliseconds to the microsecond.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn relayed_addresses_are_classified_as_the_peer_policy_does() {
        for (ip, kind) in [
            ("198.51.100.7", "public"),
            ("127.0.0.2", "loopback"),
            ("10.1.2.3", "private"),
            ("::ffff:192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared (100.64/10)"),
            ("2001:db8::1", "public"),
        ] {
            assert_eq!(address_kind(ip.parse().unwrap()), kind, "{ip}");
        }
    }

    #[test]
    fn a_private_relay_behind_a_public_url_is_the_external_ip_mistake() {
        let public = addr("203.0.113.5:3478");
        let warning = external_ip_warning(addr("10.0.0.5:50000"), public);
        assert!(warning.is_some_and(|w| w.contains("a private relayed address")));
        assert_eq!(external_ip_warning(addr("203.0.113.5:50000"), public), None);
        // A test server on loopback relaying on loopback is no mistake.
        let local = addr("127.0.0.1:3478");
        assert_eq!(external_ip_warning(addr("127.0.0.2:50000"), local), None);
    }
}
