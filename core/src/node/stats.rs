//! Counters of what a node did, for status output and metrics.

use crate::link::LinkStats;

/// Running totals since the node was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NodeStats {
    /// Circuits this node built that became ready.
    pub circuits_built: u64,
    /// Probe rounds sent over own circuits that went quiet.
    pub probe_rounds: u64,
    /// Own ready circuits torn down because a hop stopped answering.
    pub circuits_abandoned: u64,
    /// Messages this node queued to send.
    pub messages_sent: u64,
    /// Messages acknowledged by their destination.
    pub messages_acknowledged: u64,
    /// Messages received whole.
    pub messages_received: u64,
    /// `DATA` cells this node originated.
    pub data_cells_sent: u64,
    /// Cells dropped (a relay cell dropped breaks its circuit, which is
    /// then rebuilt), by reason, so an operator can tell congestion from
    /// stalls; [`CellDrops::total`] for all of them.
    pub cells_dropped: CellDrops,
    /// Informational events dropped because the event queue was full
    /// (link events are never dropped; they wait for room).
    pub events_dropped: u64,
    /// Links that have closed (their slots freed).
    pub links_closed: u64,
    /// Bytes of random padding in the handshake messages and `CELLS` frames
    /// this node wrote (link spec §2.4, §4.2), part of the links' bytes
    /// sent: what hiding the messages' lengths and cell counts costs.
    /// Counted here, not per link, so a link slot stays the size it was;
    /// only with the `padding-stats` feature.
    #[cfg(feature = "padding-stats")]
    pub padding_bytes_sent: u64,
    /// Inbound connections refused: the link table was full, or their
    /// network held its share; by reason, [`InboundRefusals::total`] for
    /// all. Counted, not logged one by one: whoever floods the node with
    /// connections would flood its log too.
    pub inbound_refused: InboundRefusals,
    /// The traffic counters of every closed link, summed at the moment its
    /// slot was freed, so nothing a link carried is lost with it: add the
    /// open links' own counters for the node's traffic since it was built.
    pub closed_link_traffic: LinkStats,
    /// Idle-padding cells received over links (transport spec §4.3); the
    /// ones sent are in each link's [`LinkStats`].
    #[cfg(feature = "link-padding")]
    pub padding_cells_received: u64,
    /// `PADDING` relay messages this node sent to round its messages up
    /// to their size buckets (relay spec §8.1).
    #[cfg(feature = "message-padding")]
    pub message_padding_cells_sent: u64,
    /// Loop cover cells sent at Poisson times (relay spec §8.2).
    #[cfg(feature = "cover-traffic")]
    pub loop_cover_cells_sent: u64,
    /// Loop cover and FRONT cells whose answer came back.
    #[cfg(feature = "cover-traffic")]
    pub loop_cover_cells_returned: u64,
    /// Drop cover cells sent.
    #[cfg(feature = "cover-traffic")]
    pub drop_cover_cells_sent: u64,
    /// FRONT padding cells sent at the start of bursts (loop cells).
    #[cfg(feature = "cover-traffic")]
    pub front_cells_sent: u64,
    /// Bursts FRONT padded: sends after a quiet spell of at least
    /// [`FRONT_QUIET`](super::FRONT_QUIET).
    #[cfg(feature = "cover-traffic")]
    pub front_bursts: u64,
    /// Bytes of budget the cover cells sent took ([`COVER_CELL_CHARGE`]
    /// per link message a cell can take): at most the budget a second,
    /// plus the saved burst.
    ///
    /// [`COVER_CELL_CHARGE`]: super::COVER_CELL_CHARGE
    #[cfg(feature = "cover-traffic")]
    pub cover_bytes_charged: u64,
    /// `PADDING` relay messages sent to fill shaping slots (relay spec
    /// §8.3).
    #[cfg(feature = "shaping")]
    pub shaping_padding_cells_sent: u64,
    /// Cover cells not sent because the budget was spent.
    #[cfg(feature = "cover-traffic")]
    pub cover_cells_over_budget: u64,
    /// Cover cells not sent because no own circuit was ready, or its first
    /// link had no room.
    #[cfg(feature = "cover-traffic")]
    pub cover_cells_without_circuit: u64,
    /// Cells this relay held for a mixing delay before passing them on
    /// (`NodeConfig::mixing_delay_mean`); only with the `mixing-delays`
    /// feature.
    #[cfg(feature = "mixing-delays")]
    pub cells_mixed: u64,
    /// Cells passed on at once, without their mixing delay, because the
    /// held-cell queue (or their link's share of it) was full.
    #[cfg(feature = "mixing-delays")]
    pub mixing_queue_full: u64,
    /// Held cells dropped because the link they came over closed (which
    /// ends their circuits too).
    #[cfg(feature = "mixing-delays")]
    pub mixed_cells_orphaned: u64,
    /// `DESCRIPTOR` cells received over links, before any check.
    pub descriptors_received: u64,
    /// Descriptor signatures verified (~65 µs each). Descriptors the node
    /// table would refuse, the stored bytes again, and malformed, expired
    /// or stale ones are refused before this point and not counted.
    pub descriptors_verified: u64,
    /// `DESCRIPTOR` cells dropped unread because their link had used its
    /// quota (each one a strike against that link).
    pub descriptors_over_quota: u64,
    /// `LOOKUP` relay messages this node sent, over its own circuits, for
    /// its own lookups of destinations whose descriptor proved stale
    /// (relay spec §2.3). The lookup counters are part of the
    /// `introducers` feature, as lookups are (the firmware image's RAM has
    /// no room for counters of nothing).
    #[cfg(feature = "introducers")]
    pub lookups_sent: u64,
    /// Lookups this node answered with a descriptor it held.
    #[cfg(feature = "introducers")]
    pub lookups_answered: u64,
    /// Peers' lookups this node passed on to its own peers.
    #[cfg(feature = "introducers")]
    pub lookups_passed_on: u64,
    /// `LOOKUP` relay messages that reached this node over a circuit it
    /// relays (it does not know from whom), answered or passed on.
    #[cfg(feature = "introducers")]
    pub lookups_over_circuits: u64,
}

/// Why cells were dropped ([`NodeStats::cells_dropped`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CellDrops {
    /// The link's send queue had no room for it.
    pub link_queue_full: u64,
    /// It waited behind a circuit that stalled its link, and went with
    /// the circuit when that was destroyed.
    pub circuit_stalled: u64,
    /// It carried a delivery for this node and the delivery queue was
    /// full.
    pub delivery_queue_full: u64,
}

/// Why inbound connections were refused ([`NodeStats::inbound_refused`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InboundRefusals {
    /// Its network (address prefix) already held its share of links or
    /// of handshakes.
    pub network_full: u64,
    /// The link table had no slot to give, even after evictions.
    pub table_full: u64,
    /// The first handshake message was one accepted before: a replay
    /// (link spec §2.2). Refused in silence, as an unmarked one is.
    pub replayed: u64,
}

impl CellDrops {
    /// Cells dropped for any reason.
    pub fn total(&self) -> u64 {
        self.link_queue_full
            .saturating_add(self.circuit_stalled)
            .saturating_add(self.delivery_queue_full)
    }
}

impl InboundRefusals {
    /// Inbound connections refused for any reason.
    pub fn total(&self) -> u64 {
        self.network_full
            .saturating_add(self.table_full)
            .saturating_add(self.replayed)
    }
}
