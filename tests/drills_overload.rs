//! The overload drill's CI variant: tern capped to a quarter of a core, offered twice the echo
//! rate it carried in a closed loop for 8 s. On the epoll engine it must pass whole: survival,
//! bounded RSS, and Binding and Allocate all answered with a p99 under the generous CI bound (5 s
//! against the debug build, retransmissions included). On io_uring (the default) it must survive
//! with bounded RSS and answer after the load; its control-plane p99 under a CPU cap is the open
//! finding in docs/robustness.md (one io_uring_enter runs for hundreds of milliseconds there), so
//! that part is printed, not asserted.

#[path = "drills_support/mod.rs"]
mod drills;

fn overload(engine: &str) -> String {
    let arg = format!("--io-engine={engine}");
    drills::run(&[
        "--ci",
        "--control-p99-ms",
        "5000",
        "--data-p99-ms",
        "5000",
        "--overload-tern-arg",
        &arg,
        "overload",
    ])
}

/// One test, so that the two drills (each loading both cores) never run at the same time.
#[test]
fn twice_capacity_is_survived_and_the_control_plane_answers() {
    drills::assert_pass(&overload("epoll"), "overload");
    let out = overload("uring");
    if out.lines().any(|l| l.starts_with("SKIP overload:")) {
        return;
    }
    let line = out
        .lines()
        .find(|l| l.starts_with("PASS overload:") || l.starts_with("FAIL overload:"))
        .unwrap_or_else(|| panic!("no overload verdict:\n{out}"));
    // The drill lists every problem before the summary; none of these may be among them.
    for problem in [
        "died",
        "RSS grew",
        "no Binding answer after",
        "could not offer",
    ] {
        assert!(!line.contains(problem), "{problem}:\n{out}");
    }
    assert!(line.contains("Binding after the load"), "{out}");
}
