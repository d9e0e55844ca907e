//! Files of the data directory, private from their first byte: created
//! with mode 0600 by the `open` call itself (never chmodded afterwards),
//! never through a symbolic link, and replaced whole or not at all.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates `path`, which must not exist yet, with mode 0600. `create_new`
/// (`O_EXCL`) fails on anything already there, a symbolic link included;
/// `O_NOFOLLOW` says the same to any reader of this code.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Replaces `dir/name` with `bytes`, atomically: a new file `name.tmp` is
/// created (a leftover of that name, from a crash, is removed first, even
/// a symbolic link, which is never followed), written, synced and renamed
/// over `name`; then the directory is synced so the rename is durable. A
/// crash at any point leaves the old file whole.
pub fn replace(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = create_new_private(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()
}
