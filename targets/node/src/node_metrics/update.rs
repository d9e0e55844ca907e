//! How the node thread fills [`NodeMetrics`]: what only events tell (build
//! and delivery times, why links and circuits closed, suspicions) as they
//! come, and what the runtime keeps (counters, tables) when a scraper asks.
//!
//! Counters the core keeps as totals since start are stored as they are
//! rather than counted again here: the core's count is the truth, and a
//! scrape then shows exactly what `veil status` shows.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant as WallInstant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use veil_core::cell::DestroyReason;
use veil_core::discovery::HealthCounts;
use veil_core::link::{CloseReason, LinkPhase, LinkRole};
use veil_core::node::Event;
use veil_mio::Runtime;

use super::labels::{
    self, CircuitLabels, DirectionLabels, LinkLabels, OutcomeLabels, ReasonLabels, RoleLabels,
    StatLabels, StateLabels, MESSAGE_FAILURES, REACHABILITY,
};
use super::{FloatGauge, NodeMetrics};
use crate::link_names;

/// Link states an open link can be in (a closed one has left the table).
const OPEN_PHASES: [LinkPhase; 3] = [
    LinkPhase::Handshaking,
    LinkPhase::Established,
    LinkPhase::Closing,
];

const ROLES: [LinkRole; 2] = [LinkRole::Initiator, LinkRole::Responder];

const TRANSPORTS: [&str; 3] = ["tcp", "quic", "unknown"];

/// Sets a counter to the core's running total.
fn set_total(counter: &Counter, total: u64) {
    counter.inner().store(total, Ordering::Relaxed);
}

/// Sets `family` to the shortest, median and longest of `times`, or
/// removes those series when there is none (a stale time would mislead).
fn set_spread(family: &Family<StatLabels, FloatGauge>, mut times: Vec<Duration>) {
    times.sort_unstable();
    let spread = [
        ("min", times.first()),
        ("median", times.get(times.len() / 2)),
        ("max", times.last()),
    ];
    for (stat, time) in spread {
        match time {
            Some(t) => {
                family
                    .get_or_create(&StatLabels { stat })
                    .set(t.as_secs_f64());
            }
            None => {
                family.remove(&StatLabels { stat });
            }
        }
    }
}

