//! STUN wire format (RFC 8489), placeholder until the codec lands.
