//! The soak's CI variant: 1,000 allocations on the real binary for 20 s, refreshing every 6 s and
//! relaying one packet a second each; RSS at the end within 5% of RSS after warm-up and no
//! allocation lost (scripts/soak.sh runs the 10-minute, 10,000-allocation version).

use crate::drills_support as drills;

#[test]
fn soak_keeps_rss_flat_and_loses_no_allocation() {
    let out = drills::run(&["--ci", "soak"]);
    drills::assert_pass(&out, "soak");
    assert!(out.contains("allocations lost 0"), "{out}");
}
