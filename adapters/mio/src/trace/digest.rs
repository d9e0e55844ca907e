//! The running digest of a node's outcomes and outputs, shared by recording
//! and replay so that both fold exactly the same bytes.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::format::CHECKPOINT_EVERY;

/// SHA-256 over the postcard encoding of every input's outcome and every
/// poll's result, each prefixed with its length.
#[derive(Debug, Default)]
pub(crate) struct OutputDigest {
    hasher: Sha256,
    records: u64,
    scratch: Vec<u8>,
}

impl OutputDigest {
    /// Folds the result of one input or poll record.
    pub(crate) fn fold<T: Serialize>(&mut self, value: &T) {
        self.scratch.clear();
        // Encoding into a Vec fails only on a type serde cannot express,
        // which none of the node's is: fold nothing for it then, and the
        // replay, doing the same, agrees.
        let scratch = std::mem::take(&mut self.scratch);
        self.scratch = postcard::to_extend(value, scratch).unwrap_or_default();
        let len = u32::try_from(self.scratch.len()).unwrap_or(u32::MAX);
        self.hasher.update(len.to_le_bytes());
        self.hasher.update(&self.scratch);
        self.records = self.records.saturating_add(1);
    }

    /// Input and poll records folded so far.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// The digest of everything folded so far.
    pub(crate) fn current(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }

    /// Whether a checkpoint follows the record just folded.
    pub(crate) fn checkpoint_due(&self) -> bool {
        self.records.is_multiple_of(CHECKPOINT_EVERY)
    }
}
