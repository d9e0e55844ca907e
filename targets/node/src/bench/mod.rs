//! `veil bench`: circuit build time, bulk throughput and memory of a local
//! loopback network, in one run.
//!
//! Part one runs every node in this process (one `veil_mio::Runtime` per
//! thread, each on its own loopback network `127.N.0.1`, as `veil demo`
//! does) and measures:
//!
//! - 3-relay circuit build time: one small message at a time, each between
//!   a pair of nodes that has no circuit yet, so every message builds a
//!   fresh circuit on a fresh random path; the time is the core's
//!   `CircuitReady { built_in }` (from `CREATE` to the last hop's answer,
//!   including any link the path needed first). Builds whose path needed no
//!   new link are also reported on their own.
//! - bulk throughput through one circuit: 64 KiB messages, up to the node's
//!   outgoing message pool in flight, from the first send to the last
//!   acknowledgement, every message checked at the receiver. The transfer
//!   reuses the circuit the first timed build made (an untimed message
//!   first rebuilds it should it have closed), and the bench checks
//!   that the sender built no circuit while it ran (a broken circuit is
//!   always replaced by a new build), so the figure is one circuit's; if
//!   it did build one, the row says so instead of claiming one circuit.
//! - the process's peak RSS (`VmHWM`) over its baseline, divided by the
//!   nodes: an estimate that also counts the bench's own buffers.
//!
//! Part two (unless `--processes 0`) starts the same network as separate
//! `veil node` processes, drives circuits and a bulk transfer through their
//! control sockets, and reads each process's own `VmHWM`: the real peak
//! RSS per node.
//!
//! Both networks come from `local_network`. The files here:
//!
//! - this one: the flags, the sizes, the run;
//! - `report`: the results table;
//! - `in_process`: part one, built from `circuit_builds` (timing circuit
//!   builds) and `bulk` (the transfer through one circuit, and the
//!   figures both parts report);
//! - `processes`: part two, with its own transfer over control sockets;
//! - `memory`: reading a process's RSS;
//! - `ceiling`: the crypto ceiling of the same path, measured before and
//!   after the in-process networks so that the bulk figure can be given as
//!   a fraction of it.

mod bulk;
mod ceiling;
mod circuit_builds;
mod in_process;
mod memory;
mod processes;
mod report;

use std::time::{Duration, Instant};

use clap::Args;

use crate::local_network::Transports;

/// How long every node may take to learn every other.
const DISCOVERY_CAP: Duration = Duration::from_secs(30);

/// Message bytes per repeat of the crypto ceiling's measurement (about a
/// quarter of a second of CPU per repeat on this machine).
const CEILING_BYTES: usize = 16 * 1024 * 1024;

/// `veil bench` flags.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Small sizes (a smoke test): 6 nodes, 8 builds, 2 MiB bulk.
    #[arg(long)]
    quick: bool,
    /// Nodes in the in-process network [default: 10; quick: 6].
    #[arg(long)]
    nodes: Option<usize>,
    /// Circuit builds to time [default: 60; quick: 8].
    #[arg(long)]
    builds: Option<usize>,
    /// Mebibytes through one circuit [default: 100; quick: 2].
    #[arg(long)]
    bulk_mib: Option<usize>,
    /// Nodes run as separate `veil node` processes to measure each one's
    /// peak RSS; 0 skips that part [default: 8; quick: 5].
    #[arg(long)]
    processes: Option<usize>,
    /// Mebibytes sent between the processes [default: 32; quick: 1].
    #[arg(long)]
    process_bulk_mib: Option<usize>,
    /// Seed for the choice of pairs (random if not given).
    #[arg(long)]
    seed: Option<u64>,
    /// Log level for the nodes (off, error, warn, info, debug, trace).
    #[arg(long, default_value = "warn")]
    log_level: String,
    /// Which transport the in-process network's links use: tcp, quic, or
    /// both, one network after the other, in the same run [default: both
    /// when built with QUIC].
    #[arg(long, value_enum)]
    transport: Option<BenchTransport>,
}

/// The links of the in-process network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchTransport {
    /// TCP only.
    Tcp,
    /// QUIC only (every node listens on QUIC, dials QUIC, bootstraps over it).
    Quic,
    /// TCP, then QUIC.
    Both,
}

