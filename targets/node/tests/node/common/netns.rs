//! A network namespace of real `veil node` processes for the tests that
//! put a no_std node on a TAP device beside them (`smoltcp_interop`, the
//! smoltcp node in the test process; `firmware_interop`, the firmware image
//! under QEMU). Every std node has an address in its own /16 on the
//! namespace's loopback (`10.(i+1).0.1`), because path selection never puts
//! two hops of a circuit in one /16.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use veil_core::identity::NodeId;

use super::{keygen_into, read, Children, Scratch, VEIL};

/// The port every std node listens on.
pub const PORT: u16 = 7_000;

/// Runs `ip args…` and panics with its stderr if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `ip`: {e}; install iproute2 (apt-get install iproute2)")
    });
    assert!(
        out.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Fails, with what to do, when the test cannot build its network.
pub fn require_privileges(test: &str) {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        euid, "0",
        "{test} must run as root: it creates a network namespace and a TAP device"
    );
    assert!(
        Path::new("/dev/net/tun").exists(),
        "/dev/net/tun is missing: TAP devices are needed (load the `tun` module)"
    );
    let ok = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the `ip` command is missing: install iproute2 (apt-get install iproute2)"
    );
}

/// A network namespace, deleted on drop (after the processes in it are
/// killed: declare it before their [`Children`]).
pub struct Netns(pub String);

impl Netns {
    pub fn create(name: String) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns(name);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// What `ip args…` prints in the namespace.
    pub fn ip_output(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", self.0.as_str()])
            .args(args)
            .output()
            .expect("run ip");
        assert!(out.status.success(), "`ip {}` failed", args.join(" "));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `veil args…` inside the namespace (`ip netns exec` execs `veil`, so
    /// the child's pid is veil's own).
    pub fn veil(&self, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.0, VEIL]).args(args);
        command
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// One `veil node` process in the namespace.
pub struct StdNode {
    pub id: NodeId,
    pub control: String,
    pub dir: PathBuf,
    /// Its index in the [`Children`] it was pushed to.
    pub child: usize,
}

/// Starts std node `i` on `10.(i+1).0.1`; it bootstraps from `bootstrap`
/// and gossips every `gossip_interval_ms`. A peer that gossips much faster
/// than a node's own interval runs out of its descriptor quota and is cut
/// off (relay spec §2.1), so a test with a node on the default interval (30
/// s) keeps the std nodes on it too.
pub fn spawn_std_node(
    ns: &Netns,
    scratch: &Scratch,
    i: usize,
    bootstrap: &str,
    gossip_interval_ms: u64,
    children: &mut Children,
) -> StdNode {
    let dir = scratch.path(&format!("n{i}"));
    let data = dir.join("data");
    let hex_id = keygen_into(&data);
    let id = NodeId(
        hex::decode(&hex_id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .expect("keygen prints a 32-byte hex id"),
    );
    let ip = format!("10.{}.0.1", i + 1);
    ns.ip(&["addr", "add", &format!("{ip}/32"), "dev", "lo"]);
    // The control socket is a Unix socket in the data directory: the
    // file system is shared with the namespace.
    let control = data
        .join("control.sock")
        .to_str()
        .expect("utf-8")
        .to_string();
    let config = format!(
        "listen = \"{ip}:{PORT}\"\ndata_dir = \"{}\"\n\
         bootstrap = [\"{bootstrap}\"]\ngossip_interval_ms = {gossip_interval_ms}\nextend_to_private_addresses = true\n\
         bootstrap_retry_ms = 300\nlog_level = \"info\"\n",
        data.display()
    );
    fs::write(dir.join("veil.toml"), config).expect("config");
    let child = ns
        .veil(&[
            "node",
            "--config",
            dir.join("veil.toml").to_str().expect("utf-8"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.join("stderr.log")).expect("log"))
        .spawn()
        .expect("spawn veil node");
    let child = children.push(child);
    StdNode {
        id,
        control,
        dir,
        child,
    }
}

pub fn logs(nodes: &[StdNode]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("--- std node {i}\n{}", read(&n.dir.join("stderr.log"))))
        .collect()
}

/// The JSON lines `veil listen --json` has written to `path` so far.
pub fn listened(path: &Path) -> Vec<serde_json::Value> {
    read(path)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line from veil listen"))
        .collect()
}
