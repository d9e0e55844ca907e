//! The bulk transfer of `veil bench`'s in-process network: 64 KiB
//! messages through one circuit, up to the node's outgoing message pool in
//! flight, from the first send to the last acknowledgement, every message
//! checked at the receiver. Also the [`Bulk`] figures both parts report
//! (the transfer between processes is in `processes`).

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use veil_core::identity::NodeId;
use veil_mio::StdNode;

use super::circuit_builds::{wait_send, BUILD_CAP};
use crate::host::Host;
use crate::host_protocol::Notice;

/// How long a bulk transfer may take.
const BULK_CAP: Duration = Duration::from_secs(120);
/// Messages in flight in the bulk transfer: the node's outgoing message
/// pool (half of its 64 message slots). More would only wait in the host.
pub(super) const BULK_WINDOW: usize = 32;

/// What a bulk transfer measured.
pub(super) struct Bulk {
    /// Bytes delivered.
    pub bytes: u64,
    /// Messages delivered.
    pub messages: usize,
    /// From the first send to the last acknowledgement.
    pub elapsed: Duration,
    /// The sending node.
    pub from: usize,
    /// The receiving node.
    pub to: usize,
    /// Circuits the sender built while the transfer ran (its
    /// `circuits_built` counter, and for the in-process network also its
    /// `CircuitReady` notices). 0 means every message went over the one
    /// circuit that existed before: the sender had exactly one circuit to
    /// the destination, and a lost or broken circuit is always replaced
    /// by a new build.
    pub built_during: u64,
}

/// What every bulk message starts with, so that a message left over from
/// the build phase (delivered after its acknowledgement was seen) is told
/// apart and ignored.
const BULK_TAG: &[u8; 8] = b"veilbulk";
/// The tag and the sequence number.
pub(super) const BULK_HEADER: usize = BULK_TAG.len() + 4;

/// The bulk message `seq` of `len` bytes (at least the header): the tag,
/// its sequence number, then zeros (the links encrypt it anyway; a pattern
/// would only cost the bench CPU).
pub(super) fn bulk_message(seq: u32, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len.max(BULK_HEADER)];
    for (slot, byte) in data
        .iter_mut()
        .zip(BULK_TAG.iter().copied().chain(seq.to_be_bytes()))
    {
        *slot = byte;
    }
    data
}

/// Checks bulk message `seq` (of `chunk`-byte messages, `total_bytes` in
/// all) as it arrives: expected, not seen before, its length and contents
/// intact. Marks it received in `received`.
pub(super) fn check_arrival(
    data: &[u8],
    seq: usize,
    chunk: usize,
    total_bytes: usize,
    received: &mut [bool],
) -> Result<(), String> {
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
    Ok(())
}

/// The sequence number of a bulk message, `None` if it is not one.
pub(super) fn bulk_seq(data: &[u8]) -> Option<usize> {
    let rest = data.strip_prefix(BULK_TAG)?;
    let seq = rest.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok())?;
    usize::try_from(u32::from_be_bytes(seq)).ok()
}

/// `bulk_mib` MiB from node `from` to node `to` of the in-process network.
pub(super) fn in_process(
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
    let mut outstanding = VecDeque::new();
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
            check_arrival(&data, seq, chunk, total_bytes, &mut received)?;
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

/// Bytes in MiB.
pub(super) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
