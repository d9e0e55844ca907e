//! What the client does with the cells of its circuit: it holds every
//! hop's layer and adds or removes all of them.

use heapless::Vec;

use super::layer::{LayerState, Seed};
use super::{CellBody, MAX_HOPS, PAYLOAD_LEN};

/// One hop's layer as the client holds it.
#[derive(Debug, Clone)]
pub struct ClientHop {
    /// Client → exit direction.
    pub forward: LayerState,
    /// Exit → client direction.
    pub backward: LayerState,
}

impl ClientHop {
    /// The hop's layer from the two seeds of its handshake.
    pub fn new(forward: &Seed, backward: &Seed) -> Self {
        ClientHop {
            forward: LayerState::from_seed(forward),
            backward: LayerState::from_seed(backward),
        }
    }
}

/// Why a client operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClientCryptError {
    /// The hop index is beyond the circuit's length.
    NoSuchHop(usize),
    /// The circuit already has [`MAX_HOPS`] hops.
    TooManyHops,
}

impl core::fmt::Display for ClientCryptError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ClientCryptError::NoSuchHop(i) => write!(f, "the circuit has no hop {i}"),
            ClientCryptError::TooManyHops => {
                write!(f, "a circuit has at most {MAX_HOPS} hops")
            }
        }
    }
}

impl core::error::Error for ClientCryptError {}

/// The client's layers for one circuit, hop 0 nearest the client.
#[derive(Debug, Clone, Default)]
pub struct ClientLayers {
    hops: Vec<ClientHop, MAX_HOPS>,
}

impl ClientLayers {
    /// No hops yet.
    pub fn new() -> Self {
        ClientLayers { hops: Vec::new() }
    }

    /// Adds the next hop, after its handshake.
    pub fn push(&mut self, hop: ClientHop) -> Result<(), ClientCryptError> {
        self.hops
            .push(hop)
            .map_err(|_| ClientCryptError::TooManyHops)
    }

    /// Hops in the circuit.
    pub fn len(&self) -> usize {
        self.hops.len()
    }

    /// Whether the circuit has no hops.
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }

    /// The layers, hop 0 first (for tests and inspection).
    pub fn hops(&self) -> &[ClientHop] {
        &self.hops
    }

    /// Mutable layers (for vector tests that start from given states).
    pub fn hops_mut(&mut self) -> &mut [ClientHop] {
        &mut self.hops
    }

    /// Builds a cell for hop `target` (0-based) carrying `payload`: mark it
    /// with the hop's nonce, remove every layer from `target` down to 0, and
    /// ratchet the target's forward keys.
    pub fn originate_forward(
        &mut self,
        target: usize,
        ad: u8,
        payload: &[u8; PAYLOAD_LEN],
    ) -> Result<CellBody, ClientCryptError> {
        let hop = self
            .hops
            .get(target)
            .ok_or(ClientCryptError::NoSuchHop(target))?;
        let mut body = CellBody::new(hop.forward.nonce, *payload);
        for (index, hop) in self
            .hops
            .iter_mut()
            .enumerate()
            .take(target.saturating_add(1))
            .rev()
        {
            if index == target {
                hop.forward.decrypt_originating(ad, &mut body);
            } else {
                hop.forward.decrypt(ad, &mut body);
            }
        }
        Ok(body)
    }

    /// Wraps a cell that was originated beyond the last hop (by a
    /// rendezvous service's hop, relay spec §13) in every layer, so that
    /// each hop passes it on without recognising it: what
    /// [`originate_forward`](Self::originate_forward) does to the hops
    /// before its target.
    pub fn wrap_forward(&mut self, ad: u8, body: &mut CellBody) {
        for hop in self.hops.iter_mut().rev() {
            hop.forward.decrypt(ad, body);
        }
    }

    /// Peels a cell arriving from the circuit, hop by hop, until one hop
    /// recognises it. Returns that hop's index (its keys are ratcheted and
    /// `body.payload` is the plaintext), or `None` if no hop does: the cell
    /// was altered and the circuit must be destroyed.
    pub fn receive_backward(&mut self, ad: u8, body: &mut CellBody) -> Option<usize> {
        for (index, hop) in self.hops.iter_mut().enumerate() {
            if hop.backward.decrypt_recognising(ad, body) {
                return Some(index);
            }
        }
        None
    }
}
