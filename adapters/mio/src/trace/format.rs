//! The trace file format: header, input records, and the encoding of the
//! node's outputs that the digest is computed over.
//!
//! `docs/trace_format.md` describes every byte; keep the two in step.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use veil_core::discovery::InsertOutcome;
use veil_core::identity::{Address, NodeId, Transport};
use veil_core::link::{
    Cell, CloseReason, ClosedBy, LinkConfig, LinkRole, CELL_LEN, CHANNEL_BINDING_LEN,
};
use veil_core::message::{MessageId, ReceivedMessage, ReplyTo, Sender, MESSAGE_ID_LEN};
use veil_core::node::{
    DescriptorRefusal, DialRequest, Event, LinkId, LinkInputError, MessageFailure, NodeConfig,
    OpenLinkError, SendCellError, SendMessageError, StreamCellError, Transmit,
};
use veil_core::time::{Duration, Instant};

use crate::std_node::{StdNode, EVENTS, MESSAGES, MSG, OWN, PEERS, RELAYED, RX, TXQ};

/// The first 8 bytes of every trace.
pub const MAGIC: [u8; 8] = *b"VEILTRCE";

/// The format version this build writes and reads.
pub const VERSION: u16 = 1;

/// A checkpoint record follows every this many input records.
pub const CHECKPOINT_EVERY: u64 = 64;

/// The largest record body a reader accepts; anything longer is corrupt.
pub const MAX_RECORD_LEN: u32 = 1 << 24;

/// The largest buffer a `poll_*` record may ask for.
pub const MAX_POLL_BUFFER: u32 = 1 << 24;

/// The largest header body a reader accepts.
pub const MAX_HEADER_LEN: u32 = 64 * 1024;

/// Capacities in the header, in order.
const CAPACITY_COUNT: usize = 9;

/// Senders of received messages remembered for `reply` records.
const SENDER_MEMORY: usize = 4096;

/// Record tags.
pub mod tag {
    /// `open_link`.
    pub const OPEN_LINK: u8 = 0x01;
    /// `handle_data`.
    pub const HANDLE_DATA: u8 = 0x02;
    /// `handle_transport_closed`.
    pub const TRANSPORT_CLOSED: u8 = 0x03;
    /// `handle_timeout`.
    pub const TIMEOUT: u8 = 0x04;
    /// `dial_failed`.
    pub const DIAL_FAILED: u8 = 0x05;
    /// `close_link`.
    pub const CLOSE_LINK: u8 = 0x06;
    /// `send_cell`.
    pub const SEND_CELL: u8 = 0x07;
    /// `send_message`.
    pub const SEND_MESSAGE: u8 = 0x08;
    /// `reply`.
    pub const REPLY: u8 = 0x09;
    /// `poll_message`.
    pub const POLL_MESSAGE: u8 = 0x0A;
    /// `poll_transmit`.
    pub const POLL_TRANSMIT: u8 = 0x0B;
    /// `poll_link_transmit`.
    pub const POLL_LINK_TRANSMIT: u8 = 0x0C;
    /// `poll_event`.
    pub const POLL_EVENT: u8 = 0x0D;
    /// `poll_dial`.
    pub const POLL_DIAL: u8 = 0x0E;
    /// `set_advertised_addresses`.
    pub const SET_ADVERTISED: u8 = 0x0F;
    /// `add_bootstrap`.
    pub const ADD_BOOTSTRAP: u8 = 0x10;
    /// `learn_descriptor`.
    pub const LEARN_DESCRIPTOR: u8 = 0x11;
    /// `record_peer_failure`.
    pub const PEER_FAILURE: u8 = 0x12;
    /// `set_guards`.
    pub const SET_GUARDS: u8 = 0x13;
    /// `open_stream_link`.
    pub const OPEN_STREAM_LINK: u8 = 0x14;
    /// `handle_stream_cell`.
    pub const HANDLE_STREAM_CELL: u8 = 0x15;
    /// `poll_stream_cell`.
    pub const POLL_STREAM_CELL: u8 = 0x16;
    /// A checkpoint: inputs so far and the digest of their outputs.
    pub const CHECKPOINT: u8 = 0x80;
    /// The end of the trace: the same, once, last.
    pub const END: u8 = 0x81;
}

/// The name of a record tag, for messages.
pub fn tag_name(t: u8) -> &'static str {
    match t {
        tag::OPEN_LINK => "open_link",
        tag::HANDLE_DATA => "handle_data",
        tag::TRANSPORT_CLOSED => "handle_transport_closed",
        tag::TIMEOUT => "handle_timeout",
        tag::DIAL_FAILED => "dial_failed",
        tag::CLOSE_LINK => "close_link",
        tag::SEND_CELL => "send_cell",
        tag::SEND_MESSAGE => "send_message",
        tag::REPLY => "reply",
        tag::POLL_MESSAGE => "poll_message",
        tag::POLL_TRANSMIT => "poll_transmit",
        tag::POLL_LINK_TRANSMIT => "poll_link_transmit",
        tag::POLL_EVENT => "poll_event",
        tag::POLL_DIAL => "poll_dial",
        tag::SET_ADVERTISED => "set_advertised_addresses",
        tag::ADD_BOOTSTRAP => "add_bootstrap",
        tag::LEARN_DESCRIPTOR => "learn_descriptor",
        tag::PEER_FAILURE => "record_peer_failure",
        tag::SET_GUARDS => "set_guards",
        tag::OPEN_STREAM_LINK => "open_stream_link",
        tag::HANDLE_STREAM_CELL => "handle_stream_cell",
        tag::POLL_STREAM_CELL => "poll_stream_cell",
        tag::CHECKPOINT => "checkpoint",
        tag::END => "end",
        _ => "unknown",
    }
}

/// Why bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl DecodeError {
    fn new(what: impl Into<String>) -> Self {
        DecodeError(what.into())
    }
}

