//! Bandwidth limits on a virtual clock: the per-allocation `max-bps` bucket and the server-wide
//! `bps-capacity` budget shared by shards.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tern_proto::limits::{nanos_since, Capacity, CapacityShare, TokenBucket, MIN_BURST};

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

/// Offers `size`-byte packets evenly at `offered` bytes/s for `secs` seconds, starting at
/// `start`; returns the bytes let through.
fn offer(b: &mut TokenBucket, start: u64, offered: u64, size: usize, secs: u64) -> u64 {
    let gap = SEC * size as u64 / offered;
    let packets = secs * SEC / gap;
    (0..packets)
        .filter(|i| b.allow(start + i * gap, size))
        .count() as u64
        * size as u64
}

#[test]
fn overload_is_cut_to_the_rate_within_five_percent() {
    let rate = 20_000;
    let mut b = TokenBucket::new(rate, 0);
    assert_eq!(b.burst(), 4000);
    let passed = offer(&mut b, 0, 80_000, 1200, 5);
    let avg = passed / 5;
    // Burst (4000 B) on top of 5 s of rate: at most +4 %; at least rate × 5 s − one packet.
    assert!(
        (rate * 95 / 100..=rate * 105 / 100).contains(&avg),
        "{avg} B/s"
    );
    assert!(passed <= rate * 5 + 4000, "{passed}");
    assert!(passed >= rate * 5 - 1200, "{passed}");
}

#[test]
fn steady_state_is_exact_after_the_burst() {
    let rate = 20_000;
    let mut b = TokenBucket::new(rate, 0);
    offer(&mut b, 0, 80_000, 1200, 1);
    // Seconds 1..11 under overload: no burst left and tokens never capped, so the rate to
    // within two packets (the tokens left over at each end): 0.12 % of 10 s.
    let passed = offer(&mut b, SEC, 80_000, 1200, 10);
    assert!(passed.abs_diff(rate * 10) <= 2400, "{passed}");
}

#[test]
fn flow_within_the_limit_loses_nothing() {
    let mut b = TokenBucket::new(20_000, 0);
    let offered = offer(&mut b, 0, 19_000, 1200, 60);
    let gap = SEC * 1200 / 19_000;
    assert_eq!(offered, (60 * SEC / gap) * 1200);

    // At exactly the rate, with packets arriving in clumps of three every 180 ms.
    let mut b = TokenBucket::new(20_000, 0);
    let mut passed = 0;
    for clump in 0..300u64 {
        for _ in 0..3 {
            passed += u64::from(b.allow(clump * 180 * MS, 1200));
        }
    }
    assert_eq!(passed, 900);
}

#[test]
fn refused_packets_take_nothing() {
    let mut b = TokenBucket::with_burst(1000, 1500, 0);
    assert!(b.allow(0, 1500));
    for _ in 0..100 {
        assert!(!b.allow(SEC / 2, 600));
    }
    assert!(b.allow(SEC / 2, 500));
    assert_eq!(b.available(SEC / 2), 0);
}

#[test]
fn packet_larger_than_burst_never_passes_and_default_burst_has_a_floor() {
    let mut b = TokenBucket::with_burst(1_000_000, 1000, 0);
    assert!(!b.allow(10 * SEC, 1001));
    assert!(b.allow(10 * SEC, 1000));
    assert_eq!(TokenBucket::default_burst(1), MIN_BURST);
    let mut slow = TokenBucket::new(100, 0);
    assert!(
        slow.allow(0, 1500),
        "a full-size packet fits even a 100 B/s bucket"
    );
}

#[test]
fn long_idle_refills_only_to_the_burst() {
    let mut b = TokenBucket::new(20_000, 0);
    assert!(b.allow(0, 4000));
    // A year of silence: no overflow, and the bucket holds one burst, not a year of rate.
    let later = 365 * 24 * 3600 * SEC;
    assert_eq!(b.available(later), 4000);
    assert!(b.allow(later, 4000));
    assert!(!b.allow(later, 1));
    // The end of u64 time.
    assert_eq!(b.available(u64::MAX), 4000);
}

#[test]
fn extreme_rates_do_not_overflow() {
    // 10 Gbit/s and the u32 ceiling (34 Gbit/s); anything above clamps.
    for rate in [1_250_000_000u64, u64::from(u32::MAX), u64::MAX] {
        let mut b = TokenBucket::new(rate, 0);
        let burst = u64::from(b.burst());
        assert_eq!(b.available(0), burst);
        assert!(b.allow(0, usize::try_from(burst).unwrap()));
        assert!(!b.allow(0, 1));
        // One millisecond later: exactly a millisecond of rate.
        assert_eq!(b.available(MS), u64::from(b.rate()) / 1000);
        assert_eq!(b.available(u64::MAX), burst);
        assert!(!b.allow(u64::MAX, usize::MAX));
    }
    let mut fast = TokenBucket::new(1_250_000_000, 0);
    let passed = offer(&mut fast, 0, 2_500_000_000, 1200, 1);
    assert!(passed.abs_diff(1_250_000_000 + u64::from(fast.burst())) <= 2400);
}

#[test]
fn clock_stepping_back_earns_nothing() {
    let mut b = TokenBucket::with_burst(1000, 1000, 10 * SEC);
    assert!(b.allow(10 * SEC, 1000));
    assert_eq!(b.available(5 * SEC), 0);
    // Time is measured from the latest `now` seen, not the earlier one.
    assert_eq!(b.available(10 * SEC + SEC / 2), 500);
}

