//! Recording a trace on real sockets and replaying it: a message and its
//! reply over a one-relay circuit, with the sender and the destination
//! both recording. Every output must replay exactly; a cut or damaged
//! trace must fail with a clear error, never a panic.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant as WallInstant};

use veil_core::identity::Identity;
use veil_core::message::Sender;
use veil_core::node::{Event, Reply, SendMessage};
use veil_mio::trace::{self, ReplayError};
use veil_mio::{Runtime, RuntimeOptions};

use crate::support::{one_relay_config, Peer};

const CAP: Duration = Duration::from_secs(20);

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("veil-mio-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn recording_peer(secret: u8, addr: &str, path: &Path) -> Peer {
    let file = trace::create_trace_file(path).expect("trace file");
    let rt = Runtime::bind_recording(
        one_relay_config(),
        Identity::from_secret_bytes([secret; 32]),
        addr.parse().expect("address"),
        RuntimeOptions::default(),
        Box::new(file),
    )
    .expect("bind");
    assert!(rt.is_recording());
    Peer {
        rt,
        events: Vec::new(),
        received: Vec::new(),
    }
}

/// Runs the exchange and returns the two finished traces (sender's,
/// destination's).
fn record(dir: &Path) -> (PathBuf, PathBuf) {
    let b_trace = dir.join("b.trace");
    let c_trace = dir.join("c.trace");
    let mut a = Peer::with_config(21, one_relay_config(), "127.21.0.1:0");
    let mut b = recording_peer(22, "127.22.0.1:0", &b_trace);
    let mut c = recording_peer(23, "127.23.0.1:0", &c_trace);
    let bootstrap = a.rt.local_addr();
    b.rt.add_bootstrap(bootstrap).unwrap();
    c.rt.add_bootstrap(bootstrap).unwrap();
    let c_id = c.id();
    let start = WallInstant::now();
    let mut sent = None;
    let mut replied = false;
    let mut b_got = false;
    while start.elapsed() < CAP {
        for peer in [&mut a, &mut b, &mut c] {
            peer.turn();
        }
        if sent.is_none() && b.rt.node().node_table().get(&c_id).is_some() {
            sent = Some(
                b.rt.handle(SendMessage {
                    destination: c_id,
                    message: b"recorded ping",
                })
                .expect("queued"),
            );
        }
        for (sender, _) in std::mem::take(&mut c.received) {
            let Sender::Anonymous(to) = sender else {
                panic!("anonymous sender expected");
            };
            c.rt.handle(Reply {
                to,
                message: b"recorded pong",
            })
            .expect("reply queued");
            replied = true;
        }
        if !b.received.is_empty() {
            b.received.clear();
            b_got = true;
        }
        let acked = sent.is_some_and(|id| {
            b.events
                .iter()
                .any(|e| matches!(e, Event::MessageAcknowledged { id: i } if *i == id))
        });
        if acked && replied && b_got {
            break;
        }
    }
    assert!(replied && b_got, "the exchange did not finish");
    // A clean shutdown is recorded too.
    b.rt.shutdown();
    c.rt.shutdown();
    for _ in 0..200 {
        if b.rt.is_shut_down() && c.rt.is_shut_down() {
            break;
        }
        for peer in [&mut a, &mut b, &mut c] {
            peer.turn();
        }
    }
    b.rt.finish_trace().expect("finish b");
    drop(c); // the end record is also written on drop
    (b_trace, c_trace)
}

