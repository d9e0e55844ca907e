//! The node's side of circuits and messages: it owns the circuit engine,
//! routes circuit cells to it, builds circuits to the destinations its
//! messages wait for (dialling first hops on demand), feeds message
//! fragments into ready circuits under flow control, answers with `ACK` and
//! `CREDIT`, and rotates circuits.
//!
//! `pump` runs at the end of every input, so the node never needs a timer
//! to make progress that an input made possible.

use heapless::Vec;

use crate::capacity::{DequeStore, VecStore};
use crate::cell::RELAY_DATA_LEN;
use crate::circuit::{
    BuildTimeEstimator, CircuitEngine, CircuitEvent, CircuitHandle, CircuitTimeouts, ClientCircuit,
    Flow, RelayCircuit, Verdict, PROBE_NONCE_LEN,
};
use crate::discovery::{select_path, PathRules, MAX_PATH_RELAYS};
use crate::identity::NodeId;
use crate::link::Cell;
use crate::message::FragmentError;
use crate::message::{
    MessageId, ReassemblyError, Received, ReplyTo, Route, Sender, MESSAGE_ID_LEN,
};
use crate::noise::StaticKeypair;
use crate::time::{Duration, Instant};
use crate::{cell::RelayCommand, circuit::CircuitEnd};

use super::circuit_ctx::{self, Deliveries, NodeCtx};
#[cfg(feature = "relay-health")]
use super::guards::GUARD_SAMPLE;
use super::{DialFailed, Event, MessageFailure, Node, Profile};

/// Guards a node keeps for first hops.
pub const MAX_GUARDS: usize = 4;
/// Destinations remembered for circuit-build pacing.
const BUILD_MEMORY: usize = 8;
/// A destination gets at most one new circuit attempt per this long,
/// unless a link comes up in between.
const BUILD_RETRY: Duration = Duration::from_millis(500);
/// Forced rebuilds to one destination (ready circuits to it lost to
/// someone else) that may come in a burst. Each lost circuit adds one to
/// the destination's count, one drains away every
/// [`FORCED_REBUILD_INTERVAL`], and while the count is at this cap the node
/// builds no new circuit to that destination. A destination (or a hop)
/// that tears circuits down to make the client rebuild over fresh relays
/// gets this many fresh samples at once and then one per interval (6 per
/// 10 minutes), not one per `DESTROY` (selective denial of service,
/// Borisov et al., CCS 2007). Relays that die under churn cost a circuit
/// each; a few lost in ten minutes is normal. A leaky bucket rather than a
/// window that closes until it has passed: a destination that restarted
/// six times waits one interval for its next circuit, not up to ten
/// minutes.
pub const MAX_FORCED_REBUILDS: u8 = 6;
/// One forced rebuild drains from a destination's count this often: see
/// [`MAX_FORCED_REBUILDS`].
pub const FORCED_REBUILD_INTERVAL: Duration = Duration::from_secs(100);
/// Link-queue cells kept free of originated `DATA`, for relayed traffic and
/// control cells (`ACK`, `CREDIT`, `DESTROY`, handshakes); at most half
/// the queue, so that a node with a small queue can still send.
const ORIGINATE_RESERVE: usize = 8;
/// Originated `DATA` goes into a link's queue only while fewer than this
/// many cells wait there. The queue is FIFO, so whatever enters it is sent
/// in that order; keeping it short and refilling it each time the transport
/// takes a message (see `Node::refill_after_transmit`) means the
/// round-robin below, not the order in which circuits got credit, decides
/// whose cell goes next on a busy link (the idea of Tor's KIST scheduler).
pub(super) const ORIGINATE_AHEAD: usize = 8;
/// `ACK` data: message id, then a status byte.
const ACK_LEN: usize = MESSAGE_ID_LEN + 1;
const ACK_DELIVERED: u8 = 0;
const ACK_REFUSED: u8 = 1;

/// The node's bookkeeping around the engine.
#[derive(Debug)]
#[cfg_attr(feature = "testing", derive(Clone))]
pub(crate) struct CircuitState {
    pub(crate) guards: Vec<NodeId, MAX_GUARDS>,
    /// The last relays drawn as guards, oldest first (`guards.rs`).
    #[cfg(feature = "relay-health")]
    pub(crate) guard_sample: Vec<NodeId, GUARD_SAMPLE>,
    /// The owner set the guards ([`SetGuards`](super::SetGuards)); otherwise
    /// the node keeps its own (`guards.rs`).
    pub(crate) guards_set: bool,
    /// The layer-2 guards and their expiries (`vanguards.rs`).
    #[cfg(feature = "vanguards")]
    pub(crate) second_layer: super::vanguards::SecondLayer,
    attempts: Vec<BuildRecord, BUILD_MEMORY>,
    /// Some circuit end withheld credit for lack of room.
    credit_owed: bool,
    /// Where the next round of fragment sending starts, for fairness.
    next_turn: usize,
    /// How long own circuits may take to build, learned from how long they
    /// took (Tor's estimator, `docs/build_timeout.md`).
    pub(crate) build_times: BuildTimeEstimator,
    /// The destination of the circuit lost last and its relays, which the
    /// next path to it avoids: which of them failed is unknown, and the
    /// replacement should not run into the same failure. One set, not one
    /// per destination: a replacement is built at once, and the memory is
    /// a firmware node's.
    avoid: Option<(NodeId, Vec<NodeId, MAX_PATH_RELAYS>)>,
    /// Descriptor lookups: wanted, sent and passed on (`lookup.rs`).
    pub(crate) lookups: super::lookup::Lookups,
}

