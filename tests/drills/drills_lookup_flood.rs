//! The lookup-flood drill's CI variant (issue 18 item 2): tern on a SQLite user database, 5,000
//! random usernames a second for 8 s from 250 loopback sources (20 a second each, twice their
//! lookup budget), each signed with a made-up key after fetching a nonce, while 50 real users
//! authenticate over and over. Passes when every real Allocate succeeds with a p99 under 100 ms,
//! every random name is refused, and the flood really reached its rate. The long form (20,000
//! names/s for 60 s from 1,000 sources) is in scripts/drills.sh.

use crate::drills_support as drills;

#[test]
fn real_users_authenticate_through_a_random_name_flood() {
    let out = drills::run(&["--ci", "lookup-flood"]);
    drills::assert_pass(&out, "lookup-flood");
}
