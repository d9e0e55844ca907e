//! `veil bench`: circuit build time, bulk throughput and memory of a local
//! loopback network, in one run.
//!
//! Part one runs every node in this process (one `veil_mio::Runtime` per
//! thread, each on its own loopback network `127.N.0.1`, as `veil demo`
//! does) and measures:
//!
//! - 3-relay circuit build time: one small message at a time, each between
//!   a pair of nodes that has no circuit yet, so every message builds a
//!   fresh circuit on a fresh random path; the time is the core's
//!   `CircuitReady { built_in }` (from `CREATE` to the last hop's answer,
//!   including any link the path needed first). Builds whose path needed no
//!   new link are also reported on their own.
//! - bulk throughput through one circuit: 64 KiB messages, up to the node's
//!   outgoing message pool in flight, from the first send to the last
//!   acknowledgement, every message checked at the receiver. The transfer
//!   reuses the circuit the first timed build made (an untimed message
//!   first rebuilds it should it have closed), and the bench checks
//!   that the sender built no circuit while it ran (a broken circuit is
//!   always replaced by a new build), so the figure is one circuit's; if
//!   it did build one, the row says so instead of claiming one circuit.
//! - the process's peak RSS (`VmHWM`) over its baseline, divided by the
//!   nodes: an estimate that also counts the bench's own buffers.
//!
//! Part two (unless `--processes 0`) starts the same network as separate
//! `veil node` processes, drives circuits and a bulk transfer through their
//! control sockets, and reads each process's own `VmHWM`: the real peak
//! RSS per node.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use clap::Args;
use veil_core::identity::{Address, Identity, NodeId, Transport};
use veil_core::node::NodeConfig;
use veil_core::time::Duration as CoreDuration;
use veil_mio::{Runtime, RuntimeOptions, StdNode};

use crate::control::{read_line, Request, Response};
use crate::host::{Host, Notice, SendResult};

/// How long every node may take to learn every other.
const DISCOVERY_CAP: Duration = Duration::from_secs(30);
/// How long one circuit build and its first message may take.
const BUILD_CAP: Duration = Duration::from_secs(30);
/// How long a bulk transfer may take.
const BULK_CAP: Duration = Duration::from_secs(120);
/// Messages in flight in the bulk transfer: the node's outgoing message
/// pool (half of its 64 message slots). More would only wait in the host.
const BULK_WINDOW: usize = 32;
/// Parallel control connections for the bulk transfer between processes.
const CONTROL_STREAMS: usize = 16;
/// Notices the main thread may lag behind by.
const NOTICE_QUEUE: usize = 16 * 1024;
/// Tor's figures, for the table (see docs/performance.md).
const TOR_BUILD: &str = "~16 ms";
const TOR_BULK: &str = "8-60 MB/s";
const TOR_RSS: &str = "50-120 MiB";

/// `veil bench` flags.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Small sizes (a smoke test): 6 nodes, 8 builds, 2 MiB bulk.
    #[arg(long)]
    quick: bool,
    /// Nodes in the in-process network [default: 10; quick: 6].
    #[arg(long)]
    nodes: Option<usize>,
    /// Circuit builds to time [default: 60; quick: 8].
    #[arg(long)]
    builds: Option<usize>,
    /// Mebibytes through one circuit [default: 100; quick: 2].
    #[arg(long)]
    bulk_mib: Option<usize>,
    /// Nodes run as separate `veil node` processes to measure each one's
    /// peak RSS; 0 skips that part [default: 8; quick: 5].
    #[arg(long)]
    processes: Option<usize>,
    /// Mebibytes sent between the processes [default: 32; quick: 1].
    #[arg(long)]
    process_bulk_mib: Option<usize>,
    /// Seed for the choice of pairs (random if not given).
    #[arg(long)]
    seed: Option<u64>,
    /// Log level for the nodes (off, error, warn, info, debug, trace).
    #[arg(long, default_value = "warn")]
    log_level: String,
    /// Which transport the in-process network's links use: tcp, quic, or
    /// both, one network after the other, in the same run [default: both
    /// when built with QUIC].
    #[arg(long, value_enum)]
    transport: Option<BenchTransport>,
}

/// The links of the in-process network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchTransport {
    /// TCP only.
    Tcp,
    /// QUIC only (every node listens on QUIC, dials QUIC, bootstraps over it).
    Quic,
    /// TCP, then QUIC.
    Both,
}

