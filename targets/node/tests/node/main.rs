//! The `veil` binary's tests on real sockets and real processes, as one
//! test binary.
//!
//! Most of these tests wait: for links, for padding windows, for a relay's
//! death to be noticed, for QEMU. As one binary per file, cargo ran them one
//! after another, so their waits added up (about 385 s of the CI's test
//! step). In one binary the test harness runs them side by side, on as many
//! threads as there are cores. Each test already shares nothing with the
//! others: its own scratch directory, free ports, and network namespaces
//! named after the process and the test.
//!
//! Run one file's tests with its module name as the filter, for example
//! `cargo test -p veil-node --test node restart_kill::`.

mod common;

mod bench;
mod churn;
mod cli;
mod control;
mod cover_traffic;
mod firmware_interop;
mod hostile;
mod hung_relay;
mod link_padding;
mod logging;
mod metrics;
mod nat;
mod network;
mod probe;
mod restart_kill;
mod smoltcp_interop;
mod sybil_links;
mod traces;
mod unreachable;
