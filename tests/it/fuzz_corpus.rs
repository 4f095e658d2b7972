//! Replays every committed fuzz corpus (`fuzz/corpus/<target>/`) through the same checks the
//! cargo-fuzz targets run, so stable `cargo test` keeps them passing (RFC 8489, RFC 8656 §12).

use crate::fuzz_targets as targets;

use std::fs;
use std::path::{Path, PathBuf};

/// A target's checks: panics when an invariant breaks.
type Check = fn(&[u8]);

/// Every target, by its directory name under `fuzz/corpus/`.
const TARGETS: [(&str, Check); 6] = [
    ("stun_decode", targets::stun),
    ("channel_decode", targets::channel),
    ("integrity", targets::integrity::integrity),
    ("config_parse", targets::config::config),
    ("frame_stream", targets::frames::frame_stream),
    ("shard", targets::shard::shard),
];

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let Some((_, check)) = TARGETS.iter().find(|(t, _)| *t == target) else {
        panic!("unknown target {target}");
    };
    let files = corpus(target);
    assert!(!files.is_empty(), "no corpus for {target}");
    for file in files {
        let data = fs::read(&file).unwrap();
        let run = std::panic::catch_unwind(|| check(&data));
        assert!(run.is_ok(), "{target}: {} fails its checks", file.display());
    }
}

#[test]
fn every_target_has_a_committed_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().path();
        let stem = name.file_stem().unwrap().to_str().unwrap().to_owned();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == stem),
            "fuzz target {stem} is not replayed here"
        );
    }
}

#[test]
fn stun_decode() {
    replay("stun_decode");
}

#[test]
fn channel_decode() {
    replay("channel_decode");
}

#[test]
fn integrity() {
    replay("integrity");
}

#[test]
fn config_parse() {
    replay("config_parse");
}

#[test]
fn frame_stream() {
    replay("frame_stream");
}

#[test]
fn shard() {
    replay("shard");
}

/// The `shard` seeds are written as steps (`fuzz/src/shard/seeds.rs`); the committed files must
/// be their encoding (`TERN_WRITE_SEEDS=1 cargo test --test it fuzz_corpus::` rewrites them), and
/// each must reach the state it was written for, which also proves the encoder right.
#[test]
fn shard_seeds_are_committed_and_reach_deep_states() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/shard");
    for (name, bytes) in targets::shard::seeds::seeds() {
        let file = dir.join(format!("seed-{name}"));
        if std::env::var_os("TERN_WRITE_SEEDS").is_some() {
            fs::write(&file, &bytes).unwrap();
        }
        let committed = fs::read(&file).unwrap_or_default();
        assert!(
            committed == bytes,
            "{} is not the encoding of seed {name}",
            file.display()
        );
        let r = targets::shard::run(&bytes);
        match name {
            "udp-relay" => {
                assert_eq!((r.relays_bound, r.permissions), (1, 2), "{name}: {r:?}");
                assert_eq!((r.to_peers, r.to_clients), (2, 2), "{name}: {r:?}");
            }
            "v6-and-streams" => {
                assert_eq!(r.relays_bound, 3, "{name}: {r:?}");
                assert_eq!((r.to_peers, r.to_clients), (1, 2), "{name}: {r:?}");
            }
            "reservations-and-refusals" => {
                assert_eq!((r.relays_bound, r.tokens), (3, 2), "{name}: {r:?}");
            }
            "unauthenticated" => assert_eq!(r, Default::default(), "{name}"),
            other => panic!("no expectation for seed {other}"),
        }
    }
}
