//! Messages streamed through a whole 3-relay circuit, every node in this
//! process: the CPU cost of the full node path (link open/seal at each hop,
//! CGO layers, fragmentation, reassembly, ACK and CREDIT, flow control),
//! summed over the client, three relays and the destination.
//!
//! Run: `cargo bench -p veil-sim --bench circuit_stream`
//!
//! The simulator adds its own work (it hashes every transmitted byte into
//! the run's transcript, and copies bytes through its queues), so this is
//! an upper bound on the nodes' cost.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use veil_core::node::{AddBootstrap, NodeConfig};
use veil_core::time::Duration;
use veil_sim::{Sim, SIM_MSG};

const NODES: usize = 5;
const MESSAGES: usize = 16;

fn acked(sim: &Sim, node: usize) -> u64 {
    sim.node(node).core.stats().messages_acknowledged
}

fn network() -> Sim {
    let config = NodeConfig {
        unix_time_at_zero: 1_800_000_000,
        gossip_interval: Duration::from_secs(1),
        extend_to_private_addresses: true,
        ..NodeConfig::default()
    };
    let mut sim = Sim::new(11);
    for _ in 0..NODES {
        sim.add_addressed_node(config, 8);
    }
    for i in 1..NODES {
        sim.handle(i, AddBootstrap::address(Sim::address_of(0)))
            .unwrap();
    }
    let ready = sim.run_until_true(Duration::from_secs(120), |sim| {
        sim.node(1).core.node_table().len() == NODES - 1
    });
    assert!(ready, "node 1 learned every other node");
    // Build the circuit once; the bench streams over it.
    while sim.send_message(1, 4, b"warm-up").is_err() {
        sim.run_for(Duration::from_millis(10));
    }
    assert!(sim.run_until_true(Duration::from_secs(30), |sim| acked(sim, 1) == 1));
    sim
}

fn bench_stream(c: &mut Criterion) {
    let mut sim = network();
    let message = vec![0x5au8; SIM_MSG];
    let mut group = c.benchmark_group("circuit");
    group.throughput(Throughput::Bytes((MESSAGES * SIM_MSG) as u64));
    group.sample_size(10);
    group.bench_function("stream_256_KiB_through_3_relays_in_process", |b| {
        b.iter(|| {
            let before = acked(&sim, 1);
            let mut sent = 0;
            while sent < MESSAGES {
                match sim.send_message(1, 4, &message) {
                    Ok(_) => sent += 1,
                    Err(_) => sim.run_for(Duration::from_millis(1)),
                }
            }
            assert!(sim.run_until_true(Duration::from_secs(60), |sim| {
                acked(sim, 1) >= before + MESSAGES as u64
            }));
            // Keep the simulator's records from growing without bound.
            for i in 0..NODES {
                sim.node_mut(i).delivered.clear();
                sim.node_mut(i).events.clear();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_stream);
criterion_main!(benches);
