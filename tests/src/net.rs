//! What moves between simulated nodes: the schedule of happenings, the
//! wires and their bytes, and what the simulator does with each output a
//! node gives.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use veil_core::identity::Transport;
use veil_core::node::{DialRequest, Event, LinkId, Output, Receive, TransportRoom};
use veil_core::time::{Duration, Instant};

use crate::conditions::{StreamConditions, SEND_BUFFER};

/// Bytes a receiver that stopped reading lets its peer send before the
/// peer's transport is full (a TCP window plus a send buffer).
const UNREAD_WINDOW: u64 = 16 * 1024;

use crate::profile::SimNodeCore;
use crate::sim_node::{Delivered, NodeIndex};
use crate::wire::{Direction, Wire, WireId};

pub(crate) enum Happening {
    Deliver {
        wire: WireId,
        dir: Direction,
        bytes: Vec<u8>,
    },
    /// The node's timer, set for `due`. Superseded (and skipped) if the
    /// node has asked for another deadline since.
    Timer {
        node: NodeIndex,
        due: Instant,
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
    /// A bandwidth-limited wire's send buffer has room again: end `side`
    /// of it may write.
    Writable {
        node: NodeIndex,
        link: LinkId,
        side: usize,
    },
}

impl Happening {
    /// The node it happens to.
    pub(crate) fn node(&self, wires: &[Wire]) -> NodeIndex {
        match self {
            Happening::Deliver { wire, dir, .. } => wires[wire.0].ends[1 - dir.index()].0,
            Happening::Timer { node, .. }
            | Happening::TransportClosed { node, .. }
            | Happening::Dial { node, .. }
            | Happening::Writable { node, .. } => *node,
        }
    }
}

pub(crate) struct Scheduled {
    pub(crate) at: Instant,
    seq: u64,
    pub(crate) what: Happening,
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

/// What became of the dials nodes asked for (each counted when it reaches
/// its target, one latency after the request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DialStats {
    /// A wire was made.
    pub connected: u64,
    /// The target's node refused the link (its table, or its network's
    /// share of it, was full): the dialler sees its transport close.
    pub refused_by_node: u64,
    /// The dialler or the target had no free link slot: the dial fails.
    pub no_room: u64,
    /// The target had left cleanly: its host resets the connection.
    pub to_departed: u64,
    /// No node has the address.
    pub no_such_address: u64,
    /// Nobody answered (a frozen target, or blocked UDP): the dialler's
    /// timeout decides.
    pub unanswered: u64,
}

/// A QUIC dial into blocked UDP: nobody answers.
pub(crate) struct Unanswered;

/// Everything of the simulated network but the nodes.
pub(crate) struct Net {
    pub(crate) now: Instant,
    pub(crate) queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    pub(crate) rng: ChaCha20Rng,
    transcript: Sha256,
    pub(crate) steps: u64,
    pub(crate) wires: Vec<Wire>,
    pub(crate) by_link: HashMap<(NodeIndex, LinkId), (WireId, usize)>,
    /// The same as [`by_link`](Self::by_link), per node and in wire order:
    /// a node's own wires are found without a pass over every link of the
    /// network (which made each step cost O(all links) at 1,000 nodes),
    /// and always in the same order.
    pub(crate) node_wires: HashMap<NodeIndex, BTreeSet<(WireId, usize)>>,
    /// What nodes wrote on links with no wire (opened by a test).
    pub(crate) unwired_output: HashMap<(NodeIndex, LinkId), Vec<u8>>,
    /// Simulated addresses, for dial requests, with their transport.
    pub(crate) addresses: HashMap<(Transport, SocketAddr), NodeIndex>,
    /// Nodes whose UDP is blocked: QUIC dials to or from them go unanswered.
    pub(crate) udp_blocked: HashSet<NodeIndex>,
    /// Conditions of wires made for dial requests.
    pub(crate) dial_conditions: StreamConditions,
    /// Every address a node asked to dial, in order.
    pub(crate) dialled: Vec<(NodeIndex, SocketAddr)>,
    /// Extra delay before a node's bytes leave it: a fixed part and a
    /// random part up to the second (a slow or overloaded node).
    pub(crate) node_delay: HashMap<NodeIndex, (Duration, Duration)>,
    /// Extra one-way latency of every dialled wire to or from a node
    /// ([`Sim::set_access_latency`](crate::Sim::set_access_latency)).
    pub(crate) access_latency: HashMap<NodeIndex, Duration>,
    pub(crate) dials: DialStats,
    pub(crate) happenings: [u64; 6],
    /// The watched node's traffic ([`Sim::tap`](crate::Sim::tap)).
    pub(crate) tap: crate::tap::Tap,
}

impl Net {
    pub(crate) fn new(seed: u64) -> Self {
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Net {
            now: Instant::from_millis(1_000),
            queue: BinaryHeap::new(),
            seq: 0,
            rng: ChaCha20Rng::from_seed(seed_bytes),
            transcript: Sha256::new(),
            steps: 0,
            wires: Vec::new(),
            by_link: HashMap::new(),
            node_wires: HashMap::new(),
            unwired_output: HashMap::new(),
            addresses: HashMap::new(),
            udp_blocked: HashSet::new(),
            dial_conditions: StreamConditions::LAN,
            dialled: Vec::new(),
            node_delay: HashMap::new(),
            access_latency: HashMap::new(),
            dials: DialStats::default(),
            happenings: [0; 6],
            tap: crate::tap::Tap::default(),
        }
    }

