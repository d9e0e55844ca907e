//! The control socket's wire format, shared by the server in `veil node`
//! and every client: line-based JSON over a Unix domain socket or over TCP
//! on loopback (where a cookie line comes first). The protocol is
//! described in CONTROL.md beside this crate's Cargo.toml; these types are
//! its one definition in code.

use std::io::{BufRead, ErrorKind, Read};

use serde::{Deserialize, Serialize};
use veil_core::message::ReplyTo;
use veil_mio::StdNode;
use zeroize::Zeroizing;

use crate::control_address::COOKIE_LEN;
use crate::status::Status;

/// The longest line: a largest message in hex, and room for the rest of
/// the request.
pub const MAX_LINE: usize = 2 * StdNode::MAX_MESSAGE + 1024;

/// The longest first line of a TCP control connection: the cookie line is
/// 78 bytes; a longer first line closes the connection at once.
pub const MAX_AUTH_LINE: usize = 256;

/// The first line of a TCP control connection: `{"cookie":"<64 hex
/// digits>"}`, the bytes of the node's cookie file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Auth<'a> {
    cookie: &'a str,
}

/// Bytes of a cookie line, its `\n` included.
pub const AUTH_LINE_LEN: usize = AUTH_PREFIX.len() + 2 * COOKIE_LEN + AUTH_SUFFIX.len();
const AUTH_PREFIX: &[u8] = b"{\"cookie\":\"";
const AUTH_SUFFIX: &[u8] = b"\"}\n";
// A cookie line always fits the first line's limit.
const _: () = assert!(AUTH_LINE_LEN <= MAX_AUTH_LINE);

/// The cookie line for `cookie`, with its `\n`; wiped when dropped.
pub fn auth_line(cookie: &[u8; COOKIE_LEN]) -> Zeroizing<[u8; AUTH_LINE_LEN]> {
    let mut line = Zeroizing::new([0u8; AUTH_LINE_LEN]);
    let (prefix, rest) = line.split_at_mut(AUTH_PREFIX.len());
    prefix.copy_from_slice(AUTH_PREFIX);
    let (digits, suffix) = rest.split_at_mut(2 * COOKIE_LEN);
    // `digits` is exactly twice the cookie, so encoding cannot fail.
    let _ = hex::encode_to_slice(cookie, digits);
    suffix.copy_from_slice(AUTH_SUFFIX);
    line
}

/// The cookie a first line presents, if it is a cookie line.
pub fn parse_auth_line(line: &[u8]) -> Option<Zeroizing<[u8; COOKIE_LEN]>> {
    let auth: Auth<'_> = serde_json::from_slice(line).ok()?;
    let mut cookie = Zeroizing::new([0u8; COOKIE_LEN]);
    hex::decode_to_slice(auth.cookie, cookie.as_mut_slice()).ok()?;
    Some(cookie)
}

/// A request, one JSON object per line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Send a message and answer once it is acknowledged or failed.
    Send {
        /// Destination node id, 64 hex digits.
        to: String,
        /// The message, in hex.
        data_hex: String,
    },
    /// Answer an anonymous message over the circuit it came on, and answer
    /// once the reply is acknowledged or failed.
    Reply {
        /// The message's reply token, from its `listen` line.
        reply_to: String,
        /// The reply, in hex.
        data_hex: String,
    },
    /// Learn a rendezvous service from its signed descriptor; answer with
    /// its id.
    #[serde(rename = "learn_service")]
    LearnService {
        /// The descriptor, in hex.
        descriptor_hex: String,
    },
    /// Answer with the node's status. (A struct variant: serde checks
    /// unknown fields only there, and `{"cmd":"status","x":1}` is not a
    /// valid request.)
    Status {},
    /// Answer `{"ok":true}`, then stream every received message, or only
    /// the next `count`: the node then stops listening on this connection
    /// at once, so later messages wait for the next listener.
    Listen {
        /// How many messages to stream; all of them if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
    },
    /// Switch this connection to binary frames (`control_frame`): answered
    /// `{"ok":true}` as a line, after which both directions speak frames
    /// only; a version the node does not speak is answered `ok: false`
    /// and the connection stays on lines. Negotiated, not assumed, so
    /// that every existing client keeps its lines.
    Frames {
        /// The frame format asked for: `control_frame::FRAMES_VERSION`.
        version: u32,
    },
}

/// An answer, one JSON object per line.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// Why not, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The status, for `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// The service's id (hex), for `learn_service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
}

impl Response {
    /// `{"ok":true}`.
    pub fn ok() -> Self {
        Response {
            ok: true,
            ..Response::default()
        }
    }

    /// `{"ok":false,"error":text}`.
    pub fn error(text: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(text.into()),
            ..Response::default()
        }
    }
}

