//! Deterministic simulation harness for veil networks.
