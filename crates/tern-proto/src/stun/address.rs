//! MAPPED-ADDRESS and XOR-MAPPED-ADDRESS value encodings (RFC 8489 §14.1, §14.2), also used by
//! XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS (RFC 8656 §18) and the other address attributes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{AttrError, TransactionId, MAGIC_COOKIE};

/// Address family as carried in REQUESTED-ADDRESS-FAMILY and address attributes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn from_wire(b: u8) -> Result<Family, AttrError> {
        match b {
            0x01 => Ok(Family::V4),
            0x02 => Ok(Family::V6),
            _ => Err(AttrError::BadFamily),
        }
    }

    pub fn to_wire(self) -> u8 {
        match self {
            Family::V4 => 0x01,
            Family::V6 => 0x02,
        }
    }

    pub fn of(addr: &SocketAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// Longest address value: an IPv6 one.
pub const MAX_ADDRESS_LEN: usize = 20;

/// The XOR mask: the cookie, then (for IPv6) the transaction id.
fn mask(tid: &TransactionId) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[4..].copy_from_slice(tid);
    m
}

fn xor_in_place(value: &mut [u8], tid: &TransactionId) {
    let m = mask(tid);
    // Port, then the address bytes: both xored with the leading bytes of the mask.
    for (b, k) in value.iter_mut().skip(2).zip(m[..2].iter()) {
        *b ^= k;
    }
    for (b, k) in value.iter_mut().skip(4).zip(m.iter()) {
        *b ^= k;
    }
}

pub fn decode_address(value: &[u8]) -> Result<SocketAddr, AttrError> {
    let (family, port, rest) = match value {
        [_, f, p0, p1, rest @ ..] => (Family::from_wire(*f)?, u16::from_be_bytes([*p0, *p1]), rest),
        _ => return Err(AttrError::BadLength),
    };
    let ip = match (family, rest) {
        (Family::V4, rest) => {
            let b: [u8; 4] = rest.try_into().map_err(|_| AttrError::BadLength)?;
            IpAddr::V4(Ipv4Addr::from(b))
        }
        (Family::V6, rest) => {
            let b: [u8; 16] = rest.try_into().map_err(|_| AttrError::BadLength)?;
            IpAddr::V6(Ipv6Addr::from(b))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

pub fn decode_xor_address(value: &[u8], tid: &TransactionId) -> Result<SocketAddr, AttrError> {
    let mut plain = [0u8; MAX_ADDRESS_LEN];
    let plain = plain.get_mut(..value.len()).ok_or(AttrError::BadLength)?;
    plain.copy_from_slice(value);
    xor_in_place(plain, tid);
    decode_address(plain)
}

/// Writes the value into `out`, returns its length (8 or 20).
pub fn encode_address(addr: SocketAddr, out: &mut [u8; MAX_ADDRESS_LEN]) -> usize {
    out[0] = 0;
    out[1] = Family::of(&addr).to_wire();
    out[2..4].copy_from_slice(&addr.port().to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[4..8].copy_from_slice(&ip.octets());
            8
        }
        IpAddr::V6(ip) => {
            out[4..20].copy_from_slice(&ip.octets());
            20
        }
    }
}

pub fn encode_xor_address(
    addr: SocketAddr,
    tid: &TransactionId,
    out: &mut [u8; MAX_ADDRESS_LEN],
) -> usize {
    let n = encode_address(addr, out);
    xor_in_place(&mut out[..n], tid);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: TransactionId = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    #[test]
    fn xor_v4_matches_rfc_layout() {
        let addr: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let mut out = [0u8; MAX_ADDRESS_LEN];
        let n = encode_xor_address(addr, &TID, &mut out);
        // RFC 5769 §2.2: 192.0.2.1:32853 xored with the cookie.
        assert_eq!(&out[..n], &[0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43]);
        assert_eq!(decode_xor_address(&out[..n], &TID), Ok(addr));
    }

    #[test]
    fn round_trip_v6() {
        let addr: SocketAddr = "[2001:db8::1234:5678]:443".parse().unwrap();
        let mut out = [0u8; MAX_ADDRESS_LEN];
        let n = encode_xor_address(addr, &TID, &mut out);
        assert_eq!(n, 20);
        assert_ne!(decode_address(&out[..n]), Ok(addr));
        assert_eq!(decode_xor_address(&out[..n], &TID), Ok(addr));
        let n = encode_address(addr, &mut out);
        assert_eq!(decode_address(&out[..n]), Ok(addr));
    }

    #[test]
    fn malformed_values() {
        assert_eq!(decode_address(&[0, 1, 0]), Err(AttrError::BadLength));
        assert_eq!(
            decode_address(&[0, 3, 0, 0, 1, 2, 3, 4]),
            Err(AttrError::BadFamily)
        );
        assert_eq!(
            decode_address(&[0, 1, 0, 0, 1, 2, 3]),
            Err(AttrError::BadLength)
        );
        assert_eq!(
            decode_address(&[0, 2, 0, 0, 1, 2, 3, 4]),
            Err(AttrError::BadLength)
        );
        assert_eq!(
            decode_xor_address(&[0; 21], &TID),
            Err(AttrError::BadLength)
        );
    }
}
