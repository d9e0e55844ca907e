//! The trace file: a header, then length-framed records, every one of them
//! the postcard encoding of a Rust value.
//!
//! Nothing here encodes a node input or output by hand: a record carries
//! the core's own [`Input`] value, and the digest folds the core's own
//! [`Outcome`](veil_core::node::Outcome) and
//! [`Output`](veil_core::node::Output) values, all through their serde
//! derives. A new input of the node is in traces the moment it is in the
//! core. The byte layout is in `docs/trace_format.md`.

use serde::{Deserialize, Serialize};
use veil_core::node::{Input, NodeConfig};
use veil_core::time::Instant;

use crate::std_node::{EVENTS, MESSAGES, MSG, OWN, PEERS, RELAYED, RX, TXQ};

/// The first bytes of every trace.
pub const MAGIC: [u8; 8] = *b"VEILTRCE";

/// The format version this build writes and reads. Version 1 had a
/// hand-written record per call; version 2 records the node's inputs and
/// polls as postcard-encoded values; version 3 is version 2 with the inputs
/// and configuration of issue 16 (`OpenLink::remote` and `::anonymous`,
/// `DialRequest::anonymous`, the admission and quota settings of
/// `NodeConfig`); version 4 adds the node table's
/// `NodeConfig::feeler_interval` and the `AddAnchor` input; version 5
/// adds `NodeConfig::introducers`; version 6 adds
/// `NodeConfig::reachability` (before `introducers`); version 7 adds
/// `NodeConfig::answer_unkeyed_dials` (last) and `AddBootstrap::node_id`;
/// versions 8 to 12 are in `docs/trace_format.md`.
pub const VERSION: u16 = 12;

/// A checkpoint record follows every this many input and poll records.
pub const CHECKPOINT_EVERY: u64 = 64;

/// The largest header.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// The most link slots a trace may name. A replay builds the recorded
/// node's link table before the first record, about 50 KiB a slot, so a
/// header is refused above this (200 MiB of slots) rather than believed: a
/// header of 65,535 slots, all a `u16` allowed before, made a replay
/// allocate 3 GiB. A traced runtime keeps to it
/// ([`BindError::TooManyLinksToTrace`](crate::BindError::TooManyLinksToTrace)).
pub const MAX_TRACE_LINKS: usize = 4096;

/// The largest poll buffer a trace records and a replay allocates. No
/// output of a node is larger than a message (64 KiB for the std profile);
/// a traced node polled with a larger buffer is polled with its first
/// 16 MiB. Before the bound a `Poll` record of the `trace` fuzz target
/// (a 477-byte file) made a replay allocate 4 GiB.
pub const MAX_POLL_BUFFER: usize = 16 * 1024 * 1024;

/// The largest record (a `Receive` carries at most one socket read, a
/// `SendMessage` at most one message).
pub const MAX_RECORD_LEN: usize = 16 * 1024 * 1024;

/// Why a header or record does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

impl From<postcard::Error> for DecodeError {
    fn from(e: postcard::Error) -> Self {
        DecodeError(e.to_string())
    }
}

/// The node capacities a trace was recorded with: a replay by a build with
/// other capacities would not reproduce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacities {
    /// Link slots (a run-time choice).
    pub links: u32,
    /// Receive buffer per link.
    pub link_receive: u32,
    /// Cells queued per link.
    pub link_send_queue: u32,
    /// Events queued.
    pub events: u32,
    /// Node-table entries.
    pub peers: u32,
    /// Relayed circuits.
    pub relayed: u32,
    /// Own circuits.
    pub own: u32,
    /// Message buffer.
    pub message: u32,
    /// Message slots.
    pub messages: u32,
}

impl Capacities {
    /// This build's capacities with `links` link slots.
    pub fn of_this_build(links: usize) -> Self {
        let c = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Capacities {
            links: c(links),
            link_receive: c(RX),
            link_send_queue: c(TXQ),
            events: c(EVENTS),
            peers: c(PEERS),
            relayed: c(RELAYED),
            own: c(OWN),
            message: c(MSG),
            messages: c(MESSAGES),
        }
    }

