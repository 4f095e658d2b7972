//! Prometheus metrics: per-shard counters published without shared writes on the packet path,
//! summed at scrape time and served in the text exposition format on `prometheus-port`.

pub mod expose;
pub mod health;
pub mod histogram;
pub mod http;
pub mod publish;
pub mod users;

pub use expose::render;
pub use health::Health;
pub use histogram::Histogram;
pub use http::{listen_addr, MetricsServer};
pub use publish::{AllocationCounts, Registry, ShardExtra, ShardKind, ShardSlot};
pub use users::{Traffic, UserTotal, UserTrafficBatch, UserTrafficSink};