impl BenchTransport {
    fn networks(self) -> Vec<Transport> {
        match self {
            BenchTransport::Tcp => vec![Transport::Tcp],
            BenchTransport::Quic => vec![Transport::Quic],
            BenchTransport::Both => vec![Transport::Tcp, Transport::Quic],
        }
    }
}

/// The sizes one run uses.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    nodes: usize,
    builds: usize,
    bulk_mib: usize,
    processes: usize,
    process_bulk_mib: usize,
}

impl Sizes {
    fn from_args(args: &BenchArgs) -> Self {
        let (nodes, builds, bulk_mib, processes, process_bulk_mib) = if args.quick {
            (6, 8, 2, 5, 1)
        } else {
            (10, 60, 100, 8, 32)
        };
        Sizes {
            nodes: args.nodes.unwrap_or(nodes),
            builds: args.builds.unwrap_or(builds),
            bulk_mib: args.bulk_mib.unwrap_or(bulk_mib),
            processes: args.processes.unwrap_or(processes),
            process_bulk_mib: args.process_bulk_mib.unwrap_or(process_bulk_mib),
        }
    }
}

/// Runs the benchmark and prints the table. `Err` is one line.
pub fn run(args: BenchArgs) -> Result<(), String> {
    crate::logger::init(crate::logger::parse_level(&args.log_level)?);
    let sizes = Sizes::from_args(&args);
    if !(5..=100).contains(&sizes.nodes) {
        return Err(format!(
            "--nodes {}: a 3-relay circuit needs at least 5 nodes (and this bench runs at most 100)",
            sizes.nodes
        ));
    }
    if sizes.processes != 0 && !(5..=100).contains(&sizes.processes) {
        return Err(format!(
            "--processes {}: use 0 (skip) or 5 to 100",
            sizes.processes
        ));
    }
    if sizes.builds == 0 {
        return Err("--builds must be at least 1".into());
    }
    let seed = match args.seed {
        Some(s) => s,
        None => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| format!("no OS entropy: {e}"))?;
            u64::from_le_bytes(bytes)
        }
    };
    let started = Instant::now();
    let profile = if cfg!(debug_assertions) {
        "DEBUG build: figures are not representative, use --release"
    } else {
        "release build"
    };
    let default = if cfg!(feature = "quic") {
        BenchTransport::Both
    } else {
        BenchTransport::Tcp
    };
    let networks = args.transport.unwrap_or(default).networks();
    if networks.contains(&Transport::Quic) && !cfg!(feature = "quic") {
        return Err(
            "--transport quic: this veil was built without QUIC (cargo feature `quic`)".into(),
        );
    }
    let mut in_process_runs = Vec::new();
    for transport in networks {
        println!(
            "veil bench: {} nodes in this process on loopback {}, 3-relay circuits ({profile}, seed {seed})",
            sizes.nodes,
            transport_name(transport)
        );
        in_process_runs.push((transport, in_process(sizes, seed, transport)?));
    }
    let processes = if sizes.processes > 0 {
        println!(
            "veil bench: {} `veil node` processes on loopback TCP",
            sizes.processes
        );
        Some(processes(sizes)?)
    } else {
        None
    };
    print_table(sizes, &in_process_runs, processes.as_ref());
    println!("veil bench: ok in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

// ---------------------------------------------------------------------------
// Part one: every node in this process.

struct InProcess {
    discovery: Duration,
    builds: Vec<Build>,
    bulk: Option<Bulk>,
    rss_baseline_kib: u64,
    rss_peak_kib: u64,
}

struct Build {
    built_in: Duration,
    first_message: Duration,
    new_links: bool,
}

struct Bulk {
    bytes: u64,
    messages: usize,
    elapsed: Duration,
    from: usize,
    to: usize,
    /// Circuits the sender built while the transfer ran (its
    /// `circuits_built` counter, and for the in-process network also its
    /// `CircuitReady` notices). 0 means every message went over the one
    /// circuit that existed before: the sender had exactly one circuit to
    /// the destination, and a lost or broken circuit is always replaced
    /// by a new build.
    built_during: u64,
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Tcp => "TCP",
        Transport::Quic => "QUIC",
    }
}

