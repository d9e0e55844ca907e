//! A node that is not on a circuit's path is killed (SIGKILL) while
//! messages flow over that circuit: nothing is disturbed. Every message,
//! before and after the kill, is acknowledged and delivered exactly once,
//! and the sender never needs another circuit.
//!
//! Seven `veil node` processes on loopback, each on its own `127.N.0.1`
//! (path selection never puts two hops of a circuit in one /16).

use crate::common;

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, free_addr, keygen_into, wait, Children, Scratch, VEIL};
use veil_core::identity::NodeId;
use veil_node::control_address::Endpoint;
use veil_node::control_client::ControlClient;
use veil_node::status::Status;

const NODES: usize = 7;
const MESSAGES: usize = 40;
const KILL_AFTER: usize = 10;
const SHORT: Duration = Duration::from_secs(30);

struct Node {
    id: NodeId,
    control: Endpoint,
    dir: PathBuf,
}

/// A control connection to `control`; answers may take 90 s (a send is
/// answered once acknowledged).
fn control(endpoint: &Endpoint) -> ControlClient {
    ControlClient::connect(endpoint, Some(Duration::from_secs(90))).expect("control")
}

/// The node's status.
fn status(endpoint: &Endpoint) -> Status {
    control(endpoint).status().expect("status")
}

fn logs(nodes: &[Node]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("--- node {i}\n{}", common::read(&n.dir.join("stderr.log"))))
        .collect()
}

#[test]
fn killing_a_node_off_the_path_disturbs_nothing() {
    let scratch = Scratch::new("churn");
    let mut children = Children::default();
    let mut nodes = Vec::new();
    let mut bootstrap = String::new();
    for i in 0..NODES {
        let dir = scratch.path(&format!("n{i}"));
        let data = dir.join("data");
        let id = NodeId::from_hex(&keygen_into(&data)).expect("node id");
        let listen = free_addr(&format!("127.{}.0.1", 70 + i)).to_string();
        if i == 0 {
            bootstrap = listen.clone();
        }
        let control = Endpoint::of_node(&data, None);
        let config = format!(
            "listen = \"{listen}\"\ndata_dir = \"{}\"\n\
             bootstrap = [\"{bootstrap}\"]\ngossip_interval_ms = 200\nextend_to_private_addresses = true\n\
             bootstrap_retry_ms = 300\nlog_level = \"info\"\n",
            data.display()
        );
        fs::write(dir.join("veil.toml"), config).expect("config");
        let child = common::spawn_node(&dir);
        children.push(child);
        nodes.push(Node { id, control, dir });
    }

    // Everyone learns everyone.
    for (i, node) in nodes.iter().enumerate() {
        let known = eventually(SHORT, || {
            // The control socket comes up a moment after the process.
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

    // Node 1 sends to node 2 over one 3-relay circuit; node 2 prints what
    // it receives.
    let (src, dst) = (1usize, 2usize);
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
    let answer = sender.send(nodes[dst].id, b"churn first");
    assert!(answer.is_ok(), "{answer:?}\n{}", logs(&nodes));

    // The nodes the circuit does not touch: no circuit hop, no own circuit.
    let idle: Vec<usize> = (0..NODES)
        .filter(|&i| i != src && i != dst)
        .filter(|&i| {
            let s = status(&nodes[i].control);
            s.circuits_relayed == 0 && s.circuits_own == 0
        })
        .collect();
    let on_path = (0..NODES)
        .filter(|&i| i != src && i != dst && !idle.contains(&i))
        .count();
    assert_eq!(on_path, 3, "3 relays carry the circuit, idle: {idle:?}");
    let victim = idle[0];

    // Messages flow from a thread while the main thread kills the victim.
    let acked = Arc::new(AtomicUsize::new(0));
    let to = nodes[dst].id;
    let flow = {
        let acked = Arc::clone(&acked);
        std::thread::spawn(move || -> Result<(), String> {
            for k in 0..MESSAGES {
                sender
                    .send(to, format!("churn {k}").as_bytes())
                    .map_err(|e| format!("message {k}: {e}"))?;
                acked.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        })
    };
    let start = Instant::now();
    while acked.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            start.elapsed() < SHORT && !flow.is_finished(),
            "messages stopped before the kill\n{}",
            logs(&nodes)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    children.0[victim].kill().expect("SIGKILL");
    assert!(
        wait(&mut children.0[victim], SHORT).is_some(),
        "the victim did not die"
    );
    let killed_at = acked.load(Ordering::SeqCst);

    let start = Instant::now();
    while !flow.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "messages stalled after the kill\n{}",
            logs(&nodes)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let flowed = flow.join().expect("sender thread");
    assert!(flowed.is_ok(), "{flowed:?}\n{}", logs(&nodes));
    assert!(
        killed_at < MESSAGES,
        "the kill came after the last message ({killed_at})"
    );

    // Every message arrived exactly once.
    let done = wait(&mut children.0[listener], SHORT);
    assert!(
        done.is_some_and(|s| s.success()),
        "listen did not get all messages"
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
    let mut want: Vec<String> = (0..MESSAGES).map(|k| format!("churn {k}")).collect();
    want.push("churn first".into());
    want.sort();
    assert_eq!(got, want);

    // The circuit was never replaced, and every other node is still up.
    let s = status(&nodes[src].control);
    assert_eq!(s.circuits_built, 1, "{s:?}");
    for (i, child) in children.0.iter_mut().enumerate().take(NODES) {
        if i != victim {
            assert!(
                matches!(child.try_wait(), Ok(None)),
                "node {i} stopped\n{}",
                logs(&nodes)
            );
        }
    }
}
