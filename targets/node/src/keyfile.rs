//! The identity key on disk: 32 raw secret bytes, mode 0600.
//!
//! A key file anyone but its owner can read is refused rather than used or
//! silently fixed: the secret may already have leaked, and the operator
//! should decide. So is a file of the wrong length (corrupt or not a key).

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use veil_core::identity::Identity;
use zeroize::Zeroizing;

use crate::atomic_file;

/// Bytes in a key file.
pub const KEY_LEN: usize = 32;

/// Writes a fresh secret to `path`, which must not exist, with mode 0600.
/// The secret's buffer is wiped when this returns, whatever happened.
pub fn create(path: &Path) -> Result<Identity, String> {
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(secret.as_mut_slice()).map_err(|e| format!("no OS entropy for a key: {e}"))?;
    let mut file = atomic_file::create_new_private(path).map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists => format!(
            "{} already exists; refusing to overwrite a key (delete it first or pick another path)",
            path.display()
        ),
        _ => format!("cannot create key file {}: {e}", path.display()),
    })?;
    file.write_all(secret.as_slice())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write key file {}: {e}", path.display()))?;
    Ok(Identity::from_secret_bytes(*secret))
}

/// Reads the key at `path`, refusing one that group or others may access
/// or that is not exactly 32 bytes. The read buffer is wiped when this
/// returns, whatever happened.
pub fn load(path: &Path) -> Result<Identity, String> {
    let mut file =
        File::open(path).map_err(|e| format!("cannot open key file {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "key file {} has mode {mode:04o}; refusing a key that group or others can access \
             (chmod 600 it if it has not leaked)",
            path.display()
        ));
    }
    if meta.len() != KEY_LEN as u64 {
        return Err(format!(
            "key file {} is {} bytes, not {KEY_LEN}: corrupt or not a veil key",
            path.display(),
            meta.len()
        ));
    }
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    file.read_exact(secret.as_mut_slice())
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    Ok(Identity::from_secret_bytes(*secret))
}

/// Loads the key at `path`, creating it first if there is none.
pub fn load_or_create(path: &Path) -> Result<(Identity, bool), String> {
    match fs::symlink_metadata(path) {
        Ok(_) => load(path).map(|id| (id, false)),
        Err(e) if e.kind() == ErrorKind::NotFound => create(path).map(|id| (id, true)),
        Err(e) => Err(format!("cannot read key file {}: {e}", path.display())),
    }
}
