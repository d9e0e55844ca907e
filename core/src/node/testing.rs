//! Hooks for tests of the core and of whole networks, compiled only with
//! the `testing` feature. The std node and the firmware never enable it;
//! the simulator and the test suites do.
//!
//! What stays here needs the inside of a node: a relay's view of each
//! decrypted cell (to check that it sees no plaintext, or to make it
//! misbehave) and the link layer on its own. Fault injection on the bytes
//! between nodes lives beside the links, in the simulator.

use crate::link::{Cell, LinkId};
#[cfg(feature = "testing")]
use crate::{identity::NodeId, link::QueueCellError, time::Instant};

#[cfg(feature = "testing")]
use super::{Event, SendCellError};
use super::{Node, Profile};
#[cfg(feature = "testing")]
use crate::capacity::DequeStore;

/// Queue a raw cell on an established link, bypassing circuits: for
/// link-layer tests, with [`NodeConfig::link_only`](super::NodeConfig::link_only)
/// (only with the `testing` feature).
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SendCell<'a> {
    /// The link.
    pub link: LinkId,
    /// The cell.
    #[cfg_attr(feature = "serde", serde(borrow, with = "super::serde_cell::borrowed"))]
    pub cell: &'a Cell,
}

/// A function that sees (and may change) every cell a node takes from a
/// link, before the node handles it. See [`Node::set_cell_hook`].
#[cfg(feature = "testing")]
pub type CellHook = fn(&NodeId, LinkId, &mut Cell);

impl<P: Profile> Node<P> {
    /// Installs a hook called with every cell this node takes from a link,
    /// after link decryption and before anything else: to check what a
    /// relay can see, or to make a node misbehave (a relay that flips
    /// bits). `None` removes it.
    #[cfg(feature = "testing")]
    pub fn set_cell_hook(&mut self, hook: Option<CellHook>) {
        self.cell_hook = hook;
    }

    /// The mask of the length of the next message `link` receives (see
    /// [`LinkSession::peek_receive_length_mask`](crate::link::LinkSession::peek_receive_length_mask)),
    /// for tests that write a message by hand.
    #[cfg(feature = "testing")]
    pub fn next_receive_length_mask(&self, link: LinkId) -> Option<[u8; 2]> {
        let index = self.slot_index(link)?;
        self.links
            .as_ref()
            .get(index)?
            .session
            .as_ref()?
            .peek_receive_length_mask()
    }

    #[cfg(feature = "testing")]
    pub(crate) fn on_send_cell(
        &mut self,
        _now: Instant,
        input: SendCell<'_>,
    ) -> Result<(), SendCellError> {
        let SendCell { link, cell } = input;
        let index = self
            .slot_index(link)
            .ok_or(SendCellError::UnknownLink(link))?;
        let session = self
            .session_mut(index)
            .ok_or(SendCellError::UnknownLink(link))?;
        session.queue_cell(cell).map_err(|e| match e {
            QueueCellError::NotEstablished => SendCellError::NotEstablished(link),
            QueueCellError::QueueFull => SendCellError::QueueFull(link),
        })
    }

    /// Runs the test hook, if any, on a cell taken from `link`.
    #[cfg_attr(not(feature = "testing"), allow(unused_variables))]
    pub(crate) fn inspect_cell(&self, link: LinkId, cell: &mut Cell) {
        #[cfg(feature = "testing")]
        if let Some(hook) = self.cell_hook {
            hook(&self.identity.node_id(), link, cell);
        }
    }

    /// Whether the node runs its links only, handing circuit cells to the
    /// owner; always `false` without the `testing` feature.
    pub(crate) fn link_only(&self) -> bool {
        #[cfg(feature = "testing")]
        return self.config.link_only;
        #[cfg(not(feature = "testing"))]
        false
    }

    /// In link-only mode, hands a circuit cell to the owner.
    #[cfg_attr(not(feature = "testing"), allow(unused_variables))]
    pub(crate) fn deliver_raw_cell(&mut self, link: LinkId, cell: &Cell) {
        #[cfg(feature = "testing")]
        {
            let event = Event::CellReceived { link, cell: *cell };
            let _ = self.events.view_mut().push_back(event);
        }
    }
}

#[cfg(test)]
#[cfg(feature = "testing")]
mod clone_tests {
    use crate::identity::{Identity, Transport};
    use crate::message::MessageSlot;
    use crate::node::{drain, LinkSlot, Node, NodeConfig, OpenLink, Output};
    use crate::time::Instant;

    crate::node_profile! {
        struct P {
            link_receive: 2050, link_send_queue: 4, events: 8, peers: 4,
            relayed: 4, own: 2, message: 1024,
            links: [LinkSlot<P>; 2],
            messages: [MessageSlot<[u8; 1024]>; 2],
        }
    }

    /// Opens a dialled link and returns every byte the node transmits.
    fn dial(node: &mut Node<P>) -> std::vec::Vec<u8> {
        let now = Instant::from_millis(1);
        let peer = core::net::IpAddr::V4(core::net::Ipv4Addr::new(192, 0, 2, 9));
        node.handle(now, OpenLink::dialled(None, Transport::Tcp, peer))
            .unwrap();
        let mut buf = [0u8; 2048];
        let mut wire = std::vec::Vec::new();
        drain(node, now, &mut buf, |_, output| {
            if let Output::Transmit { bytes, .. } = output {
                wire.extend_from_slice(bytes);
            }
        })
        .unwrap();
        wire
    }

    /// A copy is the same node: from it, the same inputs give the same
    /// bytes (its generator and keys were copied, not reseeded).
    #[test]
    fn a_cloned_node_behaves_as_the_original() {
        let mut node: Node<P> = Node::new(
            NodeConfig::default(),
            Identity::from_secret_bytes([7; 32]),
            [7; 32],
            [LinkSlot::new(), LinkSlot::new()],
            [MessageSlot::new(), MessageSlot::new()],
        );
        let mut copy = node.clone();
        let wire = dial(&mut node);
        assert!(!wire.is_empty());
        assert_eq!(dial(&mut copy), wire);
        // And a copy taken later carries the state reached since.
        let mut later = node.clone();
        assert_eq!(dial(&mut later), dial(&mut node));
    }
}
