//! What the server offers in its nonces and 401s (RFC 8489 §9.2): the security features, the
//! PASSWORD-ALGORITHMS list (§14.11) in the server's order of preference, and the rules of
//! §9.2.4 that pick the algorithm of a request and refuse a downgrade.

use super::key::PasswordAlgorithm;
use super::nonce::Features;

/// The algorithms tern knows, so the most a list can hold.
const MAX_ALGORITHMS: usize = 2;
/// One PASSWORD-ALGORITHMS entry without parameters: number and parameter length.
const ENTRY_LEN: usize = 4;

/// The offer made to every client, built once from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    features: Features,
    algorithms: [PasswordAlgorithm; MAX_ALGORITHMS],
    len: usize,
    /// The PASSWORD-ALGORITHMS value, as sent and as a client must echo it.
    wire: [u8; MAX_ALGORITHMS * ENTRY_LEN],
}

/// Why a request's algorithm attributes are refused (400, RFC 8489 §9.2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Downgrade {
    /// PASSWORD-ALGORITHMS differs from the list offered: changed on the way.
    ListChanged,
    /// One of PASSWORD-ALGORITHM and PASSWORD-ALGORITHMS without the other.
    Incomplete,
    /// PASSWORD-ALGORITHM names an algorithm not offered, or is malformed.
    NotOffered,
}

impl Offer {
    /// `algorithms` in order of preference (duplicates and anything past the first two known
    /// ones are ignored). Password algorithms are offered unless the list is only MD5, which is
    /// what RFC 5389 clients assume anyway; username anonymity with `userhash`.
    pub fn new(algorithms: &[PasswordAlgorithm], userhash: bool) -> Offer {
        let mut offer = Offer {
            features: Features::default(),
            algorithms: [PasswordAlgorithm::Md5; MAX_ALGORITHMS],
            len: 0,
            wire: [0; MAX_ALGORITHMS * ENTRY_LEN],
        };
        for &alg in algorithms {
            if offer.len == MAX_ALGORITHMS || offer.algorithms().contains(&alg) {
                continue;
            }
            let at = offer.len * ENTRY_LEN;
            if let Some(entry) = offer.wire.get_mut(at..at + 2) {
                entry.copy_from_slice(&alg.number().to_be_bytes());
            }
            if let Some(slot) = offer.algorithms.get_mut(offer.len) {
                *slot = alg;
            }
            offer.len += 1;
        }
        if offer.len == 0 {
            return Offer::new(&[PasswordAlgorithm::Md5], userhash);
        }
        offer.features = Features {
            password_algorithms: offer.algorithms() != [PasswordAlgorithm::Md5],
            username_anonymity: userhash,
        };
        offer
    }

    pub fn features(&self) -> Features {
        self.features
    }

    /// The algorithms offered, preferred first.
    pub fn algorithms(&self) -> &[PasswordAlgorithm] {
        self.algorithms.get(..self.len).unwrap_or_default()
    }

    /// The PASSWORD-ALGORITHMS value of a 401/438 when `features` offer password algorithms.
    pub fn wire(&self) -> &[u8] {
        self.wire.get(..self.len * ENTRY_LEN).unwrap_or_default()
    }

    /// The algorithm of a request whose nonce offered `features`, from its PASSWORD-ALGORITHMS
    /// and PASSWORD-ALGORITHM values (RFC 8489 §9.2.4):
    /// - neither: MD5, as for every client that does not negotiate (refused when MD5 is not
    ///   offered);
    /// - both: the list must be the one offered, byte for byte, and the algorithm one of it;
    /// - one without the other: refused.
    ///
    /// A nonce that offered no password algorithms leaves MD5, and a PASSWORD-ALGORITHM naming
    /// another algorithm is refused: nothing else was offered to that client.
    pub fn negotiate(
        &self,
        features: Features,
        algorithms: Option<&[u8]>,
        algorithm: Option<&[u8]>,
    ) -> Result<PasswordAlgorithm, Downgrade> {
        let md5_offered = self.algorithms().contains(&PasswordAlgorithm::Md5);
        if !features.password_algorithms {
            return match algorithm.map(parse_algorithm) {
                None | Some(Some(PasswordAlgorithm::Md5)) if md5_offered => {
                    Ok(PasswordAlgorithm::Md5)
                }
                _ => Err(Downgrade::NotOffered),
            };
        }
        match (algorithms, algorithm) {
            (None, None) if md5_offered => Ok(PasswordAlgorithm::Md5),
            (None, None) => Err(Downgrade::NotOffered),
            (Some(list), Some(alg)) => {
                if list != self.wire() {
                    return Err(Downgrade::ListChanged);
                }
                match parse_algorithm(alg) {
                    Some(alg) if self.algorithms().contains(&alg) => Ok(alg),
                    _ => Err(Downgrade::NotOffered),
                }
            }
            _ => Err(Downgrade::Incomplete),
        }
    }
}

