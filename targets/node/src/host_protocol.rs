//! What other threads say to a node thread ([`Command`]) and what it tells
//! them back ([`Notice`], [`SendResult`]).
//!
//! These are apart from `host` so that the modules that use a host (the
//! control server, the demo, the bench) and the host itself depend on the
//! same small vocabulary, and never on each other.

use std::sync::mpsc::{Sender, SyncSender};
use std::time::Duration;

use veil_core::identity::NodeId;
use veil_core::message::ReplyTo;
use veil_node::status::Status;

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
        /// For an anonymous message, the circuit it came on, to answer
        /// over ([`Command::Reply`]).
        reply_to: Option<ReplyTo>,
        /// The message.
        data: Vec<u8>,
    },
    /// A circuit this node built became ready (read by `bench` only).
    #[cfg_attr(not(feature = "dev-tools"), allow(dead_code))]
    CircuitReady {
        /// Its last hop.
        destination: NodeId,
        /// From `CREATE` to the last hop's answer.
        built_in: Duration,
    },
}

/// The rendezvous service a node offers, as `veil node` keeps its
/// descriptor file.
#[derive(Debug, Clone)]
pub struct OfferedService {
    /// The service's id.
    pub id: NodeId,
    /// Its signed descriptor, listing its established introduction
    /// points; `None` while it has none.
    pub descriptor: Option<Vec<u8>>,
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
    /// Answer an anonymous message over the circuit it came on; `done`
    /// gets the outcome once.
    Reply {
        /// The circuit, as the message's [`Notice::Received`] named it.
        to: ReplyTo,
        /// The reply.
        data: Vec<u8>,
        /// Gets `Ok` once acknowledged, or the reason it failed.
        done: Sender<SendResult>,
    },
    /// Learn a rendezvous service from its signed descriptor; `done` gets
    /// the service's id, or why the node refused it.
    LearnService {
        /// The descriptor's bytes.
        descriptor: Vec<u8>,
        /// Gets the outcome.
        done: Sender<Result<NodeId, String>>,
    },
    /// The service this node offers, if any, and its current descriptor.
    Service(Sender<Option<OfferedService>>),
    /// Report the node's status.
    Status(Sender<Status>),
    /// Bring the node's metrics up to date (`veil node --metrics`, before
    /// each scrape); `done` gets `()` once they are.
    RefreshMetrics(Sender<()>),
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
    Descriptors(Sender<crate::snapshot::SavedTable>),
    /// Close every link and stop.
    Shutdown,
}
