//! The hop handshake: how a client and one relay agree on that hop's CGO
//! keys, using `Noise_NK_25519_ChaChaPoly_SHA256` with the relay's onion key
//! from its verified descriptor.
//!
//! - The client sends NK message 1 (`e, es`, empty payload: 48 bytes) in a
//!   `CREATE` body (or inside `EXTEND`, through the hops already built, so
//!   they cannot read it).
//! - The relay answers with NK message 2 (`e, ee`, empty payload: 48 bytes)
//!   in `CREATED`.
//! - Both export 160 bytes from the finished handshake with the label
//!   [`SEED_LABEL`]: bytes 0..80 seed the forward layer, 80..160 the
//!   backward layer.
//!
//! NK authenticates the relay (only the holder of the onion key can finish)
//! and leaves the client anonymous; the `ee` exchange gives forward secrecy
//! even if the onion key leaks later.

use core::fmt;

use zeroize::Zeroize;

use crate::cell::{emit_create, emit_created, parse_create, parse_created, HandshakeBodyError};
use crate::cgo::{ClientHop, RelayLayer, Seed, BODY_LEN, SEED_LEN};
use crate::noise::{HandshakePattern, HandshakeState, NoiseError, Role, StaticKeypair};

/// Noise prologue of every hop handshake.
pub const HOP_PROLOGUE: &[u8] = b"veil hop v1";
/// Noise prologue of the end-to-end handshake between a sender and a
/// rendezvous service (relay spec §13): a different prologue, so an
/// introduction can never pass for a hop handshake or the reverse.
pub const RENDEZVOUS_PROLOGUE: &[u8] = b"veil rendezvous v1";
/// Exporter label for the two CGO seeds.
pub const SEED_LABEL: &[u8] = b"veil cgo seeds v1";
/// Bytes of each NK message (32-byte key + 16-byte tag of the empty payload).
pub const HOP_MESSAGE_LEN: usize = 48;

/// Why a hop handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HopHandshakeError {
    /// The cell body is malformed.
    Body(HandshakeBodyError),
    /// A handshake message has the wrong length.
    BadLength(usize),
    /// Noise refused the message: wrong onion key, tampering, or a weak key.
    Noise(NoiseError),
}

impl fmt::Display for HopHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HopHandshakeError::Body(e) => write!(f, "hop handshake body: {e}"),
            HopHandshakeError::BadLength(n) => {
                write!(
                    f,
                    "hop handshake message is {n} bytes, expected {HOP_MESSAGE_LEN}"
                )
            }
            HopHandshakeError::Noise(e) => write!(f, "hop handshake failed: {e}"),
        }
    }
}

impl core::error::Error for HopHandshakeError {}

impl From<NoiseError> for HopHandshakeError {
    fn from(e: NoiseError) -> Self {
        HopHandshakeError::Noise(e)
    }
}

impl From<HandshakeBodyError> for HopHandshakeError {
    fn from(e: HandshakeBodyError) -> Self {
        HopHandshakeError::Body(e)
    }
}

fn seeds(noise: &HandshakeState) -> Result<(Seed, Seed), HopHandshakeError> {
    let mut material = [0u8; 2 * SEED_LEN];
    noise.export_keying_material(SEED_LABEL, &mut material)?;
    let mut forward = Seed([0; SEED_LEN]);
    let mut backward = Seed([0; SEED_LEN]);
    if let Some((f, b)) = material.split_first_chunk::<SEED_LEN>() {
        forward.0.copy_from_slice(f);
        backward.0.copy_from_slice(b);
    }
    material.zeroize();
    Ok((forward, backward))
}

/// The client's side of one hop handshake, between `CREATE` and `CREATED`.
#[derive(Debug)]
#[cfg_attr(feature = "testing", derive(Clone))]
pub struct HopHandshakeClient {
    noise: HandshakeState,
}

impl HopHandshakeClient {
    /// Starts a handshake with the relay whose onion key is `onion_key`;
    /// returns the state and the `CREATE` body to send.
    pub fn start(
        onion_key: &[u8; 32],
        ephemeral_secret: [u8; 32],
    ) -> Result<(Self, [u8; BODY_LEN]), HopHandshakeError> {
        let mut secret = ephemeral_secret;
        let ephemeral = StaticKeypair::from_secret_bytes(secret);
        secret.zeroize();
        Self::start_with(onion_key, ephemeral)
    }

