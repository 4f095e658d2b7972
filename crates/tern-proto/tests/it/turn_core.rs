//! Allocate, Refresh, authentication and lifetimes through the shard on a virtual clock
//! (RFC 8656 §7, RFC 8489 §9.2).

use crate::turn_harness::*;
use tern_proto::auth::rest_password;
use tern_proto::options::{Options, User, UserSecret};
use tern_proto::stun::{attr, Class, Method};
use tern_proto::turn::{BindError, Client, Transport, Via};

fn transport(
    b: &mut tern_proto::stun::MessageBuilder<'_>,
    proto: u8,
) -> Result<(), tern_proto::stun::EncodeError> {
    b.add_raw(attr::REQUESTED_TRANSPORT, &[proto, 0, 0, 0])
}

#[test]
fn first_request_gets_401_with_realm_and_nonce_and_no_state() {
    let mut h = Harness::new(config());
    let c = udp_client("203.0.113.5:40000");
    let req = build(
        Method::ALLOCATE,
        Class::Request,
        [1; 12],
        &|b| transport(b, 17),
        None,
        false,
    );
    let out = h.client_in(&c, &req);
    assert_eq!(code(&out), 401);
    let m = out.message();
    assert_eq!(m.realm(), Some(Ok(REALM)));
    assert!(m.nonce().is_some_and(|n| !n.is_empty()));
    assert!(!m.has_integrity());
    assert_eq!(h.shard.allocation_count(), 0);
    assert_eq!(h.shard.counters().unauthenticated_401, 1);
    assert!(h.io.binds.is_empty());
}

#[test]
fn allocate_succeeds_signed_with_the_users_key() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.allocate(&mut h);
    let m = out.message();
    assert_eq!(m.class(), Class::Success, "{:?}", out.error_code());
    assert_eq!(m.verify_integrity(&c.key), Ok(()));
    let relayed = m.xor_address(attr::XOR_RELAYED_ADDRESS).unwrap().unwrap();
    assert_eq!(relayed.ip(), ip("192.0.2.1"));
    assert_eq!(relayed, h.io.binds[0].1.addr);
    assert_eq!(m.u32_attr(attr::LIFETIME), Some(Ok(600)));
    assert_eq!(
        m.xor_address(attr::XOR_MAPPED_ADDRESS),
        Some(Ok(c.client.remote))
    );
    assert_eq!(h.shard.allocation_count(), 1);
    assert_eq!(h.shard.counters().allocations, 1);
    assert!(!h.io.binds[0].0.dont_fragment);
}

#[test]
fn lifetimes_default_raised_and_capped() {
    for (asked, granted) in [
        (None, 600),
        (Some(100), 600),
        (Some(2000), 2000),
        (Some(99_999), 3600),
    ] {
        let mut h = Harness::new(config());
        let mut c = TestClient::new("203.0.113.5:40000");
        let out = c.request(&mut h, Method::ALLOCATE, &move |b| {
            transport(b, 17)?;
            match asked {
                Some(l) => b.add_u32(attr::LIFETIME, l),
                None => Ok(()),
            }
        });
        assert_eq!(
            out.message().u32_attr(attr::LIFETIME),
            Some(Ok(granted)),
            "{asked:?}"
        );
        let refreshed = c.refresh(&mut h, asked);
        assert_eq!(
            refreshed.message().u32_attr(attr::LIFETIME),
            Some(Ok(granted)),
            "{asked:?}"
        );
    }
}

#[test]
fn retransmitted_allocate_gets_the_same_answer_and_a_new_one_437() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let first = c.allocate(&mut h);
    assert!(is_success(&first));
    let retransmission = c.last.clone();
    let again = h.client_in(&c.client, &retransmission);
    assert_eq!(again.client_bytes(), first.client_bytes());
    assert_eq!(h.io.binds.len(), 1);
    assert_eq!(h.shard.allocation_count(), 1);
    let tid = c.tid();
    let other = h.client_in(
        &c.client,
        &c.signed(Method::ALLOCATE, tid, &|b| transport(b, 17)),
    );
    assert_eq!(code(&other), 437);
    assert_eq!(other.message().verify_integrity(&c.key), Ok(()));
    assert_eq!(h.io.binds.len(), 1);
}