/// The node capacities a trace was recorded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacities {
    /// Link slots (a run-time choice).
    pub links: u32,
    /// The rest are compile-time constants of `StdNode`, in header order:
    /// `RX`, `TXQ`, `EVENTS`, `PEERS`, `RELAYED`, `OWN`, `MSG`, `MESSAGES`.
    pub fixed: [u32; CAPACITY_COUNT - 1],
}

/// Names of [`Capacities::fixed`], in order.
pub const FIXED_CAPACITY_NAMES: [&str; CAPACITY_COUNT - 1] = [
    "RX", "TXQ", "EVENTS", "PEERS", "RELAYED", "OWN", "MSG", "MESSAGES",
];

impl Capacities {
    /// This build's capacities with `links` link slots.
    pub fn of_this_build(links: usize) -> Self {
        let c = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Capacities {
            links: c(links),
            fixed: [
                c(RX),
                c(TXQ),
                c(EVENTS),
                c(PEERS),
                c(RELAYED),
                c(OWN),
                c(MSG),
                c(MESSAGES),
            ],
        }
    }
}

/// What a node was built from.
#[derive(Clone, PartialEq, Eq)]
pub struct TraceHeader {
    /// The identity's secret key.
    pub secret: [u8; 32],
    /// The seed of the node's CSPRNG.
    pub seed: [u8; 32],
    /// Capacities.
    pub capacities: Capacities,
    /// The configuration, as passed to `Node::new`.
    pub config: NodeConfig,
}

impl std::fmt::Debug for TraceHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret and the seed stay out of logs.
        f.debug_struct("TraceHeader")
            .field("capacities", &self.capacities)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TraceHeader {
    /// Magic, version, header length and header body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        put_u16(out, VERSION);
        let at = out.len();
        put_u32(out, 0);
        out.extend_from_slice(&self.secret);
        out.extend_from_slice(&self.seed);
        put_u32(out, self.capacities.links);
        for c in self.capacities.fixed {
            put_u32(out, c);
        }
        encode_config(&self.config, out);
        let len = u32::try_from(out.len().saturating_sub(at).saturating_sub(4)).unwrap_or(0);
        if let Some(slot) = out.get_mut(at..at.saturating_add(4)) {
            slot.copy_from_slice(&len.to_le_bytes());
        }
    }

    /// Decodes a header body (after magic, version and length).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let secret = r.array::<32>()?;
        let seed = r.array::<32>()?;
        let links = r.u32()?;
        let mut fixed = [0u32; CAPACITY_COUNT - 1];
        for c in &mut fixed {
            *c = r.u32()?;
        }
        let config = decode_config(&mut r)?;
        r.finish()?;
        Ok(TraceHeader {
            secret,
            seed,
            capacities: Capacities { links, fixed },
            config,
        })
    }
}

/// The configuration as named values, in this order when written. A
/// reader takes `NodeConfig::default()` for a name the trace lacks (a trace
/// older than the field) and refuses a name it does not know.
fn config_fields(config: &NodeConfig) -> [(&'static str, u64); 22] {
    // Destructured so that a new field is a compile error here, not a
    // silently incomplete trace.
    let NodeConfig {
        link:
            LinkConfig {
                handshake_timeout,
                keepalive_interval,
                idle_timeout,
                rekey_after_messages,
                rekey_after,
            },
        max_half_open,
        max_message_len,
        unix_time_at_zero,
        relay,
        descriptor_lifetime_secs,
        gossip_interval,
        onion_key_lifetime,
        path_relays,
        circuit_lifetime,
        circuit_build_timeout,
        message_resend_after,
        message_give_up_after,
        dial_timeout,
        bootstrap_retry,
        link_only,
        quic_dials,
        transport_race_delay,
    } = *config;
    let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    [
        ("link.handshake_timeout_us", handshake_timeout.as_micros()),
        ("link.keepalive_interval_us", keepalive_interval.as_micros()),
        ("link.idle_timeout_us", idle_timeout.as_micros()),
        ("link.rekey_after_messages", rekey_after_messages),
        ("link.rekey_after_us", rekey_after.as_micros()),
        ("max_half_open", n(max_half_open)),
        ("max_message_len", n(max_message_len)),
        ("unix_time_at_zero", unix_time_at_zero),
        ("relay", u64::from(relay)),
        ("descriptor_lifetime_secs", descriptor_lifetime_secs),
        ("gossip_interval_us", gossip_interval.as_micros()),
        ("onion_key_lifetime_us", onion_key_lifetime.as_micros()),
        ("path_relays", n(path_relays)),
        ("circuit_lifetime_us", circuit_lifetime.as_micros()),
        (
            "circuit_build_timeout_us",
            circuit_build_timeout.as_micros(),
        ),
        ("message_resend_after_us", message_resend_after.as_micros()),
        (
            "message_give_up_after_us",
            message_give_up_after.as_micros(),
        ),
        ("dial_timeout_us", dial_timeout.as_micros()),
        ("bootstrap_retry_us", bootstrap_retry.as_micros()),
        ("link_only", u64::from(link_only)),
        ("quic_dials", u64::from(quic_dials)),
        ("transport_race_delay_us", transport_race_delay.as_micros()),
    ]
}

fn encode_config(config: &NodeConfig, out: &mut Vec<u8>) {
    let fields = config_fields(config);
    put_u16(out, u16::try_from(fields.len()).unwrap_or(u16::MAX));
    for (name, value) in fields {
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(name.as_bytes());
        put_u64(out, value);
    }
}

/// Sets one named field of `c`; `false` if the name is unknown.
fn set_config_field(c: &mut NodeConfig, name: &str, v: u64) -> Result<bool, DecodeError> {
    let n = |v: u64| {
        usize::try_from(v).map_err(|_| DecodeError::new(format!("{name} = {v} is too large")))
    };
    let flag = |v: u64| match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::new(format!("{name} = {v} is not 0 or 1"))),
    };
    let d = Duration::from_micros;
    match name {
        "link.handshake_timeout_us" => c.link.handshake_timeout = d(v),
        "link.keepalive_interval_us" => c.link.keepalive_interval = d(v),
        "link.idle_timeout_us" => c.link.idle_timeout = d(v),
        "link.rekey_after_messages" => c.link.rekey_after_messages = v,
        "link.rekey_after_us" => c.link.rekey_after = d(v),
        "max_half_open" => c.max_half_open = n(v)?,
        "max_message_len" => c.max_message_len = n(v)?,
        "unix_time_at_zero" => c.unix_time_at_zero = v,
        "relay" => c.relay = flag(v)?,
        "descriptor_lifetime_secs" => c.descriptor_lifetime_secs = v,
        "gossip_interval_us" => c.gossip_interval = d(v),
        "onion_key_lifetime_us" => c.onion_key_lifetime = d(v),
        "path_relays" => c.path_relays = n(v)?,
        "circuit_lifetime_us" => c.circuit_lifetime = d(v),
        "circuit_build_timeout_us" => c.circuit_build_timeout = d(v),
        "message_resend_after_us" => c.message_resend_after = d(v),
        "message_give_up_after_us" => c.message_give_up_after = d(v),
        "dial_timeout_us" => c.dial_timeout = d(v),
        "bootstrap_retry_us" => c.bootstrap_retry = d(v),
        "link_only" => c.link_only = flag(v)?,
        "quic_dials" => c.quic_dials = flag(v)?,
        "transport_race_delay_us" => c.transport_race_delay = d(v),
        _ => return Ok(false),
    }
    Ok(true)
}

