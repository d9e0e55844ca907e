//! Replaying a trace: a fresh node from the header, every input again, and
//! the outputs' digest compared at every checkpoint and at the end.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};

use veil_core::identity::{Identity, NodeId};
use veil_core::time::Instant;

use super::digest::OutputDigest;
use super::format::{
    Capacities, Record, TraceHeader, MAGIC, MAX_HEADER_LEN, MAX_POLL_BUFFER, MAX_RECORD_LEN,
    MAX_TRACE_LINKS, VERSION,
};
use crate::std_node::build_node;

/// What a replay that matched found.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// The recorded node.
    pub node_id: NodeId,
    /// Input and poll records replayed.
    pub records: u64,
    /// Checkpoints passed (the end record not counted).
    pub checkpoints: u64,
    /// The digest of all outputs, as recorded and as replayed.
    pub digest: [u8; 32],
    /// The last time an input carried, in node time.
    pub last_time: Instant,
    /// Bytes of the trace.
    pub bytes: u64,
    /// Records replayed, by kind (the input's name, or `Poll`).
    pub by_kind: BTreeMap<&'static str, u64>,
}

/// Why a replay failed.
#[derive(Debug)]
pub enum ReplayError {
    /// Reading the trace failed.
    Io(io::Error),
    /// The file does not start with the trace magic.
    NotATrace,
    /// The trace's format version is not the one this build reads.
    Version(u16),
    /// The file ends inside its header.
    TruncatedHeader,
    /// The header does not decode.
    BadHeader(String),
    /// The trace was recorded by a build with other node capacities.
    Capacity {
        /// Which capacity.
        name: &'static str,
        /// In the trace.
        trace: u32,
        /// In this build.
        build: u32,
    },
    /// A record does not decode, or is out of place.
    Corrupt {
        /// Input records replayed before it.
        inputs: u64,
        /// Its byte offset.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The trace ends without its end record (the node was killed, or the
    /// file was cut).
    Truncated {
        /// Input records replayed.
        inputs: u64,
        /// Where the trace ends.
        offset: u64,
        /// Inputs whose outputs were checked against a checkpoint.
        verified: u64,
    },
    /// The replayed outputs differ from the recorded ones.
    Mismatch {
        /// Inputs checked good (the previous checkpoint).
        verified: u64,
        /// The checkpoint that differs comes after this input.
        at: u64,
        /// Its byte offset.
        offset: u64,
        /// The recorded digest.
        recorded: [u8; 32],
        /// The replayed digest.
        replayed: [u8; 32],
        /// The inputs between the two checkpoints, by kind.
        kinds: String,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Io(e) => write!(f, "cannot read the trace: {e}"),
            ReplayError::NotATrace => write!(
                f,
                "not a veil trace: the file does not start with the trace magic"
            ),
            ReplayError::Version(v) => write!(
                f,
                "trace format version {v} is not supported; this build reads version {VERSION}"
            ),
            ReplayError::TruncatedHeader => {
                write!(f, "trace is truncated inside its header: nothing to replay")
            }
            ReplayError::BadHeader(what) => write!(f, "corrupt trace header: {what}"),
            ReplayError::Capacity { name, trace, build } => write!(
                f,
                "the trace was recorded with node capacity {name} = {trace}, this build has \
                 {build}; replay it with the build that recorded it"
            ),
            ReplayError::Corrupt {
                inputs,
                offset,
                what,
            } => write!(
                f,
                "corrupt trace: record after input {inputs} (byte {offset}): {what}"
            ),
            ReplayError::Truncated {
                inputs,
                offset,
                verified,
            } => write!(
                f,
                "trace is truncated after record {inputs} (byte {offset}, no end record): \
                 outputs match through input {verified}, the last checkpoint; \
                 the recording node was probably killed"
            ),
            ReplayError::Mismatch {
                verified,
                at,
                offset,
                recorded,
                replayed,
                kinds,
            } => {
                write!(
                    f,
                    "outputs differ: first mismatch in inputs {}..={at} (checkpoint at byte \
                     {offset}: recorded digest {}, replayed {}); ",
                    verified.saturating_add(1),
                    hex(recorded),
                    hex(replayed)
                )?;
                if *verified == 0 {
                    write!(f, "no earlier checkpoint; ")?;
                } else {
                    write!(f, "inputs 1..={verified} match; ")?;
                }
                write!(
                    f,
                    "that window holds {kinds}; the core behaves differently from the \
                     recording build, or the trace was altered"
                )
            }
        }
    }
}

impl std::error::Error for ReplayError {}

