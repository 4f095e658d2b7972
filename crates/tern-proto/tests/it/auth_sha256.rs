//! RFC 8489 SHA-256 long-term credentials and USERHASH on the server's side of the auth layer:
//! the Appendix B.1 vector through the credential store, keys of each kind of `user=`, REST keys
//! of either algorithm, and the security-feature bits of the nonce.

use std::net::SocketAddr;

use tern_proto::auth::{
    long_term_key, long_term_key_sha256, rest_password, userhash, AnyKey, Credentials, Features,
    Lookup, NonceCheck, NonceKey, PasswordAlgorithm, NONCE_LEN,
};
use tern_proto::options::{Options, User, UserSecret};
use tern_proto::stun::{attr, Message};

const NOW: u64 = 1_700_000_000;

/// RFC 8489 Appendix B.1 with erratum 6268: a Binding request with USERHASH, NONCE, REALM,
/// PASSWORD-ALGORITHM SHA-256 and MESSAGE-INTEGRITY-SHA256.
const B1: &str = "000100902112a44278ad3433c6ad72c029da412e\
001e00204a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704\
001500296f624d61744a6f733241414143662f2f3439396b39353464364f4c33346f4c39\
4653547679363473410000000014000b6578616d706c652e6f726700\
001d000400020000001c0020\
b5c7bf005b6c52a21c51c5e892f81924136296cb927c43149309278cc6518e65";
/// The vector's user (katakana "matrix"), realm and password after OpaqueString.
const B1_USER: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
const B1_REALM: &str = "example.org";
const B1_PASSWORD: &str = "TheMatrIX";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn config(realm: &str, users: &[(&str, UserSecret)]) -> Options {
    Options {
        realm: realm.into(),
        users: users
            .iter()
            .map(|(name, secret)| User {
                name: (*name).into(),
                secret: secret.clone(),
            })
            .collect(),
        ..Options::default()
    }
}

fn keys(lookup: Lookup<AnyKey>) -> Vec<AnyKey> {
    match lookup {
        Lookup::Keys(list) => list.iter().copied().collect(),
        other => panic!("expected keys, got {other:?}"),
    }
}

/// The vector's USERHASH finds the user through the index beside the static users, and the
/// SHA-256 key the store derived from the password verifies its MESSAGE-INTEGRITY-SHA256.
#[test]
fn rfc8489_b1_verifies_through_the_credential_store() {
    let bytes = unhex(B1);
    let msg = Message::parse(&bytes).expect("the vector parses");
    let hash: [u8; 32] = msg
        .get(attr::USERHASH)
        .expect("USERHASH")
        .try_into()
        .expect("32 bytes");
    assert_eq!(hash, userhash(B1_USER, B1_REALM));

    let cfg = config(
        B1_REALM,
        &[
            ("someone-else", UserSecret::Password("x".into())),
            (B1_USER, UserSecret::Password(B1_PASSWORD.into())),
        ],
    );
    let creds = Credentials::from_options(&cfg);
    assert_eq!(creds.name_of_hash(&hash), Some(B1_USER));
    assert_eq!(creds.name_of_hash(&userhash(B1_USER, "other.realm")), None);

    let found = keys(creds.lookup_keys(PasswordAlgorithm::Sha256, B1_USER, NOW));
    assert_eq!(
        found,
        vec![AnyKey::Sha256(long_term_key_sha256(
            B1_USER,
            B1_REALM,
            B1_PASSWORD
        ))]
    );
    assert_eq!(msg.verify_integrity_sha256(found[0].as_bytes()), Ok(()));
    // The MD5 key of the same password does not verify it: the algorithm matters.
    let md5 = keys(creds.lookup_keys(PasswordAlgorithm::Md5, B1_USER, NOW));
    assert!(msg.verify_integrity_sha256(md5[0].as_bytes()).is_err());

    // The vector's nonce cookie `obMatJos2AAAC` offers username anonymity only.
    let features = Features::of(msg.nonce().expect("NONCE")).expect("a nonce cookie");
    assert!(features.username_anonymity && !features.password_algorithms);
}

