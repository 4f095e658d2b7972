//! coturn's PostgreSQL user database (`psql-userdb`, `-e`, coturn's `schema.sql`):
//! interop with coturn's `turnadmin` and `turnserver`, two tern nodes on one PostgreSQL, an outage,
//! peer address lists.

use crate::userdb_support;

use userdb_support::scenarios::{
    coturn_user_allocates_on_tern, first_request_answered_at_once, outage, peer_lists_apply,
    tern_user_allocates_on_coturn, two_nodes_share_users,
};
use userdb_support::Postgres;

#[test]
fn turnadmin_postgres_users_allocate_on_tern() {
    let Some(pg) = Postgres::start() else { return };
    // coturn leaves the tables to the operator: its own schema.sql.
    pg.load_coturn_schema();
    let conn = pg.conn();
    coturn_user_allocates_on_tern(&["-e", &conn], &format!("--psql-userdb={conn}"));
}

#[test]
fn tern_admin_postgres_users_allocate_on_coturn() {
    let Some(pg) = Postgres::start() else { return };
    let conn = pg.conn();
    tern_user_allocates_on_coturn(&["-e", &conn], &["-e", &conn]);
}

#[test]
fn postgres_first_request_is_answered_on_both_engines() {
    let Some(pg) = Postgres::start() else { return };
    let conn = pg.conn();
    first_request_answered_at_once(&["-e", &conn], &format!("--psql-userdb={conn}"));
}

#[test]
fn two_nodes_see_postgres_changes() {
    let Some(pg) = Postgres::start() else { return };
    let conn = pg.conn();
    two_nodes_share_users(&["-e", &conn], &format!("--psql-userdb={conn}"));
}

#[test]
fn postgres_outage_refuses_new_users_and_keeps_relaying() {
    let Some(pg) = Postgres::start() else { return };
    let conn = pg.conn();
    let pg = std::cell::RefCell::new(pg);
    outage(
        &["-e", &conn],
        &format!("--psql-userdb={conn}"),
        &mut || pg.borrow_mut().stop(),
        &mut || pg.borrow_mut().resume(),
    );
}

#[test]
fn postgres_peer_address_lists_apply() {
    let Some(pg) = Postgres::start() else { return };
    let conn = pg.conn();
    let mut add = |list: &str, realm: &str, range: &str| {
        let sql =
            format!("INSERT INTO {list}_peer_ip (realm, ip_range) VALUES ('{realm}', '{range}')");
        assert!(pg.psql(&sql), "{sql}");
    };
    peer_lists_apply(&["-e", &conn], &format!("--psql-userdb={conn}"), &mut add);
}
