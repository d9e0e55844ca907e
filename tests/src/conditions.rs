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
}

impl StreamConditions {
    /// A quiet LAN: 1 ms latency, writes delivered whole.
    pub const LAN: StreamConditions = StreamConditions {
        latency: Duration::from_millis(1),
        jitter: Duration::ZERO,
        max_chunk: usize::MAX,
    };

    /// A hostile-looking path: 20 ms ± 10 ms and reads of 1..=97 bytes.
    pub const CHOPPY: StreamConditions = StreamConditions {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(10),
        max_chunk: 97,
    };
}

impl Default for StreamConditions {
    fn default() -> Self {
        StreamConditions::LAN
    }
}
