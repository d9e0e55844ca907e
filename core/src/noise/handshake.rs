//! Noise `HandshakeState` for the two patterns veil uses:
//!
//! ```text
//! XX (links):               NK (circuit hops):
//!   -> e                      <- s
//!   <- e, ee, s, es           ...
//!   -> s, se                  -> e, es
//!                             <- e, ee
//! ```

use zeroize::Zeroize;

use super::keys::StaticKeypair;
use super::symmetric_state::SymmetricState;
use super::{CipherState, NoiseError, DHLEN, HASHLEN, MAX_MESSAGE_LEN};

/// The handshake patterns veil uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HandshakePattern {
    /// Mutual authentication, both static keys transmitted (links).
    XX,
    /// The initiator knows the responder's static key; the initiator stays
    /// anonymous (circuit hops, with the hop's onion key).
    NK,
}

/// Which side of the handshake this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// Sends the first message.
    Initiator,
    /// Receives the first message.
    Responder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    E,
    S,
    EE,
    ES,
    SE,
}

const XX_MESSAGES: &[&[Token]] = &[
    &[Token::E],
    &[Token::E, Token::EE, Token::S, Token::ES],
    &[Token::S, Token::SE],
];
const NK_MESSAGES: &[&[Token]] = &[&[Token::E, Token::ES], &[Token::E, Token::EE]];

impl HandshakePattern {
    fn protocol_name(self) -> &'static [u8] {
        match self {
            HandshakePattern::XX => b"Noise_XX_25519_ChaChaPoly_SHA256",
            HandshakePattern::NK => b"Noise_NK_25519_ChaChaPoly_SHA256",
        }
    }

    fn messages(self) -> &'static [&'static [Token]] {
        match self {
            HandshakePattern::XX => XX_MESSAGES,
            HandshakePattern::NK => NK_MESSAGES,
        }
    }
}

/// The two transport ciphers and the handshake hash, after `Split()`.
#[derive(Debug)]
pub struct TransportKeys {
    /// Encrypts initiator → responder.
    pub initiator_to_responder: CipherState,
    /// Encrypts responder → initiator.
    pub responder_to_initiator: CipherState,
    /// The final handshake hash, a unique name for the session (channel binding).
    pub handshake_hash: [u8; HASHLEN],
}

/// A Noise handshake in progress. Allocation-free: messages are written to
/// and read from caller buffers.
#[cfg_attr(feature = "testing", derive(Clone))]
pub struct HandshakeState {
    pattern: HandshakePattern,
    role: Role,
    symmetric: SymmetricState,
    local_static: Option<StaticKeypair>,
    local_ephemeral: StaticKeypair,
    remote_static: Option<[u8; DHLEN]>,
    remote_ephemeral: Option<[u8; DHLEN]>,
    /// Index of the next message in the pattern.
    next_message: usize,
}

impl core::fmt::Debug for HandshakeState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HandshakeState")
            .field("pattern", &self.pattern)
            .field("role", &self.role)
            .field("next_message", &self.next_message)
            .finish_non_exhaustive()
    }
}

impl HandshakeState {
    /// Starts a handshake. `ephemeral_secret` is 32 bytes the caller draws
    /// from its CSPRNG (the test vectors fix it). `XX` needs `local_static`
    /// on both sides; `NK` needs it on the responder, and the responder's
    /// public key as `remote_static` on the initiator.
    pub fn new(
        pattern: HandshakePattern,
        role: Role,
        prologue: &[u8],
        local_static: Option<&StaticKeypair>,
        ephemeral_secret: [u8; 32],
        remote_static: Option<[u8; DHLEN]>,
    ) -> Result<Self, NoiseError> {
        let mut ephemeral = ephemeral_secret;
        let local_ephemeral = StaticKeypair::from_secret_bytes(ephemeral);
        ephemeral.zeroize();
        Self::with_ephemeral(
            pattern,
            role,
            prologue,
            local_static,
            local_ephemeral,
            remote_static,
        )
    }

