//! What the device does with its node, and the console lines that say so.
//!
//! It reports to one collector node, the Linux node it bootstraps from:
//! every [`SEND_INTERVAL`] it sends it a numbered message
//! (`firmware message <n>`) through a circuit of 3 relays. It answers each
//! message it receives with `echo: <message>` over the circuit the message
//! came on, without learning who sent it.
//!
//! The console (semihosting standard output, plain text) gets one line per
//! thing a tester checks: links, circuits with their relays, messages sent,
//! acknowledged, failed and received, and the stack high-water mark after
//! each acknowledgement. Node ids are written in full, in hex.

use veil_core::identity::NodeId;
use veil_core::link::LinkRole;
use veil_core::message::{MessageId, Sender};
use veil_core::node::{Event, Output, ReachabilityStatus, Reply, SendMessage, SendMessageError};
use veil_core::time::{Duration, Instant};

use crate::console::{line, Piece::Number as N, Piece::Text as T};
use crate::profile::{DeviceNode, MSG};

/// How often the device sends its collector a message.
pub const SEND_INTERVAL: Duration = Duration::from_secs(4);
/// Relays before the collector, as `NodeConfig::path_relays` says.
pub const PATH_RELAYS: usize = 3;
/// Messages in flight whose numbers are remembered for the console.
const IN_FLIGHT: usize = 4;
/// The prefix of every message the device sends.
const MESSAGE_PREFIX: &[u8] = b"firmware message ";
/// The prefix of every echo.
const ECHO_PREFIX: &[u8] = b"echo: ";

/// The device's state beside its node.
#[derive(Debug)]
pub struct App {
    /// The collector: the first node the device linked to (its bootstrap
    /// node, the only address it knows at boot).
    collector: Option<NodeId>,
    next_send: Instant,
    /// Messages sent so far.
    sent: u64,
    /// The numbers of messages still in flight, by id.
    in_flight: [Option<(MessageId, u64)>; IN_FLIGHT],
    /// What the console said last of the node's reachability.
    reachability: ReachabilityStatus,
    /// How many introducers the console listed last.
    introducers: usize,
}

impl App {
    /// A device that sends its first message once it knows its collector
    /// and enough relays.
    pub const fn new() -> Self {
        App {
            collector: None,
            next_send: Instant::ZERO,
            sent: 0,
            in_flight: [None; IN_FLIGHT],
            reachability: ReachabilityStatus::Assumed,
            introducers: 0,
        }
    }

    /// When [`tick`](Self::tick) has something to do.
    pub fn deadline(&self) -> Instant {
        self.next_send
    }

    /// Acts on one output of the node (the driver's callback).
    pub fn on_output(&mut self, now: Instant, node: &mut DeviceNode, output: Output<'_>) {
        match output {
            Output::Event(event) => self.on_event(node, event),
            Output::Message { message, bytes } => on_message(now, node, message.sender, bytes),
            _ => {}
        }
    }

    fn on_event(&mut self, node: &DeviceNode, event: Event) {
        let mut hex = [0u8; 64];
        match event {
            Event::LinkEstablished { peer, role, .. } => {
                self.collector.get_or_insert(peer);
                let role = match role {
                    LinkRole::Initiator => " (dialled)",
                    LinkRole::Responder => " (accepted)",
                };
                line(&[T("link up "), T(hex_id(&peer, &mut hex)), T(role)]);
            }
            Event::LinkClosed {
                peer: Some(peer), ..
            } => {
                line(&[T("link down "), T(hex_id(&peer, &mut hex))]);
            }
            Event::CircuitReady {
                circuit,
                destination,
                built_in,
            } => {
                line(&[
                    T("circuit ready to "),
                    T(hex_id(&destination, &mut hex)),
                    T(" in "),
                    N(built_in.as_micros() / 1_000),
                    T(" ms"),
                ]);
                if let Some(info) = node.own_circuits().find(|c| c.circuit == circuit) {
                    for hop in info.path.hops() {
                        line(&[T("  hop "), T(hex_id(hop, &mut hex))]);
                    }
                }
            }
            Event::CircuitClosed {
                destination: Some(destination),
                ..
            } => {
                line(&[T("circuit closed to "), T(hex_id(&destination, &mut hex))]);
            }
            Event::MessageAcknowledged { id } => {
                if let Some(n) = self.take_in_flight(id) {
                    let stack = crate::stack::high_water_mark();
                    line(&[T("acknowledged "), N(n)]);
                    line(&[T("stack high-water mark: "), N(stack as u64), T(" bytes")]);
                }
            }
            Event::MessageFailed { id, .. } => {
                if let Some(n) = self.take_in_flight(id) {
                    line(&[T("failed "), N(n)]);
                }
            }
            _ => {}
        }
    }

