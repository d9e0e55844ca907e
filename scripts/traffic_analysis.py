#!/usr/bin/env python3
"""Traffic-analysis attacks on veil traces (issue 13).

Reads the CSV `tests/examples/traffic_traces.rs` writes (class, seed,
side, time_us, direction, bytes: one link message the client or the
destination sent, +1, or received, -1) and runs two attacks:

- website fingerprinting, on the client's side (and, if recorded, on
  the middle relay of its circuit, all of that relay's links): each visit becomes
  k-FP-style features (Hayes and Danezis, USENIX Security 2016: counts,
  sizes, bursts, timing, ordering, and a cumulative-size curve as in
  CUMUL) for a random forest in a closed world, scored by stratified
  k-fold cross-validation: accuracy against chance (1 / classes);
- flow correlation of the circuit's two ends: each side's bytes in each
  direction are binned into 100 ms windows, a pair of (client,
  destination) series is scored by the mean Pearson correlation of its
  upstream and downstream series, and the ROC AUC separates the matched
  pairs (the same visit) from unmatched ones (the client of one visit
  against the destination of another of the same seed's network).

Usage: scripts/traffic_analysis.py traces.csv [--folds 5] [--json out.json]
                                   [--check-undefended]
`--check-undefended` (CI, on traces without defences) exits 1 unless both
attacks work: accuracy at least five times chance and an AUC of at least
0.9. A broken recorder or a broken attack then fails CI, not only the
defences it is meant to measure.
Needs numpy and scikit-learn.
"""

import argparse
import csv
import json
import sys
from collections import defaultdict

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score

CURVE_POINTS = 20
PREFIX = 30
WINDOW_S = 0.1
UNMATCHED_PER_VISIT = 5


def load(path):
    """{(class, seed): {side: [(time_s, direction, bytes)]}}"""
    visits = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (int(row["class"]), int(row["seed"]))
            visits[key][row["side"]].append(
                (int(row["time_us"]) / 1e6, int(row["direction"]), int(row["bytes"]))
            )
    return visits


def binned(trace, direction, bins):
    """Bytes per 100 ms window that went `direction` (+1 out, -1 in)."""
    series = np.zeros(bins)
    for t, d, size in trace:
        if d == direction:
            series[min(int(t / WINDOW_S), bins - 1)] += size
    return series


def correlation(a, b):
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def flow_score(client, destination):
    """How alike two ends look: the mean correlation of upstream (client
    out, destination in) and downstream (destination out, client in)."""
    end = max([t for t, _, _ in client + destination] + [0.0])
    bins = int(end / WINDOW_S) + 1
    up = correlation(binned(client, 1, bins), binned(destination, -1, bins))
    down = correlation(binned(destination, 1, bins), binned(client, -1, bins))
    return (up + down) / 2


def correlation_auc(visits):
    rng = np.random.default_rng(0)
    by_seed = defaultdict(list)
    for key in visits:
        by_seed[key[1]].append(key)
    scores, labels = [], []
    for key, sides in visits.items():
        client = sides.get("client", [])
        scores.append(flow_score(client, sides.get("destination", [])))
        labels.append(1)
        others = [k for k in by_seed[key[1]] if k != key]
        for other in rng.choice(len(others), min(UNMATCHED_PER_VISIT, len(others)), replace=False):
            scores.append(flow_score(client, visits[others[other]].get("destination", [])))
            labels.append(0)
    return float(roc_auc_score(labels, scores))


def stats(values):
    if len(values) == 0:
        return [0.0] * 5
    v = np.asarray(values, dtype=float)
    return [v.mean(), v.std(), v.max(), np.percentile(v, 50), np.percentile(v, 90)]


