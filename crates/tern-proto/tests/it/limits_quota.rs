//! Allocation quotas: user-quota, total-quota and the capacity ceiling, their error codes, and
//! that concurrent Allocates on many threads never push a count past its limit.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use tern_proto::limits::{QuotaExceeded, QuotaTicket, Quotas};
use tern_proto::options::Options;
use tern_proto::stun::ErrorCode;

#[test]
fn user_quota_refuses_third_allocation_of_one_user_only() {
    let q = Quotas::new(2, 0);
    let a1 = q.try_acquire("alice").unwrap();
    let a2 = q.try_acquire("alice").unwrap();
    assert_eq!(q.try_acquire("alice"), Err(QuotaExceeded::User));
    assert_eq!(q.user_allocations("alice"), 2);

    let b1 = q.try_acquire("bob").unwrap();
    let b2 = q.try_acquire("bob").unwrap();
    assert_eq!(q.allocations(), 4);

    q.release(a1);
    assert_eq!(q.user_allocations("alice"), 1);
    let a3 = q.try_acquire("alice").unwrap();
    assert_eq!(q.try_acquire("alice"), Err(QuotaExceeded::User));

    for t in [a2, a3, b1, b2] {
        q.release(t);
    }
    assert_eq!(q.allocations(), 0);
    assert_eq!(q.tracked_users(), 0, "users at zero leave the map");
}

#[test]
fn total_quota_refuses_everyone_until_a_release() {
    let q = Quotas::new(0, 3);
    let tickets: Vec<QuotaTicket> = ["a", "b", "c"]
        .iter()
        .map(|u| q.try_acquire(u).unwrap())
        .collect();
    assert_eq!(q.try_acquire("d"), Err(QuotaExceeded::Total));
    assert_eq!(q.try_acquire("a"), Err(QuotaExceeded::Total));
    assert_eq!(q.tracked_users(), 0, "unlimited user-quota tracks no user");

    let mut tickets = tickets.into_iter();
    q.release(tickets.next().unwrap());
    let d = q.try_acquire("d").unwrap();
    assert_eq!(q.allocations(), 3);
    q.release(d);
    tickets.for_each(|t| q.release(t));
    assert_eq!(q.allocations(), 0);
}

#[test]
fn user_quota_checked_before_total_and_refusal_takes_nothing() {
    let q = Quotas::new(1, 2);
    let a = q.try_acquire("alice").unwrap();
    assert_eq!(q.try_acquire("alice"), Err(QuotaExceeded::User));
    assert_eq!(
        q.allocations(),
        1,
        "a user refusal must not hold a total slot"
    );
    let b = q.try_acquire("bob").unwrap();
    assert_eq!(q.try_acquire("carol"), Err(QuotaExceeded::Total));
    assert_eq!(
        q.tracked_users(),
        2,
        "a total refusal must not leave a user entry"
    );
    q.release(a);
    q.release(b);
    assert_eq!((q.allocations(), q.tracked_users()), (0, 0));
}

#[test]
fn capacity_ceiling_maps_to_508_and_quotas_to_486() {
    let q = Quotas::new(0, 0);
    q.set_max_allocations(1);
    let a = q.try_acquire("alice").unwrap();
    let err = q.try_acquire("bob").unwrap_err();
    assert_eq!(err, QuotaExceeded::Capacity);
    assert_eq!(ErrorCode::from(err), ErrorCode::INSUFFICIENT_CAPACITY);
    assert_eq!(
        QuotaExceeded::User.error_code(),
        ErrorCode::ALLOCATION_QUOTA_REACHED
    );
    assert_eq!(
        QuotaExceeded::Total.error_code(),
        ErrorCode::ALLOCATION_QUOTA_REACHED
    );

    // With both limits reached, the operator's total-quota is the one reported.
    q.set_limits(0, 1);
    assert_eq!(q.try_acquire("bob"), Err(QuotaExceeded::Total));
    q.set_max_allocations(0);
    q.set_limits(0, 0);
    let b = q.try_acquire("bob").unwrap();
    q.release(a);
    q.release(b);
    assert_eq!(q.allocations(), 0);
}

#[test]
fn raising_user_quota_later_does_not_corrupt_counts() {
    let q = Quotas::new(0, 0);
    let uncounted = q.try_acquire("alice").unwrap();
    q.set_limits(1, 0);
    let counted = q.try_acquire("alice").unwrap();
    assert_eq!(q.try_acquire("alice"), Err(QuotaExceeded::User));
    // Releasing the ticket taken while users were not tracked leaves alice's count alone.
    q.release(uncounted);
    assert_eq!(q.user_allocations("alice"), 1);
    q.release(counted);
    assert_eq!((q.allocations(), q.tracked_users()), (0, 0));
}

