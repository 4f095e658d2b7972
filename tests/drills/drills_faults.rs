//! The fault drills on the real binary: relay port range exhausted and descriptor ceiling
//! reached (508, then recovery after deallocations), `kill -9` and restart (first Binding answer
//! within 1 s of exec, every client re-allocates), and a full disk under the log file (as root
//! with a tmpfs; skipped with a notice otherwise).

use crate::drills_support as drills;

#[test]
fn port_range_exhausted_answers_508_then_recovers() {
    drills::assert_pass(&drills::run(&["port-range"]), "port-range");
}

#[test]
fn descriptor_ceiling_answers_508_then_recovers() {
    drills::assert_pass(&drills::run(&["descriptors"]), "descriptors");
}

#[test]
fn kill_9_and_restart_serves_within_a_second() {
    drills::assert_pass(&drills::run(&["restart"]), "restart");
}

#[test]
fn full_log_disk_keeps_relaying() {
    drills::assert_pass(&drills::run(&["disk-full"]), "disk-full");
}
