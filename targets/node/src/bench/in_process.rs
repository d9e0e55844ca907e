//! Part one of `veil bench`: a network of hosts in this process. Times
//! circuit builds, runs a bulk transfer through one circuit, and estimates
//! the memory per node from the process's peak RSS.

use std::time::Duration;

use super::bulk::{self, mib, Bulk};
use super::circuit_builds::{self, Build};
use super::{memory, Sizes, DISCOVERY_CAP};
use crate::local_network::{self, NetworkSpec, Transports};

/// Notices the main thread may lag behind by.
const NOTICE_QUEUE: usize = 16 * 1024;
/// Node `i` listens on `127.(FIRST_SUBNET + i).0.1`.
const FIRST_SUBNET: u8 = 110;

/// What part one measured, for one transport.
pub(super) struct InProcess {
    pub discovery: Duration,
    pub builds: Vec<Build>,
    pub bulk: Option<Bulk>,
    pub rss_baseline_kib: u64,
    pub rss_peak_kib: u64,
}

/// Runs part one over `transports`; prints progress as it goes.
pub(super) fn run(sizes: Sizes, seed: u64, transports: Transports) -> Result<InProcess, String> {
    let rss_baseline_kib = memory::proc_status_kib("self", "VmHWM")?;
    let network = local_network::start_in_process(&NetworkSpec {
        nodes: sizes.nodes,
        transports,
        first_subnet: FIRST_SUBNET,
        // Room for a link to every other node.
        links: sizes.nodes.saturating_add(8),
    })?;
    let hosts = network.hosts();
    let ids = network.ids();
    let notices = network.subscribe(NOTICE_QUEUE)?;
    let discovery = network.wait_for_discovery(DISCOVERY_CAP)?;
    println!(
        "  discovery: every node knows the {} others after {:.1} s",
        sizes.nodes.saturating_sub(1),
        discovery.as_secs_f64()
    );

    let pairs = circuit_builds::shuffled_pairs(sizes.nodes, seed);
    let builds = circuit_builds::time_builds(hosts, &ids, &notices, &pairs, sizes.builds)?;
    println!("  circuits: {} builds timed", builds.len());

    let bulk = if sizes.bulk_mib > 0 {
        // The first pair already has its circuit (and a warm-up message
        // makes sure): the transfer measures the circuit, not its build.
        let (from, to) = pairs.first().copied().unwrap_or((0, 1));
        let b = bulk::in_process(hosts, &ids, &notices, from, to, sizes.bulk_mib)?;
        println!(
            "  bulk: {:.1} MiB from node {from} to node {to} in {:.2} s",
            mib(b.bytes),
            b.elapsed.as_secs_f64()
        );
        Some(b)
    } else {
        None
    };
    let rss_peak_kib = memory::proc_status_kib("self", "VmHWM")?;
    network.shutdown()?;
    Ok(InProcess {
        discovery,
        builds,
        bulk,
        rss_baseline_kib,
        rss_peak_kib,
    })
}
