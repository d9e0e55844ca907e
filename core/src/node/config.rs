//! Settings of a node, fixed when it is built.

use crate::identity::Address;
use crate::link::{LinkConfig, MAX_MESSAGE_LEN};
use crate::rate::RateLimit;
use crate::time::Duration;

/// How a node behaves. Capacities are type parameters of
/// [`Node`](super::Node); these are the run-time knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NodeConfig {
    /// Timers and rekey limits for every link.
    pub link: LinkConfig,
    /// The most inbound links that may be in their handshake at once. When
    /// a new one would exceed it, a half-open link of the network prefix
    /// with the most half-open links gives way (one that has not sent
    /// anything before one that has, then the oldest), so a flood from one
    /// network evicts only its own connections and never an established
    /// link.
    pub max_half_open: usize,
    /// The most inbound links in their handshake from one network prefix
    /// (IPv4 /16, IPv6 /32). A further one from that prefix replaces the
    /// prefix's own weakest half-open link.
    pub max_half_open_per_prefix: usize,
    /// The most inbound links, half-open or established, from one network
    /// prefix; a further one is refused. Never more than half of the slots
    /// inbound links may use (a quarter of the table is kept for links this
    /// node dials). Nodes sharing one host each listen on an address of
    /// their own (`127.N.0.1` on loopback) and connect from it, so they
    /// count as different networks.
    pub max_inbound_per_prefix: usize,
    /// How many `CREATE`s one link may send: each costs the node two
    /// X25519 operations, so a peer streaming them could otherwise take its
    /// CPU. Over the limit, `DESTROY(ResourceLimit)` answers at once. How
    /// many relayed circuits one link or network may hold at a time is set
    /// by the relay table's size ([`RelayQuotas`](crate::circuit::RelayQuotas)).
    pub creates_per_link: RateLimit,
    /// A relayed circuit (or one ending here) that carried no cell either
    /// way for this long is destroyed (`DESTROY(Idle)`). Clients use a
    /// circuit for [`circuit_lifetime`](Self::circuit_lifetime) at most.
    pub relay_idle_timeout: Duration,
    /// A received cell that has waited this long for room on its circuit's
    /// next link (whose reader is slow or has stopped) gets its circuit
    /// destroyed both ways (`DESTROY(ResourceLimit)`), so the link it came
    /// over, and every other circuit on it, moves again. Shorter than the
    /// link idle timeout, so a stalled circuit never costs its peers their
    /// link.
    pub cell_hold_timeout: Duration,
    /// Whether an `EXTEND` may make this relay connect to a loopback,
    /// private, link-local or multicast address
    /// ([`is_public`](crate::identity::is_public)). Off: a stranger's
    /// circuit cannot turn the relay into a scanner of its own host or
    /// network. A test network on one host (all on `127.N.0.1`) turns it on.
    pub extend_to_private_addresses: bool,
    /// The largest message this node accepts, advertised to peers. It is
    /// further clamped to the receive buffer and to what the event queue can
    /// take in one message.
    pub max_message_len: usize,
    /// Unix time, in seconds, at the caller's `Instant::ZERO`. The core
    /// never reads a clock: this is how descriptors get wall-clock issue and
    /// expiry times that other nodes can check.
    pub unix_time_at_zero: u64,
    /// Whether this node relays for others (advertised in its descriptor).
    pub relay: bool,
    /// How long a descriptor is valid; it is re-signed at half-life.
    pub descriptor_lifetime_secs: u64,
    /// How often to send a random sample of known descriptors over a
    /// random link.
    pub gossip_interval: Duration,
    /// How long an onion key is current. After a rotation the previous key
    /// is still answered for one more lifetime, so this must be at least the
    /// descriptor lifetime: every descriptor a client may still hold names
    /// a key the node answers.
    pub onion_key_lifetime: Duration,
    /// Relays in a circuit before its destination (default 3, at most 7).
    pub path_relays: usize,
    /// How long a circuit is used for new messages. After that a fresh
    /// circuit (on a fresh random path) is built, and the old one is closed
    /// once its messages are acknowledged.
    pub circuit_lifetime: Duration,
    /// A circuit not ready after this long is given up (`Timeout`), and so
    /// is an `EXTEND` still waiting for a dial.
    pub circuit_build_timeout: Duration,
    /// A message sent whole but not acknowledged after this long is sent
    /// again over the same circuit (the destination drops duplicates).
    pub message_resend_after: Duration,
    /// A message not acknowledged after this long is given up
    /// (`MessageFailed { reason: Expired }`); unfinished incoming messages
    /// are dropped after the same time.
    pub message_give_up_after: Duration,
    /// A dial the adapter has not answered after this long counts as failed.
    pub dial_timeout: Duration,
    /// While the node has no established link, it dials its bootstrap
    /// addresses again this often.
    pub bootstrap_retry: Duration,
    /// Whether the adapter can dial QUIC addresses. When it can, peers that
    /// advertise QUIC are dialled over QUIC first (relay spec §10).
    pub quic_dials: bool,
    /// Head start QUIC gets before TCP is dialled too, when a peer
    /// advertises both; the first link up wins.
    pub transport_race_delay: Duration,
    /// Whether the circuits this node originates start over anonymous
    /// links only (relay spec §11, link spec §3.1), so that their first hop
    /// never learns this node's long-term id. Off, they start over any link
    /// to the first hop, under this node's identity, and the first hop
    /// learns who the client is: only for a node that cannot hold a second
    /// link to its first hop (a firmware endpoint with one link slot).
    pub anonymous_first_hops: bool,
    /// Deliver every circuit cell to the owner as `Event::CellReceived`
    /// instead of running circuits: for link-layer conformance tests (only
    /// with the `testing` feature). Never encoded: a trace header reads the
    /// same with or without the feature.
    #[cfg(feature = "testing")]
    #[cfg_attr(feature = "serde", serde(skip))]
    pub link_only: bool,
    /// How often the node dials one node it has only heard of (a feeler),
    /// to promote it to the tried table if it is really there; the link
    /// closes again after the handshake. Tried entries are what an
    /// attacker's gossip cannot fake, so this is how the table fills with
    /// them (`docs/node_table.md`).
    pub feeler_interval: Duration,
    /// How many outbound links a node with bootstrap addresses keeps to
    /// relays of its own choosing (at most an eighth of its link table, at
    /// least one), so that it can hand its bootstrap links off (relay spec
    /// §10). 0 keeps none and keeps the bootstrap links instead: for a
    /// node that must hold exactly the links it was given.
    pub outbound_links: usize,
    /// Whether others can dial this node at its addresses: taken as given,
    /// found out by asking peers to dial it back, or known not to be
    /// (relay spec §10, "Reachability"). A node that cannot be dialled is
    /// reached through [`introducers`](Self::introducers) relays instead.
    #[cfg_attr(feature = "serde", serde(default))]
    pub reachability: Reachability,
    /// How many relays a node that cannot be dialled is reached through
    /// (relay spec §2, "Introducers"; §10), 1 to 3: it picks that many of
    /// the relays its outbound links go to (in distinct networks), lists
    /// them in its descriptor, and replaces one whose link drops. Senders
    /// then reach it over circuits whose last relay is one of them. Needs
    /// the `introducers` feature.
    #[cfg_attr(feature = "serde", serde(default = "default_introducers"))]
    pub introducers: usize,
    /// Whether the node answers a first handshake message marked with the
    /// all-zero key, that is, a dial from someone who knew only its address
    /// (a bootstrap address given without a node id). `false` makes the
    /// node *probe-resistant*: only a dialler that knows its node id (from
    /// its descriptor, or an `id@address` bootstrap entry) gets an answer,
    /// and a prober who knows just the address gets silence (link spec
    /// §2.2), as an obfs4 bridge answers only clients given its key.
    #[cfg_attr(feature = "serde", serde(default = "default_answer_unkeyed"))]
    pub answer_unkeyed_dials: bool,
    /// Whether this node rounds the cell count of each message it sends
    /// (messages and replies alike) up to a size bucket with `PADDING`
    /// relay messages, so that a link observer or a relay counting cells
    /// learns a bucket rather than a size (relay spec §8.1). Costs about a
    /// quarter more cells on mixed sizes; only with the `message-padding`
    /// feature.
    #[cfg(feature = "message-padding")]
    #[cfg_attr(feature = "serde", serde(default))]
    pub message_padding: MessagePadding,
    /// Randomized path length (relay spec §7): each circuit this node
    /// builds to a destination has `path_relays` plus 0 to this many more
    /// relays, uniformly, up to 7 in all, so that its circuits do not all
    /// have the one length its configuration sets. Rendezvous and
    /// introduction circuits keep theirs. Default 0. Only with the
    /// `random-path-length` feature.
    #[cfg(feature = "random-path-length")]
    #[cfg_attr(feature = "serde", serde(default))]
    pub extra_path_relays: usize,
    /// Cover traffic this node sends over its own circuits, under a budget
    /// in bytes a second (relay spec §8.2). Off by default. Only with the
    /// `cover-traffic` feature.
    #[cfg(feature = "cover-traffic")]
    #[cfg_attr(feature = "serde", serde(default))]
    pub cover: super::CoverTraffic,
    /// Constant-rate shaping of the circuit ends this node sends on
    /// (relay spec §8.3): one cell per interval while a burst lasts,
    /// bursts padded to a multiple of a bucket. Off by default. Only with
    /// the `shaping` feature.
    #[cfg(feature = "shaping")]
    #[cfg_attr(feature = "serde", serde(default))]
    pub shaping: crate::circuit::Shaping,
    /// Mixing delays (relay spec §9.1, Loopix's per-hop delays): a relay
    /// holds each `RELAY` cell it passes on, either way, for a time drawn
    /// from the exponential distribution with this mean, keeping each
    /// circuit's cells in order, so that a cell's leaving does not follow
    /// its arrival at once. Zero (the default) holds nothing. Only with the
    /// `mixing-delays` feature.
    #[cfg(feature = "mixing-delays")]
    #[cfg_attr(feature = "serde", serde(default))]
    pub mixing_delay_mean: Duration,
    /// Layer-2 guards, vanguards-lite style (relay spec §11): with `n > 0`
    /// the hop after the guard of every path this node draws is one of `n`
    /// relays kept 1 to 12 days each (the longer of two uniform draws),
    /// so that a relay cannot quickly become a circuit's second hop and
    /// from there learn the client's guard. 4 is vanguards-lite; at most
    /// [`MAX_SECOND_LAYER_GUARDS`](super::MAX_SECOND_LAYER_GUARDS)
    /// ([`validate`](Self::validate)). Default 0: off. Only with the
    /// `vanguards` feature.
    #[cfg(feature = "vanguards")]
    #[cfg_attr(feature = "serde", serde(default))]
    pub second_layer_guards: usize,
}

