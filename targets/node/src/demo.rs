//! `veil demo`: a whole network on loopback in one process.
//!
//! Every node is a `veil_mio::Runtime` on its own thread, on its own
//! loopback network `127.N.0.1` (path selection never puts two hops of a
//! circuit in one /16, so nodes on one address could not form paths). Every
//! node listens on TCP; when built with QUIC, two nodes in three also listen
//! on QUIC and dial QUIC first, so circuits cross both transports (a
//! TCP-only node is reached over TCP, two QUIC nodes link over QUIC). Node 0
//! is everyone's bootstrap (over TCP, which every node speaks); the rest is
//! discovery, circuits and messages exactly as between machines.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use veil_core::identity::{Identity, NodeId};
use veil_core::node::NodeConfig;
use veil_core::time::Duration as CoreDuration;
use veil_mio::{Runtime, RuntimeOptions, StdNode};

use crate::host::{Host, Notice, SendResult};

/// How long every node may take to learn every other.
const DISCOVERY_CAP: Duration = Duration::from_secs(30);
/// How long the messages may take, all together.
const MESSAGES_CAP: Duration = Duration::from_secs(30);
/// How long the bulk transfer may take.
const BULK_CAP: Duration = Duration::from_secs(60);
/// Bulk messages in flight at once.
const BULK_WINDOW: usize = 24;
/// Notices the main thread may lag behind by.
const NOTICE_QUEUE: usize = 16 * 1024;

/// What `veil demo` runs.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Nodes in the network.
    pub nodes: usize,
    /// Messages between random pairs.
    pub messages: usize,
    /// Mebibytes sent through one circuit.
    pub bulk_mib: usize,
    /// Seed for the choice of pairs and the message contents.
    pub seed: Option<u64>,
}

/// A small deterministic generator (xorshift64*) for pairs and payloads.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            for (o, w) in chunk.iter_mut().zip(word) {
                *o = w;
            }
        }
    }
}

/// The bytes of bulk message `seq`: a header, then a pattern only `seq`
/// determines, so the receiver can check every byte.
fn bulk_payload(seq: u32, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    Rng::new(0xb01c_0000_0000_0000 ^ u64::from(seq)).fill(&mut data);
    stamp(&mut data, b'B', seq);
    data
}

/// Writes the kind and sequence number at the start of a payload (at least
/// 5 bytes long).
fn stamp(data: &mut [u8], kind: u8, seq: u32) {
    let [a, b, c, d] = seq.to_be_bytes();
    for (slot, byte) in data.iter_mut().zip([kind, a, b, c, d]) {
        *slot = byte;
    }
}

