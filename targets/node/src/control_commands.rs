//! `veil send`, `veil listen` and `veil status`: the command-line clients
//! of a running node's control socket. They speak to it through
//! `veil_node::control_client`; what is theirs is reading stdin and
//! printing.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use veil_core::identity::NodeId;
use veil_mio::StdNode;
use veil_node::control_client::ControlClient;
use veil_node::status::Status;

/// How long `veil status` waits for the answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends stdin as one message; `Ok` once acknowledged.
pub fn send(control: SocketAddr, to: &str, timeout_secs: u64) -> Result<(), String> {
    let to = NodeId::from_hex(to).map_err(|e| format!("bad node id: {e}"))?;
    let mut data = Vec::new();
    let limit = u64::try_from(StdNode::MAX_MESSAGE)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    std::io::stdin()
        .lock()
        .take(limit)
        .read_to_end(&mut data)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    if data.len() > StdNode::MAX_MESSAGE {
        return Err(format!(
            "stdin holds more than {} bytes, the largest message; split it",
            StdNode::MAX_MESSAGE
        ));
    }
    // A zero read timeout is no timeout to the OS: wait at least 1 s.
    let timeout = Duration::from_secs(timeout_secs.max(1));
    let mut client = ControlClient::connect(control, Some(timeout)).map_err(|e| e.to_string())?;
    client.send(to, &data).map_err(|e| e.to_string())
}

/// Prints received messages: raw bytes and a newline each, or the JSON
/// lines as they come with `json`.
pub fn listen(control: SocketAddr, json: bool, count: Option<u64>) -> Result<(), String> {
    let client = ControlClient::connect(control, None).map_err(|e| e.to_string())?;
    let mut listener = client.listen(count).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let mut seen = 0u64;
    while count.is_none_or(|c| seen < c) {
        let message = listener.receive().map_err(|e| e.to_string())?;
        let written = if json {
            out.write_all(message.json())
                .and_then(|()| out.write_all(b"\n"))
        } else {
            let data = message.data().map_err(|e| e.to_string())?;
            out.write_all(&data).and_then(|()| out.write_all(b"\n"))
        };
        written
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
        seen = seen.saturating_add(1);
    }
    Ok(())
}

/// Prints the node's status, readable or as JSON.
pub fn status(control: SocketAddr, json: bool) -> Result<(), String> {
    let mut client =
        ControlClient::connect(control, Some(STATUS_TIMEOUT)).map_err(|e| e.to_string())?;
    let status = client.status().map_err(|e| e.to_string())?;
    if json {
        let text = serde_json::to_string_pretty(&status)
            .map_err(|e| format!("cannot encode the status: {e}"))?;
        println!("{text}");
    } else {
        print!("{}", render(&status));
    }
    Ok(())
}

/// The status as `veil status` prints it without `--json`.
fn render(s: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "node      {}", s.node_id);
    let _ = writeln!(out, "listen    {}   up {} s", s.listen, s.uptime_secs);
    let _ = writeln!(
        out,
        "known     {} nodes ({} relays)",
        s.known_nodes, s.known_relays
    );
    let _ = writeln!(
        out,
        "circuits  {} relayed, {} own ({} built since start)",
        s.circuits_relayed, s.circuits_own, s.circuits_built
    );
    let _ = writeln!(
        out,
        "messages  {} sent, {} acknowledged, {} received; {} outgoing and {} incoming now",
        s.messages_sent,
        s.messages_acknowledged,
        s.messages_received,
        s.messages_outgoing,
        s.messages_incoming
    );
    let _ = writeln!(
        out,
        "traffic   {} B out, {} B in, {} cells out, {} in since start (including {} closed links); {} cells dropped",
        s.bytes_sent,
        s.bytes_received,
        s.cells_sent,
        s.cells_received,
        s.links_closed,
        s.cells_dropped
    );
    let _ = writeln!(out, "links     {} open", s.links.len());
    for l in &s.links {
        let rtt = l
            .rtt_ms
            .map_or_else(|| "-".to_string(), |r| format!("{r:.2} ms"));
        let _ = writeln!(
            out,
            "  {}  {:<4}  {:<9}  {:<11}  rtt {rtt}  {} B out, {} B in, {} cells out, {} in",
            l.peer.as_deref().unwrap_or("(unauthenticated)"),
            l.transport.as_deref().unwrap_or("-"),
            l.role,
            l.phase,
            l.bytes_sent,
            l.bytes_received,
            l.cells_sent,
            l.cells_received
        );
    }
    out
}
