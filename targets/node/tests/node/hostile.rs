//! Hostile peers get nowhere. A `veil node` with a small link table (12
//! slots, at most 4 links in their handshake) is attacked at once by
//! clients that send garbage bytes, clients that connect and never send
//! (some of them half-closing their side), and a flood of connections far
//! beyond its capacity that reconnect whenever dropped. Meanwhile:
//!
//! - `veil status` answers;
//! - a new good node that knows only the attacked node bootstraps through
//!   it and learns the whole network;
//! - messages to and from the attacked node are acknowledged;
//! - the attacked node's resident memory stays flat: all its memory is
//!   fixed when it is built, so attackers cannot grow it.
//!
//! Loopback only; every node on its own `127.N.0.1`. No timing
//! assertions: every wait is bounded, and only outcomes are checked.

use crate::common;

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, free_addr, keygen_into, run, Children, Scratch};
use veil_core::identity::NodeId;
use veil_node::control_address::Endpoint;
use veil_node::control_client::ControlClient;
use veil_node::status::Status;

/// Good nodes besides the attacked one (a 3-relay circuit needs 5 nodes).
const GOOD: usize = 5;
/// The attacked node's link slots and handshake slots.
const LINKS: usize = 12;
const HALF_OPEN: usize = 4;
/// Attackers of each kind.
const GARBAGE_CLIENTS: usize = 8;
const SILENT_CLIENTS: usize = 32;
const FLOOD_CLIENTS: usize = 160;
/// How much the attacked node's RSS may grow (it should not grow at all;
/// this leaves room for pages of its fixed tables touched for the first
/// time, and for allocator noise).
const RSS_SLACK_KIB: u64 = 8 * 1024;
const SHORT: Duration = Duration::from_secs(30);

struct Node {
    id: NodeId,
    control: Endpoint,
    listen: SocketAddr,
    dir: PathBuf,
}

/// A control connection to `addr`, if it answers; answers may take 90 s
/// (a send is answered once acknowledged).
fn control(endpoint: &Endpoint) -> Option<ControlClient> {
    ControlClient::connect(endpoint, Some(Duration::from_secs(90))).ok()
}

fn status(endpoint: &Endpoint) -> Option<Status> {
    control(endpoint)?.status().ok()
}

fn known_nodes(endpoint: &Endpoint) -> usize {
    status(endpoint).map_or(0, |s| s.known_nodes)
}

/// Resident and peak-resident memory of a process, KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .expect("status field")
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn logs(nodes: &[Node]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("--- node {i}\n{}", common::read(&n.dir.join("stderr.log"))))
        .collect()
}

fn make_node(
    scratch: &Scratch,
    i: usize,
    bootstrap: Option<SocketAddr>,
    extra: &str,
    children: &mut Children,
) -> (Node, usize) {
    let dir = scratch.path(&format!("n{i}"));
    let data = dir.join("data");
    let id = NodeId::from_hex(&keygen_into(&data)).expect("node id");
    let listen = free_addr(&format!("127.{}.0.1", 80 + i));
    let control = Endpoint::of_node(&data, None);
    let boot = bootstrap.map_or(String::new(), |b| format!("bootstrap = [\"{b}\"]\n"));
    let config = format!(
        "listen = \"{listen}\"\ndata_dir = \"{}\"\n{boot}\
         gossip_interval_ms = 200\nextend_to_private_addresses = true\nbootstrap_retry_ms = 300\nlog_level = \"info\"\n{extra}",
        data.display()
    );
    fs::write(dir.join("veil.toml"), config).expect("config");
    let child = common::spawn_node(&dir);
    let index = children.push(child);
    (
        Node {
            id,
            control,
            listen,
            dir,
        },
        index,
    )
}

/// What the attackers managed, for the report.
#[derive(Default)]
struct Tally {
    connections: AtomicU64,
    garbage_bytes: AtomicU64,
    refused: AtomicU64,
}

