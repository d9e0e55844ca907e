//! What an owner can read of a node without changing it: for status
//! output, metrics and persistence.

use crate::discovery::NodeTable;
use crate::identity::{Identity, NodeId, Transport};
use crate::link::{LinkPhase, LinkRole, LinkStats, RttEstimator};
use crate::noise::StaticKeypair;

use super::slot::Session;
use super::{LinkId, LinkSlot, Node, NodeConfig, NodeStats, Profile};

/// A snapshot of one link, for status output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// The link.
    pub link: LinkId,
    /// Dialled or accepted.
    pub role: LinkRole,
    /// Where it is in its life.
    pub phase: LinkPhase,
    /// The authenticated peer, once known.
    pub peer: Option<NodeId>,
    /// Round-trip time from keepalives.
    pub rtt: RttEstimator,
    /// Traffic counters.
    pub stats: LinkStats,
    /// Cells waiting to be sent.
    pub queued_cells: usize,
    /// What the link runs over, if the adapter said
    /// ([`OpenLink::transport`](super::OpenLink::transport)).
    pub transport: Option<Transport>,
    /// We dialled it under a throwaway identity, for our own circuits
    /// ([`OpenLink::anonymous`](super::OpenLink::anonymous)).
    pub anonymous: bool,
}

/// A snapshot of one circuit this node built, for status output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnCircuitInfo {
    /// The circuit.
    pub circuit: crate::circuit::CircuitHandle,
    /// Its hops, destination last.
    pub path: crate::discovery::Path,
    /// Every hop built.
    pub ready: bool,
    /// When it was opened.
    pub opened_at: crate::time::Instant,
    /// Its round-trip time, from its build and its answers.
    pub rtt: RttEstimator,
    /// When its liveness timer next fires (`None`: nothing outstanding).
    pub liveness_deadline: Option<crate::time::Instant>,
    /// `DATA` cells it may send now before more credit (relay spec §9):
    /// up to the window its destination granted.
    pub send_window: u16,
}

impl<P: Profile> Node<P> {
    /// How long an own circuit may take to build now: the configured
    /// default until enough builds were timed, then Tor's estimate.
    pub fn build_timeout(&self) -> crate::time::Duration {
        self.circuits.build_times.timeout()
    }

    /// How many builds [`build_timeout`](Self::build_timeout) rests on.
    pub fn build_times_observed(&self) -> usize {
        self.circuits.build_times.observed()
    }

    /// Every circuit this node built (or is building).
    pub fn own_circuits(&self) -> impl Iterator<Item = OwnCircuitInfo> + '_ {
        self.engine.clients().map(|c| OwnCircuitInfo {
            circuit: c.handle,
            path: c.path.clone(),
            ready: c.is_ready(),
            opened_at: c.opened_at,
            rtt: *c.liveness.rtt(),
            liveness_deadline: c.liveness.deadline(),
            send_window: c.flow.send_window,
        })
    }

    /// The roles this node holds for rendezvous services (relay spec §13):
    /// services it introduces, and rendezvous it has joined.
    pub fn rendezvous_roles(&self) -> (usize, usize) {
        let tables = self.engine.rendezvous_tables();
        (tables.introducing(), tables.rendezvous().1)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    /// This node's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The settings the node was built with.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// How many link slots the node has.
    pub fn link_capacity(&self) -> usize {
        self.links.as_ref().len()
    }

    /// The largest link message this node accepts (advertised to peers).
    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    /// This node's current signed descriptor.
    pub fn descriptor(&self) -> &[u8] {
        self.discovery.descriptor()
    }

    /// This node's onion key (X25519 public), for circuit-hop handshakes.
    pub fn onion_public_key(&self) -> [u8; 32] {
        self.discovery.onion().public()
    }

    /// The onion keys this node answers hop handshakes with, newest first:
    /// the current one and, after a rotation, the previous one.
    pub fn onion_keys(&self) -> heapless::Vec<&StaticKeypair, 2> {
        self.discovery.onion_keys()
    }

    /// The nodes this node knows.
    pub fn node_table(&self) -> &NodeTable<P::Peers> {
        self.discovery.table()
    }

    /// A snapshot of one link.
    pub fn link_info(&self, link: LinkId) -> Option<LinkInfo> {
        let index = self.slot_index(link)?;
        let slot = self.links.as_ref().get(index)?;
        info::<P>(link, slot)
    }

    /// Snapshots of every open link.
    pub fn links(&self) -> impl Iterator<Item = LinkInfo> + '_ {
        self.links
            .as_ref()
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| {
                let link = LinkId::new(u16::try_from(index).ok()?, slot.generation);
                info::<P>(link, slot)
            })
    }

    /// Counters since the node was built.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// How many relayed circuits one link, or one network, may hold here.
    pub fn relay_quotas(&self) -> crate::circuit::RelayQuotas {
        self.engine.quotas()
    }

    /// Circuits this node is a hop of (as relay or destination), and
    /// circuits it built.
    pub fn circuit_counts(&self) -> (usize, usize) {
        (self.engine.relayed(), self.engine.own())
    }

    /// Unacknowledged outgoing messages, and incoming ones (partial or
    /// waiting to be taken).
    pub fn message_counts(&self) -> (usize, usize) {
        (self.messages.outgoing(), self.messages.incoming())
    }
}

fn info<P: Profile>(link: LinkId, slot: &LinkSlot<P>) -> Option<LinkInfo> {
    let session: &Session<P> = slot.session.as_ref()?;
    Some(LinkInfo {
        link,
        role: session.role(),
        phase: session.phase(),
        peer: session.peer(),
        rtt: *session.rtt(),
        stats: *session.stats(),
        queued_cells: session.queued_cells(),
        transport: slot.transport,
        anonymous: slot.anonymous,
    })
}