impl CircuitState {
    /// `build_timeout`: the configured default, until builds are measured.
    pub(crate) const fn new(build_timeout: Duration) -> Self {
        CircuitState {
            guards: Vec::new(),
            #[cfg(feature = "relay-health")]
            guard_sample: Vec::new(),
            guards_set: false,
            #[cfg(feature = "vanguards")]
            second_layer: super::vanguards::SecondLayer::new(),
            attempts: Vec::new(),
            credit_owed: false,
            next_turn: 0,
            build_times: BuildTimeEstimator::new(build_timeout),
            avoid: None,
            lookups: super::lookup::Lookups::new(),
        }
    }

    /// Whether a build to `dest` may be attempted now; records it if so.
    /// Not within [`BUILD_RETRY`] of the last, and not while `dest` is
    /// over its forced-rebuild cap.
    pub(super) fn may_attempt(&mut self, dest: NodeId, now: Instant) -> bool {
        if let Some(entry) = self.attempts.iter_mut().find(|r| r.dest == dest) {
            if now.saturating_since(entry.last) < BUILD_RETRY || entry.rebuilds_capped(now) {
                return false;
            }
            entry.last = now;
            return true;
        }
        let record = BuildRecord {
            dest,
            last: now,
            lost: 0,
            drained_at: now,
        };
        self.remember(record);
        true
    }

    /// A ready circuit to `dest` was torn down by someone else: one more
    /// forced rebuild counted against `dest`.
    /// `relays` were its relays: the next path to `dest` avoids them.
    pub(crate) fn circuit_lost(&mut self, dest: NodeId, now: Instant, relays: &[NodeId]) {
        self.avoid = Some((dest, Vec::from_slice(relays).unwrap_or_default()));
        let Some(entry) = self.attempts.iter_mut().find(|r| r.dest == dest) else {
            self.remember(BuildRecord {
                dest,
                last: Instant::ZERO,
                lost: 1,
                drained_at: now,
            });
            return;
        };
        entry.drain(now);
        entry.lost = entry.lost.saturating_add(1);
        // The replacement goes at once, not BUILD_RETRY after the lost
        // circuit's build: the pacing is for builds that fail, and the
        // forced-rebuild cap bounds how often this can happen.
        entry.last = Instant::ZERO;
    }

    /// The next path to `dest` avoids `relays` (once, as after a lost
    /// circuit), with no forced rebuild counted.
    pub(crate) fn avoid_next(&mut self, dest: NodeId, relays: &[NodeId]) {
        self.avoid = Some((dest, Vec::from_slice(relays).unwrap_or_default()));
    }

    /// The relays the next path to `dest` avoids (those of the circuit to
    /// it lost last, if that was the last circuit lost). Kept until a
    /// build to `dest` starts ([`avoided`](Self::avoided)): a path drawn
    /// while the link to its first hop is still being dialled is drawn
    /// again once the link is up, and must avoid them too.
    pub(crate) fn avoid_for(&self, dest: NodeId) -> &[NodeId] {
        match &self.avoid {
            Some((d, relays)) if *d == dest => relays,
            _ => &[],
        }
    }

    /// A build to `dest` started: the relays it avoided are forgotten.
    pub(crate) fn avoided(&mut self, dest: NodeId) {
        if self.avoid.as_ref().is_some_and(|(d, _)| *d == dest) {
            self.avoid = None;
        }
    }

    /// Keeps `record`, forgetting the least recently tried destination if
    /// the memory is full (but never one held back by the cap while
    /// another is not).
    fn remember(&mut self, record: BuildRecord) {
        if self.attempts.is_full() {
            let now = record.last.max(record.drained_at);
            if let Some(oldest) = self
                .attempts
                .iter()
                .enumerate()
                .min_by_key(|(_, r)| (r.rebuilds_capped(now), r.last))
                .map(|(i, _)| i)
            {
                self.attempts.swap_remove(oldest);
            }
        }
        let _ = self.attempts.push(record);
    }

    /// Forgets when builds were last tried (a first hop may have become
    /// reachable), but not the forced-rebuild counts.
    fn retry_now(&mut self) {
        for record in self.attempts.iter_mut() {
            record.last = Instant::ZERO;
        }
    }
}

/// Circuit builds to one destination.
#[derive(Debug, Clone, Copy)]
struct BuildRecord {
    dest: NodeId,
    /// When a build was last started.
    last: Instant,
    /// Ready circuits to `dest` lost (a `DESTROY` from the path or the
    /// destination, or the first link gone) and not yet drained, as of
    /// `drained_at`.
    lost: u8,
    /// When `lost` last drained (or last rose from zero): the next one
    /// drains [`FORCED_REBUILD_INTERVAL`] after it.
    drained_at: Instant,
}

impl BuildRecord {
    /// How many of `lost` have drained away by `now`, and when the last of
    /// them did.
    fn drained(&self, now: Instant) -> (u8, Instant) {
        let interval = FORCED_REBUILD_INTERVAL.as_micros();
        let elapsed = now.saturating_since(self.drained_at).as_micros();
        let steps = elapsed.checked_div(interval).unwrap_or(u64::MAX);
        let drained = u8::try_from(steps).unwrap_or(u8::MAX).min(self.lost);
        let spent = interval.saturating_mul(u64::from(drained));
        (
            drained,
            self.drained_at.saturating_add(Duration::from_micros(spent)),
        )
    }

    /// Brings `lost` up to date at `now`.
    fn drain(&mut self, now: Instant) {
        let (drained, at) = self.drained(now);
        self.lost = self.lost.saturating_sub(drained);
        self.drained_at = if self.lost == 0 { now } else { at };
    }

    fn rebuilds_capped(&self, now: Instant) -> bool {
        let (drained, _) = self.drained(now);
        self.lost.saturating_sub(drained) >= MAX_FORCED_REBUILDS
    }
}

/// Which way an answer (`ACK`, `CREDIT`) goes back.
#[derive(Debug, Clone, Copy)]
pub(super) enum Back {
    /// Towards the client of a circuit this node ends.
    Reply(CircuitEnd),
    /// To the destination (hop `usize`) of an own circuit.
    Own(CircuitHandle, usize),
}

