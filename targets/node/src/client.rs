//! `veil send`, `veil listen` and `veil status`: clients of a running
//! node's control socket.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use veil_core::identity::NodeId;
use veil_mio::StdNode;

use crate::control::{read_line, MessageLine, Request, Response};
use crate::host::Status;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn connect(control: SocketAddr) -> Result<TcpStream, String> {
    TcpStream::connect_timeout(&control, CONNECT_TIMEOUT).map_err(|e| {
        format!("cannot reach a node's control socket at {control} ({e}); is `veil node` running there?")
    })
}

fn request(stream: &mut TcpStream, request: &Request) -> Result<(), String> {
    let mut line =
        serde_json::to_vec(request).map_err(|e| format!("cannot encode the request: {e}"))?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|e| format!("control connection failed: {e}"))
}

/// Reads one response line; `what` names the wait for timeout messages.
fn response<T: serde::de::DeserializeOwned>(
    reader: &mut BufReader<TcpStream>,
    what: &str,
) -> Result<T, String> {
    let line = match read_line(reader) {
        Ok(Some(line)) => line,
        Ok(None) => return Err("the node closed the control connection".into()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Err(format!("timed out waiting for {what}"))
        }
        Err(e) => return Err(format!("control connection failed: {e}")),
    };
    serde_json::from_slice(&line).map_err(|e| format!("unexpected answer from the node: {e}"))
}

/// Sends stdin as one message; `Ok` once acknowledged.
pub fn send(control: SocketAddr, to: &str, timeout_secs: u64) -> Result<(), String> {
    NodeId::from_hex(to).map_err(|e| format!("bad node id: {e}"))?;
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
    let mut stream = connect(control)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(timeout_secs.max(1))))
        .map_err(|e| format!("control connection failed: {e}"))?;
    request(
        &mut stream,
        &Request::Send {
            to: to.to_ascii_lowercase(),
            data_hex: hex::encode(&data),
        },
    )?;
    let mut reader = BufReader::new(stream);
    let answer: Response = response(
        &mut reader,
        &format!("an acknowledgement ({timeout_secs} s)"),
    )?;
    if answer.ok {
        Ok(())
    } else {
        Err(format!(
            "not delivered: {}",
            answer.error.unwrap_or_else(|| "no reason given".into())
        ))
    }
}

/// Prints received messages: raw bytes and a newline each, or the JSON
/// lines as they come with `json`.
pub fn listen(control: SocketAddr, json: bool, count: Option<u64>) -> Result<(), String> {
    let mut stream = connect(control)?;
    request(&mut stream, &Request::Listen { count })?;
    let mut reader = BufReader::new(stream);
    let answer: Response = response(&mut reader, "the node")?;
    if !answer.ok {
        return Err(answer.error.unwrap_or_else(|| "listen refused".into()));
    }
    let mut out = std::io::stdout().lock();
    let mut seen = 0u64;
    while count.is_none_or(|c| seen < c) {
        let line = match read_line(&mut reader) {
            Ok(Some(line)) => line,
            Ok(None) => return Err("the node closed the control connection".into()),
            Err(e) => return Err(format!("control connection failed: {e}")),
        };
        let message: MessageLine = match serde_json::from_slice(&line) {
            Ok(m) => m,
            Err(_) => {
                let r: Response = serde_json::from_slice(&line)
                    .map_err(|e| format!("unexpected line from the node: {e}"))?;
                return Err(r.error.unwrap_or_else(|| "listening ended".into()));
            }
        };
        let written = if json {
            out.write_all(&line).and_then(|()| out.write_all(b"\n"))
        } else {
            let data = hex::decode(&message.data_hex)
                .map_err(|e| format!("unexpected message from the node: {e}"))?;
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
    let mut stream = connect(control)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| format!("control connection failed: {e}"))?;
    request(&mut stream, &Request::Status)?;
    let mut reader = BufReader::new(stream);
    let answer: Response = response(&mut reader, "the status")?;
    let status = match (answer.ok, answer.status) {
        (true, Some(s)) => s,
        _ => {
            return Err(answer
                .error
                .unwrap_or_else(|| "no status in the answer".into()))
        }
    };
    if json {
        let text = serde_json::to_string_pretty(&status)
            .map_err(|e| format!("cannot encode the status: {e}"))?;
        println!("{text}");
    } else {
        print!("{}", render(&status));
    }
    Ok(())
}

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
