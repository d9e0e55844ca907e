//! What a node keeps across a restart besides its identity and its node
//! table: its onion keys, its guards, the health of the relays it knows and
//! its circuit build times (relay spec §10, "State across restarts").
//!
//! - The onion keys, so that the descriptors of this node that others hold
//!   keep working: a relay that came back with a fresh key would fail every
//!   hop handshake built from its old descriptor until the new one spread.
//! - The guards and the guard sample, so that a restart does not draw new
//!   ones (each fresh guard is one more relay that sees this node's
//!   circuits begin).
//! - Relay health, so that relays found failing stay counted as such.
//! - The build times, so that the build timeout is not relearned.
//!
//! [`Node::save_state`] writes it into a buffer the owner stores (the std
//! node: `state.bin` beside `nodes.json`, written atomically, mode 0600: it
//! holds onion secrets); [`RestoreState`] takes it back, after the saved
//! node table was learned (health is kept only for nodes the table holds).
//!
//! Layout, integers little-endian:
//!
//! ```text
//! version          u8      2 (1: the same without the guard sample)
//! rotate_at        u64     Unix seconds at which the onion key is rotated
//! onion            [32]    the current onion secret
//! has_previous     u8      0 or 1
//! previous         [32]    the previous onion secret (zeros if none)
//! guard_count      u8      at most MAX_GUARDS (4)
//! guards           [32] × guard_count
//! sample_count     u8      at most GUARD_SAMPLE (8); not in version 1
//! sample           [32] × sample_count, oldest first
//! build_times      [277]   BuildTimeEstimator::encode (docs/build_timeout.md)
//! health_count     u16
//! health           health_count × (node_id [32], tried u32, built u32,
//!                                  lost u32, failed u32, backoff_ms u32)
//! ```

use core::fmt;

use heapless::Vec;
use zeroize::Zeroizing;

use crate::circuit::{BuildTimeDecodeError, BuildTimeEstimator};
use crate::discovery::{HealthCounts, PeerEntry, RelayHealth};
use crate::identity::NodeId;
use crate::noise::StaticKeypair;
use crate::time::Instant;

use super::circuits::MAX_GUARDS;
use super::guards::GUARD_SAMPLE;
use super::{Node, Profile};

/// The layout's version byte. Version 1 (no guard sample) is read too.
pub const STATE_VERSION: u8 = 2;
/// Bytes of one health record.
const HEALTH_RECORD_LEN: usize = 32 + 5 * 4;
/// Bytes before the guards.
const HEAD_LEN: usize = 1 + 8 + 32 + 1 + 32 + 1;

/// Restore what [`Node::save_state`] saved before a restart. Learn the saved
/// node table first: health records of nodes not in the table are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RestoreState<'a> {
    /// The saved bytes.
    pub bytes: &'a [u8],
}

/// What a restore took back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RestoredState {
    /// Guards taken back.
    pub guards: usize,
    /// Relays of the guard sample taken back.
    pub guard_sample: usize,
    /// Health records of known nodes taken back.
    pub health_records: usize,
    /// Builds the build-time estimator rests on.
    pub build_times: usize,
}

/// Why saved state was refused; nothing of it was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum RestoreStateError {
    /// The bytes end early.
    Truncated,
    /// A version this node does not read.
    UnknownVersion(u8),
    /// A field holds a value no node writes (`what` names it).
    Corrupt(&'static str),
    /// The build-time section is refused.
    BuildTimes(BuildTimeDecodeError),
}

impl fmt::Display for RestoreStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreStateError::Truncated => {
                write!(f, "the saved node state is truncated; delete it to start afresh")
            }
            RestoreStateError::UnknownVersion(v) => write!(
                f,
                "the saved node state has version {v}, this node reads {STATE_VERSION}; delete it to start afresh"
            ),
            RestoreStateError::Corrupt(what) => write!(
                f,
                "the saved node state is corrupt ({what}); delete it to start afresh"
            ),
            RestoreStateError::BuildTimes(e) => write!(f, "the saved build times: {e}"),
        }
    }
}

impl core::error::Error for RestoreStateError {}

/// Why [`Node::save_state`] wrote nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateBufferTooSmall {
    /// Bytes the state needs.
    pub needed: usize,
}

impl fmt::Display for StateBufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the node state needs {} bytes; give a buffer of Node::state_len()",
            self.needed
        )
    }
}

impl core::error::Error for StateBufferTooSmall {}

/// Reads a layout front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RestoreStateError> {
        if self.0.len() < n {
            return Err(RestoreStateError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RestoreStateError> {
        self.take(N)?
            .try_into()
            .map_err(|_| RestoreStateError::Truncated)
    }

    fn u8(&mut self) -> Result<u8, RestoreStateError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, RestoreStateError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, RestoreStateError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, RestoreStateError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

/// Writes a layout front to back; `None` once out of room.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.at.checked_add(bytes.len())?;
        self.out.get_mut(self.at..end)?.copy_from_slice(bytes);
        self.at = end;
        Some(())
    }
}

