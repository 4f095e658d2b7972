//! coturn's Redis user database (`redis-userdb`, `-N`, keys `turn/realm/<r>/user/<u>/key`):
//! interop with coturn's `turnadmin` and `turnserver`, two tern nodes on one Redis, an outage,
//! peer address lists (`turn/realm/<r>/allowed-peer-ip`, a set as coturn's admin writes it).

use crate::userdb_support;

use userdb_support::scenarios::{
    coturn_user_allocates_on_tern, first_request_answered_at_once, outage, peer_lists_apply,
    tern_user_allocates_on_coturn, two_nodes_share_users,
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
fn redis_first_request_is_answered_on_both_engines() {
    let Some(redis) = Redis::start() else { return };
    let conn = redis.conn();
    first_request_answered_at_once(&["-N", &conn], &format!("--redis-userdb={conn}"));
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

#[test]
fn redis_peer_address_lists_apply() {
    let Some(redis) = Redis::start() else { return };
    let conn = redis.conn();
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let mut add = |list: &str, realm: &str, range: &str| {
        let mut c = redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .expect("connect to the test redis");
        let key = format!("turn/realm/{realm}/{list}-peer-ip");
        redis::cmd("SADD")
            .arg(&key)
            .arg(range)
            .query::<i64>(&mut c)
            .expect("SADD a peer range");
    };
    peer_lists_apply(&["-N", &conn], &format!("--redis-userdb={conn}"), &mut add);
}