    pub(crate) fn schedule(&mut self, at: Instant, what: Happening) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            what,
        }));
    }

    pub(crate) fn access_latency(&self, node: NodeIndex) -> Duration {
        self.access_latency
            .get(&node)
            .copied()
            .unwrap_or(Duration::ZERO)
    }

    pub(crate) fn transcript_digest(&self) -> [u8; 32] {
        self.transcript.clone().finalize().into()
    }

    pub(crate) fn add_wire(
        &mut self,
        ends: [(NodeIndex, LinkId); 2],
        conditions: StreamConditions,
    ) -> WireId {
        let id = WireId(self.wires.len());
        self.wires.push(Wire::new(ends, conditions, self.now));
        self.by_link.insert(ends[0], (id, 0));
        self.by_link.insert(ends[1], (id, 1));
        for (side, (node, _)) in ends.into_iter().enumerate() {
            self.node_wires.entry(node).or_default().insert((id, side));
        }
        id
    }

    /// Forgets the link `(node, link)`: its wire, if any, and the side of
    /// it `node` holds.
    pub(crate) fn unlink(&mut self, node: NodeIndex, link: LinkId) -> Option<(WireId, usize)> {
        let found = self.by_link.remove(&(node, link))?;
        if let Some(set) = self.node_wires.get_mut(&node) {
            set.remove(&found);
        }
        Some(found)
    }

    /// The wires `node` holds an open link on, with its side, in wire order.
    pub(crate) fn wires_of(&self, node: NodeIndex) -> Vec<(WireId, usize)> {
        self.node_wires
            .get(&node)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }

    pub(crate) fn wire_of(&self, node: NodeIndex, link: LinkId) -> Option<WireId> {
        self.by_link.get(&(node, link)).map(|&(wire, _)| wire)
    }

    /// Whom a dial reaches: `Ok(Some(node))`, `Ok(None)` for nobody (a
    /// refused connection), `Err` for a dial nobody answers.
    pub(crate) fn dial_target(
        &self,
        node: NodeIndex,
        request: &DialRequest,
    ) -> Result<Option<NodeIndex>, Unanswered> {
        let transport = request.address.transport;
        let target = self
            .addresses
            .get(&(transport, request.address.socket))
            .copied();
        let blocked = transport == Transport::Quic
            && (self.udp_blocked.contains(&node)
                || target.is_some_and(|t| self.udp_blocked.contains(&t)));
        if blocked {
            return Err(Unanswered);
        }
        Ok(target.filter(|&t| t != node))
    }

    /// Bytes of one direction reach the receiver's backlog; `false` if
    /// they were lost (a closed or dark wire).
    pub(crate) fn arrive(&mut self, wire: WireId, dir: Direction, bytes: Vec<u8>) -> bool {
        let w = &mut self.wires[wire.0];
        let receiver = 1 - dir.index();
        if !w.open[receiver] || w.dark[dir.index()] {
            return false;
        }
        w.backlog[dir.index()].extend(bytes);
        true
    }

    /// Offers `node` everything waiting for it on its wires; whether it
    /// consumed anything.
    pub(crate) fn feed_backlogs(&mut self, node: NodeIndex, core: &mut SimNodeCore) -> bool {
        let Some(set) = self.node_wires.get(&node) else {
            return false;
        };
        // In wire order; a node holds one side of each of its wires.
        let waiting: Vec<(WireId, Direction)> = set
            .iter()
            .map(|&(wire, side)| (wire, Direction::sent_by(1 - side)))
            .filter(|(wire, dir)| {
                let w = &self.wires[wire.0];
                !w.backlog[dir.index()].is_empty() && !w.unread[dir.index()]
            })
            .collect();
        let mut progressed = false;
        for (wire, dir) in waiting {
            let w = &mut self.wires[wire.0];
            let (_, link) = w.ends[1 - dir.index()];
            let backlog = &mut w.backlog[dir.index()];
            let bytes = backlog.make_contiguous();
            let consumed = core
                .handle(self.now, Receive { link, bytes })
                .unwrap_or(bytes.len());
            backlog.drain(..consumed);
            w.consumed[dir.index()] += consumed as u64;
            progressed |= consumed > 0;
        }
        progressed
    }

    /// Acts on one output of `node`.
    pub(crate) fn on_output(
        &mut self,
        node: NodeIndex,
        core: &mut SimNodeCore,
        output: Output<'_>,
        events: &mut Vec<(Instant, Event)>,
        delivered: &mut Vec<Delivered>,
        bytes_sent: &mut u64,
    ) {
        let now = self.now;
        match output {
            Output::Transmit { link, bytes } => {
                *bytes_sent += bytes.len() as u64;
                if self.transmit(node, link, bytes) {
                    // The wire's send buffer is full: the node holds its
                    // cells until it drains, as behind a slow TCP socket.
                    let _ = core.handle(now, TransportRoom::none(link));
                }
            }
            Output::StreamCell { .. } => {
                panic!("the simulator's links are byte streams; it opens no circuit streams")
            }
            Output::Event(event) => {
                if let Event::LinkClosed { link, .. } = &event {
                    self.on_link_closed(node, *link);
                }
                events.push((now, event));
            }
            Output::Message { message, bytes } => delivered.push(Delivered {
                at: now,
                sender: message.sender,
                bytes: bytes.to_vec(),
            }),
            Output::Dial(request) => {
                self.dialled.push((node, request.address.socket));
                let at = now.saturating_add(self.dial_conditions.latency);
                self.schedule(at, Happening::Dial { node, request });
            }
            Output::Timeout(_) => {}
        }
    }

    /// Puts one transmit on its wire. Returns whether the wire's send
    /// buffer is now full: a bandwidth-limited wire takes bytes only while
    /// its sender's buffer has room, and wakes the sender when it drains.
    fn transmit(&mut self, node: NodeIndex, link: LinkId, bytes: &[u8]) -> bool {
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
            return false;
        };
        let dir = Direction::sent_by(side);
        let now = self.now;
        let w = &mut self.wires[wire.0];
        if !w.open[side] {
            return false;
        }
        let receiver = w.ends.get(1 - side).map_or(node, |end| end.0);
        self.tap.note(now, node, receiver, bytes.len());
        // The layers sit at the sender, so they also see (and can record)
        // bytes that a dark path then loses.
        let mut bytes = bytes.to_vec();
        w.through_layers(dir, &mut bytes);
        let conditions = w.conditions;
        // A limited wire sends its bytes after those already queued, at its
        // rate; they then travel with the wire's latency.
        let departs = match conditions.bandwidth {
            Some(bandwidth) => {
                let start = w.busy_until[dir.index()].max(now);
                let serialise = bytes.len() as u64 * 1_000_000 / bandwidth.max(1);
                let done = start.saturating_add(Duration::from_micros(serialise));
                w.busy_until[dir.index()] = done;
                done
            }
            None => now,
        };
        self.send_chunks(wire, dir, departs, &bytes);
        let w = &self.wires[wire.0];
        if w.unread[dir.index()] && w.sent[dir.index()] - w.consumed[dir.index()] >= UNREAD_WINDOW {
            // The receiver stopped reading: its window and our send buffer
            // are full, as with TCP. Reading again wakes us.
            return true;
        }
        self.buffer_full(node, link, wire, side)
    }

    /// Whether end `side` of a limited wire has more than its send buffer
    /// waiting; if so, schedules its wake-up.
    fn buffer_full(&mut self, node: NodeIndex, link: LinkId, wire: WireId, side: usize) -> bool {
        let w = &mut self.wires[wire.0];
        let Some(bandwidth) = w.conditions.bandwidth else {
            return false;
        };
        let buffered = SEND_BUFFER * 1_000_000 / bandwidth.max(1);
        let busy = w.busy_until[side].as_micros();
        let drains_by = Instant::from_micros(busy.saturating_sub(buffered));
        if drains_by <= self.now {
            return false;
        }
        if w.room_wakeup[side].is_none() {
            w.room_wakeup[side] = Some(drains_by);
            self.schedule(drains_by, Happening::Writable { node, link, side });
        }
        true
    }

    /// Cuts `bytes` into chunks as the wire's conditions say and schedules
    /// their arrival.
    fn send_chunks(&mut self, wire: WireId, dir: Direction, departs: Instant, bytes: &[u8]) {
        let conditions = self.wires[wire.0].conditions;
        let mut rest = bytes;
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
            let sender = self.wires[wire.0].ends[dir.index()].0;
            let slowness = match self.node_delay.get(&sender).copied() {
                None => 0,
                Some((fixed, random)) => {
                    fixed.as_micros()
                        + match random.as_micros() {
                            0 => 0,
                            r => self.rng.next_u64() % r,
                        }
                }
            };
            let jitter = jitter + slowness;
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
        let Some((wire, side)) = self.unlink(node, link) else {
            return;
        };
        let w = &mut self.wires[wire.0];
        w.open[side] = false;
        let other = 1 - side;
        if w.open[other] {
            // Like a TCP FIN: the other end learns after the bytes in flight.
            let (peer, peer_link) = w.ends[other];
            let dir = Direction::sent_by(side).index();
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