/// Runs the demo, printing as it goes. `Err` is one line saying what failed.
pub fn run(options: DemoOptions) -> Result<(), String> {
    let n = options.nodes;
    if !(5..=200).contains(&n) {
        return Err(format!(
            "--nodes {n}: a 3-relay circuit needs at least 5 nodes (and this demo runs at most 200)"
        ));
    }
    let seed = match options.seed {
        Some(s) => s,
        None => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| format!("no OS entropy: {e}"))?;
            u64::from_le_bytes(bytes)
        }
    };
    let mut rng = Rng::new(seed);
    println!(
        "veil demo: {n} nodes on loopback over real {}, 3-relay circuits (seed {seed})",
        if cfg!(feature = "quic") {
            "TCP and QUIC"
        } else {
            "TCP"
        }
    );

    let started = Instant::now();
    let hosts = start_network(n)?;
    let ids: Vec<NodeId> = hosts.iter().map(Host::id).collect();
    let (notices_tx, notices) = mpsc::sync_channel(NOTICE_QUEUE);
    for (i, host) in hosts.iter().enumerate() {
        host.command(crate::host::Command::Subscribe {
            tag: i,
            tx: notices_tx.clone(),
        })?;
    }
    drop(notices_tx);
    for (i, host) in hosts.iter().enumerate() {
        let listening = host.status()?.listen;
        println!("  node {i}  {listening}  {}", host.id());
    }

    let discovered_in = wait_for_discovery(&hosts)?;
    println!(
        "  discovery   every node knows all {} others after {:.1} s",
        n.saturating_sub(1),
        discovered_in.as_secs_f64()
    );

    let mut tracker = Tracker::default();
    let delivered_in = exchange_messages(&hosts, &ids, &notices, &mut tracker, &mut rng, options)?;
    println!(
        "  messages    {m}/{m} delivered exactly once and intact, all acknowledged, in {:.2} s",
        delivered_in.as_secs_f64(),
        m = options.messages
    );

    let bulk = if options.bulk_mib > 0 {
        Some(bulk_transfer(
            &hosts,
            &ids,
            &notices,
            &mut tracker,
            &mut rng,
            options,
        )?)
    } else {
        None
    };

    let mut times = tracker.circuit_times.clone();
    times.sort();
    if times.is_empty() {
        return Err("no circuit was reported ready".into());
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let median = times.get(times.len() / 2).map_or(0.0, ms);
    let min = times.first().map_or(0.0, ms);
    let max = times.last().map_or(0.0, ms);
    println!(
        "  circuits    {} built; build time min {min:.1} ms, median {median:.1} ms, max {max:.1} ms",
        times.len()
    );
    if let Some(b) = bulk {
        println!(
            "  bulk        {:.1} MiB in {} messages of {} KiB from node {} to node {} in {:.2} s: {:.1} MiB/s ({} circuit{})",
            b.bytes as f64 / (1024.0 * 1024.0),
            b.messages,
            StdNode::MAX_MESSAGE / 1024,
            b.from,
            b.to,
            b.elapsed.as_secs_f64(),
            b.bytes as f64 / (1024.0 * 1024.0) / b.elapsed.as_secs_f64().max(1e-9),
            b.circuits,
            if b.circuits == 1 { "" } else { "s" },
        );
    }

    let mut relayed = 0usize;
    let mut links = 0usize;
    let mut by_transport: HashMap<String, usize> = HashMap::new();
    let mut bytes = 0u64;
    for host in &hosts {
        let s = host.status()?;
        relayed = relayed.saturating_add(s.circuits_relayed);
        links = links.saturating_add(s.links.len());
        for link in &s.links {
            let name = link.transport.clone().unwrap_or_else(|| "?".into());
            *by_transport.entry(name).or_default() += 1;
        }
        bytes = bytes.saturating_add(s.bytes_sent);
    }
    let mut transports: Vec<String> = by_transport
        .iter()
        .map(|(name, count)| format!("{count} {name}"))
        .collect();
    transports.sort();
    println!(
        "  network     {} link ends ({}), {relayed} circuit hops open, {:.1} MiB on the wire",
        links,
        transports.join(", "),
        bytes as f64 / (1024.0 * 1024.0)
    );
    if cfg!(feature = "quic")
        && !(by_transport.contains_key("quic") && by_transport.contains_key("tcp"))
    {
        return Err(format!(
            "the network should run over both transports, but its links are: {}",
            transports.join(", ")
        ));
    }
    for host in hosts {
        host.shutdown()?;
    }
    // Anything after the checks would be a duplicate.
    while let Ok((node, notice)) = notices.try_recv() {
        tracker.on_notice(node, notice)?;
    }
    println!("veil demo: ok in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn start_network(n: usize) -> Result<Vec<Host>, String> {
    let config = NodeConfig {
        gossip_interval: CoreDuration::from_millis(200),
        bootstrap_retry: CoreDuration::from_millis(500),
        path_relays: 3,
        ..NodeConfig::default()
    };
    let options = RuntimeOptions {
        links: 32,
        ..RuntimeOptions::default()
    };
    let mut hosts: Vec<Host> = Vec::with_capacity(n);
    let mut bootstrap = None;
    for i in 0..n {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("no OS entropy: {e}"))?;
        let net = u8::try_from(i.saturating_add(10)).map_err(|_| "too many nodes".to_string())?;
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, net, 0, 1)), 0);
        // Two nodes in three speak QUIC too (node 0 among them).
        let quic = cfg!(feature = "quic") && i % 3 != 2;
        let config = NodeConfig {
            quic_dials: quic,
            ..config
        };
        let mut rt = Runtime::bind_with(config, Identity::from_secret_bytes(secret), addr, options)
            .map_err(|e| format!("node {i}: {e}"))?;
        if quic {
            listen_quic(&mut rt, addr).map_err(|e| format!("node {i}: {e}"))?;
        }
        match bootstrap {
            None => bootstrap = Some(rt.local_addr()),
            Some(b) => {
                rt.add_bootstrap(b);
            }
        }
        hosts.push(Host::spawn(rt, format!("veil-node-{i}"))?);
    }
    Ok(hosts)
}

#[cfg(feature = "quic")]
fn listen_quic(rt: &mut Runtime, addr: SocketAddr) -> Result<(), String> {
    rt.listen_quic(addr, veil_mio::veil_quic::QuicConfig::default())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "quic"))]
