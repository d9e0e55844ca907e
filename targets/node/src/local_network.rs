//! A whole veil network on this machine's loopback, started in one call:
//! in this process (one host thread per node, for `veil demo` and the
//! first part of `veil bench`) or as `veil node` processes (for the
//! bench's per-process memory figures).
//!
//! Node `i` gets a loopback network of its own, `127.(first_subnet + i).0.1`:
//! path selection never puts two hops of a circuit in one /16, so nodes on
//! one address could not form paths. Node 0 is everyone's bootstrap. The
//! nodes gossip every 200 ms and retry their bootstrap every 500 ms, so a
//! network forms within seconds; circuits have 3 relays. The rest is
//! discovery, circuits and messages exactly as between machines.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use veil_core::identity::{Address, Identity, NodeId, Transport};
use veil_core::node::NodeConfig;
use veil_core::time::Duration as CoreDuration;
use veil_mio::{Runtime, RuntimeOptions};
use veil_node::control_address::Endpoint;
use veil_node::control_client::ControlClient;

use crate::host::Host;
use crate::host_protocol::{Command, Notice};

/// How often descriptors are gossiped: fast, so discovery takes seconds.
const GOSSIP_INTERVAL_MS: u64 = 200;
/// How often an unlinked node dials its bootstrap.
const BOOTSTRAP_RETRY_MS: u64 = 500;
/// Relays per circuit.
const PATH_RELAYS: usize = 3;
/// How long a `veil node` process may take to print its id.
const PROCESS_START_CAP: Duration = Duration::from_secs(20);
/// How long a process's control socket may take to answer `status`.
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// Which transports the nodes' links use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transports {
    /// Every node speaks TCP only.
    Tcp,
    /// Every node listens on QUIC too, dials QUIC first, and bootstraps
    /// over it.
    Quic,
    /// Two nodes in three (node 0 among them) speak QUIC too and dial it
    /// first; the rest speak TCP only. So circuits cross both: a TCP-only
    /// node is reached over TCP, two QUIC nodes link over QUIC. Everyone
    /// bootstraps over TCP, which every node speaks.
    Mixed,
}

impl Transports {
    /// Whether node `i` listens on QUIC and dials it first.
    fn quic(self, i: usize) -> bool {
        match self {
            Transports::Tcp => false,
            Transports::Quic => true,
            Transports::Mixed => i % 3 != 2,
        }
    }

    /// How the transports are named in the demo's and the bench's output.
    pub fn name(self) -> &'static str {
        match self {
            Transports::Tcp => "TCP",
            Transports::Quic => "QUIC",
            Transports::Mixed => "TCP and QUIC",
        }
    }
}

/// A network to start.
#[derive(Debug, Clone, Copy)]
pub struct NetworkSpec {
    /// How many nodes.
    pub nodes: usize,
    /// Which transports their links use.
    pub transports: Transports,
    /// Node `i` listens on `127.(first_subnet + i).0.1`.
    pub first_subnet: u8,
    /// Link slots per node: the most connections each holds at once.
    pub links: usize,
}

impl NetworkSpec {
    /// Node `i`'s address: `127.(first_subnet + i).0.1`.
    fn ip(&self, i: usize) -> Result<IpAddr, String> {
        let net = u8::try_from(usize::from(self.first_subnet).saturating_add(i))
            .map_err(|_| "too many nodes for the loopback networks".to_string())?;
        Ok(IpAddr::V4(Ipv4Addr::new(127, net, 0, 1)))
    }
}

/// A network whose nodes are hosts (node threads) in this process.
#[derive(Debug)]
pub struct InProcessNetwork {
    hosts: Vec<Host>,
}

