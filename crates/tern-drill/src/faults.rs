//! Fault drills against the real binary: the relay port range exhausted (508, RFC 8656 §7.2,
//! then served again once a port is free), the descriptor ceiling reached under `prlimit` (508,
//! then recovery), `kill -9` and restart on the same port (serving again within a second,
//! clients re-allocate), and the log file's disk full (relaying goes on).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::fleet::{Fleet, FleetConfig, Plan, State};
use super::probe::{client, succeeded};
use super::proc::{free_udp_port, Tern};
use super::{Outcome, SKIPPED};
use tern::client::Request as Ask;
use tern_testkit::histogram::ms;
use tern_testkit::EchoPeers;

/// The restart drill's bound from exec to the first Binding answer (issue 10).
pub const RESTART_BOUND: Duration = Duration::from_secs(1);

fn fleet(tern: &Tern, peers: &EchoPeers, count: usize) -> Result<Fleet, String> {
    Fleet::new(&FleetConfig {
        server: tern.udp,
        count,
        sources: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))],
        peers: peers.addrs.clone(),
        payload: 64,
    })
}

/// One second of closed-loop echoes; how many ready allocations heard none.
fn relay_check(fleet: &mut Fleet) -> usize {
    let plan = Plan {
        duration: Duration::from_secs(1),
        rate: None,
        window: Some(1),
        refresh: None,
        stall: None,
    };
    fleet.run(&plan, &mut |_| {});
    fleet.silent()
}

fn ready(fleet: &Fleet) -> Vec<usize> {
    (0..fleet.count())
        .filter(|&i| fleet.state(i) == Some(State::Ready))
        .collect()
}

fn with(fleet: &Fleet, state: State) -> Vec<usize> {
    (0..fleet.count())
        .filter(|&i| fleet.state(i) == Some(state))
        .collect()
}

/// Allocates `count` on a server that can hold fewer: the rest must get 508; after three
/// deallocations three of the refused must succeed and relay.
fn exhaust_and_recover(tern: &Tern, count: usize, what: &str) -> Outcome {
    let peers = EchoPeers::start(1).map_err(|e| format!("echo peers: {e}"))?;
    let mut fleet = fleet(tern, &peers, count)?;
    let all: Vec<usize> = (0..count).collect();
    fleet.establish(&all, 8, Duration::from_secs(20));
    let held = ready(&fleet);
    let refused = with(&fleet, State::Failed(508));
    if held.len() < 3 || held.len() + refused.len() != count || refused.len() < 3 {
        return Err(format!(
            "{what}: expected some ready and the rest 508: {:?}",
            fleet.census()
        ));
    }
    if relay_check(&mut fleet) > 0 {
        return Err(format!(
            "{what}: a held allocation did not relay while full"
        ));
    }
    fleet.request_all(&held[..3], Ask::Refresh(0), Duration::from_secs(5));
    fleet.establish(&refused[..3], 3, Duration::from_secs(10));
    let again = refused[..3]
        .iter()
        .filter(|&&i| fleet.state(i) == Some(State::Ready))
        .count();
    if again != 3 {
        return Err(format!(
            "{what}: after 3 deallocations {again} of 3 re-allocated: {:?}",
            fleet.census()
        ));
    }
    if relay_check(&mut fleet) > 0 {
        return Err(format!("{what}: a re-allocated relay did not carry data"));
    }
    Ok(format!(
        "{} held, {} refused with 508, 3 freed and 3 re-allocated, all relaying",
        held.len(),
        refused.len()
    ))
}

pub fn port_range(bin: &Path) -> Outcome {
    let base = free_udp_port()?.clamp(1024, 65000);
    let extra = [
        format!("--min-port={base}"),
        format!("--max-port={}", base + 5),
    ];
    let tern = Tern::start(bin, &[], &extra)?;
    exhaust_and_recover(&tern, 12, "port range")
}

pub fn descriptors(bin: &Path) -> Outcome {
    let tern = Tern::start(bin, &["prlimit", "--nofile=100:100", "--"], &[])?;
    let ceiling = super::proc::allocation_ceiling(&tern.log()).unwrap_or(0);
    let count = usize::try_from(ceiling).unwrap_or(0) + 6;
    exhaust_and_recover(&tern, count, "descriptors")
        .map(|s| format!("RLIMIT_NOFILE 100, ceiling {ceiling}: {s}"))
}

