//! Whether an own circuit is still alive, from its own round trips: the
//! progress timer and the per-hop probe (relay spec §10, "Liveness").
//!
//! A relay that stops answering without closing its sockets (a hung
//! process, an overloaded host, a dropped route) shows nothing at the link
//! layer until the link's detector gives up, seconds at best. The client
//! sees it sooner, on the circuit itself: it sent cells that call for an
//! answer (`DATA` is answered by `CREDIT` and `ACK`) and nothing came back.
//!
//! - While cells are outstanding, the circuit expects to hear from its
//!   destination within an RTO derived from the circuit's own smoothed
//!   round-trip time and its variation, as RFC 6298 derives TCP's:
//!   `srtt + 4·rttvar`, at least [`MIN_RTO`]. The first sample is the last
//!   hop's build round trip; later ones are `ACK`s and probe answers.
//! - When the RTO passes in silence, the client does not conclude anything
//!   yet: it sends a `PROBE` to every hop at once, each answered by that hop
//!   alone (CGO lets only the addressed hop recognise it, and only that hop
//!   can make an answer the client recognises as its own). Answers are
//!   awaited for twice the RTO, at least [`MIN_PROBE_WAIT`].
//! - If the destination answers, the circuit is alive and its sender is
//!   just slow (an application that stopped taking messages withholds
//!   credit): the RTO doubles for the next round, up to [`MAX_BACKOFF`]
//!   doublings, and nothing is blamed. A relay that is slow but alive
//!   answers too, only later, and is never declared dead for it.
//! - If not, the first hop that did not answer is the suspect: every hop
//!   before it answered, so the cells got that far. The circuit is torn down
//!   and its messages go again on a path without the suspect.
//!
//! A hop before the suspect could have dropped the probes for the hops after
//! it instead of forwarding them, and so framed the next one. It could as
//! well fail that relay's `EXTEND`s, and the same forgiveness applies: the
//! framed relay's next working circuit clears it (see the node's relay
//! health).

use crate::link::RttEstimator;
use crate::time::{Duration, Instant};

/// The least the RTO may be. Loopback round trips are a millisecond; a
/// timer that short would fire on a scheduling hiccup, and every false
/// alarm costs a probe round. Half a second keeps a silent relay found in
/// about 1.5 s (the RTO, then the probe wait), under Tor's 10 s by far.
pub const MIN_RTO: Duration = Duration::from_millis(500);
/// The least time probe answers are awaited.
pub const MIN_PROBE_WAIT: Duration = Duration::from_secs(1);
/// The most the RTO may be: after that, the circuit is quiet, not slow.
pub const MAX_RTO: Duration = Duration::from_secs(60);
/// How many times a stalled but answering circuit's RTO doubles.
pub const MAX_BACKOFF: u8 = 6;
/// Bytes of a probe's nonce (the `PROBE` data, echoed by `PROBE_REPLY`).
pub const PROBE_NONCE_LEN: usize = 8;

/// The liveness state of one own circuit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Liveness {
    rtt: RttEstimator,
    /// When the oldest cell went that nothing has answered since, while
    /// some answer is due.
    waiting_since: Option<Instant>,
    /// The probe round in progress.
    probe: Option<ProbeRound>,
    /// Doublings of the RTO, one per probe round the destination answered
    /// without the circuit making progress.
    backoff: u8,
}

/// One round of probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProbeRound {
    sent_at: Instant,
    nonce: [u8; PROBE_NONCE_LEN],
    /// Bit `i` set: hop `i` answered.
    answered: u16,
}

/// What the owner must do after [`Liveness::on_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing yet.
    Wait,
    /// Send a `PROBE` with this nonce to every hop.
    Probe([u8; PROBE_NONCE_LEN]),
    /// Hop `usize` (0-based; the destination is the last) did not answer
    /// while every hop before it did: tear the circuit down.
    Suspect(usize),
}

impl Liveness {
    /// A circuit with no round trip measured yet.
    pub const fn new() -> Self {
        Liveness {
            rtt: RttEstimator::new(),
            waiting_since: None,
            probe: None,
            backoff: 0,
        }
    }