/// Starts `spec.nodes` hosts in this process, each with a fresh identity.
pub fn start_in_process(spec: &NetworkSpec) -> Result<InProcessNetwork, String> {
    let options = RuntimeOptions {
        links: spec.links,
        ..RuntimeOptions::default()
    };
    let mut hosts: Vec<Host> = Vec::with_capacity(spec.nodes);
    let mut bootstrap = None;
    for i in 0..spec.nodes {
        let quic = spec.transports.quic(i);
        if quic && !cfg!(feature = "quic") {
            return Err("this veil was built without QUIC (cargo feature `quic`)".into());
        }
        let config = NodeConfig {
            gossip_interval: CoreDuration::from_millis(GOSSIP_INTERVAL_MS),
            bootstrap_retry: CoreDuration::from_millis(BOOTSTRAP_RETRY_MS),
            path_relays: PATH_RELAYS,
            quic_dials: quic,
            // Every node of this network listens on loopback.
            extend_to_private_addresses: true,
            ..NodeConfig::default()
        };
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("no OS entropy: {e}"))?;
        let addr = SocketAddr::new(spec.ip(i)?, 0);
        let mut rt = Runtime::bind_with(config, Identity::from_secret_bytes(secret), addr, options)
            .map_err(|e| format!("node {i}: {e}"))?;
        let tcp = Address {
            transport: Transport::Tcp,
            socket: rt.local_addr(),
        };
        let own = if quic {
            let socket = listen_quic(&mut rt, addr).map_err(|e| format!("node {i}: {e}"))?;
            match spec.transports {
                Transports::Quic => Address {
                    transport: Transport::Quic,
                    socket,
                },
                Transports::Tcp | Transports::Mixed => tcp,
            }
        } else {
            tcp
        };
        match bootstrap {
            None => bootstrap = Some(own),
            Some(b) => rt
                .add_bootstrap_address(b)
                .map_err(|e| format!("node {i}: {e}"))?,
        }
        hosts.push(Host::spawn(rt, format!("veil-node-{i}"), None)?);
    }
    Ok(InProcessNetwork { hosts })
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

impl InProcessNetwork {
    /// The hosts, node 0 first.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The nodes' ids, node 0 first.
    pub fn ids(&self) -> Vec<NodeId> {
        self.hosts.iter().map(Host::id).collect()
    }

    /// Every host's notices on one channel, tagged with the node's index;
    /// a host drops the subscription if the channel falls `queue` behind.
    pub fn subscribe(&self, queue: usize) -> Result<Receiver<(usize, Notice)>, String> {
        let (tx, rx) = mpsc::sync_channel(queue);
        for (i, host) in self.hosts.iter().enumerate() {
            host.command(Command::Subscribe {
                tag: i,
                tx: tx.clone(),
            })?;
        }
        Ok(rx)
    }

