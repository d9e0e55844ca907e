//! The link table: opening links into free slots, the half-open limit,
//! closing, and publishing each slot's link events.

use rand_core::Rng;

use crate::capacity::DequeStore;
use crate::discovery::NetworkPrefix;
use crate::identity::NodeId;
use crate::link::{
    CloseReason, LinkHello, LinkParams, LinkPhase, LinkRole, MAX_MESSAGE_LEN, MIN_MAX_MESSAGE_LEN,
};
use crate::noise::StaticKeypair;
use crate::rate::TokenBucket;
use crate::time::Instant;

use super::slot::Session;
use super::{
    CloseLink, Event, LinkId, LinkInputError, LinkSlot, Node, OpenLink, OpenLinkError, Profile,
    TransportClosed, TransportRoom,
};

/// The largest message a node built with `profile`'s receive buffer and
/// `configured` limit accepts.
pub(crate) fn max_message_len(receive_buffer: usize, configured: usize) -> usize {
    let upper = receive_buffer
        .saturating_sub(crate::link::LENGTH_PREFIX_LEN)
        .min(MAX_MESSAGE_LEN);
    configured.clamp(MIN_MAX_MESSAGE_LEN, upper.max(MIN_MAX_MESSAGE_LEN))
}

/// The hello this node sends in every link handshake.
pub(crate) fn hello(
    identity: &crate::identity::Identity,
    static_public: &[u8; 32],
    max_message_len: usize,
) -> [u8; crate::link::HELLO_LEN] {
    LinkHello::new(
        identity,
        static_public,
        u16::try_from(max_message_len).unwrap_or(u16::MAX),
    )
    .emit()
}

/// A throwaway identity for one anonymous link (link spec §3.1): an
/// Ed25519 key and a Noise static key drawn from `rng`, and the hello that
/// binds them. Nothing of it is kept once the handshake is over.
fn throwaway_keys(
    rng: &mut impl Rng,
    max_message_len: usize,
) -> (StaticKeypair, [u8; crate::link::HELLO_LEN]) {
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let identity = crate::identity::Identity::from_secret_bytes(secret);
    rng.fill_bytes(&mut secret);
    let keypair = StaticKeypair::from_secret_bytes(secret);
    zeroize::Zeroize::zeroize(&mut secret);
    let hello = hello(&identity, &keypair.public(), max_message_len);
    (keypair, hello)
}

impl<P: Profile> Node<P> {
    pub(crate) fn on_open_link(
        &mut self,
        now: Instant,
        input: OpenLink,
    ) -> Result<LinkId, OpenLinkError> {
        let OpenLink {
            role,
            expected_peer,
            transport,
            circuit_streams,
            remote,
            anonymous,
        } = input;
        let anonymous = anonymous && role == LinkRole::Initiator;
        let prefix = remote.map(NetworkPrefix::of);
        if role == LinkRole::Responder {
            self.admit_inbound(prefix)?;
        }
        let Some(index) = self.free_slot() else {
            if role == LinkRole::Responder {
                self.stats.inbound_refused.table_full =
                    self.stats.inbound_refused.table_full.saturating_add(1);
            }
            return Err(OpenLinkError::TableFull);
        };
        let throwaway = anonymous.then(|| throwaway_keys(&mut self.rng, self.max_message_len));
        let (static_keypair, hello) = match &throwaway {
            Some((keypair, hello)) => (keypair, *hello),
            None => (&self.static_keypair, self.hello),
        };
        let mut ephemeral = [0u8; 32];
        self.rng.fill_bytes(&mut ephemeral);
        let session = Session::<P>::new(
            now,
            LinkParams {
                role,
                expected_peer,
                static_keypair,
                handshake_seed: ephemeral,
                // A dialler that knows this node marks its first message
                // with this id (link spec §2).
                local_id: (role == LinkRole::Responder).then(|| self.node_id()),
                answer_unkeyed: self.config.answer_unkeyed_dials,
                unix_time: super::discovery::unix_now(&self.config, now),
                hello,
                local_max_message_len: self.max_message_len,
                config: self.config.link,
                channel_binding: circuit_streams,
            },
        );
        zeroize::Zeroize::zeroize(&mut ephemeral);
        let slot = self
            .links
            .as_mut()
            .get_mut(index)
            .ok_or(OpenLinkError::TableFull)?;
        slot.session = Some(session);
        slot.opened_at = now;
        slot.announced = false;
        slot.introduced = false;
        slot.introduces_peer = false;
        slot.dial_back = false;
        slot.room = TransportRoom::UNLIMITED;
        slot.transport = transport;
        slot.prefix = prefix;
        slot.anonymous = anonymous;
        // A bootstrap link is one dialled to a bootstrap address: to
        // whoever answers there, or to the node id given with it.
        slot.bootstrap = role == LinkRole::Initiator
            && !anonymous
            && expected_peer.is_none_or(|peer| self.dialer.is_bootstrap_peer(&peer));
        slot.creates = TokenBucket::full(self.config.creates_per_link, now);
        Ok(LinkId::new(
            u16::try_from(index).unwrap_or(u16::MAX),
            slot.generation,
        ))
    }

