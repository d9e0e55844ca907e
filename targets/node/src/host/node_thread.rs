//! The node thread: turn the runtime, hand received messages and circuit
//! notices to subscribers, answer commands, until shutdown.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant as WallInstant};

use veil_core::identity::{NodeId, MAX_SERVICE_DESCRIPTOR_LEN};
use veil_core::message::{MessageId, ReplyTo, Sender as MessageSender};
use veil_core::node::{Event, LearnService, Output, Reply, SendMessage, SendMessageError};
use veil_mio::{Runtime, StdNode};

use super::status_report::{self, listening};
use crate::host_protocol::{Command, Notice, OfferedService, SendResult};
use crate::link_names;
use crate::node_metrics::NodeMetrics;
use crate::snapshot::SavedTable;

/// The longest a host sleeps between looks at its command channel when
/// nothing wakes it (commands wake it at once; this only bounds the wait).
const TICK: Duration = Duration::from_millis(250);

/// Received messages kept while nobody listens; the oldest go first.
const BACKLOG: usize = 64;

/// Sends waiting for room in the node's outgoing message pool.
const MAX_WAITING_SENDS: usize = 4096;

/// How long shutdown waits for `Close` frames to reach the peers.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Where a message goes.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// To a node or a learnt service, over a circuit of this node's.
    Node(NodeId),
    /// Back to an anonymous sender, over the circuit its message came on.
    Reply(ReplyTo),
}

/// A send the node could not take yet (its outgoing pool was full).
struct Waiting {
    to: Target,
    data: Vec<u8>,
    done: Sender<SendResult>,
}

/// What the node thread keeps besides the runtime.
struct State {
    started: WallInstant,
    subscribers: Vec<(usize, SyncSender<(usize, Notice)>)>,
    backlog: VecDeque<Notice>,
    /// Sends waiting for their acknowledgement, and when each was handed
    /// to the node (for the delivery time metric).
    pending: HashMap<MessageId, (Sender<SendResult>, WallInstant)>,
    waiting: VecDeque<Waiting>,
    /// The guards last logged (relay spec §11).
    guards: Vec<NodeId>,
    /// The metrics `veil node --metrics` serves, when it does.
    metrics: Option<NodeMetrics>,
}

/// The node thread: turn, take messages, answer commands, until shutdown
/// (or until every command sender is gone).
pub(super) fn run(
    mut rt: Runtime,
    commands: Receiver<Command>,
    metrics: Option<NodeMetrics>,
) -> Result<SavedTable, String> {
    let mut state = State {
        started: WallInstant::now(),
        subscribers: Vec::new(),
        backlog: VecDeque::new(),
        pending: HashMap::new(),
        waiting: VecDeque::new(),
        guards: Vec::new(),
        metrics,
    };
    log::info!("node {} listening on {}", rt.node_id(), listening(&rt));
    let result = loop {
        match drain_commands(&mut rt, &mut state, &commands) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
        let turned = rt.turn(Some(TICK), |node, output| state.on_output(node, output));
        if let Err(e) = turned {
            break Err(e.to_string());
        }
        state.retry_waiting(&mut rt);
        log_guards(&rt, &mut state.guards);
    };
    // The anchors are the peers of outbound links: take them while the
    // links are up.
    let anchors = anchors(&rt);
    close_all(&mut rt, &mut state);
    for (_, (done, _)) in state.pending.drain() {
        let _ = done.send(Err("the node shut down before an acknowledgement".into()));
    }
    for w in state.waiting.drain(..) {
        let _ = w.done.send(Err("the node shut down before sending".into()));
    }
    result.map(|()| SavedTable {
        descriptors: descriptors(&rt),
        anchors,
        state: node_state(&rt),
    })
}

/// Logs the node's guards when they change (it picks them itself when the
/// config names none).
fn log_guards(rt: &Runtime, logged: &mut Vec<NodeId>) {
    let guards = rt.node().guards();
    if guards != logged.as_slice() {
        let list: Vec<String> = guards.iter().map(ToString::to_string).collect();
        log::info!(
            "guards (first hops of this node's circuits): {}",
            list.join(", ")
        );
        *logged = guards.to_vec();
    }
}