fn decode_config(r: &mut Reader<'_>) -> Result<NodeConfig, DecodeError> {
    let mut config = NodeConfig::default();
    let mut seen: Vec<String> = Vec::new();
    let count = r.u16()?;
    for _ in 0..count {
        let len = usize::from(r.u8()?);
        let name = std::str::from_utf8(r.take(len)?)
            .map_err(|_| DecodeError::new("a config field name is not UTF-8"))?;
        let value = r.u64()?;
        if seen.iter().any(|s| s == name) {
            return Err(DecodeError::new(format!(
                "config field {name} appears twice"
            )));
        }
        if !set_config_field(&mut config, name, value)? {
            return Err(DecodeError::new(format!(
                "config field {name} is unknown to this build; replay with a newer veil"
            )));
        }
        seen.push(name.to_string());
    }
    Ok(config)
}

/// One call into the node, with its arguments. Byte arguments borrow from
/// the caller (recording) or from the record (replay).
#[derive(Debug, Clone)]
pub enum Input<'a> {
    /// `open_link(now, role, expected_peer)`, or with a transport
    /// `open_link_over(now, role, expected_peer, transport)`.
    OpenLink {
        /// Time.
        now: Instant,
        /// Role.
        role: LinkRole,
        /// Expected peer.
        expected: Option<NodeId>,
        /// The transport, for `open_link_over`.
        transport: Option<Transport>,
    },
    /// `handle_data(now, link, data)`: the bytes offered.
    HandleData {
        /// Time.
        now: Instant,
        /// Link.
        link: LinkId,
        /// Bytes offered.
        data: &'a [u8],
    },
    /// `handle_transport_closed(now, link)`.
    TransportClosed {
        /// Time.
        now: Instant,
        /// Link.
        link: LinkId,
    },
    /// `handle_timeout(now)`.
    Timeout {
        /// Time.
        now: Instant,
    },
    /// `dial_failed(now, request)`.
    DialFailed {
        /// Time.
        now: Instant,
        /// The request that failed.
        request: DialRequest,
    },
    /// `close_link(now, link, reason)`.
    CloseLink {
        /// Time.
        now: Instant,
        /// Link.
        link: LinkId,
        /// Reason.
        reason: CloseReason,
    },
    /// `send_cell(now, link, cell)`.
    SendCell {
        /// Time.
        now: Instant,
        /// Link.
        link: LinkId,
        /// The cell.
        cell: &'a Cell,
    },
    /// `send_message(now, destination, message)`.
    SendMessage {
        /// Time.
        now: Instant,
        /// Destination.
        destination: NodeId,
        /// The message.
        message: &'a [u8],
    },
    /// `reply(now, to, message)`; `to` is named by its sender number.
    Reply {
        /// Time.
        now: Instant,
        /// Which anonymous sender (numbered in `poll_message` outputs).
        sender: u64,
        /// The message.
        message: &'a [u8],
    },
    /// `poll_message(buf)`.
    PollMessage {
        /// The buffer's length.
        buf_len: u32,
    },
    /// `poll_transmit(now, buf)`.
    PollTransmit {
        /// Time.
        now: Instant,
        /// The buffer's length.
        buf_len: u32,
    },
    /// `poll_link_transmit(now, link, buf)`.
    PollLinkTransmit {
        /// Time.
        now: Instant,
        /// Link.
        link: LinkId,
        /// The buffer's length.
        buf_len: u32,
    },
    /// `poll_event()`.
    PollEvent,
    /// `poll_dial()`.
    PollDial,
    /// `set_advertised_addresses(now, addresses)`.
    SetAdvertised {
        /// Time.
        now: Instant,
        /// The addresses.
        addresses: Vec<Address>,
    },
    /// `add_bootstrap(address)`.
    AddBootstrap {
        /// The address.
        address: Address,
    },
    /// `learn_descriptor(now, descriptor)`.
    LearnDescriptor {
        /// Time.
        now: Instant,
        /// The descriptor bytes.
        descriptor: &'a [u8],
    },
    /// `record_peer_failure(peer)`.
    PeerFailure {
        /// The peer.
        peer: NodeId,
    },
    /// `set_guards(guards)`.
    SetGuards {
        /// The guards.
        guards: Vec<NodeId>,
    },
    /// `open_stream_link(now, role, expected_peer, transport, binding)`.
    OpenStreamLink {
        /// Time.
        now: Instant,
        /// Role.
        role: LinkRole,
        /// Expected peer.
        expected: Option<NodeId>,
        /// The transport.
        transport: Transport,
        /// The transport's channel binding.
        binding: [u8; CHANNEL_BINDING_LEN],
    },
    /// `handle_stream_cell(now, link, cell)`.
    HandleStreamCell {
        /// Time.
        now: Instant,
        /// Link.
        link: LinkId,
        /// The cell.
        cell: &'a Cell,
    },
    /// `poll_stream_cell(now, link)`.
    PollStreamCell {
        /// Time.
        now: Instant,
        /// Link.
        link: LinkId,
    },
}

