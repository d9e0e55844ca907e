//! A capture of link bytes for a bug report: every byte each TCP link sends
//! and receives, as a pcap file that Wireshark or tcpdump opens. Each link
//! is a TCP flow between its real addresses, with running sequence
//! numbers, so the tools follow and reassemble it ("Follow TCP stream").
//!
//! It holds what the wire carries (link frames are encrypted), no secret:
//! unlike a trace, a capture can be attached to a bug report. It is off
//! unless the operator turns it on ([`Runtime::capture_links`](crate::Runtime::capture_links),
//! `veil node --capture FILE`). QUIC links are not in it: their packets are
//! protected by QUIC and standard tools capture them as they are.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant as WallInstant;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use veil_core::node::LinkId;

/// The most payload one captured packet carries; longer writes are split.
const MAX_PAYLOAD: usize = 32 * 1024;

/// A TCP flow of one link: its ends and how many bytes went each way.
#[derive(Debug, Clone, Copy)]
struct Flow {
    local: SocketAddr,
    remote: SocketAddr,
    /// Sequence number of our next byte.
    sent: u32,
    /// Sequence number of the peer's next byte.
    received: u32,
}

/// The file under the pcap writer, shared so that the runtime can flush it
/// at every wait (the pcap writer keeps no handle of its own for that).
#[derive(Debug, Clone)]
struct SharedFile(Arc<Mutex<BufWriter<File>>>);

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock()?.flush()
    }
}

impl SharedFile {
    fn lock(&self) -> io::Result<std::sync::MutexGuard<'_, BufWriter<File>>> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("the capture file's lock is poisoned"))
    }
}

/// Writes captured link bytes to a pcap file.
pub struct Capture {
    writer: PcapWriter<SharedFile>,
    file: SharedFile,
    flows: HashMap<LinkId, Flow>,
    start: WallInstant,
    packet: Vec<u8>,
    /// A write failed: capturing stopped (the node goes on).
    failed: Option<io::Error>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("links", &self.flows.len())
            .finish_non_exhaustive()
    }
}

/// Why a capture could not start.
#[derive(Debug)]
pub enum CaptureError {
    /// The file could not be created.
    Create(io::Error),
    /// The pcap header could not be written.
    Header(String),
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::Create(e) => write!(
                f,
                "cannot create the capture file: {e}; choose a writable path"
            ),
            CaptureError::Header(e) => write!(f, "cannot write the capture's header: {e}"),
        }
    }
}

impl std::error::Error for CaptureError {}

impl Capture {
    /// Creates `path` (or empties the file there once its mode is 0600),
    /// mode 0600, never through a symbolic link, and writes the pcap header
    /// (raw IP packets, microsecond timestamps).
    pub fn create(path: &Path) -> Result<Self, CaptureError> {
        let file = crate::private_file::create_private(path).map_err(CaptureError::Create)?;
        let header = PcapHeader {
            datalink: DataLink::RAW,
            ..PcapHeader::default()
        };
        let file = SharedFile(Arc::new(Mutex::new(BufWriter::new(file))));
        let writer = PcapWriter::with_header(file.clone(), header)
            .map_err(|e| CaptureError::Header(e.to_string()))?;
        Ok(Capture {
            writer,
            file,
            flows: HashMap::new(),
            start: WallInstant::now(),
            packet: Vec::new(),
            failed: None,
        })
    }

    /// A TCP link opened between `local` and `remote`.
    pub(crate) fn link_opened(&mut self, link: LinkId, local: SocketAddr, remote: SocketAddr) {
        self.flows.insert(
            link,
            Flow {
                local,
                remote,
                sent: 1,
                received: 1,
            },
        );
    }

    /// The link is gone.
    pub(crate) fn link_closed(&mut self, link: LinkId) {
        self.flows.remove(&link);
    }

    /// Bytes this node wrote on `link`.
    pub(crate) fn sent(&mut self, link: LinkId, bytes: &[u8]) {
        self.record(link, true, bytes);
    }

    /// Bytes this node read on `link`.
    pub(crate) fn received(&mut self, link: LinkId, bytes: &[u8]) {
        self.record(link, false, bytes);
    }

    fn record(&mut self, link: LinkId, outbound: bool, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        let Some(flow) = self.flows.get_mut(&link) else {
            return;
        };
        let timestamp = self.start.elapsed();
        for chunk in bytes.chunks(MAX_PAYLOAD) {
            let (from, to, seq, ack) = if outbound {
                (flow.local, flow.remote, flow.sent, flow.received)
            } else {
                (flow.remote, flow.local, flow.received, flow.sent)
            };
            let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            if outbound {
                flow.sent = flow.sent.wrapping_add(len);
            } else {
                flow.received = flow.received.wrapping_add(len);
            }
            self.packet.clear();
            if let Err(e) = tcp_packet(&mut self.packet, from, to, seq, ack, chunk) {
                self.failed = Some(e);
                return;
            }
            let orig_len = u32::try_from(self.packet.len()).unwrap_or(u32::MAX);
            let packet = PcapPacket::new(timestamp, orig_len, &self.packet);
            if let Err(e) = self.writer.write_packet(&packet) {
                self.failed = Some(io::Error::other(e.to_string()));
                return;
            }
        }
    }

    /// Writes buffered packets out; reports a failure once (capturing has
    /// stopped then).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.file.flush()
    }
}

/// An IPv4 or IPv6 TCP segment (ACK and PSH set) carrying `payload`.
fn tcp_packet(
    out: &mut Vec<u8>,
    from: SocketAddr,
    to: SocketAddr,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> io::Result<()> {
    let builder = match (from.ip(), to.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => PacketBuilder::ipv4(a.octets(), b.octets(), 64),
        (a, b) => PacketBuilder::ipv6(v6(a), v6(b), 64),
    };
    builder
        .tcp(from.port(), to.port(), seq, u16::MAX)
        .ack(ack)
        .psh()
        .write(out, payload)
        .map_err(|e| io::Error::other(e.to_string()))
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}
