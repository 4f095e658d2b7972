//! STUN message type: method and class interleaved in 14 bits (RFC 8489 §5, §6).

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Method(pub u16);

impl Method {
    pub const BINDING: Method = Method(0x001);
    pub const ALLOCATE: Method = Method(0x003);
    pub const REFRESH: Method = Method(0x004);
    pub const SEND: Method = Method(0x006);
    pub const DATA: Method = Method(0x007);
    pub const CREATE_PERMISSION: Method = Method(0x008);
    pub const CHANNEL_BIND: Method = Method(0x009);
    pub const CONNECT: Method = Method(0x00A);
    pub const CONNECTION_BIND: Method = Method(0x00B);
    pub const CONNECTION_ATTEMPT: Method = Method(0x00C);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct MessageType {
    pub method: Method,
    pub class: Class,
}

impl MessageType {
    pub const fn new(method: Method, class: Class) -> Self {
        MessageType { method, class }
    }

    /// None when one of the two top bits is set: such bytes are not a STUN message.
    pub fn from_u16(v: u16) -> Option<MessageType> {
        if v & 0xC000 != 0 {
            return None;
        }
        let method = (v & 0x000F) | ((v & 0x00E0) >> 1) | ((v & 0x3E00) >> 2);
        let class = match ((v >> 4) & 1) | ((v >> 7) & 2) {
            0 => Class::Request,
            1 => Class::Indication,
            2 => Class::Success,
            _ => Class::Error,
        };
        Some(MessageType::new(Method(method), class))
    }

    /// Methods are 12 bits; higher bits of `method` are dropped.
    pub fn to_u16(self) -> u16 {
        let m = self.method.0;
        let c: u16 = match self.class {
            Class::Request => 0,
            Class::Indication => 1,
            Class::Success => 2,
            Class::Error => 3,
        };
        (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_wire_values() {
        let cases = [
            (0x0001, Method::BINDING, Class::Request),
            (0x0101, Method::BINDING, Class::Success),
            (0x0111, Method::BINDING, Class::Error),
            (0x0003, Method::ALLOCATE, Class::Request),
            (0x0113, Method::ALLOCATE, Class::Error),
            (0x0016, Method::SEND, Class::Indication),
            (0x0017, Method::DATA, Class::Indication),
            (0x0109, Method::CHANNEL_BIND, Class::Success),
            (0x001C, Method::CONNECTION_ATTEMPT, Class::Indication),
        ];
        for (wire, method, class) in cases {
            let t = MessageType::new(method, class);
            assert_eq!(t.to_u16(), wire, "{t:?}");
            assert_eq!(MessageType::from_u16(wire), Some(t));
        }
    }

    #[test]
    fn every_14_bit_value_round_trips() {
        for v in 0..=0x3FFFu16 {
            let t = MessageType::from_u16(v).map(MessageType::to_u16);
            assert_eq!(t, Some(v));
        }
    }

    #[test]
    fn top_bits_are_not_stun() {
        assert_eq!(MessageType::from_u16(0x4001), None);
        assert_eq!(MessageType::from_u16(0x8001), None);
    }
}