fn in_process(sizes: Sizes, seed: u64, transport: Transport) -> Result<InProcess, String> {
    let rss_baseline_kib = proc_status_kib("self", "VmHWM")?;
    let hosts = start_network(sizes.nodes, transport)?;
    let ids: Vec<NodeId> = hosts.iter().map(Host::id).collect();
    let (notices_tx, notices) = mpsc::sync_channel(NOTICE_QUEUE);
    for (i, host) in hosts.iter().enumerate() {
        host.command(crate::host::Command::Subscribe {
            tag: i,
            tx: notices_tx.clone(),
        })?;
    }
    drop(notices_tx);
    let discovery = wait_for_discovery(&hosts)?;
    println!(
        "  discovery: every node knows the {} others after {:.1} s",
        sizes.nodes.saturating_sub(1),
        discovery.as_secs_f64()
    );

    let pairs = shuffled_pairs(sizes.nodes, seed);
    let builds = time_builds(&hosts, &ids, &notices, &pairs, sizes.builds)?;
    println!("  circuits: {} builds timed", builds.len());

    let bulk = if sizes.bulk_mib > 0 {
        // The first pair already has its circuit (and a warm-up message
        // makes sure): the transfer measures the circuit, not its build.
        let (from, to) = pairs.first().copied().unwrap_or((0, 1));
        let b = bulk_in_process(&hosts, &ids, &notices, from, to, sizes.bulk_mib)?;
        println!(
            "  bulk: {:.1} MiB from node {from} to node {to} in {:.2} s",
            mib(b.bytes),
            b.elapsed.as_secs_f64()
        );
        Some(b)
    } else {
        None
    };
    let rss_peak_kib = proc_status_kib("self", "VmHWM")?;
    for host in hosts {
        host.shutdown()?;
    }
    Ok(InProcess {
        discovery,
        builds,
        bulk,
        rss_baseline_kib,
        rss_peak_kib,
    })
}

fn start_network(n: usize, transport: Transport) -> Result<Vec<Host>, String> {
    let quic = transport == Transport::Quic;
    let config = NodeConfig {
        gossip_interval: CoreDuration::from_millis(200),
        bootstrap_retry: CoreDuration::from_millis(500),
        path_relays: 3,
        quic_dials: quic,
        ..NodeConfig::default()
    };
    let options = RuntimeOptions {
        // Room for a link to every other node.
        links: n.saturating_add(8),
        ..RuntimeOptions::default()
    };
    let mut hosts: Vec<Host> = Vec::with_capacity(n);
    let mut bootstrap = None;
    for i in 0..n {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("no OS entropy: {e}"))?;
        let addr = SocketAddr::new(loopback_net(110, i)?, 0);
        let mut rt = Runtime::bind_with(config, Identity::from_secret_bytes(secret), addr, options)
            .map_err(|e| format!("node {i}: {e}"))?;
        let own = if quic {
            Address {
                transport: Transport::Quic,
                socket: listen_quic(&mut rt, addr).map_err(|e| format!("node {i}: {e}"))?,
            }
        } else {
            Address {
                transport: Transport::Tcp,
                socket: rt.local_addr(),
            }
        };
        match bootstrap {
            None => bootstrap = Some(own),
            Some(b) => {
                rt.add_bootstrap_address(b);
            }
        }
        hosts.push(Host::spawn(rt, format!("veil-bench-{i}"))?);
    }
    Ok(hosts)
}

#[cfg(feature = "quic")]
fn listen_quic(rt: &mut Runtime, addr: SocketAddr) -> Result<SocketAddr, String> {
    rt.listen_quic(addr, veil_mio::veil_quic::QuicConfig::default())
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "quic"))]
fn listen_quic(_: &mut Runtime, _: SocketAddr) -> Result<SocketAddr, String> {
    Err("built without QUIC".into())
}

/// `127.(base + i).0.1`: each node on its own /16.
fn loopback_net(base: usize, i: usize) -> Result<IpAddr, String> {
    let net = u8::try_from(base.saturating_add(i))
        .map_err(|_| "too many nodes for the loopback networks".to_string())?;
    Ok(IpAddr::V4(Ipv4Addr::new(127, net, 0, 1)))
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

/// Every ordered pair of distinct nodes, in an order the seed decides.
fn shuffled_pairs(n: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b)))
        .collect();
    let mut rng = seed | 1;
    for i in (1..pairs.len()).rev() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let j = usize::try_from(rng % (i as u64 + 1)).unwrap_or(0);
        pairs.swap(i, j);
    }
    pairs
}

fn link_ends(hosts: &[Host]) -> Result<usize, String> {
    let mut total = 0usize;
    for host in hosts {
        total = total.saturating_add(host.status()?.links.len());
    }
    Ok(total)
}

