//! Part two of `veil bench`: the network as separate `veil node`
//! processes. Drives circuits and a bulk transfer through their control
//! sockets and reads each process's own `VmHWM`: the real peak RSS per
//! node.

use std::time::{Duration, Instant};

use veil_mio::StdNode;
use veil_node::control_address::Endpoint;
use veil_node::control_client::{ControlClient, Listener};

use super::bulk::{bulk_message, bulk_seq, check_arrival, mib, Bulk, BULK_WINDOW};
use super::{memory, Sizes, DISCOVERY_CAP};
use crate::local_network::{self, NetworkSpec, NodeProcess, Transports};

/// Node `i` listens on `127.(FIRST_SUBNET + i).0.1`.
const FIRST_SUBNET: u8 = 150;
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

/// A control connection to `control`, on binary frames.
fn connect(control: &Endpoint) -> Result<ControlClient, String> {
    ControlClient::connect_framed(control, Some(ANSWER_TIMEOUT)).map_err(|e| e.to_string())
}

/// `bulk_mib` MiB in 64 KiB messages from process 0 to process 1, measured
/// as the in-process transfer is (`bulk::in_process`), so that the two
/// figures compare: an untimed warm-up message first, then
/// [`BULK_WINDOW`] messages in flight (one per control connection, each
/// of which waits for its acknowledgement), every message checked at the
/// receiver by a `listen` connection on process 1, and the time from the
/// first send to the last acknowledgement. The connections speak binary
/// frames, as any program moving data over the control socket should.
pub(super) fn between_processes(nodes: &[NodeProcess], bulk_mib: usize) -> Result<Bulk, String> {
    let (Some(from), Some(to)) = (nodes.first(), nodes.get(1)) else {
        return Err("internal: too few processes".into());
    };
    let chunk = StdNode::MAX_MESSAGE;
    let total_bytes = bulk_mib.saturating_mul(1024 * 1024);
    let total = total_bytes.div_ceil(chunk);
    if u32::try_from(total).is_err() {
        return Err("bulk too large".into());
    }
    // Every connection opened before the clock starts: the node takes at
    // most 32 at once, and the status requests use the first one.
    let mut controls = (0..BULK_WINDOW)
        .map(|_| connect(&from.control))
        .collect::<Result<Vec<_>, String>>()?;
    let first = controls
        .first_mut()
        .ok_or_else(|| "internal: no control connection".to_string())?;
    if !first.frames() {
        return Err("process 0 did not accept binary frames".into());
    }
    first
        .send(to.id, b"veil bench: before the bulk transfer")
        .map_err(|e| format!("message from process 0 to 1 before the bulk: {e}"))?;
    let built_before = first.status().map_err(|e| e.to_string())?.circuits_built;
    let listener = connect(&to.control)?
        .listen(None)
        .map_err(|e| format!("listening on process 1: {e}"))?;

    let start = Instant::now();
    let (sent, received) = std::thread::scope(|scope| {
        let receiver = scope.spawn(move || receive_bulk(listener, total, total_bytes));
        let handles: Vec<_> = controls
            .iter_mut()
            .enumerate()
            .map(|(k, control)| {
                scope.spawn(move || -> Result<(usize, Instant), String> {
                    let mut sent = 0usize;
                    let mut last_ack = Instant::now();
                    for seq in (k..total).step_by(BULK_WINDOW) {
                        let len = chunk.min(total_bytes.saturating_sub(seq.saturating_mul(chunk)));
                        let message = bulk_message(u32::try_from(seq).unwrap_or(u32::MAX), len);
                        control.send(to.id, &message).map_err(|e| e.to_string())?;
                        last_ack = Instant::now();
                        sent = sent.saturating_add(1);
                    }
                    Ok((sent, last_ack))
                })
            })
            .collect();
        let sent: Vec<Result<(usize, Instant), String>> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a sender panicked".into())))
            .collect();
        let received = receiver
            .join()
            .unwrap_or_else(|_| Err("the receiver panicked".into()));
        (sent, received)
    });
    let mut messages = 0usize;
    let mut last_ack = start;
    for r in sent {
        let (n, last) = r.map_err(|e| format!("bulk between processes: {e}"))?;
        messages = messages.saturating_add(n);
        last_ack = last_ack.max(last);
    }
    let bytes = received.map_err(|e| format!("bulk between processes: {e}"))?;
    let built_after = controls
        .first_mut()
        .ok_or_else(|| "internal: no control connection".to_string())?
        .status()
        .map_err(|e| e.to_string())?
        .circuits_built;
    Ok(Bulk {
        bytes,
        messages,
        elapsed: last_ack.duration_since(start),
        from: 0,
        to: 1,
        built_during: built_after.saturating_sub(built_before),
    })
}

/// Takes messages from `listener` until every one of the `total` bulk
/// messages arrived, each once and unaltered; the bytes received. Other
/// messages (the warm-up, the circuit phase's) are skipped.
fn receive_bulk(mut listener: Listener, total: usize, total_bytes: usize) -> Result<u64, String> {
    let chunk = StdNode::MAX_MESSAGE;
    let mut received = vec![false; total];
    let mut count = 0usize;
    let mut bytes = 0u64;
    while count < total {
        let data = listener
            .receive()
            .and_then(|m| m.into_data())
            .map_err(|e| format!("receiving on process 1: {e}"))?;
        let Some(seq) = bulk_seq(&data) else {
            continue;
        };
        check_arrival(&data, seq, chunk, total_bytes, &mut received)?;
        count = count.saturating_add(1);
        bytes = bytes.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
    }
    Ok(bytes)
}