impl<P: Profile> Node<P> {
    /// Health records worth saving: relays something is known about.
    fn health_to_save(&self) -> impl Iterator<Item = &PeerEntry> {
        self.discovery
            .table()
            .entries()
            .iter()
            .filter(|e| e.health.counts() != HealthCounts::default())
    }

    /// Bytes [`save_state`](Self::save_state) writes now.
    pub fn state_len(&self) -> usize {
        let records = self.health_to_save().count().min(usize::from(u16::MAX));
        HEAD_LEN
            .saturating_add(self.circuits.guards.len().saturating_mul(32))
            .saturating_add(1)
            .saturating_add(self.guard_sample().len().saturating_mul(32))
            .saturating_add(BuildTimeEstimator::ENCODED_LEN)
            .saturating_add(2)
            .saturating_add(records.saturating_mul(HEALTH_RECORD_LEN))
    }

    /// Writes what a restart should keep (see the module doc) into `out`;
    /// returns the bytes written. `out` holds onion secrets: store it as
    /// the node's identity is stored, and wipe it after.
    pub fn save_state(&self, out: &mut [u8]) -> Result<usize, StateBufferTooSmall> {
        let needed = self.state_len();
        let too_small = StateBufferTooSmall { needed };
        if out.len() < needed {
            return Err(too_small);
        }
        let (onion, previous, rotate_at) = self.discovery.onion_state(&self.config);
        let mut w = Writer { out, at: 0 };
        let mut build_times = [0u8; BuildTimeEstimator::ENCODED_LEN];
        self.circuits.build_times.encode(&mut build_times);
        let previous_secret =
            previous.map_or_else(|| Zeroizing::new([0u8; 32]), |k| k.secret_bytes());
        let records = self.health_to_save().take(usize::from(u16::MAX));
        let count = u16::try_from(self.health_to_save().count().min(usize::from(u16::MAX)))
            .unwrap_or(u16::MAX);
        let guard_count = u8::try_from(self.circuits.guards.len()).unwrap_or(0);
        let sample_count = u8::try_from(self.guard_sample().len()).unwrap_or(0);
        let written = (|| {
            w.put(&[STATE_VERSION])?;
            w.put(&rotate_at.to_le_bytes())?;
            w.put(onion.secret_bytes().as_slice())?;
            w.put(&[u8::from(previous.is_some())])?;
            w.put(previous_secret.as_slice())?;
            w.put(&[guard_count])?;
            for guard in &self.circuits.guards {
                w.put(guard.as_bytes())?;
            }
            w.put(&[sample_count])?;
            for relay in self.guard_sample() {
                w.put(relay.as_bytes())?;
            }
            w.put(&build_times)?;
            w.put(&count.to_le_bytes())?;
            for entry in records {
                let c = entry.health.counts();
                w.put(entry.node_id().as_bytes())?;
                let backoff = u32::try_from(c.backoff_ms).unwrap_or(u32::MAX);
                for v in [c.tried, c.built, c.lost, c.failed, backoff] {
                    w.put(&v.to_le_bytes())?;
                }
            }
            Some(w.at)
        })();
        written.ok_or(too_small)
    }