/// Waits for a send's outcome, taking notices meanwhile.
fn wait_send(
    rx: &Receiver<SendResult>,
    notices: &Receiver<(usize, Notice)>,
    seen: &mut Vec<(usize, Notice)>,
    cap: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(result) => return result,
            Err(TryRecvError::Disconnected) => return Err("a node thread stopped".into()),
            Err(TryRecvError::Empty) => {}
        }
        if start.elapsed() > cap {
            return Err(format!("no acknowledgement in {} s", cap.as_secs()));
        }
        match notices.recv_timeout(Duration::from_micros(200)) {
            Ok(notice) => seen.push(notice),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err("every node thread stopped".into()),
        }
    }
}

fn time_builds(
    hosts: &[Host],
    ids: &[NodeId],
    notices: &Receiver<(usize, Notice)>,
    pairs: &[(usize, usize)],
    count: usize,
) -> Result<Vec<Build>, String> {
    if count > pairs.len() {
        return Err(format!(
            "--builds {count}: {} nodes have only {} pairs; add nodes",
            hosts.len(),
            pairs.len()
        ));
    }
    let mut builds = Vec::with_capacity(count);
    let mut seen = Vec::new();
    for &(src, dst) in pairs.iter().take(count) {
        let (Some(host), Some(&dest)) = (hosts.get(src), ids.get(dst)) else {
            return Err("internal: node index out of range".into());
        };
        let links_before = link_ends(hosts)?;
        seen.clear();
        let start = Instant::now();
        let rx = host.send(dest, b"veil bench: circuit build".to_vec())?;
        wait_send(&rx, notices, &mut seen, BUILD_CAP)
            .map_err(|e| format!("message from node {src} to node {dst}: {e}"))?;
        let first_message = start.elapsed();
        // The ready notice went out before the message: take what is queued.
        while let Ok(notice) = notices.try_recv() {
            seen.push(notice);
        }
        let built_in = seen.iter().find_map(|(node, notice)| match notice {
            Notice::CircuitReady {
                destination,
                built_in,
            } if *node == src && *destination == dest => Some(*built_in),
            _ => None,
        });
        let Some(built_in) = built_in else {
            return Err(format!(
                "node {src} sent to node {dst} without reporting a new circuit"
            ));
        };
        let new_links = link_ends(hosts)? > links_before;
        builds.push(Build {
            built_in,
            first_message,
            new_links,
        });
    }
    Ok(builds)
}

/// What every bulk message starts with, so that a message left over from
/// the build phase (delivered after its acknowledgement was seen) is told
/// apart and ignored.
const BULK_TAG: &[u8; 8] = b"veilbulk";
/// The tag and the sequence number.
const BULK_HEADER: usize = BULK_TAG.len() + 4;

/// The bulk message `seq` of `len` bytes (at least the header): the tag,
/// its sequence number, then zeros (the links encrypt it anyway; a pattern
/// would only cost the bench CPU).
fn bulk_message(seq: u32, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len.max(BULK_HEADER)];
    for (slot, byte) in data
        .iter_mut()
        .zip(BULK_TAG.iter().copied().chain(seq.to_be_bytes()))
    {
        *slot = byte;
    }
    data
}

/// The sequence number of a bulk message, `None` if it is not one.
fn bulk_seq(data: &[u8]) -> Option<usize> {
    let rest = data.strip_prefix(BULK_TAG)?;
    let seq = rest.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok())?;
    usize::try_from(u32::from_be_bytes(seq)).ok()
}

