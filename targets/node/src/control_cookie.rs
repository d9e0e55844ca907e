//! The cookie of a TCP control socket (Tor's CookieAuthentication): 32
//! random bytes the node writes to `control.cookie` in its data directory
//! (mode 0600) at every start. A TCP client proves it may read the data
//! directory by sending them in its first line; the node compares them in
//! constant time.

use std::fmt;
use std::path::Path;

use subtle::ConstantTimeEq;
use veil_node::control_address::{COOKIE_FILE, COOKIE_LEN};
use veil_node::control_protocol::parse_auth_line;
use zeroize::Zeroizing;

use crate::atomic_file;

/// A node's cookie; wiped when dropped, never printed.
pub struct Cookie(Zeroizing<[u8; COOKIE_LEN]>);

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookie(<redacted>)")
    }
}

impl Cookie {
    /// Draws a fresh cookie and writes it to `data_dir/control.cookie`,
    /// replacing the one of an earlier start.
    pub fn create(data_dir: &Path) -> Result<Cookie, String> {
        let mut bytes = Zeroizing::new([0u8; COOKIE_LEN]);
        getrandom::fill(bytes.as_mut_slice())
            .map_err(|e| format!("no OS entropy for the control cookie: {e}"))?;
        atomic_file::replace(data_dir, COOKIE_FILE, bytes.as_slice()).map_err(|e| {
            format!(
                "cannot write the control cookie {}: {e}",
                data_dir.join(COOKIE_FILE).display()
            )
        })?;
        Ok(Cookie(bytes))
    }

    /// Whether `line` is a cookie line with this cookie.
    pub fn accepts(&self, line: &[u8]) -> bool {
        parse_auth_line(line).is_some_and(|given| bool::from(given.ct_eq(&*self.0)))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use veil_node::control_protocol::auth_line;

    use super::*;

    #[test]
    fn the_cookie_file_is_0600_and_only_its_bytes_are_accepted() {
        let dir = std::env::temp_dir().join(format!("veil-cookie-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let cookie = Cookie::create(&dir).expect("cookie");
        let path = dir.join(COOKIE_FILE);
        let meta = std::fs::metadata(&path).expect("cookie file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let bytes: [u8; COOKIE_LEN] = std::fs::read(&path)
            .expect("read")
            .try_into()
            .expect("32 bytes");
        let line = auth_line(&bytes);
        assert!(cookie.accepts(line.strip_suffix(b"\n").expect("newline")));
        let mut wrong = bytes;
        wrong[31] ^= 1;
        let line = auth_line(&wrong);
        assert!(!cookie.accepts(line.strip_suffix(b"\n").expect("newline")));
        assert!(!cookie.accepts(b"POST / HTTP/1.1"));
        assert_eq!(format!("{cookie:?}"), "Cookie(<redacted>)");

        // A new start, a new cookie: the old one is refused.
        let again = Cookie::create(&dir).expect("cookie");
        let line = auth_line(&bytes);
        assert!(!again.accepts(line.strip_suffix(b"\n").expect("newline")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
