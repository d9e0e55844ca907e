//! Files that hold what only the node's owner may read (traces hold the
//! node's secret key), created so that no moment exposes them: the path
//! is never followed through a symbolic link (a link planted there could
//! make the node truncate another file), the file is created with mode
//! 0600, and an existing file is emptied only after its mode is 0600.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Opens `path` for writing, empty and with mode 0600: creates it, or
/// tightens the mode of the regular file there and then truncates it. A
/// symbolic link at `path` is refused (`ErrorKind::InvalidInput`), not
/// followed; so is anything but a regular file.
pub fn create_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it is a symbolic link; refusing to follow it",
                )
            } else {
                e
            }
        })?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    // An existing file keeps its mode on open: tighten it before emptying
    // it, so nothing is ever written to a file others can read.
    file.set_permissions(Permissions::from_mode(0o600))?;
    file.set_len(0)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("veil-mio-private-{name}-{}", std::process::id()));
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

    #[test]
    fn a_symbolic_link_is_refused_and_its_target_left_alone() {
        let dir = Dir::new("symlink");
        let target = dir.0.join("precious");
        fs::write(&target, b"keep me").expect("target");
        let link = dir.0.join("trace");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let e = create_private(&link).expect_err("a symlink is refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(fs::read(&target).expect("target"), b"keep me");
    }

    #[test]
    fn a_new_file_is_0600_and_an_existing_one_is_tightened_and_emptied() {
        let dir = Dir::new("modes");
        let fresh = dir.0.join("fresh");
        let mut file = create_private(&fresh).expect("create");
        file.write_all(b"secret").expect("write");
        let mode = fs::metadata(&fresh).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let old = dir.0.join("old");
        fs::write(&old, b"an older, longer trace").expect("old file");
        fs::set_permissions(&old, Permissions::from_mode(0o644)).expect("chmod");
        drop(create_private(&old).expect("reuse"));
        let meta = fs::metadata(&old).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 0);
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = Dir::new("dir");
        let e = create_private(&dir.0).expect_err("not a file");
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::IsADirectory
            ),
            "{e}"
        );
    }
}
