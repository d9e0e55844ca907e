//! One node on its own thread: a `veil_mio::Runtime` turned in a loop, and
//! a command channel other threads use to send messages, take received
//! ones, ask for status, and shut it down.
//!
//! Both `veil node` (one host, driven by the control socket) and `veil demo`
//! (many hosts in one process) are built on this.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant as WallInstant};

use mio::Waker;
use serde::{Deserialize, Serialize};
use veil_core::identity::{NodeId, Transport};
use veil_core::link::{LinkPhase, LinkRole};
use veil_core::message::{MessageId, Sender as MessageSender};
use veil_core::node::{Event, SendMessageError};
use veil_mio::{Runtime, StdNode};

/// The longest a host sleeps between looks at its command channel when
/// nothing wakes it (commands wake it at once; this only bounds the wait).
const TICK: Duration = Duration::from_millis(250);

/// Received messages kept while nobody listens; the oldest go first.
const BACKLOG: usize = 64;

/// Sends waiting for room in the node's outgoing message pool.
const MAX_WAITING_SENDS: usize = 4096;

/// How long shutdown waits for `Close` frames to reach the peers.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How a send ended: acknowledged by the destination, or why not.
pub type SendResult = Result<(), String>;

/// Something a host tells its subscribers.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A whole message arrived.
    Received {
        /// The node that sent it, when known: a reply from the destination
        /// of one of our circuits. Messages over circuits built by others
        /// are anonymous (`None`).
        from: Option<NodeId>,
        /// The message.
        data: Vec<u8>,
    },
    /// A circuit this node built became ready.
    CircuitReady {
        /// Its last hop.
        destination: NodeId,
        /// From `CREATE` to the last hop's answer.
        built_in: Duration,
    },
}

/// What other threads ask of a host.
#[derive(Debug)]
pub enum Command {
    /// Send `data` to `to`; `done` gets the outcome once.
    Send {
        /// The destination.
        to: NodeId,
        /// The message.
        data: Vec<u8>,
        /// Gets `Ok` once acknowledged, or the reason it failed.
        done: Sender<SendResult>,
    },
    /// Report the node's status.
    Status(Sender<Status>),
    /// Stream notices to `tx`, tagged with `tag`, until it is dropped or
    /// falls behind by its whole capacity.
    Subscribe {
        /// Tag sent along with each notice.
        tag: usize,
        /// Where notices go.
        tx: SyncSender<(usize, Notice)>,
    },
    /// A received message a listener took but could not hand on (its
    /// client had gone): kept for the next listener.
    Requeue(Notice),
    /// The signed descriptor of every node in the table.
    Descriptors(Sender<Vec<Vec<u8>>>),
    /// Close every link and stop.
    Shutdown,
}

/// A snapshot of a node, as `veil status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// The node's id (hex).
    pub node_id: String,
    /// The address it listens on.
    pub listen: String,
    /// Seconds since the node started.
    pub uptime_secs: u64,
    /// Open links.
    pub links: Vec<LinkStatus>,
    /// Circuits this node is a hop of (relay or destination).
    pub circuits_relayed: usize,
    /// Circuits this node built.
    pub circuits_own: usize,
    /// Unacknowledged outgoing messages.
    pub messages_outgoing: usize,
    /// Incoming messages, partial or waiting to be taken.
    pub messages_incoming: usize,
    /// Nodes in the node table.
    pub known_nodes: usize,
    /// Of those, how many relay.
    pub known_relays: usize,
    /// Bytes written to links since start, closed links included.
    pub bytes_sent: u64,
    /// Bytes read from links since start, closed links included.
    pub bytes_received: u64,
    /// Cells sent over links since start, closed links included.
    pub cells_sent: u64,
    /// Cells received over links since start, closed links included.
    pub cells_received: u64,
    /// Links that have closed since start.
    pub links_closed: u64,
    /// Counters since start.
    pub circuits_built: u64,
    /// Messages queued to send.
    pub messages_sent: u64,
    /// Messages acknowledged by their destination.
    pub messages_acknowledged: u64,
    /// Messages received whole.
    pub messages_received: u64,
    /// Cells dropped at a full link queue.
    pub cells_dropped: u64,
}

