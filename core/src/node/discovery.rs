//! The node's side of discovery: its onion key and signed descriptor,
//! the node table and its timers, and the samples it gossips. Descriptor
//! cells coming in are checked in `descriptor_cells`; feeler dials and
//! anchors are in `feelers` and `anchors`.

use core::fmt;

use heapless::Vec;
use rand_core::Rng;

use crate::capacity::VecStore;
use crate::cell::{emit_descriptor_body, CellCommand, CellRepr, CircuitId};
use crate::discovery::{InsertError, NodeTable, PeerEntry};
use crate::identity::{
    Address, DescriptorError, DescriptorRepr, Identity, Introducer, NodeId, MAX_ADDRESSES,
    MAX_DESCRIPTOR_LEN, MAX_INTRODUCERS,
};
use crate::link::Cell;
use crate::noise::StaticKeypair;
use crate::time::{Duration, Instant};

use super::feelers::Feelers;
use super::NodeConfig;

/// Descriptors sent per gossip round.
pub const GOSSIP_SAMPLE: usize = 8;
/// Links (picked at random, possibly the same twice) that get a sample per
/// gossip round. More than one lets a well-linked bootstrap node spread
/// what it knows to newcomers in a few rounds.
pub const GOSSIP_FANOUT: usize = 3;

/// Why a received descriptor was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DescriptorRefusal {
    /// The cell body is not a length-prefixed descriptor.
    Malformed,
    /// The descriptor failed verification.
    Invalid(DescriptorError),
    /// The node table refused it.
    Table(InsertError),
}

impl fmt::Display for DescriptorRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescriptorRefusal::Malformed => write!(f, "descriptor cell body is malformed"),
            DescriptorRefusal::Invalid(e) => write!(f, "{e}"),
            DescriptorRefusal::Table(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for DescriptorRefusal {}

/// Wall-clock Unix seconds at `now`, from the config's anchor.
pub(crate) fn unix_now(config: &NodeConfig, now: Instant) -> u64 {
    config
        .unix_time_at_zero
        .saturating_add(now.as_micros().checked_div(1_000_000).unwrap_or(0))
}

/// What the discovery timers did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TimerOutcome {
    /// The descriptor was re-signed: send it to every linked peer.
    pub(crate) resigned: bool,
    /// Gossip is due.
    pub(crate) gossip: bool,
}

#[cfg_attr(feature = "testing", derive(Clone))]
pub(crate) struct Discovery<S> {
    onion: StaticKeypair,
    /// The key before the last rotation, still answered so that circuits
    /// built from a descriptor fetched before the rotation do not fail.
    previous_onion: Option<StaticKeypair>,
    /// When the onion key is next rotated.
    onion_rotate_at: Instant,
    table: NodeTable<S>,
    descriptor: Vec<u8, MAX_DESCRIPTOR_LEN>,
    issued_at: u64,
    addresses: Vec<Address, MAX_ADDRESSES>,
    /// The relays this node is reached through (`introducers.rs`), listed
    /// in its descriptor with their keys and addresses from the table.
    introducers: Vec<NodeId, MAX_INTRODUCERS>,
    next_gossip_at: Instant,
    /// Feeler dials: their timer, the node being tested, the link to close.
    pub(crate) feelers: Feelers,
}

impl<S: VecStore<PeerEntry>> Discovery<S> {
    pub(crate) fn new(identity: &Identity, config: &NodeConfig, rng: &mut impl Rng) -> Self {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let onion = StaticKeypair::from_secret_bytes(secret);
        // The node table's bucket key: secret, so that nobody can tell
        // which networks share a bucket.
        rng.fill_bytes(&mut secret);
        let table = NodeTable::new(identity.node_id(), secret);
        zeroize::Zeroize::zeroize(&mut secret);
        let mut discovery = Discovery {
            onion,
            previous_onion: None,
            onion_rotate_at: Instant::ZERO.saturating_add(config.onion_key_lifetime),
            table,
            descriptor: Vec::new(),
            issued_at: 0,
            addresses: Vec::new(),
            introducers: Vec::new(),
            next_gossip_at: Instant::ZERO.saturating_add(config.gossip_interval),
            feelers: Feelers::new(config),
        };
        discovery.sign(identity, config, Instant::ZERO);
        discovery
    }