    pub(crate) fn on_transport_room(
        &mut self,
        _now: Instant,
        input: TransportRoom,
    ) -> Result<(), LinkInputError> {
        let index = self
            .slot_index(input.link)
            .ok_or(LinkInputError::UnknownLink(input.link))?;
        if let Some(slot) = self.links.as_mut().get_mut(index) {
            slot.room = input.bytes;
        }
        Ok(())
    }

    pub(crate) fn on_transport_closed(
        &mut self,
        _now: Instant,
        input: TransportClosed,
    ) -> Result<(), LinkInputError> {
        self.with_session(input.link, |session| session.transport_closed())
    }

    pub(crate) fn on_close_link(
        &mut self,
        _now: Instant,
        input: CloseLink,
    ) -> Result<(), LinkInputError> {
        self.with_session(input.link, |session| session.close(input.reason))
    }

    pub(crate) fn free_slot(&self) -> Option<usize> {
        self.links
            .as_ref()
            .iter()
            .take(usize::from(u16::MAX))
            .position(|s| s.session.is_none())
    }

    /// The slot of a live link.
    pub(crate) fn slot_index(&self, link: LinkId) -> Option<usize> {
        let index = usize::from(link.index());
        let slot = self.links.as_ref().get(index)?;
        (slot.generation == link.generation() && slot.session.is_some()).then_some(index)
    }

    pub(crate) fn session_mut(&mut self, index: usize) -> Option<&mut Session<P>> {
        self.links.as_mut().get_mut(index)?.session.as_mut()
    }

    /// The id of the link in slot `index`.
    pub(crate) fn link_at(&self, index: usize) -> Option<LinkId> {
        let slot = self.links.as_ref().get(index)?;
        Some(LinkId::new(u16::try_from(index).ok()?, slot.generation))
    }

    /// Applies `f` to a link's session and publishes what it changed.
    fn with_session(
        &mut self,
        link: LinkId,
        f: impl FnOnce(&mut Session<P>),
    ) -> Result<(), LinkInputError> {
        let index = self
            .slot_index(link)
            .ok_or(LinkInputError::UnknownLink(link))?;
        if let Some(session) = self.session_mut(index) {
            f(session);
        }
        self.sync_slot(index);
        Ok(())
    }

    /// Whether `link` is one we dialled anonymously.
    pub(crate) fn is_anonymous(&self, link: LinkId) -> bool {
        self.slot_index(link)
            .and_then(|i| self.links.as_ref().get(i))
            .is_some_and(|s| s.anonymous)
    }

    /// Established links.
    pub(crate) fn established_links(&self) -> usize {
        self.links
            .as_ref()
            .iter()
            .filter(|s| {
                s.session
                    .as_ref()
                    .is_some_and(|x| x.phase() == LinkPhase::Established)
            })
            .count()
    }

