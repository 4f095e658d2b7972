//! Authentication: the protocol's pure half comes from `tern_proto::auth` (re-exported here);
//! this module adds coturn's user databases (`db`), which do blocking I/O, and the resolver
//! thread that asks them on the shards' behalf and caches the answers.

pub mod db;
mod resolver;

pub use resolver::{
    Resolver, ResolverStats, DEFAULT_MAX_NAME, DOWN_TTL, NEGATIVE_TTL, POSITIVE_TTL,
};
pub use tern_proto::auth::*;
