//! The demo's traffic: messages between random pairs of nodes, then one
//! bulk transfer through a circuit, and the [`Tracker`] that checks every
//! message arrives at its destination exactly once and intact.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use veil_core::identity::NodeId;
use veil_mio::StdNode;

use crate::host::Host;
use crate::host_protocol::{Notice, SendResult};

/// How long the messages may take, all together.
const MESSAGES_CAP: Duration = Duration::from_secs(30);
/// How long the bulk transfer may take.
const BULK_CAP: Duration = Duration::from_secs(60);
/// Bulk messages in flight at once.
const BULK_WINDOW: usize = 24;

/// A small deterministic generator (xorshift64*) for pairs and payloads.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
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

/// What the main thread has seen of the notices.
#[derive(Default)]
pub(super) struct Tracker {
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
    pub(super) fn on_notice(&mut self, node: usize, notice: Notice) -> Result<(), String> {
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

    /// Build times of the circuits the nodes reported ready.
    pub(super) fn circuit_times(&self) -> &[Duration] {
        &self.circuit_times
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

/// Sends `messages` messages between random pairs, and waits until each
/// is acknowledged and delivered; returns how long that took.
pub(super) fn exchange_messages(
    hosts: &[Host],
    ids: &[NodeId],
    notices: &Receiver<(usize, Notice)>,
    tracker: &mut Tracker,
    rng: &mut Rng,
    messages: usize,
) -> Result<Duration, String> {
    let n = hosts.len();
    let start = Instant::now();
    let mut outstanding = VecDeque::new();
    for k in 0..messages {
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
    while !outstanding.is_empty() || tracker.delivered() < messages {
        reap(&mut outstanding)?;
        if start.elapsed() > MESSAGES_CAP {
            return Err(format!(
                "only {} of {} messages delivered and {} acknowledged after {} s",
                tracker.delivered(),
                messages,
                messages - outstanding.len(),
                MESSAGES_CAP.as_secs()
            ));
        }
        pump_notices(notices, tracker, Duration::from_millis(5))?;
    }
    Ok(start.elapsed())
}

/// What the bulk transfer measured.
pub(super) struct BulkResult {
    /// The sending node.
    pub from: usize,
    /// The receiving node.
    pub to: usize,
    /// Messages sent.
    pub messages: usize,
    /// Bytes delivered.
    pub bytes: u64,
    /// From the first send to the last delivery and acknowledgement.
    pub elapsed: Duration,
    /// Circuits the transfer used.
    pub circuits: usize,
}

/// Sends `bulk_mib` MiB from one random node to another in messages of
/// the largest size, and waits until each is acknowledged and delivered.
pub(super) fn bulk_transfer(
    hosts: &[Host],
    ids: &[NodeId],
    notices: &Receiver<(usize, Notice)>,
    tracker: &mut Tracker,
    rng: &mut Rng,
    bulk_mib: usize,
) -> Result<BulkResult, String> {
    let n = hosts.len();
    let from = rng.below(n);
    let to = (from + 1 + rng.below(n - 1)) % n;
    let (Some(host), Some(dest)) = (hosts.get(from), ids.get(to).copied()) else {
        return Err("internal: node index out of range".into());
    };
    let chunk = StdNode::MAX_MESSAGE;
    let total_bytes = bulk_mib.saturating_mul(1024 * 1024);
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
