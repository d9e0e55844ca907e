//! The rendezvous service's files in the data directory: its keys
//! (`service.key`, made by `keyfile`) and its signed descriptor
//! (`service.descriptor`), which `veil node` rewrites whenever the node
//! re-signs it (an introduction point established, lost or replaced) so
//! that the operator can hand the current one to senders
//! (`veil learn-service`). The descriptor holds no secret; it is written
//! like every file of the directory (`atomic_file`: mode 0600, replaced
//! whole).

use std::path::{Path, PathBuf};

use veil_core::identity::ServiceDescriptor;

use crate::atomic_file;
use crate::host_protocol::OfferedService;

/// The service keys' file name in the data directory.
pub const KEY_FILE: &str = "service.key";

/// The service descriptor's file name in the data directory.
pub const DESCRIPTOR_FILE: &str = "service.descriptor";

/// Keeps `service.descriptor` equal to the descriptor the node last
/// signed.
#[derive(Debug)]
pub struct DescriptorFile {
    dir: PathBuf,
    /// The bytes in the file: read at start, then those last written.
    written: Option<Vec<u8>>,
    /// Whether the node had a descriptor at the last look.
    had_one: bool,
}

impl DescriptorFile {
    /// The descriptor file of the data directory `dir`, as it is now.
    pub fn new(dir: &Path) -> Self {
        DescriptorFile {
            dir: dir.to_path_buf(),
            written: std::fs::read(dir.join(DESCRIPTOR_FILE)).ok(),
            had_one: false,
        }
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(DESCRIPTOR_FILE)
    }

    /// Writes the node's current descriptor if it differs from the file's
    /// and logs the change; says so when the service has none any more.
    pub fn update(&mut self, service: &OfferedService) -> Result<(), String> {
        let Some(descriptor) = &service.descriptor else {
            if self.had_one {
                log::warn!(
                    "service {}: no introduction point established any more; {} lists stale \
                     ones until new ones are set up",
                    service.id,
                    self.path().display()
                );
            }
            self.had_one = false;
            return Ok(());
        };
        self.had_one = true;
        if self.written.as_ref() == Some(descriptor) {
            return Ok(());
        }
        atomic_file::replace(&self.dir, DESCRIPTOR_FILE, descriptor)
            .map_err(|e| format!("cannot write {}: {e}", self.path().display()))?;
        self.written = Some(descriptor.clone());
        let points = ServiceDescriptor::parse_verified(descriptor)
            .map(|d| d.intro_points.len().to_string())
            .unwrap_or_else(|e| format!("? ({e})"));
        log::info!(
            "service {} descriptor changed: it lists {points} introduction points; wrote {} \
             (hand it to senders: veil learn-service)",
            service.id,
            self.path().display()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use veil_core::identity::{IntroPoint, NodeId, ServiceKeys, MAX_SERVICE_DESCRIPTOR_LEN};

    use super::*;

    fn descriptor(keys: &ServiceKeys, issued_at: u64, points: u8) -> Vec<u8> {
        let repr = ServiceDescriptor {
            service_key: keys.service_key(),
            onion_key: keys.onion_public(),
            issued_at,
            intro_points: (0..points)
                .map(|i| IntroPoint {
                    node_id: NodeId([i + 1; 32]),
                    onion_key: [9; 32],
                    addresses: Default::default(),
                })
                .collect(),
        };
        let mut buf = [0u8; MAX_SERVICE_DESCRIPTOR_LEN];
        let len = repr.emit_signed(keys, &mut buf).unwrap();
        buf[..len].to_vec()
    }

    #[test]
    fn the_file_follows_the_descriptor_and_is_private() {
        let dir = std::env::temp_dir().join(format!("veil-service-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let keys = ServiceKeys::from_secrets([4; 32], [5; 32]);
        let mut file = DescriptorFile::new(&dir);
        let mut service = OfferedService {
            id: keys.service_id(),
            descriptor: None,
        };
        file.update(&service).unwrap();
        assert!(!file.path().exists(), "nothing to write yet");
        let first = descriptor(&keys, 100, 1);
        service.descriptor = Some(first.clone());
        file.update(&service).unwrap();
        assert_eq!(std::fs::read(file.path()).unwrap(), first);
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = descriptor(&keys, 101, 2);
        service.descriptor = Some(second.clone());
        file.update(&service).unwrap();
        assert_eq!(std::fs::read(file.path()).unwrap(), second);
        // No descriptor for a while: the file keeps the last one.
        service.descriptor = None;
        file.update(&service).unwrap();
        assert_eq!(std::fs::read(file.path()).unwrap(), second);
        // A restart reads what is there and does not rewrite it.
        let again = DescriptorFile::new(&dir);
        assert_eq!(again.written.as_deref(), Some(&second[..]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