/// A plain password gives both keys; `0x` keys of 32 and 64 hex digits give one each.
#[test]
fn each_kind_of_user_line_gives_its_keys() {
    let sha = long_term_key_sha256("s", "r", "pw");
    let cfg = config(
        "r",
        &[
            ("plain", UserSecret::Password("pw".into())),
            ("md5", UserSecret::Key([7; 16])),
            ("sha", UserSecret::Sha256Key(sha)),
        ],
    );
    let creds = Credentials::from_options(&cfg);
    use PasswordAlgorithm::{Md5, Sha256};
    assert_eq!(
        keys(creds.lookup_keys(Sha256, "plain", NOW)),
        vec![AnyKey::Sha256(long_term_key_sha256("plain", "r", "pw"))]
    );
    assert_eq!(
        keys(creds.lookup_keys(Md5, "plain", NOW)),
        vec![AnyKey::Md5(long_term_key("plain", "r", "pw"))]
    );
    assert_eq!(
        keys(creds.lookup_keys(Md5, "md5", NOW)),
        vec![AnyKey::Md5([7; 16])]
    );
    assert_eq!(creds.lookup_keys(Sha256, "md5", NOW), Lookup::Unknown);
    assert_eq!(
        keys(creds.lookup_keys(Sha256, "sha", NOW)),
        vec![AnyKey::Sha256(sha)]
    );
    assert_eq!(creds.lookup_keys(Md5, "sha", NOW), Lookup::Unknown);
    // The MD5 view the rest of tern had before is unchanged.
    assert_eq!(creds.lookup("sha", NOW), Lookup::Unknown);
    assert_eq!(creds.name_of_hash(&userhash("sha", "r")), Some("sha"));
}

/// A REST username's SHA-256 key is the key of its REST password, per secret.
#[test]
fn rest_secrets_give_sha256_keys() {
    let cfg = Options {
        realm: "example.org".into(),
        use_auth_secret: true,
        static_auth_secrets: vec!["old".into(), "new".into()],
        ..Options::default()
    };
    let creds = Credentials::from_options(&cfg);
    let name = "1700000100:alice";
    let expected: Vec<AnyKey> = ["old", "new"]
        .iter()
        .map(|s| {
            AnyKey::Sha256(long_term_key_sha256(
                name,
                "example.org",
                &rest_password(s, name),
            ))
        })
        .collect();
    assert_eq!(
        keys(creds.lookup_keys(PasswordAlgorithm::Sha256, name, NOW)),
        expected
    );
    assert_eq!(
        creds.lookup_keys(PasswordAlgorithm::Sha256, "1699999999:alice", NOW),
        Lookup::Expired
    );
    // A hash cannot be turned back into a REST name: REST users are not in the index.
    assert_eq!(creds.name_of_hash(&userhash(name, "example.org")), None);
}

fn client() -> SocketAddr {
    "192.0.2.10:50000".parse().expect("address")
}

/// The feature bits after the cookie, standard base64 with bit 0 the least significant; the
/// nonce keeps its length, and the tag covers the bits.
#[test]
fn nonce_carries_the_offered_features_under_its_tag() {
    let key = NonceKey::from_bytes([9; 32]);
    let both = Features {
        password_algorithms: true,
        username_anonymity: true,
    };
    let cases = [
        (Features::default(), "obMatJos2AAAA"),
        (
            Features {
                password_algorithms: true,
                username_anonymity: false,
            },
            "obMatJos2AAAB",
        ),
        (both, "obMatJos2AAAD"),
    ];
    for (features, cookie) in cases {
        let nonce = key.issue_offering(features, NOW, client());
        assert_eq!(nonce.as_str().len(), NONCE_LEN);
        assert_eq!(&nonce.as_str()[..13], cookie);
        assert_eq!(Features::of(nonce.as_bytes()), Some(features));
        assert_eq!(
            key.check(nonce.as_bytes(), NOW, client(), 600),
            NonceCheck::Valid
        );
    }
    // Stripping the offer on the way (a downgrade to MD5) breaks the tag.
    let offered = key.issue_offering(both, NOW, client());
    let mut stripped = offered.as_bytes().to_vec();
    stripped[9..13].copy_from_slice(b"AAAA");
    assert_eq!(
        key.check(&stripped, NOW, client(), 600),
        NonceCheck::Invalid
    );
    // Bits tern never sets are no nonce of tern's.
    let mut reserved = offered.as_bytes().to_vec();
    reserved[9..13].copy_from_slice(b"AAAE");
    assert_eq!(Features::of(&reserved), None);
    assert_eq!(
        key.check(&reserved, NOW, client(), 600),
        NonceCheck::Invalid
    );
}