/// A PASSWORD-ALGORITHM value: number, parameter length 0 (neither MD5 nor SHA-256 has
/// parameters, RFC 8489 §18.5.1).
fn parse_algorithm(value: &[u8]) -> Option<PasswordAlgorithm> {
    let [a, b, 0, 0] = *value else {
        return None;
    };
    PasswordAlgorithm::from_number(u16::from_be_bytes([a, b]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use PasswordAlgorithm::{Md5, Sha256};

    const BOTH: Features = Features {
        password_algorithms: true,
        username_anonymity: false,
    };

    #[test]
    fn md5_alone_offers_nothing() {
        let o = Offer::new(&[Md5], false);
        assert_eq!(o.features(), Features::default());
        assert_eq!(o.negotiate(Features::default(), None, None), Ok(Md5));
        assert_eq!(
            o.negotiate(Features::default(), None, Some(&[0, 2, 0, 0])),
            Err(Downgrade::NotOffered)
        );
    }

    #[test]
    fn sha256_first_then_md5() {
        let o = Offer::new(&[Sha256, Md5, Sha256], true);
        assert_eq!(o.wire(), [0, 2, 0, 0, 0, 1, 0, 0]);
        assert!(o.features().password_algorithms && o.features().username_anonymity);
        let list = o.wire();
        assert_eq!(
            o.negotiate(BOTH, Some(list), Some(&[0, 2, 0, 0])),
            Ok(Sha256)
        );
        assert_eq!(o.negotiate(BOTH, Some(list), Some(&[0, 1, 0, 0])), Ok(Md5));
        assert_eq!(o.negotiate(BOTH, None, None), Ok(Md5));
        // A list stripped of SHA-256 or reordered is a downgrade.
        let md5_only = [0, 1, 0, 0];
        assert_eq!(
            o.negotiate(BOTH, Some(&md5_only), Some(&[0, 1, 0, 0])),
            Err(Downgrade::ListChanged)
        );
        let swapped = [0, 1, 0, 0, 0, 2, 0, 0];
        assert_eq!(
            o.negotiate(BOTH, Some(&swapped), Some(&[0, 2, 0, 0])),
            Err(Downgrade::ListChanged)
        );
        assert_eq!(
            o.negotiate(BOTH, None, Some(&[0, 2, 0, 0])),
            Err(Downgrade::Incomplete)
        );
        assert_eq!(
            o.negotiate(BOTH, Some(list), None),
            Err(Downgrade::Incomplete)
        );
        for bad in [&[0, 3, 0, 0][..], &[0, 2, 0, 4, 1, 2, 3, 4], &[0, 2], &[]] {
            assert_eq!(
                o.negotiate(BOTH, Some(list), Some(bad)),
                Err(Downgrade::NotOffered),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sha256_alone_refuses_clients_that_do_not_negotiate() {
        let o = Offer::new(&[Sha256], false);
        assert_eq!(o.negotiate(BOTH, None, None), Err(Downgrade::NotOffered));
        assert_eq!(
            o.negotiate(BOTH, Some(o.wire()), Some(&[0, 1, 0, 0])),
            Err(Downgrade::NotOffered)
        );
        assert_eq!(
            o.negotiate(BOTH, Some(o.wire()), Some(&[0, 2, 0, 0])),
            Ok(Sha256)
        );
    }
}
