#!/usr/bin/env python3
"""Accuracy against overhead for each anonymity preset (issue 13's plot).

Reads, from a directory, `<preset>.json` (written by
`scripts/traffic_analysis.py --json`) and `<preset>.latency` (the
`latency_ms ...` line `traffic_traces` prints) for the presets off,
default and strict; prints the goal table as Markdown and draws the
fingerprinting accuracy (at the client and at the middle relay) and the
flow-correlation AUC against the bandwidth overhead over `off`.

    python3 scripts/anonymity_tradeoff.py DIR --svg docs/anonymity_tradeoff.svg
"""

import argparse
import json
import os
import sys

PRESETS = ["off", "default", "strict"]


def latency(path):
    """The request and response medians, ms, from a `latency_ms` line."""
    with open(path) as f:
        for line in f:
            if line.startswith("latency_ms"):
                fields = dict(kv.split("=") for kv in line.split()[1:])
                return float(fields["request_median"]), float(fields["response_median"])
    sys.exit(f"{path}: no latency_ms line")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--svg")
    args = parser.parse_args()
    rows = {}
    for preset in PRESETS:
        with open(os.path.join(args.dir, f"{preset}.json")) as f:
            rows[preset] = json.load(f)
        rows[preset]["latency"] = latency(os.path.join(args.dir, f"{preset}.latency"))
    base = rows["off"]
    print("| preset | accuracy at the client | at the middle relay | correlation AUC | "
          "bytes per visit | overhead | request latency, median | response latency, median |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for preset in PRESETS:
        r = rows[preset]
        r["overhead"] = r["mean_bytes_per_visit"] / base["mean_bytes_per_visit"] - 1
        added = [r["latency"][i] - base["latency"][i] for i in range(2)]
        print(f"| {preset} | {r['accuracy']:.3f} ± {r['accuracy_std']:.3f} | "
              f"{r['middle_accuracy']:.3f} ± {r['middle_accuracy_std']:.3f} | "
              f"{r['correlation_auc']:.3f} | {r['mean_bytes_per_visit']:,.0f} | "
              f"{100 * r['overhead']:+.0f} % | {r['latency'][0]:.1f} ms ({added[0]:+.1f}) | "
              f"{r['latency'][1]:.1f} ms ({added[1]:+.1f}) |")
    if not args.svg:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [100 * rows[p]["overhead"] for p in PRESETS]
    ax.plot(xs, [rows[p]["accuracy"] for p in PRESETS], "o-", label="fingerprinting, client's link")
    ax.plot(xs, [rows[p]["middle_accuracy"] for p in PRESETS], "s-", label="fingerprinting, middle relay")
    ax.plot(xs, [rows[p]["correlation_auc"] for p in PRESETS], "^-", label="flow correlation AUC")
    for p, x in zip(PRESETS, xs):
        ax.annotate(p, (x, rows[p]["accuracy"]), textcoords="offset points", xytext=(6, -12))
    chance = base["chance"]
    ax.axhline(chance, color="grey", ls=":", label=f"chance ({chance:.2f})")
    ax.axhline(1.5 * chance, color="tab:red", ls="--", lw=0.8, label="strict goal: 1.5× chance")
    ax.axhline(base["accuracy"] / 2, color="tab:blue", ls="--", lw=0.8,
               label="default goal: half of undefended")
    ax.axhline(0.75, color="tab:green", ls="--", lw=0.8, label="strict goal: AUC 0.75")
    ax.set_xlabel("bandwidth overhead over off (%), bytes at the client per visit")
    ax.set_ylabel("accuracy / AUC")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"veil anonymity presets, {base['visits']} visits of {base['classes']} sites")
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(args.svg, format="svg", metadata={"Date": None})


if __name__ == "__main__":
    main()
