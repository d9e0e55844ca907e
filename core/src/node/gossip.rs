//! The node's descriptor inputs, and gossip over its links.

use crate::discovery::{InsertOutcome, Source};
use crate::link::LinkPhase;
use crate::time::Instant;

use super::descriptor_cells::Arrival;
use super::{
    discovery, DescriptorRefusal, LearnDescriptor, Node, Profile, RecordPeerFailure, SetAddresses,
};

impl<P: Profile> Node<P> {
    pub(crate) fn on_set_addresses(&mut self, now: Instant, input: SetAddresses) {
        self.reach_addresses_changed(&input.addresses);
        self.discovery.sign(&self.identity, &self.config, now);
        self.reintroduce();
    }

    pub(crate) fn on_learn_descriptor(
        &mut self,
        now: Instant,
        input: LearnDescriptor<'_>,
    ) -> Result<InsertOutcome, DescriptorRefusal> {
        self.discovery
            .learn(
                &self.config,
                now,
                input.descriptor,
                Arrival::From(Source::Local),
                &mut self.stats,
            )
            .map(|(outcome, ..)| outcome)
    }

    pub(crate) fn on_record_peer_failure(&mut self, _now: Instant, input: RecordPeerFailure) {
        self.discovery.table_mut().record_failure(&input.peer);
    }

    /// Sends our (re-signed) descriptor again on every link, at the next sync.
    pub(crate) fn reintroduce(&mut self) {
        for index in 0..self.links.as_ref().len() {
            if let Some(slot) = self.links.as_mut().get_mut(index) {
                slot.introduced = false;
            }
            self.sync_slot(index);
        }
    }

    /// Sends random samples of known descriptors over random established
    /// links.
    pub(crate) fn gossip(&mut self) {
        for _ in 0..discovery::GOSSIP_FANOUT {
            self.gossip_once();
        }
    }

    /// Sends a random sample of known descriptors over one random
    /// established link.
    fn gossip_once(&mut self) {
        // Not over our anonymous links: what we know would single us out.
        let gossiped = |s: &&mut super::LinkSlot<P>| {
            !s.anonymous
                && s.session
                    .as_ref()
                    .is_some_and(|x| x.phase() == LinkPhase::Established)
        };
        let established = self.links.as_mut().iter_mut().filter(gossiped).count();
        if established == 0 || self.discovery.table().is_empty() {
            return;
        }
        let pick = crate::discovery::random_index(&mut self.rng, established).unwrap_or(0);
        let session = self
            .links
            .as_mut()
            .iter_mut()
            .filter(gossiped)
            .nth(pick)
            .and_then(|s| s.session.as_mut());
        if let Some(session) = session {
            let cells = self.discovery.gossip_cells(&mut self.rng, session.peer());
            for cell in &cells {
                // A full queue means the link is busy; gossip can wait.
                if session.queue_cell(cell).is_err() {
                    break;
                }
            }
        }
    }
}
