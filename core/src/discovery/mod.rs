//! Discovery and node management: what this node knows about others.
//! So far: the bounded node table. Descriptor exchange on link-up, gossip
//! and bootstrap come next (issue 3).

mod node_table;

pub use node_table::{InsertError, InsertOutcome, NodeTable, PeerEntry, MAX_HEALTHY_FAILURES};

#[cfg(test)]
mod node_table_tests;