fn connect(target: SocketAddr, tally: &Tally) -> Option<TcpStream> {
    match TcpStream::connect_timeout(&target, Duration::from_secs(2)) {
        Ok(s) => {
            tally.connections.fetch_add(1, Ordering::Relaxed);
            Some(s)
        }
        Err(_) => {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Sends random bytes, reconnecting whenever the node drops it.
fn garbage_client(target: SocketAddr, stop: &AtomicBool, tally: &Tally, seed: u64) {
    let mut x = seed | 1;
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let Some(mut s) = connect(target, tally) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
        // Some connections open with a plausible length prefix, some not.
        for round in 0..64 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            if round == 0 && x.is_multiple_of(2) {
                buf[0] = 0x00;
                buf[1] = 0x40;
            }
            match s.write(&buf) {
                Ok(n) => {
                    tally.garbage_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(_) => break,
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Connects and never sends; half of them also half-close their side.
/// Reconnects when the node drops it, so the pressure never lets up.
fn silent_client(target: SocketAddr, stop: &AtomicBool, tally: &Tally, half_close: bool) {
    while !stop.load(Ordering::Relaxed) {
        let Some(mut s) = connect(target, tally) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if half_close {
            let _ = s.shutdown(Shutdown::Write);
        }
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut scratch = [0u8; 1024];
        // Read (and ignore) whatever the node says until it hangs up.
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match s.read(&mut scratch) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn hostile_peers_get_nowhere_and_memory_stays_flat() {
    let scratch = Scratch::new("hostile");
    let mut children = Children::default();
    let mut nodes = Vec::new();

    // The target, everyone's bootstrap, with a small link table.
    let (target, target_index) = make_node(
        &scratch,
        0,
        None,
        &format!("links = {LINKS}\nmax_half_open = {HALF_OPEN}\n"),
        &mut children,
    );
    let target_addr = target.listen;
    let target_pid = children.0[target_index].id();
    nodes.push(target);
    for i in 1..=GOOD {
        let (node, _) = make_node(&scratch, i, Some(target_addr), "", &mut children);
        nodes.push(node);
    }
    for (i, node) in nodes.iter().enumerate() {
        let known = eventually(SHORT, || {
            let k = known_nodes(&node.control);
            (k >= GOOD).then_some(k)
        });
        assert!(
            known.is_some(),
            "node {i} did not learn the network\n{}",
            logs(&nodes)
        );
    }

    // Warm up: messages both ways, so the buffers real traffic uses are
    // touched before the baseline is taken.
    let big: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
    let mut from_target = control(&nodes[0].control).expect("control");
    for k in 1..=GOOD {
        let answer = from_target.send(nodes[k].id, &big);
        assert!(answer.is_ok(), "{answer:?}\n{}", logs(&nodes));
        let mut c = control(&nodes[k].control).expect("control");
        let answer = c.send(nodes[0].id, &big);
        assert!(answer.is_ok(), "{answer:?}\n{}", logs(&nodes));
    }
    let (rss_before, hwm_before) = rss_kib(target_pid);

    // The attack.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut attackers = Vec::new();
    for k in 0..GARBAGE_CLIENTS {
        let (stop, tally) = (Arc::clone(&stop), Arc::clone(&tally));
        attackers.push(std::thread::spawn(move || {
            garbage_client(target_addr, &stop, &tally, 0x9e37_79b9 + k as u64)
        }));
    }
    for k in 0..SILENT_CLIENTS + FLOOD_CLIENTS {
        let (stop, tally) = (Arc::clone(&stop), Arc::clone(&tally));
        attackers.push(std::thread::spawn(move || {
            silent_client(target_addr, &stop, &tally, k % 2 == 1)
        }));
    }
    // Let it build up.
    let started = Instant::now();
    while tally.connections.load(Ordering::Relaxed) < (FLOOD_CLIENTS + SILENT_CLIENTS) as u64
        && started.elapsed() < SHORT
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));

    // Under attack: `veil status` answers, and never shows more links
    // than the table holds.
    let out = run(
        &["status", "--control", &nodes[0].control.to_string()],
        b"",
        SHORT,
    );
    assert!(
        out.status.success(),
        "status failed under attack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = status(&nodes[0].control).expect("status under attack");
    let links = s.links.len();
    assert!(links <= LINKS, "{links} links in a {LINKS}-slot table");

    // A new good node that knows only the target joins through it.
    let (newcomer, _) = make_node(&scratch, GOOD + 1, Some(target_addr), "", &mut children);
    nodes.push(newcomer);
    let newcomer = nodes.len() - 1;
    let known = eventually(Duration::from_secs(60), || {
        let k = known_nodes(&nodes[newcomer].control);
        (k > GOOD).then_some(k)
    });
    assert!(
        known.is_some(),
        "the newcomer did not join through the attacked node\n{}",
        logs(&nodes)
    );
    // Everyone learns the newcomer (the target passes its descriptor on).
    let learned = eventually(Duration::from_secs(60), || {
        (known_nodes(&nodes[0].control) > GOOD).then_some(())
    });
    assert!(learned.is_some(), "the target did not learn the newcomer");

    // Messages to and from the target, and from the newcomer to the target.
    let answer = from_target.send(nodes[newcomer].id, b"to the newcomer, under attack");
    assert!(answer.is_ok(), "{answer:?}\n{}", logs(&nodes));
    let answer = from_target.send(nodes[1].id, &big);
    assert!(answer.is_ok(), "{answer:?}\n{}", logs(&nodes));
    for k in [2, newcomer] {
        let mut c = control(&nodes[k].control).expect("control");
        let answer = c.send(nodes[0].id, &big);
        assert!(answer.is_ok(), "{answer:?}\n{}", logs(&nodes));
    }

    let (rss_during, hwm_during) = rss_kib(target_pid);
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.join().expect("attacker thread");
    }
    let connections = tally.connections.load(Ordering::Relaxed);
    let garbage = tally.garbage_bytes.load(Ordering::Relaxed);
    assert!(
        connections > (LINKS + FLOOD_CLIENTS) as u64,
        "the attack never exceeded the capacity ({connections} connections)"
    );
    assert!(garbage > 0, "no garbage was sent");

    // Still alive and answering after the attack.
    assert!(
        matches!(children.0[target_index].try_wait(), Ok(None)),
        "the target died\n{}",
        logs(&nodes)
    );
    assert!(
        status(&nodes[0].control).is_some(),
        "no status after attack"
    );
    let (rss_after, hwm_after) = rss_kib(target_pid);
    eprintln!(
        "target RSS: {rss_before} KiB before, {rss_during} during, {rss_after} after \
         (peak {hwm_before} -> {hwm_during} -> {hwm_after} KiB); attackers made \
         {connections} connections, sent {garbage} garbage bytes, {} connects refused",
        tally.refused.load(Ordering::Relaxed)
    );
    for (when, rss) in [("during", rss_during), ("after", rss_after)] {
        assert!(
            rss < rss_before + RSS_SLACK_KIB,
            "RSS grew from {rss_before} KiB to {rss} KiB {when} the attack"
        );
    }
    assert!(
        hwm_after < hwm_before + RSS_SLACK_KIB,
        "peak RSS grew from {hwm_before} KiB to {hwm_after} KiB"
    );
}
