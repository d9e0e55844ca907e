//! The multi-node tests on the simulator, as one test binary.
//!
//! Each file is a module here rather than a test binary of its own: cargo
//! linked 38 binaries and ran them one after another, where one binary is
//! linked once and its tests share the harness's threads. The tests are
//! deterministic and share nothing but the code.
//!
//! Run one file's tests with its module name as the filter, for example
//! `cargo test -p veil-sim --test sim eclipse::`.

mod common;

mod admission;
mod blame;
mod churn;
mod circuits;
mod control_traffic;
mod cover_traffic;
mod dial_policy;
mod dial_room;
mod discovery;
mod eclipse;
mod event_backpressure;
mod extend_addresses;
mod feelers;
mod fuzz_entries;
mod gossip_flood;
mod hostile_input;
mod idle_padding;
mod introducers;
mod joining;
mod link_sessions;
mod liveness;
mod lookup;
mod memory;
mod message_padding;
mod mixing_delays;
mod node_table;
mod path_length;
mod probe_resistance;
mod reachability;
mod relay_quotas;
mod rendezvous;
mod replacement_path;
mod sender_anonymity;
mod shaping;
mod stream_links;
mod transport_selection;
mod vanguards;
