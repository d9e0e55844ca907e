//! One control connection, over a Unix domain socket or TCP: what the
//! server and the client read and write, whichever the transport.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A connected control socket.
#[derive(Debug)]
pub enum ControlStream {
    /// A Unix domain socket connection.
    Unix(UnixStream),
    /// A TCP connection.
    Tcp(TcpStream),
}

impl ControlStream {
    /// A second handle on the same connection (one reads, one writes).
    pub fn try_clone(&self) -> io::Result<ControlStream> {
        Ok(match self {
            ControlStream::Unix(s) => ControlStream::Unix(s.try_clone()?),
            ControlStream::Tcp(s) => ControlStream::Tcp(s.try_clone()?),
        })
    }

    /// How long a read may wait (`None`: for ever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            ControlStream::Unix(s) => s.set_read_timeout(timeout),
            ControlStream::Tcp(s) => s.set_read_timeout(timeout),
        }
    }

    /// Whether reads return at once when nothing is there.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            ControlStream::Unix(s) => s.set_nonblocking(nonblocking),
            ControlStream::Tcp(s) => s.set_nonblocking(nonblocking),
        }
    }
}

impl Read for ControlStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ControlStream::Unix(s) => s.read(buf),
            ControlStream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for ControlStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ControlStream::Unix(s) => s.write(buf),
            ControlStream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ControlStream::Unix(s) => s.flush(),
            ControlStream::Tcp(s) => s.flush(),
        }
    }
}