/// Answers every queued command; `false` once the host should stop.
fn drain_commands(
    rt: &mut Runtime,
    state: &mut State,
    commands: &Receiver<Command>,
) -> Result<bool, String> {
    loop {
        match commands.try_recv() {
            Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => return Ok(false),
            Err(TryRecvError::Empty) => return Ok(true),
            Ok(Command::Send { to, data, done }) => {
                state.send(rt, Target::Node(to), data, done);
            }
            Ok(Command::Reply { to, data, done }) => {
                state.send(rt, Target::Reply(to), data, done);
            }
            Ok(Command::LearnService { descriptor, done }) => {
                let learnt = rt
                    .handle(LearnService {
                        descriptor: &descriptor,
                    })
                    .map_err(|e| e.to_string());
                if let Ok(id) = learnt {
                    log::info!("learnt service {id}");
                }
                let _ = done.send(learnt);
            }
            Ok(Command::Service(tx)) => {
                let _ = tx.send(offered_service(rt));
            }
            Ok(Command::RefreshMetrics(done)) => {
                if let Some(metrics) = &state.metrics {
                    metrics.refresh(rt, state.started);
                }
                let _ = done.send(());
            }
            Ok(Command::Status(tx)) => {
                let _ = tx.send(status_report::status(rt, state.started));
            }
            Ok(Command::Descriptors(tx)) => {
                let _ = tx.send(SavedTable {
                    descriptors: descriptors(rt),
                    anchors: anchors(rt),
                    state: node_state(rt),
                });
            }
            Ok(Command::Requeue(notice)) => state.notify(notice),
            Ok(Command::Subscribe { tag, tx }) => {
                let mut alive = true;
                for notice in state.backlog.drain(..) {
                    if alive && tx.try_send((tag, notice)).is_err() {
                        alive = false;
                    }
                }
                if alive {
                    state.subscribers.push((tag, tx));
                }
            }
        }
    }
}

impl State {
    /// What the runtime hands out of the node: events, and messages that
    /// go to listeners.
    fn on_output(&mut self, node: &StdNode, output: Output<'_>) {
        match output {
            Output::Event(event) => self.on_event(node, event),
            Output::Message { message, bytes } => {
                let (from, reply_to) = match message.sender {
                    MessageSender::Node(id) => (Some(id), None),
                    MessageSender::Anonymous(to) => (None, Some(to)),
                };
                self.notify(Notice::Received {
                    from,
                    reply_to,
                    data: bytes.to_vec(),
                });
            }
            _ => {}
        }
    }

