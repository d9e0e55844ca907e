//! The node's Prometheus metrics: every family `veil node --metrics`
//! serves, registered once, kept up to date by the node thread.
//!
//! - this file: [`NodeMetrics`], the families and their help texts;
//! - `labels`: the label sets and the names their values take;
//! - `update`: how the node thread fills them, from its events (build
//!   times, delivery times, closes, suspicions) and, at each scrape, from
//!   the runtime's counters and tables.
//!
//! Nothing here names a peer: no node id, no IP address, no port. Links,
//! circuits and relays are counted by kind (transport, state, role,
//! reason), never listed, so a scraper learns how the node is doing and not
//! whom it talks to. Names follow Prometheus' conventions: a `veil_`
//! prefix, base units (seconds, bytes) in the name, `_total` on counters
//! (added by `prometheus-client`). Help texts end without a full stop:
//! the encoder adds one.

mod labels;
mod update;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

use labels::{
    CircuitLabels, DirectionLabels, LinkLabels, OutcomeLabels, ReasonLabels, RoleLabels,
    StatLabels, StateLabels,
};

/// A gauge of a fractional value (decayed counts, seconds).
type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric family of a node. Clones share the same values: the node
/// thread updates one, the metrics server encodes the registry that holds
/// the others.
#[derive(Debug, Clone, Default)]
pub struct NodeMetrics {
    uptime: Gauge,
    link_slots: Gauge,
    links: Family<LinkLabels, Gauge>,
    half_open: Family<RoleLabels, Gauge>,
    pending_dials: Gauge,
    sent_bytes: Counter,
    received_bytes: Counter,
    padding_sent_bytes: Counter,
    padding_cells_sent: Counter,
    padding_cells_received: Counter,
    cover_loop_cells: Counter,
    cover_drop_cells: Counter,
    cover_front_cells: Counter,
    cover_bytes_charged: Counter,
    cover_budget: Gauge,
    shaping_padding_cells: Counter,
    cells_sent: Counter,
    cells_received: Counter,
    link_rtt: Family<StatLabels, FloatGauge>,
    links_closed: Family<ReasonLabels, Counter>,
    inbound_refused: Family<ReasonLabels, Counter>,
    cells_dropped: Family<ReasonLabels, Counter>,
    events_dropped: Counter,
    circuits: Family<CircuitLabels, Gauge>,
    rendezvous: Family<RoleLabels, Gauge>,
    circuits_built: Counter,
    circuits_abandoned: Counter,
    circuits_closed: Family<ReasonLabels, Counter>,
    probe_rounds: Counter,
    circuit_rtt: Family<StatLabels, FloatGauge>,
    build_timeout: FloatGauge,
    build_duration: Durations,
    messages_pending: Family<DirectionLabels, Gauge>,
    messages_sent: Counter,
    messages_acknowledged: Counter,
    messages_received: Counter,
    messages_failed: Family<ReasonLabels, Counter>,
    delivery_duration: Durations,
    known_nodes: Gauge,
    known_relays: Gauge,
    descriptors_received: Counter,
    descriptors_verified: Counter,
    descriptors_over_quota: Counter,
    lookups_sent: Counter,
    lookups_answered: Counter,
    lookups_passed_on: Counter,
    lookups_over_circuits: Counter,
    relays_tracked: Gauge,
    relays_backed_off: Gauge,
    relay_circuits: Family<OutcomeLabels, FloatGauge>,
    relay_suspicions: Counter,
    destinations_silent: Counter,
    guard_warnings: Counter,
    reachability: Family<StateLabels, Gauge>,
    service_intro_points: Gauge,
}

/// A histogram of durations in seconds. Its buckets run from 10 ms,
/// doubling, to 41 s: from a circuit on a LAN to a build at the default
/// timeout's edge.
#[derive(Debug, Clone)]
struct Durations(Histogram);

impl Default for Durations {
    fn default() -> Self {
        Durations(Histogram::new(exponential_buckets(0.01, 2.0, 13)))
    }
}

