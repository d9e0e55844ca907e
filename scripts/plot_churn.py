#!/usr/bin/env python3
"""Plots delivery latency over time in a churn run, with the churn marked.

Reads the CSV the `churn` example writes (`--out PATH.csv`; columns
`kind,t_s,value,flag,a,b`, described in `tests/src/churn.rs`,
`ChurnReport::csv`) and writes a PNG.

Dependency: matplotlib (`pip install matplotlib`).

Usage: python3 scripts/plot_churn.py target/churn.csv docs/churn_latency.png
"""

import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    sent, latency, lost_t, arrivals, clean, silent, false_s, pop = [], [], [], [], [], [], [], []
    with src.open() as f:
        for row in csv.DictReader(f):
            kind, t = row["kind"], float(row["t_s"]) / 60.0
            if kind == "message":
                if row["flag"] != "1":
                    continue  # an end left: not counted
                value = float(row["value"])
                if value >= 0:
                    sent.append(t)
                    latency.append(value / 1000.0)
                else:
                    lost_t.append(t)
            elif kind == "arrival":
                arrivals.append(t)
            elif kind == "clean":
                clean.append(t)
            elif kind == "silent":
                silent.append(t)
            elif kind == "suspicion" and row["flag"] == "1":
                false_s.append(t)
            elif kind == "population":
                pop.append((t, int(float(row["value"]))))

    summary = {}
    json_path = src.with_suffix(".json")
    if json_path.exists():
        summary = json.loads(json_path.read_text())

    fig, (ax, axc) = plt.subplots(
        2, 1, figsize=(12, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.scatter(sent, latency, s=3, alpha=0.35, color="tab:blue", label="delivered message (latency)")
    if lost_t:
        top = max(latency) * 1.5 if latency else 100
        ax.scatter(lost_t, [top] * len(lost_t), marker="x", s=14, color="black",
                   label=f"not delivered within the window ({len(lost_t)})")
    ax.set_yscale("log")
    ax.set_ylabel("delivery latency (s, log)")
    # Rolling p50 / p99 per minute.
    if sent:
        pairs = sorted(zip(sent, latency))
        end = max(sent)
        xs, p50, p99 = [], [], []
        m = 0.0
        while m <= end:
            window = sorted(v for t, v in pairs if m <= t < m + 1.0)
            if window:
                xs.append(m + 0.5)
                p50.append(window[len(window) // 2])
                p99.append(window[min(len(window) - 1, int(0.99 * len(window)))])
            m += 1.0
        ax.plot(xs, p50, color="tab:green", lw=2, label="p50 per minute")
        ax.plot(xs, p99, color="tab:red", lw=2, label="p99 per minute")
    for t in false_s:
        ax.axvline(t, color="tab:orange", lw=0.8, alpha=0.6)
    title = "veil churn simulation: delivery latency over time"
    if summary:
        title += (
            f"\n{summary.get('nodes')} nodes, {summary.get('minutes'):.0f} min, seed {summary.get('seed')}; "
            f"delivery ratio {summary.get('delivery_ratio', 0):.4f}, "
            f"p50 {summary.get('latency_p50_ms', 0) / 1000:.2f} s, p99 {summary.get('latency_p99_ms', 0) / 1000:.1f} s"
        )
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8, markerscale=3)
    ax.grid(True, which="both", alpha=0.3)

    # Churn: events per minute, and the population.
    bins = range(0, int(max([0.0] + sent + arrivals + clean + silent)) + 2)
    axc.hist([arrivals, clean, silent], bins=list(bins), stacked=False,
             color=["tab:green", "tab:gray", "tab:purple"],
             label=["arrivals", "clean departures (kill)", "silent departures (freeze)"])
    for t in silent:
        ax.axvline(t, ymin=0, ymax=0.03, color="tab:purple", lw=0.6)
    for t in clean:
        ax.axvline(t, ymin=0.03, ymax=0.06, color="tab:gray", lw=0.6)
    axc.set_ylabel("events / min")
    axc.set_xlabel("simulated time after warm-up (min)")
    axc.legend(loc="upper left", fontsize=8)
    if pop:
        axp = axc.twinx()
        axp.plot([t for t, _ in pop], [n for _, n in pop], color="black", lw=1)
        axp.set_ylabel("nodes up")
    fig.tight_layout()
    dst.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
