//! `veil bench --quick` runs its whole course (the in-process network over
//! TCP and over QUIC, and separate `veil node` processes) and exits 0. Figures are printed, never
//! checked: tests assert no timing.

use crate::common;

use std::time::Duration;

use common::run;

#[test]
fn quick_bench_exits_zero() {
    let out = run(&["bench", "--quick"], b"", Duration::from_secs(240));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "veil bench --quick failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "3-relay circuit build (TCP)",
        "3-relay circuit build (QUIC)",
        // Printed only when the sender built no circuit during the
        // transfer: every message went over the one circuit.
        "bulk (TCP), one circuit",
        "bulk (QUIC), one circuit",
        "bulk between processes, one circuit",
        "peak RSS per node process",
    ] {
        assert!(stdout.contains(row), "no {row:?} row in\n{stdout}");
    }
    assert!(
        !stdout.contains("NOT one circuit"),
        "a bulk transfer needed a second circuit\n{stdout}"
    );
}