    /// [`start`](Self::start) with an ephemeral key pair drawn earlier
    /// ([`ReadyEphemerals`](super::ReadyEphemerals)).
    pub fn start_with(
        onion_key: &[u8; 32],
        ephemeral: StaticKeypair,
    ) -> Result<(Self, [u8; BODY_LEN]), HopHandshakeError> {
        let mut noise = HandshakeState::with_ephemeral(
            HandshakePattern::NK,
            Role::Initiator,
            HOP_PROLOGUE,
            None,
            ephemeral,
            Some(*onion_key),
        )?;
        let mut message = [0u8; HOP_MESSAGE_LEN];
        let n = noise.write_message(&[], &mut message)?;
        let body = message
            .get(..n)
            .and_then(emit_create)
            .ok_or(HopHandshakeError::BadLength(n))?;
        Ok((HopHandshakeClient { noise }, body))
    }

    /// Completes the handshake with the relay's `CREATED` body; returns the
    /// hop's CGO layer.
    pub fn finish(mut self, created: &[u8; BODY_LEN]) -> Result<ClientHop, HopHandshakeError> {
        let message = parse_created(created)?;
        if message.len() != HOP_MESSAGE_LEN {
            return Err(HopHandshakeError::BadLength(message.len()));
        }
        let mut payload = [0u8; HOP_MESSAGE_LEN];
        self.noise.read_message(&message, &mut payload)?;
        let (forward, backward) = seeds(&self.noise)?;
        Ok(ClientHop::new(&forward, &backward))
    }

    /// Completes the handshake with the answer itself (NK message 2).
    pub fn finish_message(mut self, message: &[u8]) -> Result<ClientHop, HopHandshakeError> {
        if message.len() != HOP_MESSAGE_LEN {
            return Err(HopHandshakeError::BadLength(message.len()));
        }
        let mut payload = [0u8; HOP_MESSAGE_LEN];
        self.noise.read_message(message, &mut payload)?;
        let (forward, backward) = seeds(&self.noise)?;
        Ok(ClientHop::new(&forward, &backward))
    }