pub fn restart(bin: &Path) -> Outcome {
    let port = free_udp_port()?;
    let extra = [format!("--listening-port={port}")];
    let peers = EchoPeers::start(2).map_err(|e| format!("echo peers: {e}"))?;
    let mut tern = Tern::start(bin, &[], &extra)?;
    let mut fleet = fleet(&tern, &peers, 20)?;
    let all: Vec<usize> = (0..20).collect();
    fleet.establish(&all, 20, Duration::from_secs(10));
    if ready(&fleet).len() != 20 || relay_check(&mut fleet) > 0 {
        return Err(format!("before the kill: {:?}", fleet.census()));
    }
    tern.kill9();
    drop(tern);
    let tern = Tern::start(bin, &[], &extra)?;
    let serving = first_binding(&tern)?;
    if serving > RESTART_BOUND {
        return Err(format!(
            "serving {} after exec, over {}",
            ms(serving),
            ms(RESTART_BOUND)
        ));
    }
    // The old allocations are gone: the Refresh is refused, the client allocates again.
    fleet.request_all(&all, Ask::Refresh(600), Duration::from_secs(10));
    let gone = all
        .iter()
        .filter(|&&i| matches!(fleet.state(i), Some(State::Lost(_))))
        .count();
    fleet.establish(&all, 20, Duration::from_secs(10));
    let back = ready(&fleet).len();
    if gone != 20 || back != 20 || relay_check(&mut fleet) > 0 {
        return Err(format!(
            "after restart {gone} refreshes refused, {back} re-allocated: {:?}",
            fleet.census()
        ));
    }
    Ok(format!(
        "first Binding answered {} after exec; 20 of 20 clients re-allocated and relay",
        ms(serving)
    ))
}

/// From the spawn of `tern` to its first Binding success.
fn first_binding(tern: &Tern) -> Result<Duration, String> {
    let mut binder = client(tern.udp, None)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if succeeded(binder.request(Ask::Binding).as_ref()) {
            return Ok(tern.spawned.elapsed());
        }
    }
    Err("the restarted server never answered a Binding".into())
}

/// A tmpfs mounted for the drill's lifetime, unmounted on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = fs::remove_dir(&self.0);
    }
}

pub fn disk_full(bin: &Path) -> Outcome {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(format!("{SKIPPED}not root, cannot mount a tmpfs"));
    }
    let dir = std::env::temp_dir().join(format!("tern-drill-full-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        let _ = fs::remove_dir(&dir);
        return Ok(format!("{SKIPPED}mount -t tmpfs failed"));
    }
    let mount = Mount(dir);
    let log = mount.0.join("tern.log");
    let extra = [format!("--log-file={}", log.display()), "--verbose".into()];
    let peers = EchoPeers::start(2).map_err(|e| format!("echo peers: {e}"))?;
    let mut tern = Tern::start(bin, &[], &extra)?;
    let filled = fill(&mount.0.join("filler"));
    let before = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut fleet = fleet(&tern, &peers, 20)?;
    let all: Vec<usize> = (0..20).collect();
    // Allocate, relay, free and allocate again: every step logs at `verbose`.
    fleet.establish(&all, 20, Duration::from_secs(10));
    let silent = relay_check(&mut fleet);
    fleet.request_all(&all, Ask::Refresh(0), Duration::from_secs(5));
    fleet.establish(&all, 20, Duration::from_secs(10));
    let silent_again = relay_check(&mut fleet);
    let held = ready(&fleet).len();
    let after = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    if !tern.alive() {
        return Err(format!(
            "tern exited with its log disk full; output:\n{}",
            tern.log()
        ));
    }
    let written = fs::read_to_string(&log)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    let printed = tern.log().lines().count();
    if written >= printed {
        return Err(format!(
            "the log disk never filled: {written} lines in the file, {printed} on stdout"
        ));
    }
    if held != 20 || silent > 0 || silent_again > 0 {
        return Err(format!(
            "with the log disk full: {held} of 20 allocated, {silent}/{silent_again} silent"
        ));
    }
    Ok(format!(
        "log file {before} -> {after} bytes on a full 64 KiB tmpfs ({filled} filler bytes), \
         {written} of {printed} lines written; 20 allocations made twice and relaying"
    ))
}

/// Writes `path` until the file system is full; the bytes written.
fn fill(path: &Path) -> u64 {
    let Ok(mut f) = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
    else {
        return 0;
    };
    let chunk = [0x55u8; 1024];
    let mut total = 0;
    while let Ok(n) = f.write(&chunk) {
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    total
}
