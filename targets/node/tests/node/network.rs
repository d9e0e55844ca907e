//! Six `veil node` processes on loopback: they bootstrap from the first,
//! learn each other, and carry `veil send` messages over 3-relay circuits
//! to `veil listen`; SIGTERM saves their state, and a restart restores the
//! identity and the node table.
//!
//! Two smaller runs check what `veil status` counts once a link has
//! closed, and that a temporary file left by a crash in the middle of a
//! snapshot write does not break a restart.
//!
//! Every node listens on its own loopback network (`127.N.0.1`): path
//! selection never puts two hops of a circuit in one /16.

use crate::common;

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, free_addr, keygen_into, run, wait, Children, Scratch, VEIL};

const NODES: usize = 6;
const SHORT: Duration = Duration::from_secs(30);

struct Node {
    id: String,
    control: String,
    config: String,
    dir: std::path::PathBuf,
}

fn spawn_node(node: &Node, children: &mut Children) -> usize {
    let log = File::create(node.dir.join("stderr.log")).expect("log file");
    let child = Command::new(VEIL)
        .args(["node", "--config", &node.config])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn veil node");
    children.push(child)
}

/// The node's status as JSON, once its control socket answers.
fn status(control: &str) -> Option<serde_json::Value> {
    let out = run(
        &["status", "--json", "--control", control],
        b"",
        Duration::from_secs(20),
    );
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn known_nodes(control: &str) -> u64 {
    status(control)
        .and_then(|s| s["known_nodes"].as_u64())
        .unwrap_or(0)
}

/// The control socket of the node in `node_dir`: the default one, in its
/// data directory.
fn control_of(node_dir: &Path) -> String {
    node_dir
        .join("data/control.sock")
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

fn write_config(node_dir: &Path, listen: &str, bootstrap: Option<&str>) -> String {
    let data = node_dir.join("data");
    let bootstrap = bootstrap.map_or(String::new(), |b| format!("bootstrap = [\"{b}\"]\n"));
    let text = format!(
        "listen = \"{listen}\"\ndata_dir = \"{}\"\n{bootstrap}\
         gossip_interval_ms = 200\nextend_to_private_addresses = true\nbootstrap_retry_ms = 300\nlog_level = \"info\"\n",
        data.display()
    );
    let path = node_dir.join("veil.toml");
    fs::write(&path, text).expect("config");
    path.to_str().expect("utf-8 path").to_string()
}

/// A node in `scratch/name`, listening on `127.net.0.1`, with a fresh
/// identity key made by `veil keygen`.
fn make_node(scratch: &Scratch, name: &str, net: u8, bootstrap: Option<&str>) -> (Node, String) {
    let dir = scratch.path(name);
    let data = dir.join("data");
    let id = keygen_into(&data);
    let listen = free_addr(&format!("127.{net}.0.1")).to_string();
    let control = control_of(&dir);
    let config = write_config(&dir, &listen, bootstrap);
    (
        Node {
            id,
            control,
            config,
            dir,
        },
        listen,
    )
}

/// The entry of `links` whose peer is `peer`, if any.
fn link_to<'a>(status: &'a serde_json::Value, peer: &str) -> Option<&'a serde_json::Value> {
    status["links"]
        .as_array()?
        .iter()
        .find(|l| l["peer"] == peer)
}

