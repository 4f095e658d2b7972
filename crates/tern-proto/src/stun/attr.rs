//! STUN attribute types (RFC 8489 §14/§18.3, RFC 8656 §18, RFC 6062 §6.2, RFC 5780 §7,
//! RFC 8445 §16) and which of them tern understands.

pub const MAPPED_ADDRESS: u16 = 0x0001;
pub const CHANGE_REQUEST: u16 = 0x0003;
pub const USERNAME: u16 = 0x0006;
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
pub const ERROR_CODE: u16 = 0x0009;
pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
pub const CHANNEL_NUMBER: u16 = 0x000C;
pub const LIFETIME: u16 = 0x000D;
pub const XOR_PEER_ADDRESS: u16 = 0x0012;
pub const DATA: u16 = 0x0013;
pub const REALM: u16 = 0x0014;
pub const NONCE: u16 = 0x0015;
pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
pub const EVEN_PORT: u16 = 0x0018;
pub const REQUESTED_TRANSPORT: u16 = 0x0019;
pub const DONT_FRAGMENT: u16 = 0x001A;
pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
pub const PASSWORD_ALGORITHM: u16 = 0x001D;
pub const USERHASH: u16 = 0x001E;
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
pub const RESERVATION_TOKEN: u16 = 0x0022;
pub const PRIORITY: u16 = 0x0024;
pub const USE_CANDIDATE: u16 = 0x0025;
pub const PADDING: u16 = 0x0026;
pub const RESPONSE_PORT: u16 = 0x0027;
pub const CONNECTION_ID: u16 = 0x002A;
pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
pub const ADDRESS_ERROR_CODE: u16 = 0x8001;
/// ADDITIONAL-ADDRESS-FAMILY as the TURN-bis drafts numbered it, which coturn up to 4.7 still
/// sends (`turnutils_uclient -Z`). MS-TURN uses the same number for MS-ALTERNATE-HOST-NAME.
pub const ADDITIONAL_ADDRESS_FAMILY_DRAFT: u16 = 0x8032;
pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
pub const ALTERNATE_DOMAIN: u16 = 0x8003;
pub const ICMP: u16 = 0x8004;
pub const SOFTWARE: u16 = 0x8022;
pub const ALTERNATE_SERVER: u16 = 0x8023;
pub const FINGERPRINT: u16 = 0x8028;
pub const ICE_CONTROLLED: u16 = 0x8029;
pub const ICE_CONTROLLING: u16 = 0x802A;
pub const RESPONSE_ORIGIN: u16 = 0x802B;
pub const OTHER_ADDRESS: u16 = 0x802C;

/// Types below 0x8000 must be understood by the receiver or the request fails with 420
/// (RFC 8489 §15).
pub fn is_comprehension_required(t: u16) -> bool {
    t < 0x8000
}

/// Every attribute tern processes. The RFC 5780 ones (CHANGE-REQUEST,
/// RESPONSE-PORT, PADDING) are left out: a server without RFC 5780 answers them with 420, which
/// is how clients detect the missing support (RFC 5780 §7.2). PRIORITY and USE-CANDIDATE are
/// ICE connectivity-check attributes a server has nothing to do with, so they never cause a 420.
pub fn is_known(t: u16) -> bool {
    matches!(
        t,
        MAPPED_ADDRESS
            | USERNAME
            | MESSAGE_INTEGRITY
            | ERROR_CODE
            | UNKNOWN_ATTRIBUTES
            | CHANNEL_NUMBER
            | LIFETIME
            | XOR_PEER_ADDRESS
            | DATA
            | REALM
            | NONCE
            | XOR_RELAYED_ADDRESS
            | REQUESTED_ADDRESS_FAMILY
            | EVEN_PORT
            | REQUESTED_TRANSPORT
            | DONT_FRAGMENT
            | MESSAGE_INTEGRITY_SHA256
            | PASSWORD_ALGORITHM
            | USERHASH
            | XOR_MAPPED_ADDRESS
            | RESERVATION_TOKEN
            | PRIORITY
            | USE_CANDIDATE
            | CONNECTION_ID
            | ADDITIONAL_ADDRESS_FAMILY
            | ADDITIONAL_ADDRESS_FAMILY_DRAFT
            | ADDRESS_ERROR_CODE
            | PASSWORD_ALGORITHMS
            | ICMP
            | SOFTWARE
            | ALTERNATE_SERVER
            | FINGERPRINT
            | RESPONSE_ORIGIN
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_range() {
        assert!(!is_comprehension_required(SOFTWARE));
        assert!(!is_comprehension_required(0xFFFF));
        assert!(is_known(SOFTWARE));
        assert!(!is_known(ICE_CONTROLLED));
    }

    #[test]
    fn required_range() {
        assert!(is_comprehension_required(USERNAME));
        assert!(is_known(XOR_PEER_ADDRESS));
        assert!(!is_known(CHANGE_REQUEST));
        assert!(!is_known(0x7FFF));
    }
}
