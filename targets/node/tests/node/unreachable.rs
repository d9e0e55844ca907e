//! A node nobody can dial gets its messages through its introducers
//! (issue 19, point 2), as a new user would meet it: seven `veil node`
//! processes on loopback, and a destination that advertises an address
//! where nothing listens, as a node behind NAT advertises its private one.
//! With `introducers = 2` it lists two relays its own links go to, and
//! senders reach it through them. Then the introducer on the sender's live
//! circuit is killed, and messages still arrive, each exactly once. The
//! assertions are on counts; times are printed (`--nocapture`).

use crate::common;

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, free_addr, keygen_into, wait, Children, Scratch, VEIL};
use veil_core::identity::NodeId;
use veil_node::control_address::Endpoint;
use veil_node::control_client::ControlClient;

const NODES: usize = 7;
const MESSAGES: usize = 20;
const SHORT: Duration = Duration::from_secs(30);
/// Where the destination says it listens, and nothing does.
const NOWHERE: &str = "127.250.0.1:9";

struct Node {
    id: NodeId,
    control: Endpoint,
    dir: PathBuf,
}

fn control(endpoint: &Endpoint) -> ControlClient {
    ControlClient::connect(endpoint, Some(Duration::from_secs(130))).expect("control")
}

fn logs(nodes: &[Node]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("--- node {i}\n{}", common::read(&n.dir.join("stderr.log"))))
        .collect()
}

fn spawn_node(dir: &std::path::Path) -> std::process::Child {
    Command::new(VEIL)
        .args(["node", "--config"])
        .arg(dir.join("veil.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("stderr.log"))
                .expect("log"),
        )
        .spawn()
        .expect("spawn veil node")
}

#[test]
fn a_node_that_advertises_an_unreachable_address_is_reached_through_introducers() {
    let net = 130;
    let scratch = Scratch::new("unreachable");
    let mut children = Children::default();
    let mut nodes = Vec::new();
    let mut bootstrap = String::new();
    let dst = NODES - 1;
    for i in 0..NODES {
        let dir = scratch.path(&format!("n{i}"));
        let data = dir.join("data");
        let id = NodeId::from_hex(&keygen_into(&data)).expect("node id");
        let listen = free_addr(&format!("127.{}.0.1", net + i)).to_string();
        if i == 0 {
            bootstrap = listen.clone();
        }
        let hidden = if i == dst {
            format!("advertise = [\"{NOWHERE}\"]\nintroducers = 2\n")
        } else {
            String::new()
        };
        let config = format!(
            "listen = \"{listen}\"\ndata_dir = \"{}\"\n\
             bootstrap = [\"{bootstrap}\"]\ngossip_interval_ms = 200\nextend_to_private_addresses = true\n\
             bootstrap_retry_ms = 300\nlog_level = \"info\"\n{hidden}",
            data.display()
        );
        fs::write(dir.join("veil.toml"), config).expect("config");
        children.push(spawn_node(&dir));
        nodes.push(Node {
            id,
            control: Endpoint::of_node(&data, None),
            dir,
        });
    }
    for (i, node) in nodes.iter().enumerate() {
        let known = eventually(SHORT, || {
            let mut control = ControlClient::connect(&node.control, Some(SHORT)).ok()?;
            let k = control.status().ok()?.known_nodes;
            (k >= NODES - 1).then_some(k)
        });
        assert!(
            known.is_some(),
            "node {i} did not learn the network\n{}",
            logs(&nodes)
        );
    }

    let src = 1usize;
    let listen_out = scratch.path("listen.jsonl");
    let listener = Command::new(VEIL)
        .args(["listen", "--json", "--count", &(MESSAGES + 1).to_string()])
        .args(["--control", &nodes[dst].control.to_string()])
        .stdin(Stdio::null())
        .stdout(File::create(&listen_out).expect("listen out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn listen");
    let listener = children.push(listener);
    let mut sender = control(&nodes[src].control);
    // The sender's first circuit also sets up its link to its guard: one
    // to another node first, so that both figures below are one circuit
    // build and one message each. For comparison, the first message to a
    // node that can be dialled.
    let warm_up = sender.send(nodes[3].id, b"warm up");
    assert!(warm_up.is_ok(), "{warm_up:?}\n{}", logs(&nodes));
    let reachable = 4usize;
    let sent = Instant::now();
    let answer = sender.send(nodes[reachable].id, b"reachable");
    assert!(answer.is_ok(), "{answer:?}\n{}", logs(&nodes));
    println!(
        "first message to a node that can be dialled: acknowledged after {} ms",
        sent.elapsed().as_millis()
    );
    let sent = Instant::now();
    let answer = sender.send(nodes[dst].id, b"behind NAT");
    assert!(answer.is_ok(), "{answer:?}\n{}", logs(&nodes));
    println!(
        "first message to the node nobody can dial: acknowledged after {} ms",
        sent.elapsed().as_millis()
    );

    // The introducer on the sender's live circuit: its last relay.
    let status = control(&nodes[src].control).status().expect("status");
    let path: Vec<String> = status
        .own_circuits
        .iter()
        .find(|c| c.state == "ready" && c.path.last() == Some(&nodes[dst].id.to_string()))
        .map(|c| c.path.clone())
        .expect("a ready circuit to the destination");
    let introducer = nodes
        .iter()
        .position(|n| Some(&n.id.to_string()) == path.iter().rev().nth(1))
        .expect("the last relay is one of the nodes");
    assert_ne!(introducer, src);

    let mut gap = Duration::ZERO;
    for k in 0..MESSAGES {
        if k == MESSAGES / 2 {
            let killed = Command::new("kill")
                .args(["-KILL", &children.0[introducer].id().to_string()])
                .status();
            assert!(killed.is_ok_and(|s| s.success()));
            assert!(wait(&mut children.0[introducer], SHORT).is_some());
        }
        let at = Instant::now();
        let answer = sender.send(nodes[dst].id, format!("nat {k}").as_bytes());
        assert!(answer.is_ok(), "message {k}: {answer:?}\n{}", logs(&nodes));
        gap = gap.max(at.elapsed());
    }
    println!(
        "{MESSAGES} messages, the introducer on the live circuit killed halfway: \
         longest send-to-acknowledgement {} ms",
        gap.as_millis()
    );

    assert!(
        wait(&mut children.0[listener], SHORT).is_some(),
        "the listener did not get {} messages\n{}",
        MESSAGES + 1,
        logs(&nodes)
    );
    let mut got: Vec<String> = fs::read_to_string(&listen_out)
        .expect("listen output")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            let data = hex::decode(v["data_hex"].as_str().expect("hex")).expect("hex");
            String::from_utf8(data).expect("utf-8")
        })
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..MESSAGES).map(|k| format!("nat {k}")).collect();
    want.push("behind NAT".into());
    want.sort();
    assert_eq!(got, want, "lost or duplicated messages");
}
