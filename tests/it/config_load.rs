//! Loading configurations as coturn does: file syntax, flags over the file, typed values with
//! file:line errors, did-you-mean warnings, and the start-up refusals.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use tern::config::{
    check_config, load, parse_str, Alternate, Config, Diagnostic, ExternalIp, IpRange, LogTarget,
    UserSecret,
};

/// A file in a fresh temporary directory, removed on drop.
struct TempConf {
    dir: PathBuf,
    path: PathBuf,
}

impl TempConf {
    fn new(text: &str) -> TempConf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tern-config-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("test.conf");
        std::fs::write(&path, text).expect("write conf");
        TempConf { dir, path }
    }

    fn p(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for TempConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Loads `text` (plus `extra` flags); panics with the diagnostics on failure.
fn ok(text: &str, extra: &[&str]) -> (Config, Vec<Diagnostic>) {
    let f = TempConf::new(text);
    let mut a = args(&["-c", &f.p()]);
    a.extend(args(extra));
    match load(&a) {
        Ok(l) => (l.config, l.warnings),
        Err(d) => panic!("{}", d.iter().map(|d| format!("{d}\n")).collect::<String>()),
    }
}

/// Loads `text` expecting failure; returns every diagnostic as text, and the file path.
fn fails(text: &str, extra: &[&str]) -> (Vec<String>, String) {
    let f = TempConf::new(text);
    let mut a = args(&["-c", &f.p()]);
    a.extend(args(extra));
    let diags = load(&a).expect_err("should fail");
    (diags.iter().map(ToString::to_string).collect(), f.p())
}

const AUTH: &str = "realm=r.example\nuser=u:p\n";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test IP")
}

#[test]
fn invalid_value_is_an_error_at_file_line_and_name() {
    let (d, path) = fails("realm=r.example\nmax-bps=lots\nuser=u:p\n", &[]);
    let line = d
        .iter()
        .find(|l| l.contains("max-bps"))
        .expect("max-bps error");
    assert!(line.starts_with(&format!("{path}:2: max-bps: ")), "{line}");
    assert!(line.contains("lots"), "{line}");
}

#[test]
fn unknown_option_warns_with_line_and_closest_name() {
    let (_, w) = ok("realm=r.example\nlt-cred-mec\nuser=u:p\n", &[]);
    let unknown: Vec<String> = w.iter().map(ToString::to_string).collect();
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(unknown[0].starts_with("warning: "), "{}", unknown[0]);
    assert!(
        unknown[0].contains("test.conf:2: lt-cred-mec:"),
        "{}",
        unknown[0]
    );
    assert!(
        unknown[0].contains("did you mean `lt-cred-mech`"),
        "{}",
        unknown[0]
    );
}

#[test]
fn flags_override_the_file() {
    let text = format!("{AUTH}listening-port=3478\nmin-port=50000\n");
    assert_eq!(
        ok(&text, &["--listening-port", "4000"]).0.listening_port,
        4000
    );
    assert_eq!(ok(&text, &["--listening-port=4001"]).0.listening_port, 4001);
    assert_eq!(ok(&text, &["-p", "4002"]).0.listening_port, 4002);
    assert_eq!(ok(&text, &["-p4003"]).0.listening_port, 4003);
    let (c, _) = ok(&text, &["--realm", "flag.example"]);
    assert_eq!(
        (c.listening_port, c.min_port, c.realm.as_str()),
        (3478, 50000, "flag.example")
    );
}

#[test]
fn flag_errors_name_the_flag() {
    let (d, _) = fails(AUTH, &["--max-bps", "lots"]);
    assert!(d.iter().any(|l| l.starts_with("--max-bps: ")), "{d:?}");
    let (d, _) = fails(AUTH, &["--listen-port=1"]);
    assert!(
        d.iter()
            .any(|l| l.contains("did you mean `listening-port`")),
        "{d:?}"
    );
}