    fn on_event(&mut self, node: &StdNode, event: Event) {
        if let Some(metrics) = &self.metrics {
            metrics.on_event(&event);
        }
        match event {
            Event::MessageAcknowledged { id } => {
                if let Some((done, sent_at)) = self.pending.remove(&id) {
                    if let Some(metrics) = &self.metrics {
                        metrics.on_delivered(sent_at);
                    }
                    let _ = done.send(Ok(()));
                }
            }
            Event::MessageFailed { id, reason } => {
                if let Some((done, _)) = self.pending.remove(&id) {
                    let _ = done.send(Err(reason.to_string()));
                }
            }
            Event::CircuitReady {
                destination,
                built_in,
                ..
            } => {
                let built_in = Duration::from_micros(built_in.as_micros());
                log::debug!("circuit to {destination} ready in {built_in:?}");
                self.notify(Notice::CircuitReady {
                    destination,
                    built_in,
                });
            }
            Event::CircuitClosed {
                destination,
                reason,
                ..
            } => {
                log::debug!("circuit to {destination:?} closed: {reason:?}");
            }
            Event::RelaySuspected { relay, backoff, .. } => {
                let backoff = Duration::from_micros(backoff.as_micros());
                log::warn!(
                    "relay {relay} stopped answering on one of this node's circuits; \
                     its messages go on another path, and new paths avoid it for {backoff:?}"
                );
            }
            Event::DestinationSilent { destination, .. } => {
                log::info!(
                    "destination {destination} stopped answering while its path did; \
                     its messages wait for a new circuit"
                );
            }
            Event::GuardUnreliable {
                guard,
                success_percent,
            } => {
                log::warn!(
                    "only {success_percent}% of recent circuits through guard {guard} were built \
                     (under 70%): the guard or the network behind it may be failing circuits"
                );
            }
            Event::LinkEstablished { peer, role, .. } => {
                log::info!("link up with {peer} ({})", link_names::role(role));
            }
            Event::LinkClosed {
                peer, reason, by, ..
            } => {
                // Unauthenticated connections (a connect flood) at debug.
                match peer {
                    Some(peer) => log::info!("link closed with {peer}: {reason:?} by {by:?}"),
                    None => {
                        log::debug!("connection closed before its handshake: {reason:?} by {by:?}")
                    }
                }
            }
            Event::PeerLearned { peer, relay, .. } => {
                log::debug!(
                    "learned {peer} (relay: {relay}); {} nodes known",
                    node.node_table().len()
                );
            }
            Event::DescriptorRefused { reason, .. } => {
                log::debug!("descriptor refused: {reason:?}");
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// Hands a notice to every listener. A received message that no live
    /// listener took (none subscribed, or every one has since gone, which
    /// is only found out by trying) is kept for the next listener, so a
    /// message arriving just after a `veil listen --count 1` exits is not
    /// lost.
    ///
    /// Every listener but the last gets a copy; the last gets the notice
    /// itself, so with the usual one listener a received message (up to
    /// 64 KiB) is never copied on the node thread.
    fn notify(&mut self, notice: Notice) {
        let mut pending = Some(notice);
        let mut taken = false;
        let mut i = 0;
        while i < self.subscribers.len() {
            let Some(notice) = pending.take() else {
                break;
            };
            let Some((tag, tx)) = self.subscribers.get(i) else {
                pending = Some(notice);
                break;
            };
            let last = i.saturating_add(1) == self.subscribers.len();
            let (give, keep) = if last {
                (notice, None)
            } else {
                (notice.clone(), Some(notice))
            };
            let back = match tx.try_send((*tag, give)) {
                Ok(()) => {
                    taken = true;
                    pending = keep;
                    i = i.saturating_add(1);
                    continue;
                }
                Err(TrySendError::Full((_, back))) => {
                    log::warn!("a listener fell behind and was dropped");
                    back
                }
                Err(TrySendError::Disconnected((_, back))) => back,
            };
            pending = keep.or(Some(back));
            self.subscribers.remove(i);
        }
        if let Some(notice) = pending.filter(|n| !taken && matches!(n, Notice::Received { .. })) {
            if self.backlog.len() == BACKLOG {
                log::warn!("nobody listens: dropping the oldest received message");
                self.backlog.pop_front();
            }
            self.backlog.push_back(notice);
        }
    }

    fn send(&mut self, rt: &mut Runtime, to: Target, data: Vec<u8>, done: Sender<SendResult>) {
        if !self.waiting.is_empty() {
            self.queue_waiting(Waiting { to, data, done });
            return;
        }
        if let Some(w) = self.try_send(rt, Waiting { to, data, done }) {
            self.queue_waiting(w);
        }
    }

    fn queue_waiting(&mut self, w: Waiting) {
        if self.waiting.len() >= MAX_WAITING_SENDS {
            let _ = w.done.send(Err(
                "too many messages waiting to be sent; retry later".into()
            ));
        } else {
            self.waiting.push_back(w);
        }
    }

    /// Hands a send to the node; gives it back if the pool is full.
    fn try_send(&mut self, rt: &mut Runtime, w: Waiting) -> Option<Waiting> {
        let handed = match w.to {
            Target::Node(destination) => rt.handle(SendMessage {
                destination,
                message: &w.data,
            }),
            Target::Reply(to) => rt.handle(Reply {
                to,
                message: &w.data,
            }),
        };
        match handed {
            Ok(id) => {
                self.pending.insert(id, (w.done, WallInstant::now()));
                None
            }
            Err(SendMessageError::Full) => Some(w),
            Err(e) => {
                let reason = match (e, w.to) {
                    (SendMessageError::UnknownDestination, Target::Node(to)) => format!(
                        "node {to} is not in this node's table, nor a service it learnt; wait \
                         for discovery, learn the service's descriptor (veil learn-service), \
                         or check the id"
                    ),
                    _ => e.to_string(),
                };
                let _ = w.done.send(Err(reason));
                None
            }
        }
    }

    fn retry_waiting(&mut self, rt: &mut Runtime) {
        while let Some(w) = self.waiting.pop_front() {
            if let Some(w) = self.try_send(rt, w) {
                self.waiting.push_front(w);
                return;
            }
        }
    }
}

/// Closes every link and turns until the connections are gone (or the
/// grace time runs out): circuits over them end with the links.
fn close_all(rt: &mut Runtime, state: &mut State) {
    rt.shutdown();
    let start = WallInstant::now();
    while !rt.is_shut_down() && start.elapsed() < CLOSE_GRACE {
        let turned = rt.turn(Some(Duration::from_millis(10)), |node, output| {
            state.on_output(node, output)
        });
        if turned.is_err() {
            break;
        }
    }
}

/// The service the node offers and its signed descriptor, if it has one
/// yet.
fn offered_service(rt: &Runtime) -> Option<OfferedService> {
    let node = rt.node();
    let id = node.service_id()?;
    let mut buf = [0u8; MAX_SERVICE_DESCRIPTOR_LEN];
    // None while no introduction point is established (asked every
    // second: not logged).
    let descriptor = node
        .service_descriptor(&mut buf)
        .ok()
        .and_then(|len| buf.get(..len))
        .map(<[u8]>::to_vec);
    Some(OfferedService { id, descriptor })
}

/// The descriptors of the node's anchors (`Node::anchors`), to dial first
/// after a restart.
fn anchors(rt: &Runtime) -> Vec<Vec<u8>> {
    let node = rt.node();
    node.anchors()
        .iter()
        .filter_map(|id| node.node_table().get(id))
        .map(|e| e.descriptor.as_bytes().to_vec())
        .collect()
}

/// The node's state for `state.bin` (onion secrets: wiped when dropped).
fn node_state(rt: &Runtime) -> zeroize::Zeroizing<Vec<u8>> {
    let node = rt.node();
    let mut buf = zeroize::Zeroizing::new(vec![0u8; node.state_len()]);
    match node.save_state(&mut buf) {
        Ok(n) => buf.truncate(n),
        Err(e) => {
            log::warn!("node state not saved: {e}");
            buf.clear();
        }
    }
    buf
}

fn descriptors(rt: &Runtime) -> Vec<Vec<u8>> {
    rt.node()
        .node_table()
        .entries()
        .iter()
        .map(|e| e.descriptor.as_bytes().to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn state() -> State {
        State {
            started: WallInstant::now(),
            subscribers: Vec::new(),
            backlog: VecDeque::new(),
            pending: HashMap::new(),
            waiting: VecDeque::new(),
            guards: Vec::new(),
            metrics: None,
        }
    }

    fn received(byte: u8) -> Notice {
        Notice::Received {
            from: None,
            reply_to: None,
            data: vec![byte],
        }
    }

    fn data(notice: &Notice) -> &[u8] {
        match notice {
            Notice::Received { data, .. } => data,
            _ => panic!("not a received message"),
        }
    }

    #[test]
    fn a_message_for_a_listener_that_has_gone_waits_for_the_next() {
        let mut state = state();
        let (tx, rx) = mpsc::sync_channel(4);
        state.subscribers.push((0, tx));
        state.notify(received(1));
        assert_eq!(data(&rx.recv().unwrap().1), [1]);
        // The listener quits (say `veil listen --count 1`); the node only
        // finds out when it next tries to hand it something.
        drop(rx);
        state.notify(received(2));
        assert!(state.subscribers.is_empty());
        assert_eq!(state.backlog.len(), 1, "kept, not lost");
        assert_eq!(data(&state.backlog[0]), [2]);
    }

    #[test]
    fn a_live_listener_takes_the_message_and_nothing_is_kept() {
        let mut state = state();
        let (gone, _) = mpsc::sync_channel(4);
        let (tx, rx) = mpsc::sync_channel(4);
        state.subscribers.push((0, gone));
        state.subscribers.push((1, tx));
        state.notify(received(3));
        assert_eq!(data(&rx.recv().unwrap().1), [3]);
        assert!(state.backlog.is_empty());
        assert_eq!(state.subscribers.len(), 1);
    }
}
