//! Credential lookup: static users, 0x keys, TURN REST usernames, expiry, secret rotation.

use tern_proto::auth::{long_term_key, rest_password, Credentials, Key, Lookup, MAX_REST_SECRETS};
use tern_proto::options::{Options, User, UserSecret};

const NOW: u64 = 1_700_000_000;

fn keys(lookup: Lookup) -> Vec<Key> {
    match lookup {
        Lookup::Keys(list) => list.iter().copied().collect(),
        other => panic!("expected keys, got {other:?}"),
    }
}

fn user(name: &str, secret: UserSecret) -> User {
    User {
        name: name.into(),
        secret,
    }
}

fn rest_config(secrets: &[&str]) -> Options {
    Options {
        realm: "example.org".into(),
        use_auth_secret: true,
        static_auth_secrets: secrets.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    }
}

#[test]
fn static_password_user() {
    let cfg = Options {
        realm: "realm".into(),
        users: vec![user("user", UserSecret::Password("pass".into()))],
        ..Options::default()
    };
    let creds = Credentials::from_options(&cfg);
    assert_eq!(creds.realm(), "realm");
    assert!(!creds.is_open());
    // The key `turnadmin -k -u user -r realm -p pass` prints (coturn 4.6.1).
    let expected: Key = [
        0x84, 0x93, 0xfb, 0xc5, 0x3b, 0xa5, 0x82, 0xfb, 0x4c, 0x04, 0x4c, 0x45, 0x6b, 0xdc, 0x40,
        0xeb,
    ];
    assert_eq!(keys(creds.lookup("user", NOW)), vec![expected]);
    assert_eq!(creds.lookup("nobody", NOW), Lookup::Unknown);
    assert_eq!(creds.lookup("User", NOW), Lookup::Unknown);
}

#[test]
fn static_key_user_is_used_as_given() {
    let cfg = Options {
        realm: "ignored-for-0x-keys".into(),
        users: vec![user("bob", UserSecret::Key([0x5a; 16]))],
        ..Options::default()
    };
    let creds = Credentials::from_options(&cfg);
    assert_eq!(keys(creds.lookup("bob", NOW)), vec![[0x5a; 16]]);
}

#[test]
fn rest_usernames_in_all_three_forms() {
    let creds = Credentials::from_options(&rest_config(&["secret"]));
    for name in ["1700000100:alice", "alice:1700000100", "1700000100"] {
        let key = long_term_key(name, "example.org", &rest_password("secret", name));
        assert_eq!(keys(creds.lookup(name, NOW)), vec![key], "{name}");
    }
}

#[test]
fn rest_custom_separator() {
    let cfg = Options {
        rest_api_separator: '-',
        ..rest_config(&["secret"])
    };
    let creds = Credentials::from_options(&cfg);
    let name = "1700000100-alice";
    let key = long_term_key(name, "example.org", &rest_password("secret", name));
    assert_eq!(keys(creds.lookup(name, NOW)), vec![key]);
    assert_eq!(creds.quota_user(name), "alice");
    assert_eq!(creds.lookup("1700000100:alice", NOW), Lookup::Unknown);
}

#[test]
fn rest_expiry() {
    let creds = Credentials::from_options(&rest_config(&["secret"]));
    assert_eq!(creds.lookup("1699999999:alice", NOW), Lookup::Expired);
    assert_eq!(creds.lookup("alice:1699999999", NOW), Lookup::Expired);
    assert_eq!(creds.lookup("1699999999", NOW), Lookup::Expired);
    // Valid while expiry >= now.
    assert!(matches!(
        creds.lookup("1700000000:alice", NOW),
        Lookup::Keys(_)
    ));
}

#[test]
fn rest_unparseable_timestamp_is_unknown() {
    let creds = Credentials::from_options(&rest_config(&["secret"]));
    for name in [
        "alice",
        "alice:soon",
        "17000x:alice",
        "alice:+1700000100",
        "",
    ] {
        assert_eq!(creds.lookup(name, NOW), Lookup::Unknown, "{name}");
    }
}

#[test]
fn rest_rotation_tries_every_secret_in_order() {
    let creds = Credentials::from_options(&rest_config(&["old", "new"]));
    let name = "1700000100:alice";
    let got = keys(creds.lookup(name, NOW));
    let old = long_term_key(name, "example.org", &rest_password("old", name));
    let new = long_term_key(name, "example.org", &rest_password("new", name));
    assert_eq!(got, vec![old, new]);
    assert_ne!(old, new);
}

#[test]
fn secrets_ignored_without_use_auth_secret() {
    let cfg = Options {
        use_auth_secret: false,
        ..rest_config(&["secret"])
    };
    let creds = Credentials::from_options(&cfg);
    assert_eq!(creds.lookup("1700000100:alice", NOW), Lookup::Unknown);
    assert_eq!(creds.quota_user("1700000100:alice"), "1700000100:alice");
}

#[test]
fn static_and_rest_keys_together() {
    let cfg = Options {
        users: vec![user("1700000100:alice", UserSecret::Key([1; 16]))],
        ..rest_config(&["secret"])
    };
    let creds = Credentials::from_options(&cfg);
    let name = "1700000100:alice";
    let rest = long_term_key(name, "example.org", &rest_password("secret", name));
    assert_eq!(keys(creds.lookup(name, NOW)), vec![[1; 16], rest]);
    // Past its expiry the static user still resolves; the REST key does not.
    assert_eq!(keys(creds.lookup(name, NOW + 1000)), vec![[1; 16]]);
}

#[test]
fn static_user_found_when_rest_is_also_on() {
    let cfg = Options {
        users: vec![user("carol", UserSecret::Password("pw".into()))],
        ..rest_config(&["secret"])
    };
    let creds = Credentials::from_options(&cfg);
    assert_eq!(
        keys(creds.lookup("carol", NOW)),
        vec![long_term_key("carol", "example.org", "pw")]
    );
    assert_eq!(creds.quota_user("carol"), "carol");
}

#[test]
fn quota_user_strips_the_timestamp() {
    let creds = Credentials::from_options(&rest_config(&["secret"]));
    assert_eq!(creds.quota_user("1700000100:alice"), "alice");
    assert_eq!(creds.quota_user("alice:1700000100"), "alice");
    assert_eq!(creds.quota_user("1700000100"), "1700000100");
    assert_eq!(creds.quota_user("alice"), "alice");
}

#[test]
fn no_auth_is_open() {
    let cfg = Options {
        no_auth: true,
        ..Options::default()
    };
    assert!(Credentials::from_options(&cfg).is_open());
}

#[test]
fn secrets_beyond_capacity_are_counted() {
    let many: Vec<String> = (0..MAX_REST_SECRETS + 2).map(|i| format!("s{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let creds = Credentials::from_options(&rest_config(&refs));
    assert_eq!(creds.ignored_secrets(), 2);
    assert_eq!(
        keys(creds.lookup("1700000100:a", NOW)).len(),
        MAX_REST_SECRETS
    );
}

#[test]
fn debug_does_not_leak_secrets() {
    let cfg = Options {
        users: vec![user("u", UserSecret::Password("hunter2".into()))],
        ..rest_config(&["topsecret"])
    };
    let text = format!("{:?}", Credentials::from_options(&cfg));
    assert!(
        !text.contains("hunter2") && !text.contains("topsecret"),
        "{text}"
    );
}