impl NodeMetrics {
    /// The families, and a registry (prefix `veil_`) that encodes them.
    pub fn new() -> (NodeMetrics, Registry) {
        let m = NodeMetrics::default();
        m.zero_families();
        let mut r = Registry::with_prefix("veil");
        m.register_links(&mut r);
        m.register_circuits(&mut r);
        m.register_messages(&mut r);
        m.register_network(&mut r);
        r.register(
            "build",
            "The veil version this node runs",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        r.register_with_unit(
            "uptime",
            "Time since the node started",
            Unit::Seconds,
            m.uptime.clone(),
        );
        (m, r)
    }

    fn register_links(&self, r: &mut Registry) {
        r.register(
            "link_slots",
            "Link slots: the most connections the node holds at once",
            self.link_slots.clone(),
        );
        r.register(
            "links",
            "Open links, by transport (tcp, quic, unknown), state (handshaking, established, \
             closing) and role (initiator: dialled, responder: accepted)",
            self.links.clone(),
        );
        r.register(
            "half_open_connections",
            "Links still in their handshake, by role; inbound ones are capped by \
             max_half_open",
            self.half_open.clone(),
        );
        r.register(
            "pending_dials",
            "Outgoing connects in progress",
            self.pending_dials.clone(),
        );
        r.register_with_unit(
            "link_sent",
            "Bytes written to links since start, closed links included",
            Unit::Bytes,
            self.sent_bytes.clone(),
        );
        r.register_with_unit(
            "link_received",
            "Bytes read from links since start, closed links included",
            Unit::Bytes,
            self.received_bytes.clone(),
        );
        r.register_with_unit(
            "link_padding_sent",
            "Of veil_link_sent_bytes_total, the random padding of this node's link \
             handshake messages and after the cells of each link frame. Its other padding \
             is the idle-link padding cells (veil_link_padding_cells_sent_total) and the \
             PADDING cells a service sends to keep its introduction circuits open, counted \
             in veil_link_cells_sent_total",
            Unit::Bytes,
            self.padding_sent_bytes.clone(),
        );
        r.register(
            "link_padding_cells_sent",
            "Idle-link padding cells sent (transport spec 4.5), closed links included; \
             not counted in veil_link_cells_sent_total",
            self.padding_cells_sent.clone(),
        );
        r.register(
            "link_padding_cells_received",
            "Idle-link padding cells received, closed links included",
            self.padding_cells_received.clone(),
        );
        r.register(
            "cover_loop_cells_sent",
            "Loop cover cells sent at Poisson times (relay spec 8.2)",
            self.cover_loop_cells.clone(),
        );
        r.register(
            "cover_drop_cells_sent",
            "Drop cover cells sent (relay spec 8.2)",
            self.cover_drop_cells.clone(),
        );
        r.register(
            "cover_front_cells_sent",
            "FRONT padding cells sent at the start of bursts (relay spec 8.2)",
            self.cover_front_cells.clone(),
        );
        r.register_with_unit(
            "cover_charged",
            "Budget the cover cells took, each at the most it can take on the wire",
            Unit::Bytes,
            self.cover_bytes_charged.clone(),
        );
        r.register(
            "cover_budget_bytes_per_second",
            "The cover traffic budget; 0 sends no cover",
            self.cover_budget.clone(),
        );
        r.register(
            "shaping_padding_cells_sent",
            "Padding cells that filled constant-rate shaping slots (relay spec 8.3)",
            self.shaping_padding_cells.clone(),
        );
        r.register(
            "link_cells_sent",
            "Cells sent over links since start, closed links included",
            self.cells_sent.clone(),
        );
        r.register(
            "link_cells_received",
            "Cells received over links since start, closed links included",
            self.cells_received.clone(),
        );
        r.register_with_unit(
            "link_rtt",
            "Smoothed round-trip times of the established links that measured one: the \
             shortest (stat min), the median and the longest (max); absent without such a link",
            Unit::Seconds,
            self.link_rtt.clone(),
        );
        r.register(
            "links_closed",
            "Links that closed, by reason (handshake_timeout, peer_silent, evicted, ...)",
            self.links_closed.clone(),
        );
        r.register(
            "inbound_connections_refused",
            "Inbound connections refused, by reason: network_full (their address prefix \
             held its share), table_full (no slot to give), both before any handshake, or \
             replayed (a first handshake message seen before, refused in silence)",
            self.inbound_refused.clone(),
        );
        r.register(
            "cells_dropped",
            "Cells dropped, by reason: link_queue_full, circuit_stalled (behind a circuit \
             that stalled its link) or delivery_queue_full",
            self.cells_dropped.clone(),
        );
        r.register(
            "events_dropped",
            "Informational node events dropped at a full event queue (build and delivery \
             times among them, so the histograms may miss some)",
            self.events_dropped.clone(),
        );
    }

    fn register_circuits(&self, r: &mut Registry) {
        r.register(
            "circuits",
            "Open circuits, by role (relay: a hop of someone else's circuit; own: built by \
             this node) and state (open for relayed ones; building or ready for own ones)",
            self.circuits.clone(),
        );
        r.register(
            "rendezvous",
            "As a relay: services this node is an introduction point of (role \
             introducing), rendezvous it joined (role joined)",
            self.rendezvous.clone(),
        );
        r.register(
            "circuits_built",
            "Own circuits that became ready",
            self.circuits_built.clone(),
        );
        r.register(
            "circuits_abandoned",
            "Own ready circuits torn down because a hop stopped answering",
            self.circuits_abandoned.clone(),
        );
        r.register(
            "circuits_closed",
            "Own circuits that closed, by reason (link_closed, timeout, extend_failed, ...)",
            self.circuits_closed.clone(),
        );
        r.register(
            "probe_rounds",
            "Probe rounds sent over own circuits that went quiet",
            self.probe_rounds.clone(),
        );
        r.register_with_unit(
            "circuit_rtt",
            "Round-trip times of this node's ready circuits that measured one: min, median and \
             max; absent without such a circuit",
            Unit::Seconds,
            self.circuit_rtt.clone(),
        );
        r.register_with_unit(
            "circuit_build_timeout",
            "How long an own circuit may take to build now, learned from build times",
            Unit::Seconds,
            self.build_timeout.clone(),
        );
        r.register_with_unit(
            "circuit_build_duration",
            "Time from an own circuit's CREATE to its last hop's answer",
            Unit::Seconds,
            self.build_duration.0.clone(),
        );
    }

    fn register_messages(&self, r: &mut Registry) {
        r.register(
            "messages_pending",
            "Messages in the node: outgoing ones not acknowledged yet, incoming ones partial \
             or waiting for a listener",
            self.messages_pending.clone(),
        );
        r.register(
            "messages_sent",
            "Messages queued to send",
            self.messages_sent.clone(),
        );
        r.register(
            "messages_acknowledged",
            "Messages acknowledged by their destination",
            self.messages_acknowledged.clone(),
        );
        r.register(
            "messages_received",
            "Messages received whole",
            self.messages_received.clone(),
        );
        r.register(
            "messages_failed",
            "Messages given up, by reason: expired, refused or circuit_closed",
            self.messages_failed.clone(),
        );
        r.register_with_unit(
            "message_delivery_duration",
            "Time from handing a message to the node (veil send, veil reply) to its \
             destination's acknowledgement",
            Unit::Seconds,
            self.delivery_duration.0.clone(),
        );
    }

    fn register_network(&self, r: &mut Registry) {
        r.register(
            "known_nodes",
            "Nodes in the node table",
            self.known_nodes.clone(),
        );
        r.register(
            "known_relays",
            "Nodes in the node table that relay",
            self.known_relays.clone(),
        );
        r.register(
            "descriptors_received",
            "DESCRIPTOR cells received over links, before any check",
            self.descriptors_received.clone(),
        );
        r.register(
            "descriptors_verified",
            "Descriptor signatures verified",
            self.descriptors_verified.clone(),
        );
        r.register(
            "descriptors_over_quota",
            "DESCRIPTOR cells dropped unread because their link used its quota",
            self.descriptors_over_quota.clone(),
        );
        r.register(
            "lookups_sent",
            "LOOKUP relay messages sent over this node's own circuits, for its lookups of destinations whose descriptor proved stale",
            self.lookups_sent.clone(),
        );
        r.register(
            "lookups_answered",
            "Peers' descriptor lookups answered with a descriptor this node held",
            self.lookups_answered.clone(),
        );
        r.register(
            "lookups_passed_on",
            "Peers' descriptor lookups passed on to this node's own peers",
            self.lookups_passed_on.clone(),
        );
        r.register(
            "lookups_over_circuits",
            "Descriptor lookups that reached this node over a circuit it relays, from a sender it cannot see",
            self.lookups_over_circuits.clone(),
        );
        r.register(
            "relays_tracked",
            "Relays with a health record (this node's own circuits went through them)",
            self.relays_tracked.clone(),
        );
        r.register(
            "relays_backed_off",
            "Relays that new paths avoid for now (suspected or failing)",
            self.relays_backed_off.clone(),
        );
        r.register(
            "relay_circuits",
            "Own circuits through known relays by outcome (tried, built, lost, failed), \
             summed over relays; counts decay by half every 30 minutes",
            self.relay_circuits.clone(),
        );
        r.register(
            "relay_suspicions",
            "Relays suspected of stopping on one of this node's ready circuits",
            self.relay_suspicions.clone(),
        );
        r.register(
            "destinations_silent",
            "Destinations that stopped answering while their path did",
            self.destinations_silent.clone(),
        );
        r.register(
            "guard_warnings",
            "Warnings that under 70% of recent circuits through a guard were built",
            self.guard_warnings.clone(),
        );
        r.register(
            "reachability",
            "Whether others can dial this node: 1 on the current state (assumed, checking, \
             reachable, unreachable), 0 on the others",
            self.reachability.clone(),
        );
        r.register(
            "service_intro_points",
            "Established introduction points of the rendezvous service this node offers \
             (0 without one)",
            self.service_intro_points.clone(),
        );
    }
}