pub(super) fn flow_of<R: VecStore<RelayCircuit>, O: VecStore<ClientCircuit>>(
    engine: &mut CircuitEngine<R, O>,
    back: Back,
) -> Option<&mut Flow> {
    match back {
        Back::Reply(at) => engine.relay_flow(at),
        Back::Own(circuit, _) => engine.client_flow(circuit),
    }
}

impl<P: Profile> Node<P> {
    /// Runs `f` on the engine with a context over the node, then handles
    /// the relay messages it delivered.
    pub(crate) fn with_engine<R>(
        &mut self,
        f: impl FnOnce(
            &mut CircuitEngine<P::Relayed, P::Own>,
            &mut NodeCtx<'_, P>,
            &[&StaticKeypair],
        ) -> R,
    ) -> R {
        let mut deliveries = Deliveries::new();
        let result = {
            let Node {
                links,
                rng,
                now,
                events,
                stats,
                messages,
                discovery,
                dialer,
                engine,
                config,
                circuits,
                senders,
                services,
                ready_ephemerals,
                ..
            } = self;
            let (table, onion) = discovery.split();
            let mut ctx = NodeCtx {
                links: links.as_mut(),
                rng,
                now: *now,
                events,
                stats,
                messages,
                table,
                dialer,
                deliveries: &mut deliveries,
                config,
                circuits,
                senders,
                services,
                ready_ephemerals,
            };
            f(engine, &mut ctx, &onion)
        };
        for delivery in deliveries {
            self.on_delivery(delivery);
        }
        result
    }

    fn push_event(&mut self, event: Event) {
        if self.events.view_mut().push_back(event).is_err() {
            self.stats.events_dropped = self.stats.events_dropped.saturating_add(1);
        }
    }

    /// A link to `peer` is established (an `anonymous` one, for our own
    /// circuits, or one under our identity).
    pub(crate) fn on_link_up(&mut self, peer: NodeId, anonymous: bool) {
        self.dialer.finished(&peer, anonymous);
        self.discovery.table_mut().record_success(&peer, self.now);
        // A first hop may have just become reachable.
        self.circuits.retry_now();
        if !anonymous {
            // `EXTEND`s go on over links under our identity only.
            self.with_engine(|engine, ctx, _| engine.link_up(ctx, &peer));
        }
    }

    /// A link is gone: its circuits are destroyed.
    pub(crate) fn on_link_gone(&mut self, link: super::LinkId) {
        let now = self.now;
        // Replies queued on circuits this node ended over that link are lost.
        let ends: Vec<CircuitEnd, 16> = self
            .engine
            .ends_mut()
            .filter(|(end, _)| end.0 == link)
            .map(|(end, _)| end)
            .take(16)
            .collect();
        for end in ends {
            self.fail_replies(end);
        }
        self.with_engine(|engine, ctx, _| engine.link_closed(ctx, link));
        let _ = now;
    }

    fn fail_replies(&mut self, end: CircuitEnd) {
        let Node {
            messages,
            events,
            stats,
            ..
        } = self;
        messages.reply_circuit_closed(end, |id| {
            let event = Event::MessageFailed {
                id,
                reason: MessageFailure::CircuitClosed,
            };
            if events.view_mut().push_back(event).is_err() {
                stats.events_dropped = stats.events_dropped.saturating_add(1);
            }
        });
    }

    pub(crate) fn on_dial_failed(&mut self, _now: Instant, input: DialFailed) {
        if let Some(peer) = input.request.peer {
            self.dial_attempt_failed(peer, input.request.anonymous);
        }
        self.pump();
    }

    /// One dial to `peer` failed: the adapter could not connect, or the
    /// link it made closed before its handshake finished (the peer refused
    /// it, or never answered). A dial no longer outstanding (given up on
    /// at its timeout, or a link to the peer came up) was accounted for
    /// then.
    pub(crate) fn dial_attempt_failed(&mut self, peer: NodeId, anonymous: bool) {
        // The loser of a transport race failing late means nothing when a
        // link to the peer is up; otherwise the other transport may still
        // get through.
        let links = self.links.as_ref();
        let linked = if anonymous {
            circuit_ctx::anonymous_link_to(links, &peer).is_some()
        } else {
            circuit_ctx::link_to(links, &peer).is_some()
        };
        if !linked && self.dialer.failed(&peer, anonymous) {
            self.peer_unreachable(peer, anonymous);
        }
    }

    fn peer_unreachable(&mut self, peer: NodeId, anonymous: bool) {
        self.dialer.finished(&peer, anonymous);
        if super::introducers::INTRODUCERS && anonymous && self.dial_back_failed(&peer) {
            // A peer's reachability check: its answer, not our failure.
            return;
        }
        self.discovery.table_mut().record_failure(&peer);
        if !anonymous {
            self.with_engine(|engine, ctx, _| engine.peer_unreachable(ctx, &peer));
        }
    }

