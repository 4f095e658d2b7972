//! The drills (soak, overload, faults, slowloris, lookup flood) in their CI variants against the
//! `tern` binary cargo built. Their own binary, apart from tests/it, so that no other test shares
//! the CPU while they measure; `drills_support` runs them one at a time.

mod drills_faults;
mod drills_lookup_flood;
mod drills_overload;
mod drills_slowloris;
mod drills_soak;
mod drills_support;