#[test]
fn foreign_ticket_cannot_wrap_the_total_below_zero() {
    let a = Quotas::new(1, 0);
    let b = Quotas::new(1, 0);
    let t = a.try_acquire("alice").unwrap();
    b.release(t);
    assert_eq!((b.allocations(), b.tracked_users()), (0, 0));
    assert_eq!(a.allocations(), 1);
}

#[test]
fn from_config_reads_both_quotas() {
    let cfg = Options {
        user_quota: 1,
        total_quota: 5,
        ..Options::default()
    };
    let q = Quotas::from_options(&cfg);
    let _held = q.try_acquire("u").unwrap();
    assert_eq!(q.try_acquire("u"), Err(QuotaExceeded::User));
    let rest: Vec<_> = (0..4)
        .map(|i| q.try_acquire(&format!("v{i}")).unwrap())
        .collect();
    assert_eq!(q.try_acquire("w"), Err(QuotaExceeded::Total));
    assert_eq!(rest.len(), 4);
}

#[test]
fn ticket_is_small() {
    assert_eq!(std::mem::size_of::<QuotaTicket>(), 8);
}

/// Eight threads over four users race acquire/release. First all eight ask at once for one
/// allocation each against a total of seven: exactly one is refused. Then they hammer: the
/// counts they observe never pass either limit, and everything ends at zero.
#[test]
fn concurrent_acquire_release_never_exceeds_limits() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 20_000;
    const USER_QUOTA: u32 = 3;
    const TOTAL_QUOTA: u32 = 7;
    let q = Arc::new(Quotas::new(USER_QUOTA, TOTAL_QUOTA));
    let users = ["u0", "u1", "u2", "u3"];
    let per_user: Arc<[AtomicU32; 4]> = Arc::new(Default::default());
    let total_max = Arc::new(AtomicU32::new(0));
    let user_max = Arc::new(AtomicU32::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let first_refused = Arc::new(AtomicU32::new(0));

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (q, per_user, total_max, user_max, start, first_refused) = (
                q.clone(),
                per_user.clone(),
                total_max.clone(),
                user_max.clone(),
                start.clone(),
                first_refused.clone(),
            );
            thread::spawn(move || {
                start.wait();
                match q.try_acquire(users[t % users.len()]) {
                    Ok(ticket) => {
                        start.wait();
                        q.release(ticket);
                    }
                    Err(e) => {
                        assert_eq!(e, QuotaExceeded::Total);
                        first_refused.fetch_add(1, Ordering::SeqCst);
                        start.wait();
                    }
                }
                start.wait();
                let mut held: Vec<(usize, QuotaTicket)> = Vec::new();
                for round in 0..ROUNDS {
                    let u = (t + round) % users.len();
                    match q.try_acquire(users[u]) {
                        Ok(ticket) => {
                            // Counted here after the quota counted it, and un-counted below
                            // before it is released: this count never exceeds the true one.
                            let mine = per_user[u].fetch_add(1, Ordering::SeqCst) + 1;
                            user_max.fetch_max(mine, Ordering::SeqCst);
                            total_max.fetch_max(q.allocations(), Ordering::SeqCst);
                            held.push((u, ticket));
                        }
                        Err(e) => {
                            assert!(matches!(e, QuotaExceeded::User | QuotaExceeded::Total));
                        }
                    }
                    if held.len() > 2 || round % 3 == 0 {
                        if let Some((u, ticket)) = held.pop() {
                            per_user[u].fetch_sub(1, Ordering::SeqCst);
                            q.release(ticket);
                        }
                    }
                }
                for (u, ticket) in held {
                    per_user[u].fetch_sub(1, Ordering::SeqCst);
                    q.release(ticket);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }

    assert_eq!(
        first_refused.load(Ordering::SeqCst),
        THREADS as u32 - TOTAL_QUOTA
    );
    assert!(total_max.load(Ordering::SeqCst) <= TOTAL_QUOTA);
    assert!(user_max.load(Ordering::SeqCst) <= USER_QUOTA);
    assert!(user_max.load(Ordering::SeqCst) >= 1);
    assert_eq!(q.allocations(), 0);
    assert_eq!(q.tracked_users(), 0);
}

#[test]
fn full_means_the_next_allocation_would_be_refused_by_the_total_or_the_ceiling() {
    let q = Quotas::new(1, 2);
    assert!(!q.is_full());
    let a = q.try_acquire("alice").unwrap();
    assert!(!q.is_full(), "user-quota is per user, not fullness");
    let b = q.try_acquire("bob").unwrap();
    assert!(q.is_full());
    q.release(a);
    assert!(!q.is_full());
    assert_eq!(q.capacity(), 2);
    q.set_max_allocations(1);
    assert!(q.is_full(), "the descriptor ceiling counts too");
    assert_eq!(q.capacity(), 1, "the lower limit");
    q.release(b);
    assert!(!q.is_full());
}
