//! The per-request paths (credential lookup, nonce issue/check, peer checks) never touch the
//! heap: counted with a global allocator wrapper, per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

use tern_proto::auth::{Credentials, Lookup, NonceCheck, NonceKey};
use tern_proto::limits::PeerPolicy;
use tern_proto::options::{IpRange, Options, User, UserSecret};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

#[test]
fn request_paths_do_not_allocate() {
    let cfg = Options {
        realm: "example.org".into(),
        users: vec![User {
            name: "alice".into(),
            secret: UserSecret::Password("pw".into()),
        }],
        use_auth_secret: true,
        static_auth_secrets: vec!["one".into(), "two".into()],
        allowed_peer_ips: vec![IpRange {
            start: "10.0.0.0".parse().unwrap(),
            end: "10.0.0.255".parse().unwrap(),
        }],
        ..Options::default()
    };
    let creds = Credentials::from_options(&cfg);
    let key = NonceKey::from_bytes([3; 32]);
    let client: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let listener: SocketAddr = "127.0.0.1:3478".parse().unwrap();
    let policy = PeerPolicy::from_options(&cfg, &[listener], &["127.0.0.1".parse().unwrap()]);
    let peers: Vec<SocketAddr> = [
        "8.8.8.8:1",
        "[::ffff:10.0.0.1]:2",
        "127.0.0.1:3478",
        "[fe80::1]:3",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();

    let mut results = Vec::with_capacity(64);
    let n = allocations(|| {
        for name in ["alice", "1700000100:bob", "bob:1600000000", "nobody"] {
            let lookup = creds.lookup(name, 1_700_000_000);
            results.push(matches!(lookup, Lookup::Keys(_)));
            results.push(!creds.quota_user(name).is_empty());
        }
        let nonce = key.issue(1_700_000_000, client);
        results.push(key.check(nonce.as_bytes(), 1_700_000_001, client, 600) == NonceCheck::Valid);
        for peer in &peers {
            results.push(policy.check(*peer).is_ok());
            results.push(policy.check_ip(peer.ip()).is_ok());
        }
    });
    assert_eq!(n, 0, "heap allocations on request paths");
    // Keys/quota per name, the nonce, then check/check_ip per peer.
    let expected = [
        true, true, true, true, false, true, false, true, // lookups and quota users
        true, // nonce
        // 127.0.0.1 is the relay IP here, yet loopback is never exempt from the policy.
        true, true, true, true, false, false, false, false, // peers
    ];
    assert_eq!(results, expected);
}