impl Input<'_> {
    /// The time the call carried, if it takes one.
    pub fn now(&self) -> Option<Instant> {
        match self {
            Input::OpenLink { now, .. }
            | Input::HandleData { now, .. }
            | Input::TransportClosed { now, .. }
            | Input::Timeout { now }
            | Input::DialFailed { now, .. }
            | Input::CloseLink { now, .. }
            | Input::SendCell { now, .. }
            | Input::SendMessage { now, .. }
            | Input::Reply { now, .. }
            | Input::PollTransmit { now, .. }
            | Input::PollLinkTransmit { now, .. }
            | Input::SetAdvertised { now, .. }
            | Input::LearnDescriptor { now, .. }
            | Input::OpenStreamLink { now, .. }
            | Input::HandleStreamCell { now, .. }
            | Input::PollStreamCell { now, .. } => Some(*now),
            Input::PollMessage { .. }
            | Input::PollEvent
            | Input::PollDial
            | Input::AddBootstrap { .. }
            | Input::PeerFailure { .. }
            | Input::SetGuards { .. } => None,
        }
    }

    /// The record tag.
    pub fn tag(&self) -> u8 {
        match self {
            Input::OpenLink { .. } => tag::OPEN_LINK,
            Input::HandleData { .. } => tag::HANDLE_DATA,
            Input::TransportClosed { .. } => tag::TRANSPORT_CLOSED,
            Input::Timeout { .. } => tag::TIMEOUT,
            Input::DialFailed { .. } => tag::DIAL_FAILED,
            Input::CloseLink { .. } => tag::CLOSE_LINK,
            Input::SendCell { .. } => tag::SEND_CELL,
            Input::SendMessage { .. } => tag::SEND_MESSAGE,
            Input::Reply { .. } => tag::REPLY,
            Input::PollMessage { .. } => tag::POLL_MESSAGE,
            Input::PollTransmit { .. } => tag::POLL_TRANSMIT,
            Input::PollLinkTransmit { .. } => tag::POLL_LINK_TRANSMIT,
            Input::PollEvent => tag::POLL_EVENT,
            Input::PollDial => tag::POLL_DIAL,
            Input::SetAdvertised { .. } => tag::SET_ADVERTISED,
            Input::AddBootstrap { .. } => tag::ADD_BOOTSTRAP,
            Input::LearnDescriptor { .. } => tag::LEARN_DESCRIPTOR,
            Input::PeerFailure { .. } => tag::PEER_FAILURE,
            Input::SetGuards { .. } => tag::SET_GUARDS,
            Input::OpenStreamLink { .. } => tag::OPEN_STREAM_LINK,
            Input::HandleStreamCell { .. } => tag::HANDLE_STREAM_CELL,
            Input::PollStreamCell { .. } => tag::POLL_STREAM_CELL,
        }
    }

    /// Appends the whole record: tag, body length, body.
    pub fn encode_record(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        let at = out.len();
        put_u32(out, 0);
        self.encode_body(out);
        let len = u32::try_from(out.len().saturating_sub(at).saturating_sub(4)).unwrap_or(0);
        if let Some(slot) = out.get_mut(at..at.saturating_add(4)) {
            slot.copy_from_slice(&len.to_le_bytes());
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Input::OpenLink {
                now,
                role,
                expected,
                transport,
            } => {
                put_time(out, *now);
                out.push(role_code(*role));
                put_opt_id(out, expected.as_ref());
                out.push(transport.map_or(0, Transport::code));
            }
            Input::HandleData { now, link, data } => {
                put_time(out, *now);
                put_link(out, *link);
                out.extend_from_slice(data);
            }
            Input::TransportClosed { now, link } => {
                put_time(out, *now);
                put_link(out, *link);
            }
            Input::Timeout { now } => put_time(out, *now),
            Input::DialFailed { now, request } => {
                put_time(out, *now);
                put_dial(out, request);
            }
            Input::CloseLink { now, link, reason } => {
                put_time(out, *now);
                put_link(out, *link);
                out.push(reason.code());
            }
            Input::SendCell { now, link, cell } => {
                put_time(out, *now);
                put_link(out, *link);
                out.extend_from_slice(&cell[..]);
            }
            Input::SendMessage {
                now,
                destination,
                message,
            } => {
                put_time(out, *now);
                out.extend_from_slice(destination.as_bytes());
                out.extend_from_slice(message);
            }
            Input::Reply {
                now,
                sender,
                message,
            } => {
                put_time(out, *now);
                put_u64(out, *sender);
                out.extend_from_slice(message);
            }
            Input::PollMessage { buf_len } => put_u32(out, *buf_len),
            Input::PollTransmit { now, buf_len } => {
                put_time(out, *now);
                put_u32(out, *buf_len);
            }
            Input::PollLinkTransmit { now, link, buf_len } => {
                put_time(out, *now);
                put_link(out, *link);
                put_u32(out, *buf_len);
            }
            Input::PollEvent | Input::PollDial => {}
            Input::SetAdvertised { now, addresses } => {
                put_time(out, *now);
                put_u32(out, u32::try_from(addresses.len()).unwrap_or(u32::MAX));
                for a in addresses {
                    put_address(out, a);
                }
            }
            Input::AddBootstrap { address } => put_address(out, address),
            Input::LearnDescriptor { now, descriptor } => {
                put_time(out, *now);
                out.extend_from_slice(descriptor);
            }
            Input::PeerFailure { peer } => out.extend_from_slice(peer.as_bytes()),
            Input::SetGuards { guards } => {
                put_u32(out, u32::try_from(guards.len()).unwrap_or(u32::MAX));
                for g in guards {
                    out.extend_from_slice(g.as_bytes());
                }
            }
            Input::OpenStreamLink {
                now,
                role,
                expected,
                transport,
                binding,
            } => {
                put_time(out, *now);
                out.push(role_code(*role));
                put_opt_id(out, expected.as_ref());
                out.push(transport.code());
                out.extend_from_slice(binding);
            }
            Input::HandleStreamCell { now, link, cell } => {
                put_time(out, *now);
                put_link(out, *link);
                out.extend_from_slice(&cell[..]);
            }
            Input::PollStreamCell { now, link } => {
                put_time(out, *now);
                put_link(out, *link);
            }
        }
    }
}