    /// Asks the peer of a link just up for what this node's configuration
    /// asks of its peers' idle padding, if anything (a `PADDING_NEGOTIATE`
    /// cell, relay spec §3). Should the link's queue be full the request
    /// is not sent, and the peer pads as its own configuration says.
    #[cfg(feature = "link-padding")]
    fn ask_for_padding(&mut self, index: usize) {
        let Some(request) = self.config.link.padding.request else {
            return;
        };
        if let Some(session) = self
            .links
            .as_mut()
            .get_mut(index)
            .and_then(|slot| slot.session.as_mut())
        {
            let _ = session.queue_cell(&crate::cell::emit_padding_negotiate(request));
        }
    }

    /// Queues the link events a slot owes, if the event queue has room, and
    /// frees a closed slot once its `LinkClosed` is queued. Events are never
    /// dropped: a closed link keeps its slot until its event fits.
    pub(crate) fn sync_slot(&mut self, index: usize) {
        let mut up = None;
        let mut dial_failed = None;
        self.claim_dial_back(index);
        let gone = self.sync_slot_events(index, &mut up, &mut dial_failed);
        #[cfg(feature = "link-padding")]
        if up.is_some() {
            self.ask_for_padding(index);
        }
        if self.link_only() {
            return;
        }
        if let Some((peer, anonymous)) = dial_failed {
            self.dial_attempt_failed(peer, anonymous);
        }
        if up.is_some() || gone.is_some() {
            self.discovery.feelers.wake_outbound(self.now);
        }
        if let Some(peer) = up {
            let slot = self.links.as_ref().get(index);
            let anonymous = slot.is_some_and(|s| s.anonymous);
            if let Some(transport) = slot.and_then(|s| s.transport) {
                self.discovery
                    .table_mut()
                    .record_transport(&peer, transport);
            }
            self.on_link_up(peer, anonymous);
            self.on_peer_reached(index, peer);
        }
        if let Some(link) = gone {
            self.on_link_gone(link);
        }
    }

    /// Publishes the events of every slot (room may have appeared).
    pub(crate) fn sync_all_slots(&mut self) {
        for index in 0..self.links.as_ref().len() {
            self.sync_slot(index);
        }
    }

    /// Whether the link in slot `index`, which we dialled and which just
    /// came up, duplicates an announced link we dialled to the same peer.
    fn is_duplicate(&self, index: usize) -> bool {
        let links = self.links.as_ref();
        let anonymous = links.get(index).is_some_and(|s| s.anonymous);
        if super::introducers::INTRODUCERS && links.get(index).is_some_and(|s| s.dial_back) {
            return false;
        }
        let Some(peer) = links
            .get(index)
            .and_then(|s| s.session.as_ref())
            .filter(|s| s.was_established() && s.role() == LinkRole::Initiator)
            .and_then(|s| s.peer())
        else {
            return false;
        };
        links.iter().enumerate().any(|(i, s)| {
            i != index
                && s.announced
                && s.anonymous == anonymous
                && !(super::introducers::INTRODUCERS && s.dial_back)
                && s.session.as_ref().is_some_and(|x| {
                    x.role() == LinkRole::Initiator
                        && x.phase() == LinkPhase::Established
                        && x.peer() == Some(peer)
                })
        })
    }

