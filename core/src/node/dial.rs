//! Connections the node asks its adapter to make: to a circuit's first hop,
//! to the next hop of an `EXTEND`, and to the bootstrap addresses.
//!
//! The core never opens a socket. It queues a [`DialRequest`]; the adapter
//! connects and calls [`Node::open_link_over`](super::Node::open_link_over) as the
//! initiator (expecting the requested peer), or reports the failure with
//! [`Node::dial_failed`](super::Node::dial_failed). A dial the adapter does
//! not answer within `dial_timeout` counts as failed. At most
//! [`MAX_PENDING_DIALS`] dials to known peers are outstanding at once.
//!
//! Transport selection (happy eyeballs): a peer that advertises both
//! transports is dialled over QUIC first (if the adapter can), and over TCP
//! `transport_race_delay` later unless QUIC connected by then; the first
//! link to come up wins and a later one is closed as `Duplicate`. A peer
//! whose last link was TCP is dialled over TCP first, with QUIC only as a
//! fallback on failure (its network may block UDP). Any failed dial falls
//! back to the other transport before the peer counts as unreachable.

use heapless::{Deque, Vec};

use crate::identity::{Address, NodeId, Transport};
use crate::time::{Duration, Instant};

/// Dials to known peers outstanding at once.
pub const MAX_PENDING_DIALS: usize = 8;
/// Bootstrap addresses a node keeps.
pub const MAX_BOOTSTRAP: usize = 8;

/// A connection the node wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DialRequest {
    /// The node expected at the address; `None` for a bootstrap address,
    /// where whoever answers is welcome.
    pub peer: Option<NodeId>,
    /// Where to connect.
    pub address: Address,
    /// Open the link as an anonymous initiator (link spec §3.1): under a
    /// throwaway identity, for circuits this node originates. Carried into
    /// [`OpenLink::anonymous`](super::OpenLink::anonymous) by
    /// [`OpenLink::for_request`](super::OpenLink::for_request).
    pub anonymous: bool,
}

/// How to dial one peer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DialPolicy {
    /// The adapter can dial QUIC.
    pub(crate) quic: bool,
    /// Head start of the first transport before the second is raced.
    pub(crate) race_delay: Duration,
    /// What worked for this peer last time.
    pub(crate) last_worked: Option<Transport>,
}

impl DialPolicy {
    /// The policy for dialling `peer` under `config`.
    pub(crate) fn for_peer<S: crate::capacity::VecStore<crate::discovery::PeerEntry>>(
        config: &super::NodeConfig,
        table: &crate::discovery::NodeTable<S>,
        peer: &NodeId,
    ) -> Self {
        DialPolicy {
            quic: config.quic_dials,
            race_delay: config.transport_race_delay,
            last_worked: table.get(peer).and_then(|e| e.transport),
        }
    }
}

#[derive(Debug)]
#[cfg_attr(feature = "testing", derive(Clone))]
struct Pending {
    peer: NodeId,
    /// A dial for an anonymous link: tracked apart from a dial to the same
    /// peer under our identity.
    anonymous: bool,
    started: Instant,
    /// Dials handed to the adapter and not yet answered.
    outstanding: u8,
    /// The other transport: its address, and when to race it without
    /// waiting for a failure (`None`: only on failure).
    fallback: Option<(Address, Option<Instant>)>,
}

#[derive(Debug)]
#[cfg_attr(feature = "testing", derive(Clone))]
pub(crate) struct Dialer {
    queue: Deque<DialRequest, { 2 * MAX_PENDING_DIALS + MAX_BOOTSTRAP }>,
    pending: Vec<Pending, MAX_PENDING_DIALS>,
    /// Bootstrap addresses, each with the node id the operator gave, if any.
    bootstrap: Vec<(Address, BootstrapId), MAX_BOOTSTRAP>,
    next_bootstrap: Instant,
    /// Wait before the next bootstrap round: 1 s, doubling up to the
    /// configured retry, back to 1 s once linked.
    bootstrap_backoff: Duration,
}

/// The node id kept with a bootstrap address: an `Option<NodeId>` with the
/// `keyed-bootstrap` feature, nothing without it (33 bytes a slot the
/// firmware image has no RAM for), so that one `Dialer` serves both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BootstrapId(
    #[cfg(feature = "keyed-bootstrap")] Option<NodeId>,
    #[cfg(not(feature = "keyed-bootstrap"))] (),
);

