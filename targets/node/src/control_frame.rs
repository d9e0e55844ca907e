//! The control socket's binary frames (CONTROL.md, "Binary frames"): what a
//! connection speaks after a `frames` request was accepted.
//!
//! Why frames: in the line protocol a message travels as `data_hex`, which
//! doubles its bytes, and both ends scan every byte for the newline, parse
//! it as a JSON string and decode the hex. Between `veil node` processes
//! that cost showed as a quarter of the bulk throughput. A frame carries
//! the same JSON object as a line, minus the data field, as its header, and
//! the data as raw bytes after it, so the data is only ever copied, and
//! the header fields stay as readable and extensible as the lines.
//!
//! A frame is, in this order:
//!
//! 1. the header's length, a `u32`, big-endian;
//! 2. the payload's length, a `u32`, big-endian;
//! 3. the header: one JSON object, UTF-8, at most [`MAX_FRAME_HEADER`]
//!    bytes and never empty;
//! 4. the payload: raw bytes, at most [`MAX_FRAME_PAYLOAD`].
//!
//! Both lengths are checked before anything is allocated for them, so a
//! hostile peer gets [`ReadFrameError::HeaderTooLong`] or
//! [`ReadFrameError::PayloadTooLong`], never a large allocation.

use std::fmt;
use std::io::{self, ErrorKind, IoSlice, Read, Write};

use serde::{Deserialize, Serialize};
use veil_mio::StdNode;

use crate::control_protocol::{Response, MAX_LINE};

/// The one version of the frame format there is; a `frames` request
/// names the version it wants, so a later format can be offered beside
/// this one.
pub const FRAMES_VERSION: u32 = 1;

/// Bytes before the header: its length and the payload's.
pub const FRAME_PREFIX: usize = 8;

/// The longest header: the line limit, so that whatever fits a line (a
/// `status` answer above all) fits a header.
pub const MAX_FRAME_HEADER: usize = MAX_LINE;

/// The longest payload: the largest message (a descriptor, the only other
/// payload, is far smaller).
pub const MAX_FRAME_PAYLOAD: usize = StdNode::MAX_MESSAGE;

/// One frame as read: its JSON header and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header's bytes (a JSON object, not yet parsed).
    pub header: Vec<u8>,
    /// The payload's bytes.
    pub payload: Vec<u8>,
}

/// A request's header in frame mode: the line request without its hex
/// field, whose bytes are the frame's payload instead.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum FrameRequest {
    /// `send`: the payload is the message.
    Send {
        /// Destination node id, 64 hex digits.
        to: String,
    },
    /// `reply`: the payload is the reply.
    Reply {
        /// The message's reply token, from its `message` header.
        reply_to: String,
    },
    /// `learn_service`: the payload is the descriptor.
    #[serde(rename = "learn_service")]
    LearnService {},
    /// `status`: no payload.
    Status {},
    /// `listen`: no payload.
    Listen {
        /// How many messages to stream; all of them if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
    },
}

impl FrameRequest {
    /// Whether this request carries its data in the payload (the others
    /// must have an empty one).
    pub fn takes_payload(&self) -> bool {
        matches!(
            self,
            FrameRequest::Send { .. } | FrameRequest::Reply { .. } | FrameRequest::LearnService {}
        )
    }
}

/// A received message's header in frame mode: the `message` line without
/// `data_hex`; the payload is the message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageHeader {
    /// Always "message".
    pub event: String,
    /// The sender's node id when known (replies), else null.
    pub from: Option<String>,
    /// For a message from an anonymous sender, its reply token, else null.
    #[serde(default)]
    pub reply_to: Option<String>,
}

/// Why a frame could not be read.
#[derive(Debug)]
pub enum ReadFrameError {
    /// Reading the connection failed.
    Io(io::Error),
    /// The stream ended inside a frame.
    Truncated {
        /// What was being read.
        part: &'static str,
    },
    /// The header length is over the limit.
    HeaderTooLong {
        /// The length the frame announced.
        len: u32,
    },
    /// The payload length is over the limit.
    PayloadTooLong {
        /// The length the frame announced.
        len: u32,
    },
    /// The header length is zero: a header is a JSON object.
    EmptyHeader,
}