/// Decodes an input record's body. `Ok(None)`: not an input tag.
pub fn decode_input(t: u8, body: &[u8]) -> Result<Option<Input<'_>>, DecodeError> {
    let mut r = Reader::new(body);
    let input = match t {
        tag::OPEN_LINK => Input::OpenLink {
            now: r.time()?,
            role: r.role()?,
            expected: r.opt_id()?,
            transport: match r.u8()? {
                0 => None,
                code => Some(
                    Transport::from_code(code)
                        .ok_or_else(|| DecodeError::new(format!("transport {code} is unknown")))?,
                ),
            },
        },
        tag::HANDLE_DATA => Input::HandleData {
            now: r.time()?,
            link: r.link()?,
            data: r.rest(),
        },
        tag::TRANSPORT_CLOSED => Input::TransportClosed {
            now: r.time()?,
            link: r.link()?,
        },
        tag::TIMEOUT => Input::Timeout { now: r.time()? },
        tag::DIAL_FAILED => Input::DialFailed {
            now: r.time()?,
            request: r.dial()?,
        },
        tag::CLOSE_LINK => Input::CloseLink {
            now: r.time()?,
            link: r.link()?,
            reason: {
                let code = r.u8()?;
                CloseReason::from_code(code)
                    .ok_or_else(|| DecodeError::new(format!("close reason {code} is unknown")))?
            },
        },
        tag::SEND_CELL => {
            let now = r.time()?;
            let link = r.link()?;
            let cell: &Cell = r
                .take(CELL_LEN)?
                .try_into()
                .map_err(|_| DecodeError::new("cell length"))?;
            Input::SendCell { now, link, cell }
        }
        tag::SEND_MESSAGE => Input::SendMessage {
            now: r.time()?,
            destination: NodeId(r.array::<32>()?),
            message: r.rest(),
        },
        tag::REPLY => Input::Reply {
            now: r.time()?,
            sender: r.u64()?,
            message: r.rest(),
        },
        tag::POLL_MESSAGE => Input::PollMessage {
            buf_len: r.buf_len()?,
        },
        tag::POLL_TRANSMIT => Input::PollTransmit {
            now: r.time()?,
            buf_len: r.buf_len()?,
        },
        tag::POLL_LINK_TRANSMIT => Input::PollLinkTransmit {
            now: r.time()?,
            link: r.link()?,
            buf_len: r.buf_len()?,
        },
        tag::POLL_EVENT => Input::PollEvent,
        tag::POLL_DIAL => Input::PollDial,
        tag::SET_ADVERTISED => {
            let now = r.time()?;
            let count = r.u32()?;
            let mut addresses = Vec::new();
            for _ in 0..count {
                addresses.push(r.address()?);
            }
            Input::SetAdvertised { now, addresses }
        }
        tag::ADD_BOOTSTRAP => Input::AddBootstrap {
            address: r.address()?,
        },
        tag::LEARN_DESCRIPTOR => Input::LearnDescriptor {
            now: r.time()?,
            descriptor: r.rest(),
        },
        tag::PEER_FAILURE => Input::PeerFailure {
            peer: NodeId(r.array::<32>()?),
        },
        tag::SET_GUARDS => {
            let count = r.u32()?;
            let mut guards = Vec::new();
            for _ in 0..count {
                guards.push(NodeId(r.array::<32>()?));
            }
            Input::SetGuards { guards }
        }
        tag::OPEN_STREAM_LINK => Input::OpenStreamLink {
            now: r.time()?,
            role: r.role()?,
            expected: r.opt_id()?,
            transport: {
                let code = r.u8()?;
                Transport::from_code(code)
                    .ok_or_else(|| DecodeError::new(format!("transport {code} is unknown")))?
            },
            binding: r.array::<CHANNEL_BINDING_LEN>()?,
        },
        tag::HANDLE_STREAM_CELL => {
            let now = r.time()?;
            let link = r.link()?;
            let cell: &Cell = r
                .take(CELL_LEN)?
                .try_into()
                .map_err(|_| DecodeError::new("cell length"))?;
            Input::HandleStreamCell { now, link, cell }
        }
        tag::POLL_STREAM_CELL => Input::PollStreamCell {
            now: r.time()?,
            link: r.link()?,
        },
        _ => return Ok(None),
    };
    r.finish()?;
    Ok(Some(input))
}

