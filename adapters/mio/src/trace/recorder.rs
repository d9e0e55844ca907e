//! Writing a trace: the header, one record per call, checkpoints, the end.

use std::io::{self, BufWriter, Write};

use sha2::{Digest as _, Sha256};
use veil_core::message::ReplyTo;

use super::format::{encode_output, tag, Input, Output, Senders, TraceHeader, CHECKPOINT_EVERY};
use crate::std_node::StdNode;

/// The running digest of a node's outputs, shared by recording and replay
/// so that both fold exactly the same bytes.
#[derive(Debug, Default)]
pub(crate) struct OutputDigest {
    hasher: Sha256,
    inputs: u64,
    senders: Senders,
    scratch: Vec<u8>,
}

impl OutputDigest {
    /// Folds the outputs of one input record into the digest.
    pub(crate) fn fold(&mut self, t: u8, node: &StdNode, output: &Output<'_>) {
        self.scratch.clear();
        encode_output(node, output, &mut self.senders, &mut self.scratch);
        let len = u32::try_from(self.scratch.len()).unwrap_or(u32::MAX);
        self.hasher.update([t]);
        self.hasher.update(len.to_le_bytes());
        self.hasher.update(&self.scratch);
        self.inputs = self.inputs.saturating_add(1);
    }

    /// Input records folded so far.
    pub(crate) fn inputs(&self) -> u64 {
        self.inputs
    }

    /// The digest of everything folded so far.
    pub(crate) fn current(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }

    /// Whether a checkpoint follows the record just folded.
    pub(crate) fn checkpoint_due(&self) -> bool {
        self.inputs.is_multiple_of(CHECKPOINT_EVERY)
    }

    /// The anonymous senders seen so far.
    pub(crate) fn senders(&self) -> &Senders {
        &self.senders
    }
}

/// Appends a checkpoint or end record.
pub(crate) fn encode_mark(t: u8, inputs: u64, digest: &[u8; 32], out: &mut Vec<u8>) {
    out.push(t);
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&inputs.to_le_bytes());
    out.extend_from_slice(digest);
}

/// Writes a trace. Records go through a buffer that the runtime flushes
/// before every wait, so a killed process leaves a prefix that replays up
/// to its last whole record.
pub struct Recorder {
    sink: BufWriter<Box<dyn Write + Send>>,
    digest: OutputDigest,
    record: Vec<u8>,
    /// A write failed: recording stopped, and the next flush reports it.
    error: Option<io::Error>,
    /// The end record is written (or recording stopped on an error).
    finished: bool,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("inputs", &self.digest.inputs)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Writes the header to `sink`.
    pub(crate) fn start(sink: Box<dyn Write + Send>, header: &TraceHeader) -> io::Result<Self> {
        let mut sink = BufWriter::with_capacity(64 * 1024, sink);
        let mut bytes = Vec::new();
        header.encode(&mut bytes);
        sink.write_all(&bytes)?;
        sink.flush()?;
        Ok(Recorder {
            sink,
            digest: OutputDigest::default(),
            record: Vec::new(),
            error: None,
            finished: false,
        })
    }

    /// The number a `reply` record gives `to`.
    pub(crate) fn sender_number(&self, to: &ReplyTo) -> Option<u64> {
        self.digest.senders().number(to)
    }

    /// Records one call and folds its outputs into the digest.
    pub(crate) fn input(&mut self, node: &StdNode, input: &Input<'_>, output: &Output<'_>) {
        if self.finished {
            return;
        }
        self.record.clear();
        input.encode_record(&mut self.record);
        self.digest.fold(input.tag(), node, output);
        if self.digest.checkpoint_due() {
            let digest = self.digest.current();
            encode_mark(
                tag::CHECKPOINT,
                self.digest.inputs(),
                &digest,
                &mut self.record,
            );
        }
        if let Err(e) = self.sink.write_all(&self.record) {
            self.fail(e);
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.error = Some(e);
        self.finished = true;
    }

    /// Writes buffered records out. Returns a write error once, after
    /// which nothing more is recorded.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.finished {
            return Ok(());
        }
        if let Err(e) = self.sink.flush() {
            self.finished = true;
            return Err(e);
        }
        Ok(())
    }

    /// Writes the end record and flushes; nothing is recorded after it.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.record.clear();
        let digest = self.digest.current();
        encode_mark(tag::END, self.digest.inputs(), &digest, &mut self.record);
        self.sink.write_all(&self.record)?;
        self.sink.flush()
    }

    /// Input records written so far.
    pub fn inputs(&self) -> u64 {
        self.digest.inputs()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Best effort: a trace without its end record reads as truncated.
        let _ = self.finish();
    }
}
