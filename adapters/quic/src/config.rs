//! Settings of a [`QuicTransport`](crate::QuicTransport).

use std::time::Duration;

/// The ALPN token veil offers and accepts by default: HTTP/3's, so that a
/// passive observer classifying QUIC by ALPN sees what most QUIC traffic
/// shows. It names nothing of veil. (An active prober speaking HTTP/3 gets
/// no HTTP/3 answer: see `docs/quic.md`.)
pub const DEFAULT_ALPN: &[u8] = b"h3";

/// Largest UDP payload this transport sends or accepts with the default
/// [`QuicConfig::max_mtu`]: the `max_udp_payload_size` it then advertises
/// is 1472 (quinn's default, an Ethernet frame less the IPv4 and UDP
/// headers), and path MTU discovery never goes past 1452; a buffer of this
/// size holds any datagram. With a larger `max_mtu` (a socket on loopback,
/// [`QuicConfig::loopback_max_mtu`]) datagrams go up to `max_mtu` bytes.
pub const MAX_DATAGRAM: usize = 1500;

/// The default upper bound of path MTU discovery: quinn's, an Ethernet
/// frame less IPv6 and UDP headers (1500 - 40 - 8), so one value serves
/// both address families on the common path.
pub const DEFAULT_MAX_MTU: u16 = 1452;

/// The default upper bound of path MTU discovery on a socket bound to a
/// loopback address ([`QuicConfig::loopback_max_mtu`]).
pub const DEFAULT_LOOPBACK_MAX_MTU: u16 = 16_384;

/// How a transport behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuicConfig {
    /// The ALPN protocol offered (client) and required (server). Both ends
    /// must agree; the default is [`DEFAULT_ALPN`].
    pub alpn: Vec<u8>,
    /// Accept incoming connections.
    pub accept: bool,
    /// Allow outgoing connections.
    pub dial: bool,
    /// Connections (both directions) at once; further incoming ones are
    /// refused and dials fail.
    pub max_connections: usize,
    /// A connection that hears nothing for this long closes. It also bounds
    /// how long a dial waits for an answer. Longer than the link's own
    /// idle timeout (60 s by default), so the veil link decides when a
    /// peer is dead; QUIC only reaps what the link no longer watches.
    pub idle_timeout: Duration,
    /// Bytes the peer may send on one stream (the link stream, or one
    /// circuit's) beyond what the node has consumed: the backpressure bound
    /// of one stream in the receiving direction. Keep it above a circuit's
    /// credit window (128 cells, about 66 KB), so that between well-behaved
    /// nodes the circuit window, not QUIC, limits a circuit.
    pub stream_window: u32,
    /// Bytes the peer may send on all streams of a connection together
    /// beyond what the node has consumed. Stalled circuits hold their
    /// unread cells against it, so it bounds memory per connection, and
    /// circuits stay independent until stalled ones hold all of it
    /// (`connection_window / stream_window` of them, at the least).
    pub connection_window: u32,
    /// Circuit streams the peer may have open towards us at once (each
    /// circuit on a link has one). Beyond it the peer's new circuits wait.
    pub max_circuit_streams: u32,
    /// Bytes written to the link stream but not yet acknowledged by the
    /// peer, at most. This is the backpressure bound in the sending
    /// direction.
    pub send_window: u64,
    /// After [`close`](crate::QuicTransport::close), how long to wait for
    /// the peer to acknowledge what was written (usually the link's `Close`
    /// frame) before closing the connection anyway.
    pub linger: Duration,
    /// Path MTU discovery's upper bound: the largest UDP payload a
    /// connection probes for ([`DEFAULT_MAX_MTU`]). Packets start at QUIC's
    /// 1200 bytes and grow to what the path takes, at most this; the peer's
    /// `max_udp_payload_size` (1472 between veil nodes off loopback) caps it
    /// too. Above 1472 the endpoint advertises it as its own
    /// `max_udp_payload_size`.
    pub max_mtu: u16,
    /// `max_mtu` for a [`QuicSocket`](crate::QuicSocket) bound to a
    /// loopback address ([`DEFAULT_LOOPBACK_MAX_MTU`]), used when larger.
    /// Such a socket can only reach peers on the same host, over an
    /// interface whose MTU is 65,536 bytes, and no wire observer sees its
    /// packets; larger datagrams there save quinn-proto's and the kernel's
    /// per-packet work (the in-process networks of `veil bench` and the
    /// tests run there). The endpoint then also advertises it as its
    /// `max_udp_payload_size` (else 1472), since a peer may send no larger.
    pub loopback_max_mtu: u16,
}

impl Default for QuicConfig {
    fn default() -> Self {
        QuicConfig {
            alpn: DEFAULT_ALPN.to_vec(),
            accept: true,
            dial: true,
            max_connections: 256,
            idle_timeout: Duration::from_secs(90),
            stream_window: 256 * 1024,
            connection_window: 4 * 1024 * 1024,
            // With the link stream, 1,024 bidirectional streams
            // (`transport/parameters.rs`).
            max_circuit_streams: 1023,
            send_window: 4 * 1024 * 1024,
            linger: Duration::from_secs(2),
            max_mtu: DEFAULT_MAX_MTU,
            loopback_max_mtu: DEFAULT_LOOPBACK_MAX_MTU,
        }
    }
}
