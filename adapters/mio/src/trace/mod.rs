//! Trace capture and replay.
//!
//! A runtime built with [`Runtime::bind_recording`](crate::Runtime::bind_recording)
//! writes a trace: a header with everything the node was built from (the
//! format version, the configuration, the identity's secret key, the seed,
//! the capacities), then one record per input handed to the node (the
//! core's own `Input` value and its time) and per poll (its time and
//! buffer length). Every outcome and output (return values, transmitted
//! bytes, events, dial requests, messages, the next deadline) is folded
//! into a running SHA-256 digest, written every [`CHECKPOINT_EVERY`]
//! records and at the end. [`replay`] builds a fresh node from the header,
//! hands it every input and poll again and checks the digests, so it says
//! where a replay first diverged. Records are the postcard encoding of the
//! core's serde derives: this module encodes no input or output by hand.
//!
//! **A trace holds the node's secret identity key and its seed.** Anyone
//! with the file can impersonate the node and decrypt what it recorded.
//! Record with throwaway identities, and keep traces as private as the key.
//!
//! The byte format is in `docs/trace_format.md`.

mod digest;
mod format;
mod node;
mod recorder;
mod replay;

use std::fs::File;
use std::io;
use std::path::Path;

pub use format::{
    Capacities, DecodeError, Record, TraceHeader, CHECKPOINT_EVERY, MAGIC, MAX_HEADER_LEN,
    MAX_POLL_BUFFER, MAX_RECORD_LEN, MAX_TRACE_LINKS, VERSION,
};
pub use node::TracedNode;
pub use recorder::Recorder;
pub use replay::{hex, read_trace_header, replay, ReplayError, ReplayReport};

/// Creates a trace file readable by its owner only (mode 0600): it will
/// hold the node's secret key. An existing file at `path` is emptied, but
/// only after its mode is 0600; a symbolic link there is refused, not
/// followed.
pub fn create_trace_file(path: &Path) -> io::Result<File> {
    crate::private_file::create_private(path)
}

/// Replays the trace file at `path`.
pub fn replay_file(path: &Path) -> Result<ReplayReport, ReplayError> {
    let file = File::open(path)?;
    replay(file)
}

/// Fuzz entry point: `bytes` as a whole trace file, and the same bytes as
/// one record body. Neither may panic, whatever the bytes; a valid trace
/// replays. Used by the `trace` fuzz target and by this crate's tests.
pub fn fuzz_trace(bytes: &[u8]) {
    let _ = replay(bytes);
    if let Ok(record) = Record::decode(bytes) {
        let mut again = Vec::new();
        if record.encode(&mut again).is_ok() {
            let body = again.get(4..).unwrap_or_default();
            assert_eq!(
                Record::decode(body).ok(),
                Some(record),
                "decode, encode, decode"
            );
        }
    }
}
