//! Random delays for the timing defences (relay spec §8.2, §9.1): the
//! exponential gaps of Poisson cover and of mixing delays, and the
//! uniform draws FRONT's Rayleigh times are made from. Each takes its
//! randomness as bits from the node's CSPRNG, so the same seed gives the
//! same delays.

use crate::time::Duration;

/// 2⁵³, the count of values of [`unit_open`].
const TWO_TO_53: f64 = 9_007_199_254_740_992.0;

/// A uniform value in `(0, 1]` from 53 of the bits of `bits`: never 0, so
/// that its logarithm is finite.
pub fn unit_open(bits: u64) -> f64 {
    (u64_to_f64(bits >> 11) + 1.0) / TWO_TO_53
}

/// A draw from the exponential distribution with mean `mean`, by
/// inverse transform of 53 of the bits of `bits`: `-mean · ln(u)` with `u`
/// uniform in `(0, 1]`. At most about 36.7 × `mean` (`u = 2⁻⁵³`).
pub fn exponential_delay(mean: Duration, bits: u64) -> Duration {
    if mean == Duration::ZERO {
        return Duration::ZERO;
    }
    micros_from_f64(-libm::log(unit_open(bits)) * u64_to_f64(mean.as_micros()))
}

/// `x` as the nearest `f64` (exact below 2⁵³), in two halves: core has
/// no lossless `From<u64>` for `f64`.
pub fn u64_to_f64(x: u64) -> f64 {
    let high = u32::try_from(x >> 32).unwrap_or(u32::MAX);
    let low = u32::try_from(x & 0xFFFF_FFFF).unwrap_or(0);
    f64::from(high) * 4_294_967_296.0 + f64::from(low)
}

/// Whole microseconds of a non-negative time. A float-to-int `as`
/// saturates (and takes NaN, which no draw here gives, to 0); it never
/// panics, and core has no `TryFrom<f64>`.
#[allow(clippy::as_conversions)]
pub fn micros_from_f64(micros: f64) -> Duration {
    Duration::from_micros(micros as u64)
}
