//! Part two of `veil bench`: the network as separate `veil node`
//! processes. Drives circuits and a bulk transfer through their control
//! sockets and reads each process's own `VmHWM`: the real peak RSS per
//! node.

use std::time::{Duration, Instant};

use veil_mio::StdNode;
use veil_node::control_address::Endpoint;
use veil_node::control_client::ControlClient;

use super::bulk::{mib, Bulk};
use super::{memory, Sizes, DISCOVERY_CAP};
use crate::local_network::{self, NetworkSpec, NodeProcess, Transports};

/// Node `i` listens on `127.(FIRST_SUBNET + i).0.1`.
const FIRST_SUBNET: u8 = 150;
/// Parallel control connections for the bulk transfer.
const CONTROL_STREAMS: usize = 16;
/// How long one request over a control connection may wait for its
/// answer: a `send` is answered within the node's 120 s before it gives a
/// message up.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(150);

/// What part two measured.
pub(super) struct Processes {
    /// How many processes.
    pub nodes: usize,
    /// Messages sent, each over a fresh circuit.
    pub circuits: usize,
    /// The bulk transfer from process 0 to process 1.
    pub bulk: Option<Bulk>,
    /// Per process: peak RSS, and anonymous (not file-backed) RSS at the
    /// end, KiB.
    pub rss_kib: Vec<(u64, u64)>,
}

/// Runs part two; prints progress as it goes.
pub(super) fn run(sizes: Sizes) -> Result<Processes, String> {
    let n = sizes.processes;
    let veil = std::env::current_exe().map_err(|e| format!("cannot find the veil binary: {e}"))?;
    let network = local_network::start_processes(
        &NetworkSpec {
            nodes: n,
            transports: Transports::Tcp,
            first_subnet: FIRST_SUBNET,
            links: n.saturating_add(8),
        },
        &veil,
    )?;
    let nodes = network.nodes();
    let discovery = network.wait_for_discovery(DISCOVERY_CAP)?;
    println!(
        "  discovery: every process knows the others after {:.1} s",
        discovery.as_secs_f64()
    );

    // Every node sends one message to every other: n(n-1) circuits.
    let ids: Vec<_> = nodes.iter().map(|p| p.id).collect();
    let results: Vec<Result<usize, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let ids = &ids;
                scope.spawn(move || -> Result<usize, String> {
                    let mut control = connect(&node.control)?;
                    let mut sent = 0usize;
                    for (j, &id) in ids.iter().enumerate() {
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
        let b = between_processes(nodes, sizes.process_bulk_mib)?;
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
    for node in nodes {
        let pid = node.pid.to_string();
        rss_kib.push((
            memory::proc_status_kib(&pid, "VmHWM")?,
            memory::proc_status_kib(&pid, "RssAnon")?,
        ));
    }
    drop(network);
    Ok(Processes {
        nodes: n,
        circuits,
        bulk,
        rss_kib,
    })
}

/// A control connection to `control`.
fn connect(control: &Endpoint) -> Result<ControlClient, String> {
    ControlClient::connect(control, Some(ANSWER_TIMEOUT)).map_err(|e| e.to_string())
}

/// The node's `circuits_built` counter.
fn circuits_built(control: &Endpoint) -> Result<u64, String> {
    let status = connect(control)?.status().map_err(|e| e.to_string())?;
    Ok(status.circuits_built)
}

/// 64 KiB messages from process 0 to process 1 over parallel control
/// connections (the node keeps them on one circuit).
pub(super) fn between_processes(nodes: &[NodeProcess], bulk_mib: usize) -> Result<Bulk, String> {
    let (Some(from), Some(to)) = (nodes.first(), nodes.get(1)) else {
        return Err("internal: too few processes".into());
    };
    let chunk = StdNode::MAX_MESSAGE;
    let total = bulk_mib.saturating_mul(1024 * 1024).div_ceil(chunk);
    let message = vec![0u8; chunk];
    let built_before = circuits_built(&from.control)?;
    let start = Instant::now();
    let results: Vec<Result<usize, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CONTROL_STREAMS)
            .map(|k| {
                let message = &message;
                scope.spawn(move || -> Result<usize, String> {
                    let mut control = connect(&from.control)?;
                    let mut sent = 0usize;
                    for _ in (k..total).step_by(CONTROL_STREAMS) {
                        control.send(to.id, message).map_err(|e| e.to_string())?;
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
    let built_after = circuits_built(&from.control)?;
    Ok(Bulk {
        bytes: u64::try_from(messages.saturating_mul(chunk)).unwrap_or(u64::MAX),
        messages,
        elapsed,
        from: 0,
        to: 1,
        built_during: built_after.saturating_sub(built_before),
    })
}
