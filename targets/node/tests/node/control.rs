//! The control socket belongs to the node's owner: real `veil node`
//! processes, their control sockets, and `veil listen` on a terminal.
//!
//! - By default the control socket is a Unix socket of mode 0600 in the
//!   data directory (mode 0700); a stale one from a crashed node is
//!   replaced, a live one or a file that is not a socket is not; it is
//!   removed on clean shutdown.
//! - Any line that is not a valid request closes a connection without an
//!   answer (an HTTP request first of all), and so does a line over the
//!   limit.
//! - A TCP control socket, only when configured, wants the cookie of the
//!   data directory (mode 0600) first: without it, or with another, the
//!   connection is closed without an answer and no command runs.
//! - `veil listen` escapes what could drive a terminal when its stdout is
//!   one, unless `--raw`; into a pipe it writes the bytes as they came.
//!
//! Another user's view cannot be tested as root (root passes every file
//! mode), so the tests check the modes themselves.

use crate::common;

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, free_addr, keygen_into, run, wait, Children, Scratch, VEIL};
use veil_node::control_address::{ControlAddress, Endpoint, COOKIE_FILE, COOKIE_LEN, SOCKET_FILE};
use veil_node::control_client::ControlClient;
use veil_node::control_protocol::{auth_line, MAX_LINE};
use veil_node::status::Status;

const SHORT: Duration = Duration::from_secs(30);

struct Node {
    id: String,
    data: PathBuf,
    dir: PathBuf,
    listen: String,
    control: Endpoint,
}

/// A node in `scratch/name` on `127.net.0.1`; `extra` goes into its config.
fn make_node(scratch: &Scratch, name: &str, net: u8, extra: &str) -> Node {
    let dir = scratch.path(name);
    let data = dir.join("data");
    let id = keygen_into(&data);
    let listen = free_addr(&format!("127.{net}.0.1")).to_string();
    let config = format!(
        "listen = \"{listen}\"\ndata_dir = \"{}\"\ngossip_interval_ms = 200\nextend_to_private_addresses = true\n\
         bootstrap_retry_ms = 300\nlog_level = \"debug\"\n{extra}",
        data.display()
    );
    fs::write(dir.join("veil.toml"), config).expect("config");
    let control = Endpoint::of_node(&data, None);
    Node {
        id,
        data,
        dir,
        listen,
        control,
    }
}

fn spawn(node: &Node) -> Child {
    Command::new(VEIL)
        .args(["node", "--config"])
        .arg(node.dir.join("veil.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(node.dir.join("stderr.log")).expect("log"))
        .spawn()
        .expect("spawn veil node")
}

fn status(node: &Node) -> Option<Status> {
    ControlClient::connect(&node.control, Some(SHORT))
        .ok()?
        .status()
        .ok()
}

fn logs(nodes: &[&Node]) -> String {
    nodes
        .iter()
        .map(|n| format!("--- {}\n{}", n.id, common::read(&n.dir.join("stderr.log"))))
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// Everything the other end sends until it closes (a reset counts as
/// closed); fails if it is still open after 10 s.
fn read_until_closed(stream: &mut impl Read) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("the node kept the connection open ({e}); got {got:?}"),
        }
    }
}

