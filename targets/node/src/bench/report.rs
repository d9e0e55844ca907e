//! The results table `veil bench` prints at the end, beside Tor's
//! published figures (docs/performance.md).

use std::time::Duration;

use super::bulk::{mib, Bulk};
use super::ceiling::Ceiling;
use super::in_process::InProcess;
use super::processes::Processes;
use super::Sizes;
use crate::local_network::Transports;

/// Tor's figures, for the table (see docs/performance.md).
const TOR_BUILD: &str = "~16 ms";
const TOR_BULK: &str = "8-60 MB/s";
const TOR_RSS: &str = "50-120 MiB";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let last = sorted.len().saturating_sub(1);
    let rank = (last as f64 * q).round() as usize;
    sorted.get(rank.min(last)).copied().unwrap_or_default()
}

fn spread(mut values: Vec<Duration>) -> String {
    values.sort();
    if values.is_empty() {
        return "none".into();
    }
    format!(
        "median {:.2} ms (p10 {:.2}, p90 {:.2}, min {:.2}, max {:.2}; n={})",
        ms(quantile(&values, 0.5)),
        ms(quantile(&values, 0.1)),
        ms(quantile(&values, 0.9)),
        ms(values.first().copied().unwrap_or_default()),
        ms(values.last().copied().unwrap_or_default()),
        values.len()
    )
}

fn throughput(b: &Bulk) -> String {
    let secs = b.elapsed.as_secs_f64().max(1e-9);
    format!(
        "{:.1} MB/s ({:.1} MiB/s): {:.1} MiB in {} x 64 KiB in {:.2} s",
        b.bytes as f64 / 1e6 / secs,
        mib(b.bytes) / secs,
        mib(b.bytes),
        b.messages,
        secs
    )
}

/// The bulk figure as a fraction of the crypto ceiling on this process's
/// cores, with the ceiling itself.
fn of_ceiling(b: &Bulk, c: &Ceiling) -> String {
    let rate = b.bytes as f64 / b.elapsed.as_secs_f64().max(1e-9);
    let ceiling = c.rate(c.cores);
    format!(
        "{:.2} of {:.1} MB/s on {} cores (one core: {:.1} MB/s; {:.1} ms CPU per MiB)",
        rate / ceiling,
        ceiling / 1e6,
        c.cores,
        c.rate(1) / 1e6,
        c.cpu_per_mib().as_secs_f64() * 1000.0
    )
}

/// The row label and the circuit check of a bulk transfer.
fn bulk_row(what: &str, b: &Bulk) -> (String, String) {
    if b.built_during == 0 {
        (
            format!("{what}, one circuit (node {}->{})", b.from, b.to),
            "1 circuit: built before the transfer, none built during it".into(),
        )
    } else {
        (
            format!("{what} (node {}->{})", b.from, b.to),
            format!(
                "NOT one circuit: the sender built {} more during the transfer (a circuit broke and was replaced)",
                b.built_during
            ),
        )
    }
}

/// Prints the table of every run's figures.
pub(super) fn print_table(
    sizes: Sizes,
    runs: &[(Transports, InProcess)],
    ceiling: Option<&Ceiling>,
    procs: Option<&Processes>,
) {
    let row = |what: &str, veil: &str, tor: &str| {
        println!("  {what:<34} {veil}");
        if !tor.is_empty() {
            println!("  {:<34} Tor: {tor}", "");
        }
    };
    println!();
    println!("results");
    for (transport, inp) in runs {
        let t = transport.name();
        row(
            &format!("discovery ({t}, in-process)"),
            &format!("{:.2} s", inp.discovery.as_secs_f64()),
            "",
        );
        row(
            &format!("3-relay circuit build ({t})"),
            &spread(inp.builds.iter().map(|b| b.built_in).collect()),
            TOR_BUILD,
        );
        row(
            "  of which over existing links",
            &spread(
                inp.builds
                    .iter()
                    .filter(|b| !b.new_links)
                    .map(|b| b.built_in)
                    .collect(),
            ),
            "",
        );
        row(
            "  of which dialled new links",
            &spread(
                inp.builds
                    .iter()
                    .filter(|b| b.new_links)
                    .map(|b| b.built_in)
                    .collect(),
            ),
            "",
        );
        row(
            "first message, send to ack",
            &spread(inp.builds.iter().map(|b| b.first_message).collect()),
            "",
        );
        if let Some(b) = &inp.bulk {
            let (label, circuits) = bulk_row(&format!("bulk ({t})"), b);
            row(&label, &throughput(b), TOR_BULK);
            row("", &circuits, "");
            if let Some(c) = ceiling {
                row("  of the crypto ceiling", &of_ceiling(b, c), "");
            }
        }
        let grown = inp.rss_peak_kib.saturating_sub(inp.rss_baseline_kib);
        row(
            &format!("peak RSS, in-process estimate ({t})"),
            &format!(
                "{:.1} MiB per node ((VmHWM {:.1} - baseline {:.1} MiB) / {} nodes)",
                grown as f64 / 1024.0 / sizes.nodes as f64,
                inp.rss_peak_kib as f64 / 1024.0,
                inp.rss_baseline_kib as f64 / 1024.0,
                sizes.nodes
            ),
            "",
        );
    }
    if let Some(p) = procs {
        let mut peaks: Vec<u64> = p.rss_kib.iter().map(|r| r.0).collect();
        peaks.sort_unstable();
        let mid = peaks.get(peaks.len() / 2).copied().unwrap_or(0);
        let min = peaks.first().copied().unwrap_or(0);
        let max = peaks.last().copied().unwrap_or(0);
        row(
            "peak RSS per node process",
            &format!(
                "median {:.1} MiB (min {:.1}, max {:.1}) VmHWM of {} `veil node` processes after {} circuits{}",
                mid as f64 / 1024.0,
                min as f64 / 1024.0,
                max as f64 / 1024.0,
                p.nodes,
                p.circuits,
                p.bulk
                    .as_ref()
                    .map_or(String::new(), |b| format!(" and {:.0} MiB bulk", mib(b.bytes)))
            ),
            TOR_RSS,
        );
        let per: Vec<String> = p
            .rss_kib
            .iter()
            .map(|(hwm, anon)| {
                format!("{:.1} ({:.1})", *hwm as f64 / 1024.0, *anon as f64 / 1024.0)
            })
            .collect();
        row(
            "  each process: peak (anon at end)",
            &format!("{} MiB", per.join(", ")),
            "",
        );
        if let Some(b) = &p.bulk {
            let (label, circuits) = bulk_row("bulk between processes", b);
            row(
                &label,
                &format!("{} (via control sockets, binary frames)", throughput(b)),
                "",
            );
            row("", &circuits, "");
        }
    }
    println!();
}