    /// Publishes a slot's link events; returns the link if its slot was
    /// freed, sets `up` to the peer of a link that just came up, and
    /// `dial_failed` to the peer (and whether the link was anonymous) of a
    /// link this node dialled that closed before its handshake finished.
    fn sync_slot_events(
        &mut self,
        index: usize,
        up: &mut Option<NodeId>,
        dial_failed: &mut Option<(NodeId, bool)>,
    ) -> Option<LinkId> {
        self.introduce(index);
        let duplicate = self.links.as_ref().get(index).is_some_and(|s| !s.announced)
            && self.is_duplicate(index);
        // Only a link that just came up is checked against our own id, and
        // the id is a hash of the identity key: computed on every call it
        // was a tenth of a relay's CPU on QUIC links, where this runs once
        // per cell.
        let identity = &self.identity;
        let slot = self.links.as_mut().get_mut(index)?;
        let link = LinkId::new(u16::try_from(index).unwrap_or(u16::MAX), slot.generation);
        if duplicate {
            // A transport race: another link we dialled to this peer came
            // up first. Keep that one.
            if let Some(session) = slot.session.as_mut() {
                session.close(CloseReason::Duplicate);
            }
            slot.announced = true;
        }
        if !slot.announced
            && slot
                .session
                .as_ref()
                .is_some_and(|s| s.was_established() && s.peer() == Some(identity.node_id()))
        {
            // A link to ourselves (our own address in a bootstrap list, or
            // an address that leads back here) is useless and would loop
            // circuits: close it and never announce it.
            if let Some(session) = slot.session.as_mut() {
                session.close(CloseReason::IdentityMismatch);
            }
            slot.announced = true;
        }
        let session = slot.session.as_ref()?;
        if !slot.announced && session.was_established() {
            if let Some(peer) = session.peer() {
                crate::logging::log_info!("{} established with {}", link, peer);
                let event = Event::LinkEstablished {
                    link,
                    peer,
                    role: session.role(),
                };
                if self.events.view_mut().push_back(event).is_err() {
                    self.events_deferred = true;
                    return None;
                }
                *up = Some(peer);
            }
            slot.announced = true;
        }
        if let Some((reason, by)) = session.closed() {
            let event = Event::LinkClosed {
                link,
                peer: session.peer(),
                reason,
                by,
            };
            if self.events.view_mut().push_back(event).is_err() {
                self.events_deferred = true;
            } else {
                // A link that never authenticated is anyone's connection:
                // not worth a line each (a connect flood would flood the
                // log); NodeStats counts them.
                let authenticated = session.peer().is_some();
                if authenticated && reason.is_peer_fault() {
                    crate::logging::log_warn!("{} closed: {}", link, reason);
                } else if authenticated {
                    crate::logging::log_info!("{} closed: {}", link, reason);
                }
                self.stats.links_closed = self.stats.links_closed.saturating_add(1);
                self.stats.closed_link_traffic =
                    self.stats.closed_link_traffic.plus(session.stats());
                // A connection that was made but refused, or that never
                // finished its handshake, is a failed dial: waiting out the
                // dial timeout would hold up whatever waits for the peer
                // (parked `EXTEND`s, whose clients would time out instead
                // of hearing `ExtendFailed` and trying another path).
                // Part of `outbound-links` (joining at any size, where
                // full tables refuse): the firmware leaves it out for flash.
                if cfg!(feature = "outbound-links")
                    && session.role() == LinkRole::Initiator
                    && !session.was_established()
                {
                    *dial_failed = session.expected_peer().map(|peer| (peer, slot.anonymous));
                }
                *slot = LinkSlot {
                    generation: slot.generation.wrapping_add(1),
                    ..LinkSlot::new()
                };
                return Some(link);
            }
        }
        None
    }

    /// Queues our descriptor on a link that just came up (and, on a new
    /// peer, a sample of what we know, so a node that just joined through a
    /// bootstrap node can build paths without waiting for gossip rounds).
    /// An anonymous link gets neither: either would name us (link spec
    /// §3.1).
    fn introduce(&mut self, index: usize) {
        // A node reached through introducers sends no descriptor before it
        // lists one, nor a node still asking whether it can be dialled:
        // nobody could reach it by that descriptor, and gossip would spread
        // it faster than the next (`introducers.rs`, `reachability.rs`).
        let withheld = self.withholds_descriptor();
        let Some(slot) = self.links.as_mut().get_mut(index) else {
            return;
        };
        if slot.anonymous {
            slot.introduced = true;
            return;
        }
        let established = slot
            .session
            .as_ref()
            .is_some_and(|s| s.phase() == LinkPhase::Established);
        if slot.introduced || !established {
            return;
        }
        if let (Some(cell), Some(session)) =
            (self.discovery.own_descriptor_cell(), slot.session.as_mut())
        {
            // A fresh link's queue is empty, so this fits; a busy one's
            // (a re-signed descriptor, `reintroduce`) may not: then the
            // next sync of the link tries again, as an introducer must
            // get every descriptor that lists it.
            if !withheld && session.queue_cell(&cell).is_err() {
                return;
            }
            if !slot.announced {
                for cell in &self.discovery.gossip_cells(&mut self.rng, session.peer()) {
                    if session.queue_cell(cell).is_err() {
                        break;
                    }
                }
            }
        }
        slot.introduced = true;
    }
}
