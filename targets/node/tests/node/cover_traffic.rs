//! Cover traffic between real `veil node` processes (relay spec §8.2):
//! a node with `anonymity = "strict"` and a budget smaller than its cover
//! asks for sends loop and drop cover over its circuit, `veil status`
//! counts it, the charge stays within 5 % of the budget once the saved
//! burst is spent, and the cover is on the wire (the node's link bytes
//! grow by at least a cell per cover cell). A node with `anonymity = "off"`
//! in the same network sends none.
//!
//! Six nodes on loopback, each on its own `127.N.0.1` (path selection
//! never puts two hops of a circuit in one /16).

use crate::common;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{eventually, free_addr, keygen_into, Children, Scratch};
use veil_core::identity::NodeId;
use veil_node::control_address::Endpoint;
use veil_node::control_client::ControlClient;
use veil_node::status::Status;

const NODES: usize = 6;
const COVERED: usize = 1;
const PLAIN: usize = 3;
const DESTINATION: usize = 2;
/// One loop cell's charge a second (two link crossings of 1,562 B): the
/// strict preset asks for a loop a second and a drop every two, 3,905 B/s.
const BUDGET: u64 = 1562;
/// The saved burst (30 s of budget) is spent in about 20 s at the excess
/// the preset asks for; the measurement starts after this.
const DRAIN: Duration = Duration::from_secs(30);
const WINDOW: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_secs(30);

struct Node {
    id: NodeId,
    control: Endpoint,
    dir: PathBuf,
}

fn status(node: &Node) -> Option<Status> {
    ControlClient::connect(&node.control, Some(SHORT))
        .ok()?
        .status()
        .ok()
}

fn logs(nodes: &[Node]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("--- node {i}\n{}", common::read(&n.dir.join("stderr.log"))))
        .collect()
}

fn cover_cells(s: &Status) -> u64 {
    s.cover.loop_cells + s.cover.drop_cells + s.cover.front_cells
}

#[test]
fn cover_is_on_the_wire_counted_in_status_and_held_to_its_budget() {
    let net = 60;
    let scratch = Scratch::new("cover-traffic");
    let mut children = Children::default();
    let mut nodes = Vec::new();
    let mut bootstrap = String::new();
    for i in 0..NODES {
        let dir = scratch.path(&format!("n{i}"));
        let data = dir.join("data");
        let id = NodeId::from_hex(&keygen_into(&data)).expect("node id");
        let listen = free_addr(&format!("127.{}.0.1", net + i)).to_string();
        if i == 0 {
            bootstrap = listen.clone();
        }
        let anonymity = match i {
            COVERED => format!("anonymity = \"strict\"\ncover_budget = {BUDGET}\n"),
            // The strict preset's extra relay needs more nodes than this
            // network has; the others only relay.
            _ => "anonymity = \"off\"\n".to_string(),
        };
        let config = format!(
            "listen = \"{listen}\"\ndata_dir = \"{}\"\n\
             bootstrap = [\"{bootstrap}\"]\ngossip_interval_ms = 200\nextend_to_private_addresses = true\n\
             bootstrap_retry_ms = 300\nlog_level = \"info\"\npath_relays = 3\n\
             extra_path_relays = 0\n{anonymity}",
            data.display()
        );
        fs::write(dir.join("veil.toml"), config).expect("config");
        children.push(common::spawn_node(&dir));
        nodes.push(Node {
            id,
            control: Endpoint::of_node(&data, None),
            dir,
        });
    }
    for (i, node) in nodes.iter().enumerate() {
        let known = eventually(SHORT, || {
            let k = status(node)?.known_nodes;
            (k >= NODES - 1).then_some(k)
        });
        assert!(
            known.is_some(),
            "node {i} did not learn the network\n{}",
            logs(&nodes)
        );
    }
    // Both clients build a circuit to the destination.
    for client in [COVERED, PLAIN] {
        let mut control =
            ControlClient::connect(&nodes[client].control, Some(Duration::from_secs(90)))
                .expect("control");
        let sent = control.send(nodes[DESTINATION].id, b"a circuit, please");
        assert!(sent.is_ok(), "{sent:?}\n{}", logs(&nodes));
    }
    let start = Instant::now();
    std::thread::sleep(DRAIN);
    // The node takes its two snapshots somewhere inside the two status
    // calls, so its own interval lies between `shortest` and `longest`.
    let before_asked = Instant::now();
    let before = status(&nodes[COVERED]).expect("status");
    let began = Instant::now();
    std::thread::sleep(WINDOW);
    let after_asked = Instant::now();
    let after = status(&nodes[COVERED]).expect("status");
    let ended = Instant::now();
    let seconds = ended.duration_since(began).as_secs_f64();
    let longest = ended.duration_since(before_asked).as_secs_f64();
    let shortest = after_asked.duration_since(began).as_secs_f64();
    let plain = status(&nodes[PLAIN]).expect("status");

    assert_eq!(
        after.anonymity, "custom",
        "strict with its budget overridden"
    );
    assert_eq!(after.cover.budget, BUDGET as u32);
    let cells = cover_cells(&after) - cover_cells(&before);
    let loops = after.cover.loop_cells - before.cover.loop_cells;
    let drops = after.cover.drop_cells - before.cover.drop_cells;
    let charged = after.cover.bytes_charged - before.cover.bytes_charged;
    let rate = charged as f64 / seconds;
    let wire = after.bytes_sent - before.bytes_sent;
    println!(
        "{seconds:.1} s from {:.0} s after the first message: {loops} loop, {drops} drop cells; \
         {charged} B charged ({rate:.0} B/s of {BUDGET}); {wire} B sent on links; {} held back",
        began.duration_since(start).as_secs_f64(),
        after.cover.over_budget - before.cover.over_budget
    );
    assert!(loops > 0 && drops > 0, "{loops} loop, {drops} drop cells");
    assert!(
        after.cover.loop_cells_returned + 4 >= after.cover.loop_cells + after.cover.front_cells,
        "loops came back: {:?}",
        after.cover
    );
    // Within 5 % of the budget over the window (the rate asked is 2.5
    // times the budget, so the budget binds: without it, about 117 KB
    // would be charged). A token bucket charges whole cells: over any
    // interval it charges at most the budget's bytes plus what it held at
    // the start. The drain keeps that under a cell (1,562 B, the same as
    // the budget per second here), except after a moment with no cover
    // sent (no ready circuit while one is rebuilt, a loaded machine), when
    // the bucket saves: one CI run on a loaded machine saw 33 cells where
    // 32.5 were allowed. Two cells of slack cover that.
    let most = BUDGET as f64 * longest * 1.05 + 2.0 * BUDGET as f64;
    assert!(
        charged as f64 <= most,
        "{charged} B charged in {shortest:.1}..{longest:.1} s against a budget of {BUDGET} B/s \
         (at most {most:.0} B)"
    );
    assert!(
        charged as f64 >= BUDGET as f64 * shortest * 0.8,
        "{rate:.0} B/s charged: the budget is not being used"
    );
    assert!(after.cover.over_budget > before.cover.over_budget);
    // On the wire: every cover cell is at least a cell's 514 bytes.
    assert!(wire >= cells * 514, "{wire} B sent for {cells} cover cells");
    // The node with anonymity off sent none.
    assert_eq!(plain.anonymity, "off");
    assert_eq!(cover_cells(&plain), 0);
    assert_eq!(plain.cover.bytes_charged, 0);
}