    /// The first capacity that differs from `build`'s, by name, and its
    /// two values (the run-time link count is not compared).
    pub fn first_difference(&self, build: &Capacities) -> Option<(&'static str, u32, u32)> {
        [
            ("link_receive", self.link_receive, build.link_receive),
            (
                "link_send_queue",
                self.link_send_queue,
                build.link_send_queue,
            ),
            ("events", self.events, build.events),
            ("peers", self.peers, build.peers),
            ("relayed", self.relayed, build.relayed),
            ("own", self.own, build.own),
            ("message", self.message, build.message),
            ("messages", self.messages, build.messages),
        ]
        .into_iter()
        .find(|(_, trace, build)| trace != build)
    }
}

/// What a node was built from.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceHeader {
    /// The identity's secret key.
    pub secret: [u8; 32],
    /// The seed of the node's CSPRNG.
    pub seed: [u8; 32],
    /// Capacities.
    pub capacities: Capacities,
    /// The configuration, as passed to `Node::new`.
    pub config: NodeConfig,
}

impl std::fmt::Debug for TraceHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret and the seed stay out of logs.
        f.debug_struct("TraceHeader")
            .field("capacities", &self.capacities)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TraceHeader {
    /// Magic, version, header length and header body.
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let body = postcard::to_stdvec(self)?;
        let len = u32::try_from(body.len()).map_err(|_| DecodeError("header too long".into()))?;
        let mut out = Vec::with_capacity(body.len().saturating_add(14));
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decodes a header body (after magic, version and length).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let (header, rest) = postcard::take_from_bytes::<TraceHeader>(body)?;
        if !rest.is_empty() {
            return Err(DecodeError(format!(
                "{} bytes after the header's fields",
                rest.len()
            )));
        }
        Ok(header)
    }
}

/// One record of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record<'a> {
    /// An input handed to the node at `at`.
    Input {
        /// Its time.
        at: Instant,
        /// The input.
        #[serde(borrow)]
        input: Input<'a>,
    },
    /// A poll of the node at `at` with a buffer of `buf_len` bytes.
    Poll {
        /// Its time.
        at: Instant,
        /// The caller's buffer length (outputs depend on it).
        buf_len: u32,
    },
    /// The digest after the first `records` input and poll records.
    Checkpoint {
        /// Input and poll records so far.
        records: u64,
        /// SHA-256 of their outcomes and outputs.
        digest: [u8; 32],
    },
    /// The last record.
    End {
        /// Input and poll records in the trace.
        records: u64,
        /// SHA-256 of their outcomes and outputs.
        digest: [u8; 32],
    },
}

