//! One node on its own thread: a `veil_mio::Runtime` turned in a loop, and
//! a command channel other threads use to send messages, take received
//! ones, ask for status, and shut it down.
//!
//! Both `veil node` (one host, driven by the control socket) and `veil demo`
//! and `veil bench` (many hosts in one process) are built on this.
//!
//! - this file: [`Host`] and [`HostHandle`], what other threads hold;
//! - `node_thread`: the loop on the node's own thread;
//! - `status_report`: the [`Status`] the node thread reports.

mod node_thread;
mod status_report;

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mio::Waker;
use veil_core::identity::NodeId;
use veil_core::message::ReplyTo;
use veil_mio::Runtime;
use veil_node::status::Status;

use crate::host_protocol::{Command, OfferedService, SendResult};
use crate::node_metrics::NodeMetrics;
use crate::snapshot::SavedTable;

pub use status_report::listening;

/// A node running on its own thread.
#[derive(Debug)]
pub struct Host {
    // Read by `demo` and `bench` only.
    #[cfg_attr(not(feature = "dev-tools"), allow(dead_code))]
    id: NodeId,
    handle: HostHandle,
    thread: Option<JoinHandle<Result<SavedTable, String>>>,
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

    /// Starts answering an anonymous message over the circuit `to` names;
    /// the receiver gets the outcome.
    pub fn reply(&self, to: ReplyTo, data: Vec<u8>) -> Result<Receiver<SendResult>, String> {
        let (done, rx) = mpsc::channel();
        self.command(Command::Reply { to, data, done })?;
        Ok(rx)
    }

    /// Learns a rendezvous service from its descriptor; its id, or why
    /// the node refused it.
    pub fn learn_service(&self, descriptor: Vec<u8>) -> Result<NodeId, String> {
        let (done, rx) = mpsc::channel();
        self.command(Command::LearnService { descriptor, done })?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the node thread did not answer".to_string())?
    }

    /// The service the node offers and its current descriptor.
    pub fn service(&self) -> Result<Option<OfferedService>, String> {
        let (tx, rx) = mpsc::channel();
        self.command(Command::Service(tx))?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the node thread did not answer".to_string())
    }

    /// The node's status.
    pub fn status(&self) -> Result<Status, String> {
        let (tx, rx) = mpsc::channel();
        self.command(Command::Status(tx))?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the node thread did not answer".to_string())
    }

    /// Brings the node's metrics up to date, for a scrape.
    pub fn refresh_metrics(&self) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        self.command(Command::RefreshMetrics(tx))?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the node thread did not answer".to_string())
    }

    /// The descriptors of every known node and of the node's anchors.
    pub fn descriptors(&self) -> Result<SavedTable, String> {
        let (tx, rx) = mpsc::channel();
        self.command(Command::Descriptors(tx))?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the node thread did not answer".to_string())
    }
}

impl Host {
    /// Moves `rt` to a new thread and starts turning it; the thread keeps
    /// `metrics` up to date, if given.
    pub fn spawn(
        mut rt: Runtime,
        name: String,
        metrics: Option<NodeMetrics>,
    ) -> Result<Host, String> {
        let waker = rt
            .waker()
            .map_err(|e| format!("could not create the runtime's waker: {e}"))?;
        let (commands, rx) = mpsc::channel();
        let id = rt.node_id();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || node_thread::run(rt, rx, metrics))
            .map_err(|e| format!("could not start a node thread: {e}"))?;
        Ok(Host {
            id,
            handle: HostHandle { commands, waker },
            thread: Some(thread),
        })
    }

    /// The node's id.
    #[cfg(feature = "dev-tools")]
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
    #[cfg(feature = "dev-tools")]
    pub fn send(&self, to: NodeId, data: Vec<u8>) -> Result<Receiver<SendResult>, String> {
        self.handle.send(to, data)
    }

    /// The node's status.
    #[cfg(feature = "dev-tools")]
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
    pub fn shutdown(mut self) -> Result<SavedTable, String> {
        let _ = self.command(Command::Shutdown);
        self.join()
    }

    fn join(&mut self) -> Result<SavedTable, String> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| "the node thread panicked".to_string())?,
            None => Ok(SavedTable::default()),
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
