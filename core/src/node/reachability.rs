//! Whether others can dial this node (relay spec §10, "Reachability"):
//! dial-back checks, as libp2p's AutoNAT makes them.
//!
//! A node with [`Reachability::Detect`] advertises no address until peers
//! have dialled it there. It asks up to [`DIAL_BACK_PEERS`] linked peers,
//! in distinct networks where it can, to dial each address it was given
//! back (a `DIAL_BACK` request, [`DialBack`]). A peer dials as a stranger
//! would, under a throwaway identity, and shows the request's nonce over
//! the new link: the asker counts proofs it saw arrive, so a peer can lie
//! only by staying silent or claiming failure. An address with
//! [`DIAL_BACK_QUORUM`] proofs is advertised; one that as many peers
//! could not reach (or would not: it is not in the network the asker's
//! link comes from) is not. A node none of whose addresses is reached is
//! reached through introducers (`introducers.rs`). The check is made again
//! when the addresses change, and every [`RECHECK_INTERVAL`].
//!
//! A peer makes at most [`MAX_DIAL_BACKS`] such dials at once, one per
//! asker, and only to an address in the network the asker's link comes
//! from: nobody can make it dial elsewhere on their word.
//!
//! All of it is part of the `introducers` feature; without it a node
//! treats `Detect` as `Public` and declines to dial others back.

use heapless::Vec;
use rand_core::Rng;

use crate::cell::{DialBack, DialBackOutcome};
use crate::discovery::NetworkPrefix;
use crate::identity::{Address, NodeId, MAX_ADDRESSES};
use crate::link::{CloseReason, LinkPhase, LinkRole};
use crate::time::{Duration, Instant};

use super::dial::DialPolicy;
use super::introducers::INTRODUCERS;
use super::{LinkId, Node, Profile, Reachability};

/// Peers asked in one round.
pub const DIAL_BACK_PEERS: usize = 3;
/// Peers that must agree on an address (fewer if fewer were asked).
pub const DIAL_BACK_QUORUM: u8 = 2;
/// How often a node with a verdict checks again.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// How soon a round that ended without a verdict is tried again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// Dial-backs a node makes for others at once.
pub const MAX_DIAL_BACKS: usize = 2;
/// How long a round waits for answers beyond the peers' dial timeout.
const ROUND_SLACK: Duration = Duration::from_secs(5);
/// How long a dial-back link stays up after its proof was queued, if the
/// asker does not close it first.
const DIAL_BACK_LINGER: Duration = Duration::from_secs(2);

/// Capacities of the checks' state: none without the `introducers`
/// feature, so that the firmware node's RAM does not pay for it.
const ADDRESSES: usize = if INTRODUCERS { MAX_ADDRESSES } else { 0 };
const ASKS: usize = if INTRODUCERS {
    DIAL_BACK_PEERS * MAX_ADDRESSES
} else {
    0
};
const SERVING: usize = if INTRODUCERS { MAX_DIAL_BACKS } else { 0 };

/// What a node knows of its own reachability ([`Node::reachability`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReachabilityStatus {
    /// Its addresses are advertised as given ([`Reachability::Public`]).
    Assumed,
    /// Peers have not answered yet: nothing is advertised.
    Checking,
    /// Peers dialled it at the addresses it advertises.
    Reachable,
    /// Nobody can dial it: it is reached through introducers.
    Unreachable,
}

/// What peers said of one address in the current round.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    proofs: u8,
    failures: u8,
    /// Decided this round: reached or not.
    decided: Option<bool>,
}

/// What one answer says of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vote {
    /// Its proof arrived over a link dialled to it.
    Reached,
    /// Dialled and not reached, or not in the asker's network.
    NotReached,
    /// No verdict (the peer declined).
    None,
}

/// One question out.
#[derive(Debug, Clone, Copy)]
struct Ask {
    nonce: u64,
    peer: NodeId,
    address: usize,
    answered: bool,
}

/// A dial this node makes for a peer.
#[derive(Debug, Clone, Copy)]
struct Serving {
    asker: NodeId,
    /// The link the request came over, where a failure is answered.
    link: LinkId,
    nonce: u64,
    /// Given up (and answered as a failure) then, if no link came up.
    until: Instant,
    /// The dial-back link once up, and when it is closed at the latest.
    up: Option<(LinkId, Instant)>,
}

