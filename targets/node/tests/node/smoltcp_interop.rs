//! Interop between the no_std smoltcp adapter and the Linux node: a
//! `veil-smoltcp` node on a TAP device, driven by this test's thread, joins
//! a network of real `veil node` processes that use the kernel's TCP.
//!
//! The test builds its own network namespace, so it never touches the
//! host's addresses or routes (it needs root, `/dev/net/tun` and iproute2,
//! and fails, never skips, without them):
//!
//! ```text
//!  test process (host netns)                     netns veil-tap-<pid>
//!  smoltcp 10.200.0.2/24 ── TAP vtap<pid> (Ethernet) ── 10.200.0.1/24 (kernel)
//!  MAC 02:00:5e:00:02:02                          lo: 10.1.0.1 … 10.4.0.1
//!                                                 `veil node` i on 10.(i+1).0.1:7000,
//!                                                 control on n<i>/data/control.sock
//! ```
//!
//! The TAP device is opened here and then moved into the namespace; its
//! file descriptor keeps working. The smoltcp interface speaks Ethernet on
//! it (`Medium::Ethernet`, its own MAC address) and resolves the kernel's
//! address with ARP, as the kernel resolves its; the test checks that the
//! device is a TAP and that the kernel learned the smoltcp MAC. Every std node has an address in its own
//! /16, because path selection never puts two hops of a circuit in one.
//! The `veil` clients (`status`, `listen`, `send`) run under `ip netns
//! exec` beside their nodes (the control sockets are Unix sockets in the
//! data directories, so any namespace would do), while the test thread
//! keeps polling the smoltcp node.
//!
//! What it proves: smoltcp TCP carries link handshakes with the kernel's
//! TCP both ways (the smoltcp node dials and accepts), descriptors go both
//! ways, the smoltcp node builds a 3-relay circuit through the std nodes
//! and gets a message acknowledged end to end, a std node builds a circuit
//! to the smoltcp node and gets its message delivered, and the smoltcp
//! node's reply goes back over that circuit.

use crate::common;

use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::io::AsRawFd;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::netns::{ip, listened, logs, require_privileges, spawn_std_node, Netns, StdNode, PORT};
use common::{Children, Scratch};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Medium, TunTapInterface};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};
use veil_core::identity::{Identity, NodeId};
use veil_core::link::LinkRole;
use veil_core::message::{MessageSlot, Sender};
use veil_core::node::{
    AddBootstrap, Event, LinkSlot, Node, NodeConfig, Output as NodeOutput, Reply, SendMessage,
    SetAddresses,
};
use veil_smoltcp::{tcp_address, to_smoltcp_instant, Driver, DriverConfig, Slot};

/// Std nodes: three relays and one destination, so the 3-relay circuit
/// must go through every other std node.
const STD_NODES: usize = 4;
const TAP_IP: [u8; 4] = [10, 200, 0, 2];
const KERNEL_IP: [u8; 4] = [10, 200, 0, 1];
/// The smoltcp interface's MAC address (locally administered, unicast).
const TAP_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x02, 0x02];
/// Every wait is bounded by this; nothing asserts on how long it took.
const LIMIT: Duration = Duration::from_secs(60);

// The smoltcp node's sizes: small, as on a device, but room for the std
// nodes' larger link messages and a few multi-cell messages.
const MSG: usize = 2_048;
const LINKS: usize = 6;
/// One listener and one socket per link.
const SOCKETS: usize = LINKS + 1;
const TCP_BUFFER: usize = 8_192;

veil_core::node_profile! {
    struct TapProfile {
        link_receive: 4_096 + 2,
        link_send_queue: 16,
        events: 16,
        peers: 8,
        relayed: 4,
        own: 2,
        message: MSG,
        links: [LinkSlot<TapProfile>; LINKS],
        messages: [MessageSlot<[u8; MSG]>; 4],
    }
}

type TapNode = Node<TapProfile>;

/// The smoltcp node: the TAP device, the interface, the sockets, the
/// driver and the core node, all polled from the test thread.
struct Station {
    device: TunTapInterface,
    iface: Interface,
    sockets: SocketSet<'static>,
    driver: Driver<'static>,
    node: Box<TapNode>,
    start: std::time::Instant,
    events: Vec<Event>,
    received: Vec<(Vec<u8>, Sender)>,
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("OS entropy");
    bytes
}