#[test]
fn quotes_comments_and_booleans() {
    let text = format!(
        "{AUTH}# listening-port=1\n   # fingerprint\ncipher-list=\"ECDHE+AESGCM:!aNULL\"\n\
         pidfile=/run/x.pid # not a comment\nfingerprint\nfingerprint=off\nno-tcp=yes\n\
         no-udp-relay\tfalse\nsecure-stun 1\n"
    );
    let (c, w) = ok(&text, &[]);
    // cipher-list is honoured by the TLS listeners now: no "not implemented" warning.
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.listening_port, 3478);
    assert_eq!(c.cipher_list.as_deref(), Some("ECDHE+AESGCM:!aNULL"));
    assert_eq!(c.pidfile, Some(PathBuf::from("/run/x.pid # not a comment")));
    assert!(!c.fingerprint);
    assert!(c.no_tcp && !c.no_udp_relay && c.secure_stun);
    let (d, path) = fails(&format!("{AUTH}fingerprint=perhaps\n"), &[]);
    assert!(
        d.iter()
            .any(|l| l.starts_with(&format!("{path}:3: fingerprint: "))),
        "{d:?}"
    );
}

#[test]
fn repeatables_accumulate_and_the_rest_is_last_wins() {
    let text = "realm=first\nuser=alice:pw1\nuser=bob:0xbc807ee29df3c9ffa736523fb2c4e8ee\n\
                allowed-peer-ip=10.0.0.1\nallowed-peer-ip=192.168.0.0/16\nrealm=second\n\
                listening-ip=127.0.0.1\nlistening-ip=::1\n";
    let (c, _) = ok(
        text,
        &["-L", "127.0.0.2", "--allowed-peer-ip=172.16.0.1-172.16.0.9"],
    );
    assert_eq!(c.realm, "second");
    let names: Vec<&str> = c.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(c.users[0].secret, UserSecret::Password("pw1".into()));
    assert!(matches!(c.users[1].secret, UserSecret::Key(k) if k[0] == 0xbc && k[15] == 0xee));
    assert_eq!(c.allowed_peer_ips.len(), 3);
    assert_eq!(
        c.listening_ips,
        [ip("127.0.0.1"), ip("::1"), ip("127.0.0.2")]
    );
}

#[test]
fn users_keep_passwords_for_the_final_realm() {
    // The key is MD5(user:realm:password) with the realm in force after every source, so the
    // config keeps the password and the final realm (coturn applies `user` lines last for this).
    let (c, _) = ok(
        "user=alice:pw\nrealm=file.example\n",
        &["--realm", "flag.example", "-u", "bob:pw2"],
    );
    assert_eq!(c.realm, "flag.example");
    let names: Vec<&str> = c.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(c.users[0].secret, UserSecret::Password("pw".into()));
    assert!(c.lt_cred_mech, "a user turns lt-cred-mech on");
}

#[test]
fn short_flags() {
    let a = args(&[
        "-n",
        "-p",
        "4000",
        "-L",
        "127.0.0.1",
        "-E",
        "127.0.0.1",
        "-X",
        "203.0.113.1",
        "-a",
        "-u",
        "u:p",
        "-r",
        "r.example",
        "-f",
        "-v",
        "-m",
        "3",
        "-q",
        "5",
        "-Q",
        "50",
        "-s",
        "100000",
        "-l",
        "stdout",
        "-zS",
    ]);
    let diags = load(&a).expect_err("-a with -z is refused");
    assert!(
        diags.iter().any(|d| d
            .message
            .contains("no-auth: cannot be combined with lt-cred-mech")),
        "{diags:?}"
    );
    let a: Vec<String> = a
        .into_iter()
        .filter(|s| s != "-zS")
        .chain(args(&["-S", "-V"]))
        .collect();
    let c = load(&a).expect("short flags load").config;
    assert_eq!(c.source, None);
    assert_eq!(c.listening_port, 4000);
    assert_eq!(c.listening_ips, [ip("127.0.0.1")]);
    assert_eq!(c.relay_ips, [ip("127.0.0.1")]);
    assert_eq!(
        c.external_ips,
        [ExternalIp {
            public: ip("203.0.113.1"),
            private: None
        }]
    );
    assert!(c.lt_cred_mech && c.fingerprint && c.stun_only);
    assert_eq!((c.realm.as_str(), c.users.len()), ("r.example", 1));
    assert_eq!(c.verbose, 2);
    assert_eq!(c.relay_threads, Some(3));
    assert_eq!((c.user_quota, c.total_quota, c.max_bps), (5, 50, 100_000));
    assert_eq!(c.log_target, LogTarget::Stdout);
}