    /// [`new`](Self::new) with the ephemeral key pair given whole: a link's
    /// ephemeral key is drawn so that it has an Elligator2 representative
    /// (link spec §2), and its public key is not `clamp(secret)·B`.
    pub fn with_ephemeral(
        pattern: HandshakePattern,
        role: Role,
        prologue: &[u8],
        local_static: Option<&StaticKeypair>,
        local_ephemeral: StaticKeypair,
        remote_static: Option<[u8; DHLEN]>,
    ) -> Result<Self, NoiseError> {
        let mut symmetric = SymmetricState::new(pattern.protocol_name());
        symmetric.mix_hash(prologue);
        match (pattern, role) {
            (HandshakePattern::XX, _) => {
                if local_static.is_none() {
                    return Err(NoiseError::MissingKey);
                }
            }
            // Pre-message `<- s`: both sides hash the responder's static key.
            (HandshakePattern::NK, Role::Initiator) => {
                let rs = remote_static.ok_or(NoiseError::MissingKey)?;
                symmetric.mix_hash(&rs);
            }
            (HandshakePattern::NK, Role::Responder) => {
                let s = local_static.ok_or(NoiseError::MissingKey)?;
                symmetric.mix_hash(&s.public());
            }
        }
        Ok(HandshakeState {
            pattern,
            role,
            symmetric,
            local_static: local_static.cloned(),
            local_ephemeral,
            remote_static: match role {
                Role::Initiator => remote_static,
                Role::Responder => None,
            },
            remote_ephemeral: None,
            next_message: 0,
        })
    }