    pub(crate) fn table(&self) -> &NodeTable<S> {
        &self.table
    }

    pub(crate) fn table_mut(&mut self) -> &mut NodeTable<S> {
        &mut self.table
    }

    /// The node table and the onion keys at once (the circuit engine
    /// answers hop handshakes while the node records peer health).
    pub(crate) fn split(&mut self) -> (&mut NodeTable<S>, Vec<&StaticKeypair, 2>) {
        let mut keys = Vec::new();
        let _ = keys.push(&self.onion);
        if let Some(previous) = self.previous_onion.as_ref() {
            let _ = keys.push(previous);
        }
        (&mut self.table, keys)
    }

    pub(crate) fn onion(&self) -> &StaticKeypair {
        &self.onion
    }

    /// The onion keys a hop handshake may use, newest first.
    pub(crate) fn onion_keys(&self) -> Vec<&StaticKeypair, 2> {
        let mut keys = Vec::new();
        let _ = keys.push(&self.onion);
        if let Some(previous) = self.previous_onion.as_ref() {
            let _ = keys.push(previous);
        }
        keys
    }

    fn rotate_at(&self, _config: &NodeConfig) -> Instant {
        self.onion_rotate_at
    }

    /// The onion keys (current, previous) and when the current one is due
    /// for rotation, in Unix seconds: what a restart must keep so that
    /// descriptors of this node held elsewhere still work.
    pub(crate) fn onion_state(
        &self,
        config: &NodeConfig,
    ) -> (&StaticKeypair, Option<&StaticKeypair>, u64) {
        (
            &self.onion,
            self.previous_onion.as_ref(),
            unix_now(config, self.onion_rotate_at),
        )
    }

    /// Takes back saved onion keys, and re-signs the descriptor with them.
    pub(crate) fn restore_onion(
        &mut self,
        identity: &Identity,
        config: &NodeConfig,
        now: Instant,
        current: StaticKeypair,
        previous: Option<StaticKeypair>,
        rotate_at_unix: u64,
    ) {
        self.onion = current;
        self.previous_onion = previous;
        // Due before this run began: rotate at the next timer.
        let secs = rotate_at_unix.saturating_sub(config.unix_time_at_zero);
        self.onion_rotate_at = Instant::ZERO.saturating_add(Duration::from_secs(secs));
        self.sign(identity, config, now);
    }

    pub(crate) fn descriptor(&self) -> &[u8] {
        &self.descriptor
    }

    /// Re-signs the descriptor at `now`. `issued_at` strictly increases so
    /// that peers take the new one over the old.
    pub(crate) fn sign(&mut self, identity: &Identity, config: &NodeConfig, now: Instant) {
        let issued_at = unix_now(config, now).max(self.issued_at.saturating_add(1));
        let repr = DescriptorRepr {
            identity: identity.public(),
            onion_key: self.onion.public(),
            relay: config.relay,
            issued_at,
            expires_at: issued_at.saturating_add(config.descriptor_lifetime_secs.max(1)),
            addresses: self.addresses.clone(),
        };
        let listed: Vec<Introducer, MAX_INTRODUCERS> = self
            .introducers
            .iter()
            .filter_map(|id| {
                let entry = self.table.get(id)?;
                let repr = entry.descriptor.repr();
                Some(Introducer {
                    node_id: *id,
                    onion_key: repr.onion_key,
                    address: *repr.addresses.first()?,
                })
            })
            .collect();
        let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
        let signed = if super::introducers::INTRODUCERS {
            repr.emit_signed_introduced(&listed, identity, &mut buf)
        } else {
            repr.emit_signed(identity, &mut buf)
        };
        if let Ok(n) = signed {
            if let Some(bytes) = buf.get(..n) {
                if let Ok(v) = Vec::from_slice(bytes) {
                    self.descriptor = v;
                    self.issued_at = issued_at;
                }
            }
        }
    }