#[test]
fn dash_n_reads_no_file_and_default_lookup_finds_turnserver_conf() {
    let c = load(&args(&["-n", "--no-auth"])).expect("-n loads").config;
    assert_eq!(c.source, None);
    let default = tern::config::find_config_file(std::path::Path::new("turnserver.conf"));
    match load(&args(&["--no-auth"])) {
        Ok(l) => assert_eq!(l.config.source, default),
        Err(d) => assert!(default.is_some(), "no default file, yet: {d:?}"),
    }
    let missing = load(&args(&["-c", "/nonexistent/tern-test.conf", "--no-auth"]))
        .expect_err("an explicit missing file is an error");
    assert!(
        missing[0]
            .message
            .contains("cannot find configuration file"),
        "{missing:?}"
    );
}

#[test]
fn peer_ranges_and_cidr() {
    let text = format!(
        "{AUTH}allowed-peer-ip=10.0.0.0/8\ndenied-peer-ip=192.168.1.1-192.168.1.9\n\
         denied-peer-ip=2001:db8::/32\ndenied-peer-ip=198.51.100.7\n"
    );
    let (c, _) = ok(&text, &[]);
    assert_eq!(
        c.allowed_peer_ips,
        [IpRange {
            start: ip("10.0.0.0"),
            end: ip("10.255.255.255")
        }]
    );
    assert_eq!(
        c.denied_peer_ips,
        [
            IpRange {
                start: ip("192.168.1.1"),
                end: ip("192.168.1.9")
            },
            IpRange {
                start: ip("2001:db8::"),
                end: ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")
            },
            IpRange {
                start: ip("198.51.100.7"),
                end: ip("198.51.100.7")
            },
        ]
    );
    let (d, path) = fails(&format!("{AUTH}allowed-peer-ip=10.0.0.9-10.0.0.1\n"), &[]);
    assert!(
        d.iter()
            .any(|l| l.starts_with(&format!("{path}:3: allowed-peer-ip: "))),
        "{d:?}"
    );
    let (d, _) = fails(&format!("{AUTH}min-port=60000\nmax-port=50000\n"), &[]);
    assert!(d.iter().any(|l| l.contains("min-port")), "{d:?}");
}

#[test]
fn external_ip_forms() {
    let (c, _) = ok(&format!("{AUTH}external-ip=203.0.113.5\n"), &[]);
    assert_eq!(
        c.external_ips,
        [ExternalIp {
            public: ip("203.0.113.5"),
            private: None
        }]
    );
    // The PUBLIC/PRIVATE forms, parsed without the host check (their private parts are not
    // this host's).
    let mut c = Config::default();
    let mut d = Vec::new();
    parse_str(
        "external-ip=203.0.113.5/10.0.0.5\nexternal-ip=2001:db8::5/fd00::5\n",
        Path::new("forms.conf"),
        &mut c,
        &mut d,
    );
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(
        c.external_ips,
        [
            ExternalIp {
                public: ip("203.0.113.5"),
                private: Some(ip("10.0.0.5"))
            },
            ExternalIp {
                public: ip("2001:db8::5"),
                private: Some(ip("fd00::5"))
            },
        ]
    );
    let (d, _) = fails(
        &format!("{AUTH}external-ip=203.0.113.5\nexternal-ip=203.0.113.6/10.0.0.6\n"),
        &[],
    );
    assert!(d.iter().any(|l| l.contains("external-ip")), "{d:?}");
    let (d, path) = fails(&format!("{AUTH}external-ip=turn.example.com\n"), &[]);
    assert!(
        d.iter()
            .any(|l| l.starts_with(&format!("{path}:3: external-ip: "))),
        "{d:?}"
    );
    // Loopback is an address of every host; 192.0.2.254 (TEST-NET-1) of none.
    let (c, _) = ok(&format!("{AUTH}external-ip=203.0.113.5/127.0.0.1\n"), &[]);
    assert_eq!(c.external_ips[0].private, Some(ip("127.0.0.1")));
    let (d, path) = fails(
        &format!("{AUTH}no-tls\nexternal-ip=203.0.113.5/192.0.2.254\n"),
        &[],
    );
    assert!(
        d.iter().any(|l| l.starts_with(&format!(
            "{path}:4: external-ip: the PRIVATE part 192.0.2.254 of 203.0.113.5/192.0.2.254 is \
             not an address of this host"
        ))),
        "{d:?}"
    );
    let (d, _) = fails(AUTH, &["--external-ip=203.0.113.5/192.0.2.254"]);
    assert!(
        d.iter()
            .any(|l| l.starts_with("--external-ip: the PRIVATE part 192.0.2.254")),
        "{d:?}"
    );
}

