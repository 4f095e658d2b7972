//! `stun:`, `stuns:`, `turn:` and `turns:` URLs (RFC 7064 §3.1, RFC 7065 §3.1): scheme, host (an
//! IPv6 address in brackets), optional port (3478, or 5349 for the TLS schemes) and, for TURN,
//! `?transport=udp|tcp`.

use std::fmt;

/// How a client (the probe, tern-load) reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// TCP or TLS: messages cut from a byte stream, ChannelData padded (RFC 8656 §12.5).
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }
}

/// One parsed URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// As given on the command line.
    pub text: String,
    /// `turn:` or `turns:` (allocations and relay checks), else STUN only.
    pub turn: bool,
    /// The host without brackets: a name or an IP address.
    pub host: String,
    pub port: u16,
    pub transport: Transport,
}

/// Why a URL cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub struct UrlError(String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The default port of `stun:`/`turn:` and of `stuns:`/`turns:` (RFC 7064 §3.1).
const PORT: u16 = 3478;
const TLS_PORT: u16 = 5349;

pub fn parse(text: &str) -> Result<Url, UrlError> {
    let bad = |why: &str| UrlError(format!("malformed URL {text:?}: {why}"));
    let (scheme, rest) = text
        .split_once(':')
        .ok_or_else(|| bad("expected stun:, stuns:, turn: or turns: HOST[:PORT]"))?;
    let (turn, tls) = match scheme.to_ascii_lowercase().as_str() {
        "stun" => (false, false),
        "stuns" => (false, true),
        "turn" => (true, false),
        "turns" => (true, true),
        _ => return Err(bad("the scheme must be stun, stuns, turn or turns")),
    };
    if rest.starts_with("//") {
        return Err(bad("these URLs have no \"//\": write turn:HOST:PORT"));
    }
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (host, port) = split_host_port(authority).map_err(|e| bad(&e))?;
    let port = match port {
        None => {
            if tls {
                TLS_PORT
            } else {
                PORT
            }
        }
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(&format!("port {p:?} is not a number from 1 to 65535")))?,
    };
    let transport = match (query, turn, tls) {
        (None, _, false) => Transport::Udp,
        (None, _, true) => Transport::Tls,
        (Some(_), false, _) => return Err(bad("stun: and stuns: URLs take no ?query")),
        (Some(q), true, _) => match (q.to_ascii_lowercase().as_str(), tls) {
            ("transport=udp", false) => Transport::Udp,
            ("transport=tcp", false) => Transport::Tcp,
            ("transport=tcp", true) => Transport::Tls,
            ("transport=udp", true) => {
                return Err(bad(
                    "turns: over udp is DTLS, which the probe does not speak",
                ))
            }
            _ => return Err(bad("the only query is ?transport=udp or ?transport=tcp")),
        },
    };
    Ok(Url {
        text: text.to_owned(),
        turn,
        host,
        port,
        transport,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(s: &str) -> Result<(String, Option<&str>), String> {
    if let Some(inner) = s.strip_prefix('[') {
        let (v6, after) = inner
            .split_once(']')
            .ok_or("an IPv6 address needs a closing ]")?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{v6:?} in brackets is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("expected :PORT after ]")?),
        };
        return Ok((v6.to_owned(), port));
    }
    if s.matches(':').count() > 1 {
        return Err("an IPv6 address goes in brackets: [2001:db8::1]:3478".into());
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    if host.is_empty() {
        return Err("the host is missing".into());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if !host.chars().all(allowed) {
        return Err(format!("{host:?} is not a host name or address"));
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_forms() {
        for (text, turn, host, port, transport) in [
            (
                "stun:example.org",
                false,
                "example.org",
                3478,
                Transport::Udp,
            ),
            (
                "turn:192.0.2.1:80?transport=tcp",
                true,
                "192.0.2.1",
                80,
                Transport::Tcp,
            ),
            (
                "turns:[2001:db8::1]",
                true,
                "2001:db8::1",
                5349,
                Transport::Tls,
            ),
            (
                "TURN:[::1]:3479?transport=udp",
                true,
                "::1",
                3479,
                Transport::Udp,
            ),
            (
                "turns:t.example:443?transport=tcp",
                true,
                "t.example",
                443,
                Transport::Tls,
            ),
            ("stuns:t.example", false, "t.example", 5349, Transport::Tls),
        ] {
            let u = parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                (u.turn, u.host.as_str(), u.port, u.transport),
                (turn, host, port, transport),
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_ones_say_why() {
        for (text, why) in [
            ("http://x", "scheme"),
            ("turn://x", "no \"//\""),
            ("turn:x:0", "port"),
            ("turn:x:99999", "port"),
            ("turn:::1", "brackets"),
            ("turn:[::1", "closing"),
            ("turn:x?transport=sctp", "query"),
            ("turns:x?transport=udp", "DTLS"),
            ("stun:x?transport=tcp", "no ?query"),
            ("turn:", "missing"),
            ("turn:a b", "not a host"),
            ("example.org", "expected"),
        ] {
            let e = parse(text).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
