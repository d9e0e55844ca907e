//! veil-quic over real UDP sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::{Events, Poll, Token};
use veil_core::identity::{Address, Identity, NodeId, Transport};
use veil_core::link::{CloseReason, ClosedBy};
use veil_core::message::MessageSlot;
use veil_core::node::{
    AddBootstrap, CloseLink, Event, LinkId, LinkSlot, Node, NodeConfig, Output, SetAddresses,
    Timeout,
};
use veil_core::time::Instant;
use veil_quic::{
    CloseCause, ConnId, QuicConfig, QuicEvent, QuicLinks, QuicSocket, QuicTransport, ReadOutcome,
    Role, DEFAULT_LOOPBACK_MAX_MTU, DEFAULT_MAX_MTU, MAX_DATAGRAM,
};

/// How long any test may run before it fails.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// Core instants from a std clock started with the test.
struct Clock(std::time::Instant);

impl Clock {
    fn start() -> Self {
        Clock(std::time::Instant::now())
    }
    fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.0.elapsed().as_micros()).unwrap())
    }
    fn expired(&self) -> bool {
        self.0.elapsed() > TEST_LIMIT
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Sockets in one mio poll; token i is socket i.
struct Net {
    poll: Poll,
    events: Events,
    sockets: Vec<QuicSocket>,
    clock: Clock,
}

impl Net {
    fn new(configs: Vec<QuicConfig>) -> Self {
        let poll = Poll::new().unwrap();
        let mut sockets = Vec::new();
        for (i, config) in configs.into_iter().enumerate() {
            let mut socket = QuicSocket::bind(loopback(), config).unwrap();
            socket.register(poll.registry(), Token(i)).unwrap();
            sockets.push(socket);
        }
        Net {
            poll,
            events: Events::with_capacity(64),
            sockets,
            clock: Clock::start(),
        }
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.sockets[i].local_addr()
    }

    /// Sends what is pending, waits for readiness (at most until the next
    /// timer, or `cap`), then receives, runs timers and sends again.
    fn step(&mut self, cap: Duration, extra_deadline: Option<Instant>) {
        let now = self.clock.now();
        for s in &mut self.sockets {
            s.transmit(now);
        }
        let mut wait = cap;
        if self.sockets.iter().any(QuicSocket::has_work) {
            wait = Duration::ZERO;
        }
        let deadlines = self
            .sockets
            .iter_mut()
            .filter_map(QuicSocket::next_timeout)
            .chain(extra_deadline);
        for deadline in deadlines {
            let until = Duration::from_micros(deadline.saturating_since(now).as_micros());
            wait = wait.min(until);
        }
        self.poll.poll(&mut self.events, Some(wait)).unwrap();
        for event in self.events.iter() {
            let s = &mut self.sockets[event.token().0];
            s.on_ready(
                event.is_readable() || event.is_error(),
                event.is_writable() || event.is_error(),
            );
        }
        let now = self.clock.now();
        for s in &mut self.sockets {
            s.receive(now);
            s.handle_timeout(now);
            s.transmit(now);
        }
    }

    fn transport(&mut self, i: usize) -> &mut QuicTransport {
        self.sockets[i].transport_mut()
    }
}

/// Steps until both ends have a `Connected`; returns the two ids and any
/// other events seen on the way.
fn connect_pair(net: &mut Net) -> (ConnId, ConnId) {
    let now = net.clock.now();
    let server = net.addr(1);
    let client_conn = net.transport(0).connect(now, server).unwrap();
    let (mut client_up, mut server_conn) = (false, None);
    while !(client_up && server_conn.is_some()) {
        assert!(!net.clock.expired(), "no connection");
        net.step(Duration::from_millis(20), None);
        while let Some(ev) = net.transport(0).poll_event() {
            match ev {
                QuicEvent::Connected { conn, role, .. } => {
                    assert_eq!((conn, role), (client_conn, Role::Dialler));
                    client_up = true;
                }
                QuicEvent::Closed { cause, .. } => panic!("client closed: {cause}"),
                _ => {}
            }
        }
        while let Some(ev) = net.transport(1).poll_event() {
            match ev {
                QuicEvent::Connected { conn, role, .. } => {
                    assert_eq!(role, Role::Listener);
                    server_conn = Some(conn);
                }
                QuicEvent::Closed { cause, .. } => panic!("server closed: {cause}"),
                _ => {}
            }
        }
    }
    (client_conn, server_conn.unwrap())
}

/// The byte at offset `i` of a test stream, so reordering or loss shows.
fn pattern(seed: u8, i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)) as u8 ^ seed
}