impl fmt::Display for ReadFrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFrameError::Io(e) => write!(f, "cannot read a frame: {e}"),
            ReadFrameError::Truncated { part } => write!(
                f,
                "the connection ended inside a frame's {part}; send whole frames"
            ),
            ReadFrameError::HeaderTooLong { len } => write!(
                f,
                "a frame header of {len} bytes is over the limit of {MAX_FRAME_HEADER}; \
                 check the frame's byte order (big-endian) and its two lengths"
            ),
            ReadFrameError::PayloadTooLong { len } => write!(
                f,
                "a frame payload of {len} bytes is over the limit of {MAX_FRAME_PAYLOAD} \
                 (the largest message); split the data into messages"
            ),
            ReadFrameError::EmptyHeader => {
                f.write_str("a frame with an empty header; every frame's header is a JSON object")
            }
        }
    }
}

impl std::error::Error for ReadFrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadFrameError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a frame could not be encoded.
#[derive(Debug)]
pub enum EncodeFrameError {
    /// The header did not serialize (a bug in the caller's type).
    Header(serde_json::Error),
    /// The header is over [`MAX_FRAME_HEADER`].
    HeaderTooLong {
        /// Its length.
        len: usize,
    },
    /// The payload is over [`MAX_FRAME_PAYLOAD`].
    PayloadTooLong {
        /// Its length.
        len: usize,
    },
}

impl fmt::Display for EncodeFrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeFrameError::Header(e) => write!(f, "cannot encode a frame header: {e}"),
            EncodeFrameError::HeaderTooLong { len } => write!(
                f,
                "a frame header of {len} bytes is over the limit of {MAX_FRAME_HEADER}"
            ),
            EncodeFrameError::PayloadTooLong { len } => write!(
                f,
                "{len} bytes is over the largest message, {MAX_FRAME_PAYLOAD}; split it"
            ),
        }
    }
}

impl std::error::Error for EncodeFrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EncodeFrameError::Header(e) => Some(e),
            _ => None,
        }
    }
}

/// Replaces `out` with the start of a frame, its two lengths and
/// `header`, for a payload of `payload_len` bytes that
/// [`write_frame`] then writes from where it is, without copying it.
/// `out` is the caller's so that a connection reuses one buffer for every
/// frame.
pub fn encode_frame_head<T: Serialize>(
    out: &mut Vec<u8>,
    header: &T,
    payload_len: usize,
) -> Result<(), EncodeFrameError> {
    if payload_len > MAX_FRAME_PAYLOAD {
        return Err(EncodeFrameError::PayloadTooLong { len: payload_len });
    }
    out.clear();
    out.extend_from_slice(&[0u8; FRAME_PREFIX]);
    serde_json::to_writer(&mut *out, header).map_err(EncodeFrameError::Header)?;
    let header_len = out.len().saturating_sub(FRAME_PREFIX);
    if header_len > MAX_FRAME_HEADER {
        return Err(EncodeFrameError::HeaderTooLong { len: header_len });
    }
    // Both fit a u32: the limits are far below it.
    let lengths = [header_len, payload_len].map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    for (slot, byte) in out
        .iter_mut()
        .zip(lengths.iter().flat_map(|n| n.to_be_bytes()))
    {
        *slot = byte;
    }
    Ok(())
}

/// Replaces `out` with the whole frame of `header` and `payload` (for
/// tests and for frames built in memory; connections use
/// [`encode_frame_head`] and [`write_frame`]).
pub fn encode_frame<T: Serialize>(
    out: &mut Vec<u8>,
    header: &T,
    payload: &[u8],
) -> Result<(), EncodeFrameError> {
    encode_frame_head(out, header, payload.len())?;
    out.extend_from_slice(payload);
    Ok(())
}

