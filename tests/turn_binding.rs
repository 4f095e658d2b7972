//! Binding requests through the shard (RFC 8489 §6.3.1): mapped addresses, SOFTWARE,
//! FINGERPRINT, 420, and malformed input dropped without an answer.

mod turn_harness;

use tern::stun::{attr, Class, Method};
use turn_harness::*;

fn binding(fingerprint: bool, extra: Option<u16>) -> Vec<u8> {
    build(
        Method::BINDING,
        Class::Request,
        [7; 12],
        &move |b| match extra {
            Some(t) => b.add_raw(t, &[1, 2, 3, 4]),
            None => Ok(()),
        },
        None,
        fingerprint,
    )
}

#[test]
fn binding_answers_with_both_mapped_addresses_and_software() {
    let mut h = Harness::new(config());
    let c = udp_client("203.0.113.5:40000");
    let out = h.client_in(&c, &binding(false, None));
    let Out::Client { to, via, .. } = &out else {
        panic!("{out:?}")
    };
    assert_eq!((*to, *via), (c.remote, c.via));
    let m = out.message();
    assert_eq!(m.class(), Class::Success);
    assert_eq!(m.method(), Method::BINDING);
    assert_eq!(m.transaction_id(), &[7; 12]);
    assert_eq!(m.xor_address(attr::XOR_MAPPED_ADDRESS), Some(Ok(c.remote)));
    assert_eq!(m.address(attr::MAPPED_ADDRESS), Some(Ok(c.remote)));
    let software = m.software().unwrap().unwrap();
    assert_eq!(software, concat!("tern/", env!("CARGO_PKG_VERSION")));
    assert!(!m.has_fingerprint());
    assert!(!m.has_integrity());
    let counters = h.shard.counters();
    assert_eq!(
        (counters.binding_requests, counters.binding_responses),
        (1, 1)
    );
    assert_eq!(
        (counters.client_rx_packets, counters.client_tx_packets),
        (1, 1)
    );
}

#[test]
fn fingerprint_when_the_request_had_one_or_configured() {
    let mut h = Harness::new(config());
    let c = udp_client("203.0.113.5:40000");
    assert!(h
        .client_in(&c, &binding(true, None))
        .message()
        .has_fingerprint());

    let mut cfg = config();
    cfg.fingerprint = true;
    let mut h = Harness::new(cfg);
    assert!(h
        .client_in(&c, &binding(false, None))
        .message()
        .has_fingerprint());
}

#[test]
fn no_software_attribute_when_disabled() {
    let mut cfg = config();
    cfg.software_attribute = false;
    let mut h = Harness::new(cfg);
    let out = h.client_in(&udp_client("203.0.113.5:40000"), &binding(false, None));
    assert!(out.message().software().is_none());
}

#[test]
fn unknown_comprehension_required_attribute_gets_420() {
    let mut h = Harness::new(config());
    let c = udp_client("203.0.113.5:40000");
    let out = h.client_in(&c, &binding(false, Some(0x0077)));
    assert_eq!(out.message().class(), Class::Error);
    assert_eq!(code(&out), 420);
    assert_eq!(
        out.message().get(attr::UNKNOWN_ATTRIBUTES),
        Some(&[0x00, 0x77, 0, 0][..2])
    );
    assert_eq!(h.shard.counters().binding_errors, 1);
    // An unknown comprehension-optional attribute is ignored.
    let out = h.client_in(&c, &binding(false, Some(0x8077)));
    assert!(is_success(&out));
}

#[test]
fn malformed_input_is_counted_and_never_answered() {
    let mut h = Harness::new(config());
    let c = udp_client("203.0.113.5:40000");
    let good = binding(true, None);
    let mut bad_cookie = good.clone();
    bad_cookie[4] ^= 1;
    let mut bad_fingerprint = good.clone();
    let last = bad_fingerprint.len() - 1;
    bad_fingerprint[last] ^= 1;
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x00],
        good[..19].to_vec(),
        bad_cookie,
        bad_fingerprint,
        [good.as_slice(), &[0, 0, 0, 0]].concat(),
        vec![0xC0, 0, 0, 0],
        vec![0x40, 0x00, 0x00, 0x08, 1, 2],
    ];
    for (i, bytes) in cases.iter().enumerate() {
        assert_eq!(h.client_in(&c, bytes), Out::Nothing, "case {i}");
    }
    assert_eq!(h.shard.counters().malformed, cases.len() as u64);
    assert_eq!(h.shard.counters().client_tx_packets, 0);
}

#[test]
fn responses_and_binding_indications_are_not_answered() {
    let mut h = Harness::new(config());
    let c = udp_client("203.0.113.5:40000");
    let resp = build(
        Method::BINDING,
        Class::Success,
        [1; 12],
        &|_| Ok(()),
        None,
        false,
    );
    assert_eq!(h.client_in(&c, &resp), Out::Nothing);
    let ind = build(
        Method::BINDING,
        Class::Indication,
        [1; 12],
        &|_| Ok(()),
        None,
        false,
    );
    assert_eq!(h.client_in(&c, &ind), Out::Nothing);
    assert_eq!(h.shard.counters().malformed, 0);
}