/// The asker's and the dialler's state, fixed in size.
#[derive(Debug, Clone)]
pub(crate) struct Reach {
    mode: Reachability,
    /// The addresses the owner gave ([`SetAddresses`](super::SetAddresses)).
    given: Vec<Address, ADDRESSES>,
    /// Each given address's tally, in the same order.
    tallies: Vec<Tally, ADDRESSES>,
    /// Which given addresses were reached at the last verdict.
    reached: Vec<bool, ADDRESSES>,
    status: ReachabilityStatus,
    asks: Vec<Ask, ASKS>,
    /// How many peers must agree this round.
    quorum: u8,
    /// The round in progress ends then.
    round_ends: Option<Instant>,
    next_round_at: Instant,
    serving: Vec<Serving, SERVING>,
}

impl Reach {
    pub(crate) fn new(mode: Reachability) -> Self {
        // A detecting node without addresses cannot be dialled anywhere
        // (until it is given some: `reach_addresses_changed`).
        Reach {
            mode,
            given: Vec::new(),
            tallies: Vec::new(),
            reached: Vec::new(),
            status: match mode {
                Reachability::Detect if INTRODUCERS => ReachabilityStatus::Unreachable,
                Reachability::Private if INTRODUCERS => ReachabilityStatus::Unreachable,
                _ => ReachabilityStatus::Assumed,
            },
            asks: Vec::new(),
            quorum: DIAL_BACK_QUORUM,
            round_ends: None,
            next_round_at: Instant::ZERO,
            serving: Vec::new(),
        }
    }

    /// The given addresses to advertise now, once checked (`Assumed`
    /// addresses are advertised as given: `reach_addresses_changed`).
    fn advertised(&self) -> Vec<Address, ADDRESSES> {
        match self.status {
            ReachabilityStatus::Assumed => Vec::new(),
            ReachabilityStatus::Reachable => self
                .given
                .iter()
                .zip(self.reached.iter())
                .filter(|(_, reached)| **reached)
                .map(|(a, _)| *a)
                .collect(),
            ReachabilityStatus::Checking | ReachabilityStatus::Unreachable => Vec::new(),
        }
    }

    fn detecting(&self) -> bool {
        INTRODUCERS && self.mode == Reachability::Detect && !self.given.is_empty()
    }

    /// When the reachability timers next have work.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if !INTRODUCERS {
            return None;
        }
        let serving = self
            .serving
            .iter()
            .map(|s| s.up.map_or(s.until, |(_, at)| at))
            .min();
        let round = if self.detecting() {
            Some(self.round_ends.unwrap_or(self.next_round_at))
        } else {
            None
        };
        [serving, round].into_iter().flatten().min()
    }
}

impl<P: Profile> Node<P> {
    /// Whether this node is reached through introducers now.
    pub(crate) fn is_introduced(&self) -> bool {
        INTRODUCERS && self.reach.status == ReachabilityStatus::Unreachable
    }

    /// Whether this node keeps its descriptor to itself for now: it does
    /// not know yet where it can be reached.
    pub(crate) fn withholds_descriptor(&self) -> bool {
        if !INTRODUCERS {
            return false;
        }
        match self.reach.status {
            ReachabilityStatus::Checking => self.reach.detecting(),
            ReachabilityStatus::Unreachable => self.discovery.introducers().is_empty(),
            ReachabilityStatus::Assumed | ReachabilityStatus::Reachable => false,
        }
    }

    /// The owner gave new addresses: advertise them as the mode says, and
    /// check them again if detecting.
    pub(crate) fn reach_addresses_changed(&mut self, addresses: &[Address]) {
        if !INTRODUCERS {
            self.discovery.set_addresses(addresses);
            return;
        }
        let reach = &mut self.reach;
        reach.given = addresses.iter().copied().take(ADDRESSES).collect();
        if reach.detecting() {
            reach.status = ReachabilityStatus::Checking;
            reach.reached.clear();
            reach.round_ends = None;
            reach.asks.clear();
            reach.next_round_at = self.now;
        } else if INTRODUCERS && reach.mode == Reachability::Detect {
            reach.status = ReachabilityStatus::Unreachable;
        }
        if self.reach.status == ReachabilityStatus::Assumed {
            self.discovery.set_addresses(addresses);
        } else {
            let advertised = self.reach.advertised();
            self.discovery.set_addresses(&advertised);
        }
    }

    /// Runs the reachability timers and starts a round when one is due.
    pub(crate) fn run_reachability(&mut self, now: Instant) {
        if !INTRODUCERS {
            return;
        }
        self.run_serving(now);
        if !self.reach.detecting() {
            return;
        }
        if let Some(ends) = self.reach.round_ends {
            if now >= ends {
                self.end_round();
            }
            return;
        }
        if now >= self.reach.next_round_at {
            self.start_round(now);
        }
    }

