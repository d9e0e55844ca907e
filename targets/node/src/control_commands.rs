//! `veil send`, `veil reply`, `veil learn-service`, `veil listen` and
//! `veil status`: the command-line clients of a running node's control
//! socket. They speak to it through `veil_node::control_client`; what is
//! theirs is finding the socket, reading stdin and files, and printing.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use veil_core::identity::{NodeId, ServiceDescriptor, MAX_SERVICE_DESCRIPTOR_LEN};
use veil_core::node::LearnServiceError;
use veil_mio::StdNode;
use veil_node::control_address::{ControlAddress, Endpoint};
use veil_node::control_client::ControlClient;
use veil_node::control_protocol::parse_reply_token;
use veil_node::status::Status;

use crate::{data_dir, terminal_text};

/// How long `veil status` and `veil learn-service` wait for the answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// How a client finds the node's control socket.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The node's control socket: a Unix socket's PATH, or the IP:PORT of
    /// a TCP one (whose cookie is read from the data directory)
    /// [default: DATA_DIR/control.sock].
    #[arg(long, value_name = "PATH|ADDR")]
    control: Option<ControlAddress>,
    /// The node's data directory [default: $XDG_DATA_HOME/veil or
    /// ~/.local/share/veil, as for `veil node`].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl ControlArgs {
    /// The socket to connect to.
    fn endpoint(&self) -> Result<Endpoint, String> {
        if let Some(ControlAddress::Unix(path)) = &self.control {
            return Ok(Endpoint::Unix(path.clone()));
        }
        let dir = self
            .data_dir
            .clone()
            .or_else(data_dir::default_dir)
            .ok_or("no data directory: pass --data-dir DIR (or set HOME)")?;
        Ok(Endpoint::of_node(&dir, self.control.as_ref()))
    }

    /// A connection on binary frames where the node speaks them: messages
    /// then cross the socket as their bytes, not twice as many hex digits.
    fn connect(&self, answer_timeout: Option<Duration>) -> Result<ControlClient, String> {
        ControlClient::connect_framed(&self.endpoint()?, answer_timeout).map_err(|e| e.to_string())
    }
}

/// How `veil listen` writes a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The control socket's JSON line.
    Json,
    /// The message's bytes, unchanged.
    Raw,
    /// The message's bytes, with controls and invalid UTF-8 escaped
    /// (`terminal_text`).
    Escaped,
}

impl Output {
    /// JSON with `json`; else bytes, escaped when stdout is a terminal
    /// and `raw` is not given.
    pub fn new(json: bool, raw: bool) -> Output {
        if json {
            Output::Json
        } else if raw || !std::io::stdout().is_terminal() {
            Output::Raw
        } else {
            Output::Escaped
        }
    }
}

/// Sends stdin as one message; `Ok` once acknowledged.
pub fn send(control: &ControlArgs, to: &str, timeout_secs: u64) -> Result<(), String> {
    let to = NodeId::from_hex(to).map_err(|e| format!("bad node id: {e}"))?;
    let data = read_message()?;
    let mut client = control.connect(Some(answer_timeout(timeout_secs)))?;
    client.send(to, &data).map_err(|e| e.to_string())
}

/// Sends stdin as one reply to the anonymous message whose reply token is
/// `token`; `Ok` once acknowledged.
pub fn reply(control: &ControlArgs, token: &str, timeout_secs: u64) -> Result<(), String> {
    // The node closes the connection on a request that is not one: say
    // what is wrong before asking it.
    if parse_reply_token(token).is_none() {
        return Err(
            "malformed reply token: pass the reply_to of a message as `veil listen --json` \
             printed it"
                .into(),
        );
    }
    let data = read_message()?;
    let mut client = control.connect(Some(answer_timeout(timeout_secs)))?;
    client.reply(token, &data).map_err(|e| e.to_string())
}

