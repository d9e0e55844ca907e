//! A node's status as the control socket's `status` answer carries it
//! (CONTROL.md, `status`).
//!
//! The node thread fills it in (`host` in the binary), the control socket
//! sends it as JSON, and every client reads it back into the same types, so
//! a field added here is added to both ends at once.

use serde::{Deserialize, Serialize};

/// A snapshot of a node, as `veil status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// The node's id (hex).
    pub node_id: String,
    /// The address it listens on.
    pub listen: String,
    /// Seconds since the node started.
    pub uptime_secs: u64,
    /// Open links.
    pub links: Vec<LinkStatus>,
    /// Circuits this node is a hop of (relay or destination).
    pub circuits_relayed: usize,
    /// Circuits this node built.
    pub circuits_own: usize,
    /// Unacknowledged outgoing messages.
    pub messages_outgoing: usize,
    /// Incoming messages, partial or waiting to be taken.
    pub messages_incoming: usize,
    /// Nodes in the node table.
    pub known_nodes: usize,
    /// Of those, how many relay.
    pub known_relays: usize,
    /// Bytes written to links since start, closed links included.
    pub bytes_sent: u64,
    /// Bytes read from links since start, closed links included.
    pub bytes_received: u64,
    /// Cells sent over links since start, closed links included.
    pub cells_sent: u64,
    /// Cells received over links since start, closed links included.
    pub cells_received: u64,
    /// Idle-padding cells sent over links since start, closed links
    /// included (transport spec §4.3; not in `cells_sent`).
    #[serde(default)]
    pub padding_cells_sent: u64,
    /// Idle-padding cells received over links since start.
    #[serde(default)]
    pub padding_cells_received: u64,
    /// Padding relay messages sent to round messages up to their size
    /// buckets (relay spec §8.1).
    #[serde(default)]
    pub message_padding_cells_sent: u64,
    /// The idle padding this node's links use by configuration: "full",
    /// "reduced", "off" or "none".
    #[serde(default)]
    pub link_padding: String,
    /// The anonymity preset the node's defences match ("off", "default",
    /// "strict"), or "custom" when settings override it.
    #[serde(default)]
    pub anonymity: String,
    /// Cover traffic since start (relay spec §8.2).
    #[serde(default)]
    pub cover: CoverStatus,
    /// Padding relay messages sent to fill shaping slots (relay spec §8.3).
    #[serde(default)]
    pub shaping_padding_cells_sent: u64,
    /// The shaping interval, ms; 0 when the node does not shape.
    #[serde(default)]
    pub shaping_interval_ms: u64,
    /// The mean mixing delay for relayed cells, ms; 0 when off.
    #[serde(default)]
    pub mixing_delay_ms: u64,
    /// Relayed cells held for a mixing delay since start.
    #[serde(default)]
    pub cells_mixed: u64,
    /// Relayed cells passed on unmixed because the mixing queue was full.
    #[serde(default)]
    pub mixing_queue_full: u64,
    /// Links that have closed since start.
    pub links_closed: u64,
    /// Counters since start.
    pub circuits_built: u64,
    /// Messages queued to send.
    pub messages_sent: u64,
    /// Messages acknowledged by their destination.
    pub messages_acknowledged: u64,
    /// Messages received whole.
    pub messages_received: u64,
    /// Cells dropped at a full link queue.
    pub cells_dropped: u64,
    /// The circuit build timeout now in use (learned from build times), ms.
    #[serde(default)]
    pub build_timeout_ms: u64,
    /// Probe rounds sent over own circuits that went quiet.
    #[serde(default)]
    pub probe_rounds: u64,
    /// Own circuits torn down because a hop stopped answering.
    #[serde(default)]
    pub circuits_abandoned: u64,
    /// Whether others can dial this node: "reachable at …", "not
    /// reachable: using introduction relays …" or "checking: …".
    #[serde(default)]
    pub reachability: String,
    /// The rendezvous service this node offers (relay spec §13): its id
    /// (hex), or `None` when it offers none.
    #[serde(default)]
    pub service_id: Option<String>,
    /// The offered service's established introduction points.
    #[serde(default)]
    pub service_intro_points: usize,
    /// As a relay: services this node is an introduction point of.
    #[serde(default)]
    pub rendezvous_introducing: usize,
    /// As a relay: rendezvous this node has joined (pairs of circuits it
    /// carries cells between).
    #[serde(default)]
    pub rendezvous_joined: usize,
    /// Each own circuit: its path and state. Local to the operator; never
    /// sent to any peer.
    #[serde(default)]
    pub own_circuits: Vec<OwnCircuitStatus>,
    /// Each known relay this node has used or tried, with its health.
    /// Local to the operator; never sent to any peer.
    #[serde(default)]
    pub relay_health: Vec<RelayHealthStatus>,
}

/// One circuit this node built, in a [`Status`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OwnCircuitStatus {
    /// Its hops' node ids (hex), destination last.
    pub path: Vec<String>,
    /// "building" or "ready".
    pub state: String,
    /// Seconds since it was opened.
    pub age_secs: u64,
    /// Its smoothed round-trip time in milliseconds, once measured.
    pub rtt_ms: Option<f64>,
}

/// One relay's health, in a [`Status`]: decayed counts (halved every 30
/// minutes) of this node's own circuits through it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayHealthStatus {
    /// The relay's node id (hex).
    pub relay: String,
    /// Circuits started through it.
    pub tried: f64,
    /// Of those, circuits that became ready.
    pub built: f64,
    /// Ready circuits through it lost, for any reason.
    pub lost: f64,
    /// Failures pinned on it (builds stopped at it, probes unanswered).
    pub failed: f64,
    /// Seconds until new paths may use it again (0: available).
    pub backoff_secs: u64,
}

/// One link in a [`Status`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkStatus {
    /// The peer's node id (hex), once authenticated.
    pub peer: Option<String>,
    /// "initiator" (we dialled) or "responder" (we accepted).
    pub role: String,
    /// "handshaking", "established", "closing" or "closed".
    pub phase: String,
    /// What the link runs over: "tcp" or "quic" (`None` if the adapter
    /// did not say).
    pub transport: Option<String>,
    /// Smoothed round-trip time in milliseconds, once measured.
    pub rtt_ms: Option<f64>,
    /// Bytes written to this link.
    pub bytes_sent: u64,
    /// Bytes read from this link.
    pub bytes_received: u64,
    /// Cells sent over this link.
    pub cells_sent: u64,
    /// Cells received over this link.
    pub cells_received: u64,
}

/// Cover traffic since start, and its budget.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CoverStatus {
    /// The budget, bytes a second; 0: no cover.
    pub budget: u32,
    /// Loop cover cells sent at Poisson times.
    pub loop_cells: u64,
    /// Loop and FRONT cells whose answer came back.
    pub loop_cells_returned: u64,
    /// Drop cover cells sent.
    pub drop_cells: u64,
    /// FRONT padding cells sent.
    pub front_cells: u64,
    /// Bursts FRONT padded.
    pub front_bursts: u64,
    /// Bytes of budget the cover took (each cell at the most it can take on
    /// the wire).
    pub bytes_charged: u64,
    /// Cover cells held back because the budget was spent.
    pub over_budget: u64,
}
