//! Checks across options, after every source is applied: the authentication mode (tern never
//! starts an open relay by accident), coturn's own refusals, and derived settings.

use super::diag::Diagnostic;
use super::Config;

/// What to set when no authentication mode is configured.
pub(crate) const NO_AUTH_MODE: &str =
    "no authentication is configured, and tern does not run an open relay by default: \
set `lt-cred-mech` with `realm=...` and `user=NAME:PASSWORD`, or `use-auth-secret` with \
`static-auth-secret=SECRET` (TURN REST API), or `no-auth` to allow anyone";

/// A problem of the whole configuration, about `option` wherever it was set.
fn about(option: &str, message: &str, error: bool) -> Diagnostic {
    let message = format!("{option}: {message}");
    if error {
        Diagnostic::error(None, None, message)
    } else {
        Diagnostic::warning(None, None, message)
    }
}

pub(crate) fn finalize(cfg: &mut Config, diags: &mut Vec<Diagnostic>) {
    if cfg.relay_threads.is_none() {
        cfg.relay_threads = cfg.cpus;
    }
    auth(cfg, diags);
    let mut refuse = |cond: bool, option: &str, message: &str| {
        if cond {
            diags.push(about(option, message, true));
        }
    };
    refuse(
        cfg.bps_capacity > 0 && cfg.max_bps == 0,
        "bps-capacity",
        "needs max-bps too (the per-allocation share of the capacity); coturn refuses this as well",
    );
    refuse(
        cfg.no_udp_relay && cfg.no_tcp_relay,
        "no-tcp-relay",
        "together with no-udp-relay no allocation could ever be made",
    );
    refuse(
        cfg.min_port > cfg.max_port,
        "min-port",
        &format!("{} is above max-port {}", cfg.min_port, cfg.max_port),
    );
    refuse(
        cfg.stun_only && cfg.no_stun,
        "no-stun",
        "together with stun-only nothing is left to serve",
    );
    refuse(
        cfg.no_udp && cfg.no_tcp && cfg.no_tls && cfg.no_dtls,
        "no-udp",
        "with no-tcp, no-tls and no-dtls every listener is disabled",
    );
    refuse(
        cfg.external_ips.len() > 1 && cfg.external_ips.iter().any(|x| x.private.is_none()),
        "external-ip",
        "several external-ip lines must each be PUBLIC/PRIVATE; a bare PUBLIC can only be given once",
    );
}

fn auth(cfg: &mut Config, diags: &mut Vec<Diagnostic>) {
    let has_db = cfg.userdb.is_some() || cfg.psql_userdb.is_some() || cfg.redis_userdb.is_some();
    let has_users = !cfg.users.is_empty();
    if let Err(e) = crate::auth::db::DbSpec::from_config(cfg) {
        diags.push(Diagnostic::error(None, None, e.0));
    }
    let dbs = [&cfg.psql_userdb, &cfg.redis_userdb, &cfg.userdb];
    if dbs.iter().filter(|d| d.is_some()).count() > 1 {
        let msg = "one user database is used: psql-userdb, else redis-userdb, else userdb";
        diags.push(Diagnostic::warning(None, None, msg.into()));
    }
    if cfg.no_auth {
        if cfg.lt_cred_mech || cfg.use_auth_secret {
            let with = if cfg.lt_cred_mech {
                "lt-cred-mech"
            } else {
                "use-auth-secret"
            };
            let msg = format!("cannot be combined with {with} (coturn refuses this too)");
            diags.push(about("no-auth", &msg, true));
        } else if has_users {
            let msg = "user accounts are ignored: anyone may allocate";
            diags.push(about("no-auth", msg, false));
        }
        return;
    }
    if (has_users || has_db) && !cfg.use_auth_secret {
        cfg.lt_cred_mech = true;
    }
    if cfg.use_auth_secret && cfg.static_auth_secrets.is_empty() && !has_db {
        let msg = "needs at least one static-auth-secret=SECRET (or a user database holding them)";
        diags.push(about("use-auth-secret", msg, true));
    }
    if !cfg.lt_cred_mech && !cfg.use_auth_secret {
        diags.push(Diagnostic::error(None, None, NO_AUTH_MODE.into()));
        return;
    }
    if cfg.lt_cred_mech && !has_users && !has_db && !cfg.use_auth_secret {
        let msg = "no user=NAME:PASSWORD and no user database: nobody can authenticate";
        diags.push(about("lt-cred-mech", msg, false));
    }
    if cfg.realm.is_empty() {
        let msg = "is not set; set realm=YOUR.DOMAIN (it is part of every user's key)";
        diags.push(about("realm", msg, false));
    }
}
