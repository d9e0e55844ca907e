//! Descriptors in: a per-link quota of `DESCRIPTOR` cells, the checks that
//! cost nothing run before the signature (~65 µs), and strikes against a
//! link that sends what an honest node never does.
//!
//! In order, a descriptor cell
//! 1. takes a token from its link's bucket ([`DESCRIPTOR_BURST`] at once,
//!    [`DESCRIPTORS_PER_INTERVAL`] per `gossip_interval`), or is dropped
//!    unread with a strike;
//! 2. is parsed, and its fields checked ([`precheck_descriptor`]): version,
//!    flags, lifetime, not issued in the future, not expired;
//! 3. meets the node table's rules for its node ([`NodeTable::precheck`],
//!    [`NodeTable::admits`]): not older than the stored one, the stored bytes
//!    again (only `last_seen` moves), or a newcomer whose bucket has room;
//! 4. only then has its signature verified, and is stored.
//!
//! Refusals an honest relay can cause (expired in flight, an older copy,
//! a full bucket) cost nothing more. Refusals it cannot cause (over quota,
//! malformed, forged, a different descriptor with a known issue time) are
//! strikes; [`MAX_STRIKES`] close the link (`ProtocolViolation`).
//!
//! [`NodeTable::precheck`]: crate::discovery::NodeTable::precheck
//! [`NodeTable::admits`]: crate::discovery::NodeTable::admits

use heapless::deque::DequeView;

use crate::capacity::VecStore;
#[cfg(feature = "link-padding")]
use crate::cell::parse_padding_negotiate;
use crate::cell::{parse_descriptor_body, CellCommand, CellRepr, CircuitId};
use crate::discovery::{InsertError, InsertOutcome, Known, NetworkPrefix, PeerEntry, Source};
use crate::identity::{
    precheck_descriptor, verify_descriptor, DescriptorError, DescriptorPacket, NodeId,
};
use crate::link::Cell;
#[cfg(feature = "link-padding")]
use crate::link::PaddingRequest;
use crate::time::{Duration, Instant};

use super::discovery::{unix_now, Discovery, GOSSIP_FANOUT, GOSSIP_SAMPLE};
use super::{DescriptorRefusal, Event, LinkId, NodeConfig, NodeStats};

/// Descriptor cells a link may send at once: an honest peer sends at most
/// 1 + [`GOSSIP_SAMPLE`] when the link comes up and
/// [`GOSSIP_FANOUT`] × [`GOSSIP_SAMPLE`] in one gossip round.
pub const DESCRIPTOR_BURST: usize = 64;
/// Descriptor cells a link earns per `gossip_interval`: twice the most an
/// honest peer sends in one gossip round.
pub const DESCRIPTORS_PER_INTERVAL: usize = 2 * GOSSIP_FANOUT * GOSSIP_SAMPLE;
/// Strikes after which a link is closed as a protocol violation.
pub const MAX_STRIKES: u8 = 8;

/// A link's descriptor quota (a token bucket kept as its theoretical
/// arrival time) and strikes. Lives in the link's slot, so it starts fresh
/// with every link.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GossipQuota {
    /// When the bucket would be full again if nothing more arrived.
    full_at: Instant,
    /// Refused descriptors an honest peer would not have sent.
    strikes: u8,
}

impl GossipQuota {
    pub(crate) const fn new() -> Self {
        GossipQuota {
            full_at: Instant::ZERO,
            strikes: 0,
        }
    }

    /// Takes one token at `now`, if there is one.
    fn take(&mut self, now: Instant, interval: Duration) -> bool {
        let per_interval = u64::try_from(DESCRIPTORS_PER_INTERVAL).unwrap_or(1);
        let burst = u64::try_from(DESCRIPTOR_BURST).unwrap_or(1);
        let cost = interval
            .as_micros()
            .checked_div(per_interval)
            .unwrap_or(0)
            .max(1);
        let depth = cost.saturating_mul(burst);
        let full_at = self
            .full_at
            .max(now)
            .saturating_add(Duration::from_micros(cost));
        if full_at.saturating_since(now).as_micros() > depth {
            return false;
        }
        self.full_at = full_at;
        true
    }

    /// Counts a strike; whether the link has now used up its strikes.
    fn strike(&mut self) -> bool {
        self.strikes = self.strikes.saturating_add(1);
        self.strikes >= MAX_STRIKES
    }
}

/// What the receiving node knows of the link a cell came over.
pub(crate) struct LinkCtx<'a> {
    pub(crate) link: LinkId,
    /// The authenticated peer.
    pub(crate) peer: Option<NodeId>,
    /// Whether this node dialled the link.
    pub(crate) dialled: bool,
    /// The network of the peer's address, as the transport saw it.
    pub(crate) network: Option<NetworkPrefix>,
    pub(crate) quota: &'a mut GossipQuota,
    /// Set when the peer sends its own descriptor: whether it lists this
    /// node as an introducer.
    pub(crate) lists_us: &'a mut Option<bool>,
}

