//! Nodes behind a real NAT, as a home user runs one: every node is a real
//! `veil node` process, and the test builds the network it runs in out of
//! network namespaces of its own, deleted on drop (it needs root, iproute2
//! and nftables, and fails, never skips, without them):
//!
//! ```text
//!  netns …-pub (the public side)        netns …-rtr<k> (home router)        netns …-lan<k>
//!  lo 10.100.0.1 … 10.10<i>.0.1         wan 172.(16+k).0.2/24               eth0 192.168.(10+k).2/24
//!  public nodes on <ip>:7000            lan 192.168.(10+k).1/24             default via the router
//!  nat<k> 172.(16+k).0.1/24 ──────────  wan       lan ──────────────────── eth0
//!  192.168.(10+k).0/24 via the router   ip_forward = 1                      `veil node` on :7000
//!                                       nftables: masquerade out of wan,
//!                                       forward drops NEW from wan
//! ```
//!
//! Every public node has an address in a /16 of its own, because path
//! selection never puts two hops of a circuit in one. The public side
//! routes the LAN to its router, so what keeps a stranger out is the
//! router's forward policy (as behind a home NAT), not a missing route.
//! The node behind NAT listens on its LAN address and advertises it (it
//! does not know it is behind NAT) and asks for two introducers
//! ([`behind_nat`]). The control sockets are Unix sockets in the data
//! directories, so the test talks to every node from the host namespace.
//!
//! The first test puts one node behind NAT, with five relays and a sender
//! on the public side: messages go both ways, then the introducer on the
//! sender's live circuit is killed and they still go both ways, each
//! exactly once. The second puts one node behind each of two NATs, and
//! each sends to the other. The third runs a rendezvous service
//! (`service = true`) behind one NAT and a sender behind the other: the
//! sender learns the service's descriptor (`veil learn-service`, from the
//! service's `service.descriptor`), messages go to the service id and
//! replies come back by the reply tokens of the service's `veil listen
//! --json`, each exactly once; then the service's first introduction point
//! is killed, its descriptor is re-signed without it, learnt anew, and
//! messages still go both ways exactly once.
//!
//! Before any message, the test checks that the NAT is real: the router
//! (on the LAN) can connect to the node's port, the public side cannot
//! (the router's drop rule counts the attempt), and the LAN can connect out
//! to a public node. Assertions are on counts; times are printed
//! (`--nocapture`).

use crate::common;

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{eventually, keygen_into, wait, Children, Scratch, VEIL};
use veil_core::identity::{NodeId, ServiceDescriptor};
use veil_node::control_address::Endpoint;
use veil_node::control_client::ControlClient;

/// Public nodes that only relay (the first test adds a sender).
const RELAYS: usize = 5;
const MESSAGES: usize = 20;
const SHORT: Duration = Duration::from_secs(30);
/// Every node listens on this port of its own address.
const PORT: u16 = 7_000;

/// The config lines of a node behind NAT beyond those every node has: it
/// advertises the LAN address it listens on, not knowing it is behind NAT,
/// finds that out by asking peers to dial it back, and is then reached
/// through two relays it lists in its descriptor.
fn behind_nat(listen: &str) -> String {
    format!("advertise = [\"{listen}\"]\nreachability = \"detect\"\n")
}

/// The home router's nftables rules: masquerade what leaves by `wan`, let
/// the LAN out and answers back in, and drop (counting) anything else
/// that comes in by `wan`.
const ROUTER_RULES: &str = "\
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname \"wan\" masquerade
    }
}
table ip filter {
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname \"lan\" oifname \"wan\" accept
        iifname \"wan\" counter drop
    }
}
";

/// Fails in one line, with what is missing, when the test cannot build
/// its network.
fn require_privileges() {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string();
    if euid != "0" {
        panic!(
            "nat tests must run as root: they create network namespaces, veth pairs and \
             nftables masquerade"
        );
    }
    for (program, flag, package) in [("ip", "-V", "iproute2"), ("nft", "-v", "nftables")] {
        let found = Command::new(program)
            .arg(flag)
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            panic!("the `{program}` command is missing: install {package}");
        }
    }
}