impl Station {
    /// Opens the TAP device `tap` (in the host namespace: the caller moves
    /// it) and a node that bootstraps from the first std node.
    fn new(tap: &str) -> Station {
        let mut device = TunTapInterface::new(tap, Medium::Ethernet)
            .unwrap_or_else(|e| panic!("cannot create TAP device {tap}: {e}"));
        // The core's clock starts now; descriptors carry wall-clock times
        // that the std nodes check, so Instant::ZERO is this Unix time.
        let start = std::time::Instant::now();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(TAP_MAC)));
        config.random_seed = u64::from_le_bytes(random());
        let mut iface = Interface::new(
            config,
            &mut device,
            to_smoltcp_instant(veil_core::time::Instant::ZERO),
        );
        iface.update_ip_addrs(|addrs| {
            addrs
                .push(IpCidr::new(Ipv4Address::from(TAP_IP).into(), 24))
                .expect("address");
        });
        iface
            .routes_mut()
            .add_default_ipv4_route(Ipv4Address::from(KERNEL_IP))
            .expect("route");
        let mut sockets = SocketSet::new(Vec::new());
        let slots: Vec<Slot> = (0..SOCKETS)
            .map(|_| {
                Slot::new(sockets.add(tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0u8; TCP_BUFFER]),
                    tcp::SocketBuffer::new(vec![0u8; TCP_BUFFER]),
                )))
            })
            .collect();
        let port = u16::from_le_bytes(random());
        let driver = Driver::new(
            DriverConfig {
                listen_port: Some(PORT),
                first_local_port: 49_152 + port % 10_000,
                ..DriverConfig::default()
            },
            slots.leak(),
        );
        let node_config = NodeConfig {
            unix_time_at_zero: unix,
            gossip_interval: veil_core::time::Duration::from_secs(1),
            bootstrap_retry: veil_core::time::Duration::from_millis(500),
            // An endpoint, like a device: std nodes never route through it.
            relay: false,
            extend_to_private_addresses: true,
            ..NodeConfig::default()
        };
        let mut node = Box::new(Node::new(
            node_config,
            Identity::from_secret_bytes(random()),
            random(),
            core::array::from_fn(|_| LinkSlot::new()),
            core::array::from_fn(|_| MessageSlot::new()),
        ));
        let zero = veil_core::time::Instant::ZERO;
        node.handle(
            zero,
            SetAddresses::from_slice(&[tcp_address(TAP_IP.into(), PORT)]),
        );
        let bootstrap = AddBootstrap::address(tcp_address([10, 1, 0, 1].into(), PORT));
        node.handle(zero, bootstrap)
            .expect("room for a bootstrap address");
        Station {
            device,
            iface,
            sockets,
            driver,
            node,
            start,
            events: Vec::new(),
            received: Vec::new(),
        }
    }

    fn now(&self) -> veil_core::time::Instant {
        let micros = u64::try_from(self.start.elapsed().as_micros()).expect("time fits");
        veil_core::time::Instant::from_micros(micros)
    }

    /// One round: does what is due, then sleeps until a packet arrives, a
    /// deadline passes, or 20 ms (so the caller can check on children).
    fn poll(&mut self) {
        let now = self.now();
        let Station {
            device,
            iface,
            sockets,
            driver,
            node,
            events,
            received,
            ..
        } = self;
        let mut buf = vec![0u8; MSG];
        driver
            .poll(
                now,
                &mut **node,
                iface,
                device,
                sockets,
                &mut buf,
                |_, output| match output {
                    NodeOutput::Message { message, bytes } => {
                        received.push((bytes.to_vec(), message.sender))
                    }
                    NodeOutput::Event(event) => events.push(event),
                    _ => {}
                },
            )
            .expect("the buffer fits the node's messages");
        let cap = now.saturating_add(veil_core::time::Duration::from_millis(20));
        let next = driver.poll_at(now, iface, sockets).min(cap);
        let wait = smoltcp::time::Duration::from_micros(next.saturating_since(now).as_micros());
        smoltcp::phy::wait(self.device.as_raw_fd(), Some(wait)).expect("wait on the TAP device");
    }

    /// Polls until `done`, at most `limit`.
    fn poll_until(&mut self, limit: Duration, mut done: impl FnMut(&Station) -> bool) -> bool {
        let end = std::time::Instant::now() + limit;
        while !done(self) {
            if std::time::Instant::now() > end {
                return false;
            }
            self.poll();
        }
        true
    }

    /// Keeps the node running while `child` runs; its output once it exits
    /// (it is killed after `limit`).
    fn poll_while_running(&mut self, mut child: Child, limit: Duration) -> Output {
        let exited = self.poll_until(limit, |_| !matches!(child.try_wait(), Ok(None)));
        if !exited {
            let _ = child.kill();
        }
        child.wait_with_output().expect("child output")
    }

    /// A std node's status (`veil status --json` in the namespace).
    fn std_status(&mut self, ns: &Netns, node: &StdNode) -> Option<serde_json::Value> {
        let child = ns
            .veil(&["status", "--json", "--control", &node.control])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn veil status");
        let out = self.poll_while_running(child, Duration::from_secs(20));
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// Polls until `check` holds for `node`'s status, at most `limit`.
    fn wait_std(
        &mut self,
        ns: &Netns,
        node: &StdNode,
        limit: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let end = std::time::Instant::now() + limit;
        loop {
            if let Some(s) = self.std_status(ns, node).filter(&check) {
                return Some(s);
            }
            if std::time::Instant::now() > end {
                return None;
            }
            self.poll_until(Duration::from_millis(100), |_| false);
        }
    }

    fn linked(&self, peer: NodeId, role: LinkRole) -> bool {
        self.events.iter().any(|e| {
            matches!(e, Event::LinkEstablished { peer: p, role: r, .. } if *p == peer && *r == role)
        })
    }

    fn acknowledged(&self, id: veil_core::message::MessageId) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::MessageAcknowledged { id: x } if *x == id))
    }

    /// Everything the smoltcp node knows, for failure messages.
    fn report(&self) -> String {
        format!(
            "smoltcp node events: {:#?}\nlinks: {:?}\nsockets: {:?}\nstats: {:?}\n",
            self.events,
            self.node.links().collect::<Vec<_>>(),
            self.driver.sockets().collect::<Vec<_>>(),
            self.node.stats()
        )
    }
}