/// What one call returned (and, for polls, wrote into the caller's buffer).
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    /// The call returns nothing.
    Nothing,
    /// `open_link`.
    OpenLink(Result<LinkId, OpenLinkError>),
    /// `handle_data`.
    Data(Result<usize, LinkInputError>),
    /// `handle_transport_closed`, `close_link`.
    Link(Result<(), LinkInputError>),
    /// `send_cell`.
    SendCell(Result<(), SendCellError>),
    /// `send_message`, `reply`.
    Queued(Result<MessageId, SendMessageError>),
    /// `poll_message`: the message and the bytes written.
    Message(Option<(ReceivedMessage, &'a [u8])>),
    /// `poll_transmit`: the transmit and the bytes written.
    Transmit(Option<(Transmit, &'a [u8])>),
    /// `poll_link_transmit`: the bytes written.
    LinkTransmit(Option<&'a [u8]>),
    /// `poll_event`.
    Event(Option<&'a Event>),
    /// `poll_dial`.
    Dial(Option<DialRequest>),
    /// `add_bootstrap`.
    Bool(bool),
    /// `learn_descriptor`.
    Learned(Result<InsertOutcome, DescriptorRefusal>),
    /// `handle_stream_cell`.
    StreamCell(Result<(), StreamCellError>),
    /// `poll_stream_cell`: the cell given.
    Cell(Option<&'a Cell>),
}

/// Numbers the anonymous senders of received messages in order of
/// appearance, so that a `reply` can name one in a trace.
#[derive(Debug, Default)]
pub struct Senders {
    recent: std::collections::VecDeque<(u64, ReplyTo)>,
    next: u64,
}

impl Senders {
    /// Numbers a sender seen in a `poll_message` output.
    pub fn note(&mut self, to: ReplyTo) -> u64 {
        let n = self.next;
        self.next = self.next.saturating_add(1);
        if self.recent.len() == SENDER_MEMORY {
            self.recent.pop_front();
        }
        self.recent.push_back((n, to));
        n
    }

    /// The number of `to`, if it is remembered (the latest if several).
    pub fn number(&self, to: &ReplyTo) -> Option<u64> {
        self.recent
            .iter()
            .rev()
            .find(|(_, t)| t == to)
            .map(|(n, _)| *n)
    }

    /// The sender numbered `n`.
    pub fn get(&self, n: u64) -> Option<ReplyTo> {
        self.recent.iter().find(|(m, _)| *m == n).map(|(_, t)| *t)
    }
}

/// Appends the output encoding of one call: the node's next deadline after
/// it, then what the call returned.
pub fn encode_output(
    node: &StdNode,
    output: &Output<'_>,
    senders: &mut Senders,
    out: &mut Vec<u8>,
) {
    match node.poll_timeout() {
        None => out.push(0),
        Some(deadline) => {
            out.push(1);
            put_time(out, deadline);
        }
    }
    match output {
        Output::Nothing => {}
        Output::OpenLink(r) => match r {
            Ok(link) => {
                out.push(0);
                put_link(out, *link);
            }
            Err(OpenLinkError::TableFull) => out.push(1),
        },
        Output::Data(r) => match r {
            Ok(consumed) => {
                out.push(0);
                put_usize(out, *consumed);
            }
            Err(LinkInputError::UnknownLink(link)) => {
                out.push(1);
                put_link(out, *link);
            }
        },
        Output::Link(r) => match r {
            Ok(()) => out.push(0),
            Err(LinkInputError::UnknownLink(link)) => {
                out.push(1);
                put_link(out, *link);
            }
        },
        Output::SendCell(r) => match r {
            Ok(()) => out.push(0),
            Err(e) => {
                let (code, link) = match e {
                    SendCellError::UnknownLink(l) => (1, l),
                    SendCellError::NotEstablished(l) => (2, l),
                    SendCellError::QueueFull(l) => (3, l),
                };
                out.push(code);
                put_link(out, *link);
            }
        },
        Output::Queued(r) => match r {
            Ok(id) => {
                out.push(0);
                out.extend_from_slice(&id.0);
            }
            Err(e) => {
                out.push(1);
                match e {
                    SendMessageError::Full => out.push(0),
                    SendMessageError::TooLarge { len, max } => {
                        out.push(1);
                        put_usize(out, *len);
                        put_usize(out, *max);
                    }
                    SendMessageError::ToSelf => out.push(2),
                    SendMessageError::UnknownDestination => out.push(3),
                    SendMessageError::ReplyCircuitGone => out.push(4),
                }
            }
        },
        Output::Message(m) => match m {
            None => out.push(0),
            Some((message, bytes)) => {
                out.push(1);
                out.extend_from_slice(&message.id.0);
                put_usize(out, message.len);
                match message.sender {
                    Sender::Node(id) => {
                        out.push(0);
                        out.extend_from_slice(id.as_bytes());
                    }
                    Sender::Anonymous(to) => {
                        out.push(1);
                        put_u64(out, senders.note(to));
                    }
                }
                out.extend_from_slice(bytes);
            }
        },
        Output::Transmit(t) => match t {
            None => out.push(0),
            Some((transmit, bytes)) => {
                out.push(1);
                put_link(out, transmit.link);
                put_usize(out, transmit.len);
                out.extend_from_slice(bytes);
            }
        },
        Output::LinkTransmit(t) => match t {
            None => out.push(0),
            Some(bytes) => {
                out.push(1);
                put_usize(out, bytes.len());
                out.extend_from_slice(bytes);
            }
        },
        Output::Event(e) => match e {
            None => out.push(0),
            Some(event) => {
                out.push(1);
                encode_event(event, out);
            }
        },
        Output::Dial(d) => match d {
            None => out.push(0),
            Some(request) => {
                out.push(1);
                put_dial(out, request);
            }
        },
        Output::Bool(b) => out.push(u8::from(*b)),
        Output::Learned(r) => match r {
            Ok(outcome) => {
                out.push(0);
                match outcome {
                    InsertOutcome::Added => out.push(0),
                    InsertOutcome::Updated => out.push(1),
                    InsertOutcome::Refreshed => out.push(2),
                    InsertOutcome::Replaced { evicted } => {
                        out.push(3);
                        out.extend_from_slice(evicted.as_bytes());
                    }
                }
            }
            Err(refusal) => {
                out.push(1);
                put_refusal(out, refusal);
            }
        },
        Output::StreamCell(r) => match r {
            Ok(()) => out.push(0),
            Err(e) => {
                let (code, link) = match e {
                    StreamCellError::UnknownLink(l) => (1, l),
                    StreamCellError::NotAStreamLink(l) => (2, l),
                    StreamCellError::WouldBlock(l) => (3, l),
                };
                out.push(code);
                put_link(out, *link);
            }
        },
        Output::Cell(c) => match c {
            None => out.push(0),
            Some(cell) => {
                out.push(1);
                out.extend_from_slice(&cell[..]);
            }
        },
    }
}

fn encode_event(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::LinkEstablished { link, peer, role } => {
            out.push(0);
            put_link(out, *link);
            out.extend_from_slice(peer.as_bytes());
            out.push(role_code(*role));
        }
        Event::LinkClosed {
            link,
            peer,
            reason,
            by,
        } => {
            out.push(1);
            put_link(out, *link);
            put_opt_id(out, peer.as_ref());
            out.push(reason.code());
            out.push(match by {
                ClosedBy::Local => 0,
                ClosedBy::Peer => 1,
            });
        }
        Event::PeerLearned { peer, relay, via } => {
            out.push(2);
            out.extend_from_slice(peer.as_bytes());
            out.push(u8::from(*relay));
            put_link(out, *via);
        }
        Event::DescriptorRefused { link, reason } => {
            out.push(3);
            put_link(out, *link);
            put_refusal(out, reason);
        }
        Event::CircuitReady {
            circuit,
            destination,
            built_in,
        } => {
            out.push(4);
            put_u32(out, circuit.0);
            out.extend_from_slice(destination.as_bytes());
            put_dur(out, *built_in);
        }
        Event::CircuitClosed {
            circuit,
            destination,
            reason,
        } => {
            out.push(5);
            put_u32(out, circuit.0);
            put_opt_id(out, destination.as_ref());
            out.push(reason.code());
        }
        Event::MessageReceived { id, len } => {
            out.push(6);
            out.extend_from_slice(&id.0);
            put_usize(out, *len);
        }
        Event::MessageAcknowledged { id } => {
            out.push(7);
            out.extend_from_slice(&id.0);
        }
        Event::MessageFailed { id, reason } => {
            out.push(8);
            out.extend_from_slice(&id.0);
            out.push(match reason {
                MessageFailure::Expired => 0,
                MessageFailure::Refused => 1,
                MessageFailure::CircuitClosed => 2,
            });
        }
        Event::CellReceived { link, cell } => {
            out.push(9);
            put_link(out, *link);
            out.extend_from_slice(&cell[..]);
        }
    }
}

/// A refused descriptor's reason: its `Debug` text, length-prefixed. The
/// reason nests core error enums; their derived `Debug` text is stable.
fn put_refusal(out: &mut Vec<u8>, refusal: &DescriptorRefusal) {
    let text = format!("{refusal:?}");
    put_u16(out, u16::try_from(text.len()).unwrap_or(u16::MAX));
    out.extend_from_slice(
        text.as_bytes()
            .get(..usize::from(u16::MAX))
            .unwrap_or(text.as_bytes()),
    );
}

fn role_code(role: LinkRole) -> u8 {
    match role {
        LinkRole::Initiator => 0,
        LinkRole::Responder => 1,
    }
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_usize(out: &mut Vec<u8>, v: usize) {
    put_u64(out, u64::try_from(v).unwrap_or(u64::MAX));
}

fn put_time(out: &mut Vec<u8>, t: Instant) {
    put_u64(out, t.as_micros());
}

fn put_dur(out: &mut Vec<u8>, d: Duration) {
    put_u64(out, d.as_micros());
}

fn put_link(out: &mut Vec<u8>, link: LinkId) {
    put_u32(out, link.to_u32());
}

fn put_opt_id(out: &mut Vec<u8>, id: Option<&NodeId>) {
    match id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
        }
    }
}

fn put_address(out: &mut Vec<u8>, a: &Address) {
    out.push(a.transport.code());
    match a.socket.ip() {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&a.socket.port().to_le_bytes());
}

fn put_dial(out: &mut Vec<u8>, request: &DialRequest) {
    put_opt_id(out, request.peer.as_ref());
    put_address(out, &request.address);
}

/// A cursor over a record body.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::new("record body is too short"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(bytes);
        Ok(a)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::new(format!(
                "record body has {} bytes too many",
                self.bytes.len()
            )))
        }
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array::<1>()?))
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array::<2>()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array::<4>()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array::<8>()?))
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::new(format!("flag byte {other} is not 0 or 1"))),
        }
    }

    fn time(&mut self) -> Result<Instant, DecodeError> {
        Ok(Instant::from_micros(self.u64()?))
    }

    fn link(&mut self) -> Result<LinkId, DecodeError> {
        Ok(LinkId::from_u32(self.u32()?))
    }
    fn role(&mut self) -> Result<LinkRole, DecodeError> {
        match self.u8()? {
            0 => Ok(LinkRole::Initiator),
            1 => Ok(LinkRole::Responder),
            other => Err(DecodeError::new(format!("link role {other} is unknown"))),
        }
    }

    fn buf_len(&mut self) -> Result<u32, DecodeError> {
        let len = self.u32()?;
        if len > MAX_POLL_BUFFER {
            return Err(DecodeError::new(format!(
                "a {len}-byte poll buffer exceeds the {MAX_POLL_BUFFER}-byte limit"
            )));
        }
        Ok(len)
    }

    fn opt_id(&mut self) -> Result<Option<NodeId>, DecodeError> {
        if self.flag()? {
            Ok(Some(NodeId(self.array::<32>()?)))
        } else {
            Ok(None)
        }
    }

    fn address(&mut self) -> Result<Address, DecodeError> {
        let code = self.u8()?;
        let transport = Transport::from_code(code)
            .ok_or_else(|| DecodeError::new(format!("transport {code} is unknown")))?;
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)),
            other => {
                return Err(DecodeError::new(format!(
                    "address family {other} is not 4 or 6"
                )))
            }
        };
        let port = self.u16()?;
        Ok(Address {
            transport,
            socket: SocketAddr::new(ip, port),
        })
    }

    fn dial(&mut self) -> Result<DialRequest, DecodeError> {
        Ok(DialRequest {
            peer: self.opt_id()?,
            address: self.address()?,
        })
    }
}

