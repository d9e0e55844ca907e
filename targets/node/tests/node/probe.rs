//! A prober that knows a `veil node`'s address but not its id, over real
//! TCP sockets (transport spec §2.2): whatever it sends (random bytes,
//! an HTTP request, a version 1 Noise first message, a first message marked
//! for another node, one marked for an epoch long past, a replay of a first
//! message the node answered), it never gets a byte back, and the node
//! closes the connection on its own, at a moment drawn per connection. The
//! control: a first message marked with the all-zero key, which the node
//! lets in by address, is answered with message 2, so the test would see an
//! answer. A probe-resistant node answers only a first message marked with
//! its id, and meets a zero-key one with the same silence.
//!
//! Times are printed, not asserted, except the protocol's floor: a refused
//! connection stays open at least 1 s (load can only make that longer).

use crate::common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{eventually, free_addr, keygen_into, Children, Scratch};
use veil_core::link::obfs::{first_message_header, mark_epoch, HiddenEphemeral};
use veil_node::control_address::Endpoint;
use veil_node::control_client::ControlClient;

/// The mark epoch of this machine's clock, `behind` epochs ago.
fn epoch(behind: u64) -> u64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    mark_epoch(unix) - behind
}

/// A first message with no padding, marked with `key` for this epoch.
fn first_message(key: &[u8; 32], seed: u8) -> Vec<u8> {
    first_message_at(key, seed, epoch(0))
}

/// A first message with no padding, marked with `key` for `epoch`.
fn first_message_at(key: &[u8; 32], seed: u8, epoch: u64) -> Vec<u8> {
    let hidden = HiddenEphemeral::generate([seed; 32]).expect("a key");
    first_message_header(key, &hidden.representative, epoch, 0).to_vec()
}

/// A node id printed in hex, as bytes.
fn id_bytes(hex: &str) -> [u8; 32] {
    let mut id = [0u8; 32];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex node id");
    }
    id
}

/// Starts a `veil node` listening on `ip` with `extra` config lines;
/// returns its address and id (hex).
fn start_node(
    scratch: &Scratch,
    children: &mut Children,
    name: &str,
    ip: &str,
    extra: &str,
) -> (SocketAddr, String, std::path::PathBuf) {
    let dir = scratch.path(name);
    let data = dir.join("data");
    let id = keygen_into(&data);
    let listen = free_addr(ip);
    fs::write(
        dir.join("veil.toml"),
        format!(
            "listen = \"{listen}\"\ndata_dir = \"{}\"\nlog_level = \"info\"\n{extra}",
            data.display()
        ),
    )
    .expect("config");
    children.push(common::spawn_node(&dir));
    eventually(Duration::from_secs(20), || TcpStream::connect(listen).ok())
        .expect("the node listens");
    (listen, id, dir)
}

/// Every probe gets no byte back and a close no sooner than the 1 s floor.
fn assert_silence(listen: SocketAddr, probes: &[(&str, Vec<u8>)]) {
    for (name, bytes) in probes {
        let (answer, ended) = probe(listen, bytes, false);
        println!(
            "{name}: {} bytes back, closed after {ended:?}",
            answer.len()
        );
        assert!(answer.is_empty(), "{name}: the node answered {answer:?}");
        assert!(
            ended >= Duration::from_millis(900),
            "{name}: closed after {ended:?}, before the 1 s floor"
        );
    }
}

/// Sends `probe`, then reads until the node closes: returns the bytes it
/// sent back and how long after the probe the connection ended.
fn probe(addr: SocketAddr, probe: &[u8], stop_after_answer: bool) -> (Vec<u8>, Duration) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    stream.write_all(probe).expect("write probe");
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the node kept a refused connection open for 30 s"
        );
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if stop_after_answer {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    (answer, start.elapsed())
}

#[test]
fn a_prober_without_the_node_id_gets_silence_then_a_close() {
    let scratch = Scratch::new("probe");
    let mut children = Children::default();
    let (listen, _, dir) = start_node(&scratch, &mut children, "n0", "127.93.0.1", "");

    // The control: a dialler that knows only the address is answered.
    let control = first_message(&[0; 32], 0x11);
    let (answer, _) = probe(listen, &control, true);
    assert!(
        answer.len() >= 34,
        "no message 2 for a zero-key first message: {} bytes",
        answer.len()
    );

    let mut plain_noise = vec![0u8, 32];
    plain_noise
        .extend_from_slice(&veil_core::noise::StaticKeypair::from_secret_bytes([3; 32]).public());
    plain_noise.extend_from_slice(&[0u8; 40]);
    let random: Vec<u8> = (0..300u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let probes: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", random),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n"
                .to_vec(),
        ),
        ("a version 1 (plain Noise) first message", plain_noise),
        (
            "a first message marked for another node",
            first_message(&[0x5a; 32], 0x22),
        ),
        (
            "a zero-key first message marked two epochs ago",
            first_message_at(&[0; 32], 0x33, epoch(2)),
        ),
        ("a replay of the answered first message", control),
    ];
    assert_silence(listen, &probes);
    let log = common::read(&dir.join("stderr.log"));
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_probe_resistant_node_answers_only_dialers_that_know_its_id() {
    let scratch = Scratch::new("probe-resistant");
    let mut children = Children::default();
    let (listen, id, dir) = start_node(
        &scratch,
        &mut children,
        "n0",
        "127.93.0.2",
        "probe_resistant = true\n",
    );
    // The control: a first message marked with the node's id is answered.
    let control = first_message(&id_bytes(&id), 0x44);
    let (answer, _) = probe(listen, &control, true);
    assert!(
        answer.len() >= 34,
        "no message 2 for a first message marked with the node id: {} bytes",
        answer.len()
    );
    let probes: Vec<(&str, Vec<u8>)> = vec![
        (
            "a zero-key first message (the address alone)",
            first_message(&[0; 32], 0x55),
        ),
        ("a replay of the answered first message", control),
    ];
    assert_silence(listen, &probes);

    // Two nodes join through it: one given `id@address`, one the address
    // alone. Only the first links up.
    let (_, _, keyed_dir) = start_node(
        &scratch,
        &mut children,
        "keyed",
        "127.93.0.3",
        &format!("bootstrap = [\"{id}@{listen}\"]\nbootstrap_retry_ms = 300\n"),
    );
    let (_, _, bare_dir) = start_node(
        &scratch,
        &mut children,
        "bare",
        "127.93.0.4",
        &format!("bootstrap = [\"{listen}\"]\nbootstrap_retry_ms = 300\n"),
    );
    let links_to_bridge = |dir: &std::path::Path| {
        let endpoint = Endpoint::of_node(&dir.join("data"), None);
        let status = ControlClient::connect(&endpoint, Some(Duration::from_secs(10)))
            .ok()?
            .status()
            .ok()?;
        Some(
            status
                .links
                .iter()
                .filter(|l| l.phase == "established" && l.peer.as_deref() == Some(id.as_str()))
                .count(),
        )
    };
    let keyed = eventually(Duration::from_secs(20), || {
        links_to_bridge(&keyed_dir).filter(|&n| n > 0)
    });
    assert_eq!(keyed, Some(1), "the node given id@address did not link up");
    // The bare one has dialled several times by now (300 ms retries).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        links_to_bridge(&bare_dir),
        Some(0),
        "the node given the address alone was answered"
    );
    let log = common::read(&dir.join("stderr.log"));
    assert!(!log.contains("panicked"), "{log}");
}