    pub(crate) fn set_addresses(&mut self, addresses: &[Address]) {
        self.addresses = addresses.iter().copied().take(MAX_ADDRESSES).collect();
    }

    /// The addresses the descriptor advertises.
    pub(crate) fn addresses(&self) -> &[Address] {
        &self.addresses
    }

    /// The relays this node is reached through.
    pub(crate) fn introducers(&self) -> &[NodeId] {
        &self.introducers
    }

    /// Lists `introducers` from now on (at most as many as fit beside the
    /// addresses); the caller re-signs.
    pub(crate) fn set_introducers(&mut self, introducers: &[NodeId]) {
        let room = MAX_ADDRESSES.saturating_sub(self.addresses.len());
        self.introducers = introducers
            .iter()
            .copied()
            .take(room.min(MAX_INTRODUCERS))
            .collect();
    }

    /// When the descriptor must be re-signed: halfway through its life.
    fn refresh_at(&self, config: &NodeConfig) -> Instant {
        let half_life = config.descriptor_lifetime_secs.checked_div(2).unwrap_or(0);
        let due_unix = self.issued_at.saturating_add(half_life);
        let secs_after_zero = due_unix.saturating_sub(config.unix_time_at_zero);
        Instant::ZERO.saturating_add(Duration::from_secs(secs_after_zero))
    }

    pub(crate) fn deadline(&self, config: &NodeConfig) -> Instant {
        self.refresh_at(config)
            .min(self.next_gossip_at)
            .min(self.rotate_at(config))
    }

    /// Rotates the onion key and re-signs if due. Returns whether the
    /// descriptor changed (peers must hear of it) and whether gossip is due.
    pub(crate) fn on_timeout(
        &mut self,
        identity: &Identity,
        config: &NodeConfig,
        now: Instant,
        rng: &mut impl Rng,
    ) -> TimerOutcome {
        let mut outcome = TimerOutcome::default();
        if now >= self.rotate_at(config) {
            // The new key goes into a re-signed descriptor at once; the old
            // one stays answerable for one more lifetime.
            let fresh = StaticKeypair::generate(rng);
            self.previous_onion = Some(core::mem::replace(&mut self.onion, fresh));
            self.onion_rotate_at = now.saturating_add(config.onion_key_lifetime);
            self.sign(identity, config, now);
            outcome.resigned = true;
        } else if now >= self.refresh_at(config) {
            self.sign(identity, config, now);
            outcome.resigned = true;
        }
        if now >= self.next_gossip_at {
            self.next_gossip_at = now.saturating_add(config.gossip_interval);
            outcome.gossip = true;
        }
        outcome
    }

    /// A `DESCRIPTOR` cell carrying `bytes`.
    pub(crate) fn descriptor_cell(bytes: &[u8]) -> Option<Cell> {
        Some(
            CellRepr {
                circuit_id: CircuitId::LINK,
                command: CellCommand::Descriptor,
                body: emit_descriptor_body(bytes)?,
            }
            .emit(),
        )
    }

    /// Our own descriptor as a cell.
    pub(crate) fn own_descriptor_cell(&self) -> Option<Cell> {
        Self::descriptor_cell(&self.descriptor)
    }

    /// Up to [`GOSSIP_SAMPLE`] random known descriptors, as cells, leaving
    /// out the recipient's own (it knows itself).
    pub(crate) fn gossip_cells(
        &self,
        rng: &mut impl Rng,
        recipient: Option<NodeId>,
    ) -> Vec<Cell, GOSSIP_SAMPLE> {
        self.table
            .sample::<GOSSIP_SAMPLE>(rng)
            .iter()
            .filter(|entry| Some(entry.node_id()) != recipient)
            .filter_map(|entry| Self::descriptor_cell(entry.descriptor.as_bytes()))
            .collect()
    }
}
