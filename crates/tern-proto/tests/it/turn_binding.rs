//! Binding requests through the shard (RFC 8489 §6.3.1): mapped addresses, SOFTWARE,
//! FINGERPRINT, 420, and malformed input dropped without an answer.

use crate::turn_harness::*;
use tern_proto::stun::{attr, Class, Method};

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

/// A classic (RFC 3489) Binding request: no magic cookie, a 16-byte transaction id, `attrs`.
fn classic(method_and_class: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = method_and_class.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&[0xA5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    for (typ, value) in attrs {
        m.extend_from_slice(&typ.to_be_bytes());
        m.extend_from_slice(&(value.len() as u16).to_be_bytes());
        m.extend_from_slice(value);
        m.resize(m.len().next_multiple_of(4), 0);
    }
    let len = (m.len() - 20) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    m
}

#[test]
fn classic_binding_gets_mapped_address_only_with_the_whole_transaction_id() {
    let mut h = Harness::new(config());
    let c = udp_client("203.0.113.5:40000");
    let request = classic(0x0001, &[]);
    let out = h.client_in(&c, &request);
    let Out::Client { to, bytes, .. } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(*to, c.remote);
    // 0x0101, length 12, the request's 16 bytes after the length, MAPPED-ADDRESS 203.0.113.5:40000.
    let mut expected = vec![0x01, 0x01, 0, 12];
    expected.extend_from_slice(&request[4..20]);
    expected.extend_from_slice(&[0, 1, 0, 8, 0, 1, 0x9C, 0x40, 203, 0, 113, 5]);
    assert_eq!(bytes, &expected);
    // No larger than the RFC 5389 answer to a request of the same size.
    let modern = h.client_in(&c, &binding(false, None));
    assert!(bytes.len() <= modern.client_bytes().len());
    // RFC 3489 §11.1's attributes are taken: CHANGE-REQUEST asking for no change,
    // RESPONSE-ADDRESS (answered at the source all the same), USERNAME, MESSAGE-INTEGRITY.
    let with_attrs = classic(
        0x0001,
        &[
            (0x0003, &[0, 0, 0, 0]),
            (0x0002, &[0, 1, 0, 53, 192, 0, 2, 1]),
            (0x0006, b"user"),
            (0x0008, &[0; 20]),
        ],
    );
    let out = h.client_in(&c, &with_attrs);
    let Out::Client { to, bytes, .. } = &out else {
        panic!("{out:?}")
    };
    assert_eq!((*to, &bytes[20..]), (c.remote, &expected[20..]));
    let counters = h.shard.counters();
    assert_eq!(
        (counters.binding_requests, counters.binding_responses),
        (3, 3)
    );
}

#[test]
fn nothing_else_is_taken_without_the_cookie() {
    let mut h = Harness::new(config());
    let c = udp_client("203.0.113.5:40000");
    let mut misaligned = classic(0x0001, &[(0x0006, b"user")]);
    misaligned.push(0);
    let cases = [
        // Allocate, a Binding response, a Binding indication.
        classic(0x0003, &[(0x0019, &[17, 0, 0, 0])]),
        classic(0x0101, &[]),
        classic(0x0011, &[]),
        // CHANGE-REQUEST for another address or port: tern has none.
        classic(0x0001, &[(0x0003, &[0, 0, 0, 6])]),
        // Attributes a classic Binding request cannot carry.
        classic(0x0001, &[(0x0019, &[17, 0, 0, 0])]),
        classic(0x0001, &[(0x8028, &[0, 0, 0, 0])]),
        classic(0x0001, &[(0x0020, &[0, 1, 0, 53, 192, 0, 2, 1])]),
        misaligned,
        // An attribute running past the end.
        {
            let mut m = classic(0x0001, &[(0x0006, b"user")]);
            m[22..24].copy_from_slice(&8u16.to_be_bytes());
            m
        },
    ];
    for (i, bytes) in cases.iter().enumerate() {
        assert_eq!(h.client_in(&c, bytes), Out::Nothing, "case {i}");
    }
    assert_eq!(h.shard.counters().client_tx_packets, 0);
}

#[test]
fn no_stun_backward_compatibility_ignores_classic_clients_and_drops_mapped_address() {
    let mut h = Harness::new(tern_proto::options::Options {
        stun_backward_compatibility: false,
        ..config()
    });
    let c = udp_client("203.0.113.5:40000");
    assert_eq!(h.client_in(&c, &classic(0x0001, &[])), Out::Nothing);
    let out = h.client_in(&c, &binding(false, None));
    let m = out.message();
    assert_eq!(m.xor_address(attr::XOR_MAPPED_ADDRESS), Some(Ok(c.remote)));
    assert_eq!(m.address(attr::MAPPED_ADDRESS), None);
    // no-stun silences classic clients too; secure-stun leaves them unanswered, since they
    // cannot authenticate.
    for cfg in [
        tern_proto::options::Options {
            no_stun: true,
            ..config()
        },
        tern_proto::options::Options {
            secure_stun: true,
            ..config()
        },
    ] {
        let mut h = Harness::new(cfg);
        assert_eq!(h.client_in(&c, &classic(0x0001, &[])), Out::Nothing);
    }
}
