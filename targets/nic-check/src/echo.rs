//! A TCP echo service on one socket: whatever a client sends comes back;
//! when the client closes, the socket closes too and listens again.

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;

/// The echo port (RFC 862).
pub const PORT: u16 = 7;

/// One socket's echo service.
#[derive(Debug)]
pub struct Echo {
    handle: SocketHandle,
    in_session: bool,
    session_bytes: usize,
}

impl Echo {
    pub fn new(handle: SocketHandle) -> Self {
        Echo {
            handle,
            in_session: false,
            session_bytes: 0,
        }
    }

    /// Moves bytes back to the client and keeps the socket listening.
    /// Returns the bytes echoed in a session that has just ended.
    pub fn poll(&mut self, sockets: &mut SocketSet<'_>) -> Option<usize> {
        let socket = sockets.get_mut::<tcp::Socket>(self.handle);
        let mut ended = None;
        if !socket.is_open() {
            if self.in_session {
                ended = Some(self.session_bytes);
                self.in_session = false;
                self.session_bytes = 0;
            }
            // A fresh socket cannot fail to listen on a non-zero port.
            let _ = socket.listen(PORT);
        }
        if socket.is_active() {
            self.in_session = true;
        }
        let mut chunk = [0u8; 256];
        while socket.can_recv() {
            let room = socket.send_capacity() - socket.send_queue();
            let want = room.min(chunk.len());
            if want == 0 {
                break;
            }
            let Ok(got) = socket.recv_slice(&mut chunk[..want]) else {
                break;
            };
            if got == 0 {
                break;
            }
            let sent = socket.send_slice(&chunk[..got]).unwrap_or(0);
            self.session_bytes += sent;
        }
        if socket.state() == tcp::State::CloseWait && socket.send_queue() == 0 {
            socket.close();
        }
        ended
    }
}