impl BootstrapId {
    /// Keeps `id`; `None` if it is an id and this build keeps none.
    pub(crate) fn new(id: Option<NodeId>) -> Option<Self> {
        #[cfg(feature = "keyed-bootstrap")]
        return Some(BootstrapId(id));
        #[cfg(not(feature = "keyed-bootstrap"))]
        return id.is_none().then_some(BootstrapId(()));
    }

    /// The node id, if one was given.
    pub(crate) fn get(self) -> Option<NodeId> {
        #[cfg(feature = "keyed-bootstrap")]
        return self.0;
        #[cfg(not(feature = "keyed-bootstrap"))]
        return None;
    }
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

    /// Asks for a connection to `peer` (an `anonymous` one or not),
    /// choosing among `addresses` by `policy`. Returns whether a dial is
    /// now outstanding (it may already have been).
    pub(crate) fn request(
        &mut self,
        now: Instant,
        peer: NodeId,
        anonymous: bool,
        addresses: impl Iterator<Item = Address>,
        policy: DialPolicy,
    ) -> bool {
        if self.is_pending(&peer, anonymous) {
            return true;
        }
        let (mut tcp, mut quic) = (None, None);
        for address in addresses {
            match address.transport {
                Transport::Tcp => tcp = tcp.or(Some(address)),
                Transport::Quic if policy.quic => quic = quic.or(Some(address)),
                Transport::Quic => {}
            }
        }
        let race_at = Some(now.saturating_add(policy.race_delay));
        let (first, fallback) = match (quic, tcp) {
            (Some(q), Some(t)) if policy.last_worked == Some(Transport::Tcp) => {
                (t, Some((q, None)))
            }
            (Some(q), Some(t)) => (q, Some((t, race_at))),
            (Some(only), None) | (None, Some(only)) => (only, None),
            (None, None) => return false,
        };
        let pending = Pending {
            peer,
            anonymous,
            started: now,
            outstanding: 1,
            fallback,
        };
        if self.pending.push(pending).is_err() {
            return false;
        }
        let request = DialRequest {
            peer: Some(peer),
            address: first,
            anonymous,
        };
        if self.queue.push_back(request).is_err() {
            self.pending.pop();
            return false;
        }
        true
    }

    /// Hands the fallback dial of the pending entry at `index` to the adapter.
    fn start_fallback(&mut self, index: usize) {
        let Some(entry) = self.pending.get_mut(index) else {
            return;
        };
        if let Some((address, _)) = entry.fallback.take() {
            let request = DialRequest {
                peer: Some(entry.peer),
                address,
                anonymous: entry.anonymous,
            };
            if self.queue.push_back(request).is_ok() {
                entry.outstanding = entry.outstanding.saturating_add(1);
            }
        }
    }

    /// The pending dial to `peer` of the `anonymous` kind.
    fn position(&self, peer: &NodeId, anonymous: bool) -> Option<usize> {
        self.pending
            .iter()
            .position(|p| p.peer == *peer && p.anonymous == anonymous)
    }

    /// A dial to `peer` (of the `anonymous` kind) failed. Returns `true` if
    /// that was its last attempt, so the peer is now unreachable; `false`
    /// if another transport is still being (or now) tried, or no dial to
    /// it was outstanding.
    pub(crate) fn failed(&mut self, peer: &NodeId, anonymous: bool) -> bool {
        let Some(index) = self.position(peer, anonymous) else {
            return false;
        };
        self.start_fallback(index);
        let Some(entry) = self.pending.get_mut(index) else {
            return false;
        };
        entry.outstanding = entry.outstanding.saturating_sub(1);
        if entry.outstanding > 0 {
            return false;
        }
        self.pending.swap_remove(index);
        true
    }

    pub(crate) fn poll(&mut self) -> Option<DialRequest> {
        self.queue.pop_front()
    }

    /// Whether a dial to `peer` (of the `anonymous` kind) is outstanding.
    pub(crate) fn is_pending(&self, peer: &NodeId, anonymous: bool) -> bool {
        self.position(peer, anonymous).is_some()
    }

