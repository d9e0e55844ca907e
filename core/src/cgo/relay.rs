//! What a relay (or the last hop) does with the cells of one circuit.

use super::layer::{LayerState, Seed};
use super::CellBody;

/// A relay's CGO state for one circuit: the forward (client → exit) and
/// backward (exit → client) directions of its layer.
#[derive(Debug, Clone)]
pub struct RelayLayer {
    /// Client → exit.
    pub forward: LayerState,
    /// Exit → client.
    pub backward: LayerState,
}

/// What became of a forward cell at a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardOutcome {
    /// The cell is for this hop; its payload is plaintext now.
    Recognised,
    /// Not for this hop: pass it to the next one.
    Forward,
}

impl RelayLayer {
    /// The layer from the two seeds of the hop handshake.
    pub fn new(forward: &Seed, backward: &Seed) -> Self {
        RelayLayer {
            forward: LayerState::from_seed(forward),
            backward: LayerState::from_seed(backward),
        }
    }

    /// A cell arriving from the client side: encrypt our layer and check
    /// whether we are its destination (ratcheting our keys if so).
    pub fn receive_forward(&mut self, ad: u8, body: &mut CellBody) -> ForwardOutcome {
        if self.forward.encrypt_recognising(ad, body) {
            ForwardOutcome::Recognised
        } else {
            ForwardOutcome::Forward
        }
    }

    /// A cell from further out, passing towards the client: add our layer.
    pub fn forward_backward(&mut self, ad: u8, body: &mut CellBody) {
        self.backward.encrypt(ad, body);
    }

    /// Originates a cell towards the client carrying `payload`.
    pub fn originate_backward(&mut self, ad: u8, payload: &[u8; super::PAYLOAD_LEN]) -> CellBody {
        let mut body = CellBody::new(self.backward.nonce, *payload);
        self.backward.encrypt_originating(ad, &mut body);
        body
    }
}
