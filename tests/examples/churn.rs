//! Churn at scale (issue 11, point 7): a steady population of nodes with
//! heavy-tailed sessions, Poisson arrivals and half silent departures,
//! under a message workload. Prints the report and writes the time series
//! (CSV, read by `scripts/plot_churn.py`) and the headline figures (JSON,
//! beside it). Model and figures: `docs/churn.md`.
//!
//! The full run (about 12.5 minutes of one core, projected; see `docs/churn.md`):
//!
//! ```text
//! cargo run --release -p veil-sim --example churn -- --nodes 1000 --minutes 30 --seed 1 --out target/churn.csv
//! ```
//!
//! Without arguments it runs a small network (100 nodes, 5 minutes).
//! Options: `--nodes N`, `--minutes M`, `--seed S`, `--out PATH.csv`,
//! `--senders K`, `--interval SECS`, `--shape K`, `--scale-min MIN`,
//! `--silent FRACTION`, `--warmup SECS`, `--links L`, `--quiet`.

use std::path::PathBuf;

use veil_core::time::Duration;
use veil_sim::churn::{self, ChurnConfig};

fn main() {
    let mut config = ChurnConfig {
        nodes: 100,
        duration: Duration::from_secs(5 * 60),
        senders: 10,
        verbose: true,
        ..ChurnConfig::default()
    };
    let mut out: Option<PathBuf> = None;
    let mut senders_given = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--nodes" => config.nodes = parse(&value()),
            "--minutes" => {
                config.duration = Duration::from_micros((parse::<f64>(&value()) * 60e6) as u64)
            }
            "--seed" => config.seed = parse(&value()),
            "--out" => out = Some(PathBuf::from(value())),
            "--senders" => {
                config.senders = parse(&value());
                senders_given = true;
            }
            "--interval" => {
                config.send_interval = Duration::from_micros((parse::<f64>(&value()) * 1e6) as u64)
            }
            "--shape" => config.session_shape = parse(&value()),
            "--scale-min" => {
                config.session_scale = Duration::from_micros((parse::<f64>(&value()) * 60e6) as u64)
            }
            "--silent" => config.silent_fraction = parse(&value()),
            "--unreachable" => config.unreachable_fraction = parse(&value()),
            "--warmup" => {
                config.warmup = Duration::from_micros((parse::<f64>(&value()) * 1e6) as u64)
            }
            "--links" => config.links = parse(&value()),
            "--quiet" => config.verbose = false,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if !senders_given {
        // One node in ten sends, 100 at 1,000 nodes.
        config.senders = (config.nodes / 10).max(1);
    }
    let report = churn::run(config);
    print!("{}", report.text());
    if let Some(path) = out {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(&path, report.csv()).expect("write the CSV");
        let json = path.with_extension("json");
        std::fs::write(&json, report.json()).expect("write the JSON");
        println!("wrote {} and {}", path.display(), json.display());
    }
}

fn parse<T: std::str::FromStr>(s: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| usage(&format!("cannot parse {s:?}")))
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: churn [--nodes N] [--minutes M] [--seed S] [--out PATH.csv] [--senders K] [--interval SECS] [--shape K] [--scale-min MIN] [--silent FRACTION] [--unreachable FRACTION] [--warmup SECS] [--links L] [--quiet]");
    std::process::exit(2)
}