fn bulk_in_process(
    hosts: &[Host],
    ids: &[NodeId],
    notices: &Receiver<(usize, Notice)>,
    from: usize,
    to: usize,
    bulk_mib: usize,
) -> Result<Bulk, String> {
    let (Some(host), Some(&dest)) = (hosts.get(from), ids.get(to)) else {
        return Err("internal: node index out of range".into());
    };
    let chunk = StdNode::MAX_MESSAGE;
    let total_bytes = bulk_mib.saturating_mul(1024 * 1024);
    let total = total_bytes.div_ceil(chunk);
    // One message first, outside the timing: the circuit the first timed
    // build made is used if it is still open, or rebuilt now if not, so
    // the transfer starts over one ready circuit.
    let mut seen = Vec::new();
    let warm_up = host.send(dest, b"veil bench: before the bulk transfer".to_vec())?;
    wait_send(&warm_up, notices, &mut seen, BUILD_CAP)
        .map_err(|e| format!("message from node {from} to node {to} before the bulk: {e}"))?;
    let built_before = host.status()?.circuits_built;
    let mut ready_notices = 0u64;
    let mut received = vec![false; total];
    let mut received_count = 0usize;
    let mut received_bytes = 0u64;
    let mut outstanding = std::collections::VecDeque::new();
    let mut next = 0usize;
    let mut acked = 0usize;
    let start = Instant::now();
    let mut last_ack = start;
    while acked < total || received_count < total {
        while next < total && outstanding.len() < BULK_WINDOW {
            let seq = u32::try_from(next).map_err(|_| "bulk too large".to_string())?;
            let len = chunk.min(total_bytes.saturating_sub(next.saturating_mul(chunk)));
            outstanding.push_back(host.send(dest, bulk_message(seq, len))?);
            next = next.saturating_add(1);
        }
        while let Some(rx) = outstanding.front() {
            match rx.try_recv() {
                Ok(Ok(())) => {
                    outstanding.pop_front();
                    acked = acked.saturating_add(1);
                    last_ack = Instant::now();
                }
                Ok(Err(e)) => return Err(format!("bulk message {acked} failed: {e}")),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Err("the sending node stopped".into()),
            }
        }
        if start.elapsed() > BULK_CAP {
            return Err(format!(
                "bulk transfer stalled: {acked} of {total} messages acknowledged after {} s",
                BULK_CAP.as_secs()
            ));
        }
        let notice = match notices.recv_timeout(Duration::from_micros(500)) {
            Ok(n) => Some(n),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Err("every node thread stopped".into()),
        };
        let mut pending = notice.into_iter().collect::<Vec<_>>();
        while let Ok(n) = notices.try_recv() {
            pending.push(n);
        }
        for (node, notice) in pending {
            let data = match notice {
                Notice::Received { data, .. } => data,
                Notice::CircuitReady { destination, .. } => {
                    if node == from && destination == dest {
                        ready_notices = ready_notices.saturating_add(1);
                    }
                    continue;
                }
            };
            let Some(seq) = bulk_seq(&data) else {
                // The warm-up, or a message of the build phase.
                continue;
            };
            if node != to {
                return Err(format!("a bulk message arrived at node {node}"));
            }
            let expected_len = chunk
                .min(total_bytes.saturating_sub(seq.saturating_mul(chunk)))
                .max(BULK_HEADER);
            let slot = received
                .get_mut(seq)
                .ok_or_else(|| format!("unknown bulk message {seq} arrived"))?;
            if *slot {
                return Err(format!("bulk message {seq} was delivered twice"));
            }
            if data.len() != expected_len
                || data
                    .get(BULK_HEADER..)
                    .is_some_and(|r| r.iter().any(|&b| b != 0))
            {
                return Err(format!("bulk message {seq} arrived altered"));
            }
            *slot = true;
            received_count = received_count.saturating_add(1);
            received_bytes =
                received_bytes.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        }
    }
    let built_after = host.status()?.circuits_built;
    Ok(Bulk {
        bytes: received_bytes,
        messages: total,
        elapsed: last_ack.duration_since(start),
        from,
        to,
        built_during: built_after.saturating_sub(built_before).max(ready_notices),
    })
}

// ---------------------------------------------------------------------------
// Part two: one `veil node` process per node.

struct Processes {
    nodes: usize,
    circuits: usize,
    bulk: Option<Bulk>,
    /// Per process: peak RSS, and anonymous (not file-backed) RSS at the
    /// end, KiB.
    rss_kib: Vec<(u64, u64)>,
}

/// Child processes and their scratch directory, gone on drop.
struct Fleet {
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

struct ProcNode {
    id: String,
    control: SocketAddr,
    pid: u32,
}

fn free_port(ip: IpAddr) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0))
        .map_err(|e| format!("cannot bind a port on {ip}: {e}"))?;
    listener
        .local_addr()
        .map_err(|e| format!("cannot bind a port on {ip}: {e}"))
}