/// How a descriptor reached this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// From `Source` (gossip over a link, or the owner).
    From(Source),
    /// The node's own descriptor, over a link this node dialled to it in
    /// this network: the node was reached.
    Reached(Option<NetworkPrefix>),
    /// The node's own descriptor, over a link it dialled from this
    /// network: fresher than anything heard of in its bucket.
    Peer(Source),
}

/// What a link-level cell turned out to be.
pub(crate) enum LinkCell {
    /// Not link-level: it belongs to a circuit.
    Circuit,
    /// Handled here.
    Handled,
    /// A `DIAL_BACK` cell, for the node (`reachability.rs`).
    DialBack,
    /// A `DESCRIPTOR_REQUEST` within the link's quota, for the node
    /// (`lookup.rs`).
    Lookup,
    /// A descriptor of this node arrived and was stored (`stored`), or
    /// refused for want of room (unverified then): lookups this node
    /// passed on may be waiting for it (`lookup.rs`).
    Described { node: NodeId, stored: bool },
    /// A `PADDING_NEGOTIATE`: the peer asks for less idle padding, or none
    /// (relay spec §3), for the link's session.
    #[cfg(feature = "link-padding")]
    PaddingRequest(PaddingRequest),
    /// Not a valid cell at all, or one strike too many; the link must close.
    Violation,
}

/// Whether a refusal is one an honest peer never causes.
fn is_strike(refusal: &DescriptorRefusal) -> bool {
    match refusal {
        DescriptorRefusal::Malformed => true,
        DescriptorRefusal::Invalid(e) => {
            !matches!(e, DescriptorError::Expired | DescriptorError::NotYetValid)
        }
        DescriptorRefusal::Table(e) => *e == InsertError::NotNewer,
    }
}

impl<S: VecStore<PeerEntry>> Discovery<S> {
    /// Checks and stores a descriptor (the steps in the module docs, from
    /// 2); returns what the table did, the node it describes and whether
    /// that node relays.
    pub(crate) fn learn(
        &mut self,
        config: &NodeConfig,
        now: Instant,
        bytes: &[u8],
        arrival: Arrival,
        stats: &mut NodeStats,
    ) -> Result<(InsertOutcome, NodeId, bool), DescriptorRefusal> {
        let unix = unix_now(config, now);
        let packet = precheck_descriptor(bytes, unix).map_err(DescriptorRefusal::Invalid)?;
        let id = NodeId::from_identity_key(&packet.identity_key());
        let table = self.table_mut();
        let known = table
            .precheck(&id, packet.issued_at(), bytes)
            .map_err(DescriptorRefusal::Table)?;
        match (known, arrival) {
            (Known::Identical, _) => {
                table.refresh(&id, now);
                return Ok((InsertOutcome::Refreshed, id, false));
            }
            (Known::Unknown, Arrival::From(source) | Arrival::Peer(source)) => {
                let network = packet
                    .addresses()
                    .next()
                    .map(|a| NetworkPrefix::of(a.socket.ip()));
                let admits = if matches!(arrival, Arrival::Peer(_)) {
                    table.admits_from_peer(&id, source, network, unix)
                } else {
                    table.admits(&id, source, network, unix)
                };
                admits.map_err(DescriptorRefusal::Table)?;
            }
            _ => {}
        }
        stats.descriptors_verified = stats.descriptors_verified.saturating_add(1);
        let verified = verify_descriptor(bytes, unix).map_err(DescriptorRefusal::Invalid)?;
        let relay = verified.repr().relay;
        let outcome = match arrival {
            Arrival::From(source) => table.insert(verified, source, now, unix),
            Arrival::Reached(network) => table.insert_reached(verified, network, now, unix),
            Arrival::Peer(source) => table.insert_from_peer(verified, source, now, unix),
        };
        Ok((outcome.map_err(DescriptorRefusal::Table)?, id, relay))
    }

