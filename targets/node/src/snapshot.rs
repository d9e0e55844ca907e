//! The node table on disk: every known node's signed descriptor, so a
//! restarted node knows the network at once.
//!
//! Format: JSON, `{"version":1,"descriptors":["<hex>", ...]}`. Descriptors
//! are signed, so a tampered file can only lose entries, never add forged
//! ones. Writes go to a temporary file that is synced and renamed over the
//! old one: a crash mid-write leaves the old snapshot whole.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The snapshot's file name in the data directory.
pub const FILE: &str = "nodes.json";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    descriptors: Vec<String>,
}

/// Writes `descriptors` to `dir/nodes.json` atomically.
pub fn save(dir: &Path, descriptors: &[Vec<u8>]) -> Result<(), String> {
    let snapshot = Snapshot {
        version: VERSION,
        descriptors: descriptors.iter().map(hex::encode).collect(),
    };
    let text =
        serde_json::to_vec(&snapshot).map_err(|e| format!("cannot encode the node table: {e}"))?;
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        // The rename itself is durable once the directory is synced.
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| format!("cannot save the node table to {}: {e}", path.display()))
}

/// Reads `dir/nodes.json`: the descriptors, or none if there is no file.
pub fn load(dir: &Path) -> Result<Vec<Vec<u8>>, String> {
    let path = dir.join(FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let snapshot: Snapshot = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is corrupt ({e}); delete it to start afresh",
            path.display()
        )
    })?;
    if snapshot.version != VERSION {
        return Err(format!(
            "{} has format version {}, this veil reads version {VERSION}",
            path.display(),
            snapshot.version
        ));
    }
    snapshot
        .descriptors
        .iter()
        .map(|h| {
            hex::decode(h).map_err(|_| {
                format!(
                    "{} is corrupt (bad hex); delete it to start afresh",
                    path.display()
                )
            })
        })
        .collect()
}
