//! Where a node's control socket is, and what a client needs to reach it.
//!
//! By default a node's control socket is the Unix domain socket
//! [`SOCKET_FILE`] in its data directory, mode 0600 in a directory only its
//! owner may enter: the file system says who may talk to the node. A TCP
//! control socket (loopback only) is there only when configured, and then
//! every connection first presents the 32 bytes of [`COOKIE_FILE`], which
//! the node writes to its data directory (mode 0600) at start-up.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The control socket's file name in the data directory, by default.
pub const SOCKET_FILE: &str = "control.sock";

/// The file in the data directory that holds the cookie of a TCP control
/// socket: [`COOKIE_LEN`] random bytes, rewritten at every start.
pub const COOKIE_FILE: &str = "control.cookie";

/// Bytes in a control cookie.
pub const COOKIE_LEN: usize = 32;

/// A control socket's address as configured: `--control` or `control` in
/// the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAddress {
    /// A Unix domain socket at this path.
    Unix(PathBuf),
    /// TCP on a loopback address; connections present the cookie first.
    Tcp(SocketAddr),
}

/// Why a string is not a [`ControlAddress`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlAddressError {
    given: String,
}

impl fmt::Display for ControlAddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "control address {:?} is neither IP:PORT nor a path (a path has a '/': write ./{} for \
             one in the current directory)",
            self.given, self.given
        )
    }
}

impl std::error::Error for ControlAddressError {}

impl FromStr for ControlAddress {
    type Err = ControlAddressError;

    /// `IP:PORT` is TCP; anything with a `/` is a Unix socket's path.
    /// Everything else (a host name, a bare file name) is refused, so a
    /// typo never becomes a socket file somewhere.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(ControlAddress::Tcp(addr));
        }
        if s.contains('/') {
            return Ok(ControlAddress::Unix(PathBuf::from(s)));
        }
        Err(ControlAddressError { given: s.into() })
    }
}

impl fmt::Display for ControlAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlAddress::Unix(path) => write!(f, "{}", path.display()),
            ControlAddress::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ControlAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a client connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix domain socket.
    Unix(PathBuf),
    /// A TCP control socket, and the cookie file whose bytes it wants
    /// first.
    Tcp {
        /// The node's control address.
        addr: SocketAddr,
        /// The node's [`COOKIE_FILE`].
        cookie_file: PathBuf,
    },
}

impl Endpoint {
    /// The control socket of the node whose data directory is `data_dir`
    /// and whose control address is `control` (the default socket in the
    /// data directory when `None`).
    pub fn of_node(data_dir: &Path, control: Option<&ControlAddress>) -> Endpoint {
        match control {
            None => Endpoint::Unix(data_dir.join(SOCKET_FILE)),
            Some(ControlAddress::Unix(path)) => Endpoint::Unix(path.clone()),
            Some(ControlAddress::Tcp(addr)) => Endpoint::Tcp {
                addr: *addr,
                cookie_file: data_dir.join(COOKIE_FILE),
            },
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp { addr, .. } => write!(f, "{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_tcp_or_paths_and_nothing_else() {
        assert_eq!(
            "127.0.0.1:7701".parse(),
            Ok(ControlAddress::Tcp("127.0.0.1:7701".parse().unwrap()))
        );
        assert_eq!(
            "[::1]:7701".parse(),
            Ok(ControlAddress::Tcp("[::1]:7701".parse().unwrap()))
        );
        assert_eq!(
            "./control.sock".parse(),
            Ok(ControlAddress::Unix("./control.sock".into()))
        );
        assert_eq!(
            "/run/veil/control.sock".parse(),
            Ok(ControlAddress::Unix("/run/veil/control.sock".into()))
        );
        for bad in ["localhost:7701", "control.sock", ""] {
            let e = bad.parse::<ControlAddress>().unwrap_err().to_string();
            assert!(e.contains("neither IP:PORT nor a path"), "{e}");
        }
    }

    #[test]
    fn a_node_is_reached_by_its_data_directory() {
        let dir = Path::new("/d");
        assert_eq!(
            Endpoint::of_node(dir, None),
            Endpoint::Unix("/d/control.sock".into())
        );
        let tcp = ControlAddress::Tcp("127.0.0.1:1".parse().unwrap());
        assert_eq!(
            Endpoint::of_node(dir, Some(&tcp)),
            Endpoint::Tcp {
                addr: "127.0.0.1:1".parse().unwrap(),
                cookie_file: "/d/control.cookie".into()
            }
        );
    }
}