#[test]
fn check_config_refuses_what_start_up_would_refuse_at_its_line() {
    let run = |text: &str| {
        let f = TempConf::new(text);
        let mut out = Vec::new();
        let code = check_config(&args(&[&f.p()]), &mut out);
        (code, String::from_utf8(out).expect("utf-8"), f.p())
    };
    for (line, text) in [
        ("external-ip", "external-ip=203.0.113.5/192.0.2.254\n"),
        ("listening-ip", "listening-ip=192.0.2.254\n"),
        ("relay-ip", "relay-ip=192.0.2.254\n"),
    ] {
        let (code, out, path) = run(&format!("{AUTH}{text}"));
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("error: {path}:3: {line}: ")), "{out}");
    }
    let (code, out, _) = run(&format!(
        "{AUTH}listening-ip=0.0.0.0\nexternal-ip=203.0.113.5\n"
    ));
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = run(&format!("{AUTH}no-udp\nno-tcp\nno-tls\n"));
    assert_eq!(code, 1, "no transport left: {out}");
    assert!(
        out.contains("error: no-udp: with no-tcp and no-tls nothing is left to listen on"),
        "{out}"
    );
    // TLS alone (on 443 behind a firewall that blocks UDP, say) is a deployment.
    let (code, out, _) = run(&format!("{AUTH}no-udp\nno-tcp\n"));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_known_unimplemented_option_warns_once() {
    let text = format!("{AUTH}aux-server=192.0.2.1:3478\naux-server=192.0.2.2:3478\ndaemon=off\n");
    let (_, w) = ok(&text, &["--aux-server=192.0.2.3:3478"]);
    let about: Vec<&Diagnostic> = w
        .iter()
        .filter(|d| d.to_string().contains("aux-server"))
        .collect();
    assert_eq!(about.len(), 1, "{w:?}");
    assert!(about[0].message.contains("not implemented"), "{}", about[0]);
    assert!(
        !w.iter().any(|d| d.to_string().contains("daemon")),
        "daemon=off asks nothing: {w:?}"
    );
    assert_eq!(w.len(), 1, "{w:?}");
}

#[test]
fn ignored_by_design_options_are_silent() {
    let (c, w) = ok(
        &format!("{AUTH}no-cli\nno-loopback-peers\nno-rfc5780\nno-tlsv1\n"),
        &[],
    );
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        c.ignored_options,
        ["no-cli", "no-loopback-peers", "no-rfc5780", "no-tlsv1"]
    );
}

#[test]
fn refuses_to_start_without_an_auth_mode() {
    let (d, _) = fails("listening-port=3478\n", &[]);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].contains("no-auth")
            && d[0].contains("lt-cred-mech")
            && d[0].contains("static-auth-secret"),
        "{}",
        d[0]
    );
    let (c, _) = ok("listening-port=3478\nno-auth\n", &[]);
    assert!(c.no_auth && !c.lt_cred_mech);
    let (d, _) = fails("listening-port=3478\n", &["--no-auth=false"]);
    assert!(d[0].contains("no authentication"), "{d:?}");
}

