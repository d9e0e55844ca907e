//! The firmware node on QEMU's emulated Ethernet, in a network of Linux
//! nodes: the `targets/firmware-node` image (one veil node on a LAN9118,
//! Cortex-M4) runs under `qemu-system-arm -M mps2-an386` with its NIC on
//! a TAP device, beside real `veil node` processes.
//!
//! ```text
//!  netns veil-fw-<pid>
//!  QEMU: firmware 10.202.0.2/24 ── LAN9118 ── TAP vfw<pid> ── 10.202.0.1/24 (kernel, its router)
//!  lo: 10.1.0.1 … 10.5.0.1: `veil node` i on 10.(i+1).0.1:7000
//!      node 0: the firmware's bootstrap node and the collector of its messages
//! ```
//!
//! It checks, with `veil listen` on the Linux side and the image's console
//! (semihosting) on the other:
//! - the firmware joins: links to its bootstrap node, learns descriptors,
//!   builds a circuit of 3 Linux relays to the collector;
//! - its messages reach the collector, each exactly once;
//! - a message from a Linux node (its own circuit to the firmware) reaches
//!   the firmware exactly once, and the firmware's echo comes back;
//! - a Linux relay on the firmware's circuit is killed, and both
//!   directions still work afterwards, still exactly once.
//!
//! A second test puts the image behind QEMU's user-mode network (slirp,
//! a NAT: `-nic user,…,net=10.202.0.0/24`) instead of the TAP device.
//! Nobody can dial it there: its peers' dial-backs fail, it lists
//! introducers in its descriptor, and a Linux node reaches it through one
//! (issue 19).
//!
//! It needs root, `/dev/net/tun`, iproute2, `qemu-system-arm` and the
//! `thumbv7em-none-eabihf` target, and fails with one line naming what is
//! missing. The image is `$VEIL_FIRMWARE_NODE_ELF` if set (`.ci/firmware-node`
//! builds it), else this test builds it (release, about a minute). With
//! `$VEIL_FIRMWARE_NODE_CONSOLE` set, the image's console is copied there at
//! the end (`.ci/firmware-node` reads its stack high-water mark).

use crate::common;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::{listened, logs, require_privileges, spawn_std_node, Netns, StdNode};
use common::{eventually, read, Children, Scratch};

/// The collector (bootstrap) and four relays: after one relay is killed,
/// three remain for a 3-relay path either way.
const STD_NODES: usize = 5;
/// The image's addresses (`targets/firmware-node/src/main.rs`).
const FIRMWARE_IP: &str = "10.202.0.2";
const FIRMWARE_MAC: &str = "02:00:5e:00:53:12";
const ROUTER_IP: &str = "10.202.0.1/24";
/// The std nodes gossip on the default interval, as the firmware does: a
/// node cuts off a peer that gossips far faster than its own interval.
const GOSSIP_INTERVAL_MS: u64 = 30_000;
/// Every wait is bounded by this; nothing asserts on how long it took.
const LIMIT: Duration = Duration::from_secs(120);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails with one line when a tool the test needs is missing.
fn require_tools() {
    let qemu = Command::new("qemu-system-arm").arg("--version").output();
    assert!(
        qemu.is_ok_and(|o| o.status.success()),
        "qemu-system-arm is missing: apt-get install -y qemu-system-arm"
    );
}

