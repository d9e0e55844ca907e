//! Building runtimes and driving them until something holds.

use std::time::{Duration, Instant as WallInstant};

use veil_core::identity::{Identity, NodeId};
use veil_core::link::LinkRole;
use veil_core::message::Sender;
use veil_core::node::{Event, LinkId, NodeConfig, Output, Reply, SendMessage};
use veil_mio::{Runtime, RuntimeOptions};

/// How long one turn may wait for readiness.
pub const TURN: Duration = Duration::from_millis(2);
/// Turns before a test gives up.
pub const MAX_TURNS: usize = 20_000;
/// Wall-clock time before a test gives up, whatever the turn count.
pub const WALL_CAP: Duration = Duration::from_secs(10);

/// The default configuration, allowed to extend circuits to the loopback
/// addresses every peer of these tests listens on.
pub fn loopback_config() -> NodeConfig {
    NodeConfig {
        extend_to_private_addresses: true,
        ..NodeConfig::default()
    }
}

/// [`loopback_config`] for circuits through one relay among a few nodes
/// that found each other from one bootstrap address: gossip and bootstrap
/// retries every second, so a test does not wait for the defaults.
pub fn one_relay_config() -> NodeConfig {
    NodeConfig {
        gossip_interval: veil_core::time::Duration::from_secs(1),
        bootstrap_retry: veil_core::time::Duration::from_secs(1),
        path_relays: 1,
        ..loopback_config()
    }
}

/// A runtime, every event it reported, and the messages it received not
/// yet taken by the test.
pub struct Peer {
    pub rt: Runtime,
    pub events: Vec<Event>,
    pub received: Vec<(Sender, Vec<u8>)>,
}

impl Peer {
    /// A runtime on 127.0.0.1 with an identity from `secret`.
    pub fn new(secret: u8) -> Self {
        Peer::with_config(secret, loopback_config(), "127.0.0.1:0")
    }

    /// A runtime listening on `addr` with `config`. Path selection keeps
    /// hops in distinct /16 prefixes, so nodes that must share circuits
    /// listen on distinct loopback networks (`127.N.0.1`).
    pub fn with_config(secret: u8, config: NodeConfig, addr: &str) -> Self {
        Peer::with_options(secret, config, addr, RuntimeOptions::default())
    }

    /// As [`with_config`](Self::with_config), with runtime options.
    pub fn with_options(
        secret: u8,
        config: NodeConfig,
        addr: &str,
        options: RuntimeOptions,
    ) -> Self {
        let identity = Identity::from_secret_bytes([secret; 32]);
        let rt = Runtime::bind_with(
            config,
            identity,
            addr.parse().expect("loopback address"),
            options,
        )
        .expect("bind on loopback");
        Peer {
            rt,
            events: Vec::new(),
            received: Vec::new(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.rt.node_id()
    }

    /// One turn, recording events and received messages.
    pub fn turn(&mut self) {
        let (events, received) = (&mut self.events, &mut self.received);
        self.rt
            .turn(Some(TURN), |_, output| match output {
                Output::Event(event) => events.push(event),
                Output::Message { message, bytes } => {
                    received.push((message.sender, bytes.to_vec()))
                }
                _ => {}
            })
            .expect("turn");
    }

    /// The link on which `peer` was established in `role`, if it was.
    pub fn established_with(&self, peer: NodeId, role: LinkRole) -> Option<LinkId> {
        self.events.iter().find_map(|e| match e {
            Event::LinkEstablished {
                link,
                peer: p,
                role: r,
            } if *p == peer && *r == role => Some(*link),
            _ => None,
        })
    }

    /// Whether `peer`'s descriptor was learned.
    pub fn learned(&self, peer: NodeId) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::PeerLearned { peer: p, .. } if *p == peer))
    }

    /// Whether a link to `peer` was reported closed.
    pub fn closed_with(&self, peer: NodeId) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::LinkClosed { peer: Some(p), .. } if *p == peer))
    }
}

/// Turns every peer in order until `done` holds; false if the caps ran out.
pub fn drive(peers: &mut [&mut Peer], mut done: impl FnMut(&mut [&mut Peer]) -> bool) -> bool {
    let start = WallInstant::now();
    for _ in 0..MAX_TURNS {
        for peer in peers.iter_mut() {
            peer.turn();
        }
        if done(peers) {
            return true;
        }
        if start.elapsed() > WALL_CAP {
            return false;
        }
    }
    false
}

