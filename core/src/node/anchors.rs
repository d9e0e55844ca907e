//! Anchors: the peers of this node's outbound links, kept across a
//! restart. A node that restarts and takes its peers from gossip alone can
//! be eclipsed by whoever answers first; reconnecting first to the peers it
//! had chosen itself (and that were reachable) denies an attacker that
//! chance (Bitcoin Core keeps two such anchors for the same reason).

use core::fmt;

use heapless::Vec;

use crate::discovery::{InsertError, Source};
use crate::identity::NodeId;
use crate::link::{LinkPhase, LinkRole};
use crate::time::Instant;

use super::descriptor_cells::Arrival;
use super::dial::DialPolicy;
use super::{DescriptorRefusal, Node, Profile};

/// The most anchors a node reports and takes back.
pub const MAX_ANCHORS: usize = 2;

/// Reconnect to an anchor (a peer of one of this node's outbound links
/// before it restarted, [`Node::anchors`]): its descriptor is learned and it
/// is dialled at once, ahead of any bootstrap address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AddAnchor<'a> {
    /// The anchor's signed descriptor, as saved.
    pub descriptor: &'a [u8],
}

/// Why an anchor is not dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AddAnchorError {
    /// Its descriptor was refused (expired while the node was down, say).
    Refused(DescriptorRefusal),
    /// Its descriptor names no address to dial.
    NoAddress,
    /// [`MAX_PENDING_DIALS`](super::MAX_PENDING_DIALS) dials are out already.
    DialsFull,
}

impl fmt::Display for AddAnchorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddAnchorError::Refused(e) => write!(f, "anchor refused: {e}"),
            AddAnchorError::NoAddress => write!(f, "anchor has no address to dial; drop it"),
            AddAnchorError::DialsFull => {
                write!(f, "too many dials pending; hand the anchor in again later")
            }
        }
    }
}

impl core::error::Error for AddAnchorError {}

impl<P: Profile> Node<P> {
    /// The peers worth reconnecting to first after a restart: those of this
    /// node's established outbound links (not a feeler link about to
    /// close, nor an anonymous link, nor a bootstrap link, which is handed
    /// off), longest-standing first, at most [`MAX_ANCHORS`]. Save their
    /// descriptors ([`node_table`](Self::node_table)) and hand them back
    /// with [`AddAnchor`].
    pub fn anchors(&self) -> Vec<NodeId, MAX_ANCHORS> {
        let closing = self.discovery.feelers.closing();
        let mut anchors: Vec<NodeId, MAX_ANCHORS> = Vec::new();
        while !anchors.is_full() {
            let next = self
                .links
                .as_ref()
                .iter()
                .enumerate()
                .filter(|(i, _)| self.link_at(*i) != closing)
                // An anonymous link hides this node's identity from its
                // guard; dialling the guard as an anchor would show it.
                .filter(|(_, slot)| !slot.anonymous)
                // A bootstrap link is handed off once the node is linked
                // elsewhere; the bootstrap address is in the config anyway.
                .filter(|(_, slot)| !slot.bootstrap)
                .filter_map(|(_, slot)| {
                    let session = slot.session.as_ref()?;
                    let peer = session.peer()?;
                    let outbound = session.role() == LinkRole::Initiator
                        && session.phase() == LinkPhase::Established;
                    (outbound && !anchors.contains(&peer)).then_some((slot.opened_at, peer))
                })
                .min();
            match next {
                Some((_, peer)) => {
                    let _ = anchors.push(peer);
                }
                None => break,
            }
        }
        anchors
    }

    pub(crate) fn on_add_anchor(
        &mut self,
        now: Instant,
        input: AddAnchor<'_>,
    ) -> Result<(), AddAnchorError> {
        let arrival = Arrival::From(Source::Local);
        let learned = self.discovery.learn(
            &self.config,
            now,
            input.descriptor,
            arrival,
            &mut self.stats,
        );
        let id = match learned {
            Ok((_, id, _)) => id,
            // A newer descriptor of it is known: dial that one.
            Err(DescriptorRefusal::Table(InsertError::OlderThanKnown)) => {
                crate::identity::DescriptorPacket::new_checked(input.descriptor)
                    .map(|p| NodeId::from_identity_key(&p.identity_key()))
                    .map_err(|e| AddAnchorError::Refused(DescriptorRefusal::Invalid(e)))?
            }
            Err(e) => return Err(AddAnchorError::Refused(e)),
        };
        let table = self.discovery.table();
        let addresses = table
            .get(&id)
            .map(|e| e.descriptor.repr().addresses.clone())
            .unwrap_or_default();
        if addresses.is_empty() {
            return Err(AddAnchorError::NoAddress);
        }
        let policy = DialPolicy::for_peer(&self.config, table, &id);
        if self
            .dialer
            .request(now, id, false, addresses.into_iter(), policy)
        {
            Ok(())
        } else {
            Err(AddAnchorError::DialsFull)
        }
    }
}
