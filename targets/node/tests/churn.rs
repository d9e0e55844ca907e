//! A node that is not on a circuit's path is killed (SIGKILL) while
//! messages flow over that circuit: nothing is disturbed. Every message,
//! before and after the kill, is acknowledged and delivered exactly once,
//! and the sender never needs another circuit.
//!
//! Seven `veil node` processes on loopback, each on its own `127.N.0.1`
//! (path selection never puts two hops of a circuit in one /16).

mod common;

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, free_addr, keygen_into, wait, Children, Scratch, VEIL};

const NODES: usize = 7;
const MESSAGES: usize = 40;
const KILL_AFTER: usize = 10;
const SHORT: Duration = Duration::from_secs(30);

struct Node {
    id: String,
    control: SocketAddr,
    dir: PathBuf,
}

/// One control connection, used for `send` and `status`.
struct Control {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Control {
    fn connect(addr: SocketAddr) -> Control {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("control");
        stream
            .set_read_timeout(Some(Duration::from_secs(90)))
            .expect("read timeout");
        Control {
            writer: stream.try_clone().expect("clone"),
            reader: BufReader::new(stream),
        }
    }

    fn call(&mut self, request: serde_json::Value) -> serde_json::Value {
        let mut line = serde_json::to_vec(&request).expect("json");
        line.push(b'\n');
        self.writer.write_all(&line).expect("control write");
        let mut answer = String::new();
        self.reader.read_line(&mut answer).expect("control answer");
        serde_json::from_str(&answer).expect("answer JSON")
    }

    fn send(&mut self, to: &str, data: &[u8]) -> serde_json::Value {
        self.call(serde_json::json!({"cmd":"send","to":to,"data_hex":hex::encode(data)}))
    }

    fn status(&mut self) -> serde_json::Value {
        self.call(serde_json::json!({"cmd":"status"}))["status"].clone()
    }
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
        let id = keygen_into(&data);
        let listen = free_addr(&format!("127.{}.0.1", 70 + i)).to_string();
        if i == 0 {
            bootstrap = listen.clone();
        }
        let control = free_addr("127.0.0.1");
        let config = format!(
            "listen = \"{listen}\"\ncontrol = \"{control}\"\ndata_dir = \"{}\"\n\
             bootstrap = [\"{bootstrap}\"]\ngossip_interval_ms = 200\n\
             bootstrap_retry_ms = 300\nlog_level = \"info\"\n",
            data.display()
        );
        fs::write(dir.join("veil.toml"), config).expect("config");
        let child = Command::new(VEIL)
            .args(["node", "--config"])
            .arg(dir.join("veil.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(dir.join("stderr.log")).expect("log"))
            .spawn()
            .expect("spawn veil node");
        children.push(child);
        nodes.push(Node { id, control, dir });
    }

    // Everyone learns everyone.
    for (i, node) in nodes.iter().enumerate() {
        let known = eventually(SHORT, || {
            // The control socket comes up a moment after the process.
            TcpStream::connect(node.control).ok()?;
            let k = Control::connect(node.control).status()["known_nodes"].as_u64()?;
            (k >= (NODES - 1) as u64).then_some(k)
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
    let mut sender = Control::connect(nodes[src].control);
    let answer = sender.send(&nodes[dst].id, b"churn first");
    assert_eq!(answer["ok"], true, "{answer}\n{}", logs(&nodes));

    // The nodes the circuit does not touch: no circuit hop, no own circuit.
    let idle: Vec<usize> = (0..NODES)
        .filter(|&i| i != src && i != dst)
        .filter(|&i| {
            let s = Control::connect(nodes[i].control).status();
            s["circuits_relayed"].as_u64() == Some(0) && s["circuits_own"].as_u64() == Some(0)
        })
        .collect();
    let on_path = (0..NODES)
        .filter(|&i| i != src && i != dst && !idle.contains(&i))
        .count();
    assert_eq!(on_path, 3, "3 relays carry the circuit, idle: {idle:?}");
    let victim = idle[0];

    // Messages flow from a thread while the main thread kills the victim.
    let acked = Arc::new(AtomicUsize::new(0));
    let to = nodes[dst].id.clone();
    let flow = {
        let acked = Arc::clone(&acked);
        std::thread::spawn(move || -> Result<(), String> {
            for k in 0..MESSAGES {
                let answer = sender.send(&to, format!("churn {k}").as_bytes());
                if answer["ok"] != true {
                    return Err(format!("message {k}: {answer}"));
                }
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
    let s = Control::connect(nodes[src].control).status();
    assert_eq!(s["circuits_built"].as_u64(), Some(1), "{s}");
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
