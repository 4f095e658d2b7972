//! The overload drill's CI variant: tern capped to a quarter of a core, offered twice the echo
//! rate it carried in a closed loop for 8 s, on the default engine (io_uring where the kernel
//! allows it, as on CI's machines) and on the portable epoll engine. Each must pass whole:
//! survival, bounded RSS, the client really offering more than capacity, Binding and Allocate
//! answered with the release drill's p99 bound (3 s, retransmissions included) and relayed round
//! trips with a p99 under 1 s (the release drill asks 250 ms; a debug build is several times
//! slower per packet).

use crate::drills_support as drills;

/// One test, so that the two drills (each loading both cores) never run at the same time.
#[test]
fn twice_capacity_is_survived_and_the_control_plane_answers() {
    let out = drills::run(&[
        "--ci",
        "--control-p99-ms",
        "3000",
        "--data-p99-ms",
        "1000",
        "overload",
        "overload-epoll",
    ]);
    drills::assert_pass(&out, "overload");
    drills::assert_pass(&out, "overload-epoll");
}