fn listen_quic(_: &mut Runtime, _: SocketAddr) -> Result<(), String> {
    Ok(())
}

fn wait_for_discovery(hosts: &[Host]) -> Result<Duration, String> {
    let start = Instant::now();
    let others = hosts.len().saturating_sub(1);
    loop {
        let mut laggard = None;
        for (i, host) in hosts.iter().enumerate() {
            let s = host.status()?;
            if s.known_relays < others {
                laggard = Some((i, s.known_relays));
                break;
            }
        }
        let Some((i, known)) = laggard else {
            return Ok(start.elapsed());
        };
        if start.elapsed() > DISCOVERY_CAP {
            return Err(format!(
                "discovery did not finish in {} s: node {i} knows {known} of {others} relays",
                DISCOVERY_CAP.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the main thread has seen of the notices.
#[derive(Default)]
struct Tracker {
    /// Demo messages: index -> (destination node, payload, times received).
    expected: HashMap<u32, (usize, Vec<u8>, u32)>,
    /// Bulk: (receiving node, next sequence number expected, messages, bytes).
    bulk_to: Option<usize>,
    bulk_seen: HashMap<u32, u32>,
    bulk_bytes: u64,
    /// Circuit build times, and the destinations of the circuits.
    circuit_times: Vec<Duration>,
    circuits_to: Vec<(usize, NodeId)>,
}

impl Tracker {
    fn on_notice(&mut self, node: usize, notice: Notice) -> Result<(), String> {
        match notice {
            Notice::CircuitReady {
                destination,
                built_in,
            } => {
                self.circuit_times.push(built_in);
                self.circuits_to.push((node, destination));
                Ok(())
            }
            Notice::Received { data, .. } => self.on_message(node, data),
        }
    }

    fn on_message(&mut self, node: usize, data: Vec<u8>) -> Result<(), String> {
        let seq = data
            .get(1..5)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| format!("node {node} received a {}-byte stray message", data.len()))?;
        match data.first() {
            Some(b'D') => {
                let (dest, payload, seen) = self
                    .expected
                    .get_mut(&seq)
                    .ok_or_else(|| format!("node {node} received unknown message {seq}"))?;
                if *dest != node {
                    return Err(format!(
                        "message {seq} for node {dest} arrived at node {node}"
                    ));
                }
                if *payload != data {
                    return Err(format!("message {seq} arrived altered"));
                }
                *seen = seen.saturating_add(1);
                if *seen > 1 {
                    return Err(format!("message {seq} was delivered {seen} times"));
                }
                Ok(())
            }
            Some(b'B') => {
                if self.bulk_to != Some(node) {
                    return Err(format!("a bulk message arrived at node {node}"));
                }
                if bulk_payload(seq, data.len()) != data {
                    return Err(format!("bulk message {seq} arrived altered"));
                }
                let seen = self.bulk_seen.entry(seq).or_insert(0);
                *seen = seen.saturating_add(1);
                if *seen > 1 {
                    return Err(format!("bulk message {seq} was delivered twice"));
                }
                self.bulk_bytes = self
                    .bulk_bytes
                    .saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
                Ok(())
            }
            _ => Err(format!("node {node} received a stray message")),
        }
    }

    fn delivered(&self) -> usize {
        self.expected.values().filter(|(_, _, s)| *s == 1).count()
    }
}

/// Takes every notice waiting, or waits up to `wait` for one.
fn pump_notices(
    notices: &Receiver<(usize, Notice)>,
    tracker: &mut Tracker,
    wait: Duration,
) -> Result<(), String> {
    match notices.recv_timeout(wait) {
        Ok((node, notice)) => tracker.on_notice(node, notice)?,
        Err(RecvTimeoutError::Timeout) => return Ok(()),
        Err(RecvTimeoutError::Disconnected) => return Err("every node thread stopped".into()),
    }
    loop {
        match notices.try_recv() {
            Ok((node, notice)) => tracker.on_notice(node, notice)?,
            Err(TryRecvError::Empty) => return Ok(()),
            Err(TryRecvError::Disconnected) => return Err("every node thread stopped".into()),
        }
    }
}

/// Takes finished sends off the front of `outstanding`.
fn reap(outstanding: &mut VecDeque<(String, Receiver<SendResult>)>) -> Result<usize, String> {
    let mut acked = 0usize;
    while let Some((what, rx)) = outstanding.front() {
        match rx.try_recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("{what} failed: {e}")),
            Err(TryRecvError::Empty) => return Ok(acked),
            Err(TryRecvError::Disconnected) => {
                return Err(format!("{what}: its node thread stopped"))
            }
        }
        acked = acked.saturating_add(1);
        outstanding.pop_front();
    }
    Ok(acked)
}

fn exchange_messages(
    hosts: &[Host],
    ids: &[NodeId],
    notices: &Receiver<(usize, Notice)>,
    tracker: &mut Tracker,
    rng: &mut Rng,
    options: DemoOptions,
) -> Result<Duration, String> {
    let n = hosts.len();
    let start = Instant::now();
    let mut outstanding = VecDeque::new();
    for k in 0..options.messages {
        let seq = u32::try_from(k).map_err(|_| "too many messages".to_string())?;
        let src = rng.below(n);
        let dst = (src + 1 + rng.below(n - 1)) % n;
        let len = 16 + rng.below(4096);
        let mut payload = vec![0u8; len];
        rng.fill(&mut payload);
        stamp(&mut payload, b'D', seq);
        tracker.expected.insert(seq, (dst, payload.clone(), 0));
        let (Some(host), Some(to)) = (hosts.get(src), ids.get(dst)) else {
            return Err("internal: node index out of range".into());
        };
        let rx = host.send(*to, payload)?;
        outstanding.push_back((format!("message {k} from node {src} to node {dst}"), rx));
    }
    while !outstanding.is_empty() || tracker.delivered() < options.messages {
        reap(&mut outstanding)?;
        if start.elapsed() > MESSAGES_CAP {
            return Err(format!(
                "only {} of {} messages delivered and {} acknowledged after {} s",
                tracker.delivered(),
                options.messages,
                options.messages - outstanding.len(),
                MESSAGES_CAP.as_secs()
            ));
        }
        pump_notices(notices, tracker, Duration::from_millis(5))?;
    }
    Ok(start.elapsed())
}

struct BulkResult {
    from: usize,
    to: usize,
    messages: usize,
    bytes: u64,
    elapsed: Duration,
    circuits: usize,
}

fn bulk_transfer(
    hosts: &[Host],
    ids: &[NodeId],
    notices: &Receiver<(usize, Notice)>,
    tracker: &mut Tracker,
    rng: &mut Rng,
    options: DemoOptions,
) -> Result<BulkResult, String> {
    let n = hosts.len();
    let from = rng.below(n);
    let to = (from + 1 + rng.below(n - 1)) % n;
    let (Some(host), Some(dest)) = (hosts.get(from), ids.get(to).copied()) else {
        return Err("internal: node index out of range".into());
    };
    let chunk = StdNode::MAX_MESSAGE;
    let total_bytes = options.bulk_mib.saturating_mul(1024 * 1024);
    let total = total_bytes.div_ceil(chunk);
    tracker.bulk_to = Some(to);
    let circuits_before = tracker
        .circuits_to
        .iter()
        .filter(|(node, d)| *node == from && *d == dest)
        .count();
    let start = Instant::now();
    let mut next = 0usize;
    let mut acked = 0usize;
    let mut outstanding = VecDeque::new();
    while acked < total || tracker.bulk_seen.len() < total {
        while next < total && outstanding.len() < BULK_WINDOW {
            let seq = u32::try_from(next).map_err(|_| "bulk too large".to_string())?;
            let len = chunk.min(total_bytes.saturating_sub(next.saturating_mul(chunk)));
            let rx = host.send(dest, bulk_payload(seq, len))?;
            outstanding.push_back((format!("bulk message {next}"), rx));
            next = next.saturating_add(1);
        }
        acked = acked.saturating_add(reap(&mut outstanding)?);
        if start.elapsed() > BULK_CAP {
            return Err(format!(
                "bulk transfer stalled: {acked} of {total} messages acknowledged after {} s",
                BULK_CAP.as_secs()
            ));
        }
        pump_notices(notices, tracker, Duration::from_millis(2))?;
    }
    let elapsed = start.elapsed();
    let circuits = tracker
        .circuits_to
        .iter()
        .filter(|(node, d)| *node == from && *d == dest)
        .count();
    Ok(BulkResult {
        from,
        to,
        messages: total,
        bytes: tracker.bulk_bytes,
        elapsed,
        // The circuit built for the first phase counts if it was reused.
        circuits: (circuits - circuits_before).max(1),
    })
}