#[test]
fn requests_without_an_allocation_get_437() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    assert_eq!(code(&c.refresh(&mut h, Some(600))), 437);
    assert_eq!(
        code(&c.permit(&mut h, "198.51.100.1:9".parse().unwrap())),
        437
    );
    assert_eq!(
        code(&c.bind(&mut h, 0x4000, "198.51.100.1:9".parse().unwrap())),
        437
    );
}

#[test]
fn refresh_zero_deallocates_and_closes_the_relay() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    c.allocated(&mut h);
    let out = c.refresh(&mut h, Some(0));
    assert!(is_success(&out));
    assert_eq!(out.message().u32_attr(attr::LIFETIME), Some(Ok(0)));
    assert_eq!(h.io.closed, vec![h.io.binds[0].1.id]);
    assert_eq!(h.shard.allocation_count(), 0);
    assert_eq!(h.shard.counters().allocations, 0);
    assert_eq!(code(&c.refresh(&mut h, Some(600))), 437);
}

#[test]
fn allocation_expiry_closes_the_relay() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    c.allocated(&mut h);
    let deadline = h.shard.next_timeout().expect("a timer");
    assert!(deadline > h.now);
    h.advance(599);
    assert!(h.io.closed.is_empty());
    assert_eq!(h.shard.allocation_count(), 1);
    h.advance(2);
    assert_eq!(h.io.closed, vec![h.io.binds[0].1.id]);
    assert_eq!(h.shard.allocation_count(), 0);
    assert_eq!(h.shard.next_timeout(), None);
}

#[test]
fn refresh_extends_the_allocation() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    c.allocated(&mut h);
    h.advance(500);
    assert!(is_success(&c.refresh(&mut h, Some(600))));
    h.advance(500);
    assert_eq!(h.shard.allocation_count(), 1);
    h.advance(101);
    assert_eq!(h.shard.allocation_count(), 0);
}

/// A client that took the 401's nonce, and the signed Allocate it sends `secs` later.
fn allocate_after(h: &mut Harness, secs: u64) -> (TestClient, Out) {
    let mut c = TestClient::new("203.0.113.5:40000");
    let req = build(
        Method::ALLOCATE,
        Class::Request,
        [1; 12],
        &|b| transport(b, 17),
        None,
        false,
    );
    let out = h.client_in(&c.client, &req);
    c.nonce = out.message().nonce().unwrap().to_vec();
    h.advance(secs);
    let tid = c.tid();
    let out = h.client_in(
        &c.client,
        &c.signed(Method::ALLOCATE, tid, &|b| transport(b, 17)),
    );
    (c, out)
}

#[test]
fn stale_nonce_gets_438_with_a_new_nonce_then_succeeds() {
    let mut h = Harness::new(config());
    let (mut c, out) = allocate_after(&mut h, 700);
    assert_eq!(code(&out), 438);
    let m = out.message();
    assert_eq!(m.realm(), Some(Ok(REALM)));
    let fresh = m.nonce().unwrap().to_vec();
    assert_ne!(fresh, c.nonce);
    c.nonce = fresh;
    let tid = c.tid();
    let out = h.client_in(
        &c.client,
        &c.signed(Method::ALLOCATE, tid, &|b| transport(b, 17)),
    );
    assert!(is_success(&out));
}

/// coturn's `stale-nonce=0`, which deployment guides set: nonces never expire (taken literally,
/// every request a second after its challenge would get 438).
#[test]
fn stale_nonce_zero_means_a_nonce_never_expires() {
    let mut h = Harness::new(Options {
        stale_nonce: 0,
        ..config()
    });
    // A day later, far past the default 600 s.
    let (_, out) = allocate_after(&mut h, 86_400);
    assert!(is_success(&out), "{:?}", code(&out));
}