#[test]
fn rest_api_secrets() {
    let (d, _) = fails("realm=r\nuse-auth-secret\n", &[]);
    assert!(
        d.iter()
            .any(|l| l.contains("use-auth-secret: needs at least one static-auth-secret")),
        "{d:?}"
    );
    let (c, _) = ok(
        "realm=r\nstatic-auth-secret=s1\nstatic-auth-secret=s2\n",
        &[],
    );
    assert!(
        c.use_auth_secret,
        "a secret turns the REST API on, as in coturn"
    );
    assert_eq!(c.static_auth_secrets, ["s1", "s2"]);
    let (c, w) = ok("realm=r\nuse-auth-secret=false\nuser=u:p\n", &[]);
    assert!(!c.use_auth_secret);
    assert!(
        w.iter()
            .any(|d| d.to_string().contains("coturn would turn it on")),
        "{w:?}"
    );
}

#[test]
fn bandwidth_pairing_and_optional_values() {
    let (d, _) = fails(&format!("{AUTH}bps-capacity=1000000\n"), &[]);
    assert!(
        d.iter().any(|l| l.contains("bps-capacity: needs max-bps")),
        "{d:?}"
    );
    let (c, _) = ok(
        &format!("{AUTH}bps-capacity=1000000\nmax-bps=10000\nstale-nonce\n"),
        &[],
    );
    assert_eq!(
        (c.bps_capacity, c.max_bps, c.stale_nonce),
        (1_000_000, 10_000, 600)
    );
    let (c, _) = ok(
        &format!("{AUTH}stale-nonce=30\n"),
        &["--max-allocate-lifetime", "1200"],
    );
    assert_eq!((c.stale_nonce, c.max_allocate_lifetime), (30, 1200));
    // coturn's stale-nonce=0: the effective settings (check-config) say what it means.
    let (c, _) = ok(&format!("{AUTH}stale-nonce=0\n"), &[]);
    let shown = c.effective();
    assert!(
        shown.contains("# stale-nonce=0: nonces never expire"),
        "{shown}"
    );
    assert!(shown.contains("\nstale-nonce=0\n"), "{shown}");
}

#[test]
fn typed_values() {
    let text = format!(
        "{AUTH}log-file=/var/log/tern.log\nalternate-server=192.0.2.1\n\
         tls-alternate-server=[2001:db8::1]:5350\nallocation-default-address-family=IPv6\n\
         io-engine=epoll\nrest-api-separator=-\ncpus=2\nprometheus-address=127.0.0.1\npidfile=\n"
    );
    let (c, _) = ok(&text, &[]);
    assert_eq!(c.log_target, LogTarget::File("/var/log/tern.log".into()));
    assert_eq!(
        c.alternate_servers,
        [Alternate::new("192.0.2.1:3478".parse().expect("addr"))]
    );
    assert_eq!(
        c.tls_alternate_servers,
        [Alternate::new("[2001:db8::1]:5350".parse().expect("addr"))]
    );
    assert_eq!(
        c.allocation_default_address_family,
        tern::config::DefaultFamily::Ipv6
    );
    assert_eq!(c.io_engine, tern::config::IoEngine::Epoll);
    assert_eq!((c.rest_api_separator, c.relay_threads), ('-', Some(2)));
    assert_eq!(c.prometheus_address, Some(ip("127.0.0.1")));
    assert_eq!(
        c.pidfile, None,
        "an empty pidfile (Debian's unit) means none"
    );
    for bad in [
        "listening-port=70000",
        "io-engine=kqueue",
        "user=nopassword",
        "log-file=",
        "realm",
    ] {
        let (d, path) = fails(&format!("{AUTH}{bad}\n"), &[]);
        let name = bad.split('=').next().unwrap_or(bad);
        assert!(
            d.iter()
                .any(|l| l.starts_with(&format!("{path}:3: {name}: "))),
            "{bad}: {d:?}"
        );
    }
}

