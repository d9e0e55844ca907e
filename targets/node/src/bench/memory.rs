//! Reading a process's memory figures from `/proc`, for `veil bench`'s
//! RSS rows (Linux only, as the bench is).

use std::fs;

/// A `kB` field of `/proc/<pid>/status`, in KiB.
pub(super) fn proc_status_kib(pid: &str, field: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .ok_or_else(|| format!("no {field} in {path}"))
}