fn field(value: &serde_json::Value, name: &str) -> u64 {
    value[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {name} in {value}"))
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

fn logs(nodes: &[Node]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("--- node {i}\n{}", common::read(&n.dir.join("stderr.log"))))
        .collect()
}

#[test]
fn six_processes_carry_messages_over_three_relay_circuits_and_restart() {
    let scratch = Scratch::new("net");
    let mut children = Children::default();
    let mut nodes = Vec::new();
    let mut bootstrap = String::new();
    for i in 0..NODES {
        let dir = scratch.path(&format!("n{i}"));
        let data = dir.join("data");
        let id = keygen_into(&data);
        let listen = free_addr(&format!("127.{}.0.1", 40 + i)).to_string();
        if i == 0 {
            bootstrap = listen.clone();
        }
        let control = control_of(&dir);
        let config = write_config(&dir, &listen, Some(&bootstrap));
        nodes.push(Node {
            id,
            control,
            config,
            dir,
        });
    }
    for node in &nodes {
        spawn_node(node, &mut children);
    }

    // Everyone learns everyone: node 0 by the links, the rest by gossip.
    let others = (NODES - 1) as u64;
    for (i, node) in nodes.iter().enumerate() {
        let known = eventually(SHORT, || {
            let k = known_nodes(&node.control);
            (k >= others).then_some(k)
        });
        assert!(
            known.is_some(),
            "node {i} did not learn the network\n{}",
            logs(&nodes)
        );
    }

    // A text message from node 1 to node 5, printed raw by `veil listen`.
    let listen_out = scratch.path("listen.out");
    let listener = Command::new(VEIL)
        .args(["listen", "--count", "1", "--control", &nodes[5].control])
        .stdin(Stdio::null())
        .stdout(File::create(&listen_out).expect("listen out"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn listen");
    let listener = children.push(listener);
    let text = b"hello over three relays";
    let sent = run(
        &["send", &nodes[5].id, "--control", &nodes[1].control],
        text,
        Duration::from_secs(90),
    );
    assert!(
        sent.status.success(),
        "send failed: {}\n{}",
        String::from_utf8_lossy(&sent.stderr),
        logs(&nodes)
    );
    let done = wait(&mut children.0[listener], SHORT);
    assert!(done.is_some_and(|s| s.success()), "listen did not finish");
    let mut expected = text.to_vec();
    expected.push(b'\n');
    assert_eq!(fs::read(&listen_out).expect("listen output"), expected);

    // A binary message from node 0 to node 3, checked byte for byte
    // through `veil listen --json`.
    let json_out = scratch.path("listen.json");
    let listener = Command::new(VEIL)
        .args([
            "listen",
            "--json",
            "--count",
            "1",
            "--control",
            &nodes[3].control,
        ])
        .stdin(Stdio::null())
        .stdout(File::create(&json_out).expect("listen out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn listen");
    let listener = children.push(listener);
    let binary: Vec<u8> = (0..40_000u32).map(|i| (i * 7 + i / 255) as u8).collect();
    let sent = run(
        &["send", &nodes[3].id, "--control", &nodes[0].control],
        &binary,
        Duration::from_secs(90),
    );
    assert!(
        sent.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let done = wait(&mut children.0[listener], SHORT);
    assert!(done.is_some_and(|s| s.success()), "listen did not finish");
    let line: serde_json::Value =
        serde_json::from_slice(&fs::read(&json_out).expect("json")).expect("one JSON line");
    assert_eq!(line["event"], "message");
    assert!(line["from"].is_null(), "a circuit's sender is anonymous");
    assert_eq!(
        hex::decode(line["data_hex"].as_str().expect("data_hex")).expect("hex"),
        binary
    );

    // Three relays carried the first circuit: every node but its two ends
    // is a hop of at least one circuit, and the relays count at least 3.
    let relayed: u64 = [0usize, 2, 3, 4]
        .iter()
        .map(|&i| {
            status(&nodes[i].control)
                .and_then(|s| s["circuits_relayed"].as_u64())
                .unwrap_or(0)
        })
        .sum();
    assert!(relayed >= 3, "relays hold {relayed} circuit hops");
    let sender = status(&nodes[1].control).expect("status of node 1");
    assert!(sender["circuits_built"].as_u64() >= Some(1));
    assert!(sender["messages_acknowledged"].as_u64() >= Some(1));

    // SIGTERM: every node closes its links, saves its table, exits 0.
    for i in 0..NODES {
        sigterm(&children.0[i]);
    }
    for (i, node) in nodes.iter().enumerate() {
        let status = wait(&mut children.0[i], SHORT);
        assert!(
            status.is_some_and(|s| s.success()),
            "node {i} did not exit cleanly: {status:?}\n{}",
            logs(&nodes)
        );
        let saved = fs::read_to_string(node.dir.join("data/nodes.json")).expect("snapshot");
        let saved: serde_json::Value = serde_json::from_str(&saved).expect("snapshot JSON");
        assert_eq!(
            saved["descriptors"].as_array().map(Vec::len),
            Some(NODES - 1),
            "node {i} saved every other node"
        );
    }

    // Restart node 3 alone, without bootstrap: same identity, and the whole
    // table back before it has any link.
    let restarted = &nodes[3];
    let listen = free_addr("127.43.0.1").to_string();
    let control = control_of(&restarted.dir);
    let config = write_config(&restarted.dir, &listen, None);
    let again = Node {
        id: restarted.id.clone(),
        control: control.clone(),
        config,
        dir: restarted.dir.clone(),
    };
    spawn_node(&again, &mut children);
    let s = eventually(SHORT, || status(&control)).expect("restarted node answers");
    assert_eq!(s["node_id"], restarted.id.as_str());
    assert_eq!(s["known_nodes"].as_u64(), Some(others));
}

#[test]
fn status_keeps_a_closed_links_traffic_and_names_the_transport() {
    let scratch = Scratch::new("status");
    let mut children = Children::default();
    let (a, a_listen) = make_node(&scratch, "a", 60, None);
    let (b, _) = make_node(&scratch, "b", 61, Some(&a_listen));
    spawn_node(&a, &mut children);
    let b_child = spawn_node(&b, &mut children);
    let nodes = [a, b];
    let (a, b) = (&nodes[0], &nodes[1]);

    // The link comes up and both ends have learned each other (so
    // descriptors crossed it both ways).
    let linked = eventually(SHORT, || {
        let s = status(&a.control)?;
        let link = link_to(&s, &b.id)?;
        (link["phase"] == "established" && known_nodes(&b.control) >= 1).then_some(())
    });
    assert!(linked.is_some(), "no link from a to b\n{}", logs(&nodes));
    let before = status(&a.control).expect("status of a");
    let link = link_to(&before, &b.id).expect("the link to b").clone();
    assert_eq!(link["transport"], "tcp", "{link}");
    for counter in [
        "bytes_sent",
        "bytes_received",
        "cells_sent",
        "cells_received",
    ] {
        assert!(field(&link, counter) > 0, "{counter} of {link}");
    }
    assert_eq!(field(&before, "links_closed"), 0, "{before}");

    // The readable status names the transport of each link.
    let out = run(&["status", "--control", &a.control], b"", SHORT);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(&b.id))
        .unwrap_or_else(|| panic!("no line for b in\n{text}"));
    assert!(
        line.split_whitespace().any(|w| w == "tcp"),
        "no tcp column in {line:?}"
    );

    // b shuts down; its link to a closes and leaves a's link list.
    sigterm(&children.0[b_child]);
    let exited = wait(&mut children.0[b_child], SHORT);
    assert!(exited.is_some_and(|s| s.success()), "b: {exited:?}");
    let after = eventually(SHORT, || {
        let s = status(&a.control)?;
        (link_to(&s, &b.id).is_none() && field(&s, "links_closed") >= 1).then_some(s)
    })
    .unwrap_or_else(|| panic!("a still lists its link to b\n{}", logs(&nodes)));

    // What the closed link carried still counts in a's totals, at least
    // as much as the link showed before it closed.
    for counter in [
        "bytes_sent",
        "bytes_received",
        "cells_sent",
        "cells_received",
    ] {
        let open_links: u64 = after["links"]
            .as_array()
            .expect("links")
            .iter()
            .map(|l| field(l, counter))
            .sum();
        let total = field(&after, counter);
        assert!(
            total >= field(&link, counter).saturating_add(open_links),
            "{counter}: total {total} lost the closed link ({link}), open links {open_links}"
        );
    }
}

#[test]
fn a_leftover_temp_file_from_a_crashed_save_does_not_break_a_restart() {
    let scratch = Scratch::new("tmpfile");
    let mut children = Children::default();
    let (a, a_listen) = make_node(&scratch, "a", 62, None);
    let (b, _) = make_node(&scratch, "b", 63, Some(&a_listen));
    spawn_node(&a, &mut children);
    spawn_node(&b, &mut children);
    let nodes = [a, b];
    let b = &nodes[1];
    let learned = eventually(SHORT, || (known_nodes(&b.control) >= 1).then_some(()));
    assert!(learned.is_some(), "b did not learn a\n{}", logs(&nodes));
    for i in 0..2 {
        sigterm(&children.0[i]);
        let exited = wait(&mut children.0[i], SHORT);
        assert!(exited.is_some_and(|s| s.success()), "node {i}: {exited:?}");
    }
    let snapshot = b.dir.join("data/nodes.json");
    let saved = fs::read(&snapshot).expect("b saved its table");

    // A crash in the middle of the next save: the temporary file holds
    // half a snapshot; nodes.json is the last whole one.
    let tmp = b.dir.join("data/nodes.json.tmp");
    fs::write(&tmp, &saved[..saved.len() / 2]).expect("torn temp file");

    // Restarted without bootstrap, b gets its table from nodes.json and
    // ignores the torn file.
    let listen = free_addr("127.63.0.1").to_string();
    let control = control_of(&b.dir);
    let again = Node {
        id: b.id.clone(),
        control: control.clone(),
        config: write_config(&b.dir, &listen, None),
        dir: b.dir.clone(),
    };
    let child = spawn_node(&again, &mut children);
    let s = eventually(SHORT, || status(&control))
        .unwrap_or_else(|| panic!("restarted b does not answer\n{}", logs(&nodes)));
    assert_eq!(s["node_id"], b.id.as_str());
    assert_eq!(s["known_nodes"].as_u64(), Some(1), "a restored: {s}");

    // Its next save replaces the torn file and leaves a whole snapshot.
    sigterm(&children.0[child]);
    let exited = wait(&mut children.0[child], SHORT);
    assert!(exited.is_some_and(|s| s.success()), "b: {exited:?}");
    assert!(
        !tmp.exists(),
        "the temporary file was renamed over nodes.json"
    );
    let whole: serde_json::Value =
        serde_json::from_slice(&fs::read(&snapshot).expect("snapshot")).expect("whole JSON");
    assert_eq!(whole["descriptors"].as_array().map(Vec::len), Some(1));
}

/// A node without bootstrap nodes that was offline longer than a
/// descriptor lives (3 h) restarts with a saved table whose descriptors
/// have all expired: the node table refuses them, and yet the node dials
/// the addresses in them, links, and learns its peer's fresh descriptor
/// over the link. While it reaches nobody, its saves (every second here)
/// keep that saved table rather than replacing it with an empty one, so a
/// second restart still has the addresses.
#[test]
fn a_restart_with_only_expired_descriptors_still_links() {
    use veil_core::identity::{Address, DescriptorRepr, Identity, Transport, MAX_DESCRIPTOR_LEN};

    let scratch = Scratch::new("expired");
    let mut children = Children::default();
    let (a, a_listen) = make_node(&scratch, "a", 64, None);
    let (b, _) = make_node(&scratch, "b", 65, None);

    // a's descriptor as b saved it five hours ago: expired two hours ago.
    let secret: [u8; 32] = fs::read(a.dir.join("data/identity.key"))
        .expect("a's key")
        .try_into()
        .expect("32 bytes");
    let identity = Identity::from_secret_bytes(secret);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [9; 32],
        relay: true,
        issued_at: now - 5 * 3600,
        expires_at: now - 2 * 3600,
        addresses: Default::default(),
    };
    repr.addresses
        .push(Address {
            transport: Transport::Tcp,
            socket: a_listen.parse().expect("a's address"),
        })
        .expect("room");
    let mut descriptor = vec![0u8; MAX_DESCRIPTOR_LEN];
    let n = repr.emit_signed(&identity, &mut descriptor).expect("sign");
    descriptor.truncate(n);
    let snapshot = serde_json::json!({"version": 1, "descriptors": [hex::encode(&descriptor)]});
    let saved = b.dir.join("data/nodes.json");
    fs::write(&saved, snapshot.to_string()).expect("b's saved table");
    let mut config = fs::read_to_string(&b.config).expect("b's config");
    config.push_str("snapshot_interval_secs = 1\n");
    fs::write(&b.config, config).expect("b's config");

    // a is down: b reaches nobody, saves a few times, and stops.
    let first = spawn_node(&b, &mut children);
    assert!(
        eventually(SHORT, || status(&b.control)).is_some(),
        "b does not answer"
    );
    std::thread::sleep(Duration::from_millis(2500));
    sigterm(&children.0[first]);
    let exited = wait(&mut children.0[first], SHORT);
    assert!(exited.is_some_and(|s| s.success()), "b: {exited:?}");
    assert_eq!(
        fs::read_to_string(&saved).expect("b's saved table"),
        snapshot.to_string(),
        "b replaced its saved table while it knew nobody"
    );

    spawn_node(&a, &mut children);
    spawn_node(&b, &mut children);
    let nodes = [a, b];
    let (a, b) = (&nodes[0], &nodes[1]);
    let linked = eventually(SHORT, || {
        let s = status(&b.control)?;
        let link = link_to(&s, &a.id)?;
        (link["phase"] == "established" && s["known_nodes"].as_u64()? >= 1).then_some(())
    });
    assert!(linked.is_some(), "b never linked to a\n{}", logs(&nodes));
    assert!(
        common::read(&b.dir.join("stderr.log")).contains("restored 0 of 1 saved nodes"),
        "the saved descriptor was not expired after all\n{}",
        logs(&nodes)
    );
}