/// The image: `$VEIL_FIRMWARE_NODE_ELF`, or built here.
fn firmware_image() -> PathBuf {
    if let Some(elf) = std::env::var_os("VEIL_FIRMWARE_NODE_ELF") {
        let elf = PathBuf::from(elf);
        assert!(
            elf.exists(),
            "VEIL_FIRMWARE_NODE_ELF={} does not exist",
            elf.display()
        );
        return elf;
    }
    let root = workspace_root();
    let target_dir = root.join("target/firmware-node");
    let out = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "--quiet"])
        .current_dir(root.join("targets/firmware-node"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "the firmware image did not build (rustup target add thumbv7em-none-eabihf?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join("thumbv7em-none-eabihf/release/veil-firmware-node")
}

/// The image's console so far, line by line.
fn console_lines(path: &Path) -> Vec<String> {
    read(path).lines().map(str::to_owned).collect()
}

/// The numbers `n` of `firmware message <n>` that `veil listen` printed.
fn firmware_messages(listen: &Path) -> Vec<u64> {
    listened(listen)
        .iter()
        .filter_map(|line| {
            let data = hex::decode(line["data_hex"].as_str()?).ok()?;
            let text = String::from_utf8(data).ok()?;
            text.strip_prefix("firmware message ")?.parse().ok()
        })
        .collect()
}

/// How often each value occurs.
fn counts<T: std::hash::Hash + Eq + Clone>(items: &[T]) -> HashMap<T, usize> {
    let mut counts = HashMap::new();
    for item in items {
        *counts.entry(item.clone()).or_insert(0) += 1;
    }
    counts
}

/// The relays (not the collector) of the image's latest circuit to
/// `collector`, from its console.
fn circuit_relays(console: &[String], collector: &str) -> Vec<String> {
    let ready = format!("circuit ready to {collector}");
    let Some(at) = console.iter().rposition(|l| l.starts_with(&ready)) else {
        return Vec::new();
    };
    console[at + 1..]
        .iter()
        .map_while(|l| l.strip_prefix("  hop "))
        .filter(|hop| *hop != collector)
        .map(str::to_owned)
        .collect()
}

/// Sends `text` from `node` to the firmware with `veil send` (exit 0 once
/// the firmware acknowledged it); the sender's own `veil listen` gets the
/// firmware's echo. Until gossip (every 30 s) brings the sender the
/// firmware's descriptor, `veil send` refuses at once: it is tried again.
fn send_to_firmware(ns: &Netns, node: &StdNode, firmware: &str, text: &str) -> Result<(), String> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let mut send = ns
            .veil(&[
                "send",
                firmware,
                "--control",
                &node.control,
                "--timeout",
                "90",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn veil send");
        send.stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
        let out = send.wait_with_output().expect("veil send output");
        if out.status.success() {
            return Ok(());
        }
        let error = String::from_utf8_lossy(&out.stderr).into_owned();
        if !error.contains("is not in this node's table") || Instant::now() > deadline {
            return Err(error);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A `veil listen --json` on `node`, writing to `path`.
fn listen(ns: &Netns, node: &StdNode, path: &Path, children: &mut Children) {
    let child = ns
        .veil(&["listen", "--json", "--control", &node.control])
        .stdin(Stdio::null())
        .stdout(File::create(path).expect("listen output"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn veil listen");
    children.push(child);
}

/// The texts of the echoes `veil listen` printed that came from `from`.
fn echoes(listen: &Path, from: &str) -> Vec<String> {
    listened(listen)
        .iter()
        .filter(|line| line["from"] == from)
        .filter_map(|line| {
            let data = hex::decode(line["data_hex"].as_str()?).ok()?;
            String::from_utf8(data).ok()
        })
        .collect()
}

/// How QEMU connects the image's LAN9118.
#[derive(Clone, Copy)]
enum Nic {
    /// A TAP device in the namespace, the kernel as the image's router: the
    /// Linux nodes can dial the image.
    Tap,
    /// QEMU's user-mode network (slirp): the image's connections leave
    /// through QEMU's NAT (10.202.0.0/24, QEMU itself at 10.202.0.1), and
    /// nothing can dial the image.
    UserNat,
}

/// The Linux nodes, the collector's `veil listen` and QEMU with the image,
/// in a namespace of their own. Fields drop in order: the processes are
/// killed before the namespace goes.
struct Network {
    children: Children,
    nodes: Vec<StdNode>,
    collector_hex: String,
    /// The collector's `veil listen` output.
    collected: PathBuf,
    console: PathBuf,
    qemu: usize,
    /// The TAP device, for [`Nic::Tap`].
    tap: Option<String>,
    /// The image's node id, in hex, from its console.
    firmware: String,
    ns: Netns,
    scratch: Scratch,
}

impl Network {
    /// Starts the Linux nodes and the image, and waits for it to boot.
    fn start(nic: Nic) -> Network {
        require_privileges("firmware_interop");
        require_tools();
        let elf = firmware_image();
        let pid = std::process::id();
        let tag = match nic {
            Nic::Tap => "t",
            Nic::UserNat => "n",
        };
        let ns = Netns::create(format!("veil-fw{tag}-{pid}"));
        let scratch = Scratch::new(&format!("firmware-{tag}"));
        let mut children = Children::default();

        let tap = matches!(nic, Nic::Tap).then(|| format!("vfw{tag}{pid}"));
        let nic_arg = match &tap {
            Some(tap) => {
                ns.ip(&["tuntap", "add", "dev", tap, "mode", "tap"]);
                ns.ip(&["addr", "add", ROUTER_IP, "dev", tap]);
                ns.ip(&["link", "set", tap, "up"]);
                format!("tap,ifname={tap},script=no,downscript=no,model=lan9118")
            }
            None => "user,model=lan9118,net=10.202.0.0/24,host=10.202.0.1".to_owned(),
        };

        let bootstrap = format!("10.1.0.1:{}", common::netns::PORT);
        let nodes: Vec<StdNode> = (0..STD_NODES)
            .map(|i| {
                spawn_std_node(
                    &ns,
                    &scratch,
                    i,
                    &bootstrap,
                    GOSSIP_INTERVAL_MS,
                    &mut children,
                )
            })
            .collect();
        let collector_hex = hex::encode(nodes[0].id.as_bytes());
        let collected = scratch.path("collector.json");
        listen(&ns, &nodes[0], &collected, &mut children);

        // QEMU in the namespace; its working directory gets the defmt log.
        let console = scratch.path("console.txt");
        let qemu_dir = scratch.path("qemu");
        fs::create_dir_all(&qemu_dir).expect("qemu dir");
        let qemu = Command::new("ip")
            .args(["netns", "exec", &ns.0, "qemu-system-arm"])
            .args(["-machine", "mps2-an386", "-cpu", "cortex-m4", "-nographic"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .args(["-nic", &nic_arg])
            .arg("-kernel")
            .arg(&elf)
            .current_dir(&qemu_dir)
            .stdin(Stdio::null())
            .stdout(File::create(&console).expect("console"))
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn qemu-system-arm");
        let qemu = children.push(qemu);
        let mut network = Network {
            children,
            nodes,
            collector_hex,
            collected,
            console,
            qemu,
            tap,
            firmware: String::new(),
            ns,
            scratch,
        };
        network.firmware = eventually(Duration::from_secs(30), || {
            console_lines(&network.console).iter().find_map(|l| {
                l.strip_prefix("veil-firmware-node ")
                    .and_then(|rest| rest.split(' ').next())
                    .map(str::to_owned)
            })
        })
        .unwrap_or_else(|| panic!("the firmware did not boot\n{}", network.report()));
        assert_eq!(
            network.firmware.len(),
            64,
            "the console names the node id in hex"
        );
        network
    }

    /// The image's console and every Linux node's log, for failures.
    fn report(&self) -> String {
        format!(
            "--- firmware console\n{}\n{}",
            read(&self.console),
            logs(&self.nodes)
        )
    }

    /// Waits until firmware message `n` reached the collector and the
    /// image saw it acknowledged.
    fn delivered(&self, n: u64) -> bool {
        let acknowledged = format!("acknowledged {n}");
        eventually(LIMIT, || {
            (console_lines(&self.console).contains(&acknowledged)
                && firmware_messages(&self.collected).contains(&n))
            .then_some(())
        })
        .is_some()
    }

    /// How many times the image's console says it received `text`.
    fn received(&self, text: &str) -> usize {
        let wanted = format!("bytes: {text}");
        console_lines(&self.console)
            .iter()
            .filter(|l| l.starts_with("received ") && l.ends_with(&wanted))
            .count()
    }

    /// Sends `text` from `sender` to the image, and waits for its echo in
    /// `echoed` (the sender's `veil listen`).
    fn round_trip(&self, sender: &StdNode, echoed: &Path, text: &str) {
        send_to_firmware(&self.ns, sender, &self.firmware, text)
            .unwrap_or_else(|e| panic!("veil send to the firmware failed: {e}\n{}", self.report()));
        let echo = eventually(LIMIT, || {
            echoes(echoed, &self.firmware)
                .iter()
                .any(|e| *e == format!("echo: {text}"))
                .then_some(())
        });
        assert!(
            echo.is_some(),
            "the firmware's echo of {text:?} did not come back\n{}",
            self.report()
        );
        assert_eq!(
            self.received(text),
            1,
            "delivered to the firmware exactly once\n{}",
            self.report()
        );
    }

    /// No firmware message reached the collector twice; QEMU still runs
    /// and the image reported no failure.
    fn check_end(&mut self) {
        let delivered = firmware_messages(&self.collected);
        let twice: Vec<_> = counts(&delivered)
            .into_iter()
            .filter(|&(_, c)| c > 1)
            .collect();
        assert!(
            twice.is_empty(),
            "delivered twice: {twice:?} of {delivered:?}"
        );
        assert!(
            self.children.0[self.qemu]
                .try_wait()
                .expect("qemu status")
                .is_none(),
            "QEMU stopped running the firmware\n{}",
            self.report()
        );
        assert!(
            !read(&self.console).contains("FAIL"),
            "the firmware reported a failure\n{}",
            self.report()
        );
    }
}

#[test]
fn the_firmware_node_on_qemu_ethernet_joins_a_network_of_linux_nodes() {
    let started = Instant::now();
    let mut net = Network::start(Nic::Tap);

    // It joins and reports to the collector through 3 Linux relays.
    assert!(
        net.delivered(1),
        "firmware message 1 was not delivered and acknowledged\n{}",
        net.report()
    );
    let first = circuit_relays(&console_lines(&net.console), &net.collector_hex);
    assert_eq!(first.len(), 3, "a circuit of 3 relays: {first:?}");
    let relay_ids: Vec<String> = net.nodes[1..]
        .iter()
        .map(|n| hex::encode(n.id.as_bytes()))
        .collect();
    assert!(
        first.iter().all(|hop| relay_ids.contains(hop)),
        "every relay of the circuit is a Linux relay: {first:?}"
    );
    // The frames went over the TAP device: the kernel resolved the
    // firmware's address by ARP.
    let tap = net.tap.clone().expect("a TAP network");
    let neighbours = net.ns.ip_output(&["neigh", "show", "dev", &tap]);
    assert!(
        neighbours
            .lines()
            .any(|l| l.starts_with(&format!("{FIRMWARE_IP} ")) && l.contains(FIRMWARE_MAC)),
        "the kernel did not learn {FIRMWARE_IP} at {FIRMWARE_MAC}: {neighbours:?}"
    );
    eprintln!("firmware -> Linux delivered after {:?}", started.elapsed());

    // A Linux node (not the collector, and not on the firmware's circuit,
    // so that it survives the kill below) builds its own circuit to the
    // firmware; the firmware prints the message and echoes it back.
    let sender = net.nodes[1..]
        .iter()
        .position(|n| !first.contains(&hex::encode(n.id.as_bytes())))
        .map(|i| i + 1)
        .expect("4 relays, 3 on the circuit");
    let echoed = net.scratch.path("sender.json");
    listen(&net.ns, &net.nodes[sender], &echoed, &mut net.children);
    let hello = "hello firmware, from a Linux node (1)";
    net.round_trip(&net.nodes[sender], &echoed, hello);
    eprintln!("Linux -> firmware and echo after {:?}", started.elapsed());

    // Kill a relay of the firmware's circuit: its first hop, whose link
    // the firmware holds itself.
    let victim_hex = first[0].clone();
    let victim = net
        .nodes
        .iter()
        .find(|n| hex::encode(n.id.as_bytes()) == victim_hex)
        .expect("the victim is a Linux node")
        .child;
    let _ = net.children.0[victim].kill();
    let _ = net.children.0[victim].wait();
    let before = firmware_messages(&net.collected)
        .into_iter()
        .max()
        .unwrap_or(0);
    eprintln!("killed relay {victim_hex} after {:?}", started.elapsed());

    // Both directions still work: two more firmware messages arrive over a
    // circuit without the victim, and a Linux node reaches the firmware.
    let sent_before = console_lines(&net.console)
        .iter()
        .filter(|l| l.starts_with("sent "))
        .count() as u64;
    assert!(
        net.delivered(sent_before + 1) && net.delivered(sent_before + 2),
        "the firmware's messages stopped after relay {victim_hex} was killed\n{}",
        net.report()
    );
    assert!(firmware_messages(&net.collected)
        .iter()
        .any(|&n| n > before));
    let later = circuit_relays(&console_lines(&net.console), &net.collector_hex);
    assert!(
        !later.contains(&victim_hex),
        "the new circuit avoids the killed relay: {later:?}"
    );
    let hello_again = "hello firmware, from a Linux node (2)";
    net.round_trip(&net.nodes[sender], &echoed, hello_again);

    // Exactly once, all along.
    assert_eq!(net.received(hello), 1, "{}", net.report());
    let echo_count = echoes(&echoed, &net.firmware).len();
    assert_eq!(echo_count, 2, "one echo per message\n{}", net.report());
    net.check_end();
    eprintln!("done after {:?}", started.elapsed());
    if let Some(copy) = std::env::var_os("VEIL_FIRMWARE_NODE_CONSOLE") {
        fs::copy(&net.console, copy).expect("copy the console");
    }
}

/// Issue 19: behind QEMU's user-mode NAT nobody can dial the image. Its
/// peers' dial-backs fail, it lists introducers, and a Linux node still
/// reaches it, through one of them.
#[test]
fn the_firmware_node_behind_qemu_nat_is_reached_through_introducers() {
    let started = Instant::now();
    let mut net = Network::start(Nic::UserNat);
    assert!(
        net.delivered(1),
        "firmware message 1 did not leave through the NAT\n{}",
        net.report()
    );
    let unreachable = eventually(LIMIT, || {
        let console = console_lines(&net.console);
        let at = console
            .iter()
            .rposition(|l| l == "reachability: unreachable")?;
        let introducers: Vec<String> = console[at + 1..]
            .iter()
            .map_while(|l| l.strip_prefix("  introducer "))
            .map(str::to_owned)
            .collect();
        (!introducers.is_empty()).then_some(introducers)
    })
    .unwrap_or_else(|| {
        panic!(
            "the firmware did not find itself unreachable with introducers\n{}",
            net.report()
        )
    });
    eprintln!(
        "unreachable, introduced by {unreachable:?}, after {:?}",
        started.elapsed()
    );
    // A Linux node that is not an introducer sends to the firmware.
    let sender = (1..STD_NODES)
        .rev()
        .find(|&i| !unreachable.contains(&hex::encode(net.nodes[i].id.as_bytes())))
        .expect("at most 3 introducers of 4 relays");
    let echoed = net.scratch.path("sender.json");
    listen(&net.ns, &net.nodes[sender], &echoed, &mut net.children);
    net.round_trip(
        &net.nodes[sender],
        &echoed,
        "hello firmware behind NAT, from a Linux node",
    );
    // The console never claimed it reachable.
    assert!(
        !console_lines(&net.console).contains(&"reachability: reachable".to_owned()),
        "{}",
        net.report()
    );
    net.check_end();
    eprintln!("done after {:?}", started.elapsed());
}
