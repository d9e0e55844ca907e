//! Churn at scale (issue 11, point 7): a population of nodes that come and
//! go as peers of deployed P2P systems do, a workload of messages over
//! 3-relay circuits, and the figures that say how the network coped.
//!
//! The model (`docs/churn.md` gives the reasoning):
//!
//! - **Sessions** are Weibull-distributed, as Stutzbach and Rejaie measured
//!   them ("Understanding Churn in Peer-to-Peer Networks", IMC 2006: shapes
//!   0.34–0.59, scales of 21–42 minutes). Default: shape 0.5, scale 21 min
//!   (median 10.1 min, mean 42 min).
//! - **Arrivals** are Poisson, at the rate `nodes / mean session` that
//!   keeps the population steady: an M/G/∞ system. The first `nodes` nodes
//!   start in equilibrium: each one's remaining session is drawn from the
//!   residual-life distribution of the Weibull (a length-biased session,
//!   cut at a uniform point), so departures do not bunch at the start.
//! - **Departures** are clean ([`Sim::kill`]: sockets close) or silent
//!   ([`Sim::freeze`]: sockets stay open, nothing answers, for good), half
//!   each by default. Every node is a relay, so every departure is a relay
//!   departure.
//! - **Wires** have a base latency with jitter plus each end's access
//!   latency ([`Sim::set_access_latency`]), drawn per node.
//! - **Workload**: `senders` live nodes (a sender that leaves is replaced by
//!   a random node up for at least a minute) each send a message at Poisson
//!   times (mean `send_interval`) to a random live node its table holds.
//!
//! Everything random comes from the seed, so a run is reproduced exactly:
//! [`ChurnReport::digest`] is the simulator's transcript digest.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt::Write as _;

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use veil_core::circuit::CircuitHandle;
use veil_core::identity::NodeId;
use veil_core::message::{MessageId, MessageSlot};
use veil_core::node::{AddBootstrap, Event, LinkSlot, NodeConfig, Reachability, SendMessageError};
use veil_core::time::{Duration, Instant};

use crate::{NodeIndex, Sim, SimNodeCore, SimProfile, StreamConditions, SIM_MESSAGES, SIM_MSG};

const UNIX_AT_ZERO: u64 = 1_800_000_000;

/// The parameters of a churn run.
#[derive(Debug, Clone)]
pub struct ChurnConfig {
    /// Population kept steady (the initial nodes, and the arrival rate).
    pub nodes: usize,
    /// Churn and workload run this long after warm-up (then the delivery
    /// window, with churn only).
    pub duration: Duration,
    /// Time the initial network gets to form before churn starts.
    pub warmup: Duration,
    /// Seed of every random choice (the simulator's and the model's).
    pub seed: u64,
    /// Weibull shape of session lengths.
    pub session_shape: f64,
    /// Weibull scale of session lengths.
    pub session_scale: Duration,
    /// Fraction of departures that are silent (frozen) rather than clean.
    pub silent_fraction: f64,
    /// Fraction of nodes nobody can dial (behind NAT): they advertise no
    /// address and are reached through 2 introducers (relay spec §10).
    pub unreachable_fraction: f64,
    /// Nodes sending messages at any time.
    pub senders: usize,
    /// Mean time between one sender's messages (Poisson).
    pub send_interval: Duration,
    /// Bytes per message.
    pub message_len: usize,
    /// A message counts as delivered if its destination took it within
    /// this long (the node's `message_give_up_after`). The run goes on
    /// this long after `duration` (churn continuing, no new messages), so
    /// every message has its whole window.
    pub delivery_window: Duration,
    /// A node is made a sender only after it has been up this long.
    pub sender_min_age: Duration,
    /// Link slots per node.
    pub links: usize,
    /// Random live nodes each new node is given as bootstrap addresses.
    pub bootstrap_peers: usize,
    /// One-way latency of every wire, before access latencies.
    pub base_latency: Duration,
    /// Random extra delay per chunk, up to this (order kept).
    pub jitter: Duration,
    /// Each node's access latency is uniform in `[0, access_latency_max]`.
    pub access_latency_max: Duration,
    /// The nodes' gossip interval.
    pub gossip_interval: Duration,
    /// How often the driver reads the nodes' events and counts circuits.
    pub sample_interval: Duration,
    /// Print a progress line to stderr every simulated minute.
    pub verbose: bool,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        ChurnConfig {
            nodes: 1_000,
            duration: Duration::from_secs(30 * 60),
            warmup: Duration::from_secs(90),
            seed: 1,
            session_shape: 0.5,
            session_scale: Duration::from_secs(21 * 60),
            silent_fraction: 0.5,
            unreachable_fraction: 0.0,
            senders: 100,
            send_interval: Duration::from_secs(5),
            message_len: 256,
            delivery_window: Duration::from_secs(120),
            sender_min_age: Duration::from_secs(60),
            links: 48,
            bootstrap_peers: 3,
            base_latency: Duration::from_millis(10),
            jitter: Duration::from_millis(10),
            access_latency_max: Duration::from_millis(20),
            gossip_interval: Duration::from_secs(10),
            sample_interval: Duration::from_secs(1),
            verbose: false,
        }
    }
}

impl ChurnConfig {
    /// The node configuration every simulated node runs: the defaults
    /// (3-relay circuits, 120 s give-up), a Unix clock, and the gossip
    /// interval.
    pub fn node_config(&self) -> NodeConfig {
        NodeConfig {
            unix_time_at_zero: UNIX_AT_ZERO,
            gossip_interval: self.gossip_interval,
            message_give_up_after: self.delivery_window,
            ..NodeConfig::default()
        }
    }

    /// Mean session length: `scale · Γ(1 + 1/shape)`.
    pub fn mean_session_secs(&self) -> f64 {
        secs(self.session_scale) * gamma(1.0 + 1.0 / self.session_shape)
    }

    /// Median session length: `scale · (ln 2)^(1/shape)`.
    pub fn median_session_secs(&self) -> f64 {
        secs(self.session_scale) * std::f64::consts::LN_2.powf(1.0 / self.session_shape)
    }
}

/// How a node left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// Its sockets closed ([`Sim::kill`]).
    Clean,
    /// It went silent ([`Sim::freeze`]).
    Silent,
}