    pub(crate) fn on_restore_state(
        &mut self,
        now: Instant,
        input: RestoreState<'_>,
    ) -> Result<RestoredState, RestoreStateError> {
        let mut r = Reader(input.bytes);
        let version = r.u8()?;
        if version != STATE_VERSION && version != 1 {
            return Err(RestoreStateError::UnknownVersion(version));
        }
        let rotate_at = r.u64()?;
        let onion = Zeroizing::new(r.array::<32>()?);
        let has_previous = r.u8()?;
        let previous = Zeroizing::new(r.array::<32>()?);
        if has_previous > 1 {
            return Err(RestoreStateError::Corrupt(
                "has_previous is neither 0 nor 1",
            ));
        }
        if has_previous == 0 && previous.iter().any(|b| *b != 0) {
            return Err(RestoreStateError::Corrupt(
                "a previous onion key marked absent",
            ));
        }
        let guard_count = usize::from(r.u8()?);
        if guard_count > MAX_GUARDS {
            return Err(RestoreStateError::Corrupt("more guards than a node keeps"));
        }
        let mut guards: Vec<NodeId, MAX_GUARDS> = Vec::new();
        for _ in 0..guard_count {
            let id = NodeId(r.array()?);
            if guards.contains(&id) || guards.push(id).is_err() {
                return Err(RestoreStateError::Corrupt("a guard listed twice"));
            }
        }
        let sample_count = if version == 1 {
            0
        } else {
            usize::from(r.u8()?)
        };
        if sample_count > GUARD_SAMPLE {
            return Err(RestoreStateError::Corrupt(
                "more sampled guards than a node keeps",
            ));
        }
        let sample_bytes = r.take(sample_count.saturating_mul(32))?;
        // A build that keeps no sample (no `relay-health`) skips it unread.
        #[cfg(feature = "relay-health")]
        let mut sample: Vec<NodeId, GUARD_SAMPLE> = Vec::new();
        #[cfg(feature = "relay-health")]
        {
            for id in sample_bytes.chunks_exact(32) {
                let id = NodeId(id.try_into().unwrap_or([0; 32]));
                if sample.contains(&id) || sample.push(id).is_err() {
                    return Err(RestoreStateError::Corrupt("a sampled guard listed twice"));
                }
            }
        }
        let build_times = BuildTimeEstimator::decode(
            r.take(BuildTimeEstimator::ENCODED_LEN)?,
            self.config.circuit_build_timeout,
        )
        .map_err(RestoreStateError::BuildTimes)?;
        let count = r.u16()?;
        let records = r.take(usize::from(count).saturating_mul(HEALTH_RECORD_LEN))?;
        if !r.0.is_empty() {
            return Err(RestoreStateError::Corrupt(
                "bytes after the last health record",
            ));
        }
        // Everything parsed: apply it.
        #[cfg(feature = "relay-health")]
        let restored_sample = sample.len();
        #[cfg(not(feature = "relay-health"))]
        let restored_sample = 0;
        let current = StaticKeypair::from_secret_bytes(*onion);
        let previous = (has_previous == 1).then(|| StaticKeypair::from_secret_bytes(*previous));
        let Node {
            discovery,
            identity,
            config,
            circuits,
            ..
        } = self;
        discovery.restore_onion(identity, config, now, current, previous, rotate_at);
        circuits.build_times = build_times;
        let table = discovery.table_mut();
        let mut health_records = 0usize;
        for record in records.chunks_exact(HEALTH_RECORD_LEN) {
            let mut r = Reader(record);
            let (Ok(id), Ok(tried), Ok(built), Ok(lost), Ok(failed), Ok(backoff)) =
                (r.array::<32>(), r.u32(), r.u32(), r.u32(), r.u32(), r.u32())
            else {
                continue;
            };
            let counts = HealthCounts {
                tried,
                built,
                lost,
                failed,
                backoff_ms: u64::from(backoff),
            };
            if let Some(health) = table.health_mut(&NodeId(id)) {
                *health = RelayHealth::from_counts(&counts, now);
                health_records = health_records.saturating_add(1);
            }
        }
        let restored_guards = guards.len();
        if !circuits.guards_set {
            circuits.guards = guards;
        }
        #[cfg(feature = "relay-health")]
        {
            circuits.guard_sample = sample;
        }
        #[cfg(not(feature = "relay-health"))]
        let _ = sample_bytes;
        Ok(RestoredState {
            guards: restored_guards,
            guard_sample: restored_sample,
            health_records,
            build_times: circuits.build_times.observed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Address, DescriptorPacket, Transport};
    use crate::node::small_node_tests::{signed_descriptor, small_node, Small};
    use crate::node::LearnDescriptor;
    use crate::time::Duration;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn node(rng_seed: u8) -> Node<Small> {
        small_node(rng_seed)
    }

    fn relay(seed: u8) -> (NodeId, std::vec::Vec<u8>) {
        let address = Address {
            transport: Transport::Tcp,
            socket: ([10, seed, 0, 1], 7000).into(),
        };
        signed_descriptor(seed, true, &[address], &[])
    }

    fn onion_of(node: &Node<Small>) -> [u8; 32] {
        DescriptorPacket::new_checked(node.descriptor())
            .unwrap()
            .onion_key()
    }

    /// A node that has run: relays learned, guards drawn, builds timed,
    /// a failure pinned.
    fn used_node() -> (Node<Small>, std::vec::Vec<std::vec::Vec<u8>>) {
        let mut a = node(1);
        let relays: std::vec::Vec<_> = (10..16).map(relay).collect();
        for (_, d) in &relays {
            a.handle(Instant::ZERO, LearnDescriptor { descriptor: d })
                .unwrap();
        }
        a.maintain_guards(None);
        for ms in 0..60u64 {
            a.circuits
                .build_times
                .record_built(Duration::from_millis(20 + ms % 7));
        }
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let failing = relays[2].0;
        let table = a.discovery.table_mut();
        let _ = table
            .health_mut(&failing)
            .unwrap()
            .on_failed(Instant::ZERO, &mut rng);
        table
            .health_mut(&relays[3].0)
            .unwrap()
            .on_built(Instant::ZERO);
        (a, relays.into_iter().map(|(_, d)| d).collect())
    }

    fn saved(node: &Node<Small>) -> std::vec::Vec<u8> {
        let mut buf = std::vec![0u8; node.state_len()];
        let n = node.save_state(&mut buf).unwrap();
        assert_eq!(n, buf.len());
        buf
    }

    #[test]
    fn a_restarted_node_keeps_its_onion_key_guards_build_times_and_relay_health() {
        let (a, descriptors) = used_node();
        let bytes = saved(&a);
        // The restarted node: same identity, fresh randomness.
        let mut b = node(2);
        assert_ne!(onion_of(&b), onion_of(&a), "a fresh start draws a new key");
        for d in &descriptors {
            b.handle(Instant::ZERO, LearnDescriptor { descriptor: d })
                .unwrap();
        }
        let restored = b
            .handle(Instant::ZERO, RestoreState { bytes: &bytes })
            .unwrap();
        assert_eq!(
            onion_of(&b),
            onion_of(&a),
            "the descriptor carries the old key"
        );
        assert_eq!(b.onion_public_key(), a.onion_public_key());
        assert_eq!(b.guards(), a.guards());
        assert_eq!(restored.guards, a.guards().len());
        assert_eq!(b.guard_sample(), a.guard_sample());
        assert_eq!(
            restored.guard_sample,
            a.guards().len(),
            "each drawn guard sampled"
        );
        assert_eq!(restored.health_records, 2);
        assert_eq!(restored.build_times, 60);
        assert_eq!(
            b.circuits.build_times.timeout(),
            a.circuits.build_times.timeout()
        );
        for e in a.node_table().entries() {
            let other = b.node_table().get(&e.node_id()).unwrap();
            assert_eq!(other.health.counts(), e.health.counts());
        }
        // Saving again gives the same bytes.
        assert_eq!(saved(&b), bytes);
    }

    #[test]
    fn a_version_1_state_without_the_guard_sample_is_read_and_its_guards_sampled() {
        let (a, descriptors) = used_node();
        let v2 = saved(&a);
        let sample_at = HEAD_LEN + 32 * a.guards().len();
        let mut v1 = v2[..sample_at].to_vec();
        v1[0] = 1;
        v1.extend_from_slice(&v2[sample_at + 1 + 32 * a.guard_sample().len()..]);
        let mut b = node(2);
        for d in &descriptors {
            b.handle(Instant::ZERO, LearnDescriptor { descriptor: d })
                .unwrap();
        }
        let restored = b
            .handle(Instant::ZERO, RestoreState { bytes: &v1 })
            .unwrap();
        assert_eq!(restored.guard_sample, 0);
        assert_eq!(b.guards(), a.guards());
        b.maintain_guards(None);
        assert_eq!(
            b.guard_sample(),
            a.guards(),
            "the restored guards join the sample"
        );
        assert_eq!(saved(&b), v2, "saved again, as version 2");
    }

    #[test]
    fn damaged_state_is_refused_whole_and_never_panics() {
        let (a, _) = used_node();
        let bytes = saved(&a);
        let mut b = node(2);
        let before = onion_of(&b);
        for len in 0..bytes.len() {
            let r = b.handle(
                Instant::ZERO,
                RestoreState {
                    bytes: &bytes[..len],
                },
            );
            assert!(r.is_err(), "a truncation to {len} bytes was accepted");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            b.handle(Instant::ZERO, RestoreState { bytes: &long }),
            Err(RestoreStateError::Corrupt(
                "bytes after the last health record"
            ))
        );
        let mut version = bytes.clone();
        version[0] = 9;
        assert_eq!(
            b.handle(Instant::ZERO, RestoreState { bytes: &version }),
            Err(RestoreStateError::UnknownVersion(9))
        );
        let mut flag = bytes.clone();
        flag[1 + 8 + 32] = 2;
        assert!(matches!(
            b.handle(Instant::ZERO, RestoreState { bytes: &flag }),
            Err(RestoreStateError::Corrupt(_))
        ));
        // Every single-byte change is refused or taken, never a panic; a
        // taken one (a changed secret, counter or build time) saves back
        // unchanged up to the health records (this node knows no relay),
        // but for a rotation time before this run began, which becomes
        // "now".
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 0x41;
            let mut c = node(3);
            if c.handle(Instant::ZERO, RestoreState { bytes: &changed })
                .is_ok()
            {
                let again = saved(&c);
                let head = again.len() - 2;
                assert_eq!(again[9..head], changed[9..head], "byte {i}");
            }
        }
        assert_eq!(onion_of(&b), before, "a refused restore changed the key");
    }

    #[test]
    fn a_buffer_too_small_is_refused_with_the_size_needed() {
        let (a, _) = used_node();
        let mut small = [0u8; 16];
        assert_eq!(
            a.save_state(&mut small),
            Err(StateBufferTooSmall {
                needed: a.state_len()
            })
        );
    }
}