/// Writes a frame's start (from [`encode_frame_head`]) and its payload
/// with vectored writes: one system call for the whole frame as a rule,
/// so a TCP connection sends no lone small segment for Nagle's algorithm
/// to hold back, and the payload is never copied into a buffer first.
pub fn write_frame(writer: &mut impl Write, head: &[u8], payload: &[u8]) -> io::Result<()> {
    let mut parts = [IoSlice::new(head), IoSlice::new(payload)];
    let mut slices = &mut parts[..];
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match writer.write_vectored(slices) {
            Ok(0) => return Err(io::Error::from(ErrorKind::WriteZero)),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The answer frame of `response` (no payload).
pub fn encode_answer(out: &mut Vec<u8>, response: &Response) -> Result<(), EncodeFrameError> {
    encode_frame(out, response, &[])
}

/// Reads one frame; `None` if the stream ends before its first byte.
/// Lengths over the limits are refused before anything is allocated for
/// them.
pub fn read_frame(reader: &mut impl Read) -> Result<Option<Frame>, ReadFrameError> {
    let mut prefix = [0u8; FRAME_PREFIX];
    let mut got = 0;
    while got < FRAME_PREFIX {
        let rest = prefix.get_mut(got..).unwrap_or_default();
        match reader.read(rest) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ReadFrameError::Truncated { part: "lengths" }),
            Ok(n) => got = got.saturating_add(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadFrameError::Io(e)),
        }
    }
    let [h0, h1, h2, h3, p0, p1, p2, p3] = prefix;
    let header_len = u32::from_be_bytes([h0, h1, h2, h3]);
    let payload_len = u32::from_be_bytes([p0, p1, p2, p3]);
    let header_size = usize::try_from(header_len).unwrap_or(usize::MAX);
    let payload_size = usize::try_from(payload_len).unwrap_or(usize::MAX);
    if header_size == 0 {
        return Err(ReadFrameError::EmptyHeader);
    }
    if header_size > MAX_FRAME_HEADER {
        return Err(ReadFrameError::HeaderTooLong { len: header_len });
    }
    if payload_size > MAX_FRAME_PAYLOAD {
        return Err(ReadFrameError::PayloadTooLong { len: payload_len });
    }
    let header = read_part(reader, header_size, "header")?;
    let payload = read_part(reader, payload_size, "payload")?;
    Ok(Some(Frame { header, payload }))
}

/// Exactly `len` bytes (already checked against the limit) into a vector
/// of that capacity, read into its spare capacity: not zeroed first, as
/// `read_exact` into a `vec![0; len]` would.
fn read_part(
    reader: &mut impl Read,
    len: usize,
    part: &'static str,
) -> Result<Vec<u8>, ReadFrameError> {
    let mut buf = Vec::with_capacity(len);
    let limit = u64::try_from(len).unwrap_or(u64::MAX);
    loop {
        match reader.by_ref().take(limit).read_to_end(&mut buf) {
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadFrameError::Io(e)),
        }
    }
    if buf.len() < len {
        return Err(ReadFrameError::Truncated { part });
    }
    Ok(buf)
}

