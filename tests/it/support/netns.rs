//! A network namespace for the calling test thread alone.

use std::process::Command;

/// Moves this test's thread into a new network namespace (the thread-local equivalent of
/// `ip netns add` + `ip netns exec`) with loopback up and a veth pair carrying `cidr`: Chromium
/// gathers no candidate at all on a host whose only network is loopback, and a real host has
/// an interface besides lo. Every process the thread starts from now on (tern, tc, a browser,
/// aiortc) and every socket it opens live there, so nothing the test does there touches the
/// rest of the machine. Forwarding is on, as the kernel fast path needs
/// (`TERN_TEST_FAST_PATH=on`, docs/fast-path.md); the namespace carries only the test's traffic.
pub fn private_network(cidr: &str) -> Result<(), String> {
    // SAFETY: unshare(2) with CLONE_NEWNET changes only the calling thread's network namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "cannot create a network namespace: {}",
            std::io::Error::last_os_error()
        ));
    }
    run("ip", &["link", "set", "lo", "up"])?;
    run(
        "ip",
        &[
            "link", "add", "tern0", "type", "veth", "peer", "name", "tern1",
        ],
    )?;
    run("ip", &["addr", "add", cidr, "dev", "tern0"])?;
    run("ip", &["link", "set", "tern0", "up"])?;
    run("ip", &["link", "set", "tern1", "up"])?;
    run("sysctl", &["-qw", "net.ipv4.conf.all.forwarding=1"])
}

/// Runs `tool` with `args`; its stderr is the error.
pub fn run(tool: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .map_err(|e| format!("{tool}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    ))
}