impl Record<'_> {
    /// A short name of the record's kind, for reports: the input's name,
    /// `Poll`, `Checkpoint` or `End`.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Input { input, .. } => input.name(),
            Record::Poll { .. } => "Poll",
            Record::Checkpoint { .. } => "Checkpoint",
            Record::End { .. } => "End",
        }
    }

    /// Appends the record, length-framed, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        let out_len = {
            let encoded = postcard::to_extend(self, std::mem::take(out))?;
            *out = encoded;
            out.len()
        };
        let len = u32::try_from(out_len.saturating_sub(at).saturating_sub(4))
            .map_err(|_| DecodeError("record too long".into()))?;
        if let Some(slot) = out.get_mut(at..at.saturating_add(4)) {
            slot.copy_from_slice(&len.to_le_bytes());
        }
        Ok(())
    }

    /// Decodes one record body (after its length).
    pub fn decode(body: &[u8]) -> Result<Record<'_>, DecodeError> {
        let (record, rest) = postcard::take_from_bytes::<Record<'_>>(body)?;
        if !rest.is_empty() {
            return Err(DecodeError(format!(
                "{} bytes after the record's fields",
                rest.len()
            )));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_core::node::{LinkId, OpenLink, Receive, Timeout};

    fn encoded(record: &Record<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        record.encode(&mut out).unwrap();
        out
    }

    /// The bytes `docs/trace_format.md` describes, pinned: a change to the
    /// core's types that moves them is a new format version.
    #[test]
    fn records_encode_as_documented() {
        let timeout = Record::Input {
            at: Instant::from_micros(5),
            input: Input::Timeout(Timeout),
        };
        // len 3 ‖ Record::Input (0) ‖ at 5 ‖ Input::Timeout (6)
        assert_eq!(encoded(&timeout), [3, 0, 0, 0, 0, 5, 6]);
        let poll = Record::Poll {
            at: Instant::from_micros(300),
            buf_len: 1000,
        };
        // Record::Poll (1) ‖ at 300 (varint ac 02) ‖ 1000 (e8 07)
        assert_eq!(encoded(&poll), [5, 0, 0, 0, 1, 0xac, 0x02, 0xe8, 0x07]);
        let receive = Record::Input {
            at: Instant::from_micros(1),
            input: Input::Receive(Receive {
                link: LinkId::from_u32(0x0001_0002),
                bytes: b"ab",
            }),
        };
        // Input::Receive (1) ‖ LinkId { index 2, generation 1 } ‖ 2 bytes
        assert_eq!(
            encoded(&receive),
            [8, 0, 0, 0, 0, 1, 1, 2, 1, 2, b'a', b'b']
        );
        let open = Record::Input {
            at: Instant::from_micros(2),
            input: Input::OpenLink(OpenLink::accepted(
                veil_core::identity::Transport::Tcp,
                std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
            )),
        };
        // Input::OpenLink (0) ‖ role Responder (1) ‖ expected_peer None ‖
        // transport Some(Tcp) ‖ circuit_streams None ‖ remote Some(V4 ‖ 4
        // bytes) ‖ anonymous false
        assert_eq!(
            encoded(&open),
            [15, 0, 0, 0, 0, 2, 0, 1, 0, 1, 0, 0, 1, 0, 192, 0, 2, 1, 0]
        );
        let dial_failed = Record::Input {
            at: Instant::from_micros(3),
            input: Input::DialFailed(veil_core::node::DialFailed {
                request: veil_core::node::DialRequest {
                    peer: None,
                    address: veil_core::identity::Address {
                        transport: veil_core::identity::Transport::Tcp,
                        socket: "192.0.2.1:7".parse().unwrap(),
                    },
                    anonymous: true,
                },
            }),
        };
        // Input::DialFailed (5) ‖ peer None ‖ address { transport Tcp (0) ‖
        // socket V4 (0) ‖ 4 bytes ‖ port 7 } ‖ anonymous true
        assert_eq!(
            encoded(&dial_failed),
            [12, 0, 0, 0, 0, 3, 5, 0, 0, 0, 192, 0, 2, 1, 7, 1]
        );
        for bytes in [
            encoded(&timeout),
            encoded(&poll),
            encoded(&receive),
            encoded(&open),
            encoded(&dial_failed),
        ] {
            let record = Record::decode(&bytes[4..]).unwrap();
            assert_eq!(
                encoded(&record),
                bytes,
                "decode then encode is the identity"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encoded(&Record::End {
            records: 1,
            digest: [7; 32],
        });
        bytes.push(0);
        assert!(Record::decode(&bytes[4..]).is_err());
    }

    /// Random bytes, and random records made valid then damaged, through
    /// the fuzz entry point: no panic.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let valid = encoded(&Record::Input {
            at: Instant::from_micros(9),
            input: Input::Receive(Receive {
                link: LinkId::from_u32(3),
                bytes: b"hello",
            }),
        });
        for _ in 0..5_000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            super::super::fuzz_trace(&bytes);
            let mut damaged = valid.clone();
            let at = (next() as usize) % damaged.len();
            damaged[at] ^= 1 << (next() % 8);
            super::super::fuzz_trace(&damaged[4..]);
        }
    }
}
