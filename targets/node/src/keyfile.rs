//! Secret keys on disk: raw secret bytes, mode 0600. The identity key
//! (`identity.key`, 32 bytes) and a rendezvous service's keys
//! (`service.key`, 64 bytes: the service's Ed25519 secret, then its X25519
//! onion secret) are kept alike.
//!
//! A key file anyone but its owner can read is refused rather than used or
//! silently fixed: the secret may already have leaked, and the operator
//! should decide. So is a file of the wrong length (corrupt or not a key).

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use veil_core::identity::{Identity, ServiceKeys};
use zeroize::Zeroizing;

use crate::atomic_file;

/// Bytes in an identity key file.
pub const KEY_LEN: usize = 32;

/// Bytes in a service key file: the signing secret, then the onion secret.
pub const SERVICE_KEY_LEN: usize = 64;

/// What a kind of key file is called in errors.
struct Kind {
    /// "key file", "service key file".
    name: &'static str,
    /// "a veil key", "a veil service key".
    what: &'static str,
}

const IDENTITY: Kind = Kind {
    name: "key file",
    what: "a veil key",
};

const SERVICE: Kind = Kind {
    name: "service key file",
    what: "a veil service key",
};

/// Writes a fresh secret to `path`, which must not exist, with mode 0600.
/// The secret's buffer is wiped when this returns, whatever happened.
pub fn create(path: &Path) -> Result<Identity, String> {
    let secret = create_secret::<KEY_LEN>(path, &IDENTITY)?;
    Ok(Identity::from_secret_bytes(*secret))
}

/// Loads the key at `path`, creating it first if there is none. A key
/// that group or others may access, or that is not exactly 32 bytes, is
/// refused. The read buffer is wiped when this returns, whatever happened.
pub fn load_or_create(path: &Path) -> Result<(Identity, bool), String> {
    let (secret, created) = load_or_create_secret::<KEY_LEN>(path, &IDENTITY)?;
    Ok((Identity::from_secret_bytes(*secret), created))
}

/// Loads the service keys at `path` (64 bytes, mode 0600), creating them
/// from OS entropy first if there are none. As for the identity key, a
/// file that group or others may access, or that is not 64 bytes, is
/// refused.
pub fn load_or_create_service(path: &Path) -> Result<(ServiceKeys, bool), String> {
    let (secret, created) = load_or_create_secret::<SERVICE_KEY_LEN>(path, &SERVICE)?;
    let mut signing = Zeroizing::new([0u8; 32]);
    let mut onion = Zeroizing::new([0u8; 32]);
    let (first, second) = secret.split_at(32);
    signing.copy_from_slice(first);
    onion.copy_from_slice(second);
    Ok((ServiceKeys::from_secrets(*signing, *onion), created))
}

fn create_secret<const N: usize>(path: &Path, kind: &Kind) -> Result<Zeroizing<[u8; N]>, String> {
    let mut secret = Zeroizing::new([0u8; N]);
    getrandom::fill(secret.as_mut_slice()).map_err(|e| format!("no OS entropy for a key: {e}"))?;
    let mut file = atomic_file::create_new_private(path).map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists => format!(
            "{} already exists; refusing to overwrite a key (delete it first or pick another path)",
            path.display()
        ),
        _ => format!("cannot create {} {}: {e}", kind.name, path.display()),
    })?;
    file.write_all(secret.as_slice())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {} {}: {e}", kind.name, path.display()))?;
    Ok(secret)
}

/// Reads the secret at `path`, refusing a file that group or others may
/// access or that is not exactly `N` bytes. The buffer is wiped when
/// dropped.
fn load_secret<const N: usize>(path: &Path, kind: &Kind) -> Result<Zeroizing<[u8; N]>, String> {
    let name = kind.name;
    let mut file =
        File::open(path).map_err(|e| format!("cannot open {name} {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {name} {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{name} {} has mode {mode:04o}; refusing a key that group or others can access \
             (chmod 600 it if it has not leaked)",
            path.display()
        ));
    }
    if meta.len() != N as u64 {
        return Err(format!(
            "{name} {} is {} bytes, not {N}: corrupt or not {}",
            path.display(),
            meta.len(),
            kind.what
        ));
    }
    let mut secret = Zeroizing::new([0u8; N]);
    file.read_exact(secret.as_mut_slice())
        .map_err(|e| format!("cannot read {name} {}: {e}", path.display()))?;
    Ok(secret)
}

fn load_or_create_secret<const N: usize>(
    path: &Path,
    kind: &Kind,
) -> Result<(Zeroizing<[u8; N]>, bool), String> {
    match fs::symlink_metadata(path) {
        Ok(_) => load_secret(path, kind).map(|s| (s, false)),
        Err(e) if e.kind() == ErrorKind::NotFound => create_secret(path, kind).map(|s| (s, true)),
        Err(e) => Err(format!("cannot read {} {}: {e}", kind.name, path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_keys_are_made_once_0600_and_a_bad_file_is_refused_in_one_line() {
        let dir = std::env::temp_dir().join(format!("veil-service-key-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("service.key");
        let (keys, created) = load_or_create_service(&path).unwrap();
        assert!(created);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 64);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // The same keys at the next start.
        let (again, created) = load_or_create_service(&path).unwrap();
        assert!(!created);
        assert_eq!(again.service_id(), keys.service_id());
        // The file holds the signing secret, then the onion secret.
        let bytes = fs::read(&path).unwrap();
        let mut signing = [0u8; 32];
        let mut onion = [0u8; 32];
        signing.copy_from_slice(&bytes[..32]);
        onion.copy_from_slice(&bytes[32..]);
        let rebuilt = ServiceKeys::from_secrets(signing, onion);
        assert_eq!(rebuilt.service_id(), keys.service_id());
        assert_eq!(rebuilt.onion_public(), keys.onion_public());

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let e = load_or_create_service(&path).unwrap_err();
        assert!(
            e.contains("service key file") && e.contains("mode 0640"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, [7u8; 32]).unwrap();
        let e = load_or_create_service(&path).unwrap_err();
        assert!(e.contains("32 bytes, not 64"), "{e}");
        assert!(e.contains("not a veil service key"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert_eq!(fs::read(&path).unwrap(), [7u8; 32], "left as it was");
        let _ = fs::remove_dir_all(&dir);
    }
}
