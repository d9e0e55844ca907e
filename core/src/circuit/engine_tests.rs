//! The circuit engine over an in-memory mesh of nodes: building through
//! three relays, data both ways, tampering, link failure, and the limits.

use std::collections::{BTreeSet, VecDeque};

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::*;
use crate::cell::{CellCommand, CellRepr, DestroyReason};
use crate::discovery::Path;
use crate::identity::{Address, Identity, NodeId};
use crate::link::LinkId;
use crate::link::{Cell, LinkRole};
use crate::noise::StaticKeypair;

pub(super) type Engine = CircuitEngine<
    heapless::Vec<crate::circuit::RelayCircuit, 32>,
    heapless::Vec<crate::circuit::ClientCircuit, 4>,
>;
pub(super) type Tamper = Box<dyn FnMut(usize, usize, &mut Cell)>;

pub(super) struct Net {
    pub(super) engines: Vec<Engine>,
    pub(super) onion: Vec<StaticKeypair>,
    pub(super) ids: Vec<NodeId>,
    pub(super) queue: VecDeque<(usize, usize, Cell)>,
    pub(super) events: Vec<(usize, CircuitEvent)>,
    pub(super) rng: ChaCha20Rng,
    pub(super) cut: BTreeSet<(usize, usize)>,
    /// `(node, peer)`: `node` takes no `CREATE` from `peer` (its
    /// anonymous link to it).
    pub(super) client_links: BTreeSet<(usize, usize)>,
    pub(super) tamper: Option<Tamper>,
    pub(super) delivered: usize,
    pub(super) now: crate::time::Instant,
    /// Whether `dial_for_extend` accepts (a dial that then never
    /// completes), instead of failing at once.
    pub(super) dials_hang: bool,
    /// `(node, public key)` of every hop-handshake key pair a node asked
    /// its context for.
    pub(super) hop_keys: Vec<(usize, [u8; 32])>,
}

/// The network prefix of node `j`: its own, except nodes 5 and 6, which
/// share node 0's (for the per-network quota).
fn network(j: usize) -> crate::discovery::NetworkPrefix {
    let n = if j == 5 || j == 6 { 0 } else { j as u8 };
    crate::discovery::NetworkPrefix::V4([10, n])
}

pub(super) struct Ctx<'a> {
    me: usize,
    now: crate::time::Instant,
    ids: &'a [NodeId],
    cut: &'a BTreeSet<(usize, usize)>,
    client_links: &'a BTreeSet<(usize, usize)>,
    queue: &'a mut VecDeque<(usize, usize, Cell)>,
    events: &'a mut Vec<(usize, CircuitEvent)>,
    rng: &'a mut ChaCha20Rng,
    dials_hang: bool,
    hop_keys: &'a mut Vec<(usize, [u8; 32])>,
}

fn linked(cut: &BTreeSet<(usize, usize)>, a: usize, b: usize) -> bool {
    a != b && !cut.contains(&(a.min(b), a.max(b)))
}

fn role(me: usize, peer: usize) -> LinkRole {
    if me < peer {
        LinkRole::Initiator
    } else {
        LinkRole::Responder
    }
}

impl CircuitContext for Ctx<'_> {
    fn link_to(&self, peer: &NodeId) -> Option<(LinkId, LinkRole)> {
        let j = self.ids.iter().position(|id| id == peer)?;
        linked(self.cut, self.me, j).then(|| (LinkId::new(j as u16, 0), role(self.me, j)))
    }
    fn role_on(&self, link: LinkId) -> Option<LinkRole> {
        let j = usize::from(link.index());
        linked(self.cut, self.me, j).then(|| role(self.me, j))
    }
    fn send(&mut self, link: LinkId, cell: &Cell) -> bool {
        let j = usize::from(link.index());
        if linked(self.cut, self.me, j) {
            self.queue.push_back((self.me, j, *cell));
        }
        true
    }
    fn rng(&mut self) -> &mut dyn Rng {
        self.rng
    }
    fn hop_ephemeral(&mut self) -> StaticKeypair {
        let pair = StaticKeypair::generate(self.rng);
        self.hop_keys.push((self.me, pair.public()));
        pair
    }
    fn event(&mut self, event: CircuitEvent) {
        self.events.push((self.me, event));
    }
    fn now(&self) -> crate::time::Instant {
        self.now
    }
    fn network_of(&self, link: LinkId) -> Option<crate::discovery::NetworkPrefix> {
        Some(network(usize::from(link.index())))
    }
    fn take_create_token(&mut self, _link: LinkId) -> bool {
        true
    }
    fn accepts_create(&self, link: LinkId) -> bool {
        !self
            .client_links
            .contains(&(self.me, usize::from(link.index())))
    }
    fn own_id(&self) -> NodeId {
        self.ids[self.me]
    }
    fn dial_for_extend(&mut self, _peer: &NodeId, _addresses: &[Address]) -> bool {
        // This mesh has no dialler: an EXTEND over a cut link fails at
        // once, or (dials_hang) waits for a link that never comes.
        self.dials_hang
    }
}

