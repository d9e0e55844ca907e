#!/usr/bin/env python3
"""Does a veil link look random to a passive observer? (issue 12)

Reads what `cargo run --release -p veil-sim --example wire_sample` wrote
(the first 1,024 bytes each dialler sent, and both first-flight lengths, for
every connection; `--format v1` for the control) and runs, on each format
found:

1. the key tests on the first 32 bytes (where the dialler's ephemeral key
   travels): bit 255 set, and the Legendre-symbol test (is the value, as
   X25519 reads it, the u-coordinate of a curve point?); both expected 50%,
   checked with an exact binomial test;
2. a chi-square test of the byte distribution at each of the first 128
   offsets, and a Kolmogorov-Smirnov test that the 128 p-values are uniform;
3. the distribution of first-flight lengths (dialler and responder), and
   of the wire lengths of the one-cell messages after the handshake
   (transport spec §4.2: uniform over two cells' worth of padding, so that
   a length fits more than one cell count);
4. NIST SP 800-22 (the `nistrng` package) on 40 sequences of 20,000 bits
   cut from the concatenated streams, the proportion passing each test
   compared with the same battery on random bytes;
5. a classifier (scikit-learn, gradient-boosted trees on the bytes of the
   first 1 KiB) asked to tell the streams from `os.urandom` bytes, with
   5-fold cross-validation.

Prints a verdict per test; exits 1 if v2 fails a test it should pass or
if the v1 control passes the key or offset tests (the tests would then be
blind).

    python3 scripts/wire_randomness.py target/wire
Needs: numpy, scipy, scikit-learn, nistrng.
"""

import os
import sys

import numpy as np
from scipy import stats

P = 2**255 - 19
A = 486662
SAMPLE_LEN = 1024
ALPHA = 0.001


def load(directory, fmt):
    path = os.path.join(directory, f"{fmt}_streams.bin")
    if not os.path.exists(path):
        return None
    data = np.fromfile(path, dtype=np.uint8)
    streams = data.reshape(-1, SAMPLE_LEN)
    flights = np.loadtxt(os.path.join(directory, f"{fmt}_flights.csv"), delimiter=",", skiprows=1, dtype=int)
    cells = np.loadtxt(os.path.join(directory, f"{fmt}_cell_messages.csv"), delimiter=",", skiprows=1, dtype=int)
    return streams, flights, cells


def key_offset(fmt):
    # v1 puts its 2-byte length before the key; v2 starts with it.
    return 2 if fmt == "v1" else 0