def features(trace):
    trace = sorted(trace)
    times = np.array([t for t, _, _ in trace])
    dirs = np.array([d for _, d, _ in trace])
    sizes = np.array([s for _, _, s in trace])
    out, inc = dirs > 0, dirs < 0
    n = len(trace)
    f = [
        n,
        out.sum(),
        inc.sum(),
        out.sum() / max(n, 1),
        sizes[out].sum(),
        sizes[inc].sum(),
        times[-1] - times[0] if n else 0.0,
    ]
    # Bursts: runs of messages in one direction.
    bursts = []
    if n:
        run = 1
        for a, b in zip(dirs, dirs[1:]):
            if a == b:
                run += 1
            else:
                bursts.append(run)
                run = 1
        bursts.append(run)
    f += [len(bursts)] + stats(bursts)
    # Timing, per direction and overall.
    for mask in (np.ones(n, bool), out, inc):
        t = times[mask]
        f += stats(np.diff(t)) if len(t) > 1 else [0.0] * 5
    # Ordering: where the outgoing messages sit.
    f += stats(np.nonzero(out)[0]) + stats(np.nonzero(inc)[0])
    # The first and last messages' directions.
    head = dirs[:PREFIX]
    f += [(head > 0).sum(), (head < 0).sum()]
    f += [(dirs[-PREFIX:] > 0).sum(), (dirs[-PREFIX:] < 0).sum()]
    # Concentration of outgoing messages in chunks of 20.
    chunks = [int((dirs[i : i + 20] > 0).sum()) for i in range(0, n, 20)]
    f += stats(chunks)
    # Messages per second.
    if n and times[-1] > times[0]:
        per_second = np.histogram(times, bins=max(1, int(np.ceil(times[-1] - times[0]))))[0]
    else:
        per_second = [n]
    f += stats(per_second)
    # CUMUL: the signed cumulative size, sampled at fixed points.
    cumulative = np.cumsum(dirs * sizes) if n else np.zeros(1)
    points = np.interp(
        np.linspace(0, len(cumulative) - 1, CURVE_POINTS),
        np.arange(len(cumulative)),
        cumulative,
    )
    f += list(points)
    return f


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--json")
    parser.add_argument("--check-undefended", action="store_true")
    args = parser.parse_args()
    visits = load(args.csv)
    if not visits:
        sys.exit(f"{args.csv}: no visits")
    keys = sorted(visits)
    y = np.array([k[0] for k in keys])
    classes = len(set(y))
    per_class = min(np.bincount(y)[np.unique(y)])
    folds = max(2, min(args.folds, per_class))

    def fingerprint(side):
        x = np.array([features(visits[k].get(side, [])) for k in keys], dtype=float)
        forest = RandomForestClassifier(n_estimators=300, random_state=0, n_jobs=-1)
        return cross_val_score(
            forest, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=0)
        )

    scores = fingerprint("client")
    has_middle = any("middle" in visits[k] for k in keys)
    middle_scores = fingerprint("middle") if has_middle else None
    messages = np.mean([len(visits[k].get("client", [])) for k in keys])
    auc = correlation_auc(visits)
    result = {
        "visits": len(keys),
        "classes": classes,
        "folds": folds,
        "accuracy": float(scores.mean()),
        "accuracy_std": float(scores.std()),
        "chance": 1.0 / classes,
        "mean_messages_per_visit": float(messages),
        "mean_bytes_per_visit": float(
            np.mean([sum(s for _, _, s in visits[k].get("client", [])) for k in keys])
        ),
        "correlation_auc": auc,
    }
    if middle_scores is not None:
        result["middle_accuracy"] = float(middle_scores.mean())
        result["middle_accuracy_std"] = float(middle_scores.std())
    print(
        f"{len(keys)} visits of {classes} sites, {folds}-fold: accuracy "
        f"{result['accuracy']:.3f} ± {result['accuracy_std']:.3f} "
        f"(chance {result['chance']:.3f}); {messages:.0f} link messages and "
        f"{result['mean_bytes_per_visit']:.0f} bytes per visit at the client; "
        f"flow correlation ROC AUC {auc:.3f}"
    )
    if middle_scores is not None:
        print(
            f"the middle relay's view: accuracy {result['middle_accuracy']:.3f} ± "
            f"{result['middle_accuracy_std']:.3f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if args.check_undefended:
        if result["accuracy"] < 5 * result["chance"]:
            sys.exit("traffic_analysis: the fingerprinting attack does no better than "
                     f"{result['accuracy']:.3f} on undefended traces; the recorder or the "
                     "attack is broken")
        if auc < 0.9:
            sys.exit(f"traffic_analysis: flow correlation reaches only AUC {auc:.3f} on "
                     "undefended traces; the recorder or the attack is broken")


if __name__ == "__main__":
    main()