#[test]
fn wrong_password_and_unknown_user_get_401() {
    let mut h = Harness::new(config());
    let mut c = TestClient::with(udp_client("203.0.113.5:40000"), USER, "wrong");
    assert_eq!(code(&c.allocate(&mut h)), 401);
    let mut d = TestClient::with(udp_client("203.0.113.6:40000"), "mallory", PASSWORD);
    let out = d.allocate(&mut h);
    assert_eq!(code(&out), 401);
    assert!(out.message().nonce().is_some());
    assert_eq!(h.shard.allocation_count(), 0);
    assert!(h.io.binds.is_empty());
}

#[test]
fn a_forged_nonce_gets_401_and_missing_attributes_400() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    c.nonce = b"not-a-nonce-of-this-server".to_vec();
    let tid = c.tid();
    let out = h.client_in(
        &c.client,
        &c.signed(Method::ALLOCATE, tid, &|b| transport(b, 17)),
    );
    assert_eq!(code(&out), 401);
    // MESSAGE-INTEGRITY without USERNAME/REALM/NONCE.
    let mut buf = [0u8; 256];
    let mut b = tern_proto::stun::MessageBuilder::new(
        &mut buf,
        tern_proto::stun::MessageType::new(Method::ALLOCATE, Class::Request),
        &[3; 12],
    )
    .unwrap();
    transport(&mut b, 17).unwrap();
    b.add_message_integrity(&c.key).unwrap();
    let n = b.finish();
    assert_eq!(code(&h.client_in(&c.client, &buf[..n])), 400);
}

fn rest_config() -> tern_proto::options::Options {
    let mut cfg = config();
    cfg.users.clear();
    cfg.use_auth_secret = true;
    cfg.static_auth_secrets = vec!["s3cr3t".into()];
    cfg
}

#[test]
fn rest_credentials_work_until_expiry_and_refresh_continues_past_it() {
    let mut h = Harness::new(rest_config());
    let expired = format!("{}:bob", UNIX_START - 10);
    let pw = rest_password("s3cr3t", &expired);
    let mut c = TestClient::with(udp_client("203.0.113.5:40000"), &expired, &pw);
    assert_eq!(code(&c.allocate(&mut h)), 401);

    let valid = format!("{}:bob", UNIX_START + 60);
    let pw = rest_password("s3cr3t", &valid);
    let mut d = TestClient::with(udp_client("203.0.113.6:40000"), &valid, &pw);
    d.allocated(&mut h);
    h.advance(120);
    // The username expired, but the allocation's cached key still serves it (coturn).
    let out = d.refresh(&mut h, Some(600));
    assert!(is_success(&out), "{:?}", out.error_code());
}

#[test]
fn another_username_inside_an_allocation_gets_441() {
    let mut cfg = config();
    cfg.users.push(User {
        name: "bob".into(),
        secret: UserSecret::Password("hunter2".into()),
    });
    let mut h = Harness::new(cfg);
    let mut a = TestClient::new("203.0.113.5:40000");
    a.allocated(&mut h);
    let mut b = TestClient::with(a.client, "bob", "hunter2");
    b.nonce = a.nonce.clone();
    assert_eq!(code(&b.refresh(&mut h, Some(600))), 441);
}

#[test]
fn ten_thousand_unauthenticated_allocates_leave_no_state() {
    let mut h = Harness::new(config());
    let req = build(
        Method::ALLOCATE,
        Class::Request,
        [1; 12],
        &|b| transport(b, 17),
        None,
        false,
    );
    for i in 0..10_000u32 {
        let remote = format!(
            "10.{}.{}.{}:{}",
            i >> 16,
            (i >> 8) & 0xFF,
            i & 0xFF,
            1024 + (i % 5000)
        );
        let out = h.client_in(&udp_client(&remote), &req);
        assert_eq!(code(&out), 401);
    }
    assert_eq!(h.shard.counters().unauthenticated_401, 10_000);
    assert_eq!(h.shard.allocation_count(), 0);
    assert_eq!(h.shard.next_timeout(), None);
    assert!(h.io.binds.is_empty());
}

