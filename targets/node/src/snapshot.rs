//! The node table on disk: every known node's signed descriptor, so a
//! restarted node knows the network at once.
//!
//! Format: JSON, `{"version":1,"descriptors":["<hex>", ...],"anchors":["<hex>", ...]}`.
//! `anchors` holds the descriptors of the peers of the node's outbound links
//! when it saved (`Node::anchors`, at most 2), which it dials first after a
//! restart; a file without it (older veil) has none. Descriptors are signed,
//! so a tampered file can only lose entries, never add forged ones. Writes go to a new temporary file (mode 0600 from its creation,
//! never opened through a symbolic link) that is synced and renamed over
//! the old one: a crash mid-write leaves the old snapshot whole, and the
//! torn temporary file is never read and is removed by the next save.
//!
//! A `nodes.json` that cannot be parsed is refused (the node does not
//! start), not ignored. Atomic writes mean it cannot come from our own
//! crash, so something else damaged it, and an operator should know; with
//! no `bootstrap` configured the saved table is also the node's only way
//! back into the network, so a node that quietly started with an empty
//! table would sit alone. Refusing leaves the file untouched for
//! inspection, and the one-line error says what to do. Entries that parse
//! but fail verification are only skipped, when the node restores them.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic_file;

/// The snapshot's file name in the data directory.
pub const FILE: &str = "nodes.json";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    descriptors: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    anchors: Vec<String>,
}

/// What is saved of a node: every known node's descriptor, and its anchors'.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedTable {
    /// The descriptor of every known node.
    pub descriptors: Vec<Vec<u8>>,
    /// The descriptors of the node's anchors, to dial first after a restart.
    pub anchors: Vec<Vec<u8>>,
    /// The node's state (`Node::save_state`): onion keys, guards, relay
    /// health, build times. Saved apart, to `state.bin` (`node_state`).
    pub state: zeroize::Zeroizing<Vec<u8>>,
}

fn decode(path: &Path, hex_strings: &[String]) -> Result<Vec<Vec<u8>>, String> {
    hex_strings
        .iter()
        .map(|h| {
            hex::decode(h).map_err(|_| {
                format!(
                    "{} is corrupt (a descriptor is not hex); move it away to start with an empty node table",
                    path.display()
                )
            })
        })
        .collect()
}

/// Writes `table` to `dir/nodes.json` atomically, through a new
/// `nodes.json.tmp` of mode 0600 (see `atomic_file::replace`). An empty
/// table is not written: a node that has learned nothing yet (its saved
/// descriptors expired, its peers not reached) keeps the table it started
/// from, whose addresses are its way back into the network at the next
/// start (`saved_bootstrap`). Returns whether it wrote.
pub fn save(dir: &Path, table: &SavedTable) -> Result<bool, String> {
    if table.descriptors.is_empty() {
        return Ok(false);
    }
    let snapshot = Snapshot {
        version: VERSION,
        descriptors: table.descriptors.iter().map(hex::encode).collect(),
        anchors: table.anchors.iter().map(hex::encode).collect(),
    };
    let text =
        serde_json::to_vec(&snapshot).map_err(|e| format!("cannot encode the node table: {e}"))?;
    atomic_file::replace(dir, FILE, &text)
        .map(|()| true)
        .map_err(|e| {
            format!(
                "cannot save the node table to {}: {e}",
                dir.join(FILE).display()
            )
        })
}