/// A web page's cross-protocol POST to a loopback port, its body a
/// control request.
fn http_post(body: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn the_control_socket_is_a_private_unix_socket_that_answers_only_requests() {
    let scratch = Scratch::new("unix-control");
    let mut children = Children::default();
    let a = make_node(&scratch, "a", 90, "");
    let socket = a.data.join(SOCKET_FILE);

    // A crashed node's socket: the file is there, nothing answers.
    drop(UnixListener::bind(&socket).expect("stale socket"));
    let first = children.push(spawn(&a));
    let s = eventually(SHORT, || status(&a)).unwrap_or_else(|| panic!("{}", logs(&[&a])));
    assert_eq!(s.node_id, a.id);
    assert!(
        common::read(&a.dir.join("stderr.log")).contains("removed a stale control socket"),
        "{}",
        logs(&[&a])
    );
    let meta = fs::symlink_metadata(&socket).expect("socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(mode(&socket), 0o600, "socket mode");
    assert_eq!(mode(&a.data), 0o700, "data directory mode");
    assert!(!a.data.join(COOKIE_FILE).exists(), "no cookie without TCP");

    // The command-line clients find it from the data directory.
    let data_arg = a.data.to_str().expect("utf-8");
    let out = run(&["status", "--json", "--data-dir", data_arg], b"", SHORT);
    assert!(out.status.success(), "{out:?}");

    // A second node on the same data directory does not take the socket.
    let out = run(
        &["node", "--data-dir", data_arg, "--listen", "127.91.0.1:0"],
        b"",
        SHORT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("a node already answers"), "{stderr}");
    assert!(status(&a).is_some(), "the first node still answers");

    // An HTTP request is not a request: closed, no answer.
    let mut c = UnixStream::connect(&socket).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(http_post(r#"{"cmd":"status"}"#).as_bytes())
        .expect("write");
    assert_eq!(read_until_closed(&mut c), b"", "an answer to HTTP");

    // A valid request is answered; the invalid line after it closes the
    // connection without a word.
    let mut c = UnixStream::connect(&socket).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(b"{\"cmd\":\"status\"}\n{\"cmd\":\"status\",\"x\":1}\n{\"cmd\":\"status\"}\n")
        .expect("write");
    let got = read_until_closed(&mut c);
    assert_eq!(got.iter().filter(|&&b| b == b'\n').count(), 1, "{got:?}");
    assert!(got.starts_with(b"{\"ok\":true,\"status\":"), "{got:?}");

    // So does a send whose fields do not decode.
    let mut c = UnixStream::connect(&socket).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(b"{\"cmd\":\"send\",\"to\":\"xyz\",\"data_hex\":\"00\"}\n")
        .expect("write");
    assert_eq!(read_until_closed(&mut c), b"");

    // A line over the limit: closed, no answer.
    let mut c = UnixStream::connect(&socket).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = c.write_all(&vec![b'{'; MAX_LINE + 10]);
    assert_eq!(read_until_closed(&mut c), b"");

    // Clean shutdown removes the socket.
    let pid = children.0[first].id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let exited = wait(&mut children.0[first], SHORT);
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
    assert!(
        fs::symlink_metadata(&socket).is_err(),
        "the socket outlived the node"
    );

    // Something at the socket's path that is not a socket is left alone.
    fs::write(&socket, b"not a socket").expect("file");
    let out = run(
        &["node", "--data-dir", data_arg, "--listen", "127.90.0.1:0"],
        b"",
        SHORT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is not a socket"), "{stderr}");
    assert_eq!(fs::read(&socket).expect("file"), b"not a socket");
}

/// A three-node network: `a`, relay `r`, destination `b`, each known to
/// the others; circuits have one relay. With `a_control`, `a`'s control
/// socket is TCP on that address.
fn three_nodes(
    scratch: &Scratch,
    net: u8,
    a_control: Option<SocketAddr>,
    children: &mut Children,
) -> [Node; 3] {
    let extra = a_control.map_or(String::new(), |c| format!("control = \"{c}\"\n"));
    let mut a = make_node(scratch, "a", net, &format!("path_relays = 1\n{extra}"));
    if let Some(addr) = a_control {
        a.control = Endpoint::of_node(&a.data, Some(&ControlAddress::Tcp(addr)));
    }
    let boot = format!("bootstrap = [\"{}\"]\npath_relays = 1\n", a.listen);
    let r = make_node(scratch, "r", net + 1, &boot);
    let b = make_node(scratch, "b", net + 2, &boot);
    for node in [&a, &r, &b] {
        children.push(spawn(node));
    }
    let nodes = [a, r, b];
    for node in &nodes {
        let known = eventually(SHORT, || (status(node)?.known_nodes >= 2).then_some(()));
        assert!(known.is_some(), "discovery\n{}", all_logs(&nodes));
    }
    nodes
}

fn all_logs(nodes: &[Node; 3]) -> String {
    logs(&[&nodes[0], &nodes[1], &nodes[2]])
}

#[test]
fn a_tcp_control_socket_runs_nothing_without_the_cookie() {
    let scratch = Scratch::new("tcp-control");
    let mut children = Children::default();
    let port = free_addr("127.0.0.1");
    let nodes = three_nodes(&scratch, 92, Some(port), &mut children);
    let [a, _, b] = &nodes;

    // The cookie: 32 bytes, mode 0600, in the data directory; no Unix socket.
    let cookie_path = a.data.join(COOKIE_FILE);
    assert_eq!(mode(&cookie_path), 0o600, "cookie mode");
    let cookie: [u8; COOKIE_LEN] = fs::read(&cookie_path)
        .expect("cookie")
        .try_into()
        .expect("32 bytes");
    assert!(!a.data.join(SOCKET_FILE).exists());

    let evil = format!(
        "{{\"cmd\":\"send\",\"to\":\"{}\",\"data_hex\":\"6576696c\"}}\n",
        b.id
    );
    let mut wrong = cookie;
    wrong[0] ^= 0x80;
    let attempts: Vec<(&str, Vec<u8>)> = vec![
        ("no cookie", evil.clone().into_bytes()),
        (
            "a wrong cookie",
            [&auth_line(&wrong)[..], evil.as_bytes()].concat(),
        ),
        ("an HTTP POST", http_post(&evil).into_bytes()),
        (
            "an HTTP POST of the cookie line",
            http_post(&format!(
                "{}{evil}",
                String::from_utf8_lossy(&auth_line(&cookie)[..])
            ))
            .into_bytes(),
        ),
        ("a first line over 256 bytes", vec![b'a'; 1000]),
    ];
    for (what, bytes) in attempts {
        let mut c = TcpStream::connect(port).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let _ = c.write_all(&bytes);
        assert_eq!(read_until_closed(&mut c), b"", "{what} got an answer");
    }

    // With the cookie, an invalid line still closes the connection, after
    // only the cookie's answer.
    let mut c = TcpStream::connect(port).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    c.write_all(&[&auth_line(&cookie)[..], b"POST / HTTP/1.1\r\n"].concat())
        .expect("write");
    assert_eq!(read_until_closed(&mut c), b"{\"ok\":true}\n");

    // The owner's `veil send`, which reads the cookie from the data
    // directory, gets through.
    let addr = port.to_string();
    let out = run(
        &[
            "send",
            &b.id,
            "--control",
            &addr,
            "--data-dir",
            a.data.to_str().expect("utf-8"),
        ],
        b"good",
        Duration::from_secs(90),
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        all_logs(&nodes)
    );
    // And without the right data directory, it does not.
    let out = run(
        &[
            "send",
            &b.id,
            "--control",
            &addr,
            "--data-dir",
            "/nonexistent",
        ],
        b"bad",
        SHORT,
    );
    assert!(!out.status.success());

    // Only the owner's message was ever sent or received.
    let sent = status(a).expect("status of a");
    assert_eq!(sent.messages_sent, 1, "{sent:?}");
    let received = eventually(SHORT, || {
        let s = status(b)?;
        (s.messages_received >= 1).then_some(s)
    })
    .expect("b received the message");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(status(b).expect("b").messages_received, 1, "{received:?}");
}

/// Starts `veil listen --count 1 args…` on `node` with its stdout on a
/// new pseudo-terminal; returns the child and a thread that returns what
/// the terminal showed once the child has exited.
fn listen_on_a_terminal(node: &Node, args: &[&str]) -> (Child, std::thread::JoinHandle<Vec<u8>>) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let terminal = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().expect("utf-8 pty name"))
        .expect("open the terminal");
    let child = Command::new(VEIL)
        .args(["listen", "--count", "1", "--data-dir"])
        .arg(&node.data)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(terminal))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn veil listen");
    let mut master = File::from(master);
    let reader = std::thread::spawn(move || {
        let mut shown = Vec::new();
        let mut buf = [0u8; 4096];
        // Once the child, the terminal's only user, exits, reads fail (EIO).
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            shown.extend_from_slice(&buf[..n]);
        }
        shown
    });
    (child, reader)
}

#[test]
fn veil_listen_escapes_terminal_controls_unless_raw_or_piped() {
    let scratch = Scratch::new("listen-escape");
    let mut children = Children::default();
    let nodes = three_nodes(&scratch, 95, None, &mut children);
    let [a, _, b] = &nodes;
    let hostile: &[u8] = b"\x1b]0;owned\x07\x1b[2Jhi\rthere\x9b\xff\\ ok\nnext";
    let send = || {
        let out = run(
            &["send", &b.id, "--data-dir", a.data.to_str().expect("utf-8")],
            hostile,
            Duration::from_secs(90),
        );
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            all_logs(&nodes)
        );
    };
    let mut listen = |args: &[&str]| {
        let (child, shown) = listen_on_a_terminal(b, args);
        let i = children.push(child);
        send();
        let exited = wait(&mut children.0[i], SHORT);
        assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
        shown.join().expect("terminal reader")
    };

    // On a terminal: escaped. (The terminal itself shows "\n" as "\r\n".)
    let shown = listen(&[]);
    assert_eq!(
        String::from_utf8_lossy(&shown),
        "\\x1b]0;owned\\x07\\x1b[2Jhi\\x0dthere\\x9b\\xff\\\\ ok\r\nnext\r\n"
    );

    // With --raw, the bytes as they came.
    let shown = listen(&["--raw"]);
    assert!(shown.starts_with(b"\x1b]0;owned\x07\x1b[2J"), "{shown:?}");

    // Into a pipe (here a file): programs get the message exactly.
    let out_path = scratch.path("listen.out");
    let child = Command::new(VEIL)
        .args(["listen", "--count", "1", "--data-dir"])
        .arg(&b.data)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("output file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn veil listen");
    let i = children.push(child);
    send();
    let exited = wait(&mut children.0[i], SHORT);
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
    assert_eq!(
        fs::read(&out_path).expect("output"),
        [hostile, b"\n"].concat()
    );
}

