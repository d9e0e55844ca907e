//! Traces: `veil node --record` on a real multi-process TCP network, and
//! `veil replay`.
//!
//! - every trace committed in `tests/traces/` replays with all outputs
//!   matching;
//! - a truncated copy and a corrupted copy fail with a clear one-line error;
//! - a fresh capture (five `veil node` processes, two of them recording,
//!   messages over 3-relay circuits) replays exactly.
//!
//! The committed traces are regenerated (after a change to the core's
//! behaviour or to the trace format) with
//!
//! ```sh
//! cargo test -p veil-node --test node traces::regenerate -- --ignored
//! ```
//!
//! They come from throwaway identities generated for the capture: a trace
//! holds its node's secret key.

use crate::common;

use std::fs::{self, DirBuilder, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{eventually, free_addr, run, wait, Children, Scratch, VEIL};

/// Where committed traces live.
const TRACES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/traces");

/// Nodes in a capture: the sender, three relays and the destination.
const NODES: usize = 5;

/// The nodes that record, by index.
const RECORDING: [usize; 2] = [0, 1];

const SHORT: Duration = Duration::from_secs(30);

/// A committed trace must stay small.
const MAX_COMMITTED: u64 = 1024 * 1024;

fn committed() -> Vec<PathBuf> {
    let mut traces: Vec<PathBuf> = fs::read_dir(TRACES)
        .expect("tests/traces exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "vtrace"))
        .collect();
    traces.sort();
    traces
}

fn replay(path: &Path, extra: &[&str]) -> Output {
    let path = path.to_str().expect("utf-8 path");
    let mut args = vec!["replay", path];
    args.extend_from_slice(extra);
    run(&args, b"", Duration::from_secs(120))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A failure is one line on stderr, starting with `veil:`, and exit 1.
fn assert_one_line_failure(out: &Output, expect: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("veil: "), "{stderr}");
    assert!(stderr.contains(expect), "expected {expect:?} in {stderr:?}");
}

#[test]
fn committed_traces_replay_with_all_outputs_matching() {
    let traces = committed();
    assert!(!traces.is_empty(), "no traces in {TRACES}");
    for path in traces {
        let size = fs::metadata(&path).expect("metadata").len();
        assert!(size < MAX_COMMITTED, "{} is {size} bytes", path.display());
        let out = replay(&path, &[]);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{} did not replay: {}\nIf the core's behaviour changed on purpose, regenerate the \
             committed traces: cargo test -p veil-node --test node traces::regenerate -- --ignored",
            path.display(),
            text(&out.stderr)
        );
        assert!(stdout.contains("all outputs match"), "{stdout}");
    }
}

#[test]
fn truncated_trace_says_where_it_ends() {
    let scratch = Scratch::new("trace-cut");
    let original = &committed()[0];
    let bytes = fs::read(original).expect("read trace");
    let cut = scratch.path("cut.vtrace");
    fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let out = replay(&cut, &[]);
    assert_one_line_failure(&out, "is truncated after record ");
    assert!(text(&out.stderr).contains("outputs match through input"));
    // A killed node's trace is still useful: --allow-truncated accepts it.
    let out = replay(&cut, &["--allow-truncated"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("truncated after record"));
    // Cut inside the header.
    fs::write(&cut, &bytes[..20]).expect("write");
    assert_one_line_failure(&replay(&cut, &[]), "truncated inside its header");
}

#[test]
fn corrupt_trace_gets_a_clear_error() {
    let scratch = Scratch::new("trace-bad");
    let original = &committed()[0];
    let bytes = fs::read(original).expect("read trace");
    let bad = scratch.path("bad.vtrace");

    let mut magic = bytes.clone();
    magic[..8].copy_from_slice(b"NOTATRCE");
    fs::write(&bad, &magic).expect("write");
    assert_one_line_failure(&replay(&bad, &[]), "not a veil trace");

    let mut version = bytes.clone();
    version[8] = 0x7f;
    fs::write(&bad, &version).expect("write");
    assert_one_line_failure(&replay(&bad, &[]), "format version 127 is not supported");

    let header_len = u32::from_le_bytes(bytes[10..14].try_into().expect("4 bytes")) as usize;
    let first = 14 + header_len;
    // The first record's kind (its enum variant) set to one no build has.
    let mut record = bytes.clone();
    record[first + 4] = 0x66;
    fs::write(&bad, &record).expect("write");
    assert_one_line_failure(&replay(&bad, &[]), "corrupt trace: record after input 0");

    // A byte changed inside received data replays into different outputs.
    // The first `Receive` record longer than any handshake message (454
    // bytes, link spec §2.5) ends with transport data, authenticated (the
    // clear padding of a first message is not, and changes nothing); find
    // it by walking the records. Its received bytes end the record, so
    // its last byte is one of them.
    let data = records(&bytes)
        .into_iter()
        .find(|(kind, _, len)| *kind == "Receive" && *len > 500)
        .map(|(_, at, len)| at + 4 + len - 1)
        .expect("a Receive record");
    let mut payload = bytes.clone();
    payload[data] ^= 0x01;
    fs::write(&bad, &payload).expect("write");
    assert_one_line_failure(
        &replay(&bad, &[]),
        "outputs differ: first mismatch in inputs",
    );
}

#[test]
fn fresh_capture_replays_exactly() {
    let scratch = Scratch::new("trace-capture");
    let traces = capture(&scratch, 70);
    for path in &traces {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a trace holds the secret key");
        let out = replay(path, &[]);
        assert!(
            out.status.success(),
            "{} did not replay: {}",
            path.display(),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("all outputs match"));
    }
    // The recording sender queued its message, and data came over links.
    let mut counts = std::collections::BTreeMap::new();
    for (kind, ..) in records(&fs::read(&traces[1]).expect("read trace")) {
        *counts.entry(kind).or_insert(0usize) += 1;
    }
    assert!(
        counts.get("SendMessage").is_some_and(|&n| n >= 1),
        "{counts:?}"
    );
    assert!(
        counts.get("Receive").is_some_and(|&n| n >= 10),
        "{counts:?}"
    );
}

/// Every record of a trace: its kind, its offset and its body length,
/// walking the file's record framing (`len:u32 ‖ body`).
fn records(bytes: &[u8]) -> Vec<(&'static str, usize, usize)> {
    let header_len = u32::from_le_bytes(bytes[10..14].try_into().expect("4 bytes")) as usize;
    let mut at = 14 + header_len;
    let mut out = Vec::new();
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
        let body = &bytes[at + 4..at + 4 + len];
        let record = veil_mio::trace::Record::decode(body).expect("a record");
        out.push((record.kind(), at, len));
        at += 4 + len;
    }
    out
}

/// A node killed with SIGKILL leaves a trace that replays up to where it
/// stopped: the runtime flushes records before every wait.
#[test]
fn killed_node_leaves_a_replayable_prefix() {
    let scratch = Scratch::new("trace-kill");
    let mut children = Children::default();
    let mut controls = Vec::new();
    let mut bootstrap = String::new();
    let trace = scratch.path("killed.vtrace");
    for i in 0..2 {
        let data = scratch.path(&format!("n{i}"));
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data)
            .expect("data dir");
        let listen = free_addr(&format!("127.{}.0.1", 80 + i)).to_string();
        if i == 0 {
            bootstrap = listen.clone();
        }
        let control = data
            .join("control.sock")
            .to_str()
            .expect("utf-8")
            .to_string();
        let mut args = vec![
            "node".to_string(),
            "--listen".into(),
            listen,
            "--data-dir".into(),
            data.to_str().expect("utf-8").into(),
            "--bootstrap".into(),
            bootstrap.clone(),
            "--log-level".into(),
            "warn".into(),
        ];
        if i == 1 {
            args.push("--record".into());
            args.push(trace.to_str().expect("utf-8").into());
        }
        let child = Command::new(VEIL)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn veil node");
        children.push(child);
        controls.push(control);
    }
    let linked = eventually(SHORT, || {
        let out = run(&["status", "--json", "--control", &controls[1]], b"", SHORT);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (status["known_nodes"].as_u64()? >= 1).then_some(())
    });
    assert!(
        linked.is_some(),
        "the recording node never learned its peer"
    );
    children.0[1].kill().expect("SIGKILL");
    let _ = children.0[1].wait();
    let out = replay(&trace, &[]);
    assert_one_line_failure(&out, "is truncated after record ");
    let out = replay(&trace, &["--allow-truncated"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("truncated after record"));
}

/// Captures fresh traces into `tests/traces/` (run on purpose, see the
/// module doc).
#[test]
#[ignore = "rewrites the committed traces"]
fn regenerate_committed_traces() {
    let scratch = Scratch::new("trace-regenerate");
    let traces = capture(&scratch, 75);
    for old in committed() {
        fs::remove_file(old).expect("remove old trace");
    }
    for (i, path) in traces.iter().enumerate() {
        let name = format!("five-nodes-node{}.vtrace", RECORDING[i]);
        let dest = Path::new(TRACES).join(&name);
        fs::copy(path, &dest).expect("copy trace");
        let size = fs::metadata(&dest).expect("metadata").len();
        assert!(size < MAX_COMMITTED, "{name} is {size} bytes");
        println!("wrote {} ({size} bytes)", dest.display());
    }
}

struct Node {
    id: String,
    control: String,
    dir: PathBuf,
}

/// Runs `NODES` `veil node` processes on loopback (node `i` on
/// `127.{base + i}.0.1`: path selection wants a distinct /16 per hop),
/// the `RECORDING` ones with `--record`. Once everyone knows everyone,
/// three messages cross 3-relay circuits: 1 → 4, 3 → 1 and 2 → 4, so a
/// recording node is a sender, a destination and a relay. Then SIGTERM.
/// Returns the trace files, in `RECORDING` order.
fn capture(scratch: &Scratch, base: usize) -> Vec<PathBuf> {
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
        let id = text(&out.stdout).trim().to_string();
        let listen = free_addr(&format!("127.{}.0.1", base + i)).to_string();
        if i == 0 {
            bootstrap = listen.clone();
        }
        let control = data
            .join("control.sock")
            .to_str()
            .expect("utf-8")
            .to_string();
        let config = format!(
            "listen = \"{listen}\"\ndata_dir = \"{}\"\n\
             bootstrap = [\"{bootstrap}\"]\ngossip_interval_ms = 500\nextend_to_private_addresses = true\n\
             bootstrap_retry_ms = 300\nlog_level = \"info\"\n",
            data.display()
        );
        fs::write(dir.join("veil.toml"), config).expect("config");
        nodes.push(Node { id, control, dir });
    }
    let mut traces = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let config = node.dir.join("veil.toml");
        let mut args = vec![
            "node".to_string(),
            "--config".to_string(),
            config.to_str().expect("utf-8").to_string(),
        ];
        if RECORDING.contains(&i) {
            let trace = node.dir.join("node.vtrace");
            args.push("--record".into());
            args.push(trace.to_str().expect("utf-8").into());
            traces.push(trace);
        }
        let log = File::create(node.dir.join("stderr.log")).expect("log");
        let child = Command::new(VEIL)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn veil node");
        children.push(child);
    }
    let logs = || -> String {
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("--- node {i}\n{}", common::read(&n.dir.join("stderr.log"))))
            .collect()
    };
    for (i, node) in nodes.iter().enumerate() {
        let known = eventually(SHORT, || {
            let out = run(
                &["status", "--json", "--control", &node.control],
                b"",
                SHORT,
            );
            let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            (status["known_nodes"].as_u64()? >= (NODES - 1) as u64).then_some(())
        });
        assert!(
            known.is_some(),
            "node {i} did not learn the network\n{}",
            logs()
        );
    }
    for (from, to) in [(1usize, 4usize), (3, 1), (2, 4)] {
        let message = format!("traced message from node {from} to node {to}");
        let sent = run(
            &["send", &nodes[to].id, "--control", &nodes[from].control],
            message.as_bytes(),
            Duration::from_secs(90),
        );
        assert!(
            sent.status.success(),
            "send {from} -> {to} failed: {}\n{}",
            text(&sent.stderr),
            logs()
        );
    }
    for child in &children.0 {
        sigterm(child);
    }
    for i in 0..NODES {
        let status = wait(&mut children.0[i], SHORT);
        assert!(
            status.is_some_and(|s| s.success()),
            "node {i} did not exit cleanly\n{}",
            logs()
        );
    }
    for &i in &RECORDING {
        assert!(
            common::read(&nodes[i].dir.join("stderr.log")).contains("secret identity key"),
            "the CLI warns that a trace holds the key"
        );
    }
    traces
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}
