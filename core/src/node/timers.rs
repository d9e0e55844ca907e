//! Timers: what [`Timeout`] runs, and when the node next needs it.

use crate::time::Instant;

use super::{Node, Profile, Timeout};

impl<P: Profile> Node<P> {
    pub(crate) fn on_timeout(&mut self, now: Instant, _input: Timeout) {
        if !self.link_only() {
            self.circuit_timeout();
        }
        let timers = self
            .discovery
            .on_timeout(&self.identity, &self.config, now, &mut self.rng);
        if timers.resigned {
            self.reintroduce();
        }
        if timers.gossip {
            self.gossip();
        }
        self.run_feelers(now);
        self.run_reachability(now);
        self.run_outbound(now);
        self.keep_room_for_newcomers();
        self.release_stalled_links();
        #[cfg(feature = "mixing-delays")]
        self.release_mixed();
        self.retry_held_cells();
        for index in 0..self.links.as_ref().len() {
            if let Some(session) = self.session_mut(index) {
                session.handle_timeout(now);
            }
            self.sync_slot(index);
        }
        self.pump();
        // Last, after everything due: the key pairs the last inputs' hop
        // handshakes used are drawn while the node waits for the answers.
        self.ready_ephemerals.refill(&mut self.rng);
    }

    /// When [`Timeout`] must next be handled: the earliest timer of any
    /// link, of discovery, of circuits and messages, and of dials.
    pub(crate) fn deadline(&self) -> Instant {
        let links = self
            .links
            .as_ref()
            .iter()
            .filter_map(|s| s.session.as_ref()?.next_deadline_while(s.room > 0))
            .min();
        let discovery = self.discovery.deadline(&self.config);
        let circuits = if self.link_only() {
            None
        } else {
            self.circuit_deadline()
        };
        [
            links,
            circuits,
            self.feeler_deadline(),
            self.outbound_deadline(),
            self.hold_deadline(),
            self.reach.deadline(),
            self.refill_deadline(),
            #[cfg(feature = "mixing-delays")]
            self.mixing_deadline(),
        ]
        .into_iter()
        .flatten()
        .fold(discovery, Instant::min)
    }

    /// Due at once while a ready key pair is missing, so that the driver
    /// draws it after sending what the last input produced, not before.
    fn refill_deadline(&self) -> Option<Instant> {
        self.ready_ephemerals.needs_refill().then_some(self.now)
    }
}