/// Writes and reads `total` bytes each way, checking every byte. While
/// `hold_reads` is running, neither side reads: writes must stall on flow
/// control (backpressure) instead of buffering the whole stream.
fn exchange(net: &mut Net, conns: [ConnId; 2], total: usize, hold_reads: Duration) {
    let seeds = [0x5a_u8, 0xa5];
    let mut written = [0usize; 2];
    let mut read = [0usize; 2];
    let mut blocked_writes = [0usize; 2];
    let mut chunk = vec![0u8; 20_000];
    let mut buf = vec![0u8; 16 * 1024];
    let started = std::time::Instant::now();
    let mut checked_backpressure = false;
    while read != [total, total] {
        assert!(
            !net.clock.expired(),
            "stalled at read {read:?} written {written:?}"
        );
        for side in 0..2 {
            // Write as much as the stream takes.
            while written[side] < total {
                let n = (total - written[side]).min(chunk.len());
                for (k, b) in chunk[..n].iter_mut().enumerate() {
                    *b = pattern(seeds[side], written[side] + k);
                }
                let took = net.transport(side).write(conns[side], &chunk[..n]).unwrap();
                written[side] += took;
                if took < n {
                    blocked_writes[side] += 1;
                    break;
                }
            }
        }
        let holding = started.elapsed() < hold_reads;
        if !holding && !checked_backpressure && !hold_reads.is_zero() {
            checked_backpressure = true;
            for side in 0..2 {
                // 64 KiB stream window + 128 KiB send window in these tests.
                assert!(
                    written[side] < 256 * 1024,
                    "side {side} wrote {} bytes with no reader",
                    written[side]
                );
                assert!(blocked_writes[side] > 0, "side {side} never blocked");
            }
        }
        if !holding {
            for side in 0..2 {
                let peer = 1 - side;
                loop {
                    match net.transport(side).read(conns[side], &mut buf) {
                        ReadOutcome::Data(n) => {
                            for (k, &b) in buf[..n].iter().enumerate() {
                                assert_eq!(
                                    b,
                                    pattern(seeds[peer], read[side] + k),
                                    "byte {}",
                                    read[side] + k
                                );
                            }
                            read[side] += n;
                        }
                        ReadOutcome::WouldBlock => break,
                        other => panic!("read on side {side}: {other:?}"),
                    }
                }
            }
        }
        net.step(Duration::from_millis(5), None);
        for side in 0..2 {
            while let Some(ev) = net.transport(side).poll_event() {
                if let QuicEvent::Closed { cause, .. } = ev {
                    panic!("side {side} closed: {cause}");
                }
            }
        }
    }
}

fn small_windows() -> QuicConfig {
    QuicConfig {
        stream_window: 64 * 1024,
        send_window: 128 * 1024,
        ..QuicConfig::default()
    }
}

