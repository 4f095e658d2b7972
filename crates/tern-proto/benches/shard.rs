//! One ChannelData packet through `turn::Shard`, client to peer and peer to client (RFC 8656
//! §12), with a counting allocator that proves the data path makes no heap allocation.

#![allow(clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tern_proto::options::Options;
use tern_proto::stun::{attr, channel, Class, MessageBuilder, MessageType, Method};
use tern_proto::turn::{
    BindError, BindRequest, Binder, Bound, Client, Output, RelayId, Settings, Shard, Shared,
    Transport, Via, HEADROOM,
};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CHANNEL: u16 = 0x4001;
const PAYLOAD: usize = 160;

struct OneRelay;

impl Binder for OneRelay {
    fn bind_relay(&mut self, req: &BindRequest) -> Result<Bound, BindError> {
        Ok(Bound {
            id: RelayId(1),
            addr: SocketAddr::new(req.ip, 50000),
        })
    }
}

struct Bench {
    shard: Shard,
    client: Client,
    peer: SocketAddr,
    now: Instant,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl Bench {
    fn new() -> Bench {
        let cfg = Options {
            no_auth: true,
            ..Options::default()
        };
        let listeners: [SocketAddr; 1] = ["192.0.2.1:3478".parse().unwrap()];
        let settings = Settings::from_options(&cfg, &listeners, &[]).expect("settings");
        let mut b = Bench {
            shard: Shard::new(Arc::new(settings), Arc::new(Shared::new([7; 32])), 0),
            client: Client {
                via: Via::Udp(0),
                transport: Transport::Udp,
                local: listeners[0],
                remote: "203.0.113.5:40000".parse().unwrap(),
            },
            peer: "198.51.100.7:9000".parse().unwrap(),
            now: Instant::now(),
            buf: vec![0; HEADROOM + 2048],
            scratch: vec![0; 1500],
        };
        let peer = b.peer;
        b.request(Method::ALLOCATE, &mut |m| {
            m.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        });
        b.request(Method::CHANNEL_BIND, &mut |m| {
            m.add_raw(
                attr::CHANNEL_NUMBER,
                &[(CHANNEL >> 8) as u8, CHANNEL as u8, 0, 0],
            )?;
            m.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
        });
        b
    }

    fn request(
        &mut self,
        method: Method,
        attrs: &mut dyn FnMut(&mut MessageBuilder<'_>) -> Result<(), tern_proto::stun::EncodeError>,
    ) {
        let mut msg = [0u8; 256];
        let typ = MessageType::new(method, Class::Request);
        let mut m = MessageBuilder::new(&mut msg, typ, &[1; 12]).expect("builder");
        attrs(&mut m).expect("attributes");
        let n = m.finish();
        self.buf[HEADROOM..HEADROOM + n].copy_from_slice(&msg[..n]);
        let out = self.shard.handle_client(
            self.now,
            0,
            &self.client,
            &mut self.buf,
            n,
            &mut self.scratch,
            &mut OneRelay,
        );
        let Output::Client { .. } = out else {
            panic!("{method:?}: no answer")
        };
    }

    #[inline]
    fn client_to_peer(&mut self) -> Output {
        channel::write_header(&mut self.buf[HEADROOM..], CHANNEL, PAYLOAD as u16);
        self.shard.handle_client(
            self.now,
            0,
            &self.client,
            &mut self.buf,
            channel::HEADER_LEN + PAYLOAD,
            &mut self.scratch,
            &mut OneRelay,
        )
    }

    #[inline]
    fn peer_to_client(&mut self) -> Output {
        self.shard
            .handle_peer(self.now, RelayId(1), self.peer, &mut self.buf, PAYLOAD)
    }
}

/// Runs both directions `n` times and fails loudly unless every packet was relayed without a
/// heap allocation.
fn check_zero_allocations(b: &mut Bench, n: u64) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..n {
        let sent = matches!(black_box(b.client_to_peer()), Output::Peer { .. });
        let back = matches!(black_box(b.peer_to_client()), Output::Client { .. });
        assert!(sent && back, "a packet was not relayed");
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    println!(
        "heap allocations per relayed packet: {} ({allocations} over {} packets)",
        allocations as f64 / (2 * n) as f64,
        2 * n
    );
    if allocations != 0 {
        panic!("the data path allocated {allocations} times over {n} round trips");
    }
}

fn shard(c: &mut Criterion) {
    let mut b = Bench::new();
    check_zero_allocations(&mut b, 10_000);
    let mut group = c.benchmark_group("shard");
    group.throughput(Throughput::Elements(1));
    group.bench_function("channeldata client to peer", |bench| {
        bench.iter(|| black_box(b.client_to_peer()))
    });
    group.bench_function("channeldata peer to client", |bench| {
        bench.iter(|| black_box(b.peer_to_client()))
    });
    group.finish();
}

criterion_group!(benches, shard);
criterion_main!(benches);