#[test]
fn recorded_traces_replay_exactly_and_damage_is_reported() {
    let dir = TempDir::new("trace");
    let (b_trace, c_trace) = record(&dir.0);
    for path in [&b_trace, &c_trace] {
        let report = trace::replay_file(path).expect("replay matches");
        // The link handshake, descriptors, a circuit, two messages and a
        // shutdown: dozens of inputs, each followed by its drain.
        assert!(report.records > 40, "{report:?}");
        assert_eq!(
            report.bytes,
            std::fs::metadata(path).expect("size").len(),
            "the whole file was read"
        );
    }
    let header =
        trace::read_trace_header(std::fs::File::open(&b_trace).expect("open")).expect("header");
    assert_eq!(header.secret, [22; 32]);
    assert_eq!(header.config.path_relays, 1);

    let bytes = std::fs::read(&c_trace).expect("read trace");
    let header_len = u32::from_le_bytes(bytes[10..14].try_into().expect("4 bytes")) as usize;
    let first_record = 14 + header_len;
    // Cut anywhere after the header: truncated, never a panic.
    for cut in [
        first_record,
        first_record + 3,
        bytes.len() / 3,
        bytes.len() - 1,
    ] {
        match trace::replay(&bytes[..cut]) {
            Err(ReplayError::Truncated {
                verified, inputs, ..
            }) => {
                assert!(verified <= inputs)
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    // Damaged magic, version, record tag, and payload bytes.
    let mut bad = bytes.clone();
    bad[0] ^= 0xff;
    assert!(matches!(
        trace::replay(&bad[..]),
        Err(ReplayError::NotATrace)
    ));
    let mut bad = bytes.clone();
    // A version no build has written (little-endian u16 at byte 8).
    bad[8] = 200;
    assert!(matches!(
        trace::replay(&bad[..]),
        Err(ReplayError::Version(200))
    ));
    // The first record's kind (its enum variant) set to one no build has.
    let mut bad = bytes.clone();
    bad[first_record + 4] = 0x55;
    let err = trace::replay(&bad[..]).expect_err("unknown record kind");
    assert!(err.to_string().contains("corrupt trace: record"), "{err}");
    // Flipped bytes anywhere: an error (or, rarely, a harmless match), no panic.
    let mut x = 0x9e37_79b9u64;
    for _ in 0..24 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = first_record + (x as usize) % (bytes.len() - first_record);
        let mut bad = bytes.clone();
        bad[at] ^= 1 << (x % 8);
        let _ = trace::replay(&bad[..]);
    }
}

/// A trace holds the node's secret key: its file never goes through a
/// symbolic link planted at its path (which could point at a file the
/// node's user may write), and an older file there is 0600 before any
/// byte is written to it.
#[test]
fn a_trace_file_is_never_opened_through_a_symlink_and_is_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("trace-symlink");
    let victim = dir.0.join("victim");
    std::fs::write(&victim, b"not a trace").expect("victim");
    let link = dir.0.join("node.trace");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let e = trace::create_trace_file(&link).expect_err("symlink refused");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read(&victim).expect("victim"), b"not a trace");

    let old = dir.0.join("old.trace");
    std::fs::write(&old, b"an older trace").expect("old trace");
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    drop(trace::create_trace_file(&old).expect("reuse"));
    let meta = std::fs::metadata(&old).expect("meta");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 0);
}

/// Offering a rendezvous service is a method of the node, not an input, so
/// a trace cannot hold it: a recording runtime refuses it (and stays
/// without a service), a plain one offers it.
#[test]
fn a_recording_runtime_refuses_to_offer_a_service() {
    use veil_core::identity::ServiceKeys;
    use veil_mio::OfferServiceError;
    let dir = TempDir::new("trace-service");
    let mut recording = recording_peer(24, "127.24.0.1:0", &dir.0.join("s.trace"));
    let keys = ServiceKeys::from_secrets([1; 32], [2; 32]);
    let id = keys.service_id();
    assert_eq!(
        recording.rt.offer_service(keys.clone()),
        Err(OfferServiceError::Recording)
    );
    assert_eq!(recording.rt.node().service_id(), None);
    let mut plain = crate::support::Peer::with_config(25, one_relay_config(), "127.25.0.1:0");
    assert_eq!(plain.rt.offer_service(keys), Ok(id));
    assert_eq!(plain.rt.node().service_id(), Some(id));
}