pub(super) fn is_ready(events: &[CircuitEvent], circuit: CircuitHandle) -> bool {
    events
        .iter()
        .any(|e| matches!(e, CircuitEvent::Ready { circuit: c, .. } if *c == circuit))
}

pub(super) fn closed_with(
    events: &[CircuitEvent],
    circuit: CircuitHandle,
    reason: DestroyReason,
) -> bool {
    events.iter().any(|e| {
        matches!(e, CircuitEvent::Closed { circuit: c, reason: r, .. } if *c == circuit && *r == reason)
    })
}

impl Net {
    pub(super) fn new(n: usize, seed: u64) -> Self {
        Net {
            engines: (0..n).map(|_| Engine::new()).collect(),
            onion: (0..n)
                .map(|i| StaticKeypair::from_secret_bytes([i as u8 + 100; 32]))
                .collect(),
            ids: (0..n)
                .map(|i| Identity::from_secret_bytes([i as u8 + 1; 32]).node_id())
                .collect(),
            queue: VecDeque::new(),
            events: Vec::new(),
            rng: ChaCha20Rng::seed_from_u64(seed),
            cut: BTreeSet::new(),
            client_links: BTreeSet::new(),
            tamper: None,
            delivered: 0,
            now: crate::time::Instant::ZERO,
            dials_hang: false,
            hop_keys: Vec::new(),
        }
    }