/// One link in a [`Status`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkStatus {
    /// The peer's node id (hex), once authenticated.
    pub peer: Option<String>,
    /// "initiator" (we dialled) or "responder" (we accepted).
    pub role: String,
    /// "handshaking", "established", "closing" or "closed".
    pub phase: String,
    /// What the link runs over: "tcp" or "quic" (`None` if the adapter
    /// did not say).
    pub transport: Option<String>,
    /// Smoothed round-trip time in milliseconds, once measured.
    pub rtt_ms: Option<f64>,
    /// Bytes written to this link.
    pub bytes_sent: u64,
    /// Bytes read from this link.
    pub bytes_received: u64,
    /// Cells sent over this link.
    pub cells_sent: u64,
    /// Cells received over this link.
    pub cells_received: u64,
}

/// A node running on its own thread.
#[derive(Debug)]
pub struct Host {
    id: NodeId,
    handle: HostHandle,
    thread: Option<JoinHandle<Result<Vec<Vec<u8>>, String>>>,
}

/// What other threads hold to give a host commands.
#[derive(Debug, Clone)]
pub struct HostHandle {
    commands: Sender<Command>,
    waker: Arc<Waker>,
}

impl HostHandle {
    /// Hands `command` to the node thread and wakes it.
    pub fn command(&self, command: Command) -> Result<(), String> {
        self.commands
            .send(command)
            .map_err(|_| "the node has stopped".to_string())?;
        // A failed wake only delays the command to the next tick.
        let _ = self.waker.wake();
        Ok(())
    }

    /// Starts sending `data` to `to`; the receiver gets the outcome.
    pub fn send(&self, to: NodeId, data: Vec<u8>) -> Result<Receiver<SendResult>, String> {
        let (done, rx) = mpsc::channel();
        self.command(Command::Send { to, data, done })?;
        Ok(rx)
    }

    /// The node's status.
    pub fn status(&self) -> Result<Status, String> {
        let (tx, rx) = mpsc::channel();
        self.command(Command::Status(tx))?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the node thread did not answer".to_string())
    }

    /// The descriptors of every known node.
    pub fn descriptors(&self) -> Result<Vec<Vec<u8>>, String> {
        let (tx, rx) = mpsc::channel();
        self.command(Command::Descriptors(tx))?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the node thread did not answer".to_string())
    }
}

impl Host {
    /// Moves `rt` to a new thread and starts turning it.
    pub fn spawn(mut rt: Runtime, name: String) -> Result<Host, String> {
        let waker = rt
            .waker()
            .map_err(|e| format!("could not create the runtime's waker: {e}"))?;
        let (commands, rx) = mpsc::channel();
        let id = rt.node_id();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(rt, rx))
            .map_err(|e| format!("could not start a node thread: {e}"))?;
        Ok(Host {
            id,
            handle: HostHandle { commands, waker },
            thread: Some(thread),
        })
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// A handle for other threads.
    pub fn handle(&self) -> HostHandle {
        self.handle.clone()
    }

    /// Hands `command` to the node thread and wakes it.
    pub fn command(&self, command: Command) -> Result<(), String> {
        self.handle.command(command)
    }

    /// Starts sending `data` to `to`; the receiver gets the outcome.
    pub fn send(&self, to: NodeId, data: Vec<u8>) -> Result<Receiver<SendResult>, String> {
        self.handle.send(to, data)
    }

    /// The node's status.
    pub fn status(&self) -> Result<Status, String> {
        self.handle.status()
    }

    /// Whether the node thread ended (it only does on its own after an
    /// error, which [`shutdown`](Self::shutdown) then returns).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Closes every link, stops the thread, and returns the descriptors of
    /// every node it knew at the end.
    pub fn shutdown(mut self) -> Result<Vec<Vec<u8>>, String> {
        let _ = self.command(Command::Shutdown);
        self.join()
    }

    fn join(&mut self) -> Result<Vec<Vec<u8>>, String> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| "the node thread panicked".to_string())?,
            None => Ok(Vec::new()),
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.command(Command::Shutdown);
            let _ = self.join();
        }
    }
}

