//! A prober that knows a `veil node`'s address but not its id, over real
//! TCP sockets (transport spec §2.2): whatever it sends (random bytes, an
//! HTTP request, a version 1 Noise first message, a first message marked
//! for another node), it never gets a byte back, and the node closes the
//! connection on its own, at a moment drawn per connection. The control: a
//! first message marked with the all-zero key, which the node lets in by
//! address, is answered with message 2, so the test would see an answer.
//!
//! Times are printed, not asserted, except the protocol's floor: a refused
//! connection stays open at least 1 s (load can only make that longer).

mod common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{eventually, free_addr, keygen_into, Children, Scratch};
use veil_core::link::obfs::{first_message_header, HiddenEphemeral};

/// A first message with no padding, marked with `key`.
fn first_message(key: &[u8; 32], seed: u8) -> Vec<u8> {
    let hidden = HiddenEphemeral::generate([seed; 32]).expect("a key");
    first_message_header(key, &hidden.representative, 0).to_vec()
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
    let dir = scratch.path("n0");
    let data = dir.join("data");
    keygen_into(&data);
    let listen = free_addr("127.93.0.1");
    fs::write(
        dir.join("veil.toml"),
        format!(
            "listen = \"{listen}\"\ndata_dir = \"{}\"\nlog_level = \"info\"\n",
            data.display()
        ),
    )
    .expect("config");
    let child = common::spawn_node(&dir);
    children.push(child);
    eventually(Duration::from_secs(20), || TcpStream::connect(listen).ok())
        .expect("the node listens");

    // The control: a dialler that knows only the address is answered.
    let (answer, _) = probe(listen, &first_message(&[0; 32], 0x11), true);
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
    ];
    for (name, bytes) in &probes {
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
    let log = common::read(&dir.join("stderr.log"));
    assert!(!log.contains("panicked"), "{log}");
}