impl From<io::Error> for ReplayError {
    fn from(e: io::Error) -> Self {
        ReplayError::Io(e)
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A reader that counts what it read.
struct Counting<R> {
    inner: R,
    offset: u64,
}

/// How a fixed-size read ended.
enum Fill {
    Full,
    /// End of file after this many bytes (0: at once).
    Short(usize),
}

impl<R: Read> Counting<R> {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<Fill> {
        let mut got = 0usize;
        while got < buf.len() {
            let rest = buf.get_mut(got..).unwrap_or_default();
            match self.inner.read(rest) {
                Ok(0) => return Ok(Fill::Short(got)),
                Ok(n) => {
                    got = got.saturating_add(n);
                    self.offset = self.offset.saturating_add(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Fill::Full)
    }
}

/// Reads the header: magic, version, length, body.
fn read_header<R: Read>(r: &mut Counting<R>) -> Result<TraceHeader, ReplayError> {
    let mut magic = [0u8; 8];
    match r.fill(&mut magic)? {
        Fill::Full if magic == MAGIC => {}
        Fill::Short(n) if magic.get(..n) == MAGIC.get(..n) && n > 0 => {
            return Err(ReplayError::TruncatedHeader)
        }
        _ => return Err(ReplayError::NotATrace),
    }
    let mut version = [0u8; 2];
    if let Fill::Short(_) = r.fill(&mut version)? {
        return Err(ReplayError::TruncatedHeader);
    }
    let version = u16::from_le_bytes(version);
    if version != VERSION {
        return Err(ReplayError::Version(version));
    }
    let mut len = [0u8; 4];
    if let Fill::Short(_) = r.fill(&mut len)? {
        return Err(ReplayError::TruncatedHeader);
    }
    let len = u32::from_le_bytes(len);
    if usize::try_from(len).unwrap_or(usize::MAX) > MAX_HEADER_LEN {
        return Err(ReplayError::BadHeader(format!(
            "a {len}-byte header exceeds the {MAX_HEADER_LEN}-byte limit"
        )));
    }
    let mut body = vec![0u8; usize::try_from(len).unwrap_or(0)];
    if let Fill::Short(_) = r.fill(&mut body)? {
        return Err(ReplayError::TruncatedHeader);
    }
    TraceHeader::decode(&body).map_err(|e| ReplayError::BadHeader(e.0))
}

/// Reads the header of a trace (for tools that only want to look).
pub fn read_trace_header<R: Read>(reader: R) -> Result<TraceHeader, ReplayError> {
    read_header(&mut Counting {
        inner: reader,
        offset: 0,
    })
}

/// Replays the trace in `reader` into a fresh node.
pub fn replay<R: Read>(reader: R) -> Result<ReplayReport, ReplayError> {
    let mut r = Counting {
        inner: io::BufReader::with_capacity(64 * 1024, reader),
        offset: 0,
    };
    let header = read_header(&mut r)?;
    let links = usize::try_from(header.capacities.links).unwrap_or(usize::MAX);
    let build = Capacities::of_this_build(links);
    if let Some((name, trace, build)) = header.capacities.first_difference(&build) {
        return Err(ReplayError::Capacity { name, trace, build });
    }
    if links == 0 || links > MAX_TRACE_LINKS {
        return Err(ReplayError::BadHeader(format!(
            "{links} link slots is out of range (1 to {MAX_TRACE_LINKS})"
        )));
    }
    let identity = Identity::from_secret_bytes(header.secret);
    let node_id = identity.node_id();
    let mut node = build_node(header.config, identity, header.seed, links);
    let mut digest = OutputDigest::default();
    let mut buf = Vec::new();
    let mut body = Vec::new();
    let mut verified = 0u64;
    let mut checkpoints = 0u64;
    let mut window: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut expect_checkpoint = false;
    let mut last_time = Instant::ZERO;
    loop {
        let offset = r.offset;
        let records_so_far = digest.records();
        let truncated = ReplayError::Truncated {
            inputs: records_so_far,
            offset,
            verified,
        };
        let corrupt = |what: String| ReplayError::Corrupt {
            inputs: records_so_far,
            offset,
            what,
        };
        let mut head = [0u8; 4];
        if let Fill::Short(_) = r.fill(&mut head)? {
            return Err(truncated);
        }
        let len = u32::from_le_bytes(head);
        if usize::try_from(len).unwrap_or(usize::MAX) > MAX_RECORD_LEN {
            return Err(corrupt(format!(
                "a {len}-byte record exceeds the {MAX_RECORD_LEN}-byte limit"
            )));
        }
        body.clear();
        body.resize(usize::try_from(len).unwrap_or(0), 0);
        if let Fill::Short(_) = r.fill(&mut body)? {
            return Err(truncated);
        }
        let record = Record::decode(&body).map_err(|e| corrupt(format!("record: {e}")))?;
        let (records, recorded, end) = match record {
            Record::Checkpoint { records, digest } => (records, digest, false),
            Record::End { records, digest } => (records, digest, true),
            Record::Input { .. } | Record::Poll { .. } if expect_checkpoint => {
                return Err(corrupt(format!(
                    "a checkpoint is missing after record {}",
                    digest.records()
                )));
            }
            Record::Input { at, input } => {
                last_time = last_time.max(at);
                let kind = input.name();
                let outcome = node.handle_input(at, input);
                digest.fold(&outcome);
                *window.entry(kind).or_insert(0) += 1;
                *by_kind.entry(kind).or_insert(0) += 1;
                expect_checkpoint = digest.checkpoint_due();
                continue;
            }
            Record::Poll { at, buf_len } => {
                last_time = last_time.max(at);
                let buf_len = usize::try_from(buf_len).unwrap_or(usize::MAX);
                if buf_len > MAX_POLL_BUFFER {
                    return Err(corrupt(format!(
                        "a poll buffer of {buf_len} bytes exceeds the {MAX_POLL_BUFFER}-byte limit"
                    )));
                }
                buf.clear();
                buf.resize(buf_len, 0);
                let result = node.poll(at, &mut buf);
                digest.fold(&result);
                *window.entry("Poll").or_insert(0) += 1;
                *by_kind.entry("Poll").or_insert(0) += 1;
                expect_checkpoint = digest.checkpoint_due();
                continue;
            }
        };
        if records != digest.records() {
            return Err(corrupt(format!(
                "{} record counts {records} records, {} were read",
                if end { "end" } else { "checkpoint" },
                digest.records()
            )));
        }
        let replayed = digest.current();
        if recorded != replayed {
            return Err(ReplayError::Mismatch {
                verified,
                at: records,
                offset,
                recorded,
                replayed,
                kinds: describe(&window),
            });
        }
        verified = records;
        window.clear();
        expect_checkpoint = false;
        if end {
            let mut extra = [0u8; 1];
            if let Fill::Full = r.fill(&mut extra)? {
                return Err(corrupt("bytes follow the end record".into()));
            }
            return Ok(ReplayReport {
                node_id,
                records,
                checkpoints,
                digest: replayed,
                last_time,
                bytes: r.offset,
                by_kind,
            });
        }
        checkpoints = checkpoints.saturating_add(1);
    }
}

fn describe(window: &BTreeMap<&'static str, u64>) -> String {
    let parts: Vec<String> = window.iter().map(|(k, n)| format!("{n}× {k}")).collect();
    if parts.is_empty() {
        "no records".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_core::node::NodeConfig;

    /// A header naming `links` link slots, and nothing after it.
    fn header_only(links: usize) -> Vec<u8> {
        TraceHeader {
            secret: [3; 32],
            seed: [4; 32],
            capacities: Capacities::of_this_build(links),
            config: NodeConfig::default(),
        }
        .encode()
        .expect("a header encodes")
    }

    /// A header is not believed about the link table it asks for: above
    /// `MAX_TRACE_LINKS` the replay refuses it before building anything.
    /// The `trace` fuzz target found a 477-byte file naming 65,535 slots,
    /// which made the replay allocate 3 GiB.
    #[test]
    fn a_header_with_too_many_links_is_refused_before_the_node_is_built() {
        for links in [MAX_TRACE_LINKS + 1, usize::from(u16::MAX), 1 << 20] {
            match replay(&header_only(links)[..]) {
                Err(ReplayError::BadHeader(what)) => {
                    assert!(what.contains("link slots"), "{what}")
                }
                other => panic!("{links} links: {other:?}"),
            }
        }
        // At the bound and below, the header is taken and the node built;
        // the trace then ends too early.
        for links in [1, MAX_TRACE_LINKS] {
            assert!(
                matches!(
                    replay(&header_only(links)[..]),
                    Err(ReplayError::Truncated { inputs: 0, .. })
                ),
                "{links} links"
            );
        }
    }

    /// A poll record is not believed about the buffer it asks for: above
    /// `MAX_POLL_BUFFER` the replay refuses it as corrupt instead of
    /// allocating it. The `trace` fuzz target found a 477-byte file whose
    /// poll made the replay allocate 4 GiB.
    #[test]
    fn a_poll_record_with_a_huge_buffer_is_refused() {
        let with_poll = |buf_len: u32| {
            let mut bytes = header_only(4);
            Record::Poll {
                at: Instant::from_micros(1),
                buf_len,
            }
            .encode(&mut bytes)
            .expect("a record encodes");
            replay(&bytes[..])
        };
        for buf_len in [u32::MAX, 1 << 31, MAX_POLL_BUFFER as u32 + 1] {
            match with_poll(buf_len) {
                Err(ReplayError::Corrupt {
                    what, inputs: 0, ..
                }) => {
                    assert!(what.contains("poll buffer"), "{what}")
                }
                other => panic!("a {buf_len}-byte poll: {other:?}"),
            }
        }
        // Up to the bound the poll is replayed; the trace then ends.
        assert!(matches!(
            with_poll(MAX_POLL_BUFFER as u32),
            Err(ReplayError::Truncated { .. })
        ));
    }
}