    /// One round-trip time sample of the whole circuit.
    pub fn on_sample(&mut self, rtt: Duration) {
        self.rtt.update(rtt);
    }

    /// The circuit's round-trip time estimator.
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// A cell that calls for an answer went at `now`.
    pub fn on_sent(&mut self, now: Instant) {
        if self.waiting_since.is_none() {
            self.waiting_since = Some(now);
        }
    }

    /// The destination was heard from at `now` (`DATA`, `ACK`, `CREDIT`):
    /// the circuit made progress. `outstanding`: answers are still due.
    pub fn on_progress(&mut self, now: Instant, outstanding: bool) {
        self.waiting_since = outstanding.then_some(now);
        self.probe = None;
        self.backoff = 0;
    }

    /// Nothing more is due (every message acknowledged).
    pub fn on_idle(&mut self) {
        self.waiting_since = None;
        self.probe = None;
    }

    /// Hop `hop` of a circuit of `hops` hops answered a probe with `nonce`
    /// at `now`. `outstanding`: answers are still due. A destination's
    /// answer ends the round: the circuit is alive.
    pub fn on_probe_reply(
        &mut self,
        now: Instant,
        hop: usize,
        hops: usize,
        nonce: &[u8],
        outstanding: bool,
    ) {
        let Some(round) = self.probe.as_mut() else {
            return;
        };
        if nonce != round.nonce.as_slice() {
            return;
        }
        let bit = u32::try_from(hop)
            .ok()
            .and_then(|h| 1u16.checked_shl(h))
            .unwrap_or(0);
        round.answered |= bit;
        if hop.saturating_add(1) == hops {
            self.rtt.update(now.saturating_since(round.sent_at));
            self.probe = None;
            self.waiting_since = outstanding.then_some(now);
            self.backoff = self.backoff.saturating_add(1).min(MAX_BACKOFF);
        }
    }

    /// The retransmission-style timeout: `srtt + 4·rttvar`, between
    /// [`MIN_RTO`] and [`MAX_RTO`], doubled per stalled round.
    pub fn rto(&self) -> Duration {
        let base = match self.rtt.smoothed() {
            Some(srtt) => srtt.saturating_add(self.rtt.variance().saturating_mul(4)),
            None => MIN_RTO,
        };
        let base = base.max(MIN_RTO).min(MAX_RTO);
        base.saturating_mul(1u64 << self.backoff.min(MAX_BACKOFF))
            .min(MAX_RTO)
    }

    /// How long probe answers are awaited: twice the RTO, at least
    /// [`MIN_PROBE_WAIT`].
    pub fn probe_wait(&self) -> Duration {
        self.rto().saturating_mul(2).max(MIN_PROBE_WAIT)
    }

