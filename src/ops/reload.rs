//! What a reload (SIGHUP) changes: the options whose effective value differs between two
//! configurations, split into those the running server applies (credentials, limits, peer
//! policy, lifetimes) and those that need a restart (sockets, threads, logging, process).
//! Values come from `Config::effective`, so secrets stay masked; changed passwords and REST
//! secrets are named without their values.

use std::collections::BTreeMap;

use tern::config::{needs_restart, Config};

/// One changed option, printable without secrets.
#[derive(Debug, PartialEq, Eq)]
pub struct Change {
    pub option: String,
    pub detail: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Applied to new requests at once.
    pub applied: Vec<Change>,
    /// Ignored until the next start.
    pub restart: Vec<Change>,
}

/// `option -> values` from `effective()` lines (repeatable options keep every value).
fn values(cfg: &Config) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in cfg.effective().lines() {
        if let Some((name, value)) = line.split_once('=') {
            map.entry(name.to_owned())
                .or_default()
                .push(value.to_owned());
        }
    }
    map
}

fn show(v: Option<&Vec<String>>) -> String {
    match v {
        Some(v) if !v.is_empty() => v.join(", "),
        _ => String::from("(unset)"),
    }
}

/// Reloadable changes from `running` to `new`; restart-only changes from `started` (the
/// configuration the sockets were made with) to `new`.
pub fn changes(started: &Config, running: &Config, new: &Config) -> Changes {
    let (s, r, n) = (values(started), values(running), values(new));
    let mut out = Changes::default();
    let names: std::collections::BTreeSet<&String> =
        s.keys().chain(r.keys()).chain(n.keys()).collect();
    for name in names {
        let restart = needs_restart(name);
        let before = if restart { s.get(name) } else { r.get(name) };
        if before == n.get(name) {
            continue;
        }
        let change = Change {
            option: name.clone(),
            detail: format!("{} -> {}", show(before), show(n.get(name))),
        };
        if restart {
            out.restart.push(change);
        } else {
            out.applied.push(change);
        }
    }
    secrets(running, new, &mut out.applied);
    out
}

/// Credential changes `effective()` masks: named, never shown.
fn secrets(running: &Config, new: &Config, applied: &mut Vec<Change>) {
    for user in &new.users {
        match running.users.iter().find(|u| u.name == user.name) {
            Some(old) if old.secret != user.secret => applied.push(Change {
                option: String::from("user"),
                detail: format!("{}: credentials changed", user.name),
            }),
            _ => {}
        }
    }
    if running.static_auth_secrets != new.static_auth_secrets
        && running.static_auth_secrets.len() == new.static_auth_secrets.len()
    {
        applied.push(Change {
            option: String::from("static-auth-secret"),
            detail: String::from("secrets changed"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern::config::{User, UserSecret};

    fn user(name: &str, password: &str) -> User {
        User {
            name: name.into(),
            secret: UserSecret::Password(password.into()),
        }
    }

    #[test]
    fn sorts_changes_and_never_shows_a_password() {
        let old = Config {
            users: vec![user("alice", "pw-old-1"), user("bob", "x")],
            ..Config::default()
        };
        let new = Config {
            users: vec![user("alice", "pw-new-2"), user("carol", "y")],
            listening_port: 4000,
            user_quota: 5,
            ..Config::default()
        };
        let c = changes(&old, &old, &new);
        let applied: Vec<&str> = c.applied.iter().map(|c| c.option.as_str()).collect();
        assert_eq!(applied, ["user", "user-quota", "user"]);
        assert_eq!(c.applied[2].detail, "alice: credentials changed");
        assert_eq!(c.applied[1].detail, "0 -> 5");
        assert_eq!(c.restart.len(), 1);
        assert_eq!(c.restart[0].option, "listening-port");
        let all = format!("{c:?}");
        assert!(
            !all.contains("pw-old-1") && !all.contains("pw-new-2"),
            "{all}"
        );
    }

    #[test]
    fn a_pending_restart_is_reported_against_the_start_up_configuration() {
        let started = Config::default();
        let running = Config {
            listening_port: 4000,
            ..Config::default()
        };
        let c = changes(&started, &running, &running);
        assert_eq!(c.restart.len(), 1);
        assert!(c.applied.is_empty());
        assert!(changes(&started, &started, &started) == Changes::default());
    }
}