/// Reads `dir/nodes.json`: the descriptors, or none if there is no file.
pub fn load(dir: &Path) -> Result<SavedTable, String> {
    let path = dir.join(FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(SavedTable::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let snapshot: Snapshot = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is corrupt ({e}); move it away to start with an empty node table",
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
    Ok(SavedTable {
        descriptors: decode(&path, &snapshot.descriptors)?,
        anchors: decode(&path, &snapshot.anchors)?,
        state: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("veil-snapshot-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("scratch dir");
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn table(descriptors: &[Vec<u8>]) -> SavedTable {
        SavedTable {
            descriptors: descriptors.to_vec(),
            ..SavedTable::default()
        }
    }

    #[test]
    fn saves_and_loads_and_no_file_is_an_empty_table() {
        let dir = Dir::new("roundtrip");
        assert_eq!(load(&dir.0), Ok(SavedTable::default()));
        let saved = SavedTable {
            descriptors: vec![vec![1u8, 2, 3], vec![0xff; 40]],
            anchors: vec![vec![0xff; 40]],
            ..SavedTable::default()
        };
        assert_eq!(save(&dir.0, &saved), Ok(true));
        assert_eq!(load(&dir.0), Ok(saved));
        assert!(!dir.0.join(format!("{FILE}.tmp")).exists());
    }

    #[test]
    fn a_snapshot_without_anchors_loads_with_none() {
        let dir = Dir::new("no-anchors");
        fs::write(dir.0.join(FILE), br#"{"version":1,"descriptors":["0102"]}"#).expect("write");
        assert_eq!(load(&dir.0), Ok(table(&[vec![1, 2]])));
        let err = {
            fs::write(
                dir.0.join(FILE),
                br#"{"version":1,"descriptors":[],"anchors":["zz"]}"#,
            )
            .expect("write");
            load(&dir.0).expect_err("refused")
        };
        assert!(err.contains("not hex"), "{err}");
    }

    #[test]
    fn an_empty_table_does_not_replace_a_saved_one() {
        let dir = Dir::new("empty");
        assert_eq!(save(&dir.0, &table(&[])), Ok(false));
        assert!(!dir.0.join(FILE).exists());
        assert_eq!(save(&dir.0, &table(&[vec![5u8; 3]])), Ok(true));
        assert_eq!(save(&dir.0, &table(&[])), Ok(false));
        assert_eq!(load(&dir.0), Ok(table(&[vec![5u8; 3]])));
    }

    #[test]
    fn a_torn_temp_file_is_ignored_and_replaced() {
        let dir = Dir::new("torn");
        save(&dir.0, &table(&[vec![7u8; 10]])).expect("save");
        let tmp = dir.0.join(format!("{FILE}.tmp"));
        // Longer than the next snapshot: the save must not keep its tail.
        fs::write(&tmp, vec![b'{'; 4096]).expect("torn temp file");
        assert_eq!(load(&dir.0), Ok(table(&[vec![7u8; 10]])));
        save(&dir.0, &table(&[vec![8u8; 2]])).expect("save over a leftover");
        assert!(!tmp.exists());
        assert_eq!(load(&dir.0), Ok(table(&[vec![8u8; 2]])));
    }

    #[test]
    fn a_symlink_at_the_temp_path_is_replaced_not_followed() {
        let dir = Dir::new("symlink");
        let victim = dir.0.join("victim");
        fs::write(&victim, b"someone else's file").expect("victim");
        let tmp = dir.0.join(format!("{FILE}.tmp"));
        std::os::unix::fs::symlink(&victim, &tmp).expect("symlink");
        save(&dir.0, &table(&[vec![9u8; 4]])).expect("save");
        assert_eq!(fs::read(&victim).expect("victim"), b"someone else's file");
        assert_eq!(load(&dir.0), Ok(table(&[vec![9u8; 4]])));
        assert!(fs::symlink_metadata(&tmp).is_err(), "no temp file left");
    }

    #[test]
    fn the_snapshot_is_0600_even_over_a_leftover_temp_file_others_could_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Dir::new("modes");
        let tmp = dir.0.join(format!("{FILE}.tmp"));
        fs::write(&tmp, b"torn").expect("leftover");
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).expect("chmod");
        save(&dir.0, &table(&[vec![1u8; 3]])).expect("save");
        let mode = fs::metadata(dir.0.join(FILE))
            .expect("snapshot")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_corrupt_snapshot_is_refused_in_one_line() {
        let dir = Dir::new("corrupt");
        let path = dir.0.join(FILE);
        for (text, says) in [
            (&b""[..], "is corrupt"),
            (b"\x00\xffgarbage", "is corrupt"),
            (br#"{"version":1,"descriptors":["ab"#, "is corrupt"),
            (br#"{"version":1,"descriptors":["xyz"]}"#, "not hex"),
            (br#"{"version":2,"descriptors":[]}"#, "format version 2"),
        ] {
            fs::write(&path, text).expect("write");
            let err = load(&dir.0).expect_err("refused");
            assert!(err.contains(says), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert_eq!(fs::read(&path).expect("still there"), text, "untouched");
        }
    }
}