#[test]
fn a_smoltcp_node_on_a_tap_device_builds_circuits_with_linux_nodes() {
    require_privileges("smoltcp_interop");
    let started = std::time::Instant::now();
    let pid = std::process::id();
    let ns = Netns::create(format!("veil-tap-{pid}"));
    let scratch = Scratch::new("tap");
    let mut children = Children::default();

    // The TAP device, opened here and moved into the namespace: its kernel
    // end gets 10.200.0.1, the smoltcp end is 10.200.0.2.
    let tap = format!("vtap{pid}");
    let mut station = Station::new(&tap);
    ip(&["link", "set", &tap, "netns", &ns.0]);
    ns.ip(&["addr", "add", "10.200.0.1/24", "dev", &tap]);
    ns.ip(&["link", "set", &tap, "up"]);
    let details = ns.ip_output(&["-d", "link", "show", &tap]);
    assert!(
        details.contains("link/ether") && details.contains("tun type tap"),
        "{tap} is not an Ethernet TAP device: {details}"
    );

    // Std nodes 0-2 bootstrap from node 0; the destination (node 3) from
    // the smoltcp node, so that the smoltcp node accepts a link from the
    // kernel's TCP and the destination learns the rest through it.
    let tap_addr = format!("{}:{PORT}", Ipv4Addr::from(TAP_IP));
    let first_addr = format!("10.1.0.1:{PORT}");
    let std_nodes: Vec<StdNode> = (0..STD_NODES)
        .map(|i| {
            let bootstrap = if i == STD_NODES - 1 {
                tap_addr.as_str()
            } else {
                first_addr.as_str()
            };
            spawn_std_node(&ns, &scratch, i, bootstrap, 200, &mut children)
        })
        .collect();
    let destination = &std_nodes[STD_NODES - 1];
    let tap_id = station.node.node_id();
    let tap_hex = hex::encode(tap_id.as_bytes());

    // Link handshakes over the TAP device both ways (the smoltcp node dials
    // std node 0 and accepts the destination) and descriptor exchange: it
    // learns every std node.
    let (first, last) = (std_nodes[0].id, destination.id);
    let ok = station.poll_until(LIMIT, |st| {
        st.linked(first, LinkRole::Initiator)
            && st.linked(last, LinkRole::Responder)
            && std_nodes
                .iter()
                .all(|n| st.node.node_table().get(&n.id).is_some())
    });
    assert!(
        ok,
        "the smoltcp node did not link and learn the std nodes\n{}{}",
        station.report(),
        logs(&std_nodes)
    );
    // ARP both ways: the kernel knows the smoltcp MAC for 10.200.0.2 (and
    // smoltcp found the kernel's, or no TCP segment would have gone out).
    let mac = TAP_MAC.map(|b| format!("{b:02x}")).join(":");
    let neighbours = ns.ip_output(&["neigh", "show", "dev", &tap]);
    assert!(
        neighbours
            .lines()
            .any(|l| l.starts_with("10.200.0.2 ") && l.contains(&mac)),
        "the kernel did not learn 10.200.0.2 at {mac} by ARP: {neighbours:?}"
    );
    // …and the std nodes see the link and learn the smoltcp node.
    let linked = station.wait_std(&ns, &std_nodes[0], LIMIT, |s| {
        s["links"].as_array().is_some_and(|links| {
            links
                .iter()
                .any(|l| l["peer"] == tap_hex.as_str() && l["phase"] == "established")
        })
    });
    assert!(
        linked.is_some(),
        "std node 0 has no established link to the smoltcp node\n{}",
        logs(&std_nodes)
    );
    let known = station.wait_std(&ns, destination, LIMIT, |s| {
        s["known_nodes"].as_u64() >= Some(STD_NODES as u64)
    });
    assert!(
        known.is_some(),
        "the destination did not learn every node\n{}",
        logs(&std_nodes)
    );
    eprintln!("linked and discovered after {:?}", started.elapsed());

    // One `veil listen` on the destination for the whole test.
    let listen_out = scratch.path("listen.json");
    let listener = ns
        .veil(&[
            "listen",
            "--json",
            "--count",
            "2",
            "--control",
            &destination.control,
        ])
        .stdin(Stdio::null())
        .stdout(File::create(&listen_out).expect("listen output"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn veil listen");
    let listener = children.push(listener);

    // A message from the smoltcp node over a 3-relay circuit to the last
    // std node, printed there by `veil listen`, acknowledged end to end.
    let body = b"from smoltcp on a TAP device, through three Linux relays. ".repeat(20);
    let now = station.now();
    let send = SendMessage {
        destination: destination.id,
        message: &body,
    };
    let id = station.node.handle(now, send).expect("send_message");
    let ok = station.poll_until(LIMIT, |st| st.acknowledged(id));
    assert!(
        ok,
        "message not acknowledged\n{}{}",
        station.report(),
        logs(&std_nodes)
    );
    let ok = station.poll_until(LIMIT, |_| !listened(&listen_out).is_empty());
    assert!(
        ok,
        "veil listen printed nothing: {:?}",
        children.0[listener].try_wait()
    );
    let line = &listened(&listen_out)[0];
    assert!(
        line["from"].is_null(),
        "a circuit's sender is anonymous: {line}"
    );
    assert_eq!(
        hex::decode(line["data_hex"].as_str().expect("data_hex")).expect("hex"),
        body
    );
    assert!(station
        .events
        .iter()
        .any(|e| matches!(e, Event::CircuitReady { destination: d, .. } if *d == destination.id)));
    // The circuit went through all three other std nodes.
    for (i, relay) in std_nodes[..STD_NODES - 1].iter().enumerate() {
        let hop = station.wait_std(&ns, relay, LIMIT, |s| {
            s["circuits_relayed"].as_u64() >= Some(1)
        });
        assert!(
            hop.is_some(),
            "std node {i} relays no circuit\n{}",
            logs(&std_nodes)
        );
    }
    eprintln!("smoltcp -> std delivered after {:?}", started.elapsed());

    // The other way: the destination builds its own circuit to the smoltcp
    // node, through the three other std nodes, and `veil send` exits 0 once the smoltcp node acknowledged.
    let mut send = ns
        .veil(&[
            "send",
            &tap_hex,
            "--control",
            &destination.control,
            "--timeout",
            "60",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn veil send");
    let answer = b"hello smoltcp, from a Linux node".to_vec();
    send.stdin
        .take()
        .expect("stdin")
        .write_all(&answer)
        .expect("write stdin");
    let out = station.poll_while_running(send, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "veil send to the smoltcp node failed: {}\n{}{}",
        String::from_utf8_lossy(&out.stderr),
        station.report(),
        logs(&std_nodes)
    );
    let ok = station.poll_until(LIMIT, |st| !st.received.is_empty());
    assert!(ok, "nothing received\n{}", station.report());
    let (got, sender) = station.received[0].clone();
    assert_eq!(got, answer);
    let Sender::Anonymous(reply_to) = sender else {
        panic!("the smoltcp node must not learn who built the circuit: {sender:?}");
    };

    // The smoltcp node answers over that circuit; the destination sees the
    // answer come from the smoltcp node, and `veil listen` is done.
    let now = station.now();
    let answer = Reply {
        to: reply_to,
        message: b"pong from smoltcp",
    };
    let reply = station.node.handle(now, answer).expect("reply");
    assert!(
        station.poll_until(LIMIT, |st| st.acknowledged(reply)),
        "reply not acknowledged\n{}{}",
        station.report(),
        logs(&std_nodes)
    );
    let exited = station.poll_until(LIMIT, |_| {
        !matches!(children.0[listener].try_wait(), Ok(None))
    });
    let lines = listened(&listen_out);
    assert!(exited, "veil listen did not get the reply: {lines:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["from"], tap_hex.as_str());
    assert_eq!(
        lines[1]["data_hex"],
        hex::encode(b"pong from smoltcp").as_str()
    );
    assert_eq!(station.received.len(), 1, "delivered exactly once");
    eprintln!("round trips done after {:?}", started.elapsed());
}
