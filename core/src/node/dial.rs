//! Connections the node asks its adapter to make: to a circuit's first hop,
//! to the next hop of an `EXTEND`, and to the bootstrap addresses.
//!
//! The core never opens a socket. It queues a [`DialRequest`]; the adapter
//! connects and calls [`Node::open_link`](super::Node::open_link) as the
//! initiator (expecting the requested peer), or reports the failure with
//! [`Node::dial_failed`](super::Node::dial_failed). A dial the adapter does
//! not answer within `dial_timeout` counts as failed. At most
//! [`MAX_PENDING_DIALS`] dials to known peers are outstanding at once.

use heapless::{Deque, Vec};

use crate::identity::{Address, NodeId};
use crate::time::{Duration, Instant};

/// Dials to known peers outstanding at once.
pub const MAX_PENDING_DIALS: usize = 8;
/// Bootstrap addresses a node keeps.
pub const MAX_BOOTSTRAP: usize = 8;

/// A connection the node wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialRequest {
    /// The node expected at the address; `None` for a bootstrap address,
    /// where whoever answers is welcome.
    pub peer: Option<NodeId>,
    /// Where to connect.
    pub address: Address,
}

#[derive(Debug)]
pub(crate) struct Dialer {
    queue: Deque<DialRequest, { MAX_PENDING_DIALS + MAX_BOOTSTRAP }>,
    pending: Vec<(NodeId, Instant), MAX_PENDING_DIALS>,
    bootstrap: Vec<Address, MAX_BOOTSTRAP>,
    next_bootstrap: Instant,
    /// Wait before the next bootstrap round: 1 s, doubling up to the
    /// configured retry, back to 1 s once linked.
    bootstrap_backoff: Duration,
}

const FIRST_BOOTSTRAP_BACKOFF: Duration = Duration::from_secs(1);

impl Dialer {
    pub(crate) const fn new() -> Self {
        Dialer {
            queue: Deque::new(),
            pending: Vec::new(),
            bootstrap: Vec::new(),
            next_bootstrap: Instant::ZERO,
            bootstrap_backoff: FIRST_BOOTSTRAP_BACKOFF,
        }
    }

    /// Asks for a connection to `peer` at the first of `addresses`.
    /// Returns whether a dial is now outstanding (it may already have been).
    pub(crate) fn request(
        &mut self,
        now: Instant,
        peer: NodeId,
        mut addresses: impl Iterator<Item = Address>,
    ) -> bool {
        if self.pending.iter().any(|(p, _)| *p == peer) {
            return true;
        }
        let Some(address) = addresses.next() else {
            return false;
        };
        if self.pending.push((peer, now)).is_err() {
            return false;
        }
        let request = DialRequest {
            peer: Some(peer),
            address,
        };
        if self.queue.push_back(request).is_err() {
            self.pending.pop();
            return false;
        }
        true
    }

    pub(crate) fn poll(&mut self) -> Option<DialRequest> {
        self.queue.pop_front()
    }

    /// Whether a dial to `peer` is outstanding.
    pub(crate) fn is_pending(&self, peer: &NodeId) -> bool {
        self.pending.iter().any(|(p, _)| p == peer)
    }

    /// The dial to `peer` ended (a link came up, or it failed).
    pub(crate) fn finished(&mut self, peer: &NodeId) -> bool {
        match self.pending.iter().position(|(p, _)| p == peer) {
            Some(i) => {
                self.pending.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Removes one dial older than `timeout`, returning its peer.
    pub(crate) fn take_timed_out(&mut self, now: Instant, timeout: Duration) -> Option<NodeId> {
        let i = self
            .pending
            .iter()
            .position(|(_, at)| now.saturating_since(*at) >= timeout)?;
        Some(self.pending.swap_remove(i).0)
    }

    /// Adds a bootstrap address; `false` if the list is full.
    pub(crate) fn add_bootstrap(&mut self, address: Address) -> bool {
        self.bootstrap.contains(&address) || self.bootstrap.push(address).is_ok()
    }

    /// With no established link, dials every bootstrap address: at once,
    /// then after 1 s, 2 s, 4 s… up to `retry` between rounds (a busy
    /// bootstrap node may have refused us; a dead one should not be
    /// hammered).
    pub(crate) fn on_timeout(&mut self, now: Instant, linked: bool, retry: Duration) {
        if linked {
            self.bootstrap_backoff = FIRST_BOOTSTRAP_BACKOFF;
            self.next_bootstrap = self
                .next_bootstrap
                .min(now.saturating_add(FIRST_BOOTSTRAP_BACKOFF));
            return;
        }
        if self.bootstrap.is_empty() || now < self.next_bootstrap {
            return;
        }
        self.next_bootstrap = now.saturating_add(self.bootstrap_backoff.min(retry));
        self.bootstrap_backoff = self.bootstrap_backoff.saturating_mul(2).min(retry);
        for address in &self.bootstrap {
            let request = DialRequest {
                peer: None,
                address: *address,
            };
            if !self.queue.iter().any(|r| *r == request) {
                let _ = self.queue.push_back(request);
            }
        }
    }

    /// When [`on_timeout`](Self::on_timeout) or a dial timeout is next due.
    pub(crate) fn deadline(&self, linked: bool, timeout: Duration) -> Option<Instant> {
        let bootstrap = (!linked && !self.bootstrap.is_empty()).then_some(self.next_bootstrap);
        let dials = self
            .pending
            .iter()
            .map(|(_, at)| at.saturating_add(timeout))
            .min();
        match (bootstrap, dials) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