    pub(super) fn with<R>(
        &mut self,
        me: usize,
        f: impl FnOnce(&mut Engine, &mut Ctx<'_>) -> R,
    ) -> R {
        let mut ctx = Ctx {
            me,
            now: self.now,
            ids: &self.ids,
            cut: &self.cut,
            client_links: &self.client_links,
            queue: &mut self.queue,
            events: &mut self.events,
            rng: &mut self.rng,
            dials_hang: self.dials_hang,
            hop_keys: &mut self.hop_keys,
        };
        f(&mut self.engines[me], &mut ctx)
    }

    pub(super) fn run(&mut self) {
        while let Some((from, to, mut cell)) = self.queue.pop_front() {
            if !linked(&self.cut, from, to) {
                continue;
            }
            if let Some(t) = self.tamper.as_mut() {
                t(from, to, &mut cell);
            }
            self.delivered += 1;
            let key = StaticKeypair::from_secret_bytes([to as u8 + 100; 32]);
            let result = self.with(to, |e, ctx| {
                e.handle_cell(ctx, LinkId::new(from as u16, 0), &cell, &[&key])
            });
            assert!(result.is_ok(), "protocol violation delivering to {to}");
        }
    }

    pub(super) fn open(
        &mut self,
        client: usize,
        hops: &[usize],
    ) -> Result<CircuitHandle, CircuitError> {
        let path = Path::from_hops(&hops.iter().map(|&h| self.ids[h]).collect::<Vec<_>>()).unwrap();
        let keys: Vec<[u8; 32]> = hops.iter().map(|&h| self.onion[h].public()).collect();
        self.with(client, |e, ctx| e.open(ctx, path, &keys))
    }

    pub(super) fn events_of(&self, node: usize) -> Vec<CircuitEvent> {
        self.events
            .iter()
            .filter(|(n, _)| *n == node)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

#[test]
fn a_circuit_through_three_relays_carries_data_both_ways() {
    let mut net = Net::new(6, 1);
    let circuit = net.open(0, &[1, 2, 3, 4]).unwrap();
    net.run();
    let events = net.events_of(0);
    assert_eq!(events.len(), 1);
    assert!(is_ready(&events, circuit));
    for hop in 1..=4 {
        assert_eq!(net.engines[hop].relayed(), 1, "node {hop} is a hop");
    }
    assert_eq!(net.engines[5].relayed(), 0);

    net.with(0, |e, ctx| e.send(ctx, circuit, 3, b"hello destination"))
        .unwrap();
    net.run();
    let at = match net.events_of(4).as_slice() {
        [CircuitEvent::Delivered { at, data, .. }] => {
            assert_eq!(data.as_slice(), b"hello destination");
            *at
        }
        other => panic!("destination saw {other:?}"),
    };
    // The middle relays saw nothing addressed to them.
    for hop in 1..=3 {
        assert!(net.events_of(hop).is_empty());
    }
    net.with(4, |e, ctx| e.reply(ctx, at, b"hello client"))
        .unwrap();
    net.run();
    let data = net.events_of(0).into_iter().find_map(|e| match e {
        CircuitEvent::Data { hop: 3, data, .. } => Some(data),
        _ => None,
    });
    assert_eq!(data.as_deref(), Some(&b"hello client"[..]));
    // Any hop can be addressed, not just the last.
    net.with(0, |e, ctx| e.send(ctx, circuit, 1, b"to the middle"))
        .unwrap();
    net.run();
    assert!(matches!(
        net.events_of(2).as_slice(),
        [CircuitEvent::Delivered { .. }]
    ));
}

#[test]
fn every_hop_handshake_uses_the_key_pair_its_context_hands_out() {
    // What lets a node draw these key pairs ahead of need
    // (`ReadyEphemerals`): the engine takes them from its context.
    use crate::cell::{parse_create, parse_created};
    use std::cell::RefCell;
    use std::rc::Rc;
    let mut net = Net::new(6, 7);
    let on_wire = Rc::new(RefCell::new(Vec::new()));
    let seen = Rc::clone(&on_wire);
    net.tamper = Some(Box::new(move |from, _, cell| {
        let Ok(repr) = CellRepr::parse(cell) else {
            return;
        };
        let message = match repr.command {
            CellCommand::Create => parse_create(&repr.body),
            CellCommand::Created => parse_created(&repr.body),
            _ => return,
        };
        let mut key = [0u8; 32];
        key.copy_from_slice(&message.unwrap()[..32]);
        seen.borrow_mut().push((from, key));
    }));
    let circuit = net.open(0, &[1, 2, 3, 4]).unwrap();
    // The first CREATE is sent by `open`, before any cell moves.
    let first = net.hop_keys[0];
    net.run();
    assert!(is_ready(&net.events_of(0), circuit));
    let mut wire = on_wire.borrow().clone();
    // EXTENDs travel encrypted: the client's later keys reach the wire in
    // the CREATE its last hop sends on its behalf.
    wire.push(first);
    let mut handed = net.hop_keys.clone();
    for keys in [&mut wire, &mut handed] {
        keys.sort();
        keys.dedup_by_key(|(_, key)| *key);
    }
    let client = handed.iter().filter(|(node, _)| *node == 0).count();
    assert_eq!(client, 4, "one key pair per hop at the client");
    assert_eq!(handed.len(), 8, "and one at each hop");
    let wire_keys: BTreeSet<[u8; 32]> = wire.iter().map(|(_, k)| *k).collect();
    let handed_keys: BTreeSet<[u8; 32]> = handed.iter().map(|(_, k)| *k).collect();
    assert_eq!(wire_keys, handed_keys);
}

#[test]
fn no_relay_sees_the_plaintext() {
    let mut net = Net::new(5, 2);
    let marker = *b"MARKER-7f3a9c";
    let seen = std::rc::Rc::new(std::cell::RefCell::new(false));
    let flag = seen.clone();
    net.tamper = Some(Box::new(move |_, _, cell| {
        if cell.windows(marker.len()).any(|w| w == marker) {
            *flag.borrow_mut() = true;
        }
    }));
    let circuit = net.open(0, &[1, 2, 3, 4]).unwrap();
    net.run();
    net.with(0, |e, ctx| e.send(ctx, circuit, 3, &marker))
        .unwrap();
    net.run();
    assert!(matches!(
        net.events_of(4).as_slice(),
        [CircuitEvent::Delivered { .. }]
    ));
    assert!(
        !*seen.borrow(),
        "the marker appeared in a cell on some link"
    );
}

#[test]
fn a_tampered_cell_destroys_the_circuit_in_both_directions() {
    let mut net = Net::new(5, 3);
    let circuit = net.open(0, &[1, 2, 3, 4]).unwrap();
    net.run();
    net.tamper = Some(Box::new(|from, to, cell| {
        let relay = [CellCommand::Relay.code(), CellCommand::RelayEarly.code()];
        if (from, to) == (2, 3) && relay.contains(&cell[4]) {
            cell[100] ^= 0x01;
        }
    }));
    net.with(0, |e, ctx| e.send(ctx, circuit, 3, b"payload"))
        .unwrap();
    net.run();
    assert!(net.events_of(4).is_empty(), "nothing delivered");
    assert!(closed_with(
        &net.events_of(0),
        circuit,
        DestroyReason::Unrecognised
    ));
    for hop in 1..=4 {
        assert_eq!(
            net.engines[hop].relayed(),
            0,
            "node {hop} forgot the circuit"
        );
    }
    assert_eq!(net.engines[0].own(), 0);
}

#[test]
fn a_closed_link_destroys_the_circuits_over_it_both_ways() {
    let mut net = Net::new(5, 4);
    let circuit = net.open(0, &[1, 2, 3, 4]).unwrap();
    net.run();
    // The link between relays 2 and 3 fails; each side learns it.
    net.cut.insert((2, 3));
    net.with(2, |e, ctx| e.link_closed(ctx, LinkId::new(3, 0)));
    net.with(3, |e, ctx| e.link_closed(ctx, LinkId::new(2, 0)));
    net.run();
    assert!(closed_with(
        &net.events_of(0),
        circuit,
        DestroyReason::LinkClosed
    ));
    for hop in 1..=4 {
        assert_eq!(
            net.engines[hop].relayed(),
            0,
            "node {hop} forgot the circuit"
        );
    }
}

#[test]
fn extending_to_an_unreachable_node_fails_cleanly() {
    let mut net = Net::new(5, 5);
    net.cut.insert((1, 2));
    let circuit = net.open(0, &[1, 2, 3]).unwrap();
    net.run();
    let events = net.events_of(0);
    assert_eq!(events.len(), 1);
    assert!(closed_with(&events, circuit, DestroyReason::ExtendFailed));
    assert_eq!(net.engines[1].relayed(), 0);
}

/// Issue 16, attack 7: `EXTEND`s waiting for a dial are bounded per inbound
/// link and in all, so one client cannot take every dial slot of a relay.
#[test]
fn parked_extends_are_bounded_per_link_and_in_all() {
    let mut net = Net::new(8, 7);
    net.dials_hang = true;
    // Over the per-link parked bound, under the per-link circuit quota: the
    // refusals below are the parked bounds', not the quotas'.
    assert!(net.engines[1].quotas().per_link > MAX_PARKED_EXTENDS_PER_LINK);
    for target in [2, 3, 4, 7] {
        net.cut.insert((1, target));
    }
    let parked_from = |net: &mut Net, client: usize, targets: &[usize]| -> Vec<CircuitHandle> {
        let circuits = targets
            .iter()
            .map(|&t| net.open(client, &[1, t]).unwrap())
            .collect();
        net.run();
        circuits
    };
    let closed = |net: &Net, client: usize, circuit: CircuitHandle| {
        net.events_of(client)
            .iter()
            .any(|e| matches!(e, CircuitEvent::Closed { circuit: c, .. } if *c == circuit))
    };
    // Client 0 parks two EXTENDs at relay 1; its third is refused.
    let from_0 = parked_from(&mut net, 0, &[2, 3, 4]);
    assert!(!closed(&net, 0, from_0[0]) && !closed(&net, 0, from_0[1]));
    assert!(closed_with(
        &net.events_of(0),
        from_0[2],
        DestroyReason::ResourceLimit
    ));
    // Client 5 parks two more: four in all, the relay's bound. Then even a
    // client with nothing parked is refused.
    let from_5 = parked_from(&mut net, 5, &[2, 3]);
    assert!(!closed(&net, 5, from_5[0]) && !closed(&net, 5, from_5[1]));
    let from_6 = parked_from(&mut net, 6, &[7]);
    assert!(closed_with(
        &net.events_of(6),
        from_6[0],
        DestroyReason::ResourceLimit
    ));
    assert_eq!(net.engines[1].relayed(), MAX_PARKED_EXTENDS);
}

/// Builds 0 -> 1 -> 2 (one EXTEND, so one RELAY_EARLY seen by hop 1), then
/// injects `extra` garbage RELAY_EARLY cells at hop 1; returns how the
/// client's circuit ended.
fn close_reason_after_early_cells(extra: u8) -> Option<DestroyReason> {
    let mut net = Net::new(3, 6);
    let circuit = net.open(0, &[1, 2]).unwrap();
    net.run();
    assert!(is_ready(&net.events_of(0), circuit));
    // Learn the circuit id node 0 uses towards node 1 from a data cell.
    let used = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let spy = used.clone();
    net.tamper = Some(Box::new(move |from, to, cell| {
        if (from, to) == (0, 1) {
            spy.set(u32::from_be_bytes(cell[..4].try_into().unwrap()));
        }
    }));
    net.with(0, |e, ctx| e.send(ctx, circuit, 0, b"x")).unwrap();
    net.run();
    net.tamper = None;
    let early = CellRepr {
        circuit_id: crate::cell::CircuitId(used.get()),
        command: CellCommand::RelayEarly,
        body: [7; 509],
    }
    .emit();
    // All injected cells reach hop 1 before any forwarded copy reaches hop 2.
    for _ in 0..extra {
        net.queue.push_back((0, 1, early));
    }
    net.run();
    assert_eq!(net.engines[1].relayed(), 0);
    net.events_of(0).into_iter().find_map(|e| match e {
        CircuitEvent::Closed { reason, .. } => Some(reason),
        _ => None,
    })
}

#[test]
fn extension_is_capped_by_relay_early() {
    let cap = crate::cell::MAX_RELAY_EARLY;
    // 1 EXTEND + the client's first data cell (also RELAY_EARLY) +
    // (cap - 2) = cap: allowed; the garbage dies at the last hop.
    assert_eq!(
        close_reason_after_early_cells(cap - 2),
        Some(DestroyReason::Unrecognised)
    );
    // One more, cap + 1: the hop refuses to carry the circuit further.
    assert_eq!(
        close_reason_after_early_cells(cap - 1),
        Some(DestroyReason::TooLong)
    );
}

#[test]
fn create_with_an_id_from_the_wrong_half_is_a_protocol_violation() {
    let mut net = Net::new(2, 7);
    // Node 0 is the initiator of the 0-1 link, so it must use high-bit ids;
    // a CREATE from it with a low id is refused.
    let bad = CellRepr {
        circuit_id: crate::cell::CircuitId(5),
        command: CellCommand::Create,
        body: [0; 509],
    }
    .emit();
    let key = StaticKeypair::from_secret_bytes([101; 32]);
    let result = net.with(1, |e, ctx| {
        e.handle_cell(ctx, LinkId::new(0, 0), &bad, &[&key])
    });
    assert_eq!(result, Err(CircuitProtocolViolation));
}

#[test]
fn the_same_seed_gives_the_same_cells() {
    let run = |seed| {
        let mut net = Net::new(5, seed);
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let sink = log.clone();
        net.tamper = Some(Box::new(move |_, _, cell| sink.borrow_mut().push(*cell)));
        let circuit = net.open(0, &[1, 2, 3, 4]).unwrap();
        net.run();
        net.with(0, |e, ctx| e.send(ctx, circuit, 3, b"same"))
            .unwrap();
        net.run();
        let cells = log.borrow().clone();
        cells
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}

/// A `CREATE` from `from` to `to` whose handshake is garbage; returns the
/// reason of the `DESTROY` that answers it.
fn answer_to_garbage_create(net: &mut Net, from: usize, to: usize) -> DestroyReason {
    let role = role(from, to);
    let id = crate::cell::CircuitId::allocate(role, &mut net.rng, |_| false).unwrap();
    let create = CellRepr {
        circuit_id: id,
        command: CellCommand::Create,
        body: [0xEE; 509],
    }
    .emit();
    let key = StaticKeypair::from_secret_bytes([to as u8 + 100; 32]);
    net.with(to, |e, ctx| {
        e.handle_cell(ctx, LinkId::new(from as u16, 0), &create, &[&key])
    })
    .unwrap();
    let (_, _, reply) = net.queue.pop_back().expect("an answer");
    let reply = CellRepr::parse(&reply).unwrap();
    assert_eq!(reply.command, CellCommand::Destroy);
    DestroyReason::from_code(reply.body[0])
}

#[test]
fn a_create_over_a_link_that_takes_none_is_refused_as_a_protocol_violation() {
    let mut net = Net::new(3, 12);
    // Node 1's anonymous link to node 0: node 0 may not build through it.
    net.client_links.insert((1, 0));
    let refused = net.open(0, &[1]).unwrap();
    net.run();
    assert!(closed_with(
        &net.events_of(0),
        refused,
        DestroyReason::Protocol
    ));
    assert_eq!(
        net.engines[1].relayed(),
        0,
        "no circuit, no handshake state"
    );
    // Over other links it relays as before.
    let other = net.open(2, &[1]).unwrap();
    net.run();
    assert!(is_ready(&net.events_of(2), other));
}

#[test]
fn creates_over_the_per_link_quota_are_refused_before_any_handshake_work() {
    let mut net = Net::new(3, 11);
    let quota = net.engines[1].quotas().per_link;
    // Under quota, a garbage handshake is found out by the handshake.
    assert_eq!(
        answer_to_garbage_create(&mut net, 0, 1),
        DestroyReason::Protocol
    );
    for _ in 0..quota {
        net.open(0, &[1]).unwrap();
        net.run();
    }
    assert_eq!(net.engines[1].relayed(), quota);
    // Over quota the answer comes before the handshake is even tried.
    assert_eq!(
        answer_to_garbage_create(&mut net, 0, 1),
        DestroyReason::ResourceLimit
    );
    // Another link still gets its circuits.
    let other = net.open(2, &[1]).unwrap();
    net.run();
    assert!(is_ready(&net.events_of(2), other));
}

#[test]
fn creates_over_the_per_network_quota_are_refused() {
    let mut net = Net::new(7, 12);
    let quotas = net.engines[1].quotas();
    assert!(quotas.per_network < 3 * quotas.per_link);
    // Nodes 0, 5 and 6 share a network: together they hold its quota.
    let mut held = 0;
    'fill: for node in [0, 5, 6] {
        for _ in 0..quotas.per_link {
            if held == quotas.per_network {
                break 'fill;
            }
            net.open(node, &[1]).unwrap();
            net.run();
            held += 1;
        }
    }
    assert_eq!(net.engines[1].relayed(), quotas.per_network);
    assert_eq!(
        answer_to_garbage_create(&mut net, 6, 1),
        DestroyReason::ResourceLimit
    );
    // A node of another network is not affected.
    let other = net.open(2, &[1]).unwrap();
    net.run();
    assert!(is_ready(&net.events_of(2), other));
}

#[test]
fn an_idle_relayed_circuit_is_destroyed_and_a_used_one_is_not() {
    let timeouts = CircuitTimeouts {
        build: crate::time::Duration::from_secs(10),
        extend_wait: crate::time::Duration::from_secs(10),
        relay_idle: crate::time::Duration::from_secs(60),
    };
    let mut net = Net::new(4, 13);
    let idle = net.open(0, &[1, 2]).unwrap();
    let busy = net.open(3, &[1, 2]).unwrap();
    net.run();
    assert_eq!(net.engines[1].relayed(), 2);
    net.now = crate::time::Instant::from_millis(40_000);
    net.with(3, |e, ctx| e.send(ctx, busy, 1, b"still here"))
        .unwrap();
    net.run();
    net.now = crate::time::Instant::from_millis(60_000);
    assert_eq!(
        net.engines[1].next_deadline(timeouts),
        Some(crate::time::Instant::from_millis(60_000))
    );
    net.with(1, |e, ctx| e.handle_timeout(ctx, timeouts));
    net.run();
    assert!(closed_with(&net.events_of(0), idle, DestroyReason::Idle));
    assert!(!net
        .events_of(3)
        .iter()
        .any(|e| matches!(e, CircuitEvent::Closed { .. })));
    assert_eq!(net.engines[1].relayed(), 1, "the busy circuit is kept");
    assert_eq!(net.engines[2].relayed(), 1, "the next hop was told");
}

#[test]
fn every_hop_answers_a_probe_itself_and_a_cut_path_silences_the_hops_behind_it() {
    let mut net = Net::new(6, 3);
    let circuit = net.open(0, &[1, 2, 3, 4]).unwrap();
    net.run();
    assert!(is_ready(&net.events_of(0), circuit));
    let replies = |net: &Net| -> Vec<usize> {
        net.events_of(0)
            .into_iter()
            .filter_map(|e| match e {
                CircuitEvent::Data {
                    hop,
                    command: crate::cell::RelayCommand::ProbeReply,
                    data,
                    ..
                } if data.as_slice() == b"nonce-01" => Some(hop),
                _ => None,
            })
            .collect()
    };
    for hop in 0..4 {
        net.with(0, |e, ctx| {
            e.send_relay(
                ctx,
                circuit,
                hop,
                crate::cell::RelayCommand::Probe,
                b"nonce-01",
            )
        })
        .unwrap();
    }
    net.run();
    let mut answered = replies(&net);
    answered.sort();
    assert_eq!(answered, [0, 1, 2, 3], "each hop answers once");
    // Nothing reached the hops' owners: a probe is the engine's business.
    for hop in 1..=4 {
        assert!(net.events_of(hop).is_empty(), "node {hop} saw the probe");
    }
    // The link between hops 1 and 2 (nodes 2 and 3) goes dark: hops 2 and
    // 3 fall silent, hops 0 and 1 still answer.
    net.events.clear();
    net.cut.insert((2, 3));
    for hop in 0..4 {
        net.with(0, |e, ctx| {
            e.send_relay(
                ctx,
                circuit,
                hop,
                crate::cell::RelayCommand::Probe,
                b"nonce-01",
            )
        })
        .unwrap();
    }
    net.run();
    let mut answered = replies(&net);
    answered.sort();
    assert_eq!(answered, [0, 1]);
}

/// What a relay counts of `RELAY_EARLY` cells depends only on how many hops
/// come before it, never on how many follow: the first `MAX_RELAY_EARLY`
/// cells a client sends, data as well as `EXTEND`s, go as `RELAY_EARLY`
/// (each hop before a relay takes one `EXTEND` out of the stream), so the
/// same place on a 2-hop and on a 4-hop path sees the same count. Before,
/// only `EXTEND`s were `RELAY_EARLY` and a relay saw exactly as many as
/// hops followed it. Later cells go as `RELAY`.
#[test]
fn a_relay_early_count_tells_a_relay_nothing_of_the_hops_after_it() {
    let cap = usize::from(crate::cell::MAX_RELAY_EARLY);
    let mut seen: Vec<Vec<usize>> = Vec::new();
    for hops in [&[1, 2][..], &[1, 2, 3, 4][..]] {
        let mut net = Net::new(5, 31);
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let sink = log.clone();
        net.tamper = Some(Box::new(move |from, to, cell| {
            let command = CellRepr::parse(cell).map(|c| c.command).ok();
            sink.borrow_mut().push((from, to, command));
        }));
        let circuit = net.open(0, hops).unwrap();
        net.run();
        let last = hops.len() - 1;
        for n in 0..2 * cap {
            net.with(0, |e, ctx| e.send(ctx, circuit, last, &[n as u8]))
                .unwrap();
            net.run();
        }
        let log = log.borrow();
        let count = |edge: (usize, usize), command: CellCommand| {
            log.iter()
                .filter(|(f, t, c)| (*f, *t) == edge && *c == Some(command))
                .count()
        };
        // Into each hop, by its place: from the client, then hop to hop.
        let edges = std::iter::once(0)
            .chain(hops.iter().copied())
            .zip(hops.iter().copied());
        let early: Vec<usize> = edges
            .map(|edge| {
                assert!(count(edge, CellCommand::Relay) > 0, "later cells are RELAY");
                count(edge, CellCommand::RelayEarly)
            })
            .collect();
        let expected: Vec<usize> = (0..hops.len()).map(|place| cap - place).collect();
        assert_eq!(early, expected, "{} hops", hops.len());
        let delivered = net
            .events_of(hops[last])
            .iter()
            .filter(|e| matches!(e, CircuitEvent::Delivered { .. }))
            .count();
        assert_eq!(delivered, 2 * cap, "every message reached the last hop");
        seen.push(early);
    }
    assert_eq!(
        seen[0][..],
        seen[1][..2],
        "the same places, the same counts"
    );
}