/// A descriptor of a made-up service (keys from `seed`) issued at
/// `issued_at`, listing one made-up introduction point.
fn made_up_descriptor(seed: u8, issued_at: u64) -> (String, Vec<u8>) {
    use veil_core::identity::{
        IntroPoint, NodeId, ServiceDescriptor, ServiceKeys, MAX_SERVICE_DESCRIPTOR_LEN,
    };
    let keys = ServiceKeys::from_secrets([seed; 32], [seed.wrapping_add(1); 32]);
    let point = IntroPoint {
        node_id: NodeId([seed ^ 0x55; 32]),
        onion_key: [9; 32],
        addresses: Default::default(),
    };
    let descriptor = ServiceDescriptor {
        service_key: keys.service_key(),
        onion_key: keys.onion_public(),
        issued_at,
        intro_points: [point].into_iter().collect(),
    };
    let mut buf = [0u8; MAX_SERVICE_DESCRIPTOR_LEN];
    let len = descriptor.emit_signed(&keys, &mut buf).expect("emit");
    (keys.service_id().to_string(), buf[..len].to_vec())
}

/// The rendezvous commands against a running node that offers a service:
/// the status lines, the service key file, `learn-service` and `reply`
/// and what they refuse (each in one line, exit status 1), and a service
/// key file the node refuses to start with.
#[test]
fn service_commands_work_and_refuse_in_one_line() {
    let scratch = Scratch::new("service-commands");
    let mut children = Children::default();
    let a = make_node(&scratch, "a", 98, "service = true\n");
    let first = children.push(spawn(&a));
    let s = eventually(SHORT, || status(&a)).unwrap_or_else(|| panic!("{}", logs(&[&a])));
    let key = a.data.join("service.key");
    assert_eq!(fs::metadata(&key).expect("service key").len(), 64);
    assert_eq!(mode(&key), 0o600, "service key mode");
    let service_id = s.service_id.clone().expect("a service is offered");
    assert_eq!(s.service_intro_points, 0, "no relay to introduce it");
    let control = a.control.to_string();
    let out = run(&["status", "--control", &control], b"", SHORT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "\nservice   {service_id}: 0 introduction points\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("\nrendezvous roles: introducing 0 services, 0 joined\n"),
        "{text}"
    );
    assert!(
        common::read(&a.dir.join("stderr.log")).contains(&service_id),
        "the service id is logged\n{}",
        logs(&[&a])
    );

    let fails = |args: &[&str], stdin: &[u8], says: &str| {
        let out = run(args, stdin, SHORT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "veil {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "veil {args:?}: {stderr}");
        assert!(
            stderr.starts_with("veil: ") && stderr.contains(says),
            "veil {args:?}: {stderr}"
        );
    };

    // A service descriptor is learnt once; the same one again is stale.
    let (id, descriptor) = made_up_descriptor(7, 1_000);
    let file = a.dir.join("made-up.descriptor");
    fs::write(&file, &descriptor).expect("descriptor");
    let file_arg = file.to_str().expect("utf-8");
    let out = run(
        &["learn-service", file_arg, "--control", &control],
        b"",
        SHORT,
    );
    assert!(out.status.success(), "{out:?}\n{}", logs(&[&a]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), id);
    let args = ["learn-service", file_arg, "--control", &control];
    fails(&args, b"", "at least as new");
    // A damaged one, a missing file, a file far too long.
    let mut damaged = descriptor.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    fs::write(&file, &damaged).expect("descriptor");
    fails(&args, b"", "service descriptor refused: ");
    fs::write(&file, vec![1u8; 4096]).expect("descriptor");
    fails(&args, b"", "not a service descriptor");
    let missing = a.dir.join("missing.descriptor");
    let missing_args = [
        "learn-service",
        missing.to_str().expect("utf-8"),
        "--control",
        &control,
    ];
    fails(&missing_args, b"", "cannot read");

    // A reply token of no circuit, and a malformed one.
    let stale = hex::encode(r#"[{"index":0,"generation":0},2147483649]"#);
    assert!(veil_node::control_protocol::parse_reply_token(&stale).is_some());
    fails(
        &["reply", &stale, "--control", &control],
        b"hi",
        "the circuit the message came on has closed",
    );
    fails(
        &["reply", "not-a-token", "--control", &control],
        b"",
        "malformed reply token",
    );
    // A service id nobody told the node about.
    let (unknown, _) = made_up_descriptor(9, 1_000);
    fails(
        &["send", &unknown, "--control", &control, "--timeout", "10"],
        b"hi",
        "not in this node's table",
    );

    // Stopped, the node refuses to start with a bad service key file, or
    // to record a trace of a service.
    let _ = children.0[first].kill();
    let _ = wait(&mut children.0[first], SHORT);
    let config = a.dir.join("veil.toml");
    let node = ["node", "--config", config.to_str().expect("utf-8")];
    let trace = a.dir.join("a.trace");
    let recording = [&node[..], &["--record", trace.to_str().expect("utf-8")]].concat();
    fails(
        &recording,
        b"",
        "--record cannot record a node that offers a service",
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    fails(&node, b"", "service key file");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::write(&key, [3u8; 10]).expect("short key");
    fails(&node, b"", "is 10 bytes, not 64");
}

/// Binary frames between real processes: `a` sends, over a framed
/// connection, messages that lines would have to escape (every byte
/// value, a newline, the largest size) to `b`, whose framed listener gets
/// them byte for byte with their reply token; `b` replies over frames and
/// `a`'s framed listener gets the reply from `b`. Then a hostile frame
/// (a 4 GiB payload length) gets a typed answer and the connection closes,
/// while the node keeps serving.
#[test]
fn binary_frames_carry_messages_between_processes_and_bound_what_they_take() {
    use veil_node::control_frame::{FRAMES_VERSION, MAX_FRAME_PAYLOAD};

    let scratch = Scratch::new("frames");
    let mut children = Children::default();
    let nodes = three_nodes(&scratch, 101, None, &mut children);
    let [a, _, b] = &nodes;
    let framed = |node: &Node, timeout: Option<Duration>| {
        let client = ControlClient::connect_framed(&node.control, timeout).expect("connect");
        assert!(client.frames(), "the node did not take frames");
        client
    };

    let mut b_listener = framed(b, None).listen(Some(2)).expect("listen on b");
    let every_byte: Vec<u8> = (0..=255u8).chain(*b"\n{\"ok\":true}\n").collect();
    let largest: Vec<u8> = (0..MAX_FRAME_PAYLOAD).map(|i| (i % 251) as u8).collect();
    let mut sender = framed(a, Some(Duration::from_secs(150)));
    let b_id = veil_core::identity::NodeId::from_hex(&b.id).expect("id");
    for message in [&every_byte, &largest] {
        sender
            .send(b_id, message)
            .unwrap_or_else(|e| panic!("send: {e}\n{}", all_logs(&nodes)));
    }
    let first = b_listener.receive().expect("first message");
    assert_eq!(first.data().expect("data"), every_byte);
    assert_eq!(first.from(), None, "the sender is anonymous");
    let token = first.reply_to().expect("a reply token").to_string();
    // The JSON form of a framed message is the `message` line.
    let line: serde_json::Value = serde_json::from_slice(first.json()).expect("json");
    assert_eq!(line["data_hex"], hex::encode(&every_byte));
    let second = b_listener.receive().expect("second message");
    assert_eq!(second.into_data().expect("data"), largest);

    let a_listener = framed(a, None).listen(Some(1)).expect("listen on a");
    framed(b, Some(Duration::from_secs(150)))
        .reply(&token, b"\0back\n")
        .unwrap_or_else(|e| panic!("reply: {e}\n{}", all_logs(&nodes)));
    let mut a_listener = a_listener;
    let back = a_listener.receive().expect("the reply");
    assert_eq!(back.data().expect("data"), b"\0back\n");
    assert_eq!(back.from(), Some(b.id.as_str()));

    // A frame announcing a 4 GiB payload: one answer frame naming the
    // limit, then the connection closes; nothing was sent.
    let socket = a.data.join(SOCKET_FILE);
    let mut c = UnixStream::connect(&socket).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(format!("{{\"cmd\":\"frames\",\"version\":{FRAMES_VERSION}}}\n").as_bytes())
        .expect("write");
    let mut hostile = Vec::new();
    hostile.extend_from_slice(&20u32.to_be_bytes());
    hostile.extend_from_slice(&u32::MAX.to_be_bytes());
    hostile.extend_from_slice(br#"{"cmd":"send","to":""#);
    let _ = c.write_all(&hostile);
    let got = read_until_closed(&mut c);
    let answer = got
        .strip_prefix(b"{\"ok\":true}\n".as_slice())
        .unwrap_or_else(|| panic!("{got:?}"));
    let mut reader = answer;
    let frame = veil_node::control_frame::read_frame(&mut reader)
        .expect("an answer frame")
        .expect("not empty");
    assert!(reader.is_empty(), "more after the last answer: {reader:?}");
    let last: serde_json::Value = serde_json::from_slice(&frame.header).expect("json");
    assert_eq!(last["ok"], false);
    let error = last["error"].as_str().expect("error");
    assert!(
        error.contains("4294967295 bytes is over the limit of 65536"),
        "{error}"
    );
    // A version the node does not speak keeps the connection on lines.
    let mut c = UnixStream::connect(&socket).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(b"{\"cmd\":\"frames\",\"version\":99}\n{\"cmd\":\"status\"}\n")
        .expect("write");
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let got = String::from_utf8(read_until_closed(&mut c)).expect("utf-8");
    let mut lines = got.lines();
    assert!(
        lines
            .next()
            .is_some_and(|l| l.contains("frames version 99")),
        "{got}"
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("{\"ok\":true,\"status\":")),
        "{got}"
    );
    let s = status(a).expect("a still serves");
    assert_eq!(s.messages_sent, 2, "{s:?}");
}
