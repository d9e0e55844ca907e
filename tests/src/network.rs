//! The simulated network: a clock, stream wires between nodes, and a queue
//! of scheduled happenings processed in time order. This file is the
//! simulator's public face; [`crate::net`] moves the bytes.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rand_core::Rng;
use veil_core::identity::{Address, Identity, NodeId, Transport};
use veil_core::link::{Cell, CloseReason};
use veil_core::message::MessageId;
use veil_core::node::{
    LinkId, Node, NodeConfig, NodeInput, OpenLink, OpenLinkError, Receive, SendCellError,
    SendMessage, SendMessageError, SetAddresses, TransportClosed,
};
use veil_core::time::{Duration, Instant};

use crate::conditions::StreamConditions;
use crate::net::{DialStats, Happening, Net};
use crate::profile::{link_storage, message_storage, SimNodeCore};
use crate::sim_node::{NodeIndex, SimNode};
use crate::wire::{BlackHole, Direction, WireId, WireLayer};

/// Mutates bytes in flight: `(stream offset of the first byte, bytes)`.
pub type Tamper = Box<dyn FnMut(u64, &mut [u8])>;

/// A deterministic simulated network of veil nodes.
pub struct Sim {
    nodes: Vec<SimNode>,
    net: Net,
    /// The buffer every node's outputs are drained into.
    buf: Vec<u8>,
    /// Nodes whose connections come from another address than their own
    /// ([`Sim::set_source_address`]).
    sources: HashMap<NodeIndex, IpAddr>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.net.now)
            .field("nodes", &self.nodes.len())
            .field("wires", &self.net.wires.len())
            .finish()
    }
}

/// An address in a /16 no simulated node has ([`Sim::address_of`] uses
/// 101.0.0.0 and up): where flooding attackers connect from.
pub const ATTACKER_NETWORK: Ipv4Addr = Ipv4Addr::new(66, 66, 0, 1);

/// Largest single output the simulator takes from a node: a 16 KiB link
/// message, or a whole message.
const OUTPUT_BUFFER: usize = 16 * 1024 + 64;

impl Sim {
    /// An empty network whose every random choice comes from `seed`.
    pub fn new(seed: u64) -> Self {
        Sim {
            nodes: Vec::new(),
            net: Net::new(seed),
            buf: vec![0u8; OUTPUT_BUFFER.max(crate::profile::SIM_MSG)],
            sources: HashMap::new(),
        }
    }

    /// Conditions of the wires made when nodes dial each other.
    pub fn set_dial_conditions(&mut self, conditions: StreamConditions) {
        self.net.dial_conditions = conditions;
    }

    /// The simulated address of node `index`: every node has its own /16,
    /// so path selection's prefix rule never rules two nodes out together.
    /// The addresses are public (101.0.0.0 and up, clear of the shared
    /// 100.64.0.0/10), so relays extend to them on the default dial policy.
    pub fn address_of(index: NodeIndex) -> Address {
        let ip = Ipv4Addr::new(101 + (index / 250) as u8, (index % 250) as u8, 0, 1);
        Address {
            transport: Transport::Tcp,
            socket: SocketAddr::new(IpAddr::V4(ip), 7000),
        }
    }

    /// Makes every connection `index` makes appear to come from `ip` (it
    /// still listens at [`address_of`](Self::address_of)): for many nodes
    /// in one network, as an attacker's throwaway identities are.
    pub fn set_source_address(&mut self, index: NodeIndex, ip: IpAddr) {
        self.sources.insert(index, ip);
    }