    /// Starts the end-to-end handshake with a rendezvous service whose
    /// onion key is `service_key`: NK message 1 carrying `payload`
    /// (encrypted to the service), written to `out`. Returns the state and
    /// the message's length. The service's answer comes back through the
    /// rendezvous point ([`finish_message`](Self::finish_message)), and its
    /// layer becomes the last of the sender's circuit.
    pub fn start_introduction(
        service_key: &[u8; 32],
        ephemeral_secret: [u8; 32],
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<(Self, usize), HopHandshakeError> {
        let mut noise = HandshakeState::new(
            HandshakePattern::NK,
            Role::Initiator,
            RENDEZVOUS_PROLOGUE,
            None,
            ephemeral_secret,
            Some(*service_key),
        )?;
        let n = noise.write_message(payload, out)?;
        Ok((HopHandshakeClient { noise }, n))
    }
}

/// The service's side of the end-to-end handshake: reads an introduction
/// with its onion key, writes the payload it carried to `payload`, and
/// returns the service's layer on the sender's circuit, the answer for the
/// rendezvous point, and the payload's length.
pub fn respond_introduction(
    service_key: &StaticKeypair,
    ephemeral_secret: [u8; 32],
    introduction: &[u8],
    payload: &mut [u8],
) -> Result<(RelayLayer, [u8; HOP_MESSAGE_LEN], usize), HopHandshakeError> {
    let mut noise = HandshakeState::new(
        HandshakePattern::NK,
        Role::Responder,
        RENDEZVOUS_PROLOGUE,
        Some(service_key),
        ephemeral_secret,
        None,
    )?;
    let len = noise.read_message(introduction, payload)?;
    let mut answer = [0u8; HOP_MESSAGE_LEN];
    let n = noise.write_message(&[], &mut answer)?;
    if n != HOP_MESSAGE_LEN {
        return Err(HopHandshakeError::BadLength(n));
    }
    let (forward, backward) = seeds(&noise)?;
    Ok((RelayLayer::new(&forward, &backward), answer, len))
}

/// The relay's side: answers a `CREATE` body with its onion keys, trying
/// each of `onion_keys` in turn (the current key, then the previous one
/// during rotation). Returns the hop's CGO layer and the `CREATED` body.
pub fn respond(
    onion_keys: &[&StaticKeypair],
    ephemeral_secret: [u8; 32],
    create: &[u8; BODY_LEN],
) -> Result<(RelayLayer, [u8; BODY_LEN]), HopHandshakeError> {
    let mut secret = ephemeral_secret;
    let ephemeral = StaticKeypair::from_secret_bytes(secret);
    secret.zeroize();
    respond_with(onion_keys, ephemeral, create)
}

/// [`respond`] with an ephemeral key pair drawn earlier
/// ([`ReadyEphemerals`](super::ReadyEphemerals)). Each onion key tried
/// uses the same pair: at most one attempt succeeds and answers.
#[inline(never)]
pub fn respond_with(
    onion_keys: &[&StaticKeypair],
    ephemeral: StaticKeypair,
    create: &[u8; BODY_LEN],
) -> Result<(RelayLayer, [u8; BODY_LEN]), HopHandshakeError> {
    let message = parse_create(create)?;
    if message.len() != HOP_MESSAGE_LEN {
        return Err(HopHandshakeError::BadLength(message.len()));
    }
    let mut last_error = HopHandshakeError::Noise(NoiseError::MissingKey);
    for key in onion_keys {
        let attempt = (|| {
            let mut noise = HandshakeState::with_ephemeral(
                HandshakePattern::NK,
                Role::Responder,
                HOP_PROLOGUE,
                Some(key),
                ephemeral.clone(),
                None,
            )?;
            let mut payload = [0u8; HOP_MESSAGE_LEN];
            noise.read_message(&message, &mut payload)?;
            let mut reply = [0u8; HOP_MESSAGE_LEN];
            let n = noise.write_message(&[], &mut reply)?;
            let body = reply
                .get(..n)
                .and_then(emit_created)
                .ok_or(HopHandshakeError::BadLength(n))?;
            let (forward, backward) = seeds(&noise)?;
            Ok::<_, HopHandshakeError>((RelayLayer::new(&forward, &backward), body))
        })();
        match attempt {
            Ok(done) => return Ok(done),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgo::{ClientLayers, ForwardOutcome, PAYLOAD_LEN};

    const AD: u8 = 3;

    #[test]
    fn client_and_relay_derive_matching_layers() {
        let onion = StaticKeypair::from_secret_bytes([4; 32]);
        let (client, create) = HopHandshakeClient::start(&onion.public(), [5; 32]).unwrap();
        let (mut relay, created) = respond(&[&onion], [6; 32], &create).unwrap();
        let mut layers = ClientLayers::new();
        layers.push(client.finish(&created).unwrap()).unwrap();
        let mut cell = layers.originate_forward(0, AD, &[8; PAYLOAD_LEN]).unwrap();
        assert_eq!(
            relay.receive_forward(AD, &mut cell),
            ForwardOutcome::Recognised
        );
        assert_eq!(cell.payload, [8; PAYLOAD_LEN]);
        let mut back = relay.originate_backward(AD, &[9; PAYLOAD_LEN]);
        assert_eq!(layers.receive_backward(AD, &mut back), Some(0));
        assert_eq!(back.payload, [9; PAYLOAD_LEN]);
    }

    #[test]
    fn the_wrong_onion_key_fails_and_rotation_overlap_succeeds() {
        let old = StaticKeypair::from_secret_bytes([1; 32]);
        let new = StaticKeypair::from_secret_bytes([2; 32]);
        let (_, create) = HopHandshakeClient::start(&old.public(), [5; 32]).unwrap();
        assert_eq!(
            respond(&[&new], [6; 32], &create).unwrap_err(),
            HopHandshakeError::Noise(NoiseError::DecryptFailed)
        );
        assert!(respond(&[&new, &old], [6; 32], &create).is_ok());
    }

    #[test]
    fn a_tampered_created_is_refused() {
        let onion = StaticKeypair::from_secret_bytes([4; 32]);
        let (client, create) = HopHandshakeClient::start(&onion.public(), [5; 32]).unwrap();
        let (_, mut created) = respond(&[&onion], [6; 32], &create).unwrap();
        created[10] ^= 1;
        assert!(matches!(
            client.finish(&created),
            Err(HopHandshakeError::Noise(_))
        ));
    }

    #[test]
    fn each_handshake_gives_fresh_keys() {
        let onion = StaticKeypair::from_secret_bytes([4; 32]);
        let (_, create_a) = HopHandshakeClient::start(&onion.public(), [5; 32]).unwrap();
        let (_, create_b) = HopHandshakeClient::start(&onion.public(), [7; 32]).unwrap();
        let (relay_a, _) = respond(&[&onion], [6; 32], &create_a).unwrap();
        let (relay_b, _) = respond(&[&onion], [6; 32], &create_b).unwrap();
        assert_ne!(relay_a.forward.key, relay_b.forward.key);
        assert_ne!(relay_a.forward.key, relay_a.backward.key);
    }
}