/// For the fuzz target: reads frames from `data` until it ends or one is
/// refused, and parses each header as every kind of header there is.
/// Whatever the bytes, this must return (with an error at worst), never
/// panic or allocate beyond the limits.
pub fn fuzz_frames(data: &[u8]) {
    let mut reader = data;
    while let Ok(Some(frame)) = read_frame(&mut reader) {
        assert!(frame.header.len() <= MAX_FRAME_HEADER);
        assert!(frame.payload.len() <= MAX_FRAME_PAYLOAD);
        let _ = serde_json::from_slice::<FrameRequest>(&frame.header);
        let _ = serde_json::from_slice::<Response>(&frame.header);
        let _ = serde_json::from_slice::<MessageHeader>(&frame.header);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(header: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&u32::try_from(header.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        out.extend_from_slice(header);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn a_frame_round_trips_and_its_layout_is_the_documented_one() {
        let mut out = Vec::new();
        let request = FrameRequest::Send {
            to: "ab".repeat(32),
        };
        encode_frame(&mut out, &request, b"hi\n\0").unwrap();
        let header = format!(r#"{{"cmd":"send","to":"{}"}}"#, "ab".repeat(32));
        assert_eq!(out, frame_bytes(header.as_bytes(), b"hi\n\0"));
        let mut reader = &out[..];
        let frame = read_frame(&mut reader).unwrap().unwrap();
        assert_eq!(frame.header, header.as_bytes());
        assert_eq!(frame.payload, b"hi\n\0");
        assert!(read_frame(&mut reader).unwrap().is_none());
        let parsed: FrameRequest = serde_json::from_slice(&frame.header).unwrap();
        assert!(matches!(parsed, FrameRequest::Send { ref to } if to == &"ab".repeat(32)));
        assert!(parsed.takes_payload());
        // The buffer is reused: a second frame replaces the first.
        encode_answer(&mut out, &Response::ok()).unwrap();
        assert_eq!(out, frame_bytes(br#"{"ok":true}"#, b""));
    }

    #[test]
    fn the_largest_payload_fits_and_one_byte_more_is_refused_before_allocating() {
        let big = vec![7u8; MAX_FRAME_PAYLOAD];
        let mut out = Vec::new();
        encode_frame(&mut out, &FrameRequest::Status {}, &big).unwrap();
        let frame = read_frame(&mut &out[..]).unwrap().unwrap();
        assert_eq!(frame.payload, big);

        let over = vec![7u8; MAX_FRAME_PAYLOAD + 1];
        let e = encode_frame(&mut out, &FrameRequest::Status {}, &over).unwrap_err();
        assert!(
            matches!(e, EncodeFrameError::PayloadTooLong { .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("split it"), "{e}");

        // A hostile prefix announcing 4 GiB: refused from the 8 bytes alone.
        let mut hostile = Vec::new();
        hostile.extend_from_slice(&2u32.to_be_bytes());
        hostile.extend_from_slice(&u32::MAX.to_be_bytes());
        let e = read_frame(&mut &hostile[..]).unwrap_err();
        assert!(
            matches!(e, ReadFrameError::PayloadTooLong { len } if len == u32::MAX),
            "{e:?}"
        );
        let mut hostile = Vec::new();
        hostile.extend_from_slice(&u32::try_from(MAX_FRAME_HEADER + 1).unwrap().to_be_bytes());
        hostile.extend_from_slice(&0u32.to_be_bytes());
        let e = read_frame(&mut &hostile[..]).unwrap_err();
        assert!(matches!(e, ReadFrameError::HeaderTooLong { .. }), "{e:?}");
        assert!(e.to_string().contains("big-endian"), "{e}");
        let e = read_frame(&mut &frame_bytes(b"", b"x")[..]).unwrap_err();
        assert!(matches!(e, ReadFrameError::EmptyHeader), "{e:?}");
    }

    #[test]
    fn a_stream_ending_inside_a_frame_is_truncated_and_names_the_part() {
        let whole = frame_bytes(br#"{"cmd":"status"}"#, b"abc");
        for cut in 1..whole.len() {
            let e = read_frame(&mut &whole[..cut]).unwrap_err();
            let part = match e {
                ReadFrameError::Truncated { part } => part,
                other => panic!("cut at {cut}: {other:?}"),
            };
            let expected = if cut < FRAME_PREFIX {
                "lengths"
            } else if cut < FRAME_PREFIX + 16 {
                "header"
            } else {
                "payload"
            };
            assert_eq!(part, expected, "cut at {cut}");
        }
        assert!(read_frame(&mut &b""[..]).unwrap().is_none());
    }

    #[test]
    fn frame_headers_are_strict_like_lines() {
        for bad in [
            r#"{"cmd":"send","to":"00","data_hex":"00"}"#,
            r#"{"cmd":"status","x":1}"#,
            r#"{"cmd":"learn_service","descriptor_hex":"00"}"#,
            r#"{"cmd":"frames","version":1}"#,
            r#"{"cmd":"nope"}"#,
            "not json",
        ] {
            assert!(serde_json::from_str::<FrameRequest>(bad).is_err(), "{bad}");
        }
        let listen: FrameRequest = serde_json::from_str(r#"{"cmd":"listen","count":3}"#).unwrap();
        assert!(matches!(listen, FrameRequest::Listen { count: Some(3) }));
        assert!(!listen.takes_payload());
        let learn: FrameRequest = serde_json::from_str(r#"{"cmd":"learn_service"}"#).unwrap();
        assert!(learn.takes_payload());
    }

    #[test]
    fn the_fuzz_entry_point_survives_garbage() {
        fuzz_frames(b"");
        fuzz_frames(&[0xff; 64]);
        fuzz_frames(&frame_bytes(b"\xff\xfe", b""));
        let mut two = frame_bytes(br#"{"event":"message","from":null}"#, b"x");
        two.extend(frame_bytes(br#"{"ok":true}"#, b""));
        two.extend_from_slice(&[0, 0]);
        fuzz_frames(&two);
    }
}