    /// A link to `peer` (of the `anonymous` kind) came up: its dial is over.
    pub(crate) fn finished(&mut self, peer: &NodeId, anonymous: bool) -> bool {
        match self.position(peer, anonymous) {
            Some(i) => {
                self.pending.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Removes one dial older than `timeout`, returning its peer and
    /// whether it was anonymous.
    pub(crate) fn take_timed_out(
        &mut self,
        now: Instant,
        timeout: Duration,
    ) -> Option<(NodeId, bool)> {
        let i = self
            .pending
            .iter()
            .position(|p| now.saturating_since(p.started) >= timeout)?;
        let pending = self.pending.swap_remove(i);
        Some((pending.peer, pending.anonymous))
    }

    /// Starts the raced second transport of dials whose head start is over.
    fn race(&mut self, now: Instant) {
        for index in 0..self.pending.len() {
            let due = self
                .pending
                .get(index)
                .and_then(|p| p.fallback)
                .and_then(|(_, at)| at)
                .is_some_and(|at| now >= at);
            if due {
                self.start_fallback(index);
            }
        }
    }

    /// Whether the owner gave bootstrap addresses: the node joins a
    /// network by itself, and keeps its own outbound links.
    pub(crate) fn has_bootstrap(&self) -> bool {
        !self.bootstrap.is_empty()
    }

    /// Whether `address` is a bootstrap address.
    pub(crate) fn is_bootstrap(&self, address: &Address) -> bool {
        self.bootstrap.iter().any(|(a, _)| a == address)
    }

    /// Whether `peer` was given as a bootstrap node's id (`id@address`).
    pub(crate) fn is_bootstrap_peer(&self, peer: &NodeId) -> bool {
        self.bootstrap
            .iter()
            .any(|(_, id)| id.get().as_ref() == Some(peer))
    }

    /// Dials outstanding to known peers under our identity.
    pub(crate) fn pending_named(&self) -> usize {
        self.pending.iter().filter(|p| !p.anonymous).count()
    }

    /// Adds a bootstrap address, with the node id if it was given (a second
    /// entry for the same address replaces the id); `false` if the list is
    /// full. The caller has checked that this build keeps the id
    /// ([`BootstrapId::new`]).
    pub(crate) fn add_bootstrap(&mut self, address: Address, node_id: BootstrapId) -> bool {
        if let Some(entry) = self.bootstrap.iter_mut().find(|(a, _)| *a == address) {
            entry.1 = node_id;
            return true;
        }
        self.bootstrap.push((address, node_id)).is_ok()
    }

    /// With no established link, dials every bootstrap address: at once,
    /// then after 1 s, 2 s, 4 s… up to `retry` between rounds (a busy
    /// bootstrap node may have refused us; a dead one should not be
    /// hammered).
    pub(crate) fn on_timeout(&mut self, now: Instant, linked: bool, retry: Duration) {
        self.race(now);
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
        for (address, node_id) in &self.bootstrap {
            // With the node's id the dial is marked for it (link spec §2.2)
            // and must reach that node; without, whoever answers.
            let request = DialRequest {
                peer: node_id.get(),
                address: *address,
                anonymous: false,
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
            .map(|p| {
                let race = p.fallback.and_then(|(_, at)| at);
                let give_up = p.started.saturating_add(timeout);
                race.map_or(give_up, |r| r.min(give_up))
            })
            .min();
        match (bootstrap, dials) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn peer() -> NodeId {
        NodeId([9; 32])
    }

    fn addresses() -> [Address; 2] {
        let socket: SocketAddr = "10.1.0.1:7700".parse().unwrap();
        [
            Address {
                transport: Transport::Tcp,
                socket,
            },
            Address {
                transport: Transport::Quic,
                socket,
            },
        ]
    }

    fn policy(last_worked: Option<Transport>) -> DialPolicy {
        DialPolicy {
            quic: true,
            race_delay: Duration::from_millis(250),
            last_worked,
        }
    }

    fn transports(dialer: &mut Dialer) -> std::vec::Vec<Transport> {
        core::iter::from_fn(|| dialer.poll())
            .map(|r| r.address.transport)
            .collect()
    }

    #[test]
    fn quic_goes_first_and_tcp_is_raced_after_the_head_start() {
        let mut d = Dialer::new();
        assert!(d.request(
            Instant::ZERO,
            peer(),
            false,
            addresses().into_iter(),
            policy(None)
        ));
        assert_eq!(transports(&mut d), [Transport::Quic]);
        d.on_timeout(Instant::from_micros(249_000), true, Duration::from_secs(30));
        assert!(transports(&mut d).is_empty(), "not before the head start");
        d.on_timeout(Instant::from_micros(250_000), true, Duration::from_secs(30));
        assert_eq!(transports(&mut d), [Transport::Tcp]);
    }

    #[test]
    fn a_peer_last_reached_over_tcp_is_dialled_over_tcp_first_with_quic_only_on_failure() {
        let mut d = Dialer::new();
        let tcp = Some(Transport::Tcp);
        assert!(d.request(
            Instant::ZERO,
            peer(),
            false,
            addresses().into_iter(),
            policy(tcp)
        ));
        assert_eq!(transports(&mut d), [Transport::Tcp]);
        // No race: QUIC waits for TCP to fail.
        d.on_timeout(
            Instant::from_micros(10_000_000),
            true,
            Duration::from_secs(30),
        );
        assert!(transports(&mut d).is_empty());
        assert!(!d.failed(&peer(), false), "QUIC is still to be tried");
        assert_eq!(transports(&mut d), [Transport::Quic]);
        assert!(
            d.failed(&peer(), false),
            "both failed: the peer is unreachable"
        );
        assert!(!d.is_pending(&peer(), false));
    }

    #[test]
    fn a_failed_quic_dial_falls_back_to_tcp_at_once() {
        let mut d = Dialer::new();
        assert!(d.request(
            Instant::ZERO,
            peer(),
            false,
            addresses().into_iter(),
            policy(None)
        ));
        assert_eq!(transports(&mut d), [Transport::Quic]);
        // Refused well inside the head start: TCP now, not at 250 ms.
        assert!(!d.failed(&peer(), false), "TCP is still to be tried");
        assert_eq!(transports(&mut d), [Transport::Tcp]);
        // The race timer has nothing left to start.
        d.on_timeout(Instant::from_micros(250_000), true, Duration::from_secs(30));
        assert!(transports(&mut d).is_empty());
        assert!(d.finished(&peer(), false));
    }

    #[test]
    fn without_quic_dials_only_tcp_is_used() {
        let mut d = Dialer::new();
        let no_quic = DialPolicy {
            quic: false,
            ..policy(None)
        };
        assert!(d.request(
            Instant::ZERO,
            peer(),
            false,
            addresses().into_iter(),
            no_quic
        ));
        assert_eq!(transports(&mut d), [Transport::Tcp]);
        assert!(d.failed(&peer(), false), "no other transport to try");
    }

    #[test]
    fn an_anonymous_dial_and_a_dial_under_our_identity_to_one_peer_are_apart() {
        let mut d = Dialer::new();
        let no_quic = DialPolicy {
            quic: false,
            ..policy(None)
        };
        assert!(d.request(
            Instant::ZERO,
            peer(),
            false,
            addresses().into_iter(),
            no_quic
        ));
        // The anonymous dial is not swallowed by the other one.
        assert!(!d.is_pending(&peer(), true));
        assert!(d.request(
            Instant::ZERO,
            peer(),
            true,
            addresses().into_iter(),
            no_quic
        ));
        let requests: std::vec::Vec<DialRequest> = core::iter::from_fn(|| d.poll()).collect();
        assert_eq!(
            requests
                .iter()
                .map(|r| r.anonymous)
                .collect::<std::vec::Vec<_>>(),
            [false, true]
        );
        // Each one ends on its own.
        assert!(d.finished(&peer(), true));
        assert!(d.is_pending(&peer(), false));
        assert!(!d.is_pending(&peer(), true));
        assert!(d.failed(&peer(), false), "its only transport failed");
        assert!(!d.is_pending(&peer(), false));
    }

    #[test]
    fn the_raced_transport_of_an_anonymous_dial_is_anonymous_too() {
        let mut d = Dialer::new();
        assert!(d.request(
            Instant::ZERO,
            peer(),
            true,
            addresses().into_iter(),
            policy(None)
        ));
        d.on_timeout(Instant::from_micros(250_000), true, Duration::from_secs(30));
        let requests: std::vec::Vec<DialRequest> = core::iter::from_fn(|| d.poll()).collect();
        assert_eq!(requests.len(), 2);
        assert!(requests.iter().all(|r| r.anonymous));
        assert_eq!(
            d.take_timed_out(Instant::from_micros(10_000_000), Duration::from_secs(10)),
            Some((peer(), true))
        );
    }
}
