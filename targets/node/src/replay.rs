//! `veil replay FILE`: run a fresh core over a recorded trace and check
//! that every output matches.

use std::path::Path;

use veil_mio::trace::{self, ReplayError};

/// Replays `path`; `Err` is one line: why the trace is unusable, or where
/// the first mismatch is.
pub fn run(path: &Path, allow_truncated: bool) -> Result<(), String> {
    match trace::replay_file(path) {
        Ok(report) => {
            println!(
                "replayed {} records of node {} ({:.1} s of node time, {} checkpoints, {} bytes), \
                 all outputs match (digest {})",
                report.records,
                report.node_id,
                report.last_time.as_micros() as f64 / 1e6,
                report.checkpoints,
                report.bytes,
                trace::hex(&report.digest)
            );
            Ok(())
        }
        Err(e @ ReplayError::Truncated { .. }) if allow_truncated => {
            println!("{}: {e}", path.display());
            Ok(())
        }
        Err(ReplayError::Io(e)) => Err(format!("cannot read trace {}: {e}", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}
