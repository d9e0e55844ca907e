//! Node ids: the stable name of a node, derived from its identity key.

use core::fmt;

use sha2::{Digest, Sha256};

/// Domain separation for deriving a node id from an identity key.
pub const NODE_ID_DOMAIN: &[u8] = b"veil-node-id-v1";

/// A node's id: `SHA-256("veil-node-id-v1" ‖ Ed25519 public key)`.
///
/// Hashing (rather than using the key itself) keeps ids one size whatever
/// key type a future version adds, and makes ids useless for forging
/// signatures. Displayed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NodeId(pub [u8; 32]);

impl NodeId {
    /// The id of the node whose Ed25519 public key is `key`.
    pub fn from_identity_key(key: &[u8; 32]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(NODE_ID_DOMAIN);
        hasher.update(key);
        NodeId(hasher.finalize().into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Result<Self, ParseNodeIdError> {
        let digits = text.as_bytes();
        if digits.len() != 64 {
            return Err(ParseNodeIdError::WrongLength(digits.len()));
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let (hi, lo) = match pair {
                [hi, lo] => (hex_value(*hi)?, hex_value(*lo)?),
                _ => return Err(ParseNodeIdError::WrongLength(digits.len())),
            };
            *byte = (hi << 4) | lo;
        }
        Ok(NodeId(out))
    }
}

fn hex_value(digit: u8) -> Result<u8, ParseNodeIdError> {
    match digit {
        b'0'..=b'9' => Ok(digit.wrapping_sub(b'0')),
        b'a'..=b'f' => Ok(digit.wrapping_sub(b'a').wrapping_add(10)),
        b'A'..=b'F' => Ok(digit.wrapping_sub(b'A').wrapping_add(10)),
        _ => Err(ParseNodeIdError::NotHex(char::from(digit))),
    }
}

/// Why a node id could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseNodeIdError {
    /// Not 64 characters.
    WrongLength(usize),
    /// A character that is not a hex digit.
    NotHex(char),
}

impl fmt::Display for ParseNodeIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseNodeIdError::WrongLength(n) => {
                write!(f, "a node id is 64 hex digits, this one has {n} characters")
            }
            ParseNodeIdError::NotHex(c) => write!(f, "{c:?} is not a hex digit in the node id"),
        }
    }
}

impl core::error::Error for ParseNodeIdError {}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    /// The first 8 hex digits, enough to tell nodes apart in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeId(")?;
        for byte in self.0.iter().take(4) {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_input() {
        let id = NodeId::from_identity_key(&[7; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(NodeId::from_hex(&text), Ok(id));
        assert_eq!(NodeId::from_hex(&text.to_uppercase()), Ok(id));
        assert_eq!(
            NodeId::from_hex("abc"),
            Err(ParseNodeIdError::WrongLength(3))
        );
        let bad = format!("{}g", &text[..63]);
        assert_eq!(NodeId::from_hex(&bad), Err(ParseNodeIdError::NotHex('g')));
        assert_eq!(format!("{id:?}"), format!("NodeId({}…)", &text[..8]));
    }

    #[test]
    fn different_keys_give_different_ids() {
        assert_ne!(
            NodeId::from_identity_key(&[1; 32]),
            NodeId::from_identity_key(&[2; 32])
        );
    }
}