    /// Waits until every node knows every other as a relay, at most `cap`;
    /// returns how long that took.
    pub fn wait_for_discovery(&self, cap: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let others = self.hosts.len().saturating_sub(1);
        loop {
            let mut laggard = None;
            for (i, host) in self.hosts.iter().enumerate() {
                let s = host.status()?;
                if s.known_relays < others {
                    laggard = Some((i, s.known_relays));
                    break;
                }
            }
            let Some((i, known)) = laggard else {
                return Ok(start.elapsed());
            };
            if start.elapsed() > cap {
                return Err(format!(
                    "discovery did not finish in {} s: node {i} knows {known} of {others} relays",
                    cap.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Closes every node's links and stops its thread.
    pub fn shutdown(self) -> Result<(), String> {
        for host in self.hosts {
            host.shutdown()?;
        }
        Ok(())
    }
}

/// A network of `veil node` processes with their scratch directory; the
/// processes are killed and the directory removed on drop.
#[derive(Debug)]
pub struct ProcessNetwork {
    children: Vec<Child>,
    dir: PathBuf,
    nodes: Vec<NodeProcess>,
}

/// One `veil node` process.
#[derive(Debug, Clone)]
pub struct NodeProcess {
    /// Its node id.
    pub id: NodeId,
    /// Its control socket (in its data directory).
    pub control: Endpoint,
    /// Its process id.
    pub pid: u32,
}

/// Starts `spec.nodes` `veil node` processes of the binary `veil`, each
/// with a data directory and config file of its own under the system's
/// temporary directory, logging warnings to a `stderr.log` there.
/// Processes speak TCP only (`spec.transports` must be `Tcp`).
pub fn start_processes(spec: &NetworkSpec, veil: &Path) -> Result<ProcessNetwork, String> {
    if spec.transports != Transports::Tcp {
        return Err(format!(
            "`veil node` processes are started on TCP only, not {}",
            spec.transports.name()
        ));
    }
    let dir = std::env::temp_dir().join(format!("veil-local-network-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let mut network = ProcessNetwork {
        children: Vec::new(),
        dir: dir.clone(),
        nodes: Vec::with_capacity(spec.nodes),
    };
    let mut bootstrap: Option<SocketAddr> = None;
    for i in 0..spec.nodes {
        let node_dir = dir.join(format!("n{i}"));
        let data = node_dir.join("data");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data)
            .map_err(|e| format!("cannot create {}: {e}", data.display()))?;
        let listen = free_port(spec.ip(i)?)?;
        let control = Endpoint::of_node(&data, None);
        let boot = bootstrap.map_or(String::new(), |b| format!("bootstrap = [\"{b}\"]\n"));
        let config = format!(
            "listen = \"{listen}\"\ndata_dir = \"{}\"\n{boot}\
             gossip_interval_ms = {GOSSIP_INTERVAL_MS}\nbootstrap_retry_ms = {BOOTSTRAP_RETRY_MS}\n\
             log_level = \"warn\"\nlinks = {}\nextend_to_private_addresses = true\n",
            data.display(),
            spec.links
        );
        let config_path = node_dir.join("veil.toml");
        fs::write(&config_path, config)
            .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
        let log = fs::File::create(node_dir.join("stderr.log"))
            .map_err(|e| format!("cannot create a log file: {e}"))?;
        let mut child = std::process::Command::new(veil)
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
        network.children.push(child);
        let id = read_node_id(stdout).map_err(|e| {
            let log = fs::read_to_string(node_dir.join("stderr.log")).unwrap_or_default();
            let last = log.lines().last().unwrap_or("no log").to_string();
            format!("process node {i}: {e} ({last})")
        })?;
        bootstrap.get_or_insert(listen);
        network.nodes.push(NodeProcess { id, control, pid });
    }
    Ok(network)
}

impl ProcessNetwork {
    /// The processes, node 0 first.
    pub fn nodes(&self) -> &[NodeProcess] {
        &self.nodes
    }

    /// Waits until every process knows every other as a relay, at most
    /// `cap`; returns how long that took.
    pub fn wait_for_discovery(&self, cap: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let others = self.nodes.len().saturating_sub(1);
        for (i, node) in self.nodes.iter().enumerate() {
            let mut control = ControlClient::connect(&node.control, Some(STATUS_TIMEOUT))
                .map_err(|e| format!("process node {i}: {e}"))?;
            loop {
                let known = control
                    .status()
                    .map_err(|e| format!("process node {i}: {e}"))?
                    .known_relays;
                if known >= others {
                    break;
                }
                if start.elapsed() > cap {
                    return Err(format!(
                        "process node {i} learned {known} of {others} relays in {} s",
                        cap.as_secs()
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(start.elapsed())
    }
}

impl Drop for ProcessNetwork {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A port free on `ip` a moment ago.
fn free_port(ip: IpAddr) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0))
        .map_err(|e| format!("cannot bind a port on {ip}: {e}"))?;
    listener
        .local_addr()
        .map_err(|e| format!("cannot bind a port on {ip}: {e}"))
}

/// The node id from `veil node`'s first line (`veil node <id> listening…`).
fn read_node_id(stdout: Option<ChildStdout>) -> Result<NodeId, String> {
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
        .recv_timeout(PROCESS_START_CAP)
        .map_err(|_| format!("did not start within {} s", PROCESS_START_CAP.as_secs()))?
        .map_err(|e| format!("cannot read its output: {e}"))?;
    line.split_whitespace()
        .nth(2)
        .and_then(|id| NodeId::from_hex(id).ok())
        .ok_or_else(|| format!("unexpected first line {line:?}"))
}
