//! Guards: the few relays every circuit this node originates starts at
//! (relay spec §11).
//!
//! A client that takes a fresh random first hop for every circuit sooner
//! or later takes one that an adversary runs, and that adversary then sees
//! its address and its traffic. With a small fixed set of first hops it is
//! either exposed from the start or (most likely) never. The owner may name
//! the guards ([`SetGuards`](super::SetGuards), for guards persisted across
//! a restart); when it names none the node keeps its own:
//!
//! - [`AUTO_GUARDS`] of them, drawn uniformly at random from the healthy
//!   relays of the node table that advertise an address, no two sharing a
//!   network prefix of any advertised address (nor the network it was
//!   reached in, as for the hops of a path);
//! - a guard is kept for as long as it stays a healthy relay in the table
//!   (known, not expired, fewer than `MAX_HEALTHY_FAILURES` failures in a
//!   row); one that is not is replaced by a fresh draw, and only then;
//! - one more is drawn, up to [`MAX_GUARDS`], while none is out of back-off,
//!   or while none can be the first hop to the destination at hand (it is
//!   the destination, or shares its network);
//! - a new guard comes from the *guard sample* when it can: the last
//!   [`GUARD_SAMPLE`] relays ever drawn as guards, kept in the order they
//!   were drawn and saved across restarts (Tor's sampled guard set,
//!   guard-spec §4). The first sampled relay that is healthy, out of
//!   back-off and fits the rules above is taken; only when none fits is a
//!   fresh relay drawn from the table and added to the sample (in place of
//!   the first sampled relay the table no longer lists as healthy, else the
//!   oldest). An adversary who makes guards fail, to have the node draw
//!   again and again until it draws the adversary's relay, gets the same
//!   few relays back instead of a fresh draw each time. Kept with the
//!   `relay-health` feature only (the firmware image leaves it out for
//!   flash and RAM, docs/firmware.md).
//!
//! The node reaches its guards over anonymous links only (link spec §3.1),
//! so a guard learns the client's address but never its long-term id.

use heapless::Vec;

use crate::discovery::{prefixes, NetworkPrefix, PeerEntry};
use crate::identity::{NodeId, MAX_ADDRESSES};

use super::circuits::MAX_GUARDS;
use super::{Node, Profile};

/// Guards a node picks for itself when its owner names none.
pub const AUTO_GUARDS: usize = 2;
/// Relays the guard sample holds (and the most the saved state lists). Kept
/// with the `relay-health` feature only.
pub const GUARD_SAMPLE: usize = 8;

impl<P: Profile> Node<P> {
    /// The guards: every circuit this node originates starts at one of
    /// them (if any is usable for its destination). Either those the owner
    /// set ([`SetGuards`](super::SetGuards)) or, if it set none, those the
    /// node chose itself, once it has built a circuit; persist them to keep
    /// them across a restart.
    pub fn guards(&self) -> &[NodeId] {
        &self.circuits.guards
    }

    /// The guard sample, oldest first: the relays a new guard is taken from
    /// before any other (module doc). Saved by [`save_state`](Self::save_state).
    pub fn guard_sample(&self) -> &[NodeId] {
        #[cfg(feature = "relay-health")]
        return &self.circuits.guard_sample;
        #[cfg(not(feature = "relay-health"))]
        &[]
    }