/// Why [`NodeConfig::validate`] refused a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// [`NodeConfig::second_layer_guards`] is over
    /// [`MAX_SECOND_LAYER_GUARDS`](super::MAX_SECOND_LAYER_GUARDS).
    #[cfg(feature = "vanguards")]
    TooManySecondLayerGuards(usize),
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, _f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            #[cfg(feature = "vanguards")]
            ConfigError::TooManySecondLayerGuards(n) => write!(
                _f,
                "second_layer_guards = {n}: use 0 (off) to {} (4 is vanguards-lite)",
                super::MAX_SECOND_LAYER_GUARDS
            ),
        }
    }
}

impl core::error::Error for ConfigError {}

/// How a node pads the messages it sends (relay spec §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MessagePadding {
    /// Each message takes as many cells as its fragments.
    #[default]
    None,
    /// Each message of `n` fragments takes the smallest power of two of
    /// cells at least `n`: 1, 2, 4, 8, … 256.
    PowersOfTwo,
}

impl MessagePadding {
    /// How many `PADDING` relay messages follow the last fragment of a
    /// message of `fragments` fragments.
    pub fn padding_cells(self, fragments: usize) -> usize {
        match self {
            MessagePadding::None => 0,
            MessagePadding::PowersOfTwo => fragments
                .max(1)
                .checked_next_power_of_two()
                .unwrap_or(fragments)
                .saturating_sub(fragments.max(1)),
        }
    }
}

