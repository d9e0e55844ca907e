//! The top-level sans-IO state machine: one input entry point, one drained
//! output.
//!
//! A [`Node`] owns an identity, a CSPRNG, a fixed table of links, its
//! circuits and its messages. Its owner (an adapter over sockets, a
//! simulator, a trace replayer) drives it through two calls:
//!
//! - [`Node::handle`]`(now, input)` takes one input: one of the types in
//!   [`input`](self#inputs) (`OpenLink`, `Receive`, `Timeout`,
//!   `SendMessage`, …), each with its own result type.
//! - [`Node::poll`]`(now, buf)` gives one output: bytes for a link, a
//!   circuit cell for a circuit stream, an event, a received message, a
//!   connection to make, and finally [`Output::Timeout`].
//!
//! # The contract
//!
//! 1. After every input, *drain*: call `poll` until it returns
//!    [`Output::Timeout`]. Draining one output may make others (taking an
//!    event frees room for cells a link held back; a transmit frees queue
//!    room that waiting messages fill), so outputs are not counted in
//!    advance: the node keeps answering until it has nothing more.
//!    [`drain`] is that loop, and every driver uses it.
//! 2. `Output::Timeout(at)` means: nothing more until `at` or the next
//!    input. At `at`, hand in [`Timeout`] and drain again.
//! 3. Time is the caller's: every call takes `now` (a monotonic
//!    [`Instant`]); the node never reads a clock, and time never runs
//!    backwards inside it. Randomness comes from the seed given to
//!    [`Node::new`]. The same seed and the same inputs give the same
//!    outputs, byte for byte.
//! 4. Memory is fixed by the [`Profile`]: no input, however hostile, grows
//!    it. A full table or queue refuses or evicts by a stated rule and says
//!    so, and backpressure works by not consuming: a [`Receive`] that
//!    returns fewer bytes than it was given, a [`ReceiveStreamCell`] that
//!    says `WouldBlock`.
//! 5. A buffer too small for the next output is an error that names the
//!    size needed ([`PollError::BufferTooSmall`]); nothing is lost.
//!
//! # Example
//!
//! Two nodes linked in memory, the way an adapter links them over a socket:
//!
//! ```
//! use veil_core::identity::{Identity, Transport};
//! use veil_core::message::MessageSlot;
//! use veil_core::node::{drain, Event, LinkSlot, Node, NodeConfig, OpenLink, Output, Receive};
//! use veil_core::time::Instant;
//!
//! veil_core::node_profile! {
//!     struct Small {
//!         link_receive: 2 + 4096, link_send_queue: 8, events: 8, peers: 8,
//!         relayed: 4, own: 2, message: 1024,
//!         links: [LinkSlot<Small>; 2],
//!         messages: [MessageSlot<[u8; 1024]>; 2],
//!     }
//! }
//! fn node(seed: u8) -> Node<Small> {
//!     let identity = Identity::from_secret_bytes([seed; 32]);
//!     let links = core::array::from_fn(|_| LinkSlot::new());
//!     let messages = core::array::from_fn(|_| MessageSlot::new());
//!     Node::new(NodeConfig::default(), identity, [seed; 32], links, messages)
//! }
//! let (mut a, mut b) = (node(1), node(2));
//! let now = Instant::ZERO;
//! let (addr_a, addr_b) = ("192.0.2.1".parse().unwrap(), "198.51.100.1".parse().unwrap());
//! let link_a = a.handle(now, OpenLink::dialled(None, Transport::Tcp, addr_b)).unwrap();
//! let link_b = b.handle(now, OpenLink::accepted(Transport::Tcp, addr_a)).unwrap();
//! let mut buf = vec![0u8; 16 * 1024];
//! let mut up = 0;
//! // Drains `from`: what it transmits goes to `to`, every event is seen.
//! let mut pass = |from: &mut Node<Small>, to: &mut Node<Small>, to_link| {
//!     let mut wire = Vec::new();
//!     drain(from, now, &mut buf, |_, output| match output {
//!         Output::Transmit { bytes, .. } => wire.extend_from_slice(bytes),
//!         Output::Event(Event::LinkEstablished { .. }) => up += 1,
//!         _ => {}
//!     })
//!     .unwrap();
//!     let taken = to.handle(now, Receive { link: to_link, bytes: &wire }).unwrap();
//!     assert_eq!(taken, wire.len(), "all of it fits");
//! };
//! for _ in 0..3 {
//!     pass(&mut a, &mut b, link_b);
//!     pass(&mut b, &mut a, link_a);
//! }
//! assert_eq!(up, 2, "both ends saw the link come up");
//! ```