/// Hands the node the service descriptor in `file`; prints the service's
/// id once learnt.
pub fn learn_service(control: &ControlArgs, file: &Path) -> Result<(), String> {
    let descriptor = read_descriptor(file)?;
    // Refused here as the node would refuse it, and without a node.
    ServiceDescriptor::parse_verified(&descriptor)
        .map_err(|e| format!("{}: {}", file.display(), LearnServiceError::Invalid(e)))?;
    let mut client = control.connect(Some(STATUS_TIMEOUT))?;
    let id = client
        .learn_service(&descriptor)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    println!("{id}");
    Ok(())
}

/// The bytes of a service descriptor file (at most the largest
/// descriptor).
fn read_descriptor(file: &Path) -> Result<Vec<u8>, String> {
    let opened =
        std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let limit = u64::try_from(MAX_SERVICE_DESCRIPTOR_LEN)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut descriptor = Vec::new();
    opened
        .take(limit)
        .read_to_end(&mut descriptor)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if descriptor.len() > MAX_SERVICE_DESCRIPTOR_LEN {
        return Err(format!(
            "{} is over {MAX_SERVICE_DESCRIPTOR_LEN} bytes: not a service descriptor",
            file.display()
        ));
    }
    Ok(descriptor)
}

/// A zero read timeout is no timeout to the OS: wait at least 1 s.
fn answer_timeout(secs: u64) -> Duration {
    Duration::from_secs(secs.max(1))
}

/// Stdin, as one message of at most `StdNode::MAX_MESSAGE` bytes.
fn read_message() -> Result<Vec<u8>, String> {
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
    Ok(data)
}

/// Prints received messages as `output` says, each followed by a newline.
pub fn listen(control: &ControlArgs, output: Output, count: Option<u64>) -> Result<(), String> {
    let client = control.connect(None)?;
    let mut listener = client.listen(count).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let mut seen = 0u64;
    let mut line = Vec::new();
    while count.is_none_or(|c| seen < c) {
        let message = listener.receive().map_err(|e| e.to_string())?;
        line.clear();
        match output {
            Output::Json => line.extend_from_slice(message.json()),
            Output::Raw => line.extend_from_slice(&message.data().map_err(|e| e.to_string())?),
            Output::Escaped => {
                terminal_text::escape(&message.data().map_err(|e| e.to_string())?, &mut line);
            }
        }
        line.push(b'\n');
        out.write_all(&line)
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
        seen = seen.saturating_add(1);
    }
    Ok(())
}