/// One message of the workload.
#[derive(Debug, Clone)]
pub struct MessageRecord {
    /// When it was queued.
    pub sent_at: Instant,
    /// Who sent it.
    pub sender: NodeIndex,
    /// To whom.
    pub dest: NodeIndex,
    /// When the destination's application first took it.
    pub delivered_at: Option<Instant>,
    /// How many times the destination's application took it.
    pub deliveries: u32,
    /// When the sender saw its acknowledgement.
    pub acked_at: Option<Instant>,
    /// Whether the sender gave it up.
    pub failed: bool,
    /// Whether it counts in the delivery ratio (both ends stayed up for
    /// its delivery window, or until it was delivered).
    pub eligible: bool,
    /// Whether its destination is one nobody can dial.
    pub to_unreachable: bool,
}

/// A `RelaySuspected` a client raised.
#[derive(Debug, Clone, Copy)]
pub struct Suspicion {
    /// When.
    pub at: Instant,
    /// The client.
    pub client: NodeIndex,
    /// The relay it named.
    pub relay: NodeIndex,
    /// How (and when) the relay had left, if it had.
    pub relay_left: Option<(Instant, Leave)>,
}

/// A churn happening, for the time series.
#[derive(Debug, Clone, Copy)]
pub struct ChurnEvent {
    /// When.
    pub at: Instant,
    /// The node.
    pub node: NodeIndex,
    /// `None`: it arrived; else how it left.
    pub leave: Option<Leave>,
}

/// Everything a churn run measured.
#[derive(Debug, Clone)]
pub struct ChurnReport {
    /// The run's parameters.
    pub config: ChurnConfig,
    /// Start of the measured period (end of warm-up).
    pub start: Instant,
    /// End of the run.
    pub end: Instant,
    /// The simulator's transcript digest at the end.
    pub digest: [u8; 32],
    /// Every message of the workload, by sequence number.
    pub messages: Vec<MessageRecord>,
    /// Sends the node refused (pool full).
    pub refused_sends: u64,
    /// Sends skipped because the sender knew no live node.
    pub no_destination: u64,
    /// Every `RelaySuspected`.
    pub suspicions: Vec<Suspicion>,
    /// `DestinationSilent` events: (naming a node that was up, that had left).
    pub destination_silent: (u64, u64),
    /// Arrivals and departures in the measured period.
    pub churn: Vec<ChurnEvent>,
    /// Population (nodes up) sampled every 10 s: (time, count).
    pub population: Vec<(Instant, usize)>,
    /// Ready own circuits, integrated over the measured period, in
    /// circuit-seconds.
    pub circuit_seconds: f64,
    /// Silent departures, with how many ready circuits of nodes still up
    /// ran through the node at that moment.
    pub silent_with_circuits: Vec<(NodeIndex, usize)>,
    /// Circuits that became ready / closed (measured period).
    pub circuits_ready: u64,
    /// Own circuits closed (measured period).
    pub circuits_closed: u64,
    /// Own circuits closed, by reason (measured period), with how many of
    /// them had become ready.
    pub close_reasons: std::collections::BTreeMap<String, (u64, u64)>,
    /// Messages given up by their senders, by reason.
    pub failures: std::collections::BTreeMap<String, u64>,
    /// Messages to nodes nobody can dial given up by their senders, by
    /// what the sender's copy of the destination's descriptor listed at
    /// that moment against the destination's own introducers.
    pub unreachable_failures: std::collections::BTreeMap<&'static str, u64>,
    /// Descriptor lookups (relay spec §2.3) counted by the nodes up at the
    /// end: request cells sent for their own lookups, lookups answered,
    /// lookups passed on.
    pub lookups: (u64, u64, u64),
    /// What became of the nodes' dials.
    pub dials: crate::DialStats,
    /// Links open per up node at the end: mean and max.
    pub links_in_use: (f64, usize),
    /// Circuit build timeouts of the up nodes at the end, in seconds,
    /// sorted, with how many builds each estimate rests on.
    pub build_timeouts: Vec<(f64, usize)>,
    /// Nodes ever built.
    pub nodes_built: usize,
    /// Simulator steps.
    pub steps: u64,
    /// Wall-clock seconds of the run (warm-up included).
    pub wall_secs: f64,
    /// CPU seconds the process ran (Linux `/proc/self/stat`), if
    /// known: on a shared machine, the wall time also counts waiting.
    pub cpu_secs: Option<f64>,
    /// Fixed memory per node, in bytes: the node plus its link slots and
    /// message slots (what `memory_budget` counts).
    pub bytes_per_node: usize,
    /// Peak resident memory of the process, in KiB (Linux), if known.
    pub peak_rss_kib: Option<u64>,
}

/// What the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Sample,
    Depart(NodeIndex),
    Arrive,
    Send(usize),
}

#[derive(Debug, Clone, Copy)]
struct NodeState {
    joined: Instant,
    left: Option<(Instant, Leave)>,
    /// Nobody can dial it: it is reached through introducers.
    unreachable: bool,
}

struct Driver {
    cfg: ChurnConfig,
    sim: Sim,
    rng: ChaCha20Rng,
    queue: BinaryHeap<Reverse<(Instant, u64, Action)>>,
    seq: u64,
    states: Vec<NodeState>,
    up: Vec<NodeIndex>,
    up_pos: HashMap<NodeIndex, usize>,
    by_id: HashMap<NodeId, NodeIndex>,
    senders: Vec<Option<NodeIndex>>,
    sending: HashSet<NodeIndex>,
    pending: HashMap<(NodeIndex, MessageId), usize>,
    ready_circuits: HashSet<(NodeIndex, CircuitHandle)>,
    report: ChurnReport,
    send_until: Instant,
    next_population: Instant,
}

fn secs(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e6
}

fn from_secs_f64(s: f64) -> Duration {
    Duration::from_micros((s.max(0.0) * 1e6).min(1e15) as u64)
}

/// Γ(x) for x > 0 (Lanczos, g = 7): enough for a mean session length.
fn gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x))
    } else {
        let x = x - 1.0;
        let mut a = G[0];
        let t = x + 7.5;
        for (i, g) in G.iter().enumerate().skip(1) {
            a += g / (x + i as f64);
        }
        (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
    }
}

/// Uniform in (0, 1].
fn uniform(rng: &mut ChaCha20Rng) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

fn exponential(rng: &mut ChaCha20Rng, mean: f64) -> f64 {
    -uniform(rng).ln() * mean
}

