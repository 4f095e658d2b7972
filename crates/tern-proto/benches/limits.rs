//! Cost of the limits on the packet path: the per-allocation bucket, the shard's capacity
//! purse, the unauthenticated-answer limiter, and (control plane) a quota acquire/release.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion};
use tern_proto::limits::{Capacity, CapacityShare, Quotas, SourceRateLimit, TokenBucket};

fn limits(c: &mut Criterion) {
    let mut bucket = TokenBucket::new(125_000_000, 0);
    let mut t = 0u64;
    c.bench_function("token_bucket_allow", |b| {
        b.iter(|| {
            t += 10_000;
            black_box(bucket.allow(black_box(t), 1200))
        })
    });

    let cap = Capacity::new(1_250_000_000);
    let mut share = CapacityShare::new();
    let mut t = 0u64;
    c.bench_function("capacity_share_allow", |b| {
        b.iter(|| {
            t += 1_000;
            black_box(share.allow(&cap, black_box(t), 1200))
        })
    });

    let mut limiter = SourceRateLimit::new(10);
    let mut n = 0u32;
    c.bench_function("source_rate_limit_allow", |b| {
        b.iter(|| {
            n = n.wrapping_add(0x9E37_79B9);
            black_box(limiter.allow(1_000, IpAddr::V4(Ipv4Addr::from(n))))
        })
    });

    let quotas = Quotas::new(4, 100_000);
    c.bench_function("quota_acquire_release", |b| {
        b.iter(|| {
            if let Ok(ticket) = quotas.try_acquire(black_box("alice")) {
                quotas.release(ticket);
            }
        })
    });
}

criterion_group!(benches, limits);
criterion_main!(benches);