fn spawn_fleet(n: usize) -> Result<(Fleet, Vec<ProcNode>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the veil binary: {e}"))?;
    let dir = std::env::temp_dir().join(format!("veil-bench-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let mut fleet = Fleet {
        children: Vec::new(),
        dir: dir.clone(),
    };
    let mut nodes = Vec::with_capacity(n);
    let mut bootstrap: Option<SocketAddr> = None;
    for i in 0..n {
        let node_dir = dir.join(format!("n{i}"));
        let data = node_dir.join("data");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data)
            .map_err(|e| format!("cannot create {}: {e}", data.display()))?;
        let listen = free_port(loopback_net(150, i)?)?;
        let control = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let boot = bootstrap.map_or(String::new(), |b| format!("bootstrap = [\"{b}\"]\n"));
        let config = format!(
            "listen = \"{listen}\"\ncontrol = \"{control}\"\ndata_dir = \"{}\"\n{boot}\
             gossip_interval_ms = 200\nbootstrap_retry_ms = 500\nlog_level = \"warn\"\n\
             links = {}\n",
            data.display(),
            n.saturating_add(8)
        );
        let config_path = node_dir.join("veil.toml");
        fs::write(&config_path, config)
            .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
        let log = fs::File::create(node_dir.join("stderr.log"))
            .map_err(|e| format!("cannot create a log file: {e}"))?;
        let mut child = std::process::Command::new(&exe)
            .arg("node")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start `veil node`: {e}"))?;
        let stdout = child.stdout.take();
        let pid = child.id();
        fleet.children.push(child);
        let id = read_node_id(stdout).map_err(|e| {
            let log = fs::read_to_string(node_dir.join("stderr.log")).unwrap_or_default();
            let last = log.lines().last().unwrap_or("no log").to_string();
            format!("process node {i}: {e} ({last})")
        })?;
        bootstrap.get_or_insert(listen);
        nodes.push(ProcNode { id, control, pid });
    }
    Ok((fleet, nodes))
}

/// The node id from `veil node`'s first line ("veil node <id> listening…").
fn read_node_id(stdout: Option<std::process::ChildStdout>) -> Result<String, String> {
    let stdout = stdout.ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = tx.send(reader.read_line(&mut line).map(|_| line));
        // Keep the pipe open (and drained) while the node runs.
        let mut rest = String::new();
        while reader.read_line(&mut rest).is_ok_and(|n| n > 0) {
            rest.clear();
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "did not start within 20 s".to_string())?
        .map_err(|e| format!("cannot read its output: {e}"))?;
    line.split_whitespace()
        .nth(2)
        .filter(|id| id.len() == 64)
        .map(str::to_string)
        .ok_or_else(|| format!("unexpected first line {line:?}"))
}

/// One control connection.
struct Control {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Control {
    fn connect(addr: SocketAddr) -> Result<Self, String> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("control socket {addr}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(150)))
            .map_err(|e| format!("control socket {addr}: {e}"))?;
        let writer = stream
            .try_clone()
            .map_err(|e| format!("control socket {addr}: {e}"))?;
        Ok(Control {
            writer,
            reader: BufReader::new(stream),
        })
    }

    fn call(&mut self, request: &Request) -> Result<Response, String> {
        let mut line =
            serde_json::to_vec(request).map_err(|e| format!("cannot encode a request: {e}"))?;
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .map_err(|e| format!("control connection failed: {e}"))?;
        let answer = read_line(&mut self.reader)
            .map_err(|e| format!("control connection failed: {e}"))?
            .ok_or("the node closed the control connection")?;
        serde_json::from_slice(&answer).map_err(|e| format!("unexpected answer: {e}"))
    }

    fn send(&mut self, to: &str, data: &[u8]) -> Result<(), String> {
        let answer = self.call(&Request::Send {
            to: to.to_string(),
            data_hex: hex::encode(data),
        })?;
        if answer.ok {
            Ok(())
        } else {
            Err(answer.error.unwrap_or_else(|| "send failed".into()))
        }
    }

    fn status(&mut self) -> Result<crate::host::Status, String> {
        let answer = self.call(&Request::Status)?;
        answer
            .status
            .ok_or_else(|| answer.error.unwrap_or_else(|| "no status".into()))
    }

    fn known_relays(&mut self) -> Result<usize, String> {
        self.status().map(|s| s.known_relays)
    }