fn normal(rng: &mut ChaCha20Rng) -> f64 {
    let (u, v) = (uniform(rng), uniform(rng));
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Gamma(shape, 1) (Marsaglia–Tsang).
fn gamma_sample(rng: &mut ChaCha20Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        return gamma_sample(rng, shape + 1.0) * uniform(rng).powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = uniform(rng);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

fn below(rng: &mut ChaCha20Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// The fixed memory of one simulated node with `links` link slots.
pub fn bytes_per_node(links: usize) -> usize {
    std::mem::size_of::<SimNodeCore>()
        + links * std::mem::size_of::<LinkSlot<SimProfile>>()
        + SIM_MESSAGES * std::mem::size_of::<MessageSlot<[u8; SIM_MSG]>>()
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time of the process, from `/proc/self/stat`
/// (in clock ticks of 1/100 s, as on every Linux x86-64 kernel).
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

const MESSAGE_TAG: &[u8] = b"churn ";

impl Driver {
    fn new(cfg: ChurnConfig) -> Self {
        let mut sim = Sim::new(cfg.seed);
        sim.set_dial_conditions(StreamConditions {
            latency: cfg.base_latency,
            jitter: cfg.jitter,
            max_chunk: usize::MAX,
            bandwidth: None,
        });
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&cfg.seed.to_le_bytes());
        seed[8..16].copy_from_slice(b"churnrng");
        let start = sim.now().saturating_add(cfg.warmup);
        let send_until = start.saturating_add(cfg.duration);
        let end = send_until.saturating_add(cfg.delivery_window);
        let report = ChurnReport {
            config: cfg.clone(),
            start,
            end,
            digest: [0; 32],
            messages: Vec::new(),
            refused_sends: 0,
            no_destination: 0,
            suspicions: Vec::new(),
            destination_silent: (0, 0),
            churn: Vec::new(),
            population: Vec::new(),
            circuit_seconds: 0.0,
            silent_with_circuits: Vec::new(),
            circuits_ready: 0,
            circuits_closed: 0,
            close_reasons: Default::default(),
            build_timeouts: Vec::new(),
            failures: Default::default(),
            unreachable_failures: Default::default(),
            lookups: (0, 0, 0),
            dials: crate::DialStats::default(),
            links_in_use: (0.0, 0),
            nodes_built: 0,
            steps: 0,
            wall_secs: 0.0,
            cpu_secs: None,
            bytes_per_node: bytes_per_node(cfg.links),
            peak_rss_kib: None,
        };
        Driver {
            senders: vec![None; cfg.senders],
            cfg,
            sim,
            rng: ChaCha20Rng::from_seed(seed),
            queue: BinaryHeap::new(),
            seq: 0,
            states: Vec::new(),
            up: Vec::new(),
            up_pos: HashMap::new(),
            by_id: HashMap::new(),
            sending: HashSet::new(),
            pending: HashMap::new(),
            ready_circuits: HashSet::new(),
            report,
            send_until,
            next_population: start,
        }
    }

    fn schedule(&mut self, at: Instant, action: Action) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, action)));
    }

    fn is_up(&self, node: NodeIndex) -> bool {
        self.states[node].left.is_none()
    }

    /// Adds a node, bootstrapped from up to `bootstrap_peers` random up nodes.
    fn add_node(&mut self) -> NodeIndex {
        // Drawn only when some nodes are unreachable, so that runs without
        // them keep their random stream (and digest).
        let unreachable = self.cfg.unreachable_fraction > 0.0
            && uniform(&mut self.rng) < self.cfg.unreachable_fraction;
        let index = if unreachable {
            // Behind NAT: it finds out by asking its peers to dial it back.
            let config = NodeConfig {
                reachability: Reachability::Detect,
                introducers: 2,
                ..self.cfg.node_config()
            };
            self.sim.add_node_behind_nat(config, self.cfg.links)
        } else {
            self.sim
                .add_addressed_node(self.cfg.node_config(), self.cfg.links)
        };
        let access =
            (uniform(&mut self.rng) * self.cfg.access_latency_max.as_micros() as f64) as u64;
        self.sim
            .set_access_latency(index, Duration::from_micros(access));
        let mut chosen: Vec<NodeIndex> = Vec::new();
        // Only nodes that can be dialled serve as bootstrap nodes.
        let dialable: Vec<NodeIndex> = self
            .up
            .iter()
            .copied()
            .filter(|&n| !self.states[n].unreachable)
            .collect();
        let want = self.cfg.bootstrap_peers.min(dialable.len());
        while chosen.len() < want {
            let peer = dialable[below(&mut self.rng, dialable.len())];
            if !chosen.contains(&peer) {
                chosen.push(peer);
            }
        }
        for peer in chosen {
            let _ = self
                .sim
                .handle(index, AddBootstrap::address(Sim::address_of(peer)));
        }
        let now = self.sim.now();
        self.states.push(NodeState {
            joined: now,
            left: None,
            unreachable,
        });
        self.up_pos.insert(index, self.up.len());
        self.up.push(index);
        self.by_id.insert(self.sim.node_id(index), index);
        index
    }

    fn weibull(&mut self) -> f64 {
        let u = uniform(&mut self.rng);
        secs(self.cfg.session_scale) * (-u.ln()).powf(1.0 / self.cfg.session_shape)
    }

    /// A remaining session in equilibrium: a length-biased Weibull session
    /// (`(L/scale)^shape` is Gamma(1 + 1/shape)), cut at a uniform point.
    fn residual(&mut self) -> f64 {
        let k = self.cfg.session_shape;
        let g = gamma_sample(&mut self.rng, 1.0 + 1.0 / k);
        uniform(&mut self.rng) * secs(self.cfg.session_scale) * g.powf(1.0 / k)
    }

    fn run(mut self) -> ChurnReport {
        let wall = std::time::Instant::now();
        for _ in 0..self.cfg.nodes {
            self.add_node();
        }
        let start = self.report.start;
        let end = self.report.end;
        self.sim.run_until(start);
        if self.cfg.verbose {
            let known: usize = (0..self.cfg.nodes)
                .map(|i| self.sim.node(i).core.node_table().len())
                .sum();
            eprintln!(
                "warm-up done at {:.0} s sim, {:.1} s wall: {} nodes know {:.1} nodes each",
                secs(Duration::from_micros(start.as_micros())),
                wall.elapsed().as_secs_f64(),
                self.cfg.nodes,
                known as f64 / self.cfg.nodes as f64
            );
        }
        // Read (and drop) the warm-up's events.
        self.sample(false);
        for node in 0..self.cfg.nodes {
            let rest = self.residual();
            self.schedule(
                start.saturating_add(from_secs_f64(rest)),
                Action::Depart(node),
            );
        }
        let rate_mean = self.cfg.mean_session_secs() / self.cfg.nodes as f64;
        let first = exponential(&mut self.rng, rate_mean);
        self.schedule(start.saturating_add(from_secs_f64(first)), Action::Arrive);
        for slot in 0..self.cfg.senders {
            let first = exponential(&mut self.rng, secs(self.cfg.send_interval));
            self.schedule(
                start.saturating_add(from_secs_f64(first)),
                Action::Send(slot),
            );
        }
        self.schedule(
            start.saturating_add(self.cfg.sample_interval),
            Action::Sample,
        );
        let mut next_progress = start.saturating_add(Duration::from_secs(60));
        while let Some(Reverse((at, _, action))) = self.queue.pop() {
            if at > end {
                break;
            }
            self.sim.run_until(at);
            match action {
                Action::Sample => {
                    self.sample(true);
                    let next = at.saturating_add(self.cfg.sample_interval);
                    self.schedule(next, Action::Sample);
                }
                Action::Depart(node) => self.depart(node),
                Action::Arrive => {
                    let node = self.add_node();
                    self.report.churn.push(ChurnEvent {
                        at,
                        node,
                        leave: None,
                    });
                    let session = self.weibull();
                    self.schedule(
                        at.saturating_add(from_secs_f64(session)),
                        Action::Depart(node),
                    );
                    let gap = exponential(&mut self.rng, rate_mean);
                    self.schedule(at.saturating_add(from_secs_f64(gap)), Action::Arrive);
                }
                Action::Send(slot) => {
                    if at <= self.send_until {
                        self.send(slot);
                        let gap = exponential(&mut self.rng, secs(self.cfg.send_interval));
                        self.schedule(at.saturating_add(from_secs_f64(gap)), Action::Send(slot));
                    }
                }
            }
            if self.cfg.verbose && at >= next_progress {
                next_progress = next_progress.saturating_add(Duration::from_secs(60));
                let delivered = self
                    .report
                    .messages
                    .iter()
                    .filter(|m| m.delivered_at.is_some())
                    .count();
                let mut top: Vec<(u64, NodeIndex)> = (0..self.states.len())
                    .map(|i| (self.sim.node(i).timers, i))
                    .collect();
                top.sort_unstable_by(|a, b| b.cmp(a));
                top.truncate(5);
                let top: Vec<String> = top
                    .iter()
                    .map(|&(t, i)| {
                        let n = self.sim.node(i);
                        let (relayed, own) = n.core.circuit_counts();
                        format!(
                            "node {i} timers {t} up {} sender {} links {} circuits {relayed}/{own} msgs {:?}",
                            self.is_up(i),
                            self.sending.contains(&i),
                            n.core.links().count(),
                            n.core.message_counts()
                        )
                    })
                    .collect();
                eprintln!("  top timers: {}", top.join("; "));
                let h = self.sim.happening_counts();
                eprintln!(
                    "  happenings: deliver {}, timer {}, transport closed {}, dial {}, writable {}, to stopped nodes {}; dials {:?}",
                    h[0], h[1], h[2], h[3], h[4], h[5], self.sim.dial_stats()
                );
                eprintln!(
                    "t = {:>5.0} s: {} up, {} built, {} messages ({} delivered), {} suspicions, {:.0} s wall, {} steps",
                    secs(at.saturating_since(start)),
                    self.up.len(),
                    self.states.len(),
                    self.report.messages.len(),
                    delivered,
                    self.report.suspicions.len(),
                    wall.elapsed().as_secs_f64(),
                    self.sim.steps(),
                );
            }
        }
        self.sim.run_until(end);
        self.sample(true);
        self.finish(wall.elapsed().as_secs_f64())
    }

    fn depart(&mut self, node: NodeIndex) {
        if !self.is_up(node) {
            return;
        }
        // What it said before it went.
        self.read_node(node, true);
        let now = self.sim.now();
        let leave = if uniform(&mut self.rng) < self.cfg.silent_fraction {
            Leave::Silent
        } else {
            Leave::Clean
        };
        if leave == Leave::Silent {
            let id = self.sim.node_id(node);
            let through: usize = self
                .up
                .iter()
                .filter(|&&c| c != node)
                .map(|&c| {
                    self.sim
                        .node(c)
                        .core
                        .own_circuits()
                        .filter(|o| o.ready && o.path.relays().contains(&id))
                        .count()
                })
                .sum();
            self.report.silent_with_circuits.push((node, through));
        }
        self.states[node].left = Some((now, leave));
        if let Some(pos) = self.up_pos.remove(&node) {
            self.up.swap_remove(pos);
            if let Some(&moved) = self.up.get(pos) {
                self.up_pos.insert(moved, pos);
            }
        }
        if self.sending.remove(&node) {
            for slot in self.senders.iter_mut() {
                if *slot == Some(node) {
                    *slot = None;
                }
            }
        }
        match leave {
            Leave::Clean => self.sim.kill(node),
            Leave::Silent => self.sim.freeze(node),
        }
        self.report.churn.push(ChurnEvent {
            at: now,
            node,
            leave: Some(leave),
        });
        // Its events and messages are of no further use.
        let n = self.sim.node_mut(node);
        n.events = Vec::new();
        n.delivered = Vec::new();
    }

    fn send(&mut self, slot: usize) {
        let now = self.sim.now();
        let sender = match self.senders[slot] {
            Some(s) => s,
            None => {
                let min_age = self.cfg.sender_min_age;
                let candidates: Vec<NodeIndex> = self
                    .up
                    .iter()
                    .copied()
                    .filter(|&n| {
                        !self.sending.contains(&n)
                            && now.saturating_since(self.states[n].joined) >= min_age
                    })
                    .collect();
                if candidates.is_empty() {
                    return;
                }
                let mut sorted = candidates;
                sorted.sort_unstable();
                let s = sorted[below(&mut self.rng, sorted.len())];
                self.senders[slot] = Some(s);
                self.sending.insert(s);
                s
            }
        };
        let known: Vec<NodeIndex> = self
            .sim
            .node(sender)
            .core
            .node_table()
            .entries()
            .iter()
            .filter_map(|e| self.by_id.get(&e.descriptor.node_id()).copied())
            .filter(|&n| n != sender && self.is_up(n))
            .collect();
        if known.is_empty() {
            self.report.no_destination += 1;
            return;
        }
        let dest = known[below(&mut self.rng, known.len())];
        let seq = self.report.messages.len();
        let mut bytes = format!("churn {seq:010} ").into_bytes();
        bytes.resize(self.cfg.message_len.max(bytes.len()), b'.');
        match self.sim.send_message(sender, dest, &bytes) {
            Ok(id) => {
                self.pending.insert((sender, id), seq);
                self.report.messages.push(MessageRecord {
                    sent_at: now,
                    sender,
                    dest,
                    delivered_at: None,
                    deliveries: 0,
                    acked_at: None,
                    failed: false,
                    eligible: false,
                    to_unreachable: self.states[dest].unreachable,
                });
            }
            Err(SendMessageError::UnknownDestination) => self.report.no_destination += 1,
            Err(_) => self.report.refused_sends += 1,
        }
    }

    /// Reads every up node's new events and deliveries, and counts ready
    /// circuits for `sample_interval` if `count` is set.
    fn sample(&mut self, count: bool) {
        let now = self.sim.now();
        let nodes: Vec<NodeIndex> = {
            let mut v = self.up.clone();
            v.sort_unstable();
            v
        };
        let mut ready = 0usize;
        for node in nodes {
            self.read_node(node, count);
            if count {
                ready += self
                    .sim
                    .node(node)
                    .core
                    .own_circuits()
                    .filter(|c| c.ready)
                    .count();
            }
        }
        if count {
            self.report.circuit_seconds += ready as f64 * secs(self.cfg.sample_interval);
        }
        if now >= self.next_population {
            self.report.population.push((now, self.up.len()));
            self.next_population = now.saturating_add(Duration::from_secs(10));
        }
    }

    fn read_node(&mut self, node: NodeIndex, measured: bool) {
        let n = self.sim.node_mut(node);
        let events = std::mem::take(&mut n.events);
        let delivered = std::mem::take(&mut n.delivered);
        for (at, event) in events {
            match event {
                Event::RelaySuspected { relay, .. } if measured => {
                    if let Some(&r) = self.by_id.get(&relay) {
                        self.report.suspicions.push(Suspicion {
                            at,
                            client: node,
                            relay: r,
                            relay_left: self.states[r].left,
                        });
                    }
                }
                Event::DestinationSilent { destination, .. } if measured => {
                    if let Some(&d) = self.by_id.get(&destination) {
                        if self.states[d].left.is_some() {
                            self.report.destination_silent.1 += 1;
                        } else {
                            self.report.destination_silent.0 += 1;
                        }
                    }
                }
                Event::CircuitReady { circuit, .. } if measured => {
                    self.report.circuits_ready += 1;
                    self.ready_circuits.insert((node, circuit));
                }
                Event::CircuitClosed {
                    circuit, reason, ..
                } if measured => {
                    self.report.circuits_closed += 1;
                    let was_ready = self.ready_circuits.remove(&(node, circuit));
                    let entry = self
                        .report
                        .close_reasons
                        .entry(format!("{reason:?}"))
                        .or_default();
                    entry.0 += 1;
                    entry.1 += u64::from(was_ready);
                }
                Event::MessageAcknowledged { id } => {
                    if let Some(seq) = self.pending.remove(&(node, id)) {
                        self.report.messages[seq].acked_at = Some(at);
                    }
                }
                Event::MessageFailed { id, reason } => {
                    if let Some(seq) = self.pending.remove(&(node, id)) {
                        self.report.messages[seq].failed = true;
                        if self.report.messages[seq].to_unreachable {
                            let why =
                                self.why_unreachable_failed(node, self.report.messages[seq].dest);
                            *self.report.unreachable_failures.entry(why).or_default() += 1;
                        }
                        *self
                            .report
                            .failures
                            .entry(format!("{reason:?}"))
                            .or_default() += 1;
                    }
                }
                _ => {}
            }
        }
        for d in delivered {
            let Some(rest) = d.bytes.strip_prefix(MESSAGE_TAG) else {
                continue;
            };
            let Some(seq) = rest
                .get(..10)
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.parse::<usize>().ok())
            else {
                continue;
            };
            if let Some(m) = self.report.messages.get_mut(seq) {
                if m.dest == node {
                    m.deliveries += 1;
                    if m.delivered_at.is_none() {
                        m.delivered_at = Some(d.at);
                    }
                }
            }
        }
    }

    /// Why `sender` may have failed to reach `dest`, a node nobody can
    /// dial: what its copy of `dest`'s descriptor lists, against the
    /// introducers `dest` holds now.
    fn why_unreachable_failed(&self, sender: NodeIndex, dest: NodeIndex) -> &'static str {
        if !self.is_up(dest) {
            return "destination gone";
        }
        let dest_id = self.sim.node_id(dest);
        let current: Vec<_> = self.sim.node(dest).core.introducers().to_vec();
        let table = self.sim.node(sender).core.node_table();
        let copy: Option<Vec<_>> = table
            .get(&dest_id)
            .map(|e| e.descriptor.introducers().map(|i| i.node_id).collect());
        let Some(copy) = copy else {
            return "sender no longer holds its descriptor";
        };
        if current.is_empty() {
            return "destination holds no introducer now";
        }
        if copy.is_empty() {
            return "sender's copy lists no introducer";
        }
        let shared: Vec<_> = copy.iter().filter(|i| current.contains(i)).collect();
        if shared.is_empty() {
            return match self.who_holds_a_current_copy(sender, dest, &current) {
                (true, _) => "sender's copy is stale: none of its introducers is current; a linked peer holds a current copy",
                (false, true) => "sender's copy is stale: none of its introducers is current; only nodes it is not linked to hold a current copy",
                (false, false) => "sender's copy is stale: none of its introducers is current; no node holds a current copy",
            };
        }
        if shared.len() < copy.len() {
            return "sender's copy is partly stale";
        }
        "sender's copy is current"
    }

    /// Whether one of `sender`'s linked peers, and whether any node up,
    /// holds a copy of `dest`'s descriptor that lists an introducer
    /// `dest` holds now: what a lookup could find.
    fn who_holds_a_current_copy(
        &self,
        sender: NodeIndex,
        dest: NodeIndex,
        current: &[NodeId],
    ) -> (bool, bool) {
        let dest_id = self.sim.node_id(dest);
        let holds = |n: NodeIndex| {
            n != dest
                && self.is_up(n)
                && self
                    .sim
                    .node(n)
                    .core
                    .node_table()
                    .get(&dest_id)
                    .is_some_and(|e| {
                        e.descriptor
                            .introducers()
                            .any(|i| current.contains(&i.node_id))
                    })
        };
        let linked = self
            .sim
            .node(sender)
            .core
            .links()
            .filter_map(|l| l.peer)
            .any(|peer| self.by_id.get(&peer).is_some_and(|&n| holds(n)));
        let anyone = (0..self.states.len()).any(holds);
        (linked, anyone)
    }

    fn finish(mut self, wall_secs: f64) -> ChurnReport {
        let window = self.cfg.delivery_window;
        for m in &mut self.report.messages {
            let horizon = m.sent_at.saturating_add(window);
            let until = match m.delivered_at {
                Some(d) if d <= horizon => d,
                _ => horizon,
            };
            let stayed = |n: NodeIndex| match self.states[n].left {
                None => true,
                Some((left, _)) => left >= until,
            };
            m.eligible = stayed(m.sender) && stayed(m.dest);
        }
        let links: Vec<usize> = self
            .up
            .iter()
            .map(|&n| self.sim.node(n).core.links().count())
            .collect();
        self.report.links_in_use = (
            links.iter().sum::<usize>() as f64 / links.len().max(1) as f64,
            links.iter().copied().max().unwrap_or(0),
        );
        let mut timeouts: Vec<(f64, usize)> = self
            .up
            .iter()
            .map(|&n| {
                let core = &self.sim.node(n).core;
                (secs(core.build_timeout()), core.build_times_observed())
            })
            .collect();
        timeouts.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.report.build_timeouts = timeouts;
        self.report.lookups = self.up.iter().fold((0, 0, 0), |(s, a, p), &n| {
            let stats = self.sim.node(n).core.stats();
            (
                s + stats.lookups_sent,
                a + stats.lookups_answered,
                p + stats.lookups_passed_on,
            )
        });
        self.report.dials = self.sim.dial_stats();
        self.report.digest = self.sim.transcript_digest();
        self.report.nodes_built = self.states.len();
        self.report.steps = self.sim.steps();
        self.report.wall_secs = wall_secs;
        self.report.peak_rss_kib = peak_rss_kib();
        self.report.cpu_secs = cpu_secs();
        self.report
    }
}

