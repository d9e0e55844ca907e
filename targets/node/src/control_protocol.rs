//! The control socket's wire format, shared by the server in `veil node`
//! and every client: line-based JSON over TCP on loopback. The protocol is
//! described in CONTROL.md beside this crate's Cargo.toml; these types are
//! its one definition in code.

use std::io::{BufRead, ErrorKind, Read};

use serde::{Deserialize, Serialize};
use veil_mio::StdNode;

use crate::status::Status;

/// The control address `veil send`, `listen` and `status` use by default,
/// and `veil node` listens on unless told otherwise.
pub const DEFAULT_CONTROL: &str = "127.0.0.1:7701";

/// The longest line: a largest message in hex, and room for the rest of
/// the request.
pub const MAX_LINE: usize = 2 * StdNode::MAX_MESSAGE + 1024;

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
    /// Answer with the node's status.
    Status,
    /// Answer `{"ok":true}`, then stream every received message, or only
    /// the next `count`: the node then stops listening on this connection
    /// at once, so later messages wait for the next listener.
    Listen {
        /// How many messages to stream; all of them if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
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
            status: None,
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
    /// The message, in hex.
    pub data_hex: String,
}

/// `value` as one line: compact JSON and its `\n`.
pub fn encode_line<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    Ok(line)
}

/// Reads one line of at most [`MAX_LINE`] bytes, without its `\n`; `None`
/// at end of stream. A longer line is an `InvalidData` error.
pub fn read_line(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let limit = u64::try_from(MAX_LINE)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if line.len() > MAX_LINE {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                "request line too long",
            ));
        }
        // The last line may lack its newline.
    } else {
        line.pop();
    }
    Ok(Some(line))
}