/// Runs `program args…` (with `input` on its stdin) and panics with its
/// stderr if it fails; returns its stdout.
fn run(program: &str, args: &[&str], input: &str) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip args…` in namespace `ns`.
fn ip(ns: &str, args: &[&str]) {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("ip", &all, "");
}

/// The namespaces of one test, named after the test process and a
/// counter (tests of one process run in parallel). Deleted on drop, with
/// the veth pairs in them: declare it before the [`Children`] that run in
/// them, so they are killed first.
struct Network {
    name: String,
    namespaces: Vec<String>,
}

/// A home router and the LAN behind it.
struct Nat {
    router: String,
    lan: String,
    /// The LAN address of the one host on it.
    host: String,
}

impl Network {
    /// The public side, with no address yet.
    fn new() -> Network {
        static N: AtomicUsize = AtomicUsize::new(0);
        let mut net = Network {
            name: format!(
                "veil-nat-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
            namespaces: Vec::new(),
        };
        net.namespace("pub");
        net
    }

    fn namespace(&mut self, suffix: &str) -> String {
        let ns = format!("{}-{suffix}", self.name);
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        run("ip", &["netns", "add", &ns], "");
        self.namespaces.push(ns.clone());
        ip(&ns, &["link", "set", "lo", "up"]);
        ns
    }

    /// The public side's namespace.
    fn public(&self) -> String {
        format!("{}-pub", self.name)
    }

    /// Gives the public side the address of public node `i`, in a /16 of
    /// its own, and returns it.
    fn public_address(&self, i: usize) -> String {
        let address = format!("10.{}.0.1", 100 + i);
        ip(
            &self.public(),
            &["addr", "add", &format!("{address}/32"), "dev", "lo"],
        );
        address
    }

    /// Home router `k` on the public side, masquerading for the LAN
    /// behind it, and that LAN with one host.
    fn add_nat(&mut self, k: usize) -> Nat {
        let public = self.public();
        let router = self.namespace(&format!("rtr{k}"));
        let lan = self.namespace(&format!("lan{k}"));
        let (wan_net, lan_net) = (16 + k, 10 + k);
        let uplink = format!("nat{k}");
        ip(
            &public,
            &[
                "link", "add", &uplink, "type", "veth", "peer", "name", "wan", "netns", &router,
            ],
        );
        ip(
            &public,
            &[
                "addr",
                "add",
                &format!("172.{wan_net}.0.1/24"),
                "dev",
                &uplink,
            ],
        );
        ip(&public, &["link", "set", &uplink, "up"]);
        ip(
            &router,
            &[
                "addr",
                "add",
                &format!("172.{wan_net}.0.2/24"),
                "dev",
                "wan",
            ],
        );
        ip(&router, &["link", "set", "wan", "up"]);
        ip(
            &router,
            &[
                "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", &lan,
            ],
        );
        ip(
            &router,
            &[
                "addr",
                "add",
                &format!("192.168.{lan_net}.1/24"),
                "dev",
                "lan",
            ],
        );
        ip(&router, &["link", "set", "lan", "up"]);
        ip(
            &lan,
            &[
                "addr",
                "add",
                &format!("192.168.{lan_net}.2/24"),
                "dev",
                "eth0",
            ],
        );
        ip(&lan, &["link", "set", "eth0", "up"]);
        ip(
            &lan,
            &[
                "route",
                "add",
                "default",
                "via",
                &format!("192.168.{lan_net}.1"),
            ],
        );
        ip(
            &router,
            &[
                "route",
                "add",
                "default",
                "via",
                &format!("172.{wan_net}.0.1"),
            ],
        );
        ip(
            &public,
            &[
                "route",
                "add",
                &format!("192.168.{lan_net}.0/24"),
                "via",
                &format!("172.{wan_net}.0.2"),
            ],
        );
        run(
            "ip",
            &[
                "netns",
                "exec",
                &router,
                "sh",
                "-c",
                "echo 1 > /proc/sys/net/ipv4/ip_forward",
            ],
            "",
        );
        run(
            "ip",
            &["netns", "exec", &router, "nft", "-f", "-"],
            ROUTER_RULES,
        );
        Nat {
            router,
            lan,
            host: format!("192.168.{lan_net}.2"),
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Nat {
    /// Packets from outside the router dropped so far.
    fn dropped(&self) -> u64 {
        let rules = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.router,
                "nft",
                "list",
                "chain",
                "ip",
                "filter",
                "forward",
            ],
            "",
        );
        rules
            .lines()
            .find(|l| l.contains("counter packets"))
            .and_then(|l| l.split_whitespace().skip_while(|w| *w != "packets").nth(1))
            .and_then(|n| n.parse().ok())
            .expect("the router's drop rule and its counter")
    }
}

/// Connects from namespace `ns` to `ip:port` with bash's `/dev/tcp`: `Ok`
/// once connected, or why not (no answer within 3 s, or bash's error).
fn tcp_connect(ns: &str, ip: &str, port: u16) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "timeout", "3", "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/{ip}/{port}"))
        .output()
        .expect("run ip netns exec timeout bash");
    match out.status.code() {
        Some(0) => Ok(()),
        Some(124) => Err("no answer within 3 s".into()),
        _ => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

struct Node {
    name: String,
    id: NodeId,
    control: Endpoint,
    dir: PathBuf,
}

fn logs(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| {
            format!(
                "--- {}\n{}",
                n.name,
                common::read(&n.dir.join("stderr.log"))
            )
        })
        .collect()
}

fn control(endpoint: &Endpoint) -> ControlClient {
    ControlClient::connect(endpoint, Some(Duration::from_secs(130))).expect("control")
}

/// Starts `veil node` in namespace `ns`, listening on `ip:PORT` and
/// bootstrapping from `bootstrap`, with `extra` config lines.
fn spawn_node(
    scratch: &Scratch,
    children: &mut Children,
    ns: &str,
    name: &str,
    ip: &str,
    bootstrap: &str,
    extra: &str,
) -> Node {
    let dir = scratch.path(&name.replace(' ', "-"));
    let data = dir.join("data");
    let id = NodeId::from_hex(&keygen_into(&data)).expect("node id");
    let config = format!(
        "listen = \"{ip}:{PORT}\"\ndata_dir = \"{}\"\n\
         bootstrap = [\"{bootstrap}\"]\ngossip_interval_ms = 200\nextend_to_private_addresses = true\n\
         bootstrap_retry_ms = 300\nlog_level = \"info\"\n{extra}",
        data.display()
    );
    fs::write(dir.join("veil.toml"), config).expect("config");
    // `ip netns exec` execs `veil`, so the child's pid is veil's own.
    let child = Command::new("ip")
        .args(["netns", "exec", ns, VEIL, "node", "--config"])
        .arg(dir.join("veil.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.join("stderr.log")).expect("log"))
        .spawn()
        .expect("spawn veil node");
    children.push(child);
    Node {
        name: name.into(),
        id,
        control: Endpoint::of_node(&data, None),
        dir,
    }
}

/// Waits until every node knows every other (a node behind NAT is known
/// only once it lists its introducers), except that the seed (the first
/// node, whose bootstrap address is its own) need only know the other
/// `public` nodes.
///
/// The seed may be left without any link, and then learns nothing more:
/// `veil-mio` drops a node's own address from its bootstrap list, so the
/// seed keeps no outbound links (it dials only what circuits need); every
/// joiner closes its bootstrap link to it once it has an outbound link of
/// its own, and draws its outbound links from relays not at a bootstrap
/// address. A node behind NAT sends its descriptor only once it lists an
/// introducer, which may be after its bootstrap link to the seed is gone.
/// Seen here under CPU load: the seed at 5 known nodes of 6, 0 links, for
/// 30 s, every link it had closed within 0.25 s as "Pruned by Peer".
fn learn_network(nodes: &[Node], public: usize) {
    for (i, node) in nodes.iter().enumerate() {
        let others = if i == 0 { public - 1 } else { nodes.len() - 1 };
        let mut last = None;
        let known = eventually(SHORT, || {
            let mut control = ControlClient::connect(&node.control, Some(SHORT)).ok()?;
            let status = control.status().ok()?;
            let k = status.known_nodes;
            last = Some((k, status.links.len(), status.reachability.clone()));
            // Behind NAT, the node must have found out by itself.
            let detected = i < public || status.reachability.starts_with("not reachable");
            (k >= others && detected).then_some(k)
        });
        assert!(
            known.is_some(),
            "{} did not learn the network: (known nodes, links, reachability) {last:?}, {others} wanted\n{}",
            node.name,
            logs(nodes)
        );
    }
}

/// Checks that the NAT is real for the node on its LAN, listening on
/// `PORT`: its router can connect to it, the public side cannot (the
/// router drops the attempt), and it can connect out to `public_ip`.
fn check_nat(nat: &Nat, public: &str, public_ip: &str, nodes: &[Node]) {
    let on_lan = tcp_connect(&nat.router, &nat.host, PORT);
    assert!(
        on_lan.is_ok(),
        "the router cannot connect to {}:{PORT} on its LAN: {on_lan:?}\n{}",
        nat.host,
        logs(nodes)
    );
    let dropped = nat.dropped();
    let outside = tcp_connect(public, &nat.host, PORT);
    assert!(
        outside.is_err(),
        "the public side connected to {}:{PORT} behind the NAT",
        nat.host
    );
    let dropped_now = nat.dropped();
    assert!(
        dropped_now > dropped,
        "the public side's connect to {}:{PORT} failed ({outside:?}), but not at the router",
        nat.host
    );
    let out = tcp_connect(&nat.lan, public_ip, PORT);
    assert!(
        out.is_ok(),
        "{} cannot connect out to {public_ip}:{PORT}: {out:?}\n{}",
        nat.host,
        logs(nodes)
    );
    println!(
        "NAT at {}: the router connects in; the public side does not ({}, {} packets \
         dropped at the router); the LAN connects out",
        nat.host,
        outside.unwrap_err(),
        dropped_now - dropped
    );
}

/// Runs `veil listen` for `count` messages to `node`, into `out`; returns
/// its index in `children`.
fn listen(node: &Node, count: usize, out: &Path, children: &mut Children) -> usize {
    let listener = Command::new(VEIL)
        .args(["listen", "--json", "--count", &count.to_string()])
        .args(["--control", &node.control.to_string()])
        .stdin(Stdio::null())
        .stdout(File::create(out).expect("listen out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn listen");
    children.push(listener)
}

/// What a listener printed: the messages, sorted.
fn received(out: &Path) -> Vec<String> {
    let mut got: Vec<String> = fs::read_to_string(out)
        .expect("listen output")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            let data = hex::decode(v["data_hex"].as_str().expect("hex")).expect("hex");
            String::from_utf8(data).expect("utf-8")
        })
        .collect();
    got.sort();
    got
}

/// Sends one message and returns how long it took to be acknowledged.
fn send(from: &mut ControlClient, to: &Node, text: &str, nodes: &[Node]) -> Duration {
    let at = Instant::now();
    let answer = from.send(to.id, text.as_bytes());
    assert!(
        answer.is_ok(),
        "{text:?} to {}: {answer:?}\n{}",
        to.name,
        logs(nodes)
    );
    at.elapsed()
}

/// Waits for the listener `index` to exit with all it counted, and
/// checks that it got exactly `want`.
fn check_received(
    children: &mut Children,
    index: usize,
    out: &Path,
    mut want: Vec<String>,
    to: &str,
    nodes: &[Node],
) {
    assert!(
        wait(&mut children.0[index], SHORT).is_some(),
        "the listener of {to} did not get {} messages\n{}",
        want.len(),
        logs(nodes)
    );
    want.sort();
    assert_eq!(
        received(out),
        want,
        "lost or duplicated messages to {to}\n{}",
        logs(nodes)
    );
}

#[test]
fn a_node_behind_nat_is_reached_through_introducers() {
    require_privileges();
    let mut net = Network::new();
    let nat = net.add_nat(0);
    let scratch = Scratch::new("nat");
    let mut children = Children::default();
    let public = net.public();
    let bootstrap = format!("10.100.0.1:{PORT}");
    let mut nodes = Vec::new();
    // Five relays and the sender, which relays too.
    for i in 0..=RELAYS {
        let ip = net.public_address(i);
        let node = spawn_node(
            &scratch,
            &mut children,
            &public,
            &format!("public {i}"),
            &ip,
            &bootstrap,
            "",
        );
        nodes.push(node);
    }
    let src = 1usize;
    let dst = nodes.len();
    let node = spawn_node(
        &scratch,
        &mut children,
        &nat.lan,
        "behind NAT",
        &nat.host,
        &bootstrap,
        &behind_nat(&format!("{}:{PORT}", nat.host)),
    );
    nodes.push(node);
    learn_network(&nodes, RELAYS + 1);
    check_nat(&nat, &public, "10.100.0.1", &nodes);

    let to_dst = scratch.path("to-dst.jsonl");
    let to_src = scratch.path("to-src.jsonl");
    let dst_listener = listen(&nodes[dst], MESSAGES + 1, &to_dst, &mut children);
    let src_listener = listen(&nodes[src], MESSAGES + 1, &to_src, &mut children);
    let mut sender = control(&nodes[src].control);
    let mut behind = control(&nodes[dst].control);
    // The sender's first circuit also sets up its link to its guard: one
    // to another node first, so that the figure below is one circuit build
    // and one message.
    send(&mut sender, &nodes[3], "warm up", &nodes);
    let first = send(&mut sender, &nodes[dst], "first in", &nodes);
    println!(
        "first message to the node behind NAT: acknowledged after {} ms",
        first.as_millis()
    );
    let first = send(&mut behind, &nodes[src], "first out", &nodes);
    println!(
        "first message from the node behind NAT: acknowledged after {} ms",
        first.as_millis()
    );

    // The introducer on the sender's live circuit: its last relay.
    let status = control(&nodes[src].control).status().expect("status");
    let path: Vec<String> = status
        .own_circuits
        .iter()
        .find(|c| c.state == "ready" && c.path.last() == Some(&nodes[dst].id.to_string()))
        .map(|c| c.path.clone())
        .expect("a ready circuit to the node behind NAT");
    let introducer = nodes
        .iter()
        .position(|n| Some(&n.id.to_string()) == path.iter().rev().nth(1))
        .expect("the last relay is one of the nodes");
    assert!(introducer != src && introducer != dst);

    let (mut gap_in, mut gap_out) = (Duration::ZERO, Duration::ZERO);
    for k in 0..MESSAGES {
        if k == MESSAGES / 2 {
            let killed = Command::new("kill")
                .args(["-KILL", &children.0[introducer].id().to_string()])
                .status();
            assert!(killed.is_ok_and(|s| s.success()));
            assert!(wait(&mut children.0[introducer], SHORT).is_some());
        }
        let took = send(&mut sender, &nodes[dst], &format!("in {k}"), &nodes);
        gap_in = gap_in.max(took);
        let took = send(&mut behind, &nodes[src], &format!("out {k}"), &nodes);
        gap_out = gap_out.max(took);
    }
    println!(
        "{MESSAGES} messages each way, {} (the introducer on the live circuit) killed halfway: \
         longest send-to-acknowledgement {} ms in, {} ms out",
        nodes[introducer].name,
        gap_in.as_millis(),
        gap_out.as_millis()
    );
    let status = control(&nodes[src].control).status().expect("status");
    let now_through: Vec<&str> = status
        .own_circuits
        .iter()
        .filter(|c| c.state == "ready" && c.path.last() == Some(&nodes[dst].id.to_string()))
        .filter_map(|c| c.path.iter().rev().nth(1))
        .filter_map(|id| nodes.iter().find(|n| n.id.to_string() == *id))
        .map(|n| n.name.as_str())
        .collect();
    println!("the sender's circuits to the node behind NAT now end at: {now_through:?}");

    let mut want: Vec<String> = (0..MESSAGES).map(|k| format!("in {k}")).collect();
    want.push("first in".into());
    check_received(
        &mut children,
        dst_listener,
        &to_dst,
        want,
        "the node behind NAT",
        &nodes,
    );
    let mut want: Vec<String> = (0..MESSAGES).map(|k| format!("out {k}")).collect();
    want.push("first out".into());
    check_received(
        &mut children,
        src_listener,
        &to_src,
        want,
        "the sender",
        &nodes,
    );
}

#[test]
fn two_nodes_behind_two_different_nats_talk() {
    require_privileges();
    let mut net = Network::new();
    let nats = [net.add_nat(0), net.add_nat(1)];
    let scratch = Scratch::new("nat2");
    let mut children = Children::default();
    let public = net.public();
    let bootstrap = format!("10.100.0.1:{PORT}");
    let mut nodes = Vec::new();
    for i in 0..RELAYS {
        let ip = net.public_address(i);
        let node = spawn_node(
            &scratch,
            &mut children,
            &public,
            &format!("public {i}"),
            &ip,
            &bootstrap,
            "",
        );
        nodes.push(node);
    }
    let (a, b) = (nodes.len(), nodes.len() + 1);
    for (k, nat) in nats.iter().enumerate() {
        let node = spawn_node(
            &scratch,
            &mut children,
            &nat.lan,
            &format!("behind NAT {k}"),
            &nat.host,
            &bootstrap,
            &behind_nat(&format!("{}:{PORT}", nat.host)),
        );
        nodes.push(node);
    }
    learn_network(&nodes, RELAYS);
    for nat in &nats {
        check_nat(nat, &public, "10.100.0.1", &nodes);
    }

    let to_a = scratch.path("to-a.jsonl");
    let to_b = scratch.path("to-b.jsonl");
    let a_listener = listen(&nodes[a], MESSAGES, &to_a, &mut children);
    let b_listener = listen(&nodes[b], MESSAGES, &to_b, &mut children);
    let mut from_a = control(&nodes[a].control);
    let mut from_b = control(&nodes[b].control);
    let (mut gap_ab, mut gap_ba) = (Duration::ZERO, Duration::ZERO);
    for k in 0..MESSAGES {
        let took = send(&mut from_a, &nodes[b], &format!("a to b {k}"), &nodes);
        if k == 0 {
            println!(
                "first message from NAT 0 to NAT 1: acknowledged after {} ms",
                took.as_millis()
            );
        }
        gap_ab = gap_ab.max(took);
        let took = send(&mut from_b, &nodes[a], &format!("b to a {k}"), &nodes);
        if k == 0 {
            println!(
                "first message from NAT 1 to NAT 0: acknowledged after {} ms",
                took.as_millis()
            );
        }
        gap_ba = gap_ba.max(took);
    }
    println!(
        "{MESSAGES} messages each way between the two NATs: longest send-to-acknowledgement \
         {} ms from 0 to 1, {} ms from 1 to 0",
        gap_ab.as_millis(),
        gap_ba.as_millis()
    );

    let want: Vec<String> = (0..MESSAGES).map(|k| format!("b to a {k}")).collect();
    check_received(
        &mut children,
        a_listener,
        &to_a,
        want,
        "the node behind NAT 0",
        &nodes,
    );
    let want: Vec<String> = (0..MESSAGES).map(|k| format!("a to b {k}")).collect();
    check_received(
        &mut children,
        b_listener,
        &to_b,
        want,
        "the node behind NAT 1",
        &nodes,
    );
}

/// A message a [`LineListener`] got, and when.
struct Got {
    at: Instant,
    text: String,
    from: Option<String>,
    reply_to: Option<String>,
}

/// `veil listen --json` on a node, its lines handed over as they are
/// printed, each with the time it was read (so the time a message
/// arrived is known to a few milliseconds).
struct LineListener {
    lines: mpsc::Receiver<Got>,
}

impl LineListener {
    fn start(node: &Node, children: &mut Children) -> LineListener {
        let mut child = Command::new(VEIL)
            .args(["listen", "--json"])
            .args(["--control", &node.control.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn listen");
        let stdout = child.stdout.take().expect("stdout");
        children.push(child);
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                let v: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
                let data = hex::decode(v["data_hex"].as_str().expect("hex")).expect("hex");
                let got = Got {
                    at,
                    text: String::from_utf8(data).expect("utf-8"),
                    from: v["from"].as_str().map(str::to_string),
                    reply_to: v["reply_to"].as_str().map(str::to_string),
                };
                if tx.send(got).is_err() {
                    break;
                }
            }
        });
        LineListener { lines }
    }

    /// The next message, waiting at most `timeout`.
    fn next(&self, timeout: Duration) -> Option<Got> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// `want` messages (at most `SHORT` for them), then whatever comes
    /// within another second: a duplicate would be among them.
    fn take(&self, want: usize) -> Vec<Got> {
        let mut got = Vec::new();
        let give_up = Instant::now() + SHORT;
        while got.len() < want {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(g) => got.push(g),
                None => break,
            }
        }
        while let Some(g) = self.next(Duration::from_secs(1)) {
            got.push(g);
        }
        got
    }
}

/// Checks that `got` is exactly `want`, each once.
fn check_exactly_once(got: &[Got], mut want: Vec<String>, to: &str, nodes: &[Node]) {
    let mut texts: Vec<String> = got.iter().map(|g| g.text.clone()).collect();
    texts.sort();
    want.sort();
    assert_eq!(
        texts,
        want,
        "lost or duplicated messages to {to}\n{}",
        logs(nodes)
    );
}

/// `veil args…`, which must succeed; returns its stdout.
fn veil(args: &[&str], stdin: &[u8], nodes: &[Node]) -> String {
    let out = common::run(args, stdin, Duration::from_secs(150));
    assert!(
        out.status.success(),
        "`veil {}` failed: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim(),
        logs(nodes)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The service's descriptor file, verified, once `ok` holds for it.
fn wait_for_descriptor(
    node: &Node,
    timeout: Duration,
    nodes: &[Node],
    mut ok: impl FnMut(&[u8], &ServiceDescriptor) -> bool,
) -> (Vec<u8>, ServiceDescriptor) {
    let path = node.dir.join("data").join("service.descriptor");
    let mut last = None;
    let found = eventually(timeout, || {
        let bytes = fs::read(&path).ok()?;
        let parsed = ServiceDescriptor::parse_verified(&bytes).expect("a valid descriptor");
        last = Some(parsed.intro_points.len());
        ok(&bytes, &parsed).then_some((bytes, parsed))
    });
    found.unwrap_or_else(|| {
        panic!(
            "{} did not get the descriptor wanted (last one listed {last:?} introduction points)\n{}",
            path.display(),
            logs(nodes)
        )
    })
}

/// Sends `text` to the service `service` from `from`'s node with
/// `veil send`.
fn send_to_service(from: &Node, service: &str, text: &str, nodes: &[Node]) {
    veil(
        &["send", service, "--control", &from.control.to_string()],
        text.as_bytes(),
        nodes,
    );
}

/// Answers every message of `got` with `veil reply`, as "re: <text>".
fn reply_to_all(service: &Node, got: &[Got], nodes: &[Node]) -> Vec<String> {
    let control = service.control.to_string();
    got.iter()
        .map(|g| {
            let token = g
                .reply_to
                .as_deref()
                .expect("an anonymous message has a reply token");
            let answer = format!("re: {}", g.text);
            veil(
                &["reply", token, "--control", &control],
                answer.as_bytes(),
                nodes,
            );
            answer
        })
        .collect()
}

#[test]
fn a_service_behind_nat_is_reached_through_rendezvous() {
    require_privileges();
    let mut net = Network::new();
    let nats = [net.add_nat(0), net.add_nat(1)];
    let scratch = Scratch::new("nat-service");
    let mut children = Children::default();
    let public = net.public();
    let bootstrap = format!("10.100.0.1:{PORT}");
    let mut nodes = Vec::new();
    for i in 0..=RELAYS {
        let ip = net.public_address(i);
        let node = spawn_node(
            &scratch,
            &mut children,
            &public,
            &format!("public {i}"),
            &ip,
            &bootstrap,
            "",
        );
        nodes.push(node);
    }
    let (service, sender) = (nodes.len(), nodes.len() + 1);
    for (nat, (name, extra)) in nats.iter().zip([
        ("service behind NAT 0", "service = true\n"),
        ("sender behind NAT 1", ""),
    ]) {
        let config = behind_nat(&format!("{}:{PORT}", nat.host)) + extra;
        let node = spawn_node(
            &scratch,
            &mut children,
            &nat.lan,
            name,
            &nat.host,
            &bootstrap,
            &config,
        );
        nodes.push(node);
    }
    learn_network(&nodes, RELAYS + 1);
    for nat in &nats {
        check_nat(nat, &public, "10.100.0.1", &nodes);
    }

    // The service's descriptor, once it lists both introduction points.
    let (descriptor, parsed) = wait_for_descriptor(&nodes[service], SHORT, &nodes, |_, d| {
        d.intro_points.len() == 2
    });
    let service_id = parsed.service_id().to_string();
    let status = veil(
        &["status", "--control", &nodes[service].control.to_string()],
        b"",
        &nodes,
    );
    assert!(
        status.contains(&format!("service   {service_id}: 2 introduction points\n")),
        "{status}"
    );
    let status = veil(
        &["status", "--control", &nodes[sender].control.to_string()],
        b"",
        &nodes,
    );
    assert!(!status.contains("\nservice "), "no service line: {status}");
    assert!(status.contains("\nrendezvous roles: "), "{status}");
    let intro_names = |d: &ServiceDescriptor| -> Vec<usize> {
        d.intro_points
            .iter()
            .map(|p| {
                nodes
                    .iter()
                    .position(|n| n.id == p.node_id)
                    .expect("an introduction point is one of the nodes")
            })
            .collect()
    };
    let intros = intro_names(&parsed);
    assert!(
        intros.iter().all(|&i| i <= RELAYS),
        "introduction points {intros:?} are not all public relays"
    );
    let introducing: usize = nodes[..=RELAYS]
        .iter()
        .map(|n| {
            control(&n.control)
                .status()
                .expect("status")
                .rendezvous_introducing
        })
        .sum();
    assert_eq!(introducing, 2, "relays introducing the service");
    println!(
        "service {service_id} behind NAT 0: introduced by {} and {}",
        nodes[intros[0]].name, nodes[intros[1]].name
    );

    // The sender learns it, from a copy of the file.
    let copy = nodes[sender].dir.join("service.descriptor");
    fs::write(&copy, &descriptor).expect("copy the descriptor");
    let sender_control = nodes[sender].control.to_string();
    let learnt = veil(
        &[
            "learn-service",
            copy.to_str().expect("utf-8"),
            "--control",
            &sender_control,
        ],
        b"",
        &nodes,
    );
    assert_eq!(learnt.trim(), service_id);

    let at_service = LineListener::start(&nodes[service], &mut children);
    let at_sender = LineListener::start(&nodes[sender], &mut children);
    let (a, b) = (1, 4);
    let at_b = LineListener::start(&nodes[b], &mut children);

    // An ordinary first message between two public nodes, for comparison.
    let sent_at = Instant::now();
    send(
        &mut control(&nodes[a].control),
        &nodes[b],
        "ordinary",
        &nodes,
    );
    let got = at_b.next(SHORT).expect("the ordinary message arrived");
    assert_eq!(got.text, "ordinary");
    let ordinary = got.at.duration_since(sent_at);

    // The first message to the service, through rendezvous.
    let sent_at = Instant::now();
    let service_node_id = NodeId::from_hex(&service_id).expect("service id");
    let answer = control(&nodes[sender].control).send(service_node_id, b"in 0");
    assert!(answer.is_ok(), "in 0: {answer:?}\n{}", logs(&nodes));
    let first = at_service
        .next(SHORT)
        .expect("the first message reached the service");
    let rendezvous = first.at.duration_since(sent_at);
    println!(
        "first message: {} ms through rendezvous (sender and service behind NATs), {} ms \
         between two public nodes (send to arrival)",
        rendezvous.as_millis(),
        ordinary.as_millis()
    );
    assert_eq!(first.text, "in 0");
    assert_eq!(first.from, None, "the service does not learn the sender");
    for k in 1..MESSAGES {
        send_to_service(&nodes[sender], &service_id, &format!("in {k}"), &nodes);
    }
    let mut got = vec![first];
    got.extend(at_service.take(MESSAGES - 1));
    let want: Vec<String> = (0..MESSAGES).map(|k| format!("in {k}")).collect();
    check_exactly_once(&got, want, "the service", &nodes);
    let replies = reply_to_all(&nodes[service], &got, &nodes);
    let back = at_sender.take(MESSAGES);
    check_exactly_once(&back, replies, "the sender", &nodes);
    assert!(
        back.iter()
            .all(|g| g.from.as_deref() == Some(service_id.as_str())),
        "replies come from the service id"
    );
    let joined: usize = nodes[..=RELAYS]
        .iter()
        .map(|n| {
            control(&n.control)
                .status()
                .expect("status")
                .rendezvous_joined
        })
        .sum();
    println!("{MESSAGES} messages each way, each once; rendezvous joined at the relays: {joined}");
    assert!(joined >= 1, "no relay joined a rendezvous");

    // The sender's circuits to the service: each path's hops as node
    // indices (the service hop, which is no node, left out), and state.
    let rendezvous_circuits = |nodes: &[Node]| -> Vec<(Vec<usize>, String)> {
        let status = control(&nodes[sender].control).status().expect("status");
        status
            .own_circuits
            .iter()
            .filter(|c| c.path.last() == Some(&service_id))
            .map(|c| {
                let hops = c.path[..c.path.len() - 1]
                    .iter()
                    .map(|h| {
                        nodes
                            .iter()
                            .position(|n| n.id.to_string() == *h)
                            .expect("a relay of the sender's circuit is one of the nodes")
                    })
                    .collect();
                (hops, c.state.clone())
            })
            .collect()
    };
    let show = |circuits: &[(Vec<usize>, String)]| -> Vec<String> {
        circuits
            .iter()
            .map(|(hops, state)| {
                let names: Vec<&str> = hops.iter().map(|&i| nodes[i].name.as_str()).collect();
                format!("{} > service ({state})", names.join(" > "))
            })
            .collect()
    };
    let before = rendezvous_circuits(&nodes);

    // The first introduction point dies: the service replaces it and
    // re-signs its descriptor, which the sender learns anew.
    let killed = intros[0];
    let killed_at = Instant::now();
    let kill = Command::new("kill")
        .args(["-KILL", &children.0[killed].id().to_string()])
        .status();
    assert!(kill.is_ok_and(|s| s.success()));
    assert!(wait(&mut children.0[killed], SHORT).is_some());
    let killed_id = nodes[killed].id;
    let (_, changed) =
        wait_for_descriptor(&nodes[service], Duration::from_secs(60), &nodes, |b, d| {
            b != descriptor.as_slice() && d.intro_points.iter().all(|p| p.node_id != killed_id)
        });
    let first_change = killed_at.elapsed();
    let (renewed, parsed) =
        wait_for_descriptor(&nodes[service], Duration::from_secs(60), &nodes, |_, d| {
            d.intro_points.len() == 2 && d.intro_points.iter().all(|p| p.node_id != killed_id)
        });
    let replaced = killed_at.elapsed();
    let now_intros = intro_names(&parsed);
    println!(
        "{} (introduction point) killed: descriptor changed after {} ms ({} introduction \
         points), listed 2 again after {} ms: {} and {}",
        nodes[killed].name,
        first_change.as_millis(),
        changed.intro_points.len(),
        replaced.as_millis(),
        nodes[now_intros[0]].name,
        nodes[now_intros[1]].name
    );
    fs::write(&copy, &renewed).expect("copy the descriptor");
    let learnt = veil(
        &[
            "learn-service",
            copy.to_str().expect("utf-8"),
            "--control",
            &sender_control,
        ],
        b"",
        &nodes,
    );
    assert_eq!(learnt.trim(), service_id);
    let sent_at = Instant::now();
    for k in 0..MESSAGES / 2 {
        send_to_service(&nodes[sender], &service_id, &format!("after {k}"), &nodes);
    }
    let got = at_service.take(MESSAGES / 2);
    println!(
        "{} messages after the kill: all acknowledged within {} ms",
        MESSAGES / 2,
        sent_at.elapsed().as_millis()
    );
    let after = rendezvous_circuits(&nodes);
    println!(
        "the sender's circuits to the service: {:?} before the kill, {:?} after",
        show(&before),
        show(&after)
    );
    let want: Vec<String> = (0..MESSAGES / 2).map(|k| format!("after {k}")).collect();
    check_exactly_once(&got, want, "the service after the kill", &nodes);
    let replies = reply_to_all(&nodes[service], &got, &nodes);
    let back = at_sender.take(MESSAGES / 2);
    check_exactly_once(&back, replies, "the sender after the kill", &nodes);

    // The service is suspended (SIGSTOP) for longer than three build
    // timeouts, with a message on its way: the sender gives rendezvous up
    // and tries again; once the service runs again it rebuilds its
    // circuits to the introduction points it published, and the message
    // arrives, once, with the descriptor the sender already holds.
    let published = parsed.intro_points.clone();
    let frozen_pid = children.0[service].id().to_string();
    let signal = |sig: &str| {
        let sent = Command::new("kill").args([sig, &frozen_pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill {sig}");
    };
    signal("-STOP");
    let sent_at = Instant::now();
    let (arrived, thawed_at) = std::thread::scope(|scope| {
        let sending = scope.spawn(|| {
            send_to_service(&nodes[sender], &service_id, "while suspended", &nodes);
        });
        std::thread::sleep(FROZEN);
        signal("-CONT");
        let thawed_at = Instant::now();
        let arrived = at_service.next(Duration::from_secs(90));
        sending.join().expect("the send was acknowledged");
        (arrived, thawed_at)
    });
    let arrived = arrived.unwrap_or_else(|| {
        panic!(
            "the message sent while the service was suspended never arrived\n{}",
            logs(&nodes)
        )
    });
    println!(
        "service suspended for {} s: the message sent meanwhile arrived {} ms after it resumed \
         ({} ms after it was sent)",
        FROZEN.as_secs(),
        arrived.at.duration_since(thawed_at).as_millis(),
        arrived.at.duration_since(sent_at).as_millis()
    );
    assert_eq!(arrived.text, "while suspended");
    assert!(
        at_service.next(Duration::from_secs(5)).is_none(),
        "delivered twice"
    );
    let (_, now) = wait_for_descriptor(&nodes[service], SHORT, &nodes, |_, d| {
        d.intro_points.len() == 2
    });
    let kept = now
        .intro_points
        .iter()
        .filter(|p| published.iter().any(|q| q.node_id == p.node_id))
        .count();
    println!("introduction points kept across the suspension: {kept} of 2");
}

/// How long the service is suspended: more than three circuit build
/// timeouts (the default 10 s each), so the sender's first rendezvous is
/// given up.
const FROZEN: Duration = Duration::from_secs(40);