/// Runs a churn simulation.
pub fn run(config: ChurnConfig) -> ChurnReport {
    Driver::new(config).run()
}

/// The `p`-th percentile (0..=100) of sorted values, nearest rank.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// The headline figures of a report.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Messages queued.
    pub sent: usize,
    /// Messages that count (both ends up through the window).
    pub eligible: usize,
    /// Eligible messages delivered within the window.
    pub delivered: usize,
    /// `delivered / eligible`.
    pub delivery_ratio: f64,
    /// Of those, to destinations nobody can dial: eligible, delivered.
    pub to_unreachable: (usize, usize),
    /// Messages delivered more than once (and the extra copies).
    pub duplicates: (usize, u64),
    /// Delivery latency of eligible delivered messages, ms: p50, p99, max.
    pub latency_ms: (f64, f64, f64),
    /// Detection times after a silent departure, one per (client, relay)
    /// (the first suspicion), seconds: count, p50, p90, max.
    pub detection_s: (usize, f64, f64, f64),
    /// Silent departures, those with a ready circuit through them at the
    /// time, and those some client suspected.
    pub silent: (usize, usize, usize),
    /// Suspicions of relays that had left cleanly.
    pub after_clean: usize,
    /// Suspicions of relays that were up.
    pub false_suspicions: usize,
    /// Ready-circuit minutes.
    pub circuit_minutes: f64,
    /// False suspicions per circuit-hour.
    pub false_per_circuit_hour: f64,
    /// False suspicions per 10,000 circuit-minutes.
    pub false_per_10k_circuit_minutes: f64,
    /// Arrivals, clean and silent departures in the measured period.
    pub churn: (usize, usize, usize),
    /// Population: min, mean, max.
    pub population: (usize, f64, usize),
    /// Simulated seconds per wall second (warm-up included).
    pub speed: f64,
}