    /// Circuit and message timers.
    pub(crate) fn circuit_timeout(&mut self) {
        let now = self.now;
        let timeouts = self.circuit_timeouts();
        // Builds about to be given up on are kept by the estimator as
        // lasting at least the timeout (right-censored). A rendezvous is
        // not one build and outlives the timeout by design: counted here,
        // it would be counted again on every run until its own deadline,
        // and the estimator would double its timeout to the cap.
        if cfg!(feature = "learned-build-timeout") {
            let timed_out = self
                .engine
                .clients()
                .filter(|c| !c.is_ready() && now.saturating_since(c.opened_at) >= timeouts.build)
                .filter(|c| !self.engine.is_rendezvous(c.handle))
                .count();
            for _ in 0..timed_out {
                self.circuits.build_times.record_timed_out();
            }
        }
        self.with_engine(|engine, ctx, _| engine.handle_timeout(ctx, timeouts));
        self.check_liveness();
        #[cfg(feature = "cover-traffic")]
        self.run_cover();
        while let Some((peer, anonymous)) =
            self.dialer.take_timed_out(now, self.config.dial_timeout)
        {
            self.peer_unreachable(peer, anonymous);
        }
        let linked = self.established_links() > 0;
        self.dialer
            .on_timeout(now, linked, self.config.bootstrap_retry);
        let (resend, give_up) = (
            self.config.message_resend_after,
            self.config.message_give_up_after,
        );
        let Node {
            messages,
            events,
            stats,
            ..
        } = self;
        messages.on_timeout(now, resend, give_up, |id| {
            let event = Event::MessageFailed {
                id,
                reason: MessageFailure::Expired,
            };
            if events.view_mut().push_back(event).is_err() {
                stats.events_dropped = stats.events_dropped.saturating_add(1);
            }
        });
        if let Some(cutoff) = now.as_micros().checked_sub(give_up.as_micros()) {
            messages.expire_incoming(Instant::from_micros(cutoff));
        }
        self.rotate_circuits();
    }