/// A received message, streamed to `listen` clients.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageLine {
    /// Always "message".
    pub event: String,
    /// The sender's node id when known (replies), else null.
    pub from: Option<String>,
    /// For a message from an anonymous sender, the token that answers it
    /// (a `reply` request), else null: see [`reply_token`].
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The message, in hex.
    pub data_hex: String,
}

/// The reply token of the circuit `to`: opaque hex (the hex of the core's
/// serde form of [`ReplyTo`], in JSON), valid while that circuit lives.
/// Anonymous senders never see it: it only names, to this node's
/// operator, a circuit this node is the last hop of.
pub fn reply_token(to: &ReplyTo) -> String {
    // A `ReplyTo` is numbers in arrays and maps: it always encodes.
    hex::encode(serde_json::to_vec(to).unwrap_or_default())
}

/// The circuit a reply token names; `None` if `token` is not one (whether
/// that circuit still lives only the node knows).
pub fn parse_reply_token(token: &str) -> Option<ReplyTo> {
    if token.is_empty() || token.len() > MAX_REPLY_TOKEN {
        return None;
    }
    let bytes = hex::decode(token).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The longest reply token taken: well above any the node hands out.
const MAX_REPLY_TOKEN: usize = 512;

/// `value` as one line: compact JSON and its `\n`.
pub fn encode_line<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    Ok(line)
}

/// Reads one line of at most `limit` bytes, without its `\n`; `None` at
/// end of stream. A longer line is an `InvalidData` error.
pub fn read_line(reader: &mut impl BufRead, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let take = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.by_ref().take(take).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if line.len() > limit {
            return Err(std::io::Error::new(ErrorKind::InvalidData, "line too long"));
        }
        // The last line may lack its newline.
    } else {
        line.pop();
    }
    Ok(Some(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_line_round_trips_and_nothing_else_is_one() {
        let cookie = [0xa5u8; COOKIE_LEN];
        let line = auth_line(&cookie);
        assert_eq!(AUTH_LINE_LEN, 78);
        let parsed = parse_auth_line(line.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(*parsed, cookie);
        for bad in [
            &b"POST / HTTP/1.1"[..],
            b"{\"cmd\":\"status\"}",
            b"{\"cookie\":\"abcd\"}",
            b"{\"cookie\":\"zz\"}",
            b"",
        ] {
            assert!(parse_auth_line(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn requests_with_unknown_fields_do_not_parse() {
        for bad in [
            r#"{"cmd":"status","x":1}"#,
            r#"{"cmd":"listen","count":1,"x":1}"#,
            r#"{"cmd":"send","to":"00","data_hex":"00","x":1}"#,
            r#"{"cmd":"reply","reply_to":"00","data_hex":"00","x":1}"#,
            r#"{"cmd":"learn_service","descriptor_hex":"00","x":1}"#,
            r#"{"cmd":"learnservice","descriptor_hex":"00"}"#,
            r#"{"cmd":"nope"}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
        let status: Request = serde_json::from_str(r#"{"cmd":"status"}"#).unwrap();
        assert!(matches!(status, Request::Status {}));
        assert_eq!(
            serde_json::to_string(&Request::Status {}).unwrap(),
            r#"{"cmd":"status"}"#
        );
    }

    #[test]
    fn reply_tokens_round_trip_and_malformed_ones_are_refused() {
        // Only the core makes a `ReplyTo`; its serde form is the way in.
        let to: ReplyTo =
            serde_json::from_str(r#"[{"index":3,"generation":7},2147483653]"#).unwrap();
        let token = reply_token(&to);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
        assert_eq!(parse_reply_token(&token), Some(to));
        for bad in [
            "",
            "zz",
            "00",
            &token[1..],
            &token.to_uppercase().replace('A', "G"),
            &hex::encode(br#"[{"index":3},1]"#),
            &"0".repeat(600),
        ] {
            assert_eq!(parse_reply_token(bad), None, "{bad}");
        }
        let line = MessageLine {
            event: "message".into(),
            from: None,
            reply_to: Some(token.clone()),
            data_hex: "00".into(),
        };
        let json = String::from_utf8(encode_line(&line).unwrap()).unwrap();
        assert!(json.contains(&format!(r#""reply_to":"{token}""#)), "{json}");
        // A line without the field (an older node) still reads.
        let old: MessageLine =
            serde_json::from_str(r#"{"event":"message","from":null,"data_hex":"00"}"#).unwrap();
        assert_eq!(old.reply_to, None);
    }

    #[test]
    fn lines_longer_than_the_limit_are_refused() {
        let mut fits = &b"12345\nrest"[..];
        assert_eq!(read_line(&mut fits, 5).unwrap(), Some(b"12345".to_vec()));
        let mut long = &b"123456\n"[..];
        let e = read_line(&mut long, 5).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData);
        let mut last = &b"abc"[..];
        assert_eq!(read_line(&mut last, 5).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_line(&mut last, 5).unwrap(), None);
    }
}
