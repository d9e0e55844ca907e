//! Round-trip time estimation from keepalive pings (RFC 6298 smoothing).

use crate::time::Duration;

/// Smoothed round-trip time of a link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttEstimator {
    latest: Option<Duration>,
    smoothed: Option<Duration>,
    variance: Duration,
    min: Option<Duration>,
}

impl RttEstimator {
    /// No sample yet (a `const`, for state built in place).
    pub const fn new() -> Self {
        RttEstimator {
            latest: None,
            smoothed: None,
            variance: Duration::ZERO,
            min: None,
        }
    }

    /// Folds in one sample: `srtt = 7/8 srtt + 1/8 sample`,
    /// `rttvar = 3/4 rttvar + 1/4 |srtt - sample|`.
    pub fn update(&mut self, sample: Duration) {
        let s = sample.as_micros();
        self.latest = Some(sample);
        self.min = Some(match self.min {
            Some(m) if m <= sample => m,
            _ => sample,
        });
        match self.smoothed {
            None => {
                self.smoothed = Some(sample);
                self.variance = Duration::from_micros(s / 2);
            }
            Some(srtt) => {
                let srtt = srtt.as_micros();
                let diff = srtt.abs_diff(s);
                let var = self.variance.as_micros();
                self.variance =
                    Duration::from_micros((var / 4).saturating_mul(3).saturating_add(diff / 4));
                self.smoothed = Some(Duration::from_micros(
                    (srtt / 8).saturating_mul(7).saturating_add(s / 8),
                ));
            }
        }
    }

    /// The smoothed RTT, once a sample exists.
    pub fn smoothed(&self) -> Option<Duration> {
        self.smoothed
    }

    /// The most recent sample.
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }

    /// The smallest sample seen.
    pub fn min(&self) -> Option<Duration> {
        self.min
    }

    /// The RTT variation estimate.
    pub fn variance(&self) -> Duration {
        self.variance
    }

    /// The retransmission timeout of RFC 6298 §2, `srtt + 4·rttvar`, or
    /// its initial 1 s before any sample: how long an answer may take
    /// before it counts as late.
    pub fn rto(&self) -> Duration {
        match self.smoothed {
            Some(srtt) => srtt.saturating_add(Duration::from_micros(
                self.variance.as_micros().saturating_mul(4),
            )),
            None => INITIAL_RTO,
        }
    }
}

/// RFC 6298 §2.1's initial RTO.
const INITIAL_RTO: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rto_is_srtt_plus_four_rttvar_and_one_second_before_a_sample() {
        let mut rtt = RttEstimator::default();
        assert_eq!(rtt.rto(), Duration::from_secs(1));
        rtt.update(Duration::from_millis(100));
        // srtt 100 ms, rttvar 50 ms.
        assert_eq!(rtt.rto(), Duration::from_millis(300));
    }

    #[test]
    fn smoothing_follows_rfc6298() {
        let mut rtt = RttEstimator::default();
        assert_eq!(rtt.smoothed(), None);
        rtt.update(Duration::from_millis(100));
        assert_eq!(rtt.smoothed(), Some(Duration::from_millis(100)));
        assert_eq!(rtt.variance(), Duration::from_millis(50));
        rtt.update(Duration::from_millis(20));
        assert_eq!(rtt.smoothed(), Some(Duration::from_millis(90)));
        assert_eq!(rtt.variance(), Duration::from_micros(57_500));
        assert_eq!(rtt.min(), Some(Duration::from_millis(20)));
        assert_eq!(rtt.latest(), Some(Duration::from_millis(20)));
    }
}