    /// When the circuit and message timers next have work.
    pub(crate) fn circuit_deadline(&self) -> Option<Instant> {
        let config = &self.config;
        let engine = self.engine.next_deadline(self.circuit_timeouts());
        let messages = self
            .messages
            .next_deadline(config.message_resend_after, config.message_give_up_after);
        let linked = self.established_links() > 0;
        let dials = self.dialer.deadline(linked, config.dial_timeout);
        // Circuits not yet past their lifetime; expired ones are closed as
        // soon as they are idle, which an input (an ACK) makes happen.
        let rotation = self
            .engine
            .clients()
            .map(|c| c.opened_at.saturating_add(config.circuit_lifetime))
            .filter(|at| *at > self.now)
            .min();
        let liveness = self
            .engine
            .clients()
            .filter(|c| c.is_ready())
            .filter_map(|c| c.liveness.deadline())
            .min();
        #[cfg(feature = "cover-traffic")]
        let cover = self.cover.deadline();
        #[cfg(not(feature = "cover-traffic"))]
        let cover = None;
        #[cfg(feature = "shaping")]
        let shaping = self.shaping.deadline.filter(|at| *at > self.now);
        #[cfg(not(feature = "shaping"))]
        let shaping = None;
        [engine, messages, dials, rotation, liveness, cover, shaping]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs every ready own circuit's liveness timer: probes the hops of
    /// a circuit that went quiet, and gives up on one whose probes went
    /// unanswered, blaming the first silent hop.
    fn check_liveness(&mut self) {
        let now = self.now;
        // One due circuit at a time: each is due no more once handled (a
        // probe round moves its deadline on, a verdict ends the circuit).
        loop {
            let due = self
                .engine
                .clients()
                .find(|c| c.is_ready() && c.liveness.deadline().is_some_and(|at| at <= now))
                .map(|c| (c.handle, c.path.hops().len()));
            let Some((circuit, hops)) = due else {
                break;
            };
            let mut nonce = [0u8; PROBE_NONCE_LEN];
            rand_core::Rng::fill_bytes(&mut self.rng, &mut nonce);
            let verdict = match self.engine.client_liveness(circuit) {
                Some(liveness) => liveness.on_timeout(now, hops, nonce),
                None => break,
            };
            if verdict == Verdict::Wait {
                break;
            }
            match verdict {
                Verdict::Wait => {}
                Verdict::Probe(nonce) => {
                    self.stats.probe_rounds = self.stats.probe_rounds.saturating_add(1);
                    for hop in 0..hops {
                        // A probe that finds no room goes unanswered, which
                        // is what the round measures.
                        self.send_back(Back::Own(circuit, hop), RelayCommand::Probe, &nonce);
                    }
                }
                Verdict::Suspect(hop) => self.give_up_on(circuit, hop),
            }
        }
    }

    /// Hop `hop` of `circuit` left its probe unanswered while every hop
    /// before it answered: blame it, and tear the circuit down (its
    /// messages go again on a new path, which avoids it).
    fn give_up_on(&mut self, circuit: CircuitHandle, hop: usize) {
        let Some(c) = self.engine.client(circuit) else {
            return;
        };
        let silent = c.path.hops().get(hop).copied();
        let is_relay = hop.saturating_add(1) < c.path.hops().len();
        self.stats.circuits_abandoned = self.stats.circuits_abandoned.saturating_add(1);
        let now = self.now;
        match silent {
            Some(relay) if is_relay => {
                self.discovery.table_mut().record_failure(&relay);
                let backoff = self
                    .discovery
                    .table_mut()
                    .health_mut(&relay)
                    .map(|h| h.on_failed(now, &mut self.rng))
                    .unwrap_or_default();
                self.push_event(Event::RelaySuspected {
                    relay,
                    circuit,
                    backoff,
                });
            }
            Some(destination) => self.push_event(Event::DestinationSilent {
                destination,
                circuit,
            }),
            None => {}
        }
        let _ = self.with_engine(|engine, ctx, _| engine.abandon(ctx, circuit));
    }

    fn circuit_timeouts(&self) -> CircuitTimeouts {
        CircuitTimeouts {
            build: self.circuits.build_times.timeout(),
            extend_wait: self.config.circuit_build_timeout,
            relay_idle: self.config.relay_idle_timeout,
        }
    }

    fn expired(&self, opened_at: Instant) -> bool {
        self.now.saturating_since(opened_at) >= self.config.circuit_lifetime
    }

    /// Closes own circuit `circuit` (a `DESTROY` down its path); nothing if
    /// it is already gone.
    pub(crate) fn close_own_circuit(&mut self, circuit: CircuitHandle) {
        let _ = self.with_engine(|engine, ctx, _| engine.close(ctx, circuit));
    }

    /// Closes circuits past their lifetime that carry no unacknowledged
    /// message.
    fn rotate_circuits(&mut self) {
        loop {
            let idle = self
                .engine
                .clients()
                .find(|c| {
                    self.expired(c.opened_at)
                        && !self.messages.circuit_busy(c.handle)
                        && !self.services.keeps(c.handle)
                })
                .map(|c| c.handle);
            let Some(circuit) = idle else {
                break;
            };
            self.close_own_circuit(circuit);
        }
    }

    /// Makes every progress the current state allows: circuits for waiting
    /// messages, fragments into ready circuits, credit owed.
    pub(crate) fn pump(&mut self) {
        #[cfg(feature = "batched-upkeep")]
        {
            self.pump_due = false;
        }
        if self.link_only() {
            return;
        }
        self.run_reachability(self.now);
        self.maintain_introducers();
        #[cfg(feature = "rendezvous")]
        {
            self.run_service();
            self.run_rendezvous();
        }
        self.run_lookups();
        self.build_circuits();
        self.send_fragments();
        if self.circuits.credit_owed && self.messages.has_incoming_room() {
            self.circuits.credit_owed = false;
            self.flush_credit();
        }
    }

    /// Starts a circuit for every destination that has messages waiting
    /// and no usable circuit.
    fn build_circuits(&mut self) {
        let mut wanted: Vec<NodeId, 4> = Vec::new();
        self.messages.waiting_destinations(|dest| {
            if !wanted.contains(&dest) {
                let _ = wanted.push(dest);
            }
            !wanted.is_full()
        });
        // The nodes this node introduces stay too: it is the one relay
        // certain to hold their current descriptors (their links bring
        // every re-signed one), which senders look up (`lookup.rs`).
        let links = self.links.as_ref();
        let introduced = |id: &NodeId| {
            super::introducers::INTRODUCERS
                && links.iter().any(|s| {
                    s.introduces_peer && s.session.as_ref().and_then(|x| x.peer()) == Some(*id)
                })
        };
        self.discovery
            .table_mut()
            .mark_in_use(|id| wanted.contains(id) || introduced(id));
        for dest in wanted {
            let usable = self
                .engine
                .clients()
                .any(|c| c.path.destination() == Some(dest) && !self.expired(c.opened_at));
            if usable || !self.circuits.may_attempt(dest, self.now) {
                continue;
            }
            #[cfg(feature = "rendezvous")]
            if self.is_known_service(&dest) {
                self.open_rendezvous(dest);
                continue;
            }
            self.open_circuit(dest);
        }
    }

    /// Chooses a path to `dest` and starts building, or dials its first
    /// hop and tries again when the link is up.
    pub(super) fn open_circuit(&mut self, dest: NodeId) {
        if self.engine.own() >= <P::Own as VecStore<ClientCircuit>>::CAPACITY {
            self.rotate_circuits();
        }
        if self.engine.own() >= <P::Own as VecStore<ClientCircuit>>::CAPACITY {
            // Make room: close the oldest ready circuit with nothing in flight.
            let idle = self
                .engine
                .clients()
                .filter(|c| {
                    c.is_ready()
                        && !self.messages.circuit_busy(c.handle)
                        && !self.services.keeps(c.handle)
                })
                .min_by_key(|c| c.opened_at)
                .map(|c| c.handle);
            match idle {
                Some(circuit) => {
                    self.close_own_circuit(circuit);
                }
                None => return,
            }
        }
        self.maintain_guards(Some(dest));
        #[cfg(feature = "vanguards")]
        self.maintain_second_layer_guards();
        let unix_now = super::discovery::unix_now(&self.config, self.now);
        // A destination that cannot be dialled is reached through one of
        // its introducers, the last relay (`introducers.rs`); the relays
        // drawn before it leave it out.
        let mut avoid: Vec<NodeId, { MAX_PATH_RELAYS + 1 }> =
            self.circuits.avoid_for(dest).iter().copied().collect();
        let introducer = self
            .introducer_for(&dest, &avoid)
            .or_else(|| self.introducer_for(&dest, &[]));
        let mut relays = self.config.path_relays;
        #[cfg(feature = "random-path-length")]
        if self.config.extra_path_relays > 0 {
            // 0 to `extra_path_relays` more, uniformly (relay spec §7; the
            // modulo's bias is below 2⁻²⁸).
            let span = u32::try_from(self.config.extra_path_relays)
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            let extra = rand_core::Rng::next_u32(&mut self.rng)
                .checked_rem(span)
                .unwrap_or(0);
            relays = relays
                .saturating_add(usize::try_from(extra).unwrap_or(0))
                .min(MAX_PATH_RELAYS);
        }
        if let Some(i) = introducer {
            relays = relays.saturating_sub(1);
            let _ = avoid.push(i.node_id);
        }
        let only_introducer: &[NodeId] = match &introducer {
            Some(i) => core::slice::from_ref(&i.node_id),
            None => &[],
        };
        // Without the relays to avoid first; if too few relays are left
        // without them, a path through one beats none. (One call site in a
        // loop: `select_path` is inlined, and flash is short on firmware.)
        let mut chosen = None;
        for avoid in [&avoid[..], only_introducer] {
            let rules = PathRules {
                relays,
                guards: &self.circuits.guards,
                #[cfg(feature = "vanguards")]
                second_layer: self.circuits.second_layer.ids(),
                avoid,
                now: self.now,
            };
            // A guard may be drawn without the avoid set (when every
            // guard is in it), and so be the introducer: that path is no
            // path, and the next pass avoids only the introducer. No path:
            // a debug line only (std's `log`, not defmt: flash), as it
            // repeats at every build retry while the messages wait; the
            // operator's clue when messages to one node expire unsent.
            chosen = select_path(
                self.discovery.table(),
                dest,
                &rules,
                unix_now,
                &mut self.rng,
            )
            .inspect_err(|_error| {
                #[cfg(feature = "log")]
                log::debug!("no path to {dest}: {_error}");
            })
            .ok()
            .and_then(|p| match &introducer {
                Some(i) => p.through_last_relay(i.node_id),
                None => Some(p),
            });
            if chosen.is_some() || avoid.is_empty() {
                break;
            }
        }
        let Some(path) = chosen else {
            return;
        };
        let table = self.discovery.table();
        // An introducer this node does not know: its key and address are
        // the ones the destination listed.
        let listed = |hop: &NodeId| introducer.filter(|i| i.node_id == *hop);
        let keys: Vec<[u8; 32], { crate::cgo::MAX_HOPS }> = path
            .hops()
            .iter()
            .filter_map(|hop| match table.get(hop) {
                Some(e) => Some(e.descriptor.repr().onion_key),
                None => listed(hop).map(|i| i.onion_key),
            })
            .collect();
        let Some(first) = path.hops().first().copied() else {
            return;
        };
        if !self.first_hop_linked_or(first, listed(&first).map(|i| i.address)) {
            // The path is drawn again once the link is up: keep the relays
            // it must avoid for that draw.
            return;
        }
        self.circuits.avoided(dest);
        if cfg!(feature = "relay-health") {
            let (now, table) = (self.now, self.discovery.table_mut());
            for relay in path.relays() {
                if let Some(health) = table.health_mut(relay) {
                    health.on_tried(now);
                }
            }
        }
        let _ = self.with_engine(|engine, ctx, _| engine.open(ctx, path, &keys));
    }

    /// Whether a circuit can start at `first` now. Our own circuits start
    /// over an anonymous link only, never over a link that shows the first
    /// hop who we are (relay spec §11); without one, it is dialled (at its
    /// descriptor's addresses, or `fallback`) and the caller tries again
    /// when the link is up.
    pub(crate) fn first_hop_linked_or(
        &mut self,
        first: NodeId,
        fallback: Option<crate::identity::Address>,
    ) -> bool {
        if circuit_ctx::first_hop_link(self.links.as_ref(), &self.config, &first).is_some() {
            return true;
        }
        let anonymous = self.config.anonymous_first_hops;
        if !self.dialer.is_pending(&first, anonymous) {
            let addresses = match self.discovery.table().get(&first) {
                Some(e) => e.descriptor.repr().addresses.clone(),
                None => fallback.into_iter().collect(),
            };
            let policy =
                super::dial::DialPolicy::for_peer(&self.config, self.discovery.table(), &first);
            if !self
                .dialer
                .request(self.now, first, anonymous, addresses.into_iter(), policy)
            {
                self.discovery.table_mut().record_failure(&first);
            }
        }
        false
    }

    /// Sends message fragments round-robin over every circuit that has
    /// something to send, credit, and room on its link: one cell per
    /// circuit per round, so circuits sharing a link share it fairly.
    pub(crate) fn send_fragments(&mut self) {
        let mut routes: Vec<(Route, Back, super::LinkId), 32> = Vec::new();
        for c in self.engine.clients().filter(|c| c.is_ready()) {
            let (Some(destination), Some(last)) =
                (c.path.destination(), c.path.hops().len().checked_sub(1))
            else {
                continue;
            };
            let route = Route::Circuit {
                circuit: c.handle,
                destination,
            };
            if routes
                .push((route, Back::Own(c.handle, last), c.end.0))
                .is_err()
            {
                break;
            }
        }
        let mut ends: Vec<CircuitEnd, 8> = Vec::new();
        self.messages.reply_ends(|end| ends.push(end).is_ok());
        // Reply ends in a shaped burst are offered their slots after their
        // messages are gone, to pad the burst to its bucket.
        #[cfg(feature = "shaping")]
        for end in self.shaped_replies() {
            if !ends.contains(&end) {
                let _ = ends.push(end);
            }
        }
        for end in ends {
            let _ = routes.push((Route::Reply(end), Back::Reply(end), end.0));
        }
        #[cfg(feature = "shaping")]
        {
            self.shaping.deadline = None;
        }
        if routes.is_empty() {
            return;
        }
        let count = routes.len();
        let start = self.circuits.next_turn.checked_rem(count).unwrap_or(0);
        self.circuits.next_turn = self.circuits.next_turn.wrapping_add(1);
        let mut fragment = [0u8; RELAY_DATA_LEN];
        // Found once: no message is queued while fragments go out, so a
        // route with nothing waiting now has nothing for this whole round.
        let waiting = self
            .messages
            .routes_with_unsent(routes.iter().map(|&(route, _, _)| route));
        loop {
            let mut progressed = false;
            for step in 0..count {
                let turn = start.wrapping_add(step).checked_rem(count).unwrap_or(0);
                let Some(&(route, back, link)) = routes.get(turn) else {
                    continue;
                };
                let can_send = flow_of(&mut self.engine, back).is_some_and(|f| f.can_send());
                let room = circuit_ctx::queue_room(self.links.as_mut(), link);
                let capacity = <P::LinkSendQueue as DequeStore<Cell>>::CAPACITY;
                let queued = capacity.saturating_sub(room);
                // Small queues (firmware) keep half free instead.
                if !can_send
                    || room <= ORIGINATE_RESERVE.min(capacity / 2)
                    || queued >= ORIGINATE_AHEAD
                {
                    continue;
                }
                #[cfg(feature = "shaping")]
                if self.shaping_holds(back) {
                    continue;
                }
                #[cfg(feature = "message-padding")]
                if self.send_owed_padding(back) {
                    progressed = true;
                    continue;
                }
                let next = if waiting & (1 << turn) != 0 {
                    self.messages.next_fragment(self.now, route, &mut fragment)
                } else {
                    None
                };
                let Some(len) = next else {
                    #[cfg(feature = "shaping")]
                    if self.shaping_idle_slot(back) {
                        progressed = true;
                    }
                    continue;
                };
                let data = fragment.get(..len).unwrap_or(&[]);
                if self.send_back(back, RelayCommand::Data, data) {
                    #[cfg(feature = "shaping")]
                    self.shaping_fragment_sent(back);
                    if let Some(flow) = flow_of(&mut self.engine, back) {
                        flow.on_sent();
                        #[cfg(feature = "message-padding")]
                        {
                            let owed = padding_after(self.config.message_padding, data);
                            flow.padding_owed = flow.padding_owed.saturating_add(owed);
                        }
                    }
                    if let Back::Own(circuit, _) = back {
                        if let Some(liveness) = self.engine.client_liveness(circuit) {
                            liveness.on_sent(self.now);
                        }
                        #[cfg(feature = "cover-traffic")]
                        self.cover_on_activity(circuit);
                    }
                    self.stats.data_cells_sent = self.stats.data_cells_sent.saturating_add(1);
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        #[cfg(feature = "shaping")]
        self.after_shaped_round(routes.iter().map(|&(_, back, _)| back));
    }

    /// Sends one `PADDING` relay message towards `back` if the circuit
    /// owes its last message's bucket some (relay spec §8.1); whether it
    /// did. The caller has checked the link's room, as for a fragment.
    #[cfg(feature = "message-padding")]
    fn send_owed_padding(&mut self, back: Back) -> bool {
        if flow_of(&mut self.engine, back).is_none_or(|f| f.padding_owed == 0) {
            return false;
        }
        if !self.send_back(back, RelayCommand::Padding, &[]) {
            return false;
        }
        if let Some(flow) = flow_of(&mut self.engine, back) {
            flow.padding_owed = flow.padding_owed.saturating_sub(1);
        }
        self.stats.message_padding_cells_sent =
            self.stats.message_padding_cells_sent.saturating_add(1);
        true
    }

    /// Sends a relay message towards `back`; whether it was queued. Not
    /// inlined: it is called from several places, each copy would carry
    /// the CGO layering, and flash is short on firmware.
    #[inline(never)]
    pub(super) fn send_back(&mut self, back: Back, command: RelayCommand, data: &[u8]) -> bool {
        self.with_engine(|engine, ctx, _| match back {
            Back::Reply(at) => engine.reply_relay(ctx, at, command, data),
            Back::Own(circuit, hop) => engine.send_relay(ctx, circuit, hop, command, data),
        })
        .is_ok()
    }

    /// A relay message for this node, from the engine.
    fn on_delivery(&mut self, delivery: CircuitEvent) {
        let (back, command, data, sender) = match delivery {
            // A lookup may come to any hop (relay spec §2.3).
            CircuitEvent::Delivered {
                at,
                command: RelayCommand::Lookup,
                data,
            } => {
                self.on_circuit_lookup(at, &data);
                return;
            }
            // End-to-end traffic is for the last hop of a circuit only.
            CircuitEvent::Delivered { at, .. } if self.engine.relay_flow(at).is_none() => return,
            CircuitEvent::Delivered { at, command, data } => (
                Back::Reply(at),
                command,
                data,
                Sender::Anonymous(ReplyTo(at)),
            ),
            CircuitEvent::Data {
                circuit,
                hop,
                command,
                data,
            } => {
                // Rendezvous answers come from the last hop built.
                #[cfg(feature = "rendezvous")]
                if self
                    .engine
                    .client(circuit)
                    .is_some_and(|c| hop.saturating_add(1) == c.layers.len())
                    && (self.on_rendezvous_answer(circuit, command, &data)
                        || self.on_service_message(circuit, command, &data))
                {
                    return;
                }
                if command == RelayCommand::LookupAnswer {
                    self.on_lookup_answer(&data);
                    return;
                }
                let Some(c) = self.engine.client(circuit) else {
                    return;
                };
                if command == RelayCommand::ProbeReply {
                    let hops = c.path.hops().len();
                    let outstanding = self.messages.circuit_busy(circuit);
                    #[cfg(feature = "cover-traffic")]
                    if hop.saturating_add(1) == hops
                        && self.on_loop_reply(circuit, &data, outstanding)
                    {
                        return;
                    }
                    if let Some(liveness) = self.engine.client_liveness(circuit) {
                        liveness.on_probe_reply(self.now, hop, hops, &data, outstanding);
                    }
                    return;
                }
                // End-to-end traffic comes from the destination only.
                let (Some(dest), true) = (
                    c.path.destination(),
                    hop.saturating_add(1) == c.path.hops().len(),
                ) else {
                    return;
                };
                (Back::Own(circuit, hop), command, data, Sender::Node(dest))
            }
            _ => return,
        };
        if let (Back::Own(circuit, _), RelayCommand::Ack) = (back, command) {
            // The round trip of the message's last fragment.
            let sent = data
                .first_chunk::<MESSAGE_ID_LEN>()
                .and_then(|id| self.messages.sent_whole_at(&MessageId(*id)));
            if let (Some(sent), Some(liveness)) = (sent, self.engine.client_liveness(circuit)) {
                liveness.on_sample(self.now.saturating_since(sent));
            }
        }
        self.on_relay_message(back, command, &data, sender);
        if let Back::Own(circuit, _) = back {
            // The destination answered: the circuit works.
            let outstanding = self.messages.circuit_busy(circuit);
            if let Some(liveness) = self.engine.client_liveness(circuit) {
                liveness.on_progress(self.now, outstanding);
            }
        }
    }

    fn on_relay_message(&mut self, back: Back, command: RelayCommand, data: &[u8], sender: Sender) {
        match command {
            RelayCommand::Data => {
                if let Some(flow) = flow_of(&mut self.engine, back) {
                    flow.on_received();
                }
                #[cfg(feature = "cover-traffic")]
                if let Back::Own(circuit, _) = back {
                    self.cover_on_activity(circuit);
                }
                let result = self.messages.accept(self.now, data, sender);
                self.after_fragment(back, data, result);
                self.return_credit(back);
            }
            RelayCommand::Ack => self.on_ack(data),
            RelayCommand::Credit => {
                let cells = data
                    .first_chunk::<2>()
                    .map_or(0, |c| u16::from_be_bytes(*c));
                if let Some(flow) = flow_of(&mut self.engine, back) {
                    flow.on_credit(cells);
                }
            }
            _ => {}
        }
    }

    fn after_fragment(
        &mut self,
        back: Back,
        data: &[u8],
        result: Result<Received, ReassemblyError>,
    ) {
        let ack = match result {
            Ok(Received::Complete { id, len }) => {
                // The message itself goes out through `poll`.
                let _ = len;
                self.stats.messages_received = self.stats.messages_received.saturating_add(1);
                Some((id, ACK_DELIVERED))
            }
            Ok(Received::Duplicate(id)) => Some((id, ACK_DELIVERED)),
            Ok(Received::Partial) => None,
            Err(ReassemblyError::Fragment(FragmentError::TooLarge(_))) => data
                .first_chunk::<MESSAGE_ID_LEN>()
                .map(|id| (MessageId(*id), ACK_REFUSED)),
            // Malformed or no room: the sender resends.
            Err(_) => None,
        };
        if let Some((id, status)) = ack {
            let mut body = [0u8; ACK_LEN];
            for (dst, src) in body.iter_mut().zip(id.0.iter().chain([status].iter())) {
                *dst = *src;
            }
            // A lost ACK is repaired by the sender's resend.
            self.send_back(back, RelayCommand::Ack, &body);
        }
    }

    fn on_ack(&mut self, data: &[u8]) {
        let Some(id) = data
            .first_chunk::<MESSAGE_ID_LEN>()
            .map(|id| MessageId(*id))
        else {
            return;
        };
        let status = data.get(MESSAGE_ID_LEN).copied().unwrap_or(ACK_DELIVERED);
        let Some(id) = self.messages.acknowledge(&id) else {
            return;
        };
        if status == ACK_REFUSED {
            self.push_event(Event::MessageFailed {
                id,
                reason: MessageFailure::Refused,
            });
        } else {
            self.stats.messages_acknowledged = self.stats.messages_acknowledged.saturating_add(1);
            self.push_event(Event::MessageAcknowledged { id });
        }
    }

    /// The window this node grants the senders of its circuits, from the
    /// room its message pool keeps for incoming messages (without
    /// `wide-windows`, the window every receiver grants).
    fn receive_window(&self) -> u16 {
        #[cfg(feature = "wide-windows")]
        {
            let slot =
                crate::message::MessagePool::<P::Messages, P::MessageBuffer>::MAX_MESSAGE_LEN;
            crate::circuit::receive_window(self.messages.per_direction().saturating_mul(slot))
        }
        #[cfg(not(feature = "wide-windows"))]
        crate::circuit::CIRCUIT_WINDOW
    }

    /// Returns credit owed on `back` if a batch is due and there is room
    /// for more messages; otherwise remembers that credit is owed.
    fn return_credit(&mut self, back: Back) {
        if !self.messages.has_incoming_room() {
            self.circuits.credit_owed = true;
            return;
        }
        let window = self.receive_window();
        let Some(cells) =
            flow_of(&mut self.engine, back).and_then(|f| f.take_credit(false, window))
        else {
            return;
        };
        if !self.send_back(back, RelayCommand::Credit, &cells.to_be_bytes()) {
            if let Some(flow) = flow_of(&mut self.engine, back) {
                flow.uncredited = flow.uncredited.saturating_add(cells);
            }
            self.circuits.credit_owed = true;
        }
    }

    /// Returns owed credit on every circuit end.
    fn flush_credit(&mut self) {
        let mut backs: Vec<Back, 32> = Vec::new();
        for c in self.engine.clients() {
            if c.flow.uncredited > 0 {
                if let Some(last) = c.path.hops().len().checked_sub(1) {
                    let _ = backs.push(Back::Own(c.handle, last));
                }
            }
        }
        for (end, flow) in self.engine.ends_mut() {
            if flow.uncredited > 0 && backs.push(Back::Reply(end)).is_err() {
                // The rest on a later round.
                self.circuits.credit_owed = true;
                break;
            }
        }
        let window = self.receive_window();
        for back in backs {
            let Some(cells) =
                flow_of(&mut self.engine, back).and_then(|f| f.take_credit(true, window))
            else {
                continue;
            };
            if !self.send_back(back, RelayCommand::Credit, &cells.to_be_bytes()) {
                if let Some(flow) = flow_of(&mut self.engine, back) {
                    flow.uncredited = flow.uncredited.saturating_add(cells);
                }
                self.circuits.credit_owed = true;
            }
        }
    }
}

/// The `PADDING` relay messages owed once the fragment `data` has gone: if
/// it is the last of its message, what rounds the message's fragment count
/// up to its bucket; else none.
#[cfg(feature = "message-padding")]
fn padding_after(padding: super::MessagePadding, data: &[u8]) -> u16 {
    use crate::message::{Fragment, FRAGMENT_LEN, MAX_FRAGMENTS};
    // Off (the default): no fragment header is read on the send path.
    if padding == super::MessagePadding::None {
        return 0;
    }
    let Ok(fragment) = Fragment::parse(data, FRAGMENT_LEN.saturating_mul(MAX_FRAGMENTS)) else {
        return 0;
    };
    let total = usize::try_from(fragment.total_len).unwrap_or(0);
    let offset = usize::try_from(fragment.offset).unwrap_or(0);
    if offset.saturating_add(FRAGMENT_LEN) < total {
        return 0;
    }
    let fragments = total.div_ceil(FRAGMENT_LEN).max(1);
    u16::try_from(padding.padding_cells(fragments)).unwrap_or(u16::MAX)
}
