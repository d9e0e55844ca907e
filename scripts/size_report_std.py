#!/usr/bin/env python3
"""Size of the std `veil` binary, by crate (issue 18).

Builds `veil` in the `minsizerel` profile for each build below, prints the
stripped file size and, with --crates, a table of `.text` bytes by crate from
cargo-bloat (`cargo install cargo-bloat`), the std counterpart of
targets/firmware/size_report.py.

    scripts/size_report_std.py                      # every build, sizes only
    scripts/size_report_std.py --crates operator    # one build, by crate
    scripts/size_report_std.py --budget 3500000 operator   # CI: fail if larger

Each build uses its own target directory under $CARGO_TARGET_DIR (default
target/) so the RUSTFLAGS of one do not invalidate another.
"""
import argparse
import json
import os
import subprocess
import sys

# DT_RELR packs the position-independent executable's relocations (about
# 135 KB of .rela.dyn into a few KB); needs binutils >= 2.38 to link and
# glibc >= 2.36 to run.
RELR = "-C link-arg=-Wl,-z,pack-relative-relocs"
NIGHTLY = [
    "-Z", "build-std=std,panic_abort", "-Z", "build-std-features=optimize_for_size",
    "-Z", "panic-immediate-abort", "--config", 'profile.minsizerel.panic="immediate-abort"',
    "--target", "x86_64-unknown-linux-gnu",
]
OPERATOR = ["--no-default-features", "--features", "operator"]

# name: (toolchain, cargo arguments, RUSTFLAGS)
BUILDS = {
    "full": ("stable", [], RELR),
    "operator": ("stable", OPERATOR, RELR),
    "operator-tcp": ("stable", ["--no-default-features"], RELR),
    "operator-nightly": ("nightly", OPERATOR + NIGHTLY, RELR),
}


def cargo(toolchain, sub, args, rustflags, target_dir, extra_env=None):
    env = dict(os.environ, RUSTFLAGS=rustflags, CARGO_TARGET_DIR=target_dir)
    env.update(extra_env or {})
    cmd = ["cargo", f"+{toolchain}", sub, "-p", "veil-node", "--bin", "veil",
           "--profile", "minsizerel"] + args
    return subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout


def build(name, base):
    toolchain, args, rustflags = BUILDS[name]
    target_dir = os.path.join(base, "size-" + name)
    cargo(toolchain, "build", args, rustflags, target_dir)
    triple = "x86_64-unknown-linux-gnu" if "--target" in args else ""
    path = os.path.join(target_dir, triple, "minsizerel", "veil")
    return os.path.getsize(path)


def crates(name, base):
    toolchain, args, rustflags = BUILDS[name]
    target_dir = os.path.join(base, "size-" + name + "-bloat")
    out = cargo(toolchain, "bloat", args + ["--crates", "-n", "0", "--message-format", "json"],
                rustflags, target_dir, {"CARGO_PROFILE_MINSIZEREL_STRIP": "false"})
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("builds", nargs="*", default=list(BUILDS))
    ap.add_argument("--crates", action="store_true", help="also .text by crate (cargo-bloat)")
    ap.add_argument("--min-kib", type=float, default=8.0, help="fold crates below this into one row")
    ap.add_argument("--budget", type=int, help="fail if a build's stripped size exceeds this many bytes")
    a = ap.parse_args()
    base = os.environ.get("CARGO_TARGET_DIR", "target")
    failed = False
    for name in a.builds or list(BUILDS):
        size = build(name, base)
        print(f"{name}: {size:,} B ({size / 1048576:.2f} MiB) stripped")
        if a.budget is not None and size > a.budget:
            print(f"size budget exceeded: {name} is {size:,} B, budget {a.budget:,} B", file=sys.stderr)
            failed = True
        if a.crates:
            report = crates(name, base)
            text = report["text-section-size"]
            print(f"\n| crate | .text | share |\n| --- | ---: | ---: |")
            rest = 0
            for c in report["crates"]:
                if c["size"] < a.min_kib * 1024:
                    rest += c["size"]
                    continue
                print(f"| {c['name']} | {c['size'] / 1024:.1f} KiB | {100 * c['size'] / text:.1f} % |")
            print(f"| (other crates below {a.min_kib:g} KiB) | {rest / 1024:.1f} KiB | {100 * rest / text:.1f} % |")
            print(f"| **.text total** | {text / 1024:.1f} KiB | |")
            print(f"(unstripped file {report['file-size']:,} B; cargo-bloat's attribution is approximate)\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