/// The length of a message id, checked here so the format doc stays right.
const _: () = assert!(MESSAGE_ID_LEN == 16);

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> TraceHeader {
        TraceHeader {
            secret: [7; 32],
            seed: [9; 32],
            capacities: Capacities::of_this_build(12),
            config: NodeConfig {
                relay: false,
                path_relays: 2,
                unix_time_at_zero: 1_700_000_000,
                gossip_interval: Duration::from_millis(250),
                ..NodeConfig::default()
            },
        }
    }

    fn body(bytes: &[u8]) -> &[u8] {
        let len = u32::from_le_bytes(bytes[10..14].try_into().unwrap()) as usize;
        assert_eq!(&bytes[..8], &MAGIC);
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), VERSION);
        assert_eq!(bytes.len(), 14 + len);
        &bytes[14..]
    }

    #[test]
    fn header_round_trips() {
        let h = header();
        let mut bytes = Vec::new();
        h.encode(&mut bytes);
        assert_eq!(TraceHeader::decode(body(&bytes)).unwrap(), h);
    }

    /// Config fields a trace lacks take their defaults; unknown or repeated
    /// names are refused.
    #[test]
    fn config_fields_are_named() {
        let fields = config_fields(&header().config);
        let encode = |fields: &[(&str, u64)]| {
            let mut out = Vec::new();
            out.extend_from_slice(&[0; 64]);
            out.extend_from_slice(&12u32.to_le_bytes());
            for c in Capacities::of_this_build(12).fixed {
                out.extend_from_slice(&c.to_le_bytes());
            }
            out.extend_from_slice(&(fields.len() as u16).to_le_bytes());
            for (name, value) in fields {
                out.push(name.len() as u8);
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
            out
        };
        let without_quic: Vec<_> = fields
            .iter()
            .copied()
            .filter(|(n, _)| !n.starts_with("quic") && !n.starts_with("transport"))
            .collect();
        let decoded = TraceHeader::decode(&encode(&without_quic)).unwrap();
        assert_eq!(decoded.config, header().config);
        let mut unknown = fields.to_vec();
        unknown.push(("warp_drive", 1));
        let err = TraceHeader::decode(&encode(&unknown)).unwrap_err();
        assert!(err.0.contains("warp_drive is unknown"), "{err:?}");
        let mut twice = fields.to_vec();
        twice.push(fields[0]);
        assert!(TraceHeader::decode(&encode(&twice)).is_err());
        let mut bad_flag = fields.to_vec();
        bad_flag.push(("relay", 2));
        bad_flag.remove(8);
        assert!(TraceHeader::decode(&encode(&bad_flag)).is_err());
    }

    #[test]
    fn every_input_round_trips() {
        let t = Instant::from_micros(123_456);
        let link = LinkId::from_u32(0x0003_0002);
        let id = NodeId([5; 32]);
        let v4 = Address {
            transport: Transport::Tcp,
            socket: "127.1.2.3:7700".parse().unwrap(),
        };
        let v6 = Address {
            transport: Transport::Quic,
            socket: "[::1]:9".parse().unwrap(),
        };
        let cell: Cell = [0xab; CELL_LEN];
        let inputs = [
            Input::OpenLink {
                now: t,
                role: LinkRole::Initiator,
                expected: Some(id),
                transport: Some(Transport::Tcp),
            },
            Input::OpenLink {
                now: t,
                role: LinkRole::Responder,
                expected: None,
                transport: None,
            },
            Input::HandleData {
                now: t,
                link,
                data: b"bytes",
            },
            Input::TransportClosed { now: t, link },
            Input::Timeout { now: t },
            Input::DialFailed {
                now: t,
                request: DialRequest {
                    peer: None,
                    address: v6,
                },
            },
            Input::CloseLink {
                now: t,
                link,
                reason: CloseReason::Shutdown,
            },
            Input::SendCell {
                now: t,
                link,
                cell: &cell,
            },
            Input::SendMessage {
                now: t,
                destination: id,
                message: b"hello",
            },
            Input::Reply {
                now: t,
                sender: 3,
                message: b"",
            },
            Input::PollMessage { buf_len: 65536 },
            Input::PollTransmit {
                now: t,
                buf_len: 100,
            },
            Input::PollLinkTransmit {
                now: t,
                link,
                buf_len: 16448,
            },
            Input::PollEvent,
            Input::PollDial,
            Input::SetAdvertised {
                now: t,
                addresses: vec![v4, v6],
            },
            Input::AddBootstrap { address: v4 },
            Input::LearnDescriptor {
                now: t,
                descriptor: &[1, 2, 3],
            },
            Input::PeerFailure { peer: id },
            Input::SetGuards {
                guards: vec![id, NodeId([6; 32])],
            },
        ];
        for input in &inputs {
            let mut record = Vec::new();
            input.encode_record(&mut record);
            assert_eq!(record[0], input.tag());
            let len = u32::from_le_bytes(record[1..5].try_into().unwrap()) as usize;
            assert_eq!(record.len(), 5 + len);
            let decoded = decode_input(record[0], &record[5..]).unwrap().unwrap();
            let mut again = Vec::new();
            decoded.encode_record(&mut again);
            assert_eq!(again, record, "{input:?}");
            assert_ne!(tag_name(input.tag()), "unknown");
            // One byte short or one too many is corrupt (except where the
            // body ends in free-length bytes).
            let mut long = record[5..].to_vec();
            long.push(0);
            let free_tail = matches!(
                input,
                Input::HandleData { .. }
                    | Input::SendMessage { .. }
                    | Input::Reply { .. }
                    | Input::LearnDescriptor { .. }
            );
            if !free_tail {
                assert!(decode_input(record[0], &long).is_err(), "{input:?}");
            }
            if len > 0 && !free_tail {
                assert!(decode_input(record[0], &record[5..4 + len]).is_err());
            }
        }
        assert!(matches!(decode_input(0x7f, &[]), Ok(None)));
    }
}