/// `dialler` dials `listener`; both drive until the link is up on both
/// sides and each learned the other's descriptor. Returns the link ids
/// (listener's, dialler's).
pub fn link_up(listener: &mut Peer, dialler: &mut Peer) -> (LinkId, LinkId) {
    let (l_id, d_id) = (listener.id(), dialler.id());
    dialler
        .rt
        .dial(listener.rt.local_addr(), Some(l_id))
        .expect("dial starts");
    let up = drive(&mut [&mut *listener, &mut *dialler], |p| {
        p[0].established_with(d_id, LinkRole::Responder).is_some()
            && p[1].established_with(l_id, LinkRole::Initiator).is_some()
            && p[0].learned(d_id)
            && p[1].learned(l_id)
    });
    assert!(
        up,
        "link did not come up; listener saw {:?}, dialler saw {:?}",
        listener.events, dialler.events
    );
    (
        listener
            .established_with(d_id, LinkRole::Responder)
            .expect("listener link"),
        dialler
            .established_with(l_id, LinkRole::Initiator)
            .expect("dialler link"),
    )
}

/// Relay `a` between sender `b` and destination `c`, all turned together:
/// `b` sends `request` to `c` once it knows `c`, `c` answers every message
/// with `answer` over the circuit it came on, until `b` has the answer and
/// the acknowledgement (or `cap` passes). Checks, as it goes, that nothing
/// is delivered twice and that senders are what they must be (anonymous at
/// `c`, `c` itself at `b`), and at the end that everything arrived intact
/// and acknowledged.
pub fn message_and_reply(
    a: &mut Peer,
    b: &mut Peer,
    c: &mut Peer,
    request: &[u8],
    answer: &[u8],
    cap: Duration,
) {
    let c_id = c.id();
    let start = WallInstant::now();
    let mut sent = None;
    let mut c_got: Option<Vec<u8>> = None;
    let mut b_got: Option<Vec<u8>> = None;
    let acked = |b: &Peer, sent: Option<veil_core::message::MessageId>| {
        sent.is_some_and(|id| {
            b.events
                .iter()
                .any(|e| matches!(e, Event::MessageAcknowledged { id: i } if *i == id))
        })
    };
    while start.elapsed() < cap {
        for peer in [&mut *a, &mut *b, &mut *c] {
            peer.turn();
        }
        // B sends once it knows C (gossiped by A).
        if sent.is_none() && b.rt.node().node_table().get(&c_id).is_some() {
            sent = Some(
                b.rt.handle(SendMessage {
                    destination: c_id,
                    message: request,
                })
                .expect("message queued"),
            );
        }
        // C takes the message and answers over the circuit it came on.
        for (sender, bytes) in std::mem::take(&mut c.received) {
            let Sender::Anonymous(to) = sender else {
                panic!("a message over a circuit must be anonymous: {sender:?}");
            };
            assert!(c_got.is_none(), "delivered twice");
            c_got = Some(bytes);
            c.rt.handle(Reply {
                to,
                message: answer,
            })
            .expect("reply queued");
        }
        for (sender, bytes) in std::mem::take(&mut b.received) {
            assert_eq!(sender, Sender::Node(c_id), "the reply names C");
            assert!(b_got.is_none(), "reply delivered twice");
            b_got = Some(bytes);
        }
        if acked(b, sent) && b_got.is_some() {
            break;
        }
    }
    let failures: Vec<_> = b
        .events
        .iter()
        .filter(|e| matches!(e, Event::MessageFailed { .. }))
        .collect();
    assert!(failures.is_empty(), "B's message failed: {failures:?}");
    assert!(sent.is_some(), "B never learned C; B saw {:?}", b.events);
    assert_eq!(c_got.as_deref(), Some(request), "C saw {:?}", c.events);
    assert_eq!(b_got.as_deref(), Some(answer), "B saw {:?}", b.events);
    assert!(acked(b, sent), "no acknowledgement; B saw {:?}", b.events);
}