#[test]
fn check_config_exit_codes() {
    let good = TempConf::new(AUTH);
    let bad = TempConf::new("realm=r\nmax-bps=lots\nuser=u:p\n");
    let warned = TempConf::new(&format!("{AUTH}lt-cred-mec\n"));
    let run = |a: &[&str]| {
        let mut out = Vec::new();
        let code = check_config(&args(a), &mut out);
        (code, String::from_utf8(out).expect("utf-8"))
    };
    assert_eq!(run(&[&good.p()]).0, 0);
    assert_eq!(run(&[&good.p(), "--strict"]).0, 0);
    let (code, out) = run(&[&bad.p()]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("error: {}:2: max-bps: ", bad.p())),
        "{out}"
    );
    assert_eq!(run(&[&warned.p()]).0, 0);
    let (code, out) = run(&[&warned.p(), "--strict"]);
    assert_eq!(code, 1);
    assert!(out.contains("did you mean `lt-cred-mech`"), "{out}");
    assert_eq!(run(&["-c", &good.p(), "--listening-port", "nope"]).0, 1);
}

/// Guides write comments after values (`user-quota=12 # 4 streams per call`, the Matrix guide).
/// coturn reads the number before the `#`; tern does too, and says the rest is no comment. A text
/// value keeps the whole line, as in coturn, and a number that is invalid stays an error.
#[test]
fn a_number_followed_by_a_hash_comment_is_read_as_coturn_reads_it() {
    let (c, warnings) = ok(
        &format!("{AUTH}user-quota=12 # 4 streams per video call\ntotal-quota=1200\n"),
        &[],
    );
    assert_eq!((c.user_quota, c.total_quota), (12, 1200));
    let warning = warnings
        .iter()
        .map(ToString::to_string)
        .find(|w| w.contains("user-quota"))
        .unwrap_or_else(|| panic!("no warning: {warnings:?}"));
    assert!(warning.contains(":3:"), "{warning}");
    assert!(warning.contains("is not a comment"), "{warning}");
    let (c, _) = ok("realm=r.example # the realm\nuser=u:p\n", &[]);
    assert_eq!(c.realm, "r.example # the realm");
    let (d, _) = fails(&format!("{AUTH}max-port=70000 # too high\n"), &[]);
    assert!(
        d.iter()
            .any(|l| l.contains(":3:") && l.contains("max-port")),
        "{d:?}"
    );
}

#[test]
fn fleet_options_are_checked_at_their_line() {
    for (text, option, why) in [
        ("fleet-lease-time=1\n", "fleet-lease-time", "3 to 3600"),
        (
            "fleet-redis-down=maybe\n",
            "fleet-redis-down",
            "neither open nor closed",
        ),
        (
            "redis-statsdb=\"ip=10.0.0.1 colour=red\"\n",
            "redis-statsdb",
            "colour",
        ),
        ("redis-statsdb=\"port=http\"\n", "redis-statsdb", "http"),
        ("fleet-quotas\n", "fleet-quotas", "needs redis-statsdb"),
        ("fleet-relay\n", "fleet-relay", "needs redis-statsdb"),
    ] {
        let (d, path) = fails(&format!("{AUTH}{text}"), &[]);
        let line = d
            .iter()
            .find(|l| l.contains(option))
            .unwrap_or_else(|| panic!("no {option} error: {d:?}"));
        assert!(line.starts_with(&format!("{path}:3: {option}: ")), "{line}");
        assert!(line.contains(why), "{line}");
    }
    let (c, _) = ok(
        &format!(
            "{AUTH}redis-statsdb=\"ip=127.0.0.1 port=6380 dbname=2\"\nfleet-quotas\nfleet-relay\n\
             fleet-lease-time=10\nfleet-redis-down=closed\n"
        ),
        &[],
    );
    assert!(c.fleet.quotas && c.fleet.relay);
    assert_eq!(c.fleet.lease_s, 10);
    assert_eq!(c.fleet.when_down, tern::config::FleetDown::Closed);
}