impl ChurnReport {
    /// Computes the headline figures.
    pub fn summary(&self) -> Summary {
        let eligible: Vec<&MessageRecord> = self.messages.iter().filter(|m| m.eligible).collect();
        let window = self.config.delivery_window;
        let mut latencies: Vec<f64> = eligible
            .iter()
            .filter_map(|m| {
                let d = m.delivered_at?;
                (d <= m.sent_at.saturating_add(window))
                    .then(|| secs(d.saturating_since(m.sent_at)) * 1e3)
            })
            .collect();
        latencies.sort_by(f64::total_cmp);
        let delivered = latencies.len();
        let dup_msgs = self.messages.iter().filter(|m| m.deliveries > 1).count();
        let dup_extra: u64 = self
            .messages
            .iter()
            .map(|m| u64::from(m.deliveries.saturating_sub(1)))
            .sum();
        let mut first: HashMap<(NodeIndex, NodeIndex), f64> = HashMap::new();
        let mut suspected_silent: HashSet<NodeIndex> = HashSet::new();
        let mut after_clean = 0;
        let mut false_suspicions = 0;
        for s in &self.suspicions {
            match s.relay_left {
                Some((left, Leave::Silent)) => {
                    suspected_silent.insert(s.relay);
                    let t = secs(s.at.saturating_since(left));
                    first.entry((s.client, s.relay)).or_insert(t);
                }
                Some((_, Leave::Clean)) => after_clean += 1,
                None => false_suspicions += 1,
            }
        }
        let mut detection: Vec<f64> = first.values().copied().collect();
        detection.sort_by(f64::total_cmp);
        let circuit_minutes = self.circuit_seconds / 60.0;
        let pop: Vec<usize> = self.population.iter().map(|&(_, n)| n).collect();
        let simulated = secs(Duration::from_micros(self.end.as_micros()));
        let window_end = |m: &&MessageRecord| m.sent_at.saturating_add(window);
        let to_unreachable = (
            eligible.iter().filter(|m| m.to_unreachable).count(),
            eligible
                .iter()
                .filter(|m| m.to_unreachable && m.delivered_at.is_some_and(|d| d <= window_end(m)))
                .count(),
        );
        Summary {
            sent: self.messages.len(),
            eligible: eligible.len(),
            delivered,
            to_unreachable,
            delivery_ratio: if eligible.is_empty() {
                0.0
            } else {
                delivered as f64 / eligible.len() as f64
            },
            duplicates: (dup_msgs, dup_extra),
            latency_ms: (
                percentile(&latencies, 50.0).unwrap_or(f64::NAN),
                percentile(&latencies, 99.0).unwrap_or(f64::NAN),
                latencies.last().copied().unwrap_or(f64::NAN),
            ),
            detection_s: (
                detection.len(),
                percentile(&detection, 50.0).unwrap_or(f64::NAN),
                percentile(&detection, 90.0).unwrap_or(f64::NAN),
                detection.last().copied().unwrap_or(f64::NAN),
            ),
            silent: (
                self.silent_with_circuits.len(),
                self.silent_with_circuits
                    .iter()
                    .filter(|&&(_, c)| c > 0)
                    .count(),
                suspected_silent.len(),
            ),
            after_clean,
            false_suspicions,
            circuit_minutes,
            false_per_circuit_hour: false_suspicions as f64 / (circuit_minutes / 60.0).max(1e-9),
            false_per_10k_circuit_minutes: false_suspicions as f64 * 10_000.0
                / circuit_minutes.max(1e-9),
            churn: (
                self.churn.iter().filter(|c| c.leave.is_none()).count(),
                self.churn
                    .iter()
                    .filter(|c| c.leave == Some(Leave::Clean))
                    .count(),
                self.churn
                    .iter()
                    .filter(|c| c.leave == Some(Leave::Silent))
                    .count(),
            ),
            population: (
                pop.iter().copied().min().unwrap_or(0),
                pop.iter().sum::<usize>() as f64 / pop.len().max(1) as f64,
                pop.iter().copied().max().unwrap_or(0),
            ),
            speed: simulated / self.wall_secs.max(1e-9),
        }
    }