    /// Where connections from `index` come from.
    fn source_ip(&self, index: NodeIndex) -> IpAddr {
        self.sources
            .get(&index)
            .copied()
            .unwrap_or_else(|| Self::address_of(index).socket.ip())
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

    /// Adds a node that listens on (and advertises) `address`, whatever
    /// its range: a node at a private or loopback address, say.
    pub fn add_node_at(&mut self, config: NodeConfig, links: usize, address: Address) -> NodeIndex {
        let index = self.add_node(config, links);
        self.net
            .addresses
            .insert((address.transport, address.socket), index);
        self.set_source_address(index, address.socket.ip());
        self.handle(index, SetAddresses::from_slice(&[address]));
        index
    }

    /// Adds a node behind NAT: it is given a private address (10.x.y.1)
    /// that nobody can dial, while its own connections come from its
    /// public one ([`address_of`](Self::address_of), the NAT's), as a home
    /// node's do.
    pub fn add_node_behind_nat(&mut self, config: NodeConfig, links: usize) -> NodeIndex {
        let index = self.add_node(config, links);
        let private = Address {
            transport: Transport::Tcp,
            socket: SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(
                    10,
                    (index / 250) as u8,
                    (index % 250) as u8,
                    1,
                )),
                7000,
            ),
        };
        self.handle(index, SetAddresses::from_slice(&[private]));
        index
    }

    /// Every address `node` asked to dial, in order.
    pub fn dialled_by(&self, node: NodeIndex) -> Vec<SocketAddr> {
        self.net
            .dialled
            .iter()
            .filter(|(n, _)| *n == node)
            .map(|(_, a)| *a)
            .collect()
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
            self.net.addresses.insert((a.transport, a.socket), index);
        }
        self.handle(index, SetAddresses::from_slice(&addresses));
        index
    }

    /// Blocks (or unblocks) UDP for a node: QUIC dials to or from it are
    /// never answered, as behind a firewall that drops UDP.
    pub fn set_udp_blocked(&mut self, index: NodeIndex, blocked: bool) {
        if blocked {
            self.net.udp_blocked.insert(index);
        } else {
            self.net.udp_blocked.remove(&index);
        }
    }

    /// Kills a node: its wires are cut and it never runs again.
    pub fn kill(&mut self, index: NodeIndex) {
        // In wire order, so that the peers learn in the same order on
        // every run (a pass over a `HashMap` here made the order, and so
        // the transcript, differ from run to run).
        let wires: Vec<WireId> = self
            .net
            .wires_of(index)
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        self.nodes[index].alive = false;
        self.nodes[index].killed = true;
        for wire in wires {
            let w = &mut self.net.wires[wire.0];
            let ends = w.ends;
            w.open = [false, false];
            for (node, link) in ends {
                self.net.unlink(node, link);
                if node != index {
                    let _ = self.handle(node, TransportClosed { link });
                }
            }
        }
    }

    /// Freezes a node, as `SIGSTOP` does a process: its connections stay
    /// open, but it reads nothing, sends nothing, runs no timer and answers
    /// no dial, until [`thaw`](Self::thaw). What reaches it meanwhile is lost
    /// (a frozen peer's TCP window closes; the simulator drops instead).
    pub fn freeze(&mut self, index: NodeIndex) {
        self.nodes[index].alive = false;
    }

    /// Lets a frozen node run again.
    pub fn thaw(&mut self, index: NodeIndex) {
        self.nodes[index].alive = true;
        self.nodes[index].scheduled_timeout = None;
        let now = self.net.now;
        self.nodes[index].core.handle(now, veil_core::node::Timeout);
        self.pump(index);
    }

    /// Delays every byte `index` sends by `fixed` plus a random part up to
    /// `random` (order kept): a slow or overloaded node, alive but late.
    pub fn set_node_delay(&mut self, index: NodeIndex, fixed: Duration, random: Duration) {
        self.net.node_delay.insert(index, (fixed, random));
    }

    /// Gives node `index` an access latency: added to the one-way latency
    /// of every wire made for a dial to or from it (on top of
    /// [`set_dial_conditions`](Self::set_dial_conditions)'s), so that
    /// wires differ as paths across the Internet do. A wire between two
    /// nodes carries both nodes' access latencies.
    pub fn set_access_latency(&mut self, index: NodeIndex, latency: Duration) {
        self.net.access_latency.insert(index, latency);
    }

    /// What became of the dials nodes asked for.
    pub fn dial_stats(&self) -> DialStats {
        self.net.dials
    }

    /// Happenings processed so far, by kind: deliveries, timers, closed
    /// transports, dials, writable wake-ups, and any kind for a node that
    /// was not running (dropped).
    pub fn happening_counts(&self) -> [u64; 6] {
        self.net.happenings
    }

    /// Simulation steps (happenings processed) so far.
    pub fn steps(&self) -> u64 {
        self.net.steps
    }

    /// Happenings waiting in the schedule.
    pub fn pending(&self) -> usize {
        self.net.queue.len()
    }

    /// `from` queues a message to `to` (by node id).
    pub fn send_message(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        bytes: &[u8],
    ) -> Result<MessageId, SendMessageError> {
        let destination = self.node_id(to);
        self.handle(
            from,
            SendMessage {
                destination,
                message: bytes,
            },
        )
    }

    /// The simulated time.
    pub fn now(&self) -> Instant {
        self.net.now
    }

    /// Adds a node with `links` link slots; its identity and seed come from
    /// the simulation seed.
    pub fn add_node(&mut self, config: NodeConfig, links: usize) -> NodeIndex {
        let mut secret = [0u8; 32];
        self.net.rng.fill_bytes(&mut secret);
        let mut seed = [0u8; 32];
        self.net.rng.fill_bytes(&mut seed);
        let core = Node::new(
            config,
            Identity::from_secret_bytes(secret),
            seed,
            link_storage(links),
            message_storage(),
        );
        self.nodes.push(SimNode::new(core));
        self.nodes.len() - 1
    }

    /// The node at `index`.
    pub fn node(&self, index: NodeIndex) -> &SimNode {
        &self.nodes[index]
    }

    /// The node at `index`, to read or change its record.
    pub fn node_mut(&mut self, index: NodeIndex) -> &mut SimNode {
        &mut self.nodes[index]
    }

    /// Hands `input` to a node at the simulated time, then drains it.
    pub fn handle<'a, I: NodeInput<'a>>(&mut self, index: NodeIndex, input: I) -> I::Outcome {
        let now = self.net.now;
        let outcome = self.nodes[index].core.handle(now, input);
        self.pump(index);
        outcome
    }

    /// Runs `f` on a node's state machine (for what is not an input, such
    /// as a test hook), then drains it.
    pub fn with_node<R>(&mut self, index: NodeIndex, f: impl FnOnce(&mut SimNodeCore) -> R) -> R {
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

    pub(crate) fn connect_over(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        expected: Option<NodeId>,
        conditions: StreamConditions,
        transport: Option<Transport>,
    ) -> WireId {
        self.try_connect_over(from, to, expected, conditions, transport, false)
            .expect("both nodes admit the link")
    }

    /// `from` dials `to` as an anonymous initiator (link spec §3.1), as it
    /// does for its own circuits' first hops.
    pub fn connect_anonymously(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        conditions: StreamConditions,
    ) -> WireId {
        let expected = self.node_id(to);
        self.try_connect_over(from, to, Some(expected), conditions, None, true)
            .expect("both nodes admit the link")
    }

    /// `from` dials `to`, which may refuse the connection (its table is
    /// full, or `from`'s network holds its share): then `from` sees its
    /// transport close, as after a TCP reset.
    pub fn try_connect(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        conditions: StreamConditions,
    ) -> Result<WireId, OpenLinkError> {
        let expected = self.node_id(to);
        self.try_connect_over(from, to, Some(expected), conditions, None, false)
    }

    fn try_connect_over(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        expected: Option<NodeId>,
        conditions: StreamConditions,
        transport: Option<Transport>,
        anonymous: bool,
    ) -> Result<WireId, OpenLinkError> {
        let now = self.net.now;
        let dialled = OpenLink {
            transport,
            anonymous,
            ..OpenLink::dialled(expected, Transport::Tcp, Self::address_of(to).socket.ip())
        };
        let accepted = OpenLink {
            transport,
            ..OpenLink::accepted(Transport::Tcp, self.source_ip(from))
        };
        let a = self.nodes[from].core.handle(now, dialled)?;
        let b = match self.nodes[to].core.handle(now, accepted) {
            Ok(b) => b,
            Err(refused) => {
                let _ = self.handle(from, TransportClosed { link: a });
                self.pump(to);
                return Err(refused);
            }
        };
        let id = self.net.add_wire([(from, a), (to, b)], conditions);
        self.pump(from);
        self.pump(to);
        Ok(id)
    }

    /// The node and link at one end of a wire (`Forward` = the dialler's).
    pub fn end(&self, wire: WireId, dir: Direction) -> (NodeIndex, LinkId) {
        self.net.wires[wire.0].ends[dir.index()]
    }

    /// Opens an inbound link on `node` from `from` with nobody behind it:
    /// a half-open connection as a flooding attacker makes.
    pub fn open_half_open_from(&mut self, node: NodeIndex, from: IpAddr) -> Option<LinkId> {
        self.handle(node, OpenLink::accepted(Transport::Tcp, from))
            .ok()
    }

    /// [`open_half_open_from`](Self::open_half_open_from) an address of
    /// [`ATTACKER_NETWORK`].
    pub fn open_half_open(&mut self, node: NodeIndex) -> Option<LinkId> {
        self.open_half_open_from(node, IpAddr::V4(ATTACKER_NETWORK))
    }

    /// Opens an outbound link on `node` to nobody, to probe the link table.
    pub fn try_dial(&mut self, node: NodeIndex) -> Result<LinkId, OpenLinkError> {
        let nobody = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        self.handle(node, OpenLink::dialled(None, Transport::Tcp, nobody))
    }

    /// Takes what `node` wrote on a link that has no wire (one made with
    /// [`open_half_open`](Self::open_half_open) or [`try_dial`](Self::try_dial)).
    pub fn take_unwired_output(&mut self, node: NodeIndex, link: LinkId) -> Vec<u8> {
        self.net
            .unwired_output
            .remove(&(node, link))
            .unwrap_or_default()
    }

    /// Feeds raw bytes into a link as if they came from the network.
    pub fn inject(&mut self, node: NodeIndex, link: LinkId, bytes: &[u8]) {
        let _ = self.handle(node, Receive { link, bytes });
    }

    /// Queues a cell on a node's link and lets it transmit.
    pub fn send_cell(
        &mut self,
        node: NodeIndex,
        link: LinkId,
        cell: &Cell,
    ) -> Result<(), SendCellError> {
        self.handle(node, veil_core::node::SendCell { link, cell })
    }

    /// Closes a node's link (it sends a `Close` frame if established).
    pub fn close_link(&mut self, node: NodeIndex, link: LinkId, reason: CloseReason) {
        let _ = self.handle(node, veil_core::node::CloseLink { link, reason });
    }

    /// The wire `node`'s link `link` runs over, if it is wired.
    pub fn wire_of(&self, node: NodeIndex, link: LinkId) -> Option<WireId> {
        self.net.wire_of(node, link)
    }

    /// Stops delivering one direction of a wire, bytes already in flight
    /// included: they vanish as if the path went dark while both TCP
    /// connections stayed up.
    pub fn silence(&mut self, wire: WireId, dir: Direction) {
        let w = &mut self.net.wires[wire.0];
        w.dark[dir.index()] = true;
        w.layers[dir.index()].push(Box::new(BlackHole));
    }

    /// `node` stops reading its link `link`, as a process that stops
    /// calling `read` on a socket: bytes wait at its end, and once a window
    /// of them is waiting the sender's transport is full.
    pub fn stop_reading(&mut self, node: NodeIndex, link: LinkId) {
        if let Some(&(wire, side)) = self.net.by_link.get(&(node, link)) {
            // The direction `node` receives is the one its peer sends.
            let dir = Direction::sent_by(1 - side);
            self.net.wires[wire.0].unread[dir.index()] = true;
        }
    }

    /// Mutates bytes in flight in one direction.
    pub fn tamper(&mut self, wire: WireId, dir: Direction, f: Tamper) {
        self.add_layer(wire, dir, Box::new(f));
    }

    /// Stacks a middleware layer on one direction of a wire: it sees every
    /// transmit after the layers added before it.
    pub fn add_layer(&mut self, wire: WireId, dir: Direction, layer: Box<dyn WireLayer>) {
        self.net.wires[wire.0].layers[dir.index()].push(layer);
    }

    /// Cuts a wire: both ends see their transport close.
    pub fn cut(&mut self, wire: WireId) {
        let ends = self.net.wires[wire.0].ends;
        self.net.wires[wire.0].open = [false, false];
        for (node, link) in ends {
            let _ = self.handle(node, TransportClosed { link });
        }
    }

    /// Starts recording every link message the `nodes` send or receive
    /// (time, direction, length), dropping what was recorded before.
    pub fn tap(&mut self, nodes: &[NodeIndex]) {
        self.net.tap.nodes = nodes.to_vec();
        self.net.tap.seen.clear();
    }

    /// What the tap recorded since [`tap`](Self::tap), in order; the tap
    /// goes on recording.
    pub fn take_tapped(&mut self) -> Vec<crate::Tapped> {
        std::mem::take(&mut self.net.tap.seen)
    }

    /// SHA-256 over every byte every node transmitted, with who and when.
    /// Two runs with the same seed and inputs must agree.
    pub fn transcript_digest(&self) -> [u8; 32] {
        self.net.transcript_digest()
    }

    /// Runs the network for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.net.now.saturating_add(d);
        self.run_until(until);
    }

    /// Processes every happening scheduled up to `until`, then sets the clock to it.
    pub fn run_until(&mut self, until: Instant) {
        while let Some(Reverse(next)) = self.net.queue.peek() {
            if next.at > until {
                break;
            }
            let Some(Reverse(next)) = self.net.queue.pop() else {
                break;
            };
            if self.superseded(&next.what) {
                continue;
            }
            self.net.steps += 1;
            assert!(
                self.net.steps < 50_000_000,
                "simulation ran away: too many steps"
            );
            self.net.now = next.at.max(self.net.now);
            self.process(next.what);
        }
        self.net.now = until.max(self.net.now);
    }

    /// Runs until `done` holds, checking after every happening, for at most `limit`.
    /// Returns whether `done` held.
    pub fn run_until_true(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let until = self.net.now.saturating_add(limit);
        while !done(self) {
            let Some(Reverse(next)) = self.net.queue.peek() else {
                return false;
            };
            if next.at > until {
                self.net.now = until;
                return false;
            }
            let Some(Reverse(next)) = self.net.queue.pop() else {
                return false;
            };
            if self.superseded(&next.what) {
                continue;
            }
            self.net.steps += 1;
            self.net.now = next.at.max(self.net.now);
            self.process(next.what);
        }
        true
    }

    /// Whether `what` is a timer the node no longer wants: it has asked
    /// for another deadline since this one was set. The queue cannot take
    /// a timer back, so a moved deadline leaves the old one in it; firing
    /// each would wake a busy node once per change of its deadline (every
    /// cell moves a link's keepalive), which was most of the simulator's
    /// work at 300 nodes.
    fn superseded(&self, what: &Happening) -> bool {
        match what {
            Happening::Timer { node, due } => self.nodes[*node].scheduled_timeout != Some(*due),
            _ => false,
        }
    }

    fn process(&mut self, what: Happening) {
        let node = what.node(&self.net.wires);
        let kind = match what {
            Happening::Deliver { .. } => 0,
            Happening::Timer { .. } => 1,
            Happening::TransportClosed { .. } => 2,
            Happening::Dial { .. } => 3,
            Happening::Writable { .. } => 4,
        };
        if !self.nodes[node].alive {
            if kind == 1 {
                // Dropped while frozen: a thawed node must be given a new one.
                self.nodes[node].scheduled_timeout = None;
            }
            self.net.happenings[5] += 1;
            return;
        }
        self.net.happenings[kind] += 1;
        match what {
            Happening::Dial { node, request } => match self.net.dial_target(node, &request) {
                // A frozen node answers no dial; the dialler's timeout decides.
                Ok(Some(to)) if !self.nodes[to].alive && !self.nodes[to].killed => {
                    self.net.dials.unanswered += 1;
                }
                // Dropped UDP: no answer at all; the dialler's timeout (or a
                // raced TCP dial) decides.
                Err(crate::net::Unanswered) => self.net.dials.unanswered += 1,
                // The target's own admission rules decide whether it takes
                // the link (a full table may evict or prune to make room,
                // as the std node's does); a refusal reaches the dialler
                // as a closed transport.
                Ok(Some(to)) if self.nodes[to].alive && self.has_room(node) => {
                    let mut conditions = self.net.dial_conditions;
                    conditions.latency = conditions
                        .latency
                        .saturating_add(self.net.access_latency(node))
                        .saturating_add(self.net.access_latency(to));
                    let transport = Some(request.address.transport);
                    // A refusal reaches the dialler as a closed transport.
                    match self.try_connect_over(
                        node,
                        to,
                        request.peer,
                        conditions,
                        transport,
                        request.anonymous,
                    ) {
                        Ok(_) => self.net.dials.connected += 1,
                        Err(_) => self.net.dials.refused_by_node += 1,
                    }
                }
                // Nobody there (a killed node's host answers with a reset),
                // or the dialler's own link table without a free slot.
                Ok(target) => {
                    match target {
                        None => self.net.dials.no_such_address += 1,
                        Some(to) if self.nodes[to].killed => self.net.dials.to_departed += 1,
                        Some(_) => self.net.dials.no_room += 1,
                    }
                    self.handle(node, veil_core::node::DialFailed { request });
                }
            },
            Happening::Deliver { wire, dir, bytes } => {
                if self.net.arrive(wire, dir, bytes) {
                    self.pump(node);
                }
            }
            Happening::Timer { node, .. } => {
                self.nodes[node].timers += 1;
                self.nodes[node].scheduled_timeout = None;
                let now = self.net.now;
                self.nodes[node].core.handle(now, veil_core::node::Timeout);
                self.pump(node);
            }
            Happening::Writable { node, link, side } => {
                if let Some(wire) = self.net.wire_of(node, link) {
                    self.net.wires[wire.0].room_wakeup[side] = None;
                }
                let _ = self.handle(node, veil_core::node::TransportRoom::unlimited(link));
            }
            Happening::TransportClosed { node, link } => {
                let _ = self.handle(node, TransportClosed { link });
            }
        }
    }

    fn has_room(&self, node: NodeIndex) -> bool {
        let core = &self.nodes[node].core;
        core.link_capacity() > core.links().count()
    }

    /// Drains a node's outputs until it is quiet (transmits onto wires,
    /// events into its log, messages to its application), feeds it what
    /// wires hold back for it, and schedules its timer.
    fn pump(&mut self, node: NodeIndex) {
        loop {
            let Sim {
                nodes, net, buf, ..
            } = self;
            let SimNode {
                core,
                events,
                delivered,
                bytes_sent,
                ..
            } = &mut nodes[node];
            let now = net.now;
            let deadline = veil_core::node::drain(core, now, buf, |core, output| {
                net.on_output(node, core, output, events, delivered, bytes_sent);
            })
            .expect("the simulator's buffer fits every output of its profile");
            // Input held back for lack of room can go in now.
            if !net.feed_backlogs(node, core) {
                self.schedule_timer(node, deadline);
                return;
            }
        }
    }

    fn schedule_timer(&mut self, node: NodeIndex, at: Instant) {
        if self.nodes[node].scheduled_timeout != Some(at) {
            self.nodes[node].scheduled_timeout = Some(at);
            let due = at;
            let at = at.max(self.net.now);
            self.net.schedule(at, Happening::Timer { node, due });
        }
    }
}