    /// Drops own-chosen guards that are no longer healthy relays and draws
    /// new ones up to [`AUTO_GUARDS`]. Guards the owner set are left alone.
    ///
    /// `destination` is the node the next circuit goes to. A guard cannot
    /// be the first hop to itself, nor to a node in its network (the path
    /// rules, relay spec §7). When no guard is available *for that
    /// destination* (it is the other guard and this one is in back-off, or
    /// they share a network), one more is drawn, up to [`MAX_GUARDS`], as
    /// when every guard is in back-off; otherwise a node would never again
    /// reach its own guard while its other guard is backed off.
    pub(crate) fn maintain_guards(&mut self, destination: Option<NodeId>) {
        if self.circuits.guards_set {
            return;
        }
        let unix = super::discovery::unix_now(&self.config, self.now);
        let table = self.discovery.table();
        let guards = &mut self.circuits.guards;
        guards.retain(|g| table.healthy_relays(unix).any(|e| e.node_id() == *g));
        // (Under `cfg`: the firmware image keeps no sample, for flash and RAM.)
        #[cfg(feature = "relay-health")]
        let gone = |id: &NodeId| table.get(id).is_none_or(|e| !e.is_path_relay(unix));
        // Guards from before the sample (restored, or saved by an older
        // version) join it.
        #[cfg(feature = "relay-health")]
        for guard in guards.iter() {
            add_to_sample(&mut self.circuits.guard_sample, *guard, gone);
        }
        let now = self.now;
        let dest_networks: Vec<NetworkPrefix, { MAX_ADDRESSES + 1 }> = destination
            .and_then(|d| table.get(&d))
            .map(prefixes)
            .unwrap_or_default();
        let serves = |e: &PeerEntry| {
            e.health.available(now)
                && Some(e.node_id()) != destination
                && !prefixes(e).iter().any(|p| dest_networks.contains(p))
        };
        let available = |guards: &Vec<NodeId, MAX_GUARDS>| {
            guards.iter().any(|g| table.get(g).is_some_and(&serves))
        };
        // Every guard in back-off (a failure pinned on each), or none fit
        // for `destination`: one more, up to MAX_GUARDS, rather than no
        // circuit at all until one is back. The ones in back-off stay,
        // and are used again once it ends.
        while guards.len() < AUTO_GUARDS || (!available(guards) && guards.len() < MAX_GUARDS) {
            let mut taken: Vec<NetworkPrefix, { MAX_GUARDS * (MAX_ADDRESSES + 1) }> = Vec::new();
            for prefix in guards
                .iter()
                .filter_map(|g| table.get(g))
                .flat_map(prefixes)
            {
                if taken.push(prefix).is_err() {
                    break;
                }
            }
            // (Every healthy relay has an address, so networks to compare.)
            let fits = |e: &&PeerEntry| {
                serves(e)
                    && !guards.contains(&e.node_id())
                    && !prefixes(e).iter().any(|p| taken.contains(p))
            };
            #[cfg(feature = "relay-health")]
            let sampled = self.circuits.guard_sample.iter().copied().find(|id| {
                table
                    .get(id)
                    .is_some_and(|e| e.is_path_relay(unix) && fits(&e))
            });
            #[cfg(not(feature = "relay-health"))]
            let sampled: Option<NodeId> = None;
            let chosen = match sampled {
                Some(id) => id,
                None => {
                    let count = table.healthy_relays(unix).filter(fits).count();
                    let Some(index) = crate::discovery::random_index(&mut self.rng, count) else {
                        break;
                    };
                    let Some(entry) = table.healthy_relays(unix).filter(fits).nth(index) else {
                        break;
                    };
                    #[cfg(feature = "relay-health")]
                    add_to_sample(&mut self.circuits.guard_sample, entry.node_id(), gone);
                    entry.node_id()
                }
            };
            if guards.push(chosen).is_err() {
                break;
            }
        }
    }
}