    /// Asks up to [`DIAL_BACK_PEERS`] peers, distinct networks first, to
    /// dial every given address back.
    fn start_round(&mut self, now: Instant) {
        let mut chosen: Vec<(LinkId, NodeId, Option<NetworkPrefix>), DIAL_BACK_PEERS> = Vec::new();
        let slots = self.links.as_ref().len();
        let start = crate::discovery::random_index(&mut self.rng, slots).unwrap_or(0);
        for distinct_only in [true, false] {
            for offset in 0..slots {
                let index = start.wrapping_add(offset).checked_rem(slots).unwrap_or(0);
                let Some(slot) = self.links.as_ref().get(index) else {
                    continue;
                };
                let Some(session) = slot.session.as_ref() else {
                    continue;
                };
                let (Some(peer), Some(link)) = (session.peer(), self.link_at(index)) else {
                    continue;
                };
                let fresh_network = chosen.iter().all(|(_, _, p)| *p != slot.prefix);
                let usable = !slot.anonymous
                    && !slot.dial_back
                    && session.phase() == LinkPhase::Established
                    && chosen.iter().all(|(_, id, _)| *id != peer)
                    && (fresh_network || !distinct_only);
                if usable && !chosen.is_full() {
                    let _ = chosen.push((link, peer, slot.prefix));
                }
            }
        }
        if chosen.is_empty() {
            self.reach.next_round_at = now.saturating_add(RETRY_INTERVAL);
            return;
        }
        let reach = &mut self.reach;
        reach.asks.clear();
        reach.tallies = reach.given.iter().map(|_| Tally::default()).collect();
        reach.quorum = u8::try_from(chosen.len())
            .unwrap_or(DIAL_BACK_QUORUM)
            .min(DIAL_BACK_QUORUM);
        reach.round_ends = Some(
            now.saturating_add(self.config.dial_timeout)
                .saturating_add(ROUND_SLACK),
        );
        let given = reach.given.clone();
        for (link, peer, _) in chosen {
            for (address_index, address) in given.iter().enumerate() {
                let mut nonce = [0u8; 8];
                self.rng.fill_bytes(&mut nonce);
                let nonce = u64::from_be_bytes(nonce);
                let ask = Ask {
                    nonce,
                    peer,
                    address: address_index,
                    answered: false,
                };
                if self.reach.asks.push(ask).is_ok() {
                    let cell = DialBack::Request {
                        nonce,
                        address: *address,
                    }
                    .emit();
                    self.queue_link_cell(link, &cell);
                }
            }
        }
    }

    /// A `DIAL_BACK` cell arrived over `link` from `peer` (`None` until
    /// the handshake named it). Returns `false` if it cannot be read.
    pub(crate) fn on_dial_back(&mut self, link: LinkId, cell: &crate::link::Cell) -> bool {
        if !INTRODUCERS {
            // Without the feature nothing is asked or answered: ignored.
            return true;
        }
        let Ok(repr) = crate::cell::CellRepr::parse(cell) else {
            return false;
        };
        let Ok(message) = DialBack::parse(&repr.body) else {
            return false;
        };
        match message {
            DialBack::Request { nonce, address } => self.serve_dial_back(link, nonce, address),
            DialBack::Proof { nonce } => {
                if self.count_answer(nonce, None, Vote::Reached) {
                    // Seen: the dialler need not keep the link up.
                    self.close_link_now(link);
                }
            }
            DialBack::Answer { nonce, outcome } => {
                let vote = match outcome {
                    DialBackOutcome::Unreachable | DialBackOutcome::OtherNetwork => {
                        Vote::NotReached
                    }
                    DialBackOutcome::Declined => Vote::None,
                };
                // Only the peer asked answers for itself.
                if let Some(peer) = self.peer_of(link) {
                    self.count_answer(nonce, Some(peer), vote);
                }
            }
        }
        true
    }

    /// Counts the answer to ask `nonce` (from `peer`, if the answer names
    /// one) once. Whether an open ask matched.
    fn count_answer(&mut self, nonce: u64, peer: Option<NodeId>, vote: Vote) -> bool {
        let reach = &mut self.reach;
        let Some(ask) = reach
            .asks
            .iter_mut()
            .find(|a| a.nonce == nonce && !a.answered && peer.is_none_or(|p| p == a.peer))
        else {
            return false;
        };
        ask.answered = true;
        if let Some(t) = reach.tallies.get_mut(ask.address) {
            match vote {
                Vote::Reached => t.proofs = t.proofs.saturating_add(1),
                Vote::NotReached => t.failures = t.failures.saturating_add(1),
                Vote::None => {}
            }
        }
        self.evaluate();
        true
    }

