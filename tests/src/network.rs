//! The simulated network: a clock, stream wires between nodes, and a queue
//! of scheduled happenings processed in time order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use veil_core::identity::{Address, Identity, NodeId, Transport};
use veil_core::link::{Cell, LinkRole};
use veil_core::node::{DialRequest, Event, LinkId, Node, NodeConfig, SendCellError};
use veil_core::time::{Duration, Instant};

use crate::conditions::{StreamConditions, SEND_BUFFER};
use crate::sim_node::{Delivered, NodeIndex, SimNode};

/// Names a simulated connection between two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WireId(pub usize);

/// One direction of a wire. `Forward` is from the dialling node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From the node that dialled to the node that accepted.
    Forward,
    /// From the node that accepted to the node that dialled.
    Backward,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::Forward => 0,
            Direction::Backward => 1,
        }
    }
}

/// Mutates bytes in flight: `(stream offset of the first byte, bytes)`.
pub type Tamper = Box<dyn FnMut(u64, &mut [u8])>;

struct Wire {
    /// `ends[0]` dialled, `ends[1]` accepted.
    ends: [(NodeIndex, LinkId); 2],
    conditions: StreamConditions,
    open: [bool; 2],
    silenced: [bool; 2],
    tamper: [Option<Tamper>; 2],
    last_arrival: [Instant; 2],
    /// On a bandwidth-limited wire, when the last byte given to each
    /// direction leaves the sender.
    busy_until: [Instant; 2],
    /// Bytes that reached the receiver but that it has not consumed yet.
    backlog: [VecDeque<u8>; 2],
    sent: [u64; 2],
}

enum Happening {
    Deliver {
        wire: WireId,
        dir: Direction,
        bytes: Vec<u8>,
    },
    Timer {
        node: NodeIndex,
    },
    TransportClosed {
        node: NodeIndex,
        link: LinkId,
    },
    /// A dial the node asked for reaches its target (or fails).
    Dial {
        node: NodeIndex,
        request: DialRequest,
    },
}

struct Scheduled {
    at: Instant,
    seq: u64,
    what: Happening,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A deterministic simulated network of veil nodes.
pub struct Sim {
    nodes: Vec<SimNode>,
    wires: Vec<Wire>,
    by_link: HashMap<(NodeIndex, LinkId), (WireId, usize)>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    now: Instant,
    seq: u64,
    rng: ChaCha20Rng,
    transcript: Sha256,
    steps: u64,
    /// What nodes wrote on links with no wire (opened by a test).
    unwired_output: HashMap<(NodeIndex, LinkId), Vec<u8>>,
    /// Simulated addresses, for dial requests, with their transport.
    addresses: HashMap<(Transport, SocketAddr), NodeIndex>,
    /// Nodes whose UDP is blocked: QUIC dials to or from them go unanswered.
    udp_blocked: std::collections::HashSet<NodeIndex>,
    /// Conditions of wires made for dial requests.
    dial_conditions: StreamConditions,
    /// When each node blocked on a full bandwidth-limited wire is woken.
    room_wakeups: HashMap<NodeIndex, Instant>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("wires", &self.wires.len())
            .finish()
    }
}

/// Largest single transmit the simulator asks a node for.
const TRANSMIT_BUFFER: usize = 16 * 1024 + 64;