#[test]
fn bytes_both_ways_with_backpressure() {
    let mut net = Net::new(vec![small_windows(), small_windows()]);
    let (client, server) = connect_pair(&mut net);

    // The dialler speaks first (as a veil initiator does); that opens the
    // stream at the listener.
    assert_eq!(
        net.transport(1).read(server, &mut [0u8; 16]),
        ReadOutcome::WouldBlock
    );
    assert_eq!(net.transport(0).write(client, b"hello").unwrap(), 5);
    let mut got = Vec::new();
    while got.len() < 5 {
        assert!(!net.clock.expired());
        net.step(Duration::from_millis(20), None);
        let mut buf = [0u8; 64];
        if let ReadOutcome::Data(n) = net.transport(1).read(server, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got, b"hello");
    assert_eq!(net.transport(1).write(server, b"world").unwrap(), 5);
    let mut got = Vec::new();
    while got.len() < 5 {
        assert!(!net.clock.expired());
        net.step(Duration::from_millis(20), None);
        let mut buf = [0u8; 64];
        if let ReadOutcome::Data(n) = net.transport(0).read(client, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got, b"world");

    // What both ends see of the TLS handshake: ALPN h3, no SNI.
    for (side, conn) in [(0, client), (1, server)] {
        let info = net.transport(side).handshake_info(conn).unwrap();
        assert_eq!(info.alpn.as_deref(), Some(&b"h3"[..]));
        assert_eq!(info.server_name, None);
        // The same stream limits from both ends: a round 1,024
        // bidirectional, and HTTP/3's 3 unidirectional (docs/quic.md §2).
        assert_eq!(
            net.transport(side).advertised_stream_limits(conn),
            Some((1024, 3))
        );
    }

    // 1 MiB each way at once; nobody reads for the first 300 ms.
    exchange(
        &mut net,
        [client, server],
        1024 * 1024,
        Duration::from_millis(300),
    );

    // A graceful close: the server sees the stream end, then the client's
    // connection goes away without a `Closed` event (we closed it).
    let now = net.clock.now();
    net.transport(0).close(now, client);
    let mut finished = false;
    while !finished {
        assert!(!net.clock.expired());
        net.step(Duration::from_millis(20), None);
        finished = net.transport(1).read(server, &mut [0u8; 64]) == ReadOutcome::Finished;
        if let Some(ev) = net.transport(0).poll_event() {
            panic!("event after close: {ev:?}");
        }
    }
    let now = net.clock.now();
    net.transport(1).close(now, server);
    while net.transport(0).connection_count() + net.transport(1).connection_count() > 0 {
        assert!(!net.clock.expired(), "connections never drained");
        net.step(Duration::from_millis(50), None);
    }
}

/// A bulk transfer over real sockets uses the socket layer's batching and
/// path MTU discovery: datagrams grow past QUIC's 1200-byte minimum, and
/// (where the kernel has GSO, as Linux does) one send call carries several
/// of them. Fails if the socket sends one datagram per call, or if the
/// don't-fragment bit or MTU discovery is off. Twice: with the loopback
/// bound (these sockets are on 127.0.0.1), datagrams grow past an Ethernet
/// frame; with it off, they stop at `max_mtu`'s 1452.
#[test]
fn bulk_uses_gso_batches_and_larger_datagrams() {
    let ethernet = QuicConfig {
        loopback_max_mtu: 0,
        ..QuicConfig::default()
    };
    for (config, least, most) in [
        (QuicConfig::default(), 1453, DEFAULT_LOOPBACK_MAX_MTU),
        (ethernet, 1201, DEFAULT_MAX_MTU),
    ] {
        let mut net = Net::new(vec![config.clone(), config]);
        for s in &net.sockets {
            // quinn-udp set the don't-fragment bit, which MTU discovery needs.
            #[cfg(target_os = "linux")]
            assert!(!s.may_fragment(), "datagrams may be fragmented");
            #[cfg(target_os = "linux")]
            assert!(s.max_segments() > 1, "no GSO on this socket");
        }
        let (client, server) = connect_pair(&mut net);
        assert_eq!(net.transport(0).current_mtu(client), Some(1200));
        exchange(&mut net, [client, server], 4 * 1024 * 1024, Duration::ZERO);
        for (side, conn) in [(0, client), (1, server)] {
            let mtu = net.transport(side).current_mtu(conn).unwrap();
            assert!(
                (least..=most).contains(&mtu),
                "side {side}: path MTU {mtu}, not in {least}..={most}"
            );
            let stats = net.sockets[side].stats();
            assert!(
                stats.largest_sent >= u64::from(least),
                "side {side}: {stats:?}"
            );
            assert!(
                stats.largest_sent <= u64::from(most),
                "side {side}: {stats:?}"
            );
            #[cfg(target_os = "linux")]
            {
                assert!(
                    stats.datagrams_sent > stats.send_calls,
                    "side {side}: one datagram per send call: {stats:?}"
                );
                assert!(
                    stats.datagrams_received > stats.receive_calls,
                    "side {side}: one datagram per receive call: {stats:?}"
                );
            }
            println!("side {side}: path MTU {mtu}, {stats:?}");
        }
    }
}

#[test]
fn first_datagram_is_a_quic_v1_initial() {
    let clock = Clock::start();
    let mut client = QuicTransport::new(QuicConfig {
        accept: false,
        ..QuicConfig::default()
    })
    .unwrap();
    client
        .connect(clock.now(), "127.0.0.1:4433".parse().unwrap())
        .unwrap();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let (to, len) = client.poll_datagram(clock.now(), &mut buf).unwrap();
    assert_eq!(to, "127.0.0.1:4433".parse().unwrap());
    let d = &buf[..len];
    // RFC 9000 §17.2: long header (1), fixed bit (1), type Initial (00).
    assert_eq!(d[0] & 0x80, 0x80, "long header");
    assert_eq!(d[0] & 0x40, 0x40, "fixed bit");
    assert_eq!((d[0] >> 4) & 0x03, 0, "Initial packet type");
    assert_eq!(&d[1..5], &[0, 0, 0, 1], "QUIC version 1");
    let dcid_len = usize::from(d[5]);
    assert!(
        (8..=20).contains(&dcid_len),
        "destination CID of {dcid_len} bytes"
    );
    // RFC 9000 §14.1: a client's Initial datagram is padded to 1200 bytes.
    assert!(len >= 1200, "Initial datagram of {len} bytes");
    // Initial packets are encrypted with keys anyone can derive, but the
    // bytes on the wire still never show "veil".
    assert!(!d.windows(4).any(|w| w.eq_ignore_ascii_case(b"veil")));
}

#[test]
fn alpn_mismatch_fails_the_handshake() {
    let mut net = Net::new(vec![
        QuicConfig::default(),
        QuicConfig {
            alpn: b"something-else".to_vec(),
            ..QuicConfig::default()
        },
    ]);
    let now = net.clock.now();
    let server = net.addr(1);
    let conn = net.transport(0).connect(now, server).unwrap();
    loop {
        assert!(!net.clock.expired(), "the handshake never failed");
        net.step(Duration::from_millis(20), None);
        if let Some(ev) = net.transport(0).poll_event() {
            match ev {
                QuicEvent::Closed { conn: c, cause } => {
                    assert_eq!(c, conn);
                    assert!(matches!(cause, CloseCause::Aborted(_)), "{cause:?}");
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            !matches!(
                net.transport(1).poll_event(),
                Some(QuicEvent::Connected { .. })
            ),
            "server connected with the wrong ALPN"
        );
    }
}

#[test]
fn a_dial_to_nobody_fails() {
    // Nobody listens on the second socket's transport: it does not accept.
    let mut net = Net::new(vec![
        QuicConfig {
            idle_timeout: Duration::from_millis(500),
            ..QuicConfig::default()
        },
        QuicConfig {
            accept: false,
            ..QuicConfig::default()
        },
    ]);
    let now = net.clock.now();
    let silent = net.addr(1);
    let conn = net.transport(0).connect(now, silent).unwrap();
    loop {
        assert!(!net.clock.expired(), "the dial never failed");
        net.step(Duration::from_millis(50), None);
        if let Some(ev) = net.transport(0).poll_event() {
            assert_eq!(
                ev,
                QuicEvent::Closed {
                    conn,
                    cause: CloseCause::TimedOut
                }
            );
            break;
        }
    }
}

// ---------------------------------------------------------------- nodes

const MSG: usize = 16 * 1024;

veil_core::node_profile! {
    /// std-like capacities on the heap.
    struct TestProfile {
        link_receive: 16 * 1024 + 2,
        link_send_queue: 64,
        events: 64,
        peers: 64,
        relayed: 64,
        own: 8,
        message: MSG,
        links: Box<[LinkSlot<TestProfile>]>,
        messages: Box<[MessageSlot<[u8; MSG]>]>,
    }
}

type TestNode = Node<TestProfile>;

fn build_node(secret: u8, clock: &Clock) -> Box<TestNode> {
    let mut config = NodeConfig {
        quic_dials: true,
        extend_to_private_addresses: true,
        ..NodeConfig::default()
    };
    let unix_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    config.unix_time_at_zero = unix_now - clock.0.elapsed().as_secs();
    let links: Box<[LinkSlot<TestProfile>]> = (0..8).map(|_| LinkSlot::new()).collect();
    let messages: Box<[MessageSlot<[u8; MSG]>]> = (0..8).map(|_| MessageSlot::new()).collect();
    let identity = Identity::from_secret_bytes([secret; 32]);
    Box::new(Node::new(
        config,
        identity,
        [secret ^ 0xff; 32],
        links,
        messages,
    ))
}

/// Two nodes, each on its own QUIC socket, driven in one loop.
struct Cluster {
    net: Net,
    nodes: [Box<TestNode>; 2],
    links: [QuicLinks; 2],
    deadlines: [Instant; 2],
}

impl Cluster {
    fn new() -> Self {
        let net = Net::new(vec![QuicConfig::default(), QuicConfig::default()]);
        let mut nodes = [build_node(1, &net.clock), build_node(2, &net.clock)];
        let now = net.clock.now();
        for (i, node) in nodes.iter_mut().enumerate() {
            let address = Address {
                transport: Transport::Quic,
                socket: net.addr(i),
            };
            node.handle(now, SetAddresses::from_slice(&[address]));
        }
        Cluster {
            net,
            nodes,
            links: [QuicLinks::default(), QuicLinks::default()],
            deadlines: [now; 2],
        }
    }

    /// One turn of an event loop: node timers, then QUIC events, reads and
    /// one drain of the node (`QuicLinks::drive`), then a wait.
    fn turn(&mut self, mut on_event: impl FnMut(usize, &Event)) {
        let now = self.net.clock.now();
        let mut buf = vec![0u8; MSG + 64];
        for i in 0..2 {
            let node = &mut *self.nodes[i];
            let links = &mut self.links[i];
            let transport = self.net.sockets[i].transport_mut();
            if self.deadlines[i] <= now {
                node.handle(now, Timeout);
            }
            self.deadlines[i] = links
                .drive(transport, node, now, &mut buf, |_, output| {
                    if let Output::Event(event) = output {
                        on_event(i, &event);
                    }
                })
                .unwrap();
        }
        let deadline = self
            .deadlines
            .iter()
            .copied()
            .chain(self.links.iter().filter_map(QuicLinks::next_deadline))
            .min();
        let cap = if self.links.iter().any(QuicLinks::has_work) {
            Duration::ZERO
        } else {
            Duration::from_millis(20)
        };
        self.net.step(cap, deadline);
    }
}

#[derive(Default)]
struct Seen {
    established: Vec<(LinkId, NodeId)>,
    learned: Vec<NodeId>,
    closed: Vec<(LinkId, CloseReason, ClosedBy)>,
}

#[test]
fn two_nodes_link_over_quic_and_exchange_descriptors() {
    let mut c = Cluster::new();
    let ids = [c.nodes[0].node_id(), c.nodes[1].node_id()];
    // Node 0 boots from node 1's QUIC address: the node asks for the dial.
    let now = c.net.clock.now();
    let bootstrap = AddBootstrap {
        address: Address {
            transport: Transport::Quic,
            socket: c.net.addr(1),
        },
        node_id: None,
    };
    c.nodes[0].handle(now, bootstrap).unwrap();
    let mut seen = [Seen::default(), Seen::default()];
    let record = |seen: &mut [Seen; 2], i: usize, event: &Event| match *event {
        Event::LinkEstablished { link, peer, .. } => seen[i].established.push((link, peer)),
        Event::PeerLearned { peer, .. } => seen[i].learned.push(peer),
        Event::LinkClosed {
            link, reason, by, ..
        } => seen[i].closed.push((link, reason, by)),
        _ => {}
    };

    let linked = |seen: &[Seen; 2]| {
        (0..2).all(|i| !seen[i].established.is_empty() && seen[i].learned.contains(&ids[1 - i]))
    };
    while !linked(&seen) {
        assert!(!c.net.clock.expired(), "link or discovery never finished");
        c.turn(|i, e| record(&mut seen, i, e));
        for s in &seen {
            assert!(s.closed.is_empty(), "a link closed: {:?}", s.closed);
        }
    }
    for (i, seen) in seen.iter().enumerate() {
        let (link, peer) = seen.established[0];
        assert_eq!(peer, ids[1 - i], "node {i} linked with the wrong peer");
        let info = c.nodes[i].link_info(link).unwrap();
        assert_eq!(info.transport, Some(Transport::Quic));
        assert_eq!(c.links[i].link_count(), 1);
    }

    // Node 0 shuts the link down: node 1 must get the `Close` frame (the
    // QUIC close lingers until it is delivered), then both connections go.
    let link = seen[0].established[0].0;
    let now = c.net.clock.now();
    let close = CloseLink {
        link,
        reason: CloseReason::Shutdown,
    };
    c.nodes[0].handle(now, close).unwrap();
    while seen[1].closed.is_empty()
        || c.net
            .sockets
            .iter()
            .any(|s| s.transport().connection_count() > 0)
    {
        assert!(!c.net.clock.expired(), "the close never finished");
        c.turn(|i, e| record(&mut seen, i, e));
    }
    assert_eq!(
        seen[0].closed,
        [(link, CloseReason::Shutdown, ClosedBy::Local)]
    );
    let far_link = seen[1].established[0].0;
    assert_eq!(
        seen[1].closed,
        [(far_link, CloseReason::Shutdown, ClosedBy::Peer)]
    );
    assert_eq!(c.links[0].link_count() + c.links[1].link_count(), 0);
}