/// A TCP relay over a UDP control connection is 400 (RFC 6062 §5.1); a protocol tern does not
/// relay (here SCTP) is 442.
#[test]
fn requested_transport_missing_or_tcp_over_udp_is_400_and_other_is_442() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    assert_eq!(code(&c.request(&mut h, Method::ALLOCATE, &|_| Ok(()))), 400);
    assert_eq!(
        code(&c.request(&mut h, Method::ALLOCATE, &|b| transport(b, 6))),
        400
    );
    assert_eq!(
        code(&c.request(&mut h, Method::ALLOCATE, &|b| transport(b, 132))),
        442
    );
    assert_eq!(h.shard.allocation_count(), 0);
}

#[test]
fn unknown_required_attribute_in_an_authenticated_request_gets_420() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.request(&mut h, Method::ALLOCATE, &|b| {
        transport(b, 17)?;
        b.add_raw(0x0031, &[0; 4])
    });
    assert_eq!(code(&out), 420);
    assert_eq!(
        out.message().get(attr::UNKNOWN_ATTRIBUTES),
        Some(&[0x00, 0x31][..])
    );
    assert_eq!(out.message().verify_integrity(&c.key), Ok(()));
}

#[test]
fn exhausted_ports_give_508() {
    let mut h = Harness::new(config());
    h.io.fail = Some(BindError::Exhausted);
    let mut c = TestClient::new("203.0.113.5:40000");
    assert_eq!(code(&c.allocate(&mut h)), 508);
    assert_eq!(h.shard.allocation_count(), 0);
}

#[test]
fn dont_fragment_reaches_the_bind_request() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.request(&mut h, Method::ALLOCATE, &|b| {
        transport(b, 17)?;
        b.add_raw(attr::DONT_FRAGMENT, &[])
    });
    assert!(is_success(&out));
    assert!(h.io.binds[0].0.dont_fragment);
}

#[test]
fn no_auth_serves_without_credentials() {
    let mut cfg = config();
    cfg.users.clear();
    cfg.no_auth = true;
    let mut h = Harness::new(cfg);
    let c = udp_client("203.0.113.5:40000");
    let req = build(
        Method::ALLOCATE,
        Class::Request,
        [1; 12],
        &|b| transport(b, 17),
        None,
        false,
    );
    let out = h.client_in(&c, &req);
    assert!(is_success(&out));
    assert!(!out.message().has_integrity());
    assert_eq!(h.shard.allocation_count(), 1);
}

#[test]
fn stream_close_ends_its_allocation() {
    let mut h = Harness::new(config());
    let client = Client {
        via: Via::Stream(7),
        transport: Transport::Tcp,
        local: "192.0.2.1:3478".parse().unwrap(),
        remote: "203.0.113.5:40000".parse().unwrap(),
    };
    let mut c = TestClient::with(client, USER, PASSWORD);
    c.allocated(&mut h);
    h.shard.handle_stream_closed(Via::Stream(8));
    h.run_commands();
    assert_eq!(h.shard.allocation_count(), 1);
    h.shard.handle_stream_closed(Via::Stream(7));
    h.run_commands();
    assert_eq!(h.shard.allocation_count(), 0);
    assert_eq!(h.io.closed.len(), 1);
}

#[test]
fn an_expired_allocation_does_not_block_a_new_one_before_the_timer_runs() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    c.allocated(&mut h);
    // Move the clock without running the timer.
    h.now += std::time::Duration::from_secs(601);
    h.unix += 601;
    let out = c.allocate(&mut h);
    assert!(is_success(&out), "{:?}", out.error_code());
    assert_eq!(h.io.closed, vec![h.io.binds[0].1.id]);
    assert_eq!(h.shard.allocation_count(), 1);
}
