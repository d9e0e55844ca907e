//! `veil demo`: a whole network on loopback in one process.
//!
//! The network comes from `local_network`: every node on its own thread
//! and its own `127.N.0.1`, every node on TCP and, when built with QUIC,
//! two nodes in three on QUIC too ([`Transports::Mixed`]), so circuits
//! cross both transports. The demo then sends messages between random
//! pairs and one bulk transfer (`traffic`, which also checks that every
//! message arrives exactly once and intact), and prints what it measured.

mod traffic;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use veil_mio::StdNode;

use crate::local_network::{self, NetworkSpec, Transports};
use traffic::{Rng, Tracker};

/// How long every node may take to learn every other.
const DISCOVERY_CAP: Duration = Duration::from_secs(30);
/// Notices the main thread may lag behind by.
const NOTICE_QUEUE: usize = 16 * 1024;
/// Node `i` listens on `127.(FIRST_SUBNET + i).0.1`.
const FIRST_SUBNET: u8 = 10;
/// Link slots per node.
const LINKS: usize = 32;

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
    let transports = if cfg!(feature = "quic") {
        Transports::Mixed
    } else {
        Transports::Tcp
    };
    println!(
        "veil demo: {n} nodes on loopback over real {}, 3-relay circuits (seed {seed})",
        transports.name()
    );

    let started = Instant::now();
    let network = local_network::start_in_process(&NetworkSpec {
        nodes: n,
        transports,
        first_subnet: FIRST_SUBNET,
        links: LINKS,
    })?;
    let hosts = network.hosts();
    let ids = network.ids();
    let notices = network.subscribe(NOTICE_QUEUE)?;
    for (i, host) in hosts.iter().enumerate() {
        let listening = host.status()?.listen;
        println!("  node {i}  {listening}  {}", host.id());
    }

    let discovered_in = network.wait_for_discovery(DISCOVERY_CAP)?;
    println!(
        "  discovery   every node knows all {} others after {:.1} s",
        n.saturating_sub(1),
        discovered_in.as_secs_f64()
    );

    let mut tracker = Tracker::default();
    let delivered_in = traffic::exchange_messages(
        hosts,
        &ids,
        &notices,
        &mut tracker,
        &mut rng,
        options.messages,
    )?;
    println!(
        "  messages    {m}/{m} delivered exactly once and intact, all acknowledged, in {:.2} s",
        delivered_in.as_secs_f64(),
        m = options.messages
    );

    let bulk = if options.bulk_mib > 0 {
        Some(traffic::bulk_transfer(
            hosts,
            &ids,
            &notices,
            &mut tracker,
            &mut rng,
            options.bulk_mib,
        )?)
    } else {
        None
    };

    let mut times = tracker.circuit_times().to_vec();
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
    for host in hosts {
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
    network.shutdown()?;
    // Anything after the checks would be a duplicate.
    while let Ok((node, notice)) = notices.try_recv() {
        tracker.on_notice(node, notice)?;
    }
    println!("veil demo: ok in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