/// Whether a node can be dialled at the addresses it is given
/// ([`NodeConfig::reachability`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Reachability {
    /// It can: every address given is advertised as it is (a relay whose
    /// operator opened its port, a node in a test network).
    #[default]
    Public,
    /// Ask linked peers, in distinct networks, to dial each address back;
    /// advertise those that were reached, and use introducers if none was
    /// (the `introducers` feature; without it, as `Public`).
    Detect,
    /// It cannot (behind NAT or a firewall, on purpose or not): advertise
    /// no address and be reached through introducers only.
    Private,
}

#[cfg(feature = "serde")]
fn default_introducers() -> usize {
    2
}

#[cfg(feature = "serde")]
fn default_answer_unkeyed() -> bool {
    true
}

impl NodeConfig {
    /// Whether this node may dial `address` on a stranger's word (an
    /// `EXTEND`'s target, a feeler to a gossiped node): public addresses
    /// only, unless [`extend_to_private_addresses`](Self::extend_to_private_addresses).
    pub fn may_dial_for_strangers(&self, address: &Address) -> bool {
        self.extend_to_private_addresses || crate::identity::is_public(address.socket.ip())
    }
}

impl NodeConfig {
    /// Checks the settings the node would otherwise clamp. The node never
    /// calls it (it clamps); an embedder that reads its settings from a
    /// file calls it to tell its operator.
    pub fn validate(&self) -> Result<(), ConfigError> {
        #[cfg(feature = "vanguards")]
        if self.second_layer_guards > super::MAX_SECOND_LAYER_GUARDS {
            return Err(ConfigError::TooManySecondLayerGuards(
                self.second_layer_guards,
            ));
        }
        Ok(())
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            link: LinkConfig::default(),
            max_half_open: 16,
            max_half_open_per_prefix: 4,
            max_inbound_per_prefix: 8,
            creates_per_link: RateLimit {
                burst: 64,
                per_second: 64,
            },
            relay_idle_timeout: Duration::from_secs(15 * 60),
            cell_hold_timeout: Duration::from_secs(10),
            extend_to_private_addresses: false,
            max_message_len: MAX_MESSAGE_LEN,
            unix_time_at_zero: 0,
            relay: true,
            descriptor_lifetime_secs: 3 * 3600,
            gossip_interval: Duration::from_secs(30),
            onion_key_lifetime: Duration::from_secs(24 * 3600),
            path_relays: crate::discovery::DEFAULT_PATH_RELAYS,
            circuit_lifetime: Duration::from_secs(10 * 60),
            circuit_build_timeout: Duration::from_secs(10),
            message_resend_after: Duration::from_secs(5),
            message_give_up_after: Duration::from_secs(120),
            dial_timeout: Duration::from_secs(10),
            bootstrap_retry: Duration::from_secs(30),
            quic_dials: false,
            transport_race_delay: Duration::from_millis(250),
            anonymous_first_hops: true,
            #[cfg(feature = "testing")]
            link_only: false,
            feeler_interval: Duration::from_secs(120),
            outbound_links: super::OUTBOUND_LINKS,
            reachability: Reachability::Public,
            introducers: 2,
            answer_unkeyed_dials: true,
            #[cfg(feature = "message-padding")]
            message_padding: MessagePadding::None,
            #[cfg(feature = "random-path-length")]
            extra_path_relays: 0,
            #[cfg(feature = "cover-traffic")]
            cover: super::CoverTraffic::OFF,
            #[cfg(feature = "shaping")]
            shaping: crate::circuit::Shaping::OFF,
            #[cfg(feature = "mixing-delays")]
            mixing_delay_mean: Duration::ZERO,
            #[cfg(feature = "vanguards")]
            second_layer_guards: 0,
        }
    }
}
