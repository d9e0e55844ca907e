//! Where `veil node` listens for control connections: a Unix domain socket
//! (by default `control.sock` in the data directory), or TCP on loopback
//! with a cookie, only when configured.
//!
//! The socket file is made so that no moment exposes it: its directory
//! must be one only the owner may enter (the data directory is checked to
//! be), so the socket is unreachable to others between `bind` and the
//! `chmod` to 0600. A socket file left by a crashed node is removed only
//! if nothing answers on it; a live node's socket, or anything that is not
//! a socket, is left alone and the node does not start. The file is
//! removed again on clean shutdown ([`SocketFile`]).

use std::fs;
use std::io::{self, ErrorKind};
use std::net::TcpListener;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use veil_node::control_address::ControlAddress;
use veil_node::control_stream::ControlStream;

use crate::control_cookie::Cookie;
use crate::data_dir;

/// A bound control socket.
#[derive(Debug)]
pub enum ControlListener {
    /// A Unix domain socket: the file's mode says who may connect.
    Unix(UnixListener),
    /// TCP on loopback: connections must present `cookie` first.
    Tcp {
        /// The listening socket.
        listener: TcpListener,
        /// What connections must present.
        cookie: Cookie,
    },
}

impl ControlListener {
    /// Binds the control socket at `address`; a TCP one gets a fresh
    /// cookie in `data_dir`. For a Unix socket, also returns the guard that
    /// removes its file.
    pub fn bind(
        address: &ControlAddress,
        data_dir: &Path,
    ) -> Result<(ControlListener, Option<SocketFile>), String> {
        match address {
            ControlAddress::Unix(path) => {
                let (listener, file) = bind_unix(path)?;
                Ok((ControlListener::Unix(listener), Some(file)))
            }
            ControlAddress::Tcp(addr) => {
                let listener = TcpListener::bind(addr).map_err(|e| {
                    format!(
                        "cannot listen for control connections on {addr} ({e}); pick another \
                         --control address"
                    )
                })?;
                let cookie = Cookie::create(data_dir)?;
                Ok((ControlListener::Tcp { listener, cookie }, None))
            }
        }
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> io::Result<ControlStream> {
        match self {
            ControlListener::Unix(l) => l.accept().map(|(s, _)| ControlStream::Unix(s)),
            ControlListener::Tcp { listener, .. } => {
                listener.accept().map(|(s, _)| ControlStream::Tcp(s))
            }
        }
    }

    /// The cookie connections must present, over TCP.
    pub fn cookie(&self) -> Option<&Cookie> {
        match self {
            ControlListener::Unix(_) => None,
            ControlListener::Tcp { cookie, .. } => Some(cookie),
        }
    }
}

/// The control socket's file, removed when this is dropped if it is still
/// the one this node made (not one a later node put there).
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino);
        if ours {
            if let Err(e) = fs::remove_file(&self.path) {
                log::warn!(
                    "cannot remove the control socket {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

/// Binds a Unix socket at `path`, mode 0600, in a directory only its
/// owner may enter, replacing a stale socket file.
fn bind_unix(path: &Path) -> Result<(UnixListener, SocketFile), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    data_dir::check_private(dir, "control socket directory")?;
    clear_stale(path)?;
    let shown = path.display();
    let listener = UnixListener::bind(path).map_err(|e| {
        format!(
            "cannot listen for control connections on {shown} ({e}); pick another --control path"
        )
    })?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot make the control socket {shown} private: {e}"))?;
    let meta = fs::symlink_metadata(path)
        .map_err(|e| format!("cannot read the control socket {shown}: {e}"))?;
    let file = SocketFile {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    Ok((listener, file))
}

/// Removes a socket file at `path` that nothing answers on (a crashed
/// node's); refuses a live socket and anything that is not a socket.
fn clear_stale(path: &Path) -> Result<(), String> {
    let shown = path.display();
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot check the control socket {shown}: {e}")),
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "{shown} exists and is not a socket; move it away or pick another --control path"
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(format!(
            "a node already answers on the control socket {shown}; stop it first, or give this \
             node another --data-dir or --control"
        )),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale control socket {shown}: {e}"))?;
            log::info!("removed a stale control socket {shown} (nothing answered on it)");
            Ok(())
        }
        Err(e) => Err(format!("cannot check the control socket {shown}: {e}")),
    }
}