mod admission;
mod anchors;
#[cfg(feature = "anonymity")]
mod anonymity;
#[cfg(test)]
mod anonymity_tests;
mod circuit_ctx;
mod circuits;
mod config;
#[cfg(feature = "cover-traffic")]
mod cover;
mod descriptor_cells;
mod dial;
mod discovery;
mod drive;
mod error;
mod event;
mod feelers;
mod gossip;
mod guards;
mod held_cell;
mod input;
mod introducers;
mod links;
#[cfg(feature = "introducers")]
mod lookup;
#[cfg(not(feature = "introducers"))]
#[path = "lookup_disabled.rs"]
mod lookup;
mod messaging;
#[cfg(feature = "mixing-delays")]
mod mixing;
#[cfg(test)]
mod mixing_tests;
mod outbound;
mod output;
mod profile;
mod queries;
mod reachability;
#[cfg(test)]
mod ready_ephemerals_tests;
mod receive;
mod rendezvous;
#[cfg(feature = "replay-filter")]
mod replay_filter;
#[cfg(feature = "serde")]
mod serde_cell;
mod service;
#[cfg(feature = "shaping")]
mod shaping;
mod slot;
#[cfg(test)]
mod small_node_tests;
mod state;
mod stats;
mod testing;
mod timers;
#[cfg(feature = "vanguards")]
mod vanguards;
#[cfg(test)]
mod vanguards_tests;

pub use anchors::{AddAnchor, AddAnchorError, MAX_ANCHORS};
#[cfg(feature = "anonymity")]
pub use anonymity::{Anonymity, UnknownAnonymity};
pub use circuits::{FORCED_REBUILD_INTERVAL, MAX_FORCED_REBUILDS, MAX_GUARDS};
pub use config::{ConfigError, MessagePadding, NodeConfig, Reachability};
#[cfg(feature = "cover-traffic")]
pub use cover::{CoverTraffic, BUDGET_BURST_SECS, COVER_CELL_CHARGE, FRONT_QUIET, LOOPS_AWAITED};
pub use descriptor_cells::{DESCRIPTORS_PER_INTERVAL, DESCRIPTOR_BURST, MAX_STRIKES};
pub use dial::{DialRequest, MAX_BOOTSTRAP, MAX_PENDING_DIALS};
pub use discovery::{DescriptorRefusal, GOSSIP_FANOUT, GOSSIP_SAMPLE};
pub use drive::{drain, Drive};
pub use error::{
    AddBootstrapError, LinkInputError, OpenLinkError, SendCellError, SendMessageError,
    StreamCellError,
};
pub use event::{Event, MessageFailure};
pub use feelers::FEELER_LINGER;
pub use guards::{AUTO_GUARDS, GUARD_SAMPLE};
pub use held_cell::HeldCell;
pub use input::{
    AddBootstrap, CloseLink, DialFailed, Input, LearnDescriptor, NodeInput, OpenLink, Outcome,
    Receive, ReceiveStreamCell, RecordPeerFailure, Reply, SendMessage, SetAddresses, SetGuards,
    SetReceiving, Timeout, TransportClosed, TransportRoom,
};
pub use lookup::lookup_state_size;
#[cfg(feature = "introducers")]
pub use lookup::{
    FORWARD_LIFETIME, FORWARD_SPACING, LOOKUP_FANOUT, LOOKUP_INTERVAL, LOOKUP_SPACING,
};
#[cfg(feature = "mixing-delays")]
pub use mixing::{mixing_share, mixing_state_size, MIXING_QUEUE};
pub use outbound::{OUTBOUND_LINKS, PRUNE_GRACE};
pub use output::{Output, PollError};
pub use profile::Profile;
pub use profile::ReplayMark;
pub use queries::{LinkInfo, OwnCircuitInfo};
pub use reachability::{
    ReachabilityStatus, DIAL_BACK_PEERS, DIAL_BACK_QUORUM, MAX_DIAL_BACKS, RECHECK_INTERVAL,
    RETRY_INTERVAL,
};
pub use rendezvous::{LearnService, LearnServiceError, MAX_KNOWN_SERVICES};
pub use service::{
    rendezvous_state_size, ServiceDescriptorUnavailable, INTRO_KEEPALIVE, INTRO_POINTS,
};
#[cfg(feature = "shaping")]
pub use shaping::SHAPED_REPLIES;
pub use slot::LinkSlot;
pub use state::{
    RestoreState, RestoreStateError, RestoredState, StateBufferTooSmall, STATE_VERSION,
};
pub use stats::{CellDrops, InboundRefusals, NodeStats};
#[cfg(feature = "testing")]
pub use testing::{CellHook, SendCell};
#[cfg(feature = "vanguards")]
pub use vanguards::{MAX_LIFETIME_SECS, MAX_SECOND_LAYER_GUARDS, MIN_LIFETIME_SECS};

