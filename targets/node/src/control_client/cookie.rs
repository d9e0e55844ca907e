//! The client's side of a TCP control socket's cookie: read it from the
//! node's cookie file, send it as the first line, wait for the node's
//! `{"ok":true}`.

use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::path::Path;

use zeroize::Zeroizing;

use super::{ConnectError, CONNECT_TIMEOUT};
use crate::control_address::{Endpoint, COOKIE_LEN};
use crate::control_protocol::{auth_line, read_line, Response, MAX_LINE};
use crate::control_stream::ControlStream;

pub(super) fn read(path: &Path) -> Result<Zeroizing<[u8; COOKIE_LEN]>, ConnectError> {
    let unreadable = |source| ConnectError::Cookie {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let mut cookie = Zeroizing::new([0u8; COOKIE_LEN]);
    file.read_exact(cookie.as_mut_slice()).map_err(unreadable)?;
    let mut more = [0u8; 1];
    if file.read(&mut more).map_err(unreadable)? != 0 {
        return Err(unreadable(io::Error::new(
            ErrorKind::InvalidData,
            format!("longer than {COOKIE_LEN} bytes"),
        )));
    }
    Ok(cookie)
}

/// Sends the cookie line and waits for the node's `{"ok":true}`; a node
/// that refuses the cookie closes the connection without a word.
pub(super) fn present(
    mut stream: ControlStream,
    cookie: &[u8; COOKIE_LEN],
    endpoint: &Endpoint,
) -> Result<BufReader<ControlStream>, ConnectError> {
    let refused = || ConnectError::CookieRefused {
        endpoint: endpoint.clone(),
    };
    stream
        .set_read_timeout(Some(CONNECT_TIMEOUT))
        .map_err(ConnectError::Setup)?;
    let line = auth_line(cookie);
    stream
        .write_all(line.as_slice())
        .map_err(ConnectError::Setup)?;
    let mut reader = BufReader::new(stream);
    let answer = match read_line(&mut reader, MAX_LINE) {
        Ok(Some(answer)) => answer,
        Ok(None) => return Err(refused()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            return Err(ConnectError::Setup(e))
        }
        Err(_) => return Err(refused()),
    };
    match serde_json::from_slice::<Response>(&answer) {
        Ok(Response { ok: true, .. }) => Ok(reader),
        _ => Err(refused()),
    }
}
