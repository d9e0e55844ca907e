//! Idle-link padding between two `veil node` processes (transport spec
//! §4.3), seen on the wire and in `veil status`: the dialling node reaches
//! the other through a TCP forwarder in this test that counts the bytes
//! each way. With the default (`link_padding = "full"`) the nodes count
//! padding cells, each side's sent count is the other's received, and the
//! forwarder carries at least a one-cell message's bytes for each; with
//! `link_padding = "off"` on both, neither sends one.

use crate::common;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, free_addr, keygen_into, Children, Scratch};
use veil_node::control_address::Endpoint;
use veil_node::control_client::ControlClient;
use veil_node::status::Status;

/// The shortest message a padding cell travels in: length prefix, kind,
/// count, one cell and the tag (transport spec §4.1).
const ONE_CELL_MESSAGE: u64 = 2 + 2 + 514 + 16;
/// How long the idle links are watched.
const WINDOW: Duration = Duration::from_secs(40);

struct Node {
    dir: PathBuf,
    listen: SocketAddr,
    control: Endpoint,
}

fn make_node(scratch: &Scratch, name: &str, extra: &str) -> Node {
    let dir = scratch.path(name);
    let data = dir.join("data");
    keygen_into(&data);
    let listen = free_addr("127.0.0.1");
    fs::write(
        dir.join("veil.toml"),
        format!(
            "listen = \"{listen}\"\ndata_dir = \"{}\"\nlog_level = \"info\"\n{extra}",
            data.display()
        ),
    )
    .expect("config");
    let control = Endpoint::of_node(&data, None);
    Node {
        dir,
        listen,
        control,
    }
}

fn status(node: &Node) -> Option<Status> {
    ControlClient::connect(&node.control, Some(Duration::from_secs(10)))
        .ok()?
        .status()
        .ok()
}

/// Forwards every connection to `to`, adding the bytes that pass either
/// way to `bytes`. Returns the address it listens on.
fn forwarder(to: SocketAddr, bytes: Arc<AtomicU64>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(to) else {
                continue;
            };
            for (mut from, mut into) in [
                (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                ),
                (server, client),
            ] {
                let bytes = bytes.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || into.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    let _ = into.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    addr
}

/// Two nodes linked through a counting forwarder, both with `extra` in
/// their configuration; waits for the link, then watches it for
/// [`WINDOW`]. Returns, over the window: padding cells sent by each node,
/// padding cells received by each, and bytes through the forwarder; and
/// the two nodes' statuses at its end.
fn watch(name: &str, extra: &str) -> ([u64; 2], [u64; 2], u64, [Status; 2]) {
    let scratch = Scratch::new(name);
    let mut children = Children(Vec::new());
    let a = make_node(&scratch, "a", extra);
    children.push(common::spawn_node(&a.dir));
    // Node a answers on its control socket only once it listens: b's first
    // bootstrap dial then finds it, rather than a refused connection and a
    // redial after the back-off (1, 2, 4, 8, 16 s), which on a loaded
    // machine could outlast the wait below (seen once in CI).
    eventually(Duration::from_secs(60), || status(&a))
        .expect("node a answers on its control socket");
    let bytes = Arc::new(AtomicU64::new(0));
    let via = forwarder(a.listen, bytes.clone());
    let b = make_node(&scratch, "b", &format!("bootstrap = [\"{via}\"]\n{extra}"));
    children.push(common::spawn_node(&b.dir));
    let linked = |s: &Status| s.links.iter().any(|l| l.phase == "established");
    let start = eventually(Duration::from_secs(60), || {
        let (sa, sb) = (status(&a)?, status(&b)?);
        (linked(&sa) && linked(&sb)).then_some((sa, sb))
    })
    .expect("the two nodes link");
    let bytes_at_start = bytes.load(Ordering::Relaxed);
    std::thread::sleep(WINDOW);
    let bytes_in_window = bytes.load(Ordering::Relaxed) - bytes_at_start;
    let (ea, eb) = (status(&a).expect("status"), status(&b).expect("status"));
    let sent = [
        ea.padding_cells_sent - start.0.padding_cells_sent,
        eb.padding_cells_sent - start.1.padding_cells_sent,
    ];
    let received = [
        ea.padding_cells_received - start.0.padding_cells_received,
        eb.padding_cells_received - start.1.padding_cells_received,
    ];
    (sent, received, bytes_in_window, [ea, eb])
}

#[test]
fn idle_links_carry_padding_cells_on_the_wire_and_status_counts_them() {
    let (sent, received, bytes, [a, b]) = watch("link-padding-full", "");
    assert_eq!(
        (a.link_padding.as_str(), b.link_padding.as_str()),
        ("full", "full")
    );
    // Any message either way restarts a side's wait, pings included (one
    // each way every 15 s, and their answers), so how many padding cells
    // fill the gaps is random; in 40 s of an otherwise idle link with
    // waits of 1.5-9.5 s, none at all would need every gap between the
    // pings to be shorter than the wait drawn for it.
    assert!(sent[0] + sent[1] >= 1, "padding cells sent {sent:?}");
    // What one side sent the other received (give or take one in flight
    // at the moment the statuses were read).
    assert!(
        received[1].abs_diff(sent[0]) <= 1,
        "a sent {sent:?}, b received {received:?}"
    );
    assert!(
        received[0].abs_diff(sent[1]) <= 1,
        "b sent {sent:?}, a received {received:?}"
    );
    let least = (sent[0] + sent[1]) * ONE_CELL_MESSAGE;
    assert!(
        bytes >= least,
        "{bytes} B on the wire, padding alone is {least} B"
    );
    println!("padding: {sent:?} cells sent in {WINDOW:?}, {bytes} B on the wire");
}

#[test]
fn links_configured_off_carry_no_padding() {
    let (sent, received, bytes, [a, b]) = watch("link-padding-off", "link_padding = \"off\"\n");
    assert_eq!(
        (a.link_padding.as_str(), b.link_padding.as_str()),
        ("off", "off")
    );
    assert_eq!((sent, received), ([0, 0], [0, 0]));
    assert_eq!((a.padding_cells_sent, b.padding_cells_sent), (0, 0));
    println!("no padding: {bytes} B on the wire in {WINDOW:?}");
}