def is_curve_point(u_bytes):
    u = int.from_bytes(bytes(u_bytes), "little") & ((1 << 255) - 1)
    u %= P
    g = (u * u * u + A * u * u + u) % P
    return pow(g, (P - 1) // 2, P) in (0, 1)


def key_tests(streams, fmt):
    keys = streams[:, key_offset(fmt):key_offset(fmt) + 32]
    n = len(keys)
    top = int(np.count_nonzero(keys[:, 31] & 0x80))
    legendre = sum(is_curve_point(k) for k in keys)
    p_top = stats.binomtest(top, n, 0.5).pvalue
    p_leg = stats.binomtest(legendre, n, 0.5).pvalue
    return [
        ("bit 255 of the key field set", f"{top}/{n} = {top / n:.3f}", p_top),
        ("key field is a curve point (Legendre)", f"{legendre}/{n} = {legendre / n:.3f}", p_leg),
    ]


def offset_tests(streams):
    pvalues = []
    for offset in range(128):
        counts = np.bincount(streams[:, offset], minlength=256)
        pvalues.append(stats.chisquare(counts).pvalue)
    pvalues = np.array(pvalues)
    failing = int(np.count_nonzero(pvalues < ALPHA))
    ks = stats.kstest(pvalues, "uniform").pvalue
    return [
        ("chi-square per offset 0..127", f"{failing} of 128 offsets below {ALPHA}; min p {pvalues.min():.2e}", ks),
    ]


def flight_tests(flights):
    rows = []
    for column, name in ((0, "dialler's first flight"), (1, "responder's first flight")):
        values = flights[:, column]
        low, high = int(values.min()), int(values.max())
        distinct = len(np.unique(values))
        if distinct == 1:
            rows.append((f"{name} length", f"always {low} bytes", 0.0))
            continue
        counts = np.bincount(values - low, minlength=high - low + 1)
        p = stats.chisquare(counts).pvalue
        rows.append((f"{name} length, uniform over {low}..{high}", f"{distinct} distinct lengths", p))
    return rows


def cell_message_tests(lengths):
    """One-cell messages: a length that fits one cell count only tells an
    observer the count. Uniform over its range, checked by chi-square; the
    figure also says how many would fit a two-cell message as well."""
    values = lengths.reshape(-1)
    low, high = int(values.min()), int(values.max())
    distinct = len(np.unique(values))
    if distinct == 1:
        return [("one-cell message length", f"always {low} bytes", 0.0)]
    counts = np.bincount(values - low, minlength=high - low + 1)
    p = stats.chisquare(counts).pvalue
    two_cells = low + 514
    overlap = float(np.mean(values >= two_cells))
    figure = f"{distinct} lengths; {overlap:.0%} also fit 2 cells"
    return [(f"one-cell message length, uniform over {low}..{high}", figure, p)]


def nist_battery(byte_rows):
    """NIST SP 800-22 as the standard asks: the battery on each of many
    sequences, then the proportion that passes each test (at the tests'
    alpha of 0.01). `nistrng` overflows its int8 sums on long sequences
    (os.urandom fails its DFT and Serial tests at 10^5 bits and more), so
    each sequence is 20,000 bits, its documented way in (`pack_sequence`)."""
    from nistrng import SP800_22R1A_BATTERY, check_eligibility_all_battery, pack_sequence, run_all_battery

    tally = {}
    for row in byte_rows:
        bits = pack_sequence(row.astype(np.int8).astype(int))
        eligible = check_eligibility_all_battery(bits, SP800_22R1A_BATTERY)
        for result, _elapsed in run_all_battery(bits, eligible, False):
            passed, seen = tally.get(result.name, (0, 0))
            tally[result.name] = (passed + int(result.passed), seen + 1)
    return tally


def nist_tests(streams, sequences=40, seed=2):
    """Each sequence: 2,500 bytes of the concatenated streams. Compared
    with the same battery on os.urandom bytes (the library's own baseline)
    by a two-sided Fisher exact test per test."""
    import warnings

    flat = streams.reshape(-1)
    step = 2500
    rows = [flat[i * step:(i + 1) * step] for i in range(sequences)]
    rng = np.random.default_rng(seed)
    control = [rng.integers(0, 256, size=step, dtype=np.uint8) for _ in range(sequences)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = nist_battery(rows), nist_battery(control)
    out = []
    for name, (passed, seen) in ours.items():
        c_passed, c_seen = theirs.get(name, (0, 0))
        p = stats.fisher_exact([[passed, seen - passed], [c_passed, c_seen - c_passed]]).pvalue if c_seen else 1.0
        out.append((f"NIST {name}", f"passed {passed}/{seen} (random bytes: {c_passed}/{c_seen})", p))
    return out


def classifier_test(streams, seed=1):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score

    n = len(streams)
    rng = np.random.default_rng(seed)
    random = rng.integers(0, 256, size=streams.shape, dtype=np.uint8)
    x = np.vstack([streams, random]).astype(np.float32)
    y = np.concatenate([np.ones(n), np.zeros(n)])
    scores = cross_val_score(HistGradientBoostingClassifier(max_iter=100), x, y, cv=5)
    accuracy = float(scores.mean())
    # Chance is 0.5; with 2n samples a classifier's accuracy on random
    # labels has standard deviation about 0.5/sqrt(2n).
    correct = int(round(accuracy * 2 * n))
    p = stats.binomtest(correct, 2 * n, 0.5, alternative="greater").pvalue
    return [("classifier (1 KiB) vs random bytes, 5-fold accuracy", f"{accuracy:.4f}", p)]


def report(fmt, rows):
    print(f"\n== {fmt} ==")
    for name, figure, p in rows:
        verdict = "looks random" if p >= ALPHA else "NOT random"
        print(f"  {name:58} {figure:44} p = {p:.3g}  {verdict}")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "target/wire"
    status = 0
    found = False
    for fmt in ("v2", "v1"):
        loaded = load(directory, fmt)
        if loaded is None:
            continue
        found = True
        streams, flights, cells = loaded
        print(f"{fmt}: {len(streams)} connections")
        keys = key_tests(streams, fmt)
        offsets = offset_tests(streams)
        cell_lengths = cell_message_tests(cells)
        rows = keys + offsets + flight_tests(flights) + cell_lengths
        if "--quick" not in sys.argv:
            rows += nist_tests(streams) + classifier_test(streams)
        report(fmt, rows)
        blind = [r for r in keys + offsets + cell_lengths if r[2] >= ALPHA]
        failed = [r for r in rows if r[2] < ALPHA]
        if fmt == "v2" and failed:
            print(f"FAIL: v2 fails {len(failed)} test(s)")
            status = 1
        if fmt == "v1" and blind:
            print(f"FAIL: the v1 control passes {len(blind)} key/offset/length test(s): the tests are blind")
            status = 1
    if not found:
        print(f"no samples in {directory}: run the wire_sample example first")
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
