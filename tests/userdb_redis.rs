//! coturn's Redis user database (`redis-userdb`, `-N`, keys `turn/realm/<r>/user/<u>/key`):
//! interop with coturn's `turnadmin` and `turnserver`, two tern nodes on one Redis, an outage.

mod support;
mod userdb_support;

use userdb_support::scenarios::{
    coturn_user_allocates_on_tern, outage, tern_user_allocates_on_coturn, two_nodes_share_users,
};
use userdb_support::Redis;

#[test]
fn turnadmin_redis_users_allocate_on_tern() {
    let Some(redis) = Redis::start() else { return };
    let conn = redis.conn();
    coturn_user_allocates_on_tern(&["-N", &conn], &format!("--redis-userdb={conn}"));
}

#[test]
fn tern_admin_redis_users_allocate_on_coturn() {
    let Some(redis) = Redis::start() else { return };
    let conn = redis.conn();
    tern_user_allocates_on_coturn(&["-N", &conn], &["-N", &conn]);
}

#[test]
fn two_nodes_see_redis_changes() {
    let Some(redis) = Redis::start() else { return };
    let conn = redis.conn();
    two_nodes_share_users(&["-N", &conn], &format!("--redis-userdb={conn}"));
}

#[test]
fn redis_outage_refuses_new_users_and_keeps_relaying() {
    let Some(redis) = Redis::start() else { return };
    let conn = redis.conn();
    let redis = std::cell::RefCell::new(redis);
    outage(
        &["-N", &conn],
        &format!("--redis-userdb={conn}"),
        &mut || redis.borrow_mut().stop(),
        &mut || redis.borrow_mut().resume(),
    );
}