    /// Decides each address that has its quorum, and publishes a verdict
    /// as soon as one address was reached or all were decided.
    fn evaluate(&mut self) {
        let quorum = self.reach.quorum.max(1);
        for t in self.reach.tallies.iter_mut() {
            if t.decided.is_none() {
                if t.proofs >= quorum {
                    t.decided = Some(true);
                } else if t.failures >= quorum && t.proofs == 0 {
                    t.decided = Some(false);
                }
            }
        }
        let all_answered = self.reach.asks.iter().all(|a| a.answered);
        let all_decided = self.reach.tallies.iter().all(|t| t.decided.is_some());
        if all_decided || all_answered {
            self.end_round();
        } else if self.reach.tallies.iter().any(|t| t.decided == Some(true)) {
            self.publish_verdict();
        }
    }

    /// Ends the round: addresses still open go by the majority of what was
    /// said; answers that did not come by now never will.
    fn end_round(&mut self) {
        for t in self.reach.tallies.iter_mut() {
            if t.decided.is_none() {
                if t.proofs > 0 && t.proofs >= t.failures {
                    t.decided = Some(true);
                } else if t.failures > t.proofs {
                    t.decided = Some(false);
                }
            }
        }
        self.reach.round_ends = None;
        self.reach.asks.clear();
        let decided = self.publish_verdict();
        self.reach.next_round_at = self.now.saturating_add(if decided {
            RECHECK_INTERVAL
        } else {
            RETRY_INTERVAL
        });
    }

    /// Turns the tallies into a status; re-signs and pushes the descriptor
    /// if what it says changed. Whether a verdict was reached.
    fn publish_verdict(&mut self) -> bool {
        let reach = &mut self.reach;
        let reached: Vec<bool, ADDRESSES> = reach
            .tallies
            .iter()
            .map(|t| t.decided == Some(true))
            .collect();
        let status = if reached.iter().any(|r| *r) {
            ReachabilityStatus::Reachable
        } else if !reach.tallies.is_empty()
            && reach.tallies.iter().all(|t| t.decided == Some(false))
        {
            ReachabilityStatus::Unreachable
        } else {
            // No verdict: keep the last one (or keep checking).
            return false;
        };
        if status == reach.status && reached == reach.reached {
            return true;
        }
        crate::logging::log_info!("reachability: {}", status);
        reach.status = status;
        reach.reached = reached;
        let advertised = reach.advertised();
        self.discovery.set_addresses(&advertised);
        if status == ReachabilityStatus::Reachable {
            self.discovery.set_introducers(&[]);
        }
        self.discovery.sign(&self.identity, &self.config, self.now);
        self.reintroduce();
        if status == ReachabilityStatus::Unreachable {
            self.maintain_introducers();
        }
        true
    }

    /// A peer asks to be dialled back at `address` over `link`.
    fn serve_dial_back(&mut self, link: LinkId, nonce: u64, address: Address) {
        let Some(index) = self.slot_index(link) else {
            return;
        };
        let Some(slot) = self.links.as_ref().get(index) else {
            return;
        };
        let Some(asker) = slot.session.as_ref().and_then(|s| s.peer()) else {
            return;
        };
        let same_network = slot.prefix == Some(NetworkPrefix::of(address.socket.ip()));
        let outcome = if !same_network || !self.config.may_dial_for_strangers(&address) {
            Some(DialBackOutcome::OtherNetwork)
        } else if slot.anonymous
            || self.reach.serving.is_full()
            || self.reach.serving.iter().any(|s| s.asker == asker)
            || self.dialer.is_pending(&asker, true)
        {
            Some(DialBackOutcome::Declined)
        } else {
            let policy = DialPolicy::for_peer(&self.config, self.discovery.table(), &asker);
            let until = self
                .now
                .saturating_add(self.config.dial_timeout)
                .saturating_add(Duration::from_secs(1));
            let serving = Serving {
                asker,
                link,
                nonce,
                until,
                up: None,
            };
            if self
                .dialer
                .request(self.now, asker, true, core::iter::once(address), policy)
                && self.reach.serving.push(serving).is_ok()
            {
                None
            } else {
                Some(DialBackOutcome::Declined)
            }
        };
        if let Some(outcome) = outcome {
            let cell = DialBack::Answer { nonce, outcome }.emit();
            self.queue_link_cell(link, &cell);
        }
    }

