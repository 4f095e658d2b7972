//! ICMP errors about peers (RFC 8656 §11.5, §18.13) in the core: reported to the client as a
//! Data indication with XOR-PEER-ADDRESS and ICMP (no DATA), only for a peer with a permission,
//! at most four per allocation per second.

use std::net::SocketAddr;

use crate::turn_harness::*;
use tern_proto::stun::{attr, Class, Method};
use tern_proto::turn::Icmp;

const PEER: &str = "198.51.100.7:9000";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

const PORT_UNREACHABLE: Icmp = Icmp {
    icmp_type: 3,
    code: 3,
    info: 0,
};

/// The ICMP attribute's value and the XOR-PEER-ADDRESS of an ICMP report.
fn report(out: &Out) -> ([u8; 8], SocketAddr) {
    let m = out.message();
    assert_eq!((m.method(), m.class()), (Method::DATA, Class::Indication));
    assert_eq!(m.data(), None, "an ICMP report carries no DATA");
    let icmp: [u8; 8] = m.get(attr::ICMP).expect("ICMP").try_into().unwrap();
    let peer = m.xor_address(attr::XOR_PEER_ADDRESS).unwrap().unwrap();
    (icmp, peer)
}

#[test]
fn an_icmp_error_for_a_permitted_peer_is_a_data_indication_with_icmp() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let relayed = c.allocated(&mut h);
    let relay = relay_id_of(&h, relayed);
    assert_eq!(h.peer_icmp(relay, peer(), PORT_UNREACHABLE), Out::Nothing);
    assert!(is_success(&c.permit(&mut h, peer())));

    let out = h.peer_icmp(relay, peer(), PORT_UNREACHABLE);
    let Out::Client { to, .. } = &out else {
        panic!("expected a report to the client, got {out:?}");
    };
    assert_eq!(*to, c.client.remote);
    assert_eq!(report(&out), ([0, 0, 3, 3, 0, 0, 0, 0], peer()));

    // Fragmentation needed carries the next-hop MTU; other codes carry zero, whatever the
    // kernel's extra value.
    let frag = Icmp {
        icmp_type: 3,
        code: 4,
        info: 1280,
    };
    let mtu = 1280u32.to_be_bytes();
    let out = h.peer_icmp(relay, peer(), frag);
    assert_eq!(report(&out).0, [0, 0, 3, 4, mtu[0], mtu[1], mtu[2], mtu[3]]);
    let host = Icmp {
        icmp_type: 3,
        code: 1,
        info: 77,
    };
    // The permission is per IP: another port of the peer (or 0, unknown) is reported too.
    let other: SocketAddr = "198.51.100.7:0".parse().unwrap();
    let out = h.peer_icmp(relay, other, host);
    assert_eq!(report(&out), ([0, 0, 3, 1, 0, 0, 0, 0], other));

    // Types §11.5 does not relay (an echo reply, a redirect) are dropped.
    h.advance(1);
    for icmp_type in [0, 5] {
        let icmp = Icmp {
            icmp_type,
            code: 0,
            info: 0,
        };
        assert_eq!(h.peer_icmp(relay, peer(), icmp), Out::Nothing);
    }
    // Another peer without a permission, and an unknown relay: nothing.
    let stranger: SocketAddr = "198.51.100.8:9000".parse().unwrap();
    assert_eq!(h.peer_icmp(relay, stranger, PORT_UNREACHABLE), Out::Nothing);
    let unknown = tern_proto::turn::RelayId(999);
    assert_eq!(h.peer_icmp(unknown, peer(), PORT_UNREACHABLE), Out::Nothing);
    assert!(matches!(
        h.peer_icmp(relay, peer(), PORT_UNREACHABLE),
        Out::Client { .. }
    ));
}

#[test]
fn icmp_reports_are_limited_to_four_per_allocation_per_second() {
    let mut h = Harness::new(config());
    let mut a = TestClient::new("203.0.113.5:40000");
    let mut b = TestClient::new("203.0.113.6:40000");
    let (relayed_a, relayed_b) = (a.allocated(&mut h), b.allocated(&mut h));
    let (relay_a, relay_b) = (relay_id_of(&h, relayed_a), relay_id_of(&h, relayed_b));
    assert!(is_success(&a.permit(&mut h, peer())));
    assert!(is_success(&b.permit(&mut h, peer())));
    for round in 0..3 {
        let sent = (0..10)
            .filter(|_| h.peer_icmp(relay_a, peer(), PORT_UNREACHABLE) != Out::Nothing)
            .count();
        assert_eq!(sent, 4, "round {round}");
        // Another allocation has its own budget.
        assert!(matches!(
            h.peer_icmp(relay_b, peer(), PORT_UNREACHABLE),
            Out::Client { .. }
        ));
        h.advance(1);
    }
}
