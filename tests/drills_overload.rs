//! The overload drill's CI variant: tern capped to a quarter of a core, offered twice the echo
//! rate it carried in a closed loop for 8 s; it must survive with bounded RSS, and Binding and
//! Allocate must all be answered with a p99 under the generous CI bound (5 s against the debug build, retransmissions
//! included; docs/robustness.md states what was measured).

#[path = "drills_support/mod.rs"]
mod drills;

#[test]
fn twice_capacity_is_survived_and_the_control_plane_answers() {
    let out = drills::run(&[
        "--ci",
        "--control-p99-ms",
        "5000",
        "--data-p99-ms",
        "5000",
        "overload",
    ]);
    drills::assert_pass(&out, "overload");
}