    fn circuits_built(&mut self) -> Result<u64, String> {
        self.status().map(|s| s.circuits_built)
    }
}

fn processes(sizes: Sizes) -> Result<Processes, String> {
    let n = sizes.processes;
    let (fleet, nodes) = spawn_fleet(n)?;
    // Discovery.
    let start = Instant::now();
    for (i, node) in nodes.iter().enumerate() {
        let mut control = Control::connect(node.control)?;
        loop {
            let known = control.known_relays()?;
            if known >= n.saturating_sub(1) {
                break;
            }
            if start.elapsed() > DISCOVERY_CAP {
                return Err(format!(
                    "process node {i} learned {known} of {} relays in {} s",
                    n.saturating_sub(1),
                    DISCOVERY_CAP.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    println!(
        "  discovery: every process knows the others after {:.1} s",
        start.elapsed().as_secs_f64()
    );

    // Every node sends one message to every other: n(n-1) circuits.
    let ids: Vec<String> = nodes.iter().map(|p| p.id.clone()).collect();
    let results: Vec<Result<usize, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let ids = &ids;
                scope.spawn(move || -> Result<usize, String> {
                    let mut control = Control::connect(node.control)?;
                    let mut sent = 0usize;
                    for (j, id) in ids.iter().enumerate() {
                        if j != i {
                            control
                                .send(id, &[0x5a; 1024])
                                .map_err(|e| format!("process node {i} to {j}: {e}"))?;
                            sent = sent.saturating_add(1);
                        }
                    }
                    Ok(sent)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a sender panicked".into())))
            .collect()
    });
    let mut circuits = 0usize;
    for r in results {
        circuits = circuits.saturating_add(r?);
    }
    println!("  circuits: {circuits} messages over fresh circuits, all acknowledged");

    let bulk = if sizes.process_bulk_mib > 0 {
        let b = bulk_processes(&nodes, sizes.process_bulk_mib)?;
        println!(
            "  bulk: {:.1} MiB from process 0 to process 1 in {:.2} s",
            mib(b.bytes),
            b.elapsed.as_secs_f64()
        );
        Some(b)
    } else {
        None
    };

    let mut rss_kib = Vec::with_capacity(n);
    for node in &nodes {
        let pid = node.pid.to_string();
        rss_kib.push((
            proc_status_kib(&pid, "VmHWM")?,
            proc_status_kib(&pid, "RssAnon")?,
        ));
    }
    drop(fleet);
    Ok(Processes {
        nodes: n,
        circuits,
        bulk,
        rss_kib,
    })
}

/// 64 KiB messages from process 0 to process 1 over parallel control
/// connections (the node keeps them on one circuit).
fn bulk_processes(nodes: &[ProcNode], bulk_mib: usize) -> Result<Bulk, String> {
    let (Some(from), Some(to)) = (nodes.first(), nodes.get(1)) else {
        return Err("internal: too few processes".into());
    };
    let chunk = StdNode::MAX_MESSAGE;
    let total = bulk_mib.saturating_mul(1024 * 1024).div_ceil(chunk);
    let message = vec![0u8; chunk];
    let built_before = Control::connect(from.control)?.circuits_built()?;
    let start = Instant::now();
    let results: Vec<Result<usize, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CONTROL_STREAMS)
            .map(|k| {
                let message = &message;
                scope.spawn(move || -> Result<usize, String> {
                    let mut control = Control::connect(from.control)?;
                    let mut sent = 0usize;
                    for _ in (k..total).step_by(CONTROL_STREAMS) {
                        control.send(&to.id, message)?;
                        sent = sent.saturating_add(1);
                    }
                    Ok(sent)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a sender panicked".into())))
            .collect()
    });
    let elapsed = start.elapsed();
    let mut messages = 0usize;
    for r in results {
        messages = messages.saturating_add(r.map_err(|e| format!("bulk between processes: {e}"))?);
    }
    let built_after = Control::connect(from.control)?.circuits_built()?;
    Ok(Bulk {
        bytes: u64::try_from(messages.saturating_mul(chunk)).unwrap_or(u64::MAX),
        messages,
        elapsed,
        from: 0,
        to: 1,
        built_during: built_after.saturating_sub(built_before),
    })
}

// ---------------------------------------------------------------------------
// Figures and the table.

/// A `kB` field of `/proc/<pid>/status`, in KiB.
fn proc_status_kib(pid: &str, field: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .ok_or_else(|| format!("no {field} in {path}"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let last = sorted.len().saturating_sub(1);
    let rank = (last as f64 * q).round() as usize;
    sorted.get(rank.min(last)).copied().unwrap_or_default()
}

fn spread(mut values: Vec<Duration>) -> String {
    values.sort();
    if values.is_empty() {
        return "none".into();
    }
    format!(
        "median {:.2} ms (p10 {:.2}, p90 {:.2}, min {:.2}, max {:.2}; n={})",
        ms(quantile(&values, 0.5)),
        ms(quantile(&values, 0.1)),
        ms(quantile(&values, 0.9)),
        ms(values.first().copied().unwrap_or_default()),
        ms(values.last().copied().unwrap_or_default()),
        values.len()
    )
}

fn throughput(b: &Bulk) -> String {
    let secs = b.elapsed.as_secs_f64().max(1e-9);
    format!(
        "{:.1} MB/s ({:.1} MiB/s): {:.1} MiB in {} x 64 KiB in {:.2} s",
        b.bytes as f64 / 1e6 / secs,
        mib(b.bytes) / secs,
        mib(b.bytes),
        b.messages,
        secs
    )
}

/// The row label and the circuit check of a bulk transfer.
fn bulk_row(what: &str, b: &Bulk) -> (String, String) {
    if b.built_during == 0 {
        (
            format!("{what}, one circuit (node {}->{})", b.from, b.to),
            "1 circuit: built before the transfer, none built during it".into(),
        )
    } else {
        (
            format!("{what} (node {}->{})", b.from, b.to),
            format!(
                "NOT one circuit: the sender built {} more during the transfer (a circuit broke and was replaced)",
                b.built_during
            ),
        )
    }
}

fn print_table(sizes: Sizes, runs: &[(Transport, InProcess)], procs: Option<&Processes>) {
    let row = |what: &str, veil: &str, tor: &str| {
        println!("  {what:<34} {veil}");
        if !tor.is_empty() {
            println!("  {:<34} Tor: {tor}", "");
        }
    };
    println!();
    println!("results");
    for (transport, inp) in runs {
        let t = transport_name(*transport);
        row(
            &format!("discovery ({t}, in-process)"),
            &format!("{:.2} s", inp.discovery.as_secs_f64()),
            "",
        );
        row(
            &format!("3-relay circuit build ({t})"),
            &spread(inp.builds.iter().map(|b| b.built_in).collect()),
            TOR_BUILD,
        );
        row(
            "  of which over existing links",
            &spread(
                inp.builds
                    .iter()
                    .filter(|b| !b.new_links)
                    .map(|b| b.built_in)
                    .collect(),
            ),
            "",
        );
        row(
            "  of which dialled new links",
            &spread(
                inp.builds
                    .iter()
                    .filter(|b| b.new_links)
                    .map(|b| b.built_in)
                    .collect(),
            ),
            "",
        );
        row(
            "first message, send to ack",
            &spread(inp.builds.iter().map(|b| b.first_message).collect()),
            "",
        );
        if let Some(b) = &inp.bulk {
            let (label, circuits) = bulk_row(&format!("bulk ({t})"), b);
            row(&label, &throughput(b), TOR_BULK);
            row("", &circuits, "");
        }
        let grown = inp.rss_peak_kib.saturating_sub(inp.rss_baseline_kib);
        row(
            &format!("peak RSS, in-process estimate ({t})"),
            &format!(
                "{:.1} MiB per node ((VmHWM {:.1} - baseline {:.1} MiB) / {} nodes)",
                grown as f64 / 1024.0 / sizes.nodes as f64,
                inp.rss_peak_kib as f64 / 1024.0,
                inp.rss_baseline_kib as f64 / 1024.0,
                sizes.nodes
            ),
            "",
        );
    }
    if let Some(p) = procs {
        let mut peaks: Vec<u64> = p.rss_kib.iter().map(|r| r.0).collect();
        peaks.sort_unstable();
        let mid = peaks.get(peaks.len() / 2).copied().unwrap_or(0);
        let min = peaks.first().copied().unwrap_or(0);
        let max = peaks.last().copied().unwrap_or(0);
        row(
            "peak RSS per node process",
            &format!(
                "median {:.1} MiB (min {:.1}, max {:.1}) VmHWM of {} `veil node` processes after {} circuits{}",
                mid as f64 / 1024.0,
                min as f64 / 1024.0,
                max as f64 / 1024.0,
                p.nodes,
                p.circuits,
                p.bulk
                    .as_ref()
                    .map_or(String::new(), |b| format!(" and {:.0} MiB bulk", mib(b.bytes)))
            ),
            TOR_RSS,
        );
        let per: Vec<String> = p
            .rss_kib
            .iter()
            .map(|(hwm, anon)| {
                format!("{:.1} ({:.1})", *hwm as f64 / 1024.0, *anon as f64 / 1024.0)
            })
            .collect();
        row(
            "  each process: peak (anon at end)",
            &format!("{} MiB", per.join(", ")),
            "",
        );
        if let Some(b) = &p.bulk {
            let (label, circuits) = bulk_row("bulk between processes", b);
            row(
                &label,
                &format!("{} (via control sockets, hex JSON)", throughput(b)),
                "",
            );
            row("", &circuits, "");
        }
    }
    println!();
}