impl BenchTransport {
    /// The in-process networks to run, one after the other.
    fn networks(self) -> Vec<Transports> {
        match self {
            BenchTransport::Tcp => vec![Transports::Tcp],
            BenchTransport::Quic => vec![Transports::Quic],
            BenchTransport::Both => vec![Transports::Tcp, Transports::Quic],
        }
    }
}

/// The sizes one run uses.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    nodes: usize,
    builds: usize,
    bulk_mib: usize,
    processes: usize,
    process_bulk_mib: usize,
}

impl Sizes {
    fn from_args(args: &BenchArgs) -> Self {
        let (nodes, builds, bulk_mib, processes, process_bulk_mib) = if args.quick {
            (6, 8, 2, 5, 1)
        } else {
            (10, 60, 100, 8, 32)
        };
        Sizes {
            nodes: args.nodes.unwrap_or(nodes),
            builds: args.builds.unwrap_or(builds),
            bulk_mib: args.bulk_mib.unwrap_or(bulk_mib),
            processes: args.processes.unwrap_or(processes),
            process_bulk_mib: args.process_bulk_mib.unwrap_or(process_bulk_mib),
        }
    }
}

/// Runs the benchmark and prints the table. `Err` is one line.
pub fn run(args: BenchArgs) -> Result<(), String> {
    crate::logger::init(
        crate::logger::parse_filter(&args.log_level).map_err(|e| e.to_string())?,
        crate::logger::LogFormat::Text,
    );
    let sizes = Sizes::from_args(&args);
    if !(5..=100).contains(&sizes.nodes) {
        return Err(format!(
            "--nodes {}: a 3-relay circuit needs at least 5 nodes (and this bench runs at most 100)",
            sizes.nodes
        ));
    }
    if sizes.processes != 0 && !(5..=100).contains(&sizes.processes) {
        return Err(format!(
            "--processes {}: use 0 (skip) or 5 to 100",
            sizes.processes
        ));
    }
    if sizes.builds == 0 {
        return Err("--builds must be at least 1".into());
    }
    let seed = match args.seed {
        Some(s) => s,
        None => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| format!("no OS entropy: {e}"))?;
            u64::from_le_bytes(bytes)
        }
    };
    let started = Instant::now();
    let profile = if cfg!(debug_assertions) {
        "DEBUG build: figures are not representative, use --release"
    } else {
        "release build"
    };
    let default = if cfg!(feature = "quic") {
        BenchTransport::Both
    } else {
        BenchTransport::Tcp
    };
    let networks = args.transport.unwrap_or(default).networks();
    if networks.contains(&Transports::Quic) && !cfg!(feature = "quic") {
        return Err(
            "--transport quic: this veil was built without QUIC (cargo feature `quic`)".into(),
        );
    }
    // The ceiling is measured before and after the networks, and each
    // party's faster figure counts: a shared machine slows down for
    // seconds at a time, and a ceiling taken in such a moment would flatter
    // the fraction.
    let ceiling_before = (sizes.bulk_mib > 0)
        .then(|| ceiling::measure(CEILING_BYTES))
        .transpose()?;
    let mut in_process_runs = Vec::new();
    for transport in networks {
        println!(
            "veil bench: {} nodes in this process on loopback {}, 3-relay circuits ({profile}, seed {seed})",
            sizes.nodes,
            transport.name()
        );
        in_process_runs.push((transport, in_process::run(sizes, seed, transport)?));
    }
    let ceiling = if let Some(before) = ceiling_before {
        let c = before.faster(&ceiling::measure(CEILING_BYTES)?);
        println!(
            "  crypto ceiling: {:.1} ms of CPU per MiB over the five parties",
            c.cpu_per_mib().as_secs_f64() * 1000.0
        );
        Some(c)
    } else {
        None
    };
    let processes = if sizes.processes > 0 {
        println!(
            "veil bench: {} `veil node` processes on loopback TCP",
            sizes.processes
        );
        Some(processes::run(sizes)?)
    } else {
        None
    };
    report::print_table(
        sizes,
        &in_process_runs,
        ceiling.as_ref(),
        processes.as_ref(),
    );
    println!("veil bench: ok in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
