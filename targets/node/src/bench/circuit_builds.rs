//! Timing circuit builds in `veil bench`'s in-process network: one small
//! message at a time, each between a pair of nodes that has no circuit
//! yet, so every message builds a fresh circuit on a fresh random path.
//! The time is the core's `CircuitReady { built_in }`; whether the path
//! needed a new link is recorded too.

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use veil_core::identity::NodeId;

use crate::host::Host;
use crate::host_protocol::{Notice, SendResult};

/// How long one circuit build and its first message may take.
pub(super) const BUILD_CAP: Duration = Duration::from_secs(30);

/// One timed build.
pub(super) struct Build {
    /// From `CREATE` to the last hop's answer, as the core reports it.
    pub built_in: Duration,
    /// From the send to its acknowledgement.
    pub first_message: Duration,
    /// Whether the path needed a link that did not exist before.
    pub new_links: bool,
}

/// Every ordered pair of distinct nodes, in an order the seed decides.
pub(super) fn shuffled_pairs(n: usize, seed: u64) -> Vec<(usize, usize)> {
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
pub(super) fn wait_send(
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

/// Times `count` builds, one per pair of `pairs` in order.
pub(super) fn time_builds(
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
