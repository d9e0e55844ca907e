//! How the simulated network treats a byte stream.

use veil_core::time::Duration;

/// The behaviour of one simulated stream connection (a TCP stand-in). A
/// stream never loses or reorders bytes; it delays them and delivers them in
/// chunks of any size, which is exactly what a real TCP socket read does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConditions {
    /// One-way delay of every byte.
    pub latency: Duration,
    /// Extra random delay per chunk, up to this much (order is kept).
    pub jitter: Duration,
    /// Chunks are cut at random sizes between 1 and this many bytes.
    /// `usize::MAX` delivers each write whole.
    pub max_chunk: usize,
    /// The wire's capacity in bytes per second, or `None` for unlimited.
    /// A limited wire serialises bytes one after another, and the sender
    /// has a socket send buffer of [`SEND_BUFFER`] bytes: while that much
    /// is waiting to go out, the simulator takes nothing more from the
    /// node for that link, so the node's own send queue fills, exactly as
    /// it does behind a slow TCP connection.
    pub bandwidth: Option<u64>,
}

/// Bytes a bandwidth-limited wire accepts from its sender beyond what it
/// has put on the wire (a small kernel socket send buffer).
pub const SEND_BUFFER: u64 = 32 * 1024;

impl StreamConditions {
    /// A quiet LAN: 1 ms latency, writes delivered whole.
    pub const LAN: StreamConditions = StreamConditions {
        latency: Duration::from_millis(1),
        jitter: Duration::ZERO,
        max_chunk: usize::MAX,
        bandwidth: None,
    };

    /// A hostile-looking path: 20 ms ± 10 ms and reads of 1..=97 bytes.
    pub const CHOPPY: StreamConditions = StreamConditions {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(10),
        max_chunk: 97,
        bandwidth: None,
    };

    /// A slow link: the LAN's latency at 1 MB/s, a bottleneck on which
    /// circuits contend.
    pub const SLOW: StreamConditions = StreamConditions {
        latency: Duration::from_millis(1),
        jitter: Duration::ZERO,
        max_chunk: usize::MAX,
        bandwidth: Some(1_000_000),
    };
}

impl Default for StreamConditions {
    fn default() -> Self {
        StreamConditions::LAN
    }
}
