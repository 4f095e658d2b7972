//! The per-source limit on answers to unauthenticated senders: a flooding source is cut at the
//! rate, other sources are not, windows reset with time, and memory never depends on how many
//! sources there are.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tern_proto::limits::{SourceRateLimit, DEFAULT_PER_SECOND, SLOTS};

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(n))
}

fn allowed(l: &mut SourceRateLimit, now: u64, ip: IpAddr, tries: u32) -> u32 {
    (0..tries).map(|_| u32::from(l.allow(now, ip))).sum()
}

#[test]
fn flooding_source_is_cut_while_a_thousand_others_get_answers() {
    let mut l = SourceRateLimit::new(10);
    let flooder = v4(0xC633_6401);
    assert_eq!(allowed(&mut l, 0, flooder, 1000), 10);
    // 1,000 sources, each asking three times in the same window. One of them is cut only if
    // it shares both of its slots with the flooder: 1,000 / 4096² ≈ 6e-5 per run.
    for i in 0..1000u32 {
        let ip = v4(0x0A00_0000 + i * 7);
        assert_eq!(allowed(&mut l, 5 * MS, ip, 3), 3, "source {ip} was limited");
        assert!(!l.allow(6 * MS, flooder), "the flood stays cut");
    }
    assert_eq!(l.refused(), 990 + 1000);
}

#[test]
fn window_resets_each_second() {
    let mut l = SourceRateLimit::new(4);
    let ip = v4(0x0102_0304);
    assert_eq!(allowed(&mut l, 0, ip, 10), 4);
    assert_eq!(
        allowed(&mut l, SEC - 1, ip, 10),
        0,
        "same window until the second ends"
    );
    assert_eq!(allowed(&mut l, SEC, ip, 10), 4);
    // A long gap (days) starts a fresh window as well.
    assert_eq!(allowed(&mut l, 3 * 86_400 * SEC + 17, ip, 10), 4);
}

#[test]
fn sustained_flood_gets_the_rate_and_no_more() {
    let mut l = SourceRateLimit::new(DEFAULT_PER_SECOND);
    let ip = v4(0x0808_0808);
    // 1,000 requests per second for 20 s.
    let answered: u32 = (0..20_000u64).map(|i| u32::from(l.allow(i * MS, ip))).sum();
    assert_eq!(answered, 20 * DEFAULT_PER_SECOND);
}

#[test]
fn ipv4_mapped_form_is_the_same_source() {
    let mut l = SourceRateLimit::new(3);
    let plain = v4(0xC000_0201);
    let mapped = IpAddr::V6(Ipv4Addr::from(0xC000_0201).to_ipv6_mapped());
    assert_eq!(allowed(&mut l, 0, plain, 2), 2);
    assert_eq!(allowed(&mut l, 0, mapped, 5), 1);
    assert_eq!(allowed(&mut l, 0, IpAddr::V6(Ipv6Addr::LOCALHOST), 3), 3);
}

#[test]
fn many_sources_never_loosen_the_limit() {
    // A spoofed flood from 50,000 sources, each sending 12: none gets more than its 10,
    // whatever slots they share.
    let mut l = SourceRateLimit::new(10);
    let mut most = 0;
    for i in 0..50_000u32 {
        most = most.max(allowed(&mut l, 0, v4(i.wrapping_mul(2_654_435_761)), 12));
    }
    assert_eq!(most, 10);
}

#[test]
fn memory_is_constant() {
    // The limiter is a pointer to a fixed table plus a few words; the table is two rows of
    // SLOTS eight-byte counters, the same for one source or a million.
    assert!(std::mem::size_of::<SourceRateLimit>() <= 48);
    assert_eq!(SourceRateLimit::table_bytes(), 2 * SLOTS * 8);
    assert_eq!(SLOTS, 4096);
}

#[test]
fn zero_means_unlimited() {
    let mut l = SourceRateLimit::new(0);
    assert_eq!(allowed(&mut l, 0, v4(1), 10_000), 10_000);
    assert_eq!(l.refused(), 0);
}
