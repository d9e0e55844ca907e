use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;

use super::schedule::{exponential, Front};
use crate::time::{Duration, Instant};

#[test]
fn exponential_gaps_have_the_mean_asked_for_and_spread_as_an_exponential() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mean = Duration::from_millis(200);
    let draws: heapless::Vec<u64, 4000> = (0..4000)
        .map(|_| exponential(&mut rng, mean).as_micros())
        .collect();
    let average = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
    assert!((average - 200_000.0).abs() < 10_000.0, "mean {average} µs");
    // An exponential's median is ln 2 of its mean (139 ms here); a uniform
    // or a constant gap of the same mean would put it at 200 ms.
    let below = draws.iter().filter(|&&d| d < 138_629).count();
    assert!(
        (1900..2100).contains(&below),
        "{below} of 4000 below the median"
    );
}

#[test]
fn a_front_schedule_sends_exactly_its_cells_in_increasing_time() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let start = Instant::from_millis(10_000);
    let mut front = Front::new(&mut rng, start, 50, Duration::from_secs(2)).unwrap();
    let mut times: heapless::Vec<Instant, 64> = heapless::Vec::new();
    loop {
        times.push(front.next_at()).unwrap();
        if !front.advance(&mut rng) {
            break;
        }
    }
    assert_eq!(times.len(), 50);
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert!(times[0] >= start);
    assert!(Front::new(&mut rng, start, 0, Duration::from_secs(2)).is_none());
}

#[test]
fn front_times_follow_the_rayleigh_distribution() {
    // Over many schedules, the share of cells before the scale `w` is the
    // Rayleigh CDF at w: 1 − e^(−1/2) ≈ 0.393; before 2w, 1 − e^(−2) ≈
    // 0.865. Uniform times over the same span would give other shares.
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let w = Duration::from_secs(4);
    let (mut total, mut before_w, mut before_2w) = (0u32, 0u32, 0u32);
    for _ in 0..200 {
        let mut front = Front::new(&mut rng, Instant::ZERO, 40, w).unwrap();
        loop {
            let t = front.next_at().as_micros();
            total += 1;
            before_w += u32::from(t < 4_000_000);
            before_2w += u32::from(t < 8_000_000);
            if !front.advance(&mut rng) {
                break;
            }
        }
    }
    let share = |n: u32| f64::from(n) / f64::from(total);
    assert!(
        (share(before_w) - 0.393).abs() < 0.02,
        "{}",
        share(before_w)
    );
    assert!(
        (share(before_2w) - 0.865).abs() < 0.02,
        "{}",
        share(before_2w)
    );
}
