//! Version 2's link handshake against version 1's cryptography, as a ratio
//! measured in alternating rounds in one process.
//!
//! Criterion times the two benches minutes apart, and on a shared machine
//! the load of the moment moves each by ±15 %, more than the difference to
//! be measured. Here every round times a batch of each kind back to back,
//! so a load change hits both about equally, and the median of the per-round
//! ratios discards the rounds a spike hit. Handshake seeds step on every
//! handshake, so the key draws average out (two per side).
//!
//! Run: `cargo run --release -p veil-core --example handshake_ratio -- [rounds] [batch]`

use std::time::Instant;

#[path = "../benches/support/handshakes.rs"]
mod handshakes;
use handshakes::{handshake, handshake_v1_equivalent, side};

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let batch: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let a = side(1);
    let b = side(2);
    let mut run = 0u32;
    let mut ratios = Vec::with_capacity(rounds);
    let (mut v2_total, mut v1_total) = (0f64, 0f64);
    for round in 0..rounds {
        // Alternate which kind goes first, so neither always runs warm.
        let mut times = [0f64; 2];
        for kind in [round % 2, 1 - round % 2] {
            let started = Instant::now();
            for _ in 0..batch {
                run = run.wrapping_add(1);
                if kind == 0 {
                    std::hint::black_box(handshake(&a, &b, run));
                } else {
                    handshake_v1_equivalent(&a, &b, run);
                }
            }
            times[kind] = started.elapsed().as_secs_f64() / f64::from(batch);
        }
        v2_total += times[0];
        v1_total += times[1];
        ratios.push(times[0] / times[1]);
    }
    ratios.sort_by(f64::total_cmp);
    let quantile = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    let n = rounds as f64;
    println!(
        "rounds {rounds} x {batch} handshakes each kind; mean v2 {:.1} us, v1 {:.1} us",
        v2_total / n * 1e6,
        v1_total / n * 1e6
    );
    println!(
        "v2/v1 ratio: median {:.3} (quartiles {:.3}-{:.3}; ratio of means {:.3})",
        quantile(0.5),
        quantile(0.25),
        quantile(0.75),
        v2_total / v1_total
    );
}