    /// When [`on_timeout`](Self::on_timeout) next has work.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.probe, self.waiting_since) {
            (Some(round), _) => Some(round.sent_at.saturating_add(self.probe_wait())),
            (None, Some(since)) => Some(since.saturating_add(self.rto())),
            (None, None) => None,
        }
    }

    /// Runs the timers at `now` for a circuit of `hops` hops; `nonce` is
    /// fresh randomness for a probe round, used if one starts.
    pub fn on_timeout(
        &mut self,
        now: Instant,
        hops: usize,
        nonce: [u8; PROBE_NONCE_LEN],
    ) -> Verdict {
        if self.deadline().is_none_or(|at| now < at) {
            return Verdict::Wait;
        }
        match self.probe {
            Some(round) => {
                let silent = (0..hops)
                    .find(|&hop| {
                        let bit = u32::try_from(hop)
                            .ok()
                            .and_then(|h| 1u16.checked_shl(h))
                            .unwrap_or(0);
                        round.answered & bit == 0
                    })
                    .unwrap_or(hops.saturating_sub(1));
                self.probe = None;
                self.waiting_since = None;
                Verdict::Suspect(silent)
            }
            None => {
                self.probe = Some(ProbeRound {
                    sent_at: now,
                    nonce,
                    answered: 0,
                });
                Verdict::Probe(nonce)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: [u8; PROBE_NONCE_LEN] = [7; PROBE_NONCE_LEN];

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn live(rtt_ms: u64) -> Liveness {
        let mut l = Liveness::new();
        l.on_sample(Duration::from_millis(rtt_ms));
        l
    }

    #[test]
    fn an_idle_circuit_has_no_deadline() {
        let mut l = live(10);
        assert_eq!(l.deadline(), None);
        assert_eq!(l.on_timeout(at(100_000), 4, NONCE), Verdict::Wait);
    }

    #[test]
    fn silence_past_the_rto_probes_then_names_the_first_silent_hop() {
        let mut l = live(10);
        l.on_sent(at(1_000));
        // srtt 10 ms, rttvar 5 ms: 30 ms, below the floor.
        assert_eq!(l.rto(), MIN_RTO);
        assert_eq!(l.deadline(), Some(at(1_500)));
        assert_eq!(l.on_timeout(at(1_499), 4, NONCE), Verdict::Wait);
        assert_eq!(l.on_timeout(at(1_500), 4, NONCE), Verdict::Probe(NONCE));
        l.on_probe_reply(at(1_510), 0, 4, &NONCE, true);
        // A wrong nonce is not an answer.
        l.on_probe_reply(at(1_510), 1, 4, &[1; PROBE_NONCE_LEN], true);
        assert_eq!(l.deadline(), Some(at(2_500)));
        assert_eq!(l.on_timeout(at(2_499), 4, NONCE), Verdict::Wait);
        assert_eq!(l.on_timeout(at(2_500), 4, NONCE), Verdict::Suspect(1));
        assert_eq!(l.deadline(), None);
    }

    #[test]
    fn progress_resets_the_timer() {
        let mut l = live(10);
        l.on_sent(at(1_000));
        l.on_progress(at(1_400), true);
        assert_eq!(l.deadline(), Some(at(1_900)));
        l.on_progress(at(1_800), false);
        assert_eq!(l.deadline(), None);
    }

    #[test]
    fn an_answering_destination_is_alive_and_backs_the_timer_off() {
        let mut l = live(10);
        l.on_sent(at(0));
        assert_eq!(l.on_timeout(at(500), 3, NONCE), Verdict::Probe(NONCE));
        // Slow but alive: the destination answers late, within the wait.
        l.on_probe_reply(at(900), 2, 3, &NONCE, true);
        assert_eq!(l.rto(), Duration::from_secs(1));
        assert_eq!(l.deadline(), Some(at(1_900)));
        assert_eq!(l.on_timeout(at(1_900), 3, NONCE), Verdict::Probe(NONCE));
        l.on_probe_reply(at(1_950), 2, 3, &NONCE, true);
        assert_eq!(l.rto(), Duration::from_secs(2));
        // Real progress clears the back-off.
        l.on_progress(at(2_000), true);
        assert_eq!(l.rto(), MIN_RTO);
    }

    #[test]
    fn the_rto_follows_the_measured_round_trip() {
        let mut l = live(400);
        // 400 + 4·200 = 1200 ms.
        assert_eq!(l.rto(), Duration::from_millis(1_200));
        assert_eq!(l.probe_wait(), Duration::from_millis(2_400));
        l.on_sent(at(0));
        assert_eq!(l.on_timeout(at(1_199), 2, NONCE), Verdict::Wait);
        assert_eq!(l.on_timeout(at(1_200), 2, NONCE), Verdict::Probe(NONCE));
        // Nobody answered: the first hop is the suspect.
        assert_eq!(l.on_timeout(at(3_600), 2, NONCE), Verdict::Suspect(0));
    }

    #[test]
    fn the_rto_is_capped() {
        let mut l = live(50_000);
        assert_eq!(l.rto(), MAX_RTO);
        for _ in 0..10 {
            l.on_sent(at(0));
            let _ = l.on_timeout(at(1_000_000), 3, NONCE);
            l.on_probe_reply(at(1_000_001), 2, 3, &NONCE, true);
        }
        assert_eq!(l.rto(), MAX_RTO);
    }
}