pub use crate::link::LinkId;

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::capacity::DequeStore;
use crate::circuit::{CircuitEngine, ReadyEphemerals};
use crate::identity::Identity;
use crate::message::MessagePool;
use crate::noise::StaticKeypair;
use crate::time::Instant;

/// The node's CSPRNG: chacha20's generator, and with the `testing` feature
/// a copy of it (the generator itself is not `Clone`) for tests and fuzz
/// targets that restore a node to a saved state.
struct NodeRng(ChaCha20Rng);

impl core::ops::Deref for NodeRng {
    type Target = ChaCha20Rng;

    fn deref(&self) -> &ChaCha20Rng {
        &self.0
    }
}

impl core::ops::DerefMut for NodeRng {
    fn deref_mut(&mut self) -> &mut ChaCha20Rng {
        &mut self.0
    }
}

/// The same key, stream and position: the copy yields what the original
/// yields next.
#[cfg(feature = "testing")]
impl Clone for NodeRng {
    fn clone(&self) -> Self {
        let mut rng = ChaCha20Rng::from_seed(self.0.get_seed());
        rng.set_stream(self.0.get_stream());
        rng.set_word_pos(self.0.get_word_pos());
        NodeRng(rng)
    }
}

/// A veil node, with the capacities its [`Profile`] names. See the
/// [module docs](self) for how to drive it.
#[cfg_attr(feature = "testing", derive(Clone))]
pub struct Node<P: Profile> {
    identity: Identity,
    static_keypair: StaticKeypair,
    hello: [u8; crate::link::HELLO_LEN],
    max_message_len: usize,
    rng: NodeRng,
    config: NodeConfig,
    links: P::Links,
    events: P::Events,
    /// Some slot owes an event that did not fit; sweep when room appears.
    events_deferred: bool,
    /// Some link holds received cells that found no room; retry them when
    /// room may have appeared.
    cells_held: bool,
    /// A stream cell changed what [`pump`](Node::pump) may do. It runs once
    /// at the next `poll` rather than after every such input, so a driver
    /// that hands in a batch of cells before draining (QUIC's circuit
    /// streams: one input per cell) pays for the node's upkeep once per
    /// batch.
    #[cfg(feature = "batched-upkeep")]
    pump_due: bool,
    /// The owner takes received messages ([`SetReceiving`]).
    receiving: bool,
    next_transmit_index: usize,
    now: Instant,
    discovery: discovery::Discovery<P::Peers>,
    engine: CircuitEngine<P::Relayed, P::Own>,
    messages: MessagePool<P::Messages, P::MessageBuffer>,
    dialer: dial::Dialer,
    stats: NodeStats,
    circuits: circuits::CircuitState,
    /// Hop-handshake key pairs drawn while the node waits.
    ready_ephemerals: ReadyEphemerals<P::ReadyEphemerals>,
    /// Whether others can dial this node, and the dial-backs it makes.
    reach: reachability::Reach,
    /// Rendezvous services this node reaches, and the rendezvous it sets up.
    senders: rendezvous::Senders,
    /// The rendezvous service this node offers.
    services: service::Services,
    /// Marks of first handshake messages accepted lately (link spec §2.2).
    #[cfg(feature = "replay-filter")]
    replay_marks: P::ReplayMarks,
    /// Cover traffic: its budget, its next times, the loops awaited.
    #[cfg(feature = "cover-traffic")]
    cover: cover::Cover,
    /// Constant-rate shaping: reply ends in a burst, the next slot.
    #[cfg(feature = "shaping")]
    shaping: shaping::ShapingState,
    /// Cells held for their mixing delays.
    #[cfg(feature = "mixing-delays")]
    mixing: mixing::MixQueue<P::MixedCells>,
    #[cfg(feature = "testing")]
    cell_hook: Option<CellHook>,
}

