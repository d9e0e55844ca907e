//! Runtimes on real loopback sockets, driven in turns from one thread.
//!
//! Every test drives its loops for a bounded number of turns under a
//! generous wall-clock cap and asserts on outcomes only, never on timing.

mod backpressure;
mod capture;
mod garbage;
mod handshake;
#[cfg(feature = "quic")]
mod head_of_line;
mod messages;
#[cfg(feature = "quic")]
mod quic;
mod shutdown;
mod support;
mod trace;
mod window;
