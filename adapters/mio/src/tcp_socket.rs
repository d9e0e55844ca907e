//! TCP sockets made with their buffer sizes set before they connect or
//! listen ([`RuntimeOptions::tcp_buffer`](crate::RuntimeOptions::tcp_buffer)).
//!
//! The order matters: a receive buffer shrunk after the handshake is
//! smaller than the window already offered to the peer, so the kernel
//! drops data that arrives inside that window and the peer only resends it
//! after a retransmission timeout (measured here: a relayed bulk transfer
//! fell to about 15 KB/s). Set before `listen`, the sizes are inherited by
//! every accepted socket; set before `connect`, they shape the window from
//! the first segment.

use std::io;
use std::net::{IpAddr, SocketAddr};

use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};

/// Connections waiting to be accepted (as `mio::net::TcpListener::bind`).
const BACKLOG: i32 = 1024;

fn socket(addr: SocketAddr, buffer: Option<usize>) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(bytes) = buffer {
        socket.set_send_buffer_size(bytes)?;
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A listener on `addr`; accepted sockets get `buffer` too.
pub(crate) fn listen(addr: SocketAddr, buffer: Option<usize>) -> io::Result<TcpListener> {
    if buffer.is_none() {
        return TcpListener::bind(addr);
    }
    let socket = socket(addr, buffer)?;
    // As mio does: a restarted node can listen on its port at once.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// A non-blocking connect to `addr` (finishing shows as writable), from
/// `source` when given and of the same address family.
pub(crate) fn connect(
    addr: SocketAddr,
    buffer: Option<usize>,
    source: Option<IpAddr>,
) -> io::Result<TcpStream> {
    let source = source.filter(|ip| ip.is_ipv4() == addr.is_ipv4());
    if buffer.is_none() && source.is_none() {
        return TcpStream::connect(addr);
    }
    let socket = socket(addr, buffer)?;
    if let Some(ip) = source {
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc_einprogress()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// `EINPROGRESS` on Linux, the only OS this crate's tests run on; other
/// Unixes report a pending connect as `WouldBlock` as well through std.
fn libc_einprogress() -> i32 {
    115
}
