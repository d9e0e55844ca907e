//! The data directory: the node's identity key, node table, control socket
//! and cookie. Only its owner may enter it, as ssh insists for `~/.ssh`:
//! it is created with mode 0700, and a directory that group or others can
//! access is refused (the node does not start) rather than silently fixed,
//! because what is in it may already have leaked.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The data directory when none is given: `$XDG_DATA_HOME/veil`, else
/// `$HOME/.local/share/veil`; `None` without either variable. `veil node`
/// and its clients (`veil send`, `listen`, `status`) share it.
pub fn default_dir() -> Option<PathBuf> {
    let absolute = |name| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    absolute("XDG_DATA_HOME")
        .map(|d| d.join("veil"))
        .or_else(|| absolute("HOME").map(|h| h.join(".local/share/veil")))
}

/// Creates `dir` (and its missing parents) with mode 0700 if it does not
/// exist, then checks that only its owner may access it.
pub fn prepare(dir: &Path) -> Result<(), String> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    check_private(dir, "data directory")
}

/// Refuses a directory that group or others can access (any of the mode
/// bits 0o077), naming `what` it is and the command that fixes it.
pub fn check_private(dir: &Path, what: &str) -> Result<(), String> {
    let meta =
        fs::metadata(dir).map_err(|e| format!("cannot read {what} {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{what} {} is not a directory", dir.display()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{what} {} has mode {mode:04o}; refusing a directory that group or others can access \
             (run chmod 700 {} if nothing in it has leaked)",
            dir.display(),
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_is_0700_and_an_open_one_is_refused_in_one_line() {
        let root = std::env::temp_dir().join(format!("veil-data-dir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = root.join("a/b");
        prepare(&dir).expect("created");
        let mode = fs::metadata(&dir).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        for open in [0o750, 0o705, 0o755, 0o711] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(open)).expect("chmod");
            let e = prepare(&dir).expect_err("refused");
            assert!(e.contains(&format!("mode {open:04o}")), "{e}");
            assert!(e.contains("chmod 700"), "{e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
        prepare(&dir).expect("private again");
        let _ = fs::remove_dir_all(&root);
    }
}
