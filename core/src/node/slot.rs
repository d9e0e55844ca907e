//! One entry of the node's link table.

use crate::discovery::NetworkPrefix;
use crate::identity::Transport;
use crate::link::LinkSession;
use crate::rate::TokenBucket;
use crate::time::Instant;

use super::descriptor_cells::GossipQuota;
use super::Profile;

/// The session type of a profile's links.
pub(crate) type Session<P> =
    LinkSession<<P as Profile>::LinkReceive, <P as Profile>::LinkSendQueue>;

/// Storage for one link. A node is built over a fixed slice of these (an
/// array on firmware, a boxed slice on std), so the number of links and the
/// bytes they use are fixed when the node is built.
pub struct LinkSlot<P: Profile> {
    pub(crate) generation: u16,
    pub(crate) session: Option<Session<P>>,
    pub(crate) opened_at: Instant,
    /// `LinkEstablished` has been queued for this link.
    pub(crate) announced: bool,
    /// Our descriptor has been queued on this link.
    pub(crate) introduced: bool,
    /// The peer is reached through this node: its own descriptor, sent
    /// over this link, lists this node as an introducer
    /// (`introducers.rs`). The link is not pruned or evicted.
    pub(crate) introduces_peer: bool,
    /// We dialled this link for a peer's reachability check
    /// (`reachability.rs`): it carries the proof and closes, and nothing
    /// else uses it.
    pub(crate) dial_back: bool,
    /// What the link runs over, if the adapter said.
    pub(crate) transport: Option<Transport>,
    /// The network prefix of the peer's address, if the adapter gave it.
    pub(crate) prefix: Option<NetworkPrefix>,
    /// We dialled this link under a throwaway identity, for our own
    /// circuits ([`OpenLink::anonymous`](super::OpenLink::anonymous)).
    pub(crate) anonymous: bool,
    /// We dialled this link to a bootstrap address (whoever answers): it
    /// is handed off once we are linked elsewhere (relay spec §10).
    pub(crate) bootstrap: bool,
    /// The link's budget of `CREATE`s ([`NodeConfig::creates_per_link`](super::NodeConfig::creates_per_link)).
    pub(crate) creates: TokenBucket,
    /// Since when the link's next received cell has waited for room
    /// ([`NodeConfig::cell_hold_timeout`](super::NodeConfig::cell_hold_timeout)).
    pub(crate) held_since: Option<Instant>,
    /// Bytes the transport takes now ([`TransportRoom`](super::TransportRoom)),
    /// less what was given since.
    pub(crate) room: usize,
    /// The peer's descriptor quota and strikes.
    pub(crate) gossip: GossipQuota,
}

impl<P: Profile> LinkSlot<P> {
    /// An empty slot.
    pub const fn new() -> Self {
        LinkSlot {
            generation: 0,
            session: None,
            opened_at: Instant::ZERO,
            announced: false,
            introduced: false,
            introduces_peer: false,
            dial_back: false,
            transport: None,
            prefix: None,
            anonymous: false,
            bootstrap: false,
            creates: TokenBucket::EMPTY,
            held_since: None,
            room: usize::MAX,
            gossip: GossipQuota::new(),
        }
    }
}

impl<P: Profile> Default for LinkSlot<P> {
    fn default() -> Self {
        LinkSlot::new()
    }
}

impl<P: Profile> core::fmt::Debug for LinkSlot<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkSlot")
            .field("generation", &self.generation)
            .field("session", &self.session)
            .field("room", &self.room)
            .finish()
    }
}

/// A copy of a link slot and its session (keys included): for tests that
/// restore a node to a saved state, only with the `testing` feature.
#[cfg(feature = "testing")]
impl<P: Profile> Clone for LinkSlot<P>
where
    P::LinkReceive: Clone,
    P::LinkSendQueue: Clone,
{
    fn clone(&self) -> Self {
        LinkSlot {
            generation: self.generation,
            session: self.session.clone(),
            opened_at: self.opened_at,
            announced: self.announced,
            introduced: self.introduced,
            introduces_peer: self.introduces_peer,
            dial_back: self.dial_back,
            transport: self.transport,
            prefix: self.prefix,
            anonymous: self.anonymous,
            bootstrap: self.bootstrap,
            creates: self.creates,
            held_since: self.held_since,
            room: self.room,
            gossip: self.gossip,
        }
    }
}