impl Sim {
    /// An empty network whose every random choice comes from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Sim {
            nodes: Vec::new(),
            wires: Vec::new(),
            by_link: HashMap::new(),
            queue: BinaryHeap::new(),
            now: Instant::from_millis(1_000),
            seq: 0,
            rng: ChaCha20Rng::from_seed(seed_bytes),
            transcript: Sha256::new(),
            steps: 0,
            unwired_output: HashMap::new(),
            addresses: HashMap::new(),
            udp_blocked: Default::default(),
            dial_conditions: StreamConditions::LAN,
            room_wakeups: HashMap::new(),
        }
    }

    /// Conditions of the wires made when nodes dial each other.
    pub fn set_dial_conditions(&mut self, conditions: StreamConditions) {
        self.dial_conditions = conditions;
    }

    /// The simulated address of node `index`: every node has its own /16,
    /// so path selection's prefix rule never rules two nodes out together.
    pub fn address_of(index: NodeIndex) -> Address {
        let ip = Ipv4Addr::new(100 + (index / 250) as u8, (index % 250) as u8, 0, 1);
        Address {
            transport: Transport::Tcp,
            socket: SocketAddr::new(IpAddr::V4(ip), 7000),
        }
    }

    /// The simulated QUIC address of node `index` (same IP, port 7001).
    pub fn quic_address_of(index: NodeIndex) -> Address {
        let tcp = Self::address_of(index);
        Address {
            transport: Transport::Quic,
            socket: SocketAddr::new(tcp.socket.ip(), 7001),
        }
    }

    /// Adds a node that advertises a simulated TCP address, so that others
    /// can dial it when their circuits need a link to it.
    pub fn add_addressed_node(&mut self, config: NodeConfig, links: usize) -> NodeIndex {
        self.add_node_over(config, links, &[Transport::Tcp])
    }

    /// Adds a node that listens on (and advertises) an address per
    /// transport in `transports`. Set `config.quic_dials` for it to dial
    /// QUIC too.
    pub fn add_node_over(
        &mut self,
        config: NodeConfig,
        links: usize,
        transports: &[Transport],
    ) -> NodeIndex {
        let index = self.add_node(config, links);
        let addresses: Vec<Address> = transports
            .iter()
            .map(|t| match t {
                Transport::Tcp => Self::address_of(index),
                Transport::Quic => Self::quic_address_of(index),
            })
            .collect();
        for a in &addresses {
            self.addresses.insert((a.transport, a.socket), index);
        }
        let now = self.now;
        self.with_node(index, |n| n.set_advertised_addresses(now, &addresses));
        index
    }

    /// Blocks (or unblocks) UDP for a node: QUIC dials to or from it are
    /// never answered, as behind a firewall that drops UDP.
    pub fn set_udp_blocked(&mut self, index: NodeIndex, blocked: bool) {
        if blocked {
            self.udp_blocked.insert(index);
        } else {
            self.udp_blocked.remove(&index);
        }
    }

    /// Kills a node: its wires are cut and it never runs again.
    pub fn kill(&mut self, index: NodeIndex) {
        let wires: Vec<WireId> = self
            .by_link
            .iter()
            .filter(|((n, _), _)| *n == index)
            .map(|(_, (w, _))| *w)
            .collect();
        self.nodes[index].alive = false;
        for wire in wires {
            let w = &mut self.wires[wire.0];
            let ends = w.ends;
            w.open = [false, false];
            for (node, link) in ends {
                self.by_link.remove(&(node, link));
                if node != index {
                    let now = self.now;
                    let _ = self.nodes[node].core.handle_transport_closed(now, link);
                    self.pump(node);
                }
            }
        }
    }

    /// `from` queues a message to `to` (by node id).
    pub fn send_message(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        bytes: &[u8],
    ) -> Result<veil_core::message::MessageId, veil_core::node::SendMessageError> {
        let dest = self.node_id(to);
        let now = self.now;
        let result = self.nodes[from].core.send_message(now, dest, bytes);
        self.pump(from);
        result
    }

    /// Lets a node's application take messages again (after a test
    /// stalled it), taking what waits.
    pub fn resume_taking(&mut self, index: NodeIndex) {
        self.nodes[index].takes_messages = true;
        self.pump(index);
    }

    /// The simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Adds a node with `links` link slots; its identity and seed come from
    /// the simulation seed.
    pub fn add_node(&mut self, config: NodeConfig, links: usize) -> NodeIndex {
        let mut secret = [0u8; 32];
        self.rng.fill_bytes(&mut secret);
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let core = Node::new(
            config,
            Identity::from_secret_bytes(secret),
            seed,
            SimNode::link_storage(links),
            SimNode::message_storage(),
        );
        self.nodes.push(SimNode::new(core));
        self.nodes.len() - 1
    }

    /// The node at `index`.
    pub fn node(&self, index: NodeIndex) -> &SimNode {
        &self.nodes[index]
    }

    /// The node at `index`, to change how the simulator drives it (for
    /// example to stall its application).
    pub fn node_mut(&mut self, index: NodeIndex) -> &mut SimNode {
        &mut self.nodes[index]
    }

    /// Runs `f` on a node's state machine (for commands the simulator has
    /// no helper for), then lets the node transmit.
    pub fn with_node<R>(
        &mut self,
        index: NodeIndex,
        f: impl FnOnce(&mut crate::SimNodeCore) -> R,
    ) -> R {
        let result = f(&mut self.nodes[index].core);
        self.pump(index);
        result
    }

    /// The id of the node at `index`.
    pub fn node_id(&self, index: NodeIndex) -> NodeId {
        self.nodes[index].core.node_id()
    }

    /// `from` dials `to`, expecting `to`'s identity.
    pub fn connect(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        conditions: StreamConditions,
    ) -> WireId {
        let expected = self.node_id(to);
        self.connect_expecting(from, to, Some(expected), conditions)
    }

    /// `from` dials `to`, expecting `expected` (or anyone, with `None`).
    pub fn connect_expecting(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        expected: Option<NodeId>,
        conditions: StreamConditions,
    ) -> WireId {
        self.connect_over(from, to, expected, conditions, None)
    }

    fn connect_over(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        expected: Option<NodeId>,
        conditions: StreamConditions,
        transport: Option<Transport>,
    ) -> WireId {
        let now = self.now;
        let open = |node: &mut SimNode, role, expected| match transport {
            Some(t) => node.core.open_link_over(now, role, expected, t),
            None => node.core.open_link(now, role, expected),
        };
        let a = open(&mut self.nodes[from], LinkRole::Initiator, expected)
            .expect("dialling node has a free link slot");
        let b = open(&mut self.nodes[to], LinkRole::Responder, None)
            .expect("accepting node has a free link slot");
        let id = WireId(self.wires.len());
        self.wires.push(Wire {
            ends: [(from, a), (to, b)],
            conditions,
            open: [true, true],
            silenced: [false, false],
            tamper: [None, None],
            last_arrival: [now, now],
            busy_until: [now, now],
            backlog: [VecDeque::new(), VecDeque::new()],
            sent: [0, 0],
        });
        self.by_link.insert((from, a), (id, 0));
        self.by_link.insert((to, b), (id, 1));
        self.pump(from);
        self.pump(to);
        id
    }

    /// The node and link at one end of a wire (`Forward` = the dialler's).
    pub fn end(&self, wire: WireId, dir: Direction) -> (NodeIndex, LinkId) {
        self.wires[wire.0].ends[dir.index()]
    }

    /// Opens an inbound link on `node` with nobody behind it: a half-open
    /// connection as a flooding attacker makes.
    pub fn open_half_open(&mut self, node: NodeIndex) -> Option<LinkId> {
        let now = self.now;
        let link = self.nodes[node]
            .core
            .open_link(now, LinkRole::Responder, None)
            .ok();
        self.pump(node);
        link
    }

    /// Opens an outbound link on `node` to nobody, to probe the link table.
    pub fn try_dial(&mut self, node: NodeIndex) -> Result<LinkId, veil_core::node::OpenLinkError> {
        let now = self.now;
        let link = self.nodes[node]
            .core
            .open_link(now, LinkRole::Initiator, None);
        self.pump(node);
        link
    }

    /// Takes what `node` wrote on a link that has no wire (one made with
    /// [`open_half_open`](Self::open_half_open) or [`try_dial`](Self::try_dial)).
    pub fn take_unwired_output(&mut self, node: NodeIndex, link: LinkId) -> Vec<u8> {
        self.unwired_output
            .remove(&(node, link))
            .unwrap_or_default()
    }

    /// Feeds raw bytes into a link as if they came from the network.
    pub fn inject(&mut self, node: NodeIndex, link: LinkId, bytes: &[u8]) {
        let now = self.now;
        let _ = self.nodes[node].core.handle_data(now, link, bytes);
        self.pump(node);
    }

    /// Queues a cell on a node's link and lets it transmit.
    pub fn send_cell(
        &mut self,
        node: NodeIndex,
        link: LinkId,
        cell: &Cell,
    ) -> Result<(), SendCellError> {
        let now = self.now;
        let result = self.nodes[node].core.send_cell(now, link, cell);
        self.pump(node);
        result
    }

    /// Closes a node's link (it sends a `Close` frame if established).
    pub fn close_link(
        &mut self,
        node: NodeIndex,
        link: LinkId,
        reason: veil_core::link::CloseReason,
    ) {
        let now = self.now;
        let _ = self.nodes[node].core.close_link(now, link, reason);
        self.pump(node);
    }

    /// Stops delivering one direction of a wire, bytes already in flight
    /// included: they vanish as if the path went dark while both TCP
    /// connections stayed up.
    pub fn silence(&mut self, wire: WireId, dir: Direction) {
        self.wires[wire.0].silenced[dir.index()] = true;
    }

    /// Mutates bytes in flight in one direction.
    pub fn tamper(&mut self, wire: WireId, dir: Direction, f: Tamper) {
        self.wires[wire.0].tamper[dir.index()] = Some(f);
    }

    /// Cuts a wire: both ends see their transport close.
    pub fn cut(&mut self, wire: WireId) {
        let ends = self.wires[wire.0].ends;
        self.wires[wire.0].open = [false, false];
        for (node, link) in ends {
            let now = self.now;
            let _ = self.nodes[node].core.handle_transport_closed(now, link);
            self.pump(node);
        }
    }

    /// SHA-256 over every byte every node transmitted, with who and when.
    /// Two runs with the same seed and inputs must agree.
    pub fn transcript_digest(&self) -> [u8; 32] {
        self.transcript.clone().finalize().into()
    }

    /// Runs the network for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now.saturating_add(d);
        self.run_until(until);
    }

    /// Processes every happening scheduled up to `until`, then sets the clock to it.
    pub fn run_until(&mut self, until: Instant) {
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > until {
                break;
            }
            let Some(Reverse(next)) = self.queue.pop() else {
                break;
            };
            self.steps += 1;
            assert!(
                self.steps < 50_000_000,
                "simulation ran away: too many steps"
            );
            self.now = next.at.max(self.now);
            self.process(next.what);
        }
        self.now = until.max(self.now);
    }

    /// Runs until `done` holds, checking after every happening, for at most `limit`.
    /// Returns whether `done` held.
    pub fn run_until_true(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let until = self.now.saturating_add(limit);
        while !done(self) {
            let Some(Reverse(next)) = self.queue.peek() else {
                return false;
            };
            if next.at > until {
                self.now = until;
                return false;
            }
            let Some(Reverse(next)) = self.queue.pop() else {
                return false;
            };
            self.steps += 1;
            self.now = next.at.max(self.now);
            self.process(next.what);
        }
        true
    }

    fn schedule(&mut self, at: Instant, what: Happening) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            what,
        }));
    }

    fn process(&mut self, what: Happening) {
        let now = self.now;
        let node_of = match &what {
            Happening::Deliver { wire, dir, .. } => self.wires[wire.0].ends[1 - dir.index()].0,
            Happening::Timer { node }
            | Happening::TransportClosed { node, .. }
            | Happening::Dial { node, .. } => *node,
        };
        if !self.nodes[node_of].alive {
            return;
        }
        match what {
            Happening::Dial { node, request } => {
                let transport = request.address.transport;
                let target = self
                    .addresses
                    .get(&(transport, request.address.socket))
                    .copied();
                let blocked = transport == Transport::Quic
                    && (self.udp_blocked.contains(&node)
                        || target.is_some_and(|t| self.udp_blocked.contains(&t)));
                if blocked {
                    // Dropped UDP: no answer at all; the dialler's timeout
                    // (or a raced TCP dial) decides.
                    return;
                }
                let reachable = target.filter(|t| self.nodes[*t].alive && *t != node);
                match reachable {
                    Some(to) => {
                        let conditions = self.dial_conditions;
                        let has_room =
                            |n: &SimNode| n.core.link_capacity() > n.core.links().count();
                        let ok = has_room(&self.nodes[to]) && has_room(&self.nodes[node]);
                        if ok {
                            self.connect_over(node, to, request.peer, conditions, Some(transport));
                        } else {
                            self.nodes[node].core.dial_failed(now, &request);
                            self.pump(node);
                        }
                    }
                    None => {
                        self.nodes[node].core.dial_failed(now, &request);
                        self.pump(node);
                    }
                }
            }
            Happening::Deliver { wire, dir, bytes } => {
                let w = &mut self.wires[wire.0];
                let receiver = 1 - dir.index();
                if !w.open[receiver] || w.silenced[dir.index()] {
                    return;
                }
                w.backlog[dir.index()].extend(bytes);
                let node = w.ends[receiver].0;
                self.feed_backlog(wire, dir);
                self.pump(node);
            }
            Happening::Timer { node } => {
                self.nodes[node].scheduled_timeout = None;
                if self.nodes[node]
                    .core
                    .poll_timeout()
                    .is_some_and(|t| t <= now)
                {
                    self.nodes[node].core.handle_timeout(now);
                }
                self.pump(node);
            }
            Happening::TransportClosed { node, link } => {
                let _ = self.nodes[node].core.handle_transport_closed(now, link);
                self.pump(node);
            }
        }
    }

    /// Offers the receiver everything waiting on one direction of a wire.
    fn feed_backlog(&mut self, wire: WireId, dir: Direction) -> bool {
        let now = self.now;
        let w = &mut self.wires[wire.0];
        let (node, link) = w.ends[1 - dir.index()];
        let backlog = &mut w.backlog[dir.index()];
        if backlog.is_empty() {
            return false;
        }
        let data = backlog.make_contiguous();
        let consumed = self.nodes[node]
            .core
            .handle_data(now, link, data)
            .unwrap_or(data.len());
        backlog.drain(..consumed);
        consumed > 0
    }

    /// Drains a node's outputs until it is quiet: transmits onto wires,
    /// events into its log, then reschedules its timer.
    fn pump(&mut self, node: NodeIndex) {
        let mut buf = vec![0u8; TRANSMIT_BUFFER];
        loop {
            let mut progressed = false;
            let now = self.now;
            progressed |= self.take_transmits(node, &mut buf);
            while let Some(request) = self.nodes[node].core.poll_dial() {
                let at = now.saturating_add(self.dial_conditions.latency);
                self.schedule(at, Happening::Dial { node, request });
                progressed = true;
            }
            if self.nodes[node].takes_messages {
                let mut buf = vec![0u8; crate::sim_node::SIM_MSG];
                while let Some(m) = self.nodes[node].core.poll_message(&mut buf) {
                    self.nodes[node].delivered.push(Delivered {
                        at: now,
                        sender: m.sender,
                        bytes: buf[..m.len].to_vec(),
                    });
                    progressed = true;
                }
            }
            while let Some(event) = self.nodes[node].core.poll_event() {
                if let Event::LinkClosed { link, .. } = &event {
                    self.on_link_closed(node, *link);
                }
                self.nodes[node].events.push((now, event));
                progressed = true;
            }
            // Events drained: input held back for lack of room can go in now.
            let waiting: Vec<(WireId, Direction)> = self
                .by_link
                .iter()
                .filter(|((n, _), _)| *n == node)
                .map(|(_, &(wire, side))| {
                    (
                        wire,
                        if side == 0 {
                            Direction::Backward
                        } else {
                            Direction::Forward
                        },
                    )
                })
                .filter(|(wire, dir)| !self.wires[wire.0].backlog[dir.index()].is_empty())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            for (wire, dir) in waiting {
                progressed |= self.feed_backlog(wire, dir);
            }
            if !progressed {
                break;
            }
        }
        let deadline = self.nodes[node].core.poll_timeout();
        if let Some(at) = deadline {
            if self.nodes[node].scheduled_timeout != Some(at) {
                self.nodes[node].scheduled_timeout = Some(at);
                let at = at.max(self.now);
                self.schedule(at, Happening::Timer { node });
            }
        }
    }

    /// Moves a node's outgoing messages onto its wires. Wires without a
    /// bandwidth limit take everything; a limited one takes bytes only
    /// while its sender's buffer has room, and the node is woken when it
    /// drains, so the node's own queue for that link fills meanwhile.
    fn take_transmits(&mut self, node: NodeIndex, buf: &mut [u8]) -> bool {
        let now = self.now;
        let limited = |sim: &Sim, link: LinkId| {
            let &(wire, side) = sim.by_link.get(&(node, link))?;
            let w = &sim.wires[wire.0];
            let bandwidth = w.conditions.bandwidth?;
            let buffered = SEND_BUFFER * 1_000_000 / bandwidth.max(1);
            let busy = w.busy_until[side].as_micros();
            Some(Instant::from_micros(busy.saturating_sub(buffered)))
        };
        let mut progressed = false;
        let any_limited = self.nodes[node]
            .core
            .links()
            .any(|l| limited(self, l.link).is_some());
        if !any_limited {
            while let Some(t) = self.nodes[node].core.poll_transmit(now, buf) {
                self.transmit(node, t.link, &buf[..t.len]);
                progressed = true;
            }
            return progressed;
        }
        let links: Vec<LinkId> = self.nodes[node].core.links().map(|l| l.link).collect();
        for link in links {
            loop {
                if let Some(drains_by) = limited(self, link) {
                    if drains_by > now {
                        let pending = self.room_wakeups.get(&node).copied();
                        if !pending.is_some_and(|at| at > now && at <= drains_by) {
                            self.room_wakeups.insert(node, drains_by);
                            self.schedule(drains_by, Happening::Timer { node });
                        }
                        break;
                    }
                }
                let Some(len) = self.nodes[node].core.poll_link_transmit(now, link, buf) else {
                    break;
                };
                self.transmit(node, link, &buf[..len]);
                progressed = true;
            }
        }
        progressed
    }

    fn transmit(&mut self, node: NodeIndex, link: LinkId, bytes: &[u8]) {
        self.nodes[node].bytes_sent += bytes.len() as u64;
        self.transcript.update(self.now.as_micros().to_be_bytes());
        self.transcript.update((node as u64).to_be_bytes());
        self.transcript.update(link.to_u32().to_be_bytes());
        self.transcript.update((bytes.len() as u64).to_be_bytes());
        self.transcript.update(bytes);
        let Some(&(wire, side)) = self.by_link.get(&(node, link)) else {
            // A link the test drives by hand: keep its output for the test.
            self.unwired_output
                .entry((node, link))
                .or_default()
                .extend_from_slice(bytes);
            return;
        };
        let dir = if side == 0 {
            Direction::Forward
        } else {
            Direction::Backward
        };
        let w = &mut self.wires[wire.0];
        if !w.open[side] {
            return;
        }
        // The tamper hook sits at the sender, so it also sees (and can
        // record) bytes that a silenced path then loses.
        let mut bytes = bytes.to_vec();
        let offset = w.sent[dir.index()];
        w.sent[dir.index()] += bytes.len() as u64;
        if let Some(tamper) = w.tamper[dir.index()].as_mut() {
            tamper(offset, &mut bytes);
        }
        if w.silenced[dir.index()] {
            return;
        }
        let conditions = w.conditions;
        // A limited wire sends its bytes after those already queued, at its
        // rate; they then travel with the wire's latency.
        let departs = match conditions.bandwidth {
            Some(bandwidth) => {
                let start = w.busy_until[dir.index()].max(self.now);
                let serialise = bytes.len() as u64 * 1_000_000 / bandwidth.max(1);
                let done = start.saturating_add(Duration::from_micros(serialise));
                w.busy_until[dir.index()] = done;
                done
            }
            None => self.now,
        };
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let take = if conditions.max_chunk >= rest.len() {
                rest.len()
            } else {
                1 + (self.rng.next_u64() % conditions.max_chunk as u64) as usize
            };
            let (chunk, tail) = rest.split_at(take);
            rest = tail;
            let jitter = match conditions.jitter.as_micros() {
                0 => 0,
                j => self.rng.next_u64() % j,
            };
            let w = &mut self.wires[wire.0];
            let at = departs
                .saturating_add(conditions.latency)
                .saturating_add(Duration::from_micros(jitter))
                .max(w.last_arrival[dir.index()]);
            w.last_arrival[dir.index()] = at;
            self.schedule(
                at,
                Happening::Deliver {
                    wire,
                    dir,
                    bytes: chunk.to_vec(),
                },
            );
        }
    }

    fn on_link_closed(&mut self, node: NodeIndex, link: LinkId) {
        let Some((wire, side)) = self.by_link.remove(&(node, link)) else {
            return;
        };
        let w = &mut self.wires[wire.0];
        w.open[side] = false;
        let other = 1 - side;
        if w.open[other] {
            // Like a TCP FIN: the other end learns after the bytes in flight.
            let (peer, peer_link) = w.ends[other];
            let dir = if side == 0 { 0 } else { 1 };
            let at = self
                .now
                .saturating_add(w.conditions.latency)
                .max(w.last_arrival[dir]);
            self.schedule(
                at,
                Happening::TransportClosed {
                    node: peer,
                    link: peer_link,
                },
            );
        }
    }
}