    /// Handles a cell received over `link` if it is link-level, reporting
    /// what happened in `events` (one event at most per cell).
    pub(crate) fn on_cell(
        &mut self,
        config: &NodeConfig,
        now: Instant,
        link: LinkCtx<'_>,
        cell: &Cell,
        events: &mut DequeView<Event>,
        stats: &mut NodeStats,
    ) -> LinkCell {
        // Circuit cells are the common case: check their header in place
        // (the same rules as `CellRepr::parse`) without copying the body.
        let (id, rest) = cell.split_first_chunk::<4>().unwrap_or((&[0; 4], &[]));
        if CircuitId(u32::from_be_bytes(*id)) != CircuitId::LINK {
            return match rest.first().copied().and_then(CellCommand::from_code) {
                Some(command) if !command.is_link_level() => LinkCell::Circuit,
                _ => LinkCell::Violation,
            };
        }
        let Ok(repr) = CellRepr::parse(cell) else {
            return LinkCell::Violation;
        };
        match repr.command {
            CellCommand::Padding => {
                #[cfg(feature = "link-padding")]
                {
                    stats.padding_cells_received = stats.padding_cells_received.saturating_add(1);
                }
                LinkCell::Handled
            }
            // Malformed: an honest peer never sends one. A build without
            // idle padding has none to lower, and does not read it.
            #[cfg(feature = "link-padding")]
            CellCommand::PaddingNegotiate => parse_padding_negotiate(&repr.body)
                .map_or(LinkCell::Violation, LinkCell::PaddingRequest),
            #[cfg(not(feature = "link-padding"))]
            CellCommand::PaddingNegotiate => LinkCell::Handled,
            CellCommand::DialBack => LinkCell::DialBack,
            CellCommand::DescriptorRequest => {
                // A request may cost an answer: it takes a token as a
                // descriptor does, and a flood of them strikes alike.
                if link.quota.take(now, config.gossip_interval) {
                    LinkCell::Lookup
                } else if link.quota.strike() {
                    LinkCell::Violation
                } else {
                    LinkCell::Handled
                }
            }
            CellCommand::Descriptor => {
                stats.descriptors_received = stats.descriptors_received.saturating_add(1);
                if !link.quota.take(now, config.gossip_interval) {
                    // Unread: a flood costs one comparison per cell.
                    stats.descriptors_over_quota = stats.descriptors_over_quota.saturating_add(1);
                    return if link.quota.strike() {
                        LinkCell::Violation
                    } else {
                        LinkCell::Handled
                    };
                }
                let result = match parse_descriptor_body(&repr.body) {
                    Ok(bytes) => {
                        let own = link
                            .peer
                            .is_some_and(|p| p == NodeId::from_identity_key(&identity_key(&bytes)));
                        if own && super::introducers::INTRODUCERS {
                            // The link proved the peer's identity: what it
                            // says of itself needs no signature to count.
                            let me = self.table().own_id();
                            *link.lists_us = Some(
                                DescriptorPacket::new_checked(bytes.as_slice())
                                    .is_ok_and(|p| p.introducers().any(|i| i.node_id == me)),
                            );
                        }
                        let arrival = match link.peer {
                            Some(peer)
                                if link.dialled
                                    && peer == NodeId::from_identity_key(&identity_key(&bytes)) =>
                            {
                                Arrival::Reached(link.network)
                            }
                            Some(peer)
                                if peer == NodeId::from_identity_key(&identity_key(&bytes)) =>
                            {
                                Arrival::Peer(Source::Link(link.network))
                            }
                            _ => Arrival::From(Source::Link(link.network)),
                        };
                        self.learn(config, now, &bytes, arrival, stats)
                    }
                    Err(_) => Err(DescriptorRefusal::Malformed),
                };
                let described = match &result {
                    Ok((
                        InsertOutcome::Added
                        | InsertOutcome::Replaced { .. }
                        | InsertOutcome::Updated,
                        node,
                        _,
                    )) => Some(LinkCell::Described {
                        node: *node,
                        stored: true,
                    }),
                    Err(DescriptorRefusal::Table(
                        InsertError::BucketFull | InsertError::TableFull,
                    )) if super::introducers::INTRODUCERS => parse_descriptor_body(&repr.body)
                        .ok()
                        .map(|bytes| LinkCell::Described {
                            node: NodeId::from_identity_key(&identity_key(&bytes)),
                            stored: false,
                        }),
                    _ => None,
                };
                let event = match result {
                    Ok((InsertOutcome::Added | InsertOutcome::Replaced { .. }, peer, relay)) => {
                        // Someone new to dial, if outbound links are short.
                        self.feelers.wake_outbound(now);
                        Some(Event::PeerLearned {
                            peer,
                            relay,
                            via: link.link,
                        })
                    }
                    Ok((InsertOutcome::Updated | InsertOutcome::Refreshed, ..)) => None,
                    // Our own descriptor coming back through gossip is harmless.
                    Err(DescriptorRefusal::Table(InsertError::OwnDescriptor)) => None,
                    Err(reason) => {
                        if is_strike(&reason) && link.quota.strike() {
                            return LinkCell::Violation;
                        }
                        Some(Event::DescriptorRefused {
                            link: link.link,
                            reason,
                        })
                    }
                };
                if let Some(event) = event {
                    // Room is reserved: the session delivers at most one cell per free slot.
                    let _ = events.push_back(event);
                }
                described.unwrap_or(LinkCell::Handled)
            }
            _ => LinkCell::Circuit,
        }
    }
}

/// The identity key field of a descriptor's bytes (zeros if too short;
/// such a descriptor is refused as truncated anyway).
fn identity_key(bytes: &[u8]) -> [u8; 32] {
    bytes
        .get(2..34)
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .unwrap_or([0; 32])
}