    /// The digest as hex.
    pub fn digest_hex(&self) -> String {
        self.digest.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// A human-readable report.
    pub fn text(&self) -> String {
        let s = self.summary();
        let c = &self.config;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "churn: {} nodes, {:.0} simulated minutes after {:.0} s warm-up, seed {}",
            c.nodes,
            secs(c.duration) / 60.0,
            secs(c.warmup),
            c.seed
        );
        let _ = writeln!(
            out,
            "  sessions Weibull(shape {}, scale {:.1} min): median {:.1} min, mean {:.1} min; {:.0}% silent departures",
            c.session_shape,
            secs(c.session_scale) / 60.0,
            c.median_session_secs() / 60.0,
            c.mean_session_secs() / 60.0,
            c.silent_fraction * 100.0
        );
        let _ = writeln!(
            out,
            "  churn: {} arrivals, {} clean and {} silent departures; population min {} mean {:.0} max {}; {} nodes built",
            s.churn.0, s.churn.1, s.churn.2, s.population.0, s.population.1, s.population.2, self.nodes_built
        );
        let _ = writeln!(
            out,
            "  workload: {} senders, a message every {:.1} s each (mean); {} sent, {} refused, {} skipped (no live node known)",
            c.senders,
            secs(c.send_interval),
            s.sent,
            self.refused_sends,
            self.no_destination
        );
        let _ = writeln!(
            out,
            "  delivery ratio (live destinations, {:.0} s window): {}/{} = {:.4}",
            secs(c.delivery_window),
            s.delivered,
            s.eligible,
            s.delivery_ratio
        );
        if c.unreachable_fraction > 0.0 {
            let _ = writeln!(
                out,
                "  of which to nodes nobody can dial ({:.0}% of nodes, reached through 2 introducers): {}/{}",
                c.unreachable_fraction * 100.0,
                s.to_unreachable.1,
                s.to_unreachable.0
            );
        }
        let _ = writeln!(
            out,
            "  duplicates: {} messages delivered more than once ({} extra copies)",
            s.duplicates.0, s.duplicates.1
        );
        let _ = writeln!(
            out,
            "  delivery latency: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            s.latency_ms.0, s.latency_ms.1, s.latency_ms.2
        );
        let _ = writeln!(
            out,
            "  silent departures: {} ({} with a ready circuit through them; {} suspected by some client)",
            s.silent.0, s.silent.1, s.silent.2
        );
        let _ = writeln!(
            out,
            "  detection after a silent departure ({} client-relay pairs): p50 {:.2} s, p90 {:.2} s, max {:.2} s",
            s.detection_s.0, s.detection_s.1, s.detection_s.2, s.detection_s.3
        );
        let _ = writeln!(
            out,
            "  suspicions of relays that had left cleanly: {}; DestinationSilent: {} for up nodes, {} for departed",
            s.after_clean, self.destination_silent.0, self.destination_silent.1
        );
        let _ = writeln!(
            out,
            "  false suspicions: {} over {:.0} circuit-minutes = {:.3} per circuit-hour, {:.2} per 10,000 circuit-minutes (goal <= 1)",
            s.false_suspicions, s.circuit_minutes, s.false_per_circuit_hour, s.false_per_10k_circuit_minutes
        );
        let _ = writeln!(
            out,
            "  circuits: {} became ready, {} closed (measured period)",
            self.circuits_ready, self.circuits_closed
        );
        let reasons: Vec<String> = self
            .close_reasons
            .iter()
            .map(|(r, (n, ready))| format!("{r} {n} ({ready} ready)"))
            .collect();
        let _ = writeln!(out, "  circuit closes by reason: {}", reasons.join(", "));
        let failures: Vec<String> = self
            .failures
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let _ = writeln!(out, "  messages given up: {}", failures.join(", "));
        if !self.unreachable_failures.is_empty() {
            let why: Vec<String> = self
                .unreachable_failures
                .iter()
                .map(|(r, n)| format!("{r}: {n}"))
                .collect();
            let _ = writeln!(
                out,
                "  of them to nodes nobody can dial: {}",
                why.join("; ")
            );
        }
        let (sent, answered, passed_on) = self.lookups;
        let _ = writeln!(
            out,
            "  descriptor lookups (nodes up at the end): {sent} request cells sent, {answered} answered, {passed_on} passed on"
        );
        let d = &self.dials;
        let _ = writeln!(
            out,
            "  dials: {} connected, {} refused by the target node, {} without a free slot, {} to departed nodes, {} unanswered; links per up node at the end: mean {:.1}, max {} of {}",
            d.connected, d.refused_by_node, d.no_room, d.to_departed, d.unanswered, self.links_in_use.0, self.links_in_use.1, c.links
        );
        let bt = &self.build_timeouts;
        let timeouts: Vec<f64> = bt.iter().map(|t| t.0).collect();
        let at = |p: f64| percentile(&timeouts, p).unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "  build timeouts of up nodes at the end: min {:.2} s, p50 {:.2} s, p90 {:.2} s, max {:.2} s; {} of {} estimates rest on {}+ builds",
            at(0.0),
            at(50.0),
            at(90.0),
            at(100.0),
            bt.iter().filter(|t| t.1 >= veil_core::circuit::BuildTimeEstimator::MIN_OBSERVED).count(),
            bt.len(),
            veil_core::circuit::BuildTimeEstimator::MIN_OBSERVED,
        );
        let _ = writeln!(
            out,
            "  memory per node: {} bytes ({:.1} KiB) fixed ({} link slots); peak RSS {}",
            self.bytes_per_node,
            self.bytes_per_node as f64 / 1024.0,
            c.links,
            match self.peak_rss_kib {
                Some(k) => format!("{:.0} MiB", k as f64 / 1024.0),
                None => "unknown".into(),
            }
        );
        let _ = writeln!(
            out,
            "  simulator: {:.0} simulated s in {:.1} s wall ({}) = {:.2} simulated s per wall s; {} steps",
            secs(Duration::from_micros(self.end.as_micros())),
            self.wall_secs,
            match self.cpu_secs {
                Some(c) => format!("{c:.1} s of CPU"),
                None => "CPU time unknown".into(),
            },
            s.speed,
            self.steps
        );
        let _ = writeln!(out, "  transcript digest: {}", self.digest_hex());
        out
    }

    /// The time series, as CSV: `kind,t_s,value,flag,a,b` with times in
    /// seconds from the start of the measured period.
    ///
    /// - `message,t_sent,latency_ms (-1: not delivered in the window),eligible,sender,dest`
    /// - `arrival,t,,,node,` / `clean,t,,,node,` / `silent,t,,,node,`
    /// - `suspicion,t,seconds since the relay left (-1: it was up),1 if false,client,relay`
    /// - `population,t,count,,,`
    pub fn csv(&self) -> String {
        let t = |at: Instant| {
            secs(Duration::from_micros(at.as_micros()))
                - secs(Duration::from_micros(self.start.as_micros()))
        };
        let mut out = String::from("kind,t_s,value,flag,a,b\n");
        let window = self.config.delivery_window;
        for m in &self.messages {
            let latency = match m.delivered_at {
                Some(d) if d <= m.sent_at.saturating_add(window) => {
                    secs(d.saturating_since(m.sent_at)) * 1e3
                }
                _ => -1.0,
            };
            let _ = writeln!(
                out,
                "message,{:.6},{:.3},{},{},{}",
                t(m.sent_at),
                latency,
                u8::from(m.eligible),
                m.sender,
                m.dest
            );
        }
        for c in &self.churn {
            let kind = match c.leave {
                None => "arrival",
                Some(Leave::Clean) => "clean",
                Some(Leave::Silent) => "silent",
            };
            let _ = writeln!(out, "{kind},{:.6},,,{},", t(c.at), c.node);
        }
        for s in &self.suspicions {
            let (value, flag) = match s.relay_left {
                None => (-1.0, 1),
                Some((left, _)) => (secs(s.at.saturating_since(left)), 0),
            };
            let _ = writeln!(
                out,
                "suspicion,{:.6},{:.6},{},{},{}",
                t(s.at),
                value,
                flag,
                s.client,
                s.relay
            );
        }
        for &(at, n) in &self.population {
            let _ = writeln!(out, "population,{:.6},{},,,", t(at), n);
        }
        out
    }

    /// The headline figures as JSON.
    pub fn json(&self) -> String {
        let s = self.summary();
        let c = &self.config;
        let num = |x: f64| {
            if x.is_finite() {
                format!("{x:.6}")
            } else {
                "null".into()
            }
        };
        format!(
            concat!(
                "{{\n",
                "  \"nodes\": {}, \"minutes\": {}, \"warmup_s\": {}, \"seed\": {},\n",
                "  \"session_shape\": {}, \"session_scale_s\": {}, \"session_median_s\": {}, \"session_mean_s\": {},\n",
                "  \"silent_fraction\": {}, \"senders\": {}, \"send_interval_s\": {}, \"delivery_window_s\": {},\n",
                "  \"arrivals\": {}, \"clean_departures\": {}, \"silent_departures\": {},\n",
                "  \"population_min\": {}, \"population_mean\": {}, \"population_max\": {}, \"nodes_built\": {},\n",
                "  \"sent\": {}, \"eligible\": {}, \"delivered\": {}, \"delivery_ratio\": {},\n",
                "  \"duplicate_messages\": {}, \"duplicate_copies\": {},\n",
                "  \"latency_p50_ms\": {}, \"latency_p99_ms\": {}, \"latency_max_ms\": {},\n",
                "  \"detections\": {}, \"detection_p50_s\": {}, \"detection_p90_s\": {}, \"detection_max_s\": {},\n",
                "  \"silent_with_circuits\": {}, \"silent_suspected\": {}, \"suspicions_after_clean\": {},\n",
                "  \"false_suspicions\": {}, \"circuit_minutes\": {}, \"false_per_circuit_hour\": {}, \"false_per_10k_circuit_minutes\": {},\n",
                "  \"bytes_per_node\": {}, \"peak_rss_kib\": {},\n",
                "  \"wall_s\": {}, \"cpu_s\": {}, \"sim_s_per_wall_s\": {}, \"steps\": {},\n",
                "  \"digest\": \"{}\"\n",
                "}}\n"
            ),
            c.nodes,
            num(secs(c.duration) / 60.0),
            num(secs(c.warmup)),
            c.seed,
            num(c.session_shape),
            num(secs(c.session_scale)),
            num(c.median_session_secs()),
            num(c.mean_session_secs()),
            num(c.silent_fraction),
            c.senders,
            num(secs(c.send_interval)),
            num(secs(c.delivery_window)),
            s.churn.0,
            s.churn.1,
            s.churn.2,
            s.population.0,
            num(s.population.1),
            s.population.2,
            self.nodes_built,
            s.sent,
            s.eligible,
            s.delivered,
            num(s.delivery_ratio),
            s.duplicates.0,
            s.duplicates.1,
            num(s.latency_ms.0),
            num(s.latency_ms.1),
            num(s.latency_ms.2),
            s.detection_s.0,
            num(s.detection_s.1),
            num(s.detection_s.2),
            num(s.detection_s.3),
            s.silent.1,
            s.silent.2,
            s.after_clean,
            s.false_suspicions,
            num(s.circuit_minutes),
            num(s.false_per_circuit_hour),
            num(s.false_per_10k_circuit_minutes),
            self.bytes_per_node,
            self.peak_rss_kib
                .map_or_else(|| "null".to_string(), |k| k.to_string()),
            num(self.wall_secs),
            self.cpu_secs.map_or_else(|| "null".to_string(), num),
            num(s.speed),
            self.steps,
            self.digest_hex(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_function() {
        assert!((gamma(3.0) - 2.0).abs() < 1e-9);
        assert!((gamma(0.5) - std::f64::consts::PI.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn weibull_median_and_mean() {
        let c = ChurnConfig::default();
        assert!((c.median_session_secs() / 60.0 - 10.09).abs() < 0.05);
        assert!((c.mean_session_secs() / 60.0 - 42.0).abs() < 1e-6);
    }
}