    fn current_tokens(&self) -> Option<&'static [Token]> {
        self.pattern.messages().get(self.next_message).copied()
    }

    /// Whether the next message is ours to write.
    pub fn is_my_turn(&self) -> bool {
        if self.is_complete() {
            return false;
        }
        let initiator_writes = self.next_message.is_multiple_of(2);
        initiator_writes == (self.role == Role::Initiator)
    }

    /// Whether every handshake message has been written or read.
    pub fn is_complete(&self) -> bool {
        self.next_message >= self.pattern.messages().len()
    }

    /// The current handshake hash.
    pub fn handshake_hash(&self) -> [u8; HASHLEN] {
        self.symmetric.hash()
    }

    /// The peer's static key, once transmitted (or pre-known).
    pub fn remote_static(&self) -> Option<[u8; DHLEN]> {
        self.remote_static
    }

    /// Exact length of the next message if it carries `payload_len` bytes.
    pub fn next_message_len(&self, payload_len: usize) -> Option<usize> {
        let tokens = self.current_tokens()?;
        let mut has_key = self.symmetric.has_key();
        let mut len = 0usize;
        for token in tokens {
            let token_len = match token {
                Token::E => DHLEN,
                Token::S => {
                    if has_key {
                        DHLEN.checked_add(super::TAGLEN)?
                    } else {
                        DHLEN
                    }
                }
                Token::EE | Token::ES | Token::SE => {
                    has_key = true;
                    0
                }
            };
            len = len.checked_add(token_len)?;
        }
        let payload = if has_key {
            payload_len.checked_add(super::TAGLEN)?
        } else {
            payload_len
        };
        len.checked_add(payload)
            .filter(|total| *total <= MAX_MESSAGE_LEN)
    }

    /// `DH(e, remote_ephemeral)`: the `ee` value, from which a link also
    /// derives its length masks (link spec §2), possibly before the
    /// message carrying the peer's ephemeral key has been read whole.
    pub fn ephemeral_agreement(
        &self,
        remote_ephemeral: &[u8; DHLEN],
    ) -> Result<[u8; DHLEN], NoiseError> {
        self.local_ephemeral.diffie_hellman(remote_ephemeral)
    }

    /// The peer's ephemeral key, once received.
    pub fn remote_ephemeral(&self) -> Option<[u8; DHLEN]> {
        self.remote_ephemeral
    }

    /// Performs a DH token: `ee`, `es` or `se`, from this side's view.
    /// `ee` is the `ee` value when the caller already computed it (see
    /// [`Self::write_message_with_ee`]).
    fn mix_dh(&mut self, token: Token, ee: Option<&[u8; DHLEN]>) -> Result<(), NoiseError> {
        if let (Token::EE, Some(ee)) = (token, ee) {
            self.symmetric.mix_key(ee);
            return Ok(());
        }
        let initiator = self.role == Role::Initiator;
        let (local, remote) = match (token, initiator) {
            (Token::EE, _) => (Some(&self.local_ephemeral), self.remote_ephemeral),
            (Token::ES, true) | (Token::SE, false) => {
                (Some(&self.local_ephemeral), self.remote_static)
            }
            (Token::ES, false) | (Token::SE, true) => {
                (self.local_static.as_ref(), self.remote_ephemeral)
            }
            _ => return Err(NoiseError::OutOfTurn),
        };
        let local = local.ok_or(NoiseError::MissingKey)?;
        let remote = remote.ok_or(NoiseError::MissingKey)?;
        let mut shared = local.diffie_hellman(&remote)?;
        self.symmetric.mix_key(&shared);
        shared.zeroize();
        Ok(())
    }

    /// Writes the next handshake message carrying `payload` into `out`;
    /// returns its length.
    pub fn write_message(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        self.write_message_inner(payload, out, None)
    }

    /// [`write_message`](Self::write_message) with the `ee` value already
    /// computed by [`ephemeral_agreement`](Self::ephemeral_agreement) for
    /// the peer's ephemeral key (a link derives its length keys from it
    /// first): the `ee` token mixes it in instead of computing it again.
    /// A value other than `DH(e, re)` makes the peer fail the message.
    pub fn write_message_with_ee(
        &mut self,
        payload: &[u8],
        out: &mut [u8],
        ee: &[u8; DHLEN],
    ) -> Result<usize, NoiseError> {
        self.write_message_inner(payload, out, Some(ee))
    }

    fn write_message_inner(
        &mut self,
        payload: &[u8],
        out: &mut [u8],
        ee: Option<&[u8; DHLEN]>,
    ) -> Result<usize, NoiseError> {
        if !self.is_my_turn() {
            return Err(NoiseError::OutOfTurn);
        }
        let total = self
            .next_message_len(payload.len())
            .ok_or(NoiseError::MessageTooLarge)?;
        if out.len() < total {
            return Err(NoiseError::BufferTooSmall);
        }
        let tokens = self.current_tokens().ok_or(NoiseError::OutOfTurn)?;
        let mut at = 0usize;
        for &token in tokens {
            match token {
                Token::E => {
                    let public = self.local_ephemeral.public();
                    let dst = slice_mut(out, at, DHLEN)?;
                    dst.copy_from_slice(&public);
                    self.symmetric.mix_hash(&public);
                    at = at.checked_add(DHLEN).ok_or(NoiseError::BufferTooSmall)?;
                }
                Token::S => {
                    let public = self
                        .local_static
                        .as_ref()
                        .ok_or(NoiseError::MissingKey)?
                        .public();
                    let rest = out.get_mut(at..).ok_or(NoiseError::BufferTooSmall)?;
                    let dst = rest.get_mut(..DHLEN).ok_or(NoiseError::BufferTooSmall)?;
                    dst.copy_from_slice(&public);
                    let n = self.symmetric.encrypt_and_hash(rest, DHLEN)?;
                    at = at.checked_add(n).ok_or(NoiseError::BufferTooSmall)?;
                }
                dh => self.mix_dh(dh, ee)?,
            }
        }
        let rest = out.get_mut(at..).ok_or(NoiseError::BufferTooSmall)?;
        rest.get_mut(..payload.len())
            .ok_or(NoiseError::BufferTooSmall)?
            .copy_from_slice(payload);
        let n = self.symmetric.encrypt_and_hash(rest, payload.len())?;
        at = at.checked_add(n).ok_or(NoiseError::BufferTooSmall)?;
        self.next_message = self.next_message.saturating_add(1);
        Ok(at)
    }

    /// Reads the next handshake message; writes its payload into
    /// `payload_out` and returns the payload length. On error the handshake
    /// must be abandoned.
    pub fn read_message(
        &mut self,
        message: &[u8],
        payload_out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        self.read_message_with_ee(message, payload_out, None)
    }

    /// [`read_message`](Self::read_message), given the `ee` value when it
    /// is already computed by
    /// [`ephemeral_agreement`](Self::ephemeral_agreement) for the ephemeral
    /// key this message carries (a link's initiator derives its length
    /// keys from it before the message is in whole): the `ee` token then
    /// mixes it in instead of computing it again. A value other than
    /// `DH(e, re)` fails the message.
    pub fn read_message_with_ee(
        &mut self,
        message: &[u8],
        payload_out: &mut [u8],
        ee: Option<&[u8; DHLEN]>,
    ) -> Result<usize, NoiseError> {
        if self.is_complete() || self.is_my_turn() {
            return Err(NoiseError::OutOfTurn);
        }
        if message.len() > MAX_MESSAGE_LEN {
            return Err(NoiseError::MessageTooLarge);
        }
        let tokens = self.current_tokens().ok_or(NoiseError::OutOfTurn)?;
        let mut rest = message;
        for &token in tokens {
            match token {
                Token::E => {
                    let (e, tail) = rest
                        .split_first_chunk::<DHLEN>()
                        .ok_or(NoiseError::BadMessageLength)?;
                    self.remote_ephemeral = Some(*e);
                    self.symmetric.mix_hash(e);
                    rest = tail;
                }
                Token::S => {
                    let len = self
                        .symmetric
                        .sealed_len(DHLEN)
                        .ok_or(NoiseError::BadMessageLength)?;
                    let (sealed, tail) = rest
                        .split_at_checked(len)
                        .ok_or(NoiseError::BadMessageLength)?;
                    let mut buf = [0u8; DHLEN + super::TAGLEN];
                    let buf = buf.get_mut(..len).ok_or(NoiseError::BadMessageLength)?;
                    buf.copy_from_slice(sealed);
                    let n = self.symmetric.decrypt_and_hash(buf)?;
                    let key: [u8; DHLEN] = buf
                        .get(..n)
                        .and_then(|k| k.try_into().ok())
                        .ok_or(NoiseError::BadMessageLength)?;
                    self.remote_static = Some(key);
                    rest = tail;
                }
                dh => self.mix_dh(dh, ee)?,
            }
        }
        let out = payload_out
            .get_mut(..rest.len())
            .ok_or(NoiseError::BadMessageLength)?;
        out.copy_from_slice(rest);
        let n = self.symmetric.decrypt_and_hash(out)?;
        self.next_message = self.next_message.saturating_add(1);
        Ok(n)
    }

    /// After the last message: fills `out` with key material that both sides
    /// derive identically and that is independent of the transport keys
    /// (an HKDF "exporter" over the final chaining key, labelled by
    /// `label`, which must not be empty). The circuit layer uses it for the
    /// CGO seeds of a hop.
    pub fn export_keying_material(&self, label: &[u8], out: &mut [u8]) -> Result<(), NoiseError> {
        if !self.is_complete() {
            return Err(NoiseError::NotComplete);
        }
        self.symmetric.export(label, out)
    }

    /// After the last message: the transport ciphers.
    pub fn split(self) -> Result<TransportKeys, NoiseError> {
        if !self.is_complete() {
            return Err(NoiseError::NotComplete);
        }
        let (initiator_to_responder, responder_to_initiator) = self.symmetric.split();
        Ok(TransportKeys {
            initiator_to_responder,
            responder_to_initiator,
            handshake_hash: self.symmetric.hash(),
        })
    }
}

