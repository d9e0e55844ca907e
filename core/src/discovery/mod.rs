//! Discovery and node management: what this node knows about others.
//! The bounded node table and path selection; the node's descriptor
//! exchange and gossip live in `node::discovery`.

mod node_table;
mod path;

pub use node_table::{InsertError, InsertOutcome, NodeTable, PeerEntry, MAX_HEALTHY_FAILURES};
pub use path::{
    select_path, NetworkPrefix, Path, PathError, PathRules, DEFAULT_PATH_RELAYS, MAX_PATH_RELAYS,
};

#[cfg(test)]
mod node_table_tests;
#[cfg(test)]
mod path_tests;