impl<P: Profile> core::fmt::Debug for Node<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.identity.node_id())
            .field("queued_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl<P: Profile> Node<P> {
    /// Builds a node. `seed` seeds the node's CSPRNG (OS entropy on Linux, a
    /// hardware RNG on a chip); every random choice the node makes comes from
    /// it. `links` fixes how many links the node can hold, `messages` how
    /// many messages it can have in flight (half each way).
    pub fn new(
        config: NodeConfig,
        identity: Identity,
        seed: [u8; 32],
        links: P::Links,
        messages: P::Messages,
    ) -> Self {
        const { profile::check::<P>() };
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut static_secret = [0u8; 32];
        rng.fill_bytes(&mut static_secret);
        let static_keypair = StaticKeypair::from_secret_bytes(static_secret);
        zeroize::Zeroize::zeroize(&mut static_secret);
        let discovery = discovery::Discovery::new(&identity, &config, &mut rng);
        // Cells are taken from a link one at a time, so the event queue
        // does not bound the link message size; the receive buffer does.
        let max_message_len = links::max_message_len(
            <P::LinkReceive as crate::capacity::ByteStore>::LEN,
            config.max_message_len,
        );
        let hello = links::hello(&identity, &static_keypair.public(), max_message_len);
        Node {
            identity,
            static_keypair,
            hello,
            max_message_len,
            rng: NodeRng(rng),
            config,
            links,
            events: P::Events::EMPTY,
            events_deferred: false,
            cells_held: false,
            #[cfg(feature = "batched-upkeep")]
            pump_due: false,
            receiving: true,
            next_transmit_index: 0,
            now: Instant::ZERO,
            discovery,
            engine: CircuitEngine::new(),
            messages: MessagePool::new(messages),
            dialer: dial::Dialer::new(),
            stats: NodeStats::default(),
            circuits: circuits::CircuitState::new(config.circuit_build_timeout),
            ready_ephemerals: ReadyEphemerals::default(),
            reach: reachability::Reach::new(config.reachability),
            senders: rendezvous::Senders::default(),
            services: service::Services::default(),
            #[cfg(feature = "replay-filter")]
            replay_marks: P::ReplayMarks::EMPTY,
            #[cfg(feature = "cover-traffic")]
            cover: cover::Cover::new(),
            #[cfg(feature = "shaping")]
            shaping: shaping::ShapingState::default(),
            #[cfg(feature = "mixing-delays")]
            mixing: mixing::MixQueue::new(),
            #[cfg(feature = "testing")]
            cell_hook: None,
        }
    }

    /// Time never runs backwards inside the node, whatever the caller passes.
    fn advance(&mut self, now: Instant) -> Instant {
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    /// Room in the event queue.
    fn event_room(&self) -> usize {
        self.events.room()
    }
}

#[cfg(all(test, feature = "testing"))]
mod node_rng_tests {
    use super::*;

    /// A copy made mid-stream (not on a block boundary) yields what the
    /// original yields next, and not the start of the stream again.
    #[test]
    fn a_copied_rng_continues_the_same_stream() {
        let mut original = NodeRng(ChaCha20Rng::from_seed([7; 32]));
        let mut start = [0u8; 40];
        original.fill_bytes(&mut start);
        let mut copy = original.clone();
        let (mut a, mut b) = ([0u8; 300], [0u8; 300]);
        original.fill_bytes(&mut a);
        copy.fill_bytes(&mut b);
        assert_eq!(a, b);
        assert_ne!(a[..40], start);
    }
}