#[cfg(feature = "relay-health")]
/// Adds `id` to the guard sample, if not there yet: in a free place, else in
/// place of the first relay that is `gone`, else of the oldest.
fn add_to_sample(
    sample: &mut Vec<NodeId, GUARD_SAMPLE>,
    id: NodeId,
    gone: impl Fn(&NodeId) -> bool,
) {
    if sample.contains(&id) {
        return;
    }
    if sample.is_full() {
        let at = sample.iter().position(gone).unwrap_or(0);
        if at >= sample.len() {
            return;
        }
        sample.remove(at);
    }
    let _ = sample.push(id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::MAX_HEALTHY_FAILURES;
    use crate::identity::{Address, Transport};
    use crate::node::small_node_tests::{signed_descriptor, small_node, Small, UNIX};
    use crate::node::{LearnDescriptor, RecordPeerFailure, SetGuards};
    use crate::time::Instant;

    fn node() -> Node<Small> {
        small_node(1)
    }

    /// A relay's descriptor, listening at `ip` (none: no address).
    fn relay(seed: u8, ip: Option<[u8; 4]>) -> (NodeId, std::vec::Vec<u8>) {
        let addresses: std::vec::Vec<Address> = ip
            .map(|ip| Address {
                transport: Transport::Tcp,
                socket: (ip, 7000).into(),
            })
            .into_iter()
            .collect();
        signed_descriptor(seed, true, &addresses, &[])
    }

    fn learn(node: &mut Node<Small>, descriptor: &[u8]) {
        node.handle(Instant::ZERO, LearnDescriptor { descriptor })
            .unwrap();
    }

    #[test]
    fn a_node_picks_two_guards_with_addresses_in_distinct_networks_and_keeps_them() {
        let mut n = node();
        // Four relays: two in one /16, one without an address, one apart.
        let (a, da) = relay(10, Some([10, 1, 0, 1]));
        let (b, db) = relay(11, Some([10, 1, 0, 2]));
        let (c, dc) = relay(12, None);
        let (d, dd) = relay(13, Some([10, 2, 0, 1]));
        for desc in [&da, &db, &dc, &dd] {
            learn(&mut n, desc);
        }
        assert!(n.guards().is_empty(), "none until the node needs them");
        n.maintain_guards(None);
        let guards = n.guards().to_vec();
        assert_eq!(guards.len(), AUTO_GUARDS);
        assert!(
            !guards.contains(&c),
            "a relay without an address is no guard"
        );
        assert!(guards.contains(&d), "the only relay outside 10.1/16");
        assert!(
            guards.contains(&a) != guards.contains(&b),
            "one of the two relays of 10.1/16, not both"
        );
        // Kept while they work, whatever the draws.
        for _ in 0..10 {
            n.maintain_guards(None);
            assert_eq!(n.guards(), &guards[..]);
        }
    }

    #[test]
    fn a_failing_guard_is_replaced_and_the_healthy_one_kept() {
        let mut n = node();
        let relays: std::vec::Vec<_> = (0..6u8)
            .map(|i| relay(20 + i, Some([10, 10 + i, 0, 1])))
            .collect();
        for (_, desc) in &relays {
            learn(&mut n, desc);
        }
        n.maintain_guards(None);
        let before = n.guards().to_vec();
        let (failing, kept) = (before[0], before[1]);
        for _ in 0..MAX_HEALTHY_FAILURES {
            n.handle(Instant::ZERO, RecordPeerFailure { peer: failing });
        }
        n.maintain_guards(None);
        let after = n.guards();
        assert_eq!(after.len(), AUTO_GUARDS);
        assert!(after.contains(&kept));
        assert!(!after.contains(&failing));
    }

    #[test]
    fn guards_the_owner_sets_are_used_as_given_and_an_empty_set_hands_the_choice_back() {
        let mut n = node();
        let (a, da) = relay(30, Some([10, 30, 0, 1]));
        let (_, db) = relay(31, Some([10, 31, 0, 1]));
        let (_, dc) = relay(32, Some([10, 32, 0, 1]));
        for desc in [&da, &db, &dc] {
            learn(&mut n, desc);
        }
        n.handle(Instant::ZERO, SetGuards::from_slice(&[a]));
        n.maintain_guards(None);
        assert_eq!(n.guards(), &[a], "one guard, as the owner said");
        n.handle(Instant::ZERO, SetGuards::from_slice(&[]));
        n.maintain_guards(None);
        assert_eq!(n.guards().len(), AUTO_GUARDS);
    }
    #[test]
    fn a_destination_that_is_a_guard_gets_another_guard_while_the_other_is_backed_off() {
        let mut n = node();
        let relays: std::vec::Vec<_> = (0..6u8)
            .map(|i| relay(40 + i, Some([10, 40 + i, 0, 1])))
            .collect();
        for (_, desc) in &relays {
            learn(&mut n, desc);
        }
        n.maintain_guards(None);
        let before = n.guards().to_vec();
        let (destination, backed_off) = (before[0], before[1]);
        let now = n.now;
        n.discovery
            .table_mut()
            .health_mut(&backed_off)
            .unwrap()
            .on_failed(now, &mut n.rng);
        n.maintain_guards(None);
        assert_eq!(
            n.guards(),
            &before[..],
            "one guard is available: no new one for circuits in general"
        );
        n.maintain_guards(Some(destination));
        let after = n.guards().to_vec();
        assert_eq!(
            after.len(),
            AUTO_GUARDS + 1,
            "one more for this destination"
        );
        assert_eq!(&after[..AUTO_GUARDS], &before[..], "both old guards stay");
        let extra = after[AUTO_GUARDS];
        assert!(extra != destination && extra != backed_off);
        let path = crate::discovery::select_path(
            n.discovery.table(),
            destination,
            &crate::discovery::PathRules {
                relays: 2,
                guards: &after,
                #[cfg(feature = "vanguards")]
                second_layer: &[],
                avoid: &[],
                now,
            },
            UNIX,
            &mut n.rng,
        )
        .expect("a path to the guard, through the new guard");
        assert_eq!(path.hops().first(), Some(&extra));
    }
    #[test]
    fn a_failed_guard_is_replaced_from_the_sample_not_by_a_fresh_draw() {
        let mut n = node();
        let relays: std::vec::Vec<_> = (0..12u8)
            .map(|i| relay(60 + i, Some([10, 60 + i, 0, 1])))
            .collect();
        for (_, desc) in &relays {
            learn(&mut n, desc);
        }
        n.maintain_guards(None);
        let mut used: std::vec::Vec<NodeId> = n.guards().to_vec();
        // Twenty times: the first guard fails until it leaves the guards,
        // a replacement is taken, and the failed one works again.
        for round in 0..20 {
            let failing = n.guards()[0];
            for _ in 0..MAX_HEALTHY_FAILURES {
                n.handle(Instant::ZERO, RecordPeerFailure { peer: failing });
            }
            n.maintain_guards(None);
            assert_eq!(n.guards().len(), AUTO_GUARDS, "round {round}");
            assert!(!n.guards().contains(&failing));
            for g in n.guards() {
                if !used.contains(g) {
                    used.push(*g);
                }
            }
            n.discovery
                .table_mut()
                .record_success(&failing, Instant::ZERO);
        }
        // The first failure needs a fresh draw (the sample holds only the
        // two guards); every later one finds a sampled relay working again.
        assert_eq!(
            used.len(),
            AUTO_GUARDS + 1,
            "relays used as guards: {}, all but {} fresh draws",
            used.len(),
            AUTO_GUARDS + 1
        );
        assert_eq!(n.guard_sample(), &used[..]);
    }
}
