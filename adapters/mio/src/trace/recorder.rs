//! Writing a trace: the header, one record per input and poll, checkpoints,
//! the end.

use std::io::{self, BufWriter, Write};

use serde::Serialize;
use veil_core::node::Input;
use veil_core::time::Instant;

use super::digest::OutputDigest;
use super::format::{Record, TraceHeader};

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
            .field("records", &self.digest.records())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Writes the header to `sink`.
    pub(crate) fn start(sink: Box<dyn Write + Send>, header: &TraceHeader) -> io::Result<Self> {
        let mut sink = BufWriter::with_capacity(64 * 1024, sink);
        let bytes = header
            .encode()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
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

    /// Records one input and folds its outcome into the digest.
    pub(crate) fn input<T: Serialize>(&mut self, at: Instant, input: Input<'_>, outcome: &T) {
        self.write(&Record::Input { at, input }, outcome);
    }

    /// Records one poll and folds its result into the digest.
    pub(crate) fn poll<T: Serialize>(&mut self, at: Instant, buf_len: usize, result: &T) {
        let buf_len = u32::try_from(buf_len).unwrap_or(u32::MAX);
        self.write(&Record::Poll { at, buf_len }, result);
    }

    fn write<T: Serialize>(&mut self, record: &Record<'_>, result: &T) {
        if self.finished {
            return;
        }
        self.record.clear();
        let encoded = record.encode(&mut self.record).map_err(io::Error::other);
        self.digest.fold(result);
        let checkpoint = self.digest.checkpoint_due().then(|| Record::Checkpoint {
            records: self.digest.records(),
            digest: self.digest.current(),
        });
        let written = encoded
            .and_then(|()| match checkpoint {
                Some(c) => c.encode(&mut self.record).map_err(io::Error::other),
                None => Ok(()),
            })
            .and_then(|()| self.sink.write_all(&self.record));
        if let Err(e) = written {
            self.error = Some(e);
            self.finished = true;
        }
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
        let end = Record::End {
            records: self.digest.records(),
            digest: self.digest.current(),
        };
        end.encode(&mut self.record).map_err(io::Error::other)?;
        self.sink.write_all(&self.record)?;
        self.sink.flush()
    }

    /// Input and poll records written so far.
    pub fn records(&self) -> u64 {
        self.digest.records()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Best effort: a trace without its end record reads as truncated.
        let _ = self.finish();
    }
}
