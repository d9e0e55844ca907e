//! The [`Status`] a node thread reports: the runtime's links, circuits,
//! node table and traffic, in the control protocol's terms.

use std::time::Instant as WallInstant;

use crate::link_names;
use veil_core::discovery::HealthCounts;
use veil_mio::Runtime;
use veil_node::status::{CoverStatus, LinkStatus, OwnCircuitStatus, RelayHealthStatus, Status};

/// The bound addresses, as `veil node` prints them and `status` shows
/// them.
pub fn listening(rt: &Runtime) -> String {
    let tcp = rt.local_addr().to_string();
    #[cfg(feature = "quic")]
    if let Some(quic) = rt.quic_addr() {
        return format!("{tcp} and quic://{quic}");
    }
    tcp
}

pub(super) fn status(rt: &Runtime, started: WallInstant) -> Status {
    let node = rt.node();
    // Closed links' counters, summed by the node as each closed, plus the
    // open links' own: everything since start.
    let mut total = node.stats().closed_link_traffic;
    let links: Vec<LinkStatus> = node
        .links()
        .map(|l| {
            total = total.plus(&l.stats);
            LinkStatus {
                peer: l.peer.map(|p| p.to_string()),
                role: link_names::role(l.role).into(),
                phase: link_names::phase(l.phase).into(),
                transport: l.transport.map(|t| link_names::transport(t).to_string()),
                rtt_ms: l.rtt.smoothed().map(|d| d.as_micros() as f64 / 1000.0),
                bytes_sent: l.stats.bytes_sent,
                bytes_received: l.stats.bytes_received,
                cells_sent: l.stats.cells_sent,
                cells_received: l.stats.cells_received,
            }
        })
        .collect();
    let now = rt.now();
    let own_circuits = node
        .own_circuits()
        .map(|c| OwnCircuitStatus {
            path: c.path.hops().iter().map(ToString::to_string).collect(),
            state: if c.ready { "ready" } else { "building" }.into(),
            age_secs: now.saturating_since(c.opened_at).as_micros() / 1_000_000,
            rtt_ms: c.rtt.smoothed().map(|d| d.as_micros() as f64 / 1000.0),
        })
        .collect();
    let relay_health = node
        .node_table()
        .entries()
        .iter()
        .filter(|e| e.health.counts() != HealthCounts::default())
        .map(|e| {
            let c = e.health.counts();
            RelayHealthStatus {
                relay: e.node_id().to_string(),
                tried: f64::from(c.tried) / 16.0,
                built: f64::from(c.built) / 16.0,
                lost: f64::from(c.lost) / 16.0,
                failed: f64::from(c.failed) / 16.0,
                backoff_secs: e.health.retry_at().saturating_since(now).as_micros() / 1_000_000,
            }
        })
        .collect();
    let (relayed, own) = node.circuit_counts();
    let (rendezvous_introducing, rendezvous_joined) = node.rendezvous_roles();
    let (outgoing, incoming) = node.message_counts();
    let table = node.node_table();
    let stats = node.stats();
    Status {
        node_id: node.node_id().to_string(),
        listen: listening(rt),
        uptime_secs: started.elapsed().as_secs(),
        bytes_sent: total.bytes_sent,
        bytes_received: total.bytes_received,
        cells_sent: total.cells_sent,
        cells_received: total.cells_received,
        padding_cells_sent: total.padding_cells_sent,
        padding_cells_received: stats.padding_cells_received,
        message_padding_cells_sent: stats.message_padding_cells_sent,
        link_padding: link_padding_name(node.config().link.padding).to_string(),
        anonymity: preset_name(node.config()).to_string(),
        cover: CoverStatus {
            budget: node.config().cover.budget,
            loop_cells: stats.loop_cover_cells_sent,
            loop_cells_returned: stats.loop_cover_cells_returned,
            drop_cells: stats.drop_cover_cells_sent,
            front_cells: stats.front_cells_sent,
            front_bursts: stats.front_bursts,
            bytes_charged: stats.cover_bytes_charged,
            over_budget: stats.cover_cells_over_budget,
        },
        shaping_padding_cells_sent: stats.shaping_padding_cells_sent,
        shaping_interval_ms: node.config().shaping.interval.as_micros() / 1000,
        mixing_delay_ms: node.config().mixing_delay_mean.as_micros() / 1000,
        cells_mixed: stats.cells_mixed,
        mixing_queue_full: stats.mixing_queue_full,
        links_closed: node.stats().links_closed,
        links,
        circuits_relayed: relayed,
        circuits_own: own,
        messages_outgoing: outgoing,
        messages_incoming: incoming,
        known_nodes: table.len(),
        known_relays: table
            .entries()
            .iter()
            .filter(|e| e.descriptor.repr().relay)
            .count(),
        circuits_built: stats.circuits_built,
        messages_sent: stats.messages_sent,
        messages_acknowledged: stats.messages_acknowledged,
        messages_received: stats.messages_received,
        cells_dropped: stats.cells_dropped.total(),
        build_timeout_ms: node.build_timeout().as_micros() / 1000,
        reachability: reachability_line(node),
        service_id: node.service_id().map(|id| id.to_string()),
        service_intro_points: node.service_intro_points().count(),
        rendezvous_introducing,
        rendezvous_joined,
        probe_rounds: stats.probe_rounds,
        circuits_abandoned: stats.circuits_abandoned,
        own_circuits,
        relay_health,
    }
}

/// "reachable at …", "not reachable: using introduction relays …" or
/// "checking …", as `veil status` prints it (issue 19).
fn reachability_line<P: veil_core::node::Profile>(node: &veil_core::node::Node<P>) -> String {
    use veil_core::node::ReachabilityStatus;
    let addresses = || {
        node.advertised_addresses()
            .iter()
            .map(|a| a.socket.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match node.reachability() {
        ReachabilityStatus::Reachable => {
            format!("reachable at {} (peers dialled it back)", addresses())
        }
        ReachabilityStatus::Assumed => {
            format!("reachable at {} (as configured, not checked)", addresses())
        }
        ReachabilityStatus::Checking => "checking: peers are dialling it back".to_string(),
        ReachabilityStatus::Unreachable => format!(
            "not reachable: using introduction relays {}",
            node.introducers()
                .iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The anonymity preset whose defences `config` has, or "custom".
fn preset_name(config: &veil_core::node::NodeConfig) -> &'static str {
    veil_core::node::Anonymity::ALL
        .into_iter()
        .find(|preset| {
            preset.link_padding() == config.link.padding
                && preset.message_padding() == config.message_padding
                && preset.extra_path_relays() == config.extra_path_relays
                && preset.cover() == config.cover
                && preset.shaping() == config.shaping
                && preset.mixing_delay_mean() == config.mixing_delay_mean
                && preset.second_layer_guards() == config.second_layer_guards
        })
        .map_or("custom", |preset| preset.name())
}

/// The name `link_padding` has in the node's configuration file for what
/// its links are configured with.
fn link_padding_name(padding: veil_core::link::LinkPadding) -> &'static str {
    use veil_core::link::LinkPadding;
    match padding {
        LinkPadding::FULL => "full",
        LinkPadding::REDUCED => "reduced",
        LinkPadding::OFF => "off",
        LinkPadding::NONE => "none",
        _ => "custom",
    }
}
