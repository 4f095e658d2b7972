//! The slowloris drill's short form on the real binary (issue 18): 300 TCP connections from
//! loopback addresses trickle a never-finished STUN message; tern closes each by its 2 s
//! deadline, the probe's Allocate p99 stays within twice the idle server's, RSS stays bounded.

use crate::drills_support as drills;

#[test]
fn trickling_connections_close_by_the_deadline_and_cost_other_clients_nothing() {
    drills::assert_pass(&drills::run(&["--ci", "slowloris"]), "slowloris");
}