/// A send the node could not take yet (its outgoing pool was full).
struct Waiting {
    to: NodeId,
    data: Vec<u8>,
    done: Sender<SendResult>,
}

/// What the node thread keeps besides the runtime.
struct State {
    started: WallInstant,
    subscribers: Vec<(usize, SyncSender<(usize, Notice)>)>,
    backlog: VecDeque<Notice>,
    pending: HashMap<MessageId, Sender<SendResult>>,
    waiting: VecDeque<Waiting>,
    buf: Vec<u8>,
}

/// The node thread: turn, take messages, answer commands, until shutdown
/// (or until every command sender is gone).
fn run(mut rt: Runtime, commands: Receiver<Command>) -> Result<Vec<Vec<u8>>, String> {
    let mut state = State {
        started: WallInstant::now(),
        subscribers: Vec::new(),
        backlog: VecDeque::new(),
        pending: HashMap::new(),
        waiting: VecDeque::new(),
        buf: vec![0u8; StdNode::MAX_MESSAGE],
    };
    log::info!(
        "node {} listening on {}",
        rt.node_id(),
        crate::daemon::listening(&rt)
    );
    let result = loop {
        match drain_commands(&mut rt, &mut state, &commands) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
        let turned = rt.turn(Some(TICK), |node, event| state.on_event(node, event));
        if let Err(e) = turned {
            break Err(e.to_string());
        }
        state.take_messages(&mut rt);
        state.retry_waiting(&mut rt);
    };
    close_all(&mut rt, &mut state);
    for (_, done) in state.pending.drain() {
        let _ = done.send(Err("the node shut down before an acknowledgement".into()));
    }
    for w in state.waiting.drain(..) {
        let _ = w.done.send(Err("the node shut down before sending".into()));
    }
    result.map(|()| descriptors(&rt))
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
            Ok(Command::Send { to, data, done }) => state.send(rt, to, data, done),
            Ok(Command::Status(tx)) => {
                let _ = tx.send(status(rt, state.started));
            }
            Ok(Command::Descriptors(tx)) => {
                let _ = tx.send(descriptors(rt));
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
    fn on_event(&mut self, node: &StdNode, event: Event) {
        match event {
            Event::MessageAcknowledged { id } => {
                if let Some(done) = self.pending.remove(&id) {
                    let _ = done.send(Ok(()));
                }
            }
            Event::MessageFailed { id, reason } => {
                if let Some(done) = self.pending.remove(&id) {
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
            Event::LinkEstablished { peer, role, .. } => {
                log::info!("link up with {peer} ({})", role_name(role));
            }
            Event::LinkClosed {
                peer, reason, by, ..
            } => {
                log::info!("link closed with {peer:?}: {reason:?} by {by:?}");
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
            Event::MessageReceived { .. } | Event::CellReceived { .. } => {}
        }
    }

    /// Hands a notice to every listener. A received message that no live
    /// listener took (none subscribed, or every one has since gone, which
    /// is only found out by trying) is kept for the next listener, so a
    /// message arriving just after a `veil listen --count 1` exits is not
    /// lost.
    fn notify(&mut self, notice: Notice) {
        let mut taken = false;
        self.subscribers
            .retain(|(tag, tx)| match tx.try_send((*tag, notice.clone())) {
                Ok(()) => {
                    taken = true;
                    true
                }
                Err(TrySendError::Full(_)) => {
                    log::warn!("a listener fell behind and was dropped");
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
        if !taken && matches!(notice, Notice::Received { .. }) {
            if self.backlog.len() == BACKLOG {
                log::warn!("nobody listens: dropping the oldest received message");
                self.backlog.pop_front();
            }
            self.backlog.push_back(notice);
        }
    }

    fn send(&mut self, rt: &mut Runtime, to: NodeId, data: Vec<u8>, done: Sender<SendResult>) {
        if rt.node().node_table().get(&to).is_none() {
            let _ = done.send(Err(format!(
                "node {to} is not in this node's table; wait for discovery or check the id"
            )));
            return;
        }
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
        let now = rt.now();
        match rt.node_mut().send_message(now, w.to, &w.data) {
            Ok(id) => {
                self.pending.insert(id, w.done);
                None
            }
            Err(SendMessageError::Full) => Some(w),
            Err(e) => {
                let _ = w.done.send(Err(e.to_string()));
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

    fn take_messages(&mut self, rt: &mut Runtime) {
        while let Some(m) = rt.node_mut().poll_message(&mut self.buf) {
            let from = match m.sender {
                MessageSender::Node(id) => Some(id),
                MessageSender::Anonymous(_) => None,
            };
            let data = self.buf.get(..m.len).unwrap_or_default().to_vec();
            self.notify(Notice::Received { from, data });
        }
    }
}

/// Closes every link and turns until the connections are gone (or the
/// grace time runs out): circuits over them end with the links.
fn close_all(rt: &mut Runtime, state: &mut State) {
    rt.shutdown();
    let start = WallInstant::now();
    while !rt.is_shut_down() && start.elapsed() < CLOSE_GRACE {
        let turned = rt.turn(Some(Duration::from_millis(10)), |node, event| {
            state.on_event(node, event)
        });
        if turned.is_err() {
            break;
        }
    }
}

fn descriptors(rt: &Runtime) -> Vec<Vec<u8>> {
    rt.node()
        .node_table()
        .entries()
        .iter()
        .map(|e| e.descriptor.as_bytes().to_vec())
        .collect()
}

fn role_name(role: LinkRole) -> &'static str {
    match role {
        LinkRole::Initiator => "initiator",
        LinkRole::Responder => "responder",
    }
}

fn phase_name(phase: LinkPhase) -> &'static str {
    match phase {
        LinkPhase::Handshaking => "handshaking",
        LinkPhase::Established => "established",
        LinkPhase::Closing => "closing",
        LinkPhase::Closed => "closed",
    }
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Tcp => "tcp",
        Transport::Quic => "quic",
    }
}

fn status(rt: &Runtime, started: WallInstant) -> Status {
    let node = rt.node();
    // Closed links' counters, summed by the node as each closed, plus the
    // open links' own: everything since start.
    let mut total = node.stats().closed_link_traffic;
    let links: Vec<LinkStatus> = node
        .links()
        .map(|l| {
            total = total.plus(&l.stats);
            LinkStatus {
                peer: l.peer.map(|p| p.to_string()),
                role: role_name(l.role).into(),
                phase: phase_name(l.phase).into(),
                transport: l.transport.map(|t| transport_name(t).to_string()),
                rtt_ms: l.rtt.smoothed().map(|d| d.as_micros() as f64 / 1000.0),
                bytes_sent: l.stats.bytes_sent,
                bytes_received: l.stats.bytes_received,
                cells_sent: l.stats.cells_sent,
                cells_received: l.stats.cells_received,
            }
        })
        .collect();
    let (relayed, own) = node.circuit_counts();
    let (outgoing, incoming) = node.message_counts();
    let table = node.node_table();
    let stats = node.stats();
    Status {
        node_id: node.node_id().to_string(),
        listen: crate::daemon::listening(rt),
        uptime_secs: started.elapsed().as_secs(),
        bytes_sent: total.bytes_sent,
        bytes_received: total.bytes_received,
        cells_sent: total.cells_sent,
        cells_received: total.cells_received,
        links_closed: node.stats().links_closed,
        links,
        circuits_relayed: relayed,
        circuits_own: own,
        messages_outgoing: outgoing,
        messages_incoming: incoming,
        known_nodes: table.len(),
        known_relays: table
            .entries()
            .iter()
            .filter(|e| e.descriptor.repr().relay)
            .count(),
        circuits_built: stats.circuits_built,
        messages_sent: stats.messages_sent,
        messages_acknowledged: stats.messages_acknowledged,
        messages_received: stats.messages_received,
        cells_dropped: stats.cells_dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            started: WallInstant::now(),
            subscribers: Vec::new(),
            backlog: VecDeque::new(),
            pending: HashMap::new(),
            waiting: VecDeque::new(),
            buf: Vec::new(),
        }
    }

    fn received(byte: u8) -> Notice {
        Notice::Received {
            from: None,
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