/// A count as a gauge's value (counts of tables that fit in memory).
fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl NodeMetrics {
    /// Gives every labelled family its whole set of label values at zero,
    /// so a family shows from the first scrape, not from its first event.
    pub(super) fn zero_families(&self) {
        for reason in CloseReason::ALL {
            let _ = self.links_closed.get_or_create(&ReasonLabels {
                reason: labels::close_reason(reason),
            });
        }
        for reason in DestroyReason::ALL {
            let _ = self.circuits_closed.get_or_create(&ReasonLabels {
                reason: labels::destroy_reason(reason),
            });
        }
        for reason in MESSAGE_FAILURES {
            let _ = self.messages_failed.get_or_create(&ReasonLabels {
                reason: labels::message_failure(reason),
            });
        }
    }

    /// Counts what `event` tells.
    pub fn on_event(&self, event: &Event) {
        match event {
            Event::CircuitReady { built_in, .. } => {
                let built_in = Duration::from_micros(built_in.as_micros());
                self.build_duration.0.observe(built_in.as_secs_f64());
            }
            Event::CircuitClosed { reason, .. } => {
                self.circuits_closed
                    .get_or_create(&ReasonLabels {
                        reason: labels::destroy_reason(*reason),
                    })
                    .inc();
            }
            Event::LinkClosed { reason, .. } => {
                self.links_closed
                    .get_or_create(&ReasonLabels {
                        reason: labels::close_reason(*reason),
                    })
                    .inc();
            }
            Event::MessageFailed { reason, .. } => {
                self.messages_failed
                    .get_or_create(&ReasonLabels {
                        reason: labels::message_failure(*reason),
                    })
                    .inc();
            }
            Event::RelaySuspected { .. } => {
                self.relay_suspicions.inc();
            }
            Event::DestinationSilent { .. } => {
                self.destinations_silent.inc();
            }
            Event::GuardUnreliable { .. } => {
                self.guard_warnings.inc();
            }
            _ => {}
        }
    }

    /// A message handed to the node `sent_at` was acknowledged now.
    pub fn on_delivered(&self, sent_at: WallInstant) {
        self.delivery_duration
            .0
            .observe(sent_at.elapsed().as_secs_f64());
    }

    /// Reads the runtime's counters and tables into the families.
    pub fn refresh(&self, rt: &Runtime, started: WallInstant) {
        let node = rt.node();
        self.uptime
            .set(i64::try_from(started.elapsed().as_secs()).unwrap_or(i64::MAX));
        self.link_slots.set(gauge_value(node.link_capacity()));
        self.pending_dials.set(gauge_value(rt.pending_dials()));
        self.refresh_links(rt);
        let stats = node.stats();
        let dropped = stats.cells_dropped;
        for (reason, total) in [
            ("link_queue_full", dropped.link_queue_full),
            ("circuit_stalled", dropped.circuit_stalled),
            ("delivery_queue_full", dropped.delivery_queue_full),
        ] {
            set_total(
                &self.cells_dropped.get_or_create(&ReasonLabels { reason }),
                total,
            );
        }
        let refused = stats.inbound_refused;
        for (reason, total) in [
            ("network_full", refused.network_full),
            ("table_full", refused.table_full),
            ("replayed", refused.replayed),
        ] {
            set_total(
                &self.inbound_refused.get_or_create(&ReasonLabels { reason }),
                total,
            );
        }
        set_total(&self.events_dropped, stats.events_dropped);
        set_total(&self.circuits_built, stats.circuits_built);
        set_total(&self.circuits_abandoned, stats.circuits_abandoned);
        set_total(&self.probe_rounds, stats.probe_rounds);
        set_total(&self.messages_sent, stats.messages_sent);
        set_total(&self.messages_acknowledged, stats.messages_acknowledged);
        set_total(&self.messages_received, stats.messages_received);
        set_total(&self.descriptors_received, stats.descriptors_received);
        set_total(&self.descriptors_verified, stats.descriptors_verified);
        set_total(&self.descriptors_over_quota, stats.descriptors_over_quota);
        set_total(&self.lookups_sent, stats.lookups_sent);
        set_total(&self.lookups_answered, stats.lookups_answered);
        set_total(&self.lookups_passed_on, stats.lookups_passed_on);
        set_total(&self.lookups_over_circuits, stats.lookups_over_circuits);
        self.refresh_circuits(rt);
        self.refresh_network(rt);
    }

    /// Links by kind, half-open ones by role, and the traffic of every link
    /// since start.
    fn refresh_links(&self, rt: &Runtime) {
        let node = rt.node();
        for transport in TRANSPORTS {
            for phase in OPEN_PHASES {
                for role in ROLES {
                    self.links
                        .get_or_create(&LinkLabels {
                            transport,
                            state: link_names::phase(phase),
                            role: link_names::role(role),
                        })
                        .set(0);
                }
            }
        }
        for role in ROLES {
            self.half_open
                .get_or_create(&RoleLabels {
                    role: link_names::role(role),
                })
                .set(0);
        }
        // Closed links' traffic, summed by the node as each closed, plus
        // the open links' own: everything since start, as `status` counts.
        let mut total = node.stats().closed_link_traffic;
        let mut rtts = Vec::new();
        for link in node.links() {
            if link.phase == LinkPhase::Established {
                rtts.extend(
                    link.rtt
                        .smoothed()
                        .map(|d| Duration::from_micros(d.as_micros())),
                );
            }
            total = total.plus(&link.stats);
            let labels = LinkLabels {
                transport: link.transport.map_or("unknown", link_names::transport),
                state: link_names::phase(link.phase),
                role: link_names::role(link.role),
            };
            self.links.get_or_create(&labels).inc();
            if link.phase == LinkPhase::Handshaking {
                self.half_open
                    .get_or_create(&RoleLabels {
                        role: link_names::role(link.role),
                    })
                    .inc();
            }
        }
        set_spread(&self.link_rtt, rtts);
        set_total(&self.sent_bytes, total.bytes_sent);
        set_total(&self.received_bytes, total.bytes_received);
        set_total(&self.padding_sent_bytes, node.stats().padding_bytes_sent);
        set_total(&self.padding_cells_sent, total.padding_cells_sent);
        set_total(
            &self.padding_cells_received,
            node.stats().padding_cells_received,
        );
        set_total(&self.cells_sent, total.cells_sent);
        set_total(&self.cells_received, total.cells_received);
        let stats = node.stats();
        set_total(&self.cover_loop_cells, stats.loop_cover_cells_sent);
        set_total(&self.cover_drop_cells, stats.drop_cover_cells_sent);
        set_total(&self.cover_front_cells, stats.front_cells_sent);
        set_total(&self.cover_bytes_charged, stats.cover_bytes_charged);
        self.cover_budget.set(i64::from(node.config().cover.budget));
        set_total(
            &self.shaping_padding_cells,
            stats.shaping_padding_cells_sent,
        );
    }

    fn refresh_circuits(&self, rt: &Runtime) {
        let node = rt.node();
        let (relayed, _) = node.circuit_counts();
        let (mut building, mut ready) = (0usize, 0usize);
        let mut rtts = Vec::new();
        for circuit in node.own_circuits() {
            if circuit.ready {
                ready = ready.saturating_add(1);
                rtts.extend(
                    circuit
                        .rtt
                        .smoothed()
                        .map(|d| Duration::from_micros(d.as_micros())),
                );
            } else {
                building = building.saturating_add(1);
            }
        }
        for (role, state, n) in [
            ("relay", "open", relayed),
            ("own", "building", building),
            ("own", "ready", ready),
        ] {
            self.circuits
                .get_or_create(&CircuitLabels { role, state })
                .set(gauge_value(n));
        }
        set_spread(&self.circuit_rtt, rtts);
        let (introducing, joined) = node.rendezvous_roles();
        for (role, n) in [("introducing", introducing), ("joined", joined)] {
            self.rendezvous
                .get_or_create(&RoleLabels { role })
                .set(gauge_value(n));
        }
        let timeout = Duration::from_micros(node.build_timeout().as_micros());
        self.build_timeout.set(timeout.as_secs_f64());
        let (outgoing, incoming) = node.message_counts();
        for (direction, n) in [("outgoing", outgoing), ("incoming", incoming)] {
            self.messages_pending
                .get_or_create(&DirectionLabels { direction })
                .set(gauge_value(n));
        }
    }

    /// The node table, relay health and reachability.
    fn refresh_network(&self, rt: &Runtime) {
        let node = rt.node();
        let table = node.node_table();
        self.known_nodes.set(gauge_value(table.len()));
        let relays = table
            .entries()
            .iter()
            .filter(|e| e.descriptor.repr().relay)
            .count();
        self.known_relays.set(gauge_value(relays));
        let now = rt.now();
        let (mut tracked, mut backed_off) = (0usize, 0usize);
        let mut sum = [0f64; 4];
        for entry in table.entries() {
            let c = entry.health.counts();
            if c == HealthCounts::default() {
                continue;
            }
            tracked = tracked.saturating_add(1);
            if entry.health.retry_at() > now {
                backed_off = backed_off.saturating_add(1);
            }
            // Kept in sixteenths, so they can decay.
            for (s, n) in sum.iter_mut().zip([c.tried, c.built, c.lost, c.failed]) {
                *s += f64::from(n) / 16.0;
            }
        }
        self.relays_tracked.set(gauge_value(tracked));
        self.relays_backed_off.set(gauge_value(backed_off));
        for (outcome, value) in ["tried", "built", "lost", "failed"].into_iter().zip(sum) {
            self.relay_circuits
                .get_or_create(&OutcomeLabels { outcome })
                .set(value);
        }
        let current = node.reachability();
        for (status, state) in REACHABILITY {
            self.reachability
                .get_or_create(&StateLabels { state })
                .set(i64::from(status == current));
        }
        self.service_intro_points
            .set(gauge_value(node.service_intro_points().count()));
    }
}
