//! Typed attribute getters of `Message` (RFC 8489 §14, RFC 8656 §18, RFC 6062 §6.2):
//! None when absent, Some(Err) when malformed.

use std::net::SocketAddr;

use super::address::{decode_address, decode_xor_address};
use super::{attr, AttrError, ErrorCode, Family, Message};

/// USERNAME is fewer than 513 bytes (RFC 8489 §14.3).
const MAX_USERNAME: usize = 512;
/// REALM, NONCE, SOFTWARE and the ERROR-CODE reason: fewer than 128 characters, at most 763 bytes.
const MAX_TEXT: usize = 763;

fn text(v: &[u8], max: usize) -> Result<&str, AttrError> {
    if v.len() > max {
        return Err(AttrError::BadLength);
    }
    std::str::from_utf8(v).map_err(|_| AttrError::BadUtf8)
}

fn u32_value(v: &[u8]) -> Result<u32, AttrError> {
    <[u8; 4]>::try_from(v)
        .map(u32::from_be_bytes)
        .map_err(|_| AttrError::BadLength)
}

/// REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY: family byte + 3 RFFU bytes.
fn family(v: &[u8]) -> Result<Family, AttrError> {
    match v {
        [f, _, _, _] => Family::from_wire(*f),
        _ => Err(AttrError::BadLength),
    }
}

fn error_code(v: &[u8]) -> Result<(ErrorCode, &str), AttrError> {
    let [_, _, class, number, reason @ ..] = v else {
        return Err(AttrError::BadLength);
    };
    let class = u16::from(class & 0x07);
    let number = u16::from(*number);
    if !(3..=6).contains(&class) || number > 99 {
        return Err(AttrError::BadValue);
    }
    Ok((ErrorCode(class * 100 + number), text(reason, MAX_TEXT)?))
}

impl<'a> Message<'a> {
    pub fn xor_address(&self, typ: u16) -> Option<Result<SocketAddr, AttrError>> {
        let tid = self.transaction_id();
        self.get(typ).map(|v| decode_xor_address(v, tid))
    }

    /// Every attribute of that type before integrity (several XOR-PEER-ADDRESS in
    /// CreatePermission, RFC 8656 §9).
    pub fn xor_addresses(
        &self,
        typ: u16,
    ) -> impl Iterator<Item = Result<SocketAddr, AttrError>> + 'a {
        let tid = self.transaction_id();
        self.checked_attributes()
            .filter(move |a| a.typ == typ)
            .map(move |a| decode_xor_address(a.value, tid))
    }

    /// An address in the MAPPED-ADDRESS encoding (ALTERNATE-SERVER, OTHER-ADDRESS, ...).
    pub fn address(&self, typ: u16) -> Option<Result<SocketAddr, AttrError>> {
        self.get(typ).map(decode_address)
    }

    pub fn username(&self) -> Option<Result<&'a str, AttrError>> {
        self.get(attr::USERNAME).map(|v| text(v, MAX_USERNAME))
    }

    pub fn realm(&self) -> Option<Result<&'a str, AttrError>> {
        self.get(attr::REALM).map(|v| text(v, MAX_TEXT))
    }

    pub fn nonce(&self) -> Option<&'a [u8]> {
        self.get(attr::NONCE)
    }

    pub fn software(&self) -> Option<Result<&'a str, AttrError>> {
        self.get(attr::SOFTWARE).map(|v| text(v, MAX_TEXT))
    }

    /// A 4-byte unsigned attribute (LIFETIME, ICMP, ...).
    pub fn u32_attr(&self, typ: u16) -> Option<Result<u32, AttrError>> {
        self.get(typ).map(u32_value)
    }

    pub fn error_code(&self) -> Option<Result<(ErrorCode, &'a str), AttrError>> {
        self.get(attr::ERROR_CODE).map(error_code)
    }

    /// The channel number; whether it is in the valid range is the caller's check.
    pub fn channel_number(&self) -> Option<Result<u16, AttrError>> {
        self.get(attr::CHANNEL_NUMBER).map(|v| match v {
            [c0, c1, _, _] => Ok(u16::from_be_bytes([*c0, *c1])),
            _ => Err(AttrError::BadLength),
        })
    }

    /// The IANA protocol number (17 UDP, 6 TCP).
    pub fn requested_transport(&self) -> Option<Result<u8, AttrError>> {
        self.get(attr::REQUESTED_TRANSPORT).map(|v| match v {
            [proto, _, _, _] => Ok(*proto),
            _ => Err(AttrError::BadLength),
        })
    }

    pub fn requested_address_family(&self) -> Option<Result<Family, AttrError>> {
        self.get(attr::REQUESTED_ADDRESS_FAMILY).map(family)
    }

    pub fn additional_address_family(&self) -> Option<Result<Family, AttrError>> {
        self.get(attr::ADDITIONAL_ADDRESS_FAMILY).map(family)
    }

    /// ADDITIONAL-ADDRESS-FAMILY under its draft number (coturn up to 4.7). A value that is no
    /// address family is taken for the MS-TURN attribute of that number and left alone.
    pub fn draft_additional_address_family(&self) -> Option<Family> {
        self.get(attr::ADDITIONAL_ADDRESS_FAMILY_DRAFT)
            .and_then(|v| family(v).ok())
    }

    /// The R bit: reserve the next port too. The value is one byte (RFC 8656 §18.6); some
    /// clients write the padded 4.
    pub fn even_port(&self) -> Option<Result<bool, AttrError>> {
        self.get(attr::EVEN_PORT).map(|v| match v {
            [b] | [b, _, _, _] => Ok(b & 0x80 != 0),
            _ => Err(AttrError::BadLength),
        })
    }

    pub fn reservation_token(&self) -> Option<Result<[u8; 8], AttrError>> {
        self.get(attr::RESERVATION_TOKEN)
            .map(|v| v.try_into().map_err(|_| AttrError::BadLength))
    }

    pub fn dont_fragment(&self) -> bool {
        self.get(attr::DONT_FRAGMENT).is_some()
    }

    pub fn data(&self) -> Option<&'a [u8]> {
        self.get(attr::DATA)
    }

    pub fn connection_id(&self) -> Option<Result<u32, AttrError>> {
        self.u32_attr(attr::CONNECTION_ID)
    }
}