#[test]
fn unlimited_allows_everything_and_bucket_is_small() {
    let mut b = TokenBucket::new(0, 0);
    assert!(b.is_unlimited());
    assert!(b.allow(0, usize::MAX));
    assert_eq!(TokenBucket::unlimited(), TokenBucket::unlimited());
    assert!(TokenBucket::unlimited().allow(5, 1 << 20));
    assert!(std::mem::size_of::<TokenBucket>() <= 24);
}

#[test]
// A test needs one real Instant to build others from; nothing here depends on its value.
#[allow(clippy::disallowed_methods)]
fn nanos_since_saturates_before_the_epoch() {
    let epoch = Instant::now();
    let later = epoch + Duration::from_millis(1500);
    assert_eq!(nanos_since(epoch, later), 1_500_000_000);
    assert_eq!(nanos_since(later, epoch), 0);
}

/// Four shards offer 4 × 50 kB/s against a 100 kB/s server for 5 s, interleaved on one virtual
/// clock (whose turn comes first rotates, as it would between real threads): together they pass
/// the capacity (plus burst and the chunks held in purses), each gets a share, and a lone busy
/// shard may use all of it.
#[test]
fn capacity_is_shared_between_shards() {
    let cap = Capacity::new(100_000);
    let burst = 20_000;
    let mut shards = [CapacityShare::new(); 4];
    let mut passed = [0u64; 4];
    let gap = SEC * 1200 / 50_000;
    let mut t = 0;
    let mut tick = 0;
    while t < 5 * SEC {
        for k in 0..4 {
            let i = (tick + k) % 4;
            if shards[i].allow(&cap, t, 1200) {
                passed[i] += 1200;
            }
        }
        t += gap;
        tick += 1;
    }
    let total: u64 = passed.iter().sum();
    let held: u64 = shards.iter().map(|s| s.held()).sum();
    assert!(total + held <= 500_000 + burst, "{total} + {held}");
    assert!(total >= 500_000 - 4 * cap.chunk(), "{total}");
    for p in passed {
        assert!(p >= 100_000, "every shard gets a fair part: {passed:?}");
    }

    // One busy shard alone may use the whole capacity, not a quarter of it.
    let cap = Capacity::new(100_000);
    let mut only = CapacityShare::new();
    let mut alone = 0u64;
    let gap = SEC * 1200 / 400_000;
    let mut t = 0;
    while t < 5 * SEC {
        alone += 1200 * u64::from(only.allow(&cap, t, 1200));
        t += gap;
    }
    assert!(alone.abs_diff(500_000) <= burst + 1200, "{alone}");
}

/// Real threads racing on one `Capacity`, each on its own copy of the virtual clock: the sum
/// they pass never exceeds what the server-wide budget can grant.
#[test]
fn capacity_holds_under_concurrency() {
    let cap = Arc::new(Capacity::new(1_000_000));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let cap = cap.clone();
            thread::spawn(move || {
                let mut share = CapacityShare::new();
                let mut passed = 0u64;
                let mut t = 0;
                while t < 2 * SEC {
                    passed += 1200 * u64::from(share.allow(&cap, t, 1200));
                    t += 200_000;
                }
                passed + share.held()
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(total <= 2_000_000 + 200_000, "{total}");
    assert!(total >= 1_000_000, "{total}");
}

#[test]
fn unlimited_capacity_and_small_share() {
    let cap = Capacity::new(0);
    let mut s = CapacityShare::new();
    assert!(s.allow(&cap, 0, usize::MAX));
    assert_eq!(std::mem::size_of::<CapacityShare>(), 8);
}

/// A reload (`set_rate`) changes the capacity for the budget in force: from unlimited to
/// 100 kB/s, to 10 kB/s, and back to unlimited; a purse keeps at most one chunk of the old grant.
#[test]
fn capacity_follows_a_new_rate() {
    let cap = Capacity::new(0);
    let mut share = CapacityShare::new();
    let passed = |share: &mut CapacityShare, cap: &Capacity, start: u64| {
        let gap = SEC * 1200 / 1_000_000;
        (0..5_000u64)
            .filter(|i| share.allow(cap, start + i * gap, 1200))
            .count() as u64
            * 1200
    };
    assert_eq!(passed(&mut share, &cap, 0), 6_000_000);
    cap.set_rate(100_000);
    assert_eq!(cap.rate(), 100_000);
    // 6 s at 100 kB/s plus the 20 kB burst.
    let got = passed(&mut share, &cap, 10 * SEC);
    assert!(got.abs_diff(620_000) <= 2 * 1200, "{got}");
    cap.set_rate(10_000);
    let held = share.held();
    let got = passed(&mut share, &cap, 20 * SEC);
    assert!(
        got <= 60_000 + 3_000 + held + 1200 && got >= 60_000 - 1200,
        "{got}"
    );
    cap.set_rate(0);
    assert!(cap.is_unlimited());
    assert_eq!(passed(&mut share, &cap, 30 * SEC), 6_000_000);
}

#[test]
fn a_capacity_is_spent_while_traffic_runs_at_its_rate_and_not_before() {
    let cap = Capacity::new(100_000);
    assert!(!Capacity::new(0).is_spent(0), "unlimited is never spent");
    assert!(!cap.is_spent(SEC));
    let mut share = CapacityShare::new();
    let mut passed = 0u64;
    while share.allow(&cap, SEC, 1000) {
        passed += 1000;
    }
    assert!(passed > 0);
    assert!(cap.is_spent(SEC), "the burst is gone at once");
    // A second later the rate has refilled far more than a chunk.
    assert!(!cap.is_spent(2 * SEC));
}
