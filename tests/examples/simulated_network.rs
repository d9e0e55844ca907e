//! A whole veil network in one process on a simulated clock: 20 nodes boot
//! from one bootstrap address, learn each other by gossip, dial each other
//! on demand, and carry messages over 3-relay circuits; one destination
//! replies without learning who asked. Prints a summary; exits non-zero if
//! anything was lost.
//!
//! Run: `cargo run -p veil-sim --example simulated_network`

use veil_core::message::Sender;
use veil_core::node::{AddBootstrap, Event, NodeConfig, Reply};
use veil_core::time::Duration;
use veil_sim::Sim;

const NODES: usize = 20;
const MESSAGES: usize = 200;
const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn main() {
    if let Err(reason) = run() {
        eprintln!("simulated_network: {reason}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let config = NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        gossip_interval: Duration::from_secs(1),
        ..NodeConfig::default()
    };
    let mut sim = Sim::new(2026);
    for _ in 0..NODES {
        sim.add_addressed_node(config, 32);
    }
    let boot = Sim::address_of(0);
    for i in 1..NODES {
        sim.handle(i, AddBootstrap::address(boot)).unwrap();
    }
    let start = sim.now();
    let booted = sim.run_until_true(Duration::from_secs(120), |sim| {
        (0..NODES).all(|i| sim.node(i).core.node_table().len() >= 8)
    });
    if !booted {
        return Err("nodes did not learn each other within 120 s".into());
    }
    println!(
        "{NODES} nodes booted from one bootstrap address; all know >= 8 others after {} (simulated)",
        sim.now().saturating_since(start)
    );

    let send_start = sim.now();
    for i in 0..MESSAGES {
        let from = 1 + i % (NODES - 1);
        let to = 1 + (i * 7 + 3) % (NODES - 1);
        let to = if to == from { 1 + to % (NODES - 1) } else { to };
        let body = format!("message {i} from node {from} to node {to}");
        while sim.send_message(from, to, body.as_bytes()).is_err() {
            sim.run_for(Duration::from_millis(50));
        }
    }
    let total = |sim: &Sim| {
        (0..NODES)
            .map(|i| sim.node(i).delivered.len())
            .sum::<usize>()
    };
    if !sim.run_until_true(Duration::from_secs(120), |sim| total(sim) >= MESSAGES) {
        return Err(format!(
            "only {} of {MESSAGES} messages arrived",
            total(&sim)
        ));
    }
    let elapsed = sim.now().saturating_since(send_start);
    // Let the last acknowledgements travel back.
    sim.run_for(Duration::from_secs(2));

    let mut build_times: Vec<u64> = Vec::new();
    let mut acknowledged = 0usize;
    for i in 0..NODES {
        for (_, event) in &sim.node(i).events {
            match event {
                Event::CircuitReady { built_in, .. } => build_times.push(built_in.as_micros()),
                Event::MessageAcknowledged { .. } => acknowledged += 1,
                _ => {}
            }
        }
    }
    build_times.sort_unstable();
    let median = build_times.get(build_times.len() / 2).copied().unwrap_or(0);
    println!(
        "{MESSAGES} messages delivered exactly once in {elapsed} (simulated), {acknowledged} acknowledged"
    );
    println!(
        "{} circuits built (3 relays + destination), median build time {} ms on 1 ms links",
        build_times.len(),
        median / 1_000
    );

    // The destination answers the first message it got, anonymously.
    let dest = (0..NODES)
        .find(|&i| !sim.node(i).delivered.is_empty())
        .ok_or("no node received anything")?;
    let first = sim.node(dest).delivered[0].clone();
    let Sender::Anonymous(reply_to) = first.sender else {
        return Err("a message arrived with a known sender".into());
    };

    sim.handle(
        dest,
        Reply {
            to: reply_to,
            message: b"got it",
        },
    )
    .map_err(|e| format!("reply: {e}"))?;
    sim.run_for(Duration::from_secs(2));
    let replied = (0..NODES).find(|&i| {
        sim.node(i)
            .delivered
            .iter()
            .any(|d| d.bytes == b"got it" && matches!(d.sender, Sender::Node(_)))
    });
    match replied {
        Some(i) => println!("node {dest} replied over the same circuit; node {i} got the reply"),
        None => return Err("the reply did not arrive".into()),
    }
    let digest: String = sim
        .transcript_digest()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("transcript digest {digest} (same seed, same bytes)");
    println!("ok");
    Ok(())
}