fn slice_mut(buf: &mut [u8], at: usize, len: usize) -> Result<&mut [u8], NoiseError> {
    let end = at.checked_add(len).ok_or(NoiseError::BufferTooSmall)?;
    buf.get_mut(at..end).ok_or(NoiseError::BufferTooSmall)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn xx_pair() -> (HandshakeState, HandshakeState) {
        let a = StaticKeypair::from_secret_bytes([1; 32]);
        let b = StaticKeypair::from_secret_bytes([2; 32]);
        (
            HandshakeState::new(
                HandshakePattern::XX,
                Role::Initiator,
                b"p",
                Some(&a),
                [3; 32],
                None,
            )
            .unwrap(),
            HandshakeState::new(
                HandshakePattern::XX,
                Role::Responder,
                b"p",
                Some(&b),
                [4; 32],
                None,
            )
            .unwrap(),
        )
    }

    #[test]
    fn reading_with_a_precomputed_ee_matches_and_a_wrong_one_fails() {
        let (mut i, mut r) = xx_pair();
        let mut msg = [0u8; 200];
        let mut payload = [0u8; 200];
        let n = i.write_message(b"", &mut msg).unwrap();
        r.read_message(&msg[..n], &mut payload).unwrap();
        let n = r.write_message(b"two", &mut msg).unwrap();
        let remote_e: [u8; 32] = msg[..32].try_into().unwrap();
        let ee = i.ephemeral_agreement(&remote_e).unwrap();

        let (mut plain, _) = xx_pair();
        plain.write_message(b"", &mut [0u8; 64]).unwrap();
        assert_eq!(plain.read_message(&msg[..n], &mut payload).unwrap(), 3);

        let (mut wrong, _) = xx_pair();
        wrong.write_message(b"", &mut [0u8; 64]).unwrap();
        assert!(wrong
            .read_message_with_ee(&msg[..n], &mut payload, Some(&[7; 32]))
            .is_err());

        assert_eq!(
            i.read_message_with_ee(&msg[..n], &mut payload, Some(&ee))
                .unwrap(),
            3
        );
        assert_eq!(&payload[..3], b"two");
        assert_eq!(i.handshake_hash(), plain.handshake_hash());
    }

    #[test]
    fn xx_completes_and_both_sides_agree() {
        let (mut i, mut r) = xx_pair();
        let mut msg = [0u8; 200];
        let mut payload = [0u8; 200];
        assert_eq!(i.next_message_len(0), Some(32));
        let n = i.write_message(b"", &mut msg).unwrap();
        assert_eq!(n, 32);
        assert_eq!(r.next_message_len(0), Some(32));
        r.read_message(&msg[..n], &mut payload).unwrap();
        let n = r.write_message(b"two", &mut msg).unwrap();
        assert_eq!(n, 32 + 48 + 3 + 16);
        assert_eq!(i.read_message(&msg[..n], &mut payload).unwrap(), 3);
        let n = i.write_message(b"three", &mut msg).unwrap();
        assert_eq!(r.read_message(&msg[..n], &mut payload).unwrap(), 5);
        assert!(i.is_complete() && r.is_complete());
        assert_eq!(i.handshake_hash(), r.handshake_hash());
        assert_eq!(
            i.remote_static(),
            Some(StaticKeypair::from_secret_bytes([2; 32]).public())
        );
        let ki = i.split().unwrap();
        let mut kr = r.split().unwrap();
        let mut ki = ki;
        let mut buf = [0u8; 32];
        buf[..4].copy_from_slice(b"data");
        let n = ki
            .initiator_to_responder
            .encrypt_in_place(&[], &mut buf, 4)
            .unwrap();
        assert_eq!(
            kr.initiator_to_responder
                .decrypt_in_place(&[], &mut buf[..n]),
            Ok(4)
        );
    }

    #[test]
    fn tampered_message_is_rejected_and_turns_are_enforced() {
        let (mut i, mut r) = xx_pair();
        let mut msg = [0u8; 200];
        let mut payload = [0u8; 200];
        assert_eq!(r.write_message(b"", &mut msg), Err(NoiseError::OutOfTurn));
        let n = i.write_message(b"", &mut msg).unwrap();
        r.read_message(&msg[..n], &mut payload).unwrap();
        let n = r.write_message(b"x", &mut msg).unwrap();
        msg[40] ^= 1;
        assert_eq!(
            i.read_message(&msg[..n], &mut payload),
            Err(NoiseError::DecryptFailed)
        );
        assert!(matches!(i.split(), Err(NoiseError::NotComplete)));
    }

    #[test]
    fn a_low_order_ephemeral_key_is_refused() {
        let (_, mut r) = xx_pair();
        let (mut i2, _) = xx_pair();
        let mut msg = [0u8; 200];
        let mut payload = [0u8; 200];
        // Message 1 with the identity point (all zeros) as `e`.
        r.read_message(&[0u8; 32], &mut payload).unwrap();
        assert_eq!(
            r.write_message(b"", &mut msg),
            Err(NoiseError::WeakPublicKey)
        );
        let _ = i2.write_message(b"", &mut msg);
    }

    #[test]
    fn short_buffers_and_messages_are_errors_not_panics() {
        let (mut i, mut r) = xx_pair();
        let mut tiny = [0u8; 8];
        assert_eq!(
            i.write_message(b"", &mut tiny),
            Err(NoiseError::BufferTooSmall)
        );
        let mut payload = [0u8; 8];
        assert_eq!(
            r.read_message(&[1, 2, 3], &mut payload),
            Err(NoiseError::BadMessageLength)
        );
    }

    #[test]
    fn exported_keying_material_matches_on_both_sides_and_differs_by_label() {
        let relay = StaticKeypair::from_secret_bytes([8; 32]);
        let mut i = HandshakeState::new(
            HandshakePattern::NK,
            Role::Initiator,
            b"",
            None,
            [1; 32],
            Some(relay.public()),
        )
        .unwrap();
        let mut r = HandshakeState::new(
            HandshakePattern::NK,
            Role::Responder,
            b"",
            Some(&relay),
            [2; 32],
            None,
        )
        .unwrap();
        let mut buf = [0u8; 128];
        let mut payload = [0u8; 128];
        let mut early = [0u8; 32];
        assert_eq!(
            i.export_keying_material(b"x", &mut early),
            Err(NoiseError::NotComplete)
        );
        let n = i.write_message(&[], &mut buf).unwrap();
        r.read_message(&buf[..n], &mut payload).unwrap();
        let n = r.write_message(&[], &mut buf).unwrap();
        i.read_message(&buf[..n], &mut payload).unwrap();
        let (mut a, mut b, mut c) = ([0u8; 160], [0u8; 160], [0u8; 160]);
        i.export_keying_material(b"label one", &mut a).unwrap();
        r.export_keying_material(b"label one", &mut b).unwrap();
        r.export_keying_material(b"label two", &mut c).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            r.export_keying_material(b"", &mut c),
            Err(NoiseError::MissingKey)
        );
    }

    #[test]
    fn nk_needs_the_responder_key() {
        assert!(matches!(
            HandshakeState::new(
                HandshakePattern::NK,
                Role::Initiator,
                b"",
                None,
                [1; 32],
                None
            ),
            Err(NoiseError::MissingKey)
        ));
        assert!(matches!(
            HandshakeState::new(
                HandshakePattern::XX,
                Role::Initiator,
                b"",
                None,
                [1; 32],
                None
            ),
            Err(NoiseError::MissingKey)
        ));
    }

    proptest! {
        #[test]
        fn read_message_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let (_, mut r) = xx_pair();
            let mut payload = [0u8; 512];
            let _ = r.read_message(&bytes, &mut payload);
            let (mut i, _) = xx_pair();
            let mut out = [0u8; 64];
            i.write_message(b"", &mut out).unwrap();
            let _ = i.read_message(&bytes, &mut payload);
        }
    }
}
