//! Six `veil node` processes on loopback: they bootstrap from the first,
//! learn each other, and carry `veil send` messages over 3-relay circuits
//! to `veil listen`; SIGTERM saves their state, and a restart restores the
//! identity and the node table.
//!
//! Every node listens on its own loopback network (`127.N.0.1`): path
//! selection never puts two hops of a circuit in one /16.

mod common;

use std::fs::{self, DirBuilder, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, free_addr, run, wait, Children, Scratch, VEIL};

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

fn write_config(node_dir: &Path, listen: &str, control: &str, bootstrap: Option<&str>) -> String {
    let data = node_dir.join("data");
    let bootstrap = bootstrap.map_or(String::new(), |b| format!("bootstrap = [\"{b}\"]\n"));
    let text = format!(
        "listen = \"{listen}\"\ncontrol = \"{control}\"\ndata_dir = \"{}\"\n{bootstrap}\
         gossip_interval_ms = 200\nbootstrap_retry_ms = 300\nlog_level = \"info\"\n",
        data.display()
    );
    let path = node_dir.join("veil.toml");
    fs::write(&path, text).expect("config");
    path.to_str().expect("utf-8 path").to_string()
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
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data)
            .expect("data dir");
        let key = data.join("identity.key");
        let out = run(
            &["keygen", "--out", key.to_str().expect("utf-8")],
            b"",
            SHORT,
        );
        assert!(out.status.success(), "{out:?}");
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let listen = free_addr(&format!("127.{}.0.1", 40 + i)).to_string();
        if i == 0 {
            bootstrap = listen.clone();
        }
        let control = free_addr("127.0.0.1").to_string();
        let config = write_config(&dir, &listen, &control, Some(&bootstrap));
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
    let control = free_addr("127.0.0.1").to_string();
    let config = write_config(&restarted.dir, &listen, &control, None);
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