/// Prints the node's status, readable or as JSON.
pub fn status(control: &ControlArgs, json: bool) -> Result<(), String> {
    let mut client = control.connect(Some(STATUS_TIMEOUT))?;
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
    let _ = writeln!(out, "reach     {}", s.reachability);
    if let Some(id) = &s.service_id {
        let _ = writeln!(
            out,
            "service   {id}: {}",
            plural(s.service_intro_points, "introduction point")
        );
    }
    let _ = writeln!(
        out,
        "rendezvous roles: introducing {}, {} joined",
        plural(s.rendezvous_introducing, "service"),
        s.rendezvous_joined
    );
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
    let _ = writeln!(
        out,
        "padding   idle links: {}; {} padding cells out, {} in since start; {} cells rounding messages up",
        s.link_padding, s.padding_cells_sent, s.padding_cells_received, s.message_padding_cells_sent
    );
    let c = &s.cover;
    let per_second = c.bytes_charged / s.uptime_secs.max(1);
    let _ = writeln!(
        out,
        "cover     anonymity {}; budget {} B/s; {} loop cells ({} back), {} drop, {} FRONT in {} bursts; {} B charged ({} B/s since start); {} held back by the budget",
        s.anonymity,
        c.budget,
        c.loop_cells,
        c.loop_cells_returned,
        c.drop_cells,
        c.front_cells,
        c.front_bursts,
        c.bytes_charged,
        per_second,
        c.over_budget
    );
    if s.shaping_interval_ms > 0 {
        let _ = writeln!(
            out,
            "shaping   one cell per {} ms while a burst lasts; {} padding cells filled slots",
            s.shaping_interval_ms, s.shaping_padding_cells_sent
        );
    }
    if s.mixing_delay_ms > 0 {
        let _ = writeln!(
            out,
            "mixing    relayed cells held {} ms on average; {} held, {} passed on unmixed (queue full)",
            s.mixing_delay_ms, s.cells_mixed, s.mixing_queue_full
        );
    }
    let _ = writeln!(
        out,
        "liveness  build timeout {} ms; {} probe rounds, {} circuits given up on a silent hop",
        s.build_timeout_ms, s.probe_rounds, s.circuits_abandoned
    );
    for c in &s.own_circuits {
        let rtt = c
            .rtt_ms
            .map_or_else(|| "-".to_string(), |r| format!("{r:.2} ms"));
        let path: Vec<&str> = c.path.iter().map(|h| h.get(..8).unwrap_or(h)).collect();
        let _ = writeln!(
            out,
            "  circuit  {:<8}  {} s  rtt {rtt}  {}",
            c.state,
            c.age_secs,
            path.join(" > ")
        );
    }
    for r in &s.relay_health {
        let backoff = if r.backoff_secs > 0 {
            format!("  backed off {} s", r.backoff_secs)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  relay    {}  tried {:.1}  built {:.1}  lost {:.1}  failed {:.1}{backoff}",
            r.relay, r.tried, r.built, r.lost, r.failed
        );
    }
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

/// "1 service", "2 services".
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(service_id: Option<String>) -> Status {
        let json = serde_json::json!({
            "node_id": "ab".repeat(32), "listen": "127.0.0.1:7700", "uptime_secs": 3,
            "links": [], "circuits_relayed": 0, "circuits_own": 0,
            "messages_outgoing": 0, "messages_incoming": 0, "known_nodes": 0,
            "known_relays": 0, "bytes_sent": 0, "bytes_received": 0, "cells_sent": 0,
            "cells_received": 0, "links_closed": 0, "circuits_built": 0,
            "messages_sent": 0, "messages_acknowledged": 0, "messages_received": 0,
            "cells_dropped": 0,
        });
        let mut s: Status = serde_json::from_value(json).unwrap();
        s.service_id = service_id;
        s
    }

    #[test]
    fn the_service_line_shows_only_with_a_service_and_the_roles_always() {
        let mut s = status(None);
        s.rendezvous_introducing = 1;
        s.rendezvous_joined = 3;
        let text = render(&s);
        assert!(!text.contains("service "), "{text}");
        assert!(
            text.contains("\nrendezvous roles: introducing 1 service, 3 joined\n"),
            "{text}"
        );

        let id = "cd".repeat(32);
        let mut s = status(Some(id.clone()));
        s.service_intro_points = 2;
        let text = render(&s);
        assert!(
            text.contains(&format!("\nservice   {id}: 2 introduction points\n")),
            "{text}"
        );
        assert!(
            text.contains("\nrendezvous roles: introducing 0 services, 0 joined\n"),
            "{text}"
        );
        // The line follows the reachability line.
        let reach = text.find("reach ").unwrap();
        assert!(text.find("service ").unwrap() > reach);
        s.service_intro_points = 1;
        assert!(render(&s).contains(": 1 introduction point\n"));
    }

    #[test]
    fn the_cover_line_shows_the_budget_and_the_rate_and_shaping_shows_when_on() {
        let mut s = status(None);
        s.uptime_secs = 10;
        s.anonymity = "strict".into();
        s.cover.budget = 1562;
        s.cover.loop_cells = 3;
        s.cover.loop_cells_returned = 2;
        s.cover.bytes_charged = 9372;
        let text = render(&s);
        assert!(
            text.contains("\ncover     anonymity strict; budget 1562 B/s; 3 loop cells (2 back), 0 drop, 0 FRONT in 0 bursts; 9372 B charged (937 B/s since start); 0 held back by the budget\n"),
            "{text}"
        );
        assert!(!text.contains("shaping "), "{text}");
        assert!(!text.contains("mixing "), "{text}");
        s.shaping_interval_ms = 20;
        s.mixing_delay_ms = 10;
        let text = render(&s);
        assert!(text.contains("\nshaping   one cell per 20 ms"), "{text}");
        assert!(
            text.contains("\nmixing    relayed cells held 10 ms"),
            "{text}"
        );
    }
}
