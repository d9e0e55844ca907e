//! The runtime's clock: std's monotonic clock, as core instants.
//!
//! The core counts microseconds from an origin the caller picks. The
//! runtime picks the moment it was built, so instants stay small and every
//! node's time starts near zero, as in the simulator.

use std::time::{SystemTime, UNIX_EPOCH};

use veil_core::time::Instant;

/// Maps `std::time::Instant` to core [`Instant`]s relative to a start.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: std::time::Instant,
    unix_at_start: u64,
}

impl Clock {
    /// A clock whose origin is now.
    pub fn start() -> Self {
        // A wall clock before 1970 only makes descriptors look old; it must
        // not stop the node.
        let unix_at_start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Clock {
            start: std::time::Instant::now(),
            unix_at_start,
        }
    }

    /// Microseconds since the origin.
    pub fn now(&self) -> Instant {
        let micros = self.start.elapsed().as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// Unix time, in seconds, at the origin: what the node needs as
    /// `NodeConfig::unix_time_at_zero` to stamp and check descriptors.
    pub fn unix_time_at_zero(&self) -> u64 {
        self.unix_at_start
    }

    /// How long from `now` until `deadline`; zero if it has passed.
    pub fn until(now: Instant, deadline: Instant) -> std::time::Duration {
        std::time::Duration::from_micros(deadline.saturating_since(now).as_micros())
    }
}