    /// The link in slot `index` just came up: if it is a dial-back this
    /// node asked for, marks it so (no circuit, no duplicate check) and
    /// shows the nonce over it.
    pub(crate) fn claim_dial_back(&mut self, index: usize) {
        if !INTRODUCERS || self.reach.serving.is_empty() {
            return;
        }
        let Some(link) = self.link_at(index) else {
            return;
        };
        let Some(slot) = self.links.as_mut().get_mut(index) else {
            return;
        };
        let Some(session) = slot.session.as_mut() else {
            return;
        };
        if slot.announced
            || !slot.anonymous
            || session.role() != LinkRole::Initiator
            || !session.was_established()
        {
            return;
        }
        let Some(peer) = session.peer() else {
            return;
        };
        let now = self.now;
        let Some(serving) = self
            .reach
            .serving
            .iter_mut()
            .find(|s| s.asker == peer && s.up.is_none())
        else {
            return;
        };
        slot.dial_back = true;
        serving.up = Some((link, now.saturating_add(DIAL_BACK_LINGER)));
        let cell = DialBack::Proof {
            nonce: serving.nonce,
        }
        .emit();
        let _ = session.queue_cell(&cell);
    }

    /// A dial this node made for `peer` failed. Whether it was a
    /// dial-back (answered as a failure, and not held against the peer).
    pub(crate) fn dial_back_failed(&mut self, peer: &NodeId) -> bool {
        let Some(at) = self
            .reach
            .serving
            .iter()
            .position(|s| s.asker == *peer && s.up.is_none())
        else {
            return false;
        };
        let serving = self.reach.serving.swap_remove(at);
        let cell = DialBack::Answer {
            nonce: serving.nonce,
            outcome: DialBackOutcome::Unreachable,
        }
        .emit();
        self.queue_link_cell(serving.link, &cell);
        true
    }

    /// Closes dial-back links whose time is up and answers dials that
    /// never came up.
    fn run_serving(&mut self, now: Instant) {
        let mut index = 0;
        while let Some(serving) = self.reach.serving.get(index).copied() {
            match serving.up {
                Some((link, close_at)) if now >= close_at => {
                    self.reach.serving.swap_remove(index);
                    self.close_link_now(link);
                }
                None if now >= serving.until => {
                    self.dialer.finished(&serving.asker, true);
                    let _ = self.dial_back_failed(&serving.asker);
                }
                _ => index = index.saturating_add(1),
            }
        }
    }

    /// Queues a link-level cell on `link`, if it is up and has room (a
    /// full queue loses it: the asker times out and asks again).
    fn queue_link_cell(&mut self, link: LinkId, cell: &crate::link::Cell) {
        if let Some(index) = self.slot_index(link) {
            if let Some(session) = self.session_mut(index) {
                let _ = session.queue_cell(cell);
            }
            self.sync_slot(index);
        }
    }

    fn close_link_now(&mut self, link: LinkId) {
        let reason = CloseReason::Normal;
        let _ = self.on_close_link(self.now, super::CloseLink { link, reason });
    }

    fn peer_of(&self, link: LinkId) -> Option<NodeId> {
        let index = self.slot_index(link)?;
        self.links.as_ref().get(index)?.session.as_ref()?.peer()
    }

    /// What this node knows of its own reachability: whether others can
    /// dial it at the addresses it advertises, are still being asked, or
    /// cannot (then it is reached through the relays
    /// [`introducers`](Self::introducers) lists).
    pub fn reachability(&self) -> ReachabilityStatus {
        self.reach.status
    }

    /// The addresses this node's descriptor advertises now.
    pub fn advertised_addresses(&self) -> &[Address] {
        self.discovery.addresses()
    }

    /// The relays this node's descriptor lists as its introducers.
    pub fn introducers(&self) -> &[NodeId] {
        self.discovery.introducers()
    }
}

impl core::fmt::Display for ReachabilityStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ReachabilityStatus::Assumed => "reachable at its given addresses (not checked)",
            ReachabilityStatus::Checking => "checking whether peers can dial it",
            ReachabilityStatus::Reachable => "reachable",
            ReachabilityStatus::Unreachable => "not reachable: using introduction relays",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_fixed_and_small() {
        // docs/memory.md: what reachability adds to every node.
        let size = core::mem::size_of::<Reach>();
        assert!(size <= 1_100, "Reach is {size} bytes");
    }
}
