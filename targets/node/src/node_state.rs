//! The node's state across restarts on disk (`state.bin`): its onion keys,
//! guards, relay health and circuit build times, as
//! [`Node::save_state`](veil_core::node::Node::save_state) lays them out
//! (relay spec §10, "State across restarts").
//!
//! The file holds onion secrets, so it is written as the identity key is:
//! mode 0600 from its creation, never through a symbolic link, replaced
//! atomically (`atomic_file::replace`: a new file, synced, renamed over
//! the old one, the directory synced), so a crash during a save leaves the
//! last completed save whole. The in-memory copies are wiped after use.
//!
//! A file the node cannot read stops it, with a one-line reason, as a
//! corrupt `nodes.json` does: atomic writes mean our own crash cannot have
//! damaged it, so something else did, and an operator should know.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use zeroize::Zeroizing;

use crate::atomic_file;

/// The file's name in the data directory.
pub const FILE: &str = "state.bin";

/// Writes `state` to `dir/state.bin` atomically; nothing if it is empty.
pub fn save(dir: &Path, state: &[u8]) -> Result<(), String> {
    if state.is_empty() {
        return Ok(());
    }
    atomic_file::replace(dir, FILE, state).map_err(|e| {
        format!(
            "cannot save the node state to {}: {e}",
            dir.join(FILE).display()
        )
    })
}

/// Reads `dir/state.bin`, or `None` if there is none (a first start).
pub fn load(dir: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    let path = dir.join(FILE);
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn saves_privately_and_loads_and_no_file_is_none() {
        let dir = std::env::temp_dir().join(format!("veil-state-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        assert_eq!(load(&dir).expect("load").map(|b| b.to_vec()), None);
        save(&dir, &[1, 2, 3]).expect("save");
        let mode = fs::metadata(dir.join(FILE))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            load(&dir).expect("load").map(|b| b.to_vec()),
            Some(vec![1, 2, 3])
        );
        save(&dir, &[]).expect("an empty state is not written");
        assert_eq!(
            load(&dir).expect("load").map(|b| b.to_vec()),
            Some(vec![1, 2, 3])
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