    /// Sends the next message when it is due and the node knows the
    /// collector and enough relays for a path.
    pub fn tick(&mut self, now: Instant, node: &mut DeviceNode) {
        self.report_reachability(node);
        if now < self.next_send {
            return;
        }
        self.next_send = now.saturating_add(SEND_INTERVAL);
        let Some(collector) = self.collector else {
            return;
        };
        let table = node.node_table();
        if table.get(&collector).is_none() || table.len() <= PATH_RELAYS {
            return;
        }
        let Some(free) = self.in_flight.iter().position(Option::is_none) else {
            return;
        };
        let n = self.sent.saturating_add(1);
        let mut text = [0u8; 40];
        let message = compose(MESSAGE_PREFIX, decimal(n, &mut [0u8; 20]), &mut text);
        let send = SendMessage {
            destination: collector,
            message,
        };
        match node.handle(now, send) {
            Ok(id) => {
                self.sent = n;
                if let Some(slot) = self.in_flight.get_mut(free) {
                    *slot = Some((id, n));
                }
                let mut hex = [0u8; 64];
                line(&[T("sent "), N(n), T(" to "), T(hex_id(&collector, &mut hex))]);
            }
            Err(error) => line(&[T("not sent: "), T(send_error(error))]),
        }
    }

    /// Says when the node learns whether peers can dial it, and which
    /// relays it is reached through when they cannot.
    fn report_reachability(&mut self, node: &DeviceNode) {
        let status = node.reachability();
        let introducers = node.introducers();
        if status == self.reachability && introducers.len() == self.introducers {
            return;
        }
        self.reachability = status;
        self.introducers = introducers.len();
        line(&[T("reachability: "), T(reachability_name(status))]);
        let mut hex = [0u8; 64];
        for relay in introducers {
            line(&[T("  introducer "), T(hex_id(relay, &mut hex))]);
        }
    }

    fn take_in_flight(&mut self, id: MessageId) -> Option<u64> {
        let slot = self
            .in_flight
            .iter_mut()
            .find(|s| matches!(s, Some((i, _)) if *i == id))?;
        slot.take().map(|(_, n)| n)
    }
}

/// Prints a received message and echoes it over its circuit.
fn on_message(now: Instant, node: &mut DeviceNode, sender: Sender, bytes: &[u8]) {
    let text = core::str::from_utf8(bytes).unwrap_or("(not UTF-8)");
    line(&[
        T("received "),
        N(bytes.len() as u64),
        T(" bytes: "),
        T(text),
    ]);
    let Sender::Anonymous(to) = sender else {
        return;
    };
    let mut echo = [0u8; MSG];
    let message = compose(ECHO_PREFIX, bytes, &mut echo);
    match node.handle(now, Reply { to, message }) {
        Ok(_) => line(&[T("echoed "), N(message.len() as u64), T(" bytes")]),
        Err(_) => line(&[T("echo not sent: the circuit is gone or the queue is full")]),
    }
}

/// `prefix` then `rest` in `buf`, cut to fit.
fn compose<'a>(prefix: &[u8], rest: &[u8], buf: &'a mut [u8]) -> &'a [u8] {
    let mut len = 0;
    for (dst, src) in buf.iter_mut().zip(prefix.iter().chain(rest)) {
        *dst = *src;
        len += 1;
    }
    buf.get(..len).unwrap_or_default()
}

/// `n` in decimal, in the tail of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    while let Some(digit) = start.checked_sub(1).and_then(|i| buf.get_mut(i)) {
        start -= 1;
        // `n % 10 < 10`: the cast cannot truncate.
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.get(start..).unwrap_or_default()
}

/// A node id in lower-case hex.
pub fn hex_id<'a>(id: &NodeId, buf: &'a mut [u8; 64]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in buf.chunks_exact_mut(2).zip(id.as_bytes()) {
        if let [high, low] = pair {
            *high = DIGITS[usize::from(byte >> 4)];
            *low = DIGITS[usize::from(byte & 0x0f)];
        }
    }
    core::str::from_utf8(buf).unwrap_or("?")
}

/// One word for the console (which does not use `core::fmt`).
fn reachability_name(status: ReachabilityStatus) -> &'static str {
    match status {
        ReachabilityStatus::Assumed => "assumed",
        ReachabilityStatus::Checking => "checking",
        ReachabilityStatus::Reachable => "reachable",
        ReachabilityStatus::Unreachable => "unreachable",
    }
}

/// Why a send was refused, for the console (which does not use `core::fmt`).
fn send_error(error: SendMessageError) -> &'static str {
    match error {
        SendMessageError::Full => "too many messages in flight",
        SendMessageError::TooLarge { .. } => "the message is larger than the node's slots",
        SendMessageError::ToSelf => "the collector is this node",
        SendMessageError::UnknownDestination => "the collector's descriptor is not known yet",
        SendMessageError::ReplyCircuitGone => "the circuit to reply on is gone",
    }
}
