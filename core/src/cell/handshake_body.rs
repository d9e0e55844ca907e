//! Length-prefixed bodies: `CREATE` and `CREATED` cells (also carried inside
//! `EXTEND` and `EXTENDED` relay messages) hold a hop handshake message,
//! `DESCRIPTOR` cells hold a signed descriptor.
//!
//! ```text
//! CREATE:  handshake_type u16 (1 = veil NK hop handshake) ‖ length u16 ‖ handshake ‖ zeros
//! CREATED: length u16 ‖ handshake ‖ zeros
//! ```

use core::fmt;

use heapless::Vec;

use crate::cgo::BODY_LEN;

/// The only hop handshake this version speaks.
pub const HANDSHAKE_TYPE_NK: u16 = 1;
/// The longest handshake message a body can carry.
pub const MAX_HANDSHAKE_LEN: usize = BODY_LEN - 4;

/// Why a handshake body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HandshakeBodyError {
    /// An unknown handshake type.
    UnknownType(u16),
    /// The length runs past the body.
    BadLength(u16),
}

impl fmt::Display for HandshakeBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeBodyError::UnknownType(t) => write!(f, "hop handshake type {t} is unknown"),
            HandshakeBodyError::BadLength(n) => {
                write!(f, "hop handshake length {n} runs past the cell")
            }
        }
    }
}

impl core::error::Error for HandshakeBodyError {}

/// A hop handshake message, copied out of (or into) a body.
pub type HandshakeBytes = Vec<u8, MAX_HANDSHAKE_LEN>;

fn read_u16(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let (value, rest) = bytes.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*value), rest))
}

fn read_message(bytes: &[u8]) -> Result<HandshakeBytes, HandshakeBodyError> {
    let (length, rest) = read_u16(bytes).ok_or(HandshakeBodyError::BadLength(0))?;
    let message = rest
        .get(..usize::from(length))
        .ok_or(HandshakeBodyError::BadLength(length))?;
    Vec::from_slice(message).map_err(|_| HandshakeBodyError::BadLength(length))
}

fn write(header: &[u8], message: &[u8]) -> Option<[u8; BODY_LEN]> {
    let length = u16::try_from(message.len()).ok()?;
    if message.len() > BODY_LEN.checked_sub(header.len())?.checked_sub(2)? {
        return None;
    }
    let mut body = [0u8; BODY_LEN];
    let length = length.to_be_bytes();
    for (dst, src) in body
        .iter_mut()
        .zip(header.iter().chain(length.iter()).chain(message))
    {
        *dst = *src;
    }
    Some(body)
}

/// Parses a `CREATE` body.
pub fn parse_create(body: &[u8; BODY_LEN]) -> Result<HandshakeBytes, HandshakeBodyError> {
    let (kind, rest) = read_u16(body).ok_or(HandshakeBodyError::BadLength(0))?;
    if kind != HANDSHAKE_TYPE_NK {
        return Err(HandshakeBodyError::UnknownType(kind));
    }
    read_message(rest)
}

/// Builds a `CREATE` body; `None` if the message cannot fit.
pub fn emit_create(message: &[u8]) -> Option<[u8; BODY_LEN]> {
    write(&HANDSHAKE_TYPE_NK.to_be_bytes(), message)
}

/// Parses a `CREATED` body.
pub fn parse_created(body: &[u8; BODY_LEN]) -> Result<HandshakeBytes, HandshakeBodyError> {
    read_message(body)
}

/// Builds a `CREATED` body; `None` if the message cannot fit.
pub fn emit_created(message: &[u8]) -> Option<[u8; BODY_LEN]> {
    write(&[], message)
}

/// Parses a `DESCRIPTOR` body (`length u16 ‖ descriptor ‖ zeros`, the same
/// framing as `CREATED`); the descriptor itself is verified separately.
pub fn parse_descriptor_body(body: &[u8; BODY_LEN]) -> Result<HandshakeBytes, HandshakeBodyError> {
    read_message(body)
}

/// Builds a `DESCRIPTOR` body.
pub fn emit_descriptor_body(descriptor: &[u8]) -> Option<[u8; BODY_LEN]> {
    write(&[], descriptor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bad_types_and_lengths_are_refused() {
        let mut body = emit_create(&[7; 48]).unwrap();
        assert_eq!(parse_create(&body).unwrap().as_slice(), &[7; 48]);
        body[1] = 2;
        assert_eq!(parse_create(&body), Err(HandshakeBodyError::UnknownType(2)));
        let mut created = emit_created(&[1; 48]).unwrap();
        created[0] = 0xff;
        assert!(matches!(
            parse_created(&created),
            Err(HandshakeBodyError::BadLength(_))
        ));
        assert!(emit_create(&[0; MAX_HANDSHAKE_LEN + 1]).is_none());
        assert!(emit_created(&[0; MAX_HANDSHAKE_LEN + 2]).is_some());
    }

    proptest! {
        #[test]
        fn round_trips(message in proptest::collection::vec(any::<u8>(), 0..=MAX_HANDSHAKE_LEN)) {
            let create = parse_create(&emit_create(&message).unwrap()).unwrap();
            prop_assert_eq!(create.as_slice(), &message[..]);
            let created = parse_created(&emit_created(&message).unwrap()).unwrap();
            prop_assert_eq!(created.as_slice(), &message[..]);
        }

        #[test]
        fn parsing_never_panics(body in proptest::collection::vec(any::<u8>(), BODY_LEN)) {
            let body: [u8; BODY_LEN] = body.try_into().unwrap();
            let _ = parse_create(&body);
            let _ = parse_created(&body);
        }
    }
}
