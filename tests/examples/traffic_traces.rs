//! Traffic-analysis traces (issue 13): what a passive observer next to a
//! client sees of its visits to a destination, for classifiers to attack.
//!
//! Each of `--classes` "sites" is a template of resources (a request of
//! some hundreds of bytes, a response of up to 16 KiB, a think time before
//! the next), drawn once from the class number. A visit of a site follows
//! its template with noise drawn from the seed: sizes scaled by 0.8-1.2,
//! think times by 0.5-1.5, one resource in ten left out. For each seed a
//! fresh network of 8 nodes boots; node 1 (the client) then visits every
//! site once, in an order drawn from the seed, through its circuits to
//! node 2 (the destination), which answers each request with its response
//! over the same circuit (an anonymous reply). Every link message the
//! client sends or receives during a visit is recorded: time since the
//! visit began, direction, length. That is what its ISP, or its guard,
//! sees. So is every link message of the destination, the other end of
//! the circuit, for flow correlation, and of the middle relay of the
//! client's circuit, a relay watching the circuits it carries.
//!
//! Output: CSV `class,seed,side,time_us,direction,bytes` (side `client`,
//! `destination` or `middle`; direction +1 out of that node, -1 into it),
//! for `scripts/traffic_analysis.py`.
//!
//! Run: `cargo run --release -p veil-sim --example traffic_traces --
//! --classes 20 --seeds 100 --out traces.csv [--anonymity off|default|strict]
//! [--link-padding full] [--message-padding powers-of-two] [--cover-budget B
//! --loop-ms MS --drop-ms MS --front-cells N --front-window-ms LOW:HIGH]
//! [--shape-ms MS --shape-linger-ms MS --shape-bucket CELLS] [--mixing-ms MS]
//! [--second-layer-guards N]`: a preset
//! first, then the options that change it.

use std::fmt::Write as _;
use std::io::Write as _;

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use veil_core::link::LinkPadding;
use veil_core::message::Sender;
use veil_core::node::{AddBootstrap, Anonymity, MessagePadding, NodeConfig, Reply};
use veil_core::time::Duration;
use veil_sim::Sim;

const NODES: usize = 8;
const CLIENT: usize = 1;
const DESTINATION: usize = 2;
const UNIX_AT_ZERO: u64 = 1_800_000_000;
/// The most a response may be: one message of the simulator's nodes.
const MAX_RESPONSE: usize = veil_sim::SIM_MSG;
/// How long a visit may wait for one response before it gives up on it.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);

struct Options {
    classes: u64,
    seeds: u64,
    out: String,
    /// Every node's configuration: a preset's defences, then the options.
    config: NodeConfig,
}

/// One resource of a site.
#[derive(Clone, Copy)]
struct Resource {
    request: usize,
    response: usize,
    think_ms: u64,
}

fn main() {
    match options().and_then(run) {
        Ok(()) => {}
        Err(reason) => {
            eprintln!("traffic_traces: {reason}");
            std::process::exit(1);
        }
    }
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        classes: 20,
        seeds: 100,
        out: "traces.csv".into(),
        config: NodeConfig {
            unix_time_at_zero: UNIX_AT_ZERO,
            gossip_interval: Duration::from_secs(2),
            ..NodeConfig::default()
        },
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--classes" => o.classes = value()?.parse().map_err(|e| format!("--classes: {e}"))?,
            "--seeds" => o.seeds = value()?.parse().map_err(|e| format!("--seeds: {e}"))?,
            "--out" => o.out = value()?,
            "--link-padding" => {
                o.config.link.padding = match value()?.as_str() {
                    "none" | "off" => LinkPadding::NONE,
                    "full" => LinkPadding::FULL,
                    "reduced" => LinkPadding::REDUCED,
                    other => {
                        return Err(format!("--link-padding {other}: use none, full or reduced"))
                    }
                }
            }
            "--message-padding" => {
                o.config.message_padding = match value()?.as_str() {
                    "none" => MessagePadding::None,
                    "powers-of-two" => MessagePadding::PowersOfTwo,
                    other => {
                        return Err(format!(
                            "--message-padding {other}: use none or powers-of-two"
                        ))
                    }
                }
            }
            "--cover-budget" => o.config.cover.budget = number(&arg, &value()?)? as u32,
            "--loop-ms" => {
                o.config.cover.loop_interval = Duration::from_millis(number(&arg, &value()?)?)
            }
            "--drop-ms" => {
                o.config.cover.drop_interval = Duration::from_millis(number(&arg, &value()?)?)
            }
            "--anonymity" => {
                let preset: Anonymity =
                    value()?.parse().map_err(|e| format!("--anonymity: {e}"))?;
                o.config = preset.apply(o.config);
            }
            "--mixing-ms" => {
                o.config.mixing_delay_mean = Duration::from_millis(number(&arg, &value()?)?)
            }
            "--second-layer-guards" => {
                o.config.second_layer_guards = number(&arg, &value()?)? as usize
            }
            "--shape-ms" => {
                o.config.shaping.interval = Duration::from_millis(number(&arg, &value()?)?)
            }
            "--shape-linger-ms" => {
                o.config.shaping.linger = Duration::from_millis(number(&arg, &value()?)?)
            }
            "--shape-bucket" => o.config.shaping.bucket = number(&arg, &value()?)? as u16,
            "--front-cells" => o.config.cover.front_cells = number(&arg, &value()?)? as u16,
            "--front-window-ms" => {
                let v = value()?;
                let (low, high) = v
                    .split_once(':')
                    .ok_or(format!("--front-window-ms {v}: use LOW:HIGH"))?;
                o.config.cover.front_window_min = Duration::from_millis(number(&arg, low)?);
                o.config.cover.front_window_max = Duration::from_millis(number(&arg, high)?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.classes == 0 || o.seeds == 0 {
        return Err("--classes and --seeds must be at least 1".into());
    }
    Ok(o)
}

fn number(arg: &str, value: &str) -> Result<u64, String> {
    value.parse().map_err(|e| format!("{arg} {value}: {e}"))
}

/// A site's template, the same for every seed.
fn site(class: u64) -> Vec<Resource> {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5173_0000 + class);
    let count = 3 + (rng.next_u32() % 10) as usize;
    (0..count)
        .map(|_| Resource {
            request: 100 + (rng.next_u32() % 700) as usize,
            // Log-uniform from 512 B to the largest message.
            response: (512.0 * (MAX_RESPONSE as f64 / 512.0).powf(unit(&mut rng))) as usize,
            think_ms: 20 + u64::from(rng.next_u32() % 800),
        })
        .collect()
}

/// One visit of a site: its template with the seed's noise.
fn visit(template: &[Resource], rng: &mut ChaCha20Rng) -> Vec<Resource> {
    let mut resources = Vec::with_capacity(template.len());
    for r in template {
        if rng.next_u32().is_multiple_of(10) {
            continue;
        }
        resources.push(Resource {
            request: ((r.request as f64) * (0.8 + 0.4 * unit(rng))) as usize,
            response: (((r.response as f64) * (0.8 + 0.4 * unit(rng))) as usize).min(MAX_RESPONSE),
            think_ms: ((r.think_ms as f64) * (0.5 + unit(rng))) as u64,
        });
    }
    resources
}

fn unit(rng: &mut ChaCha20Rng) -> f64 {
    f64::from(rng.next_u32()) / f64::from(u32::MAX)
}

fn run(o: Options) -> Result<(), String> {
    let mut csv = String::from("class,seed,side,time_us,direction,bytes\n");
    let sites: Vec<Vec<Resource>> = (0..o.classes).map(site).collect();
    let mut lost = 0usize;
    // Per fetch: the request's and the response's delivery times.
    let mut latencies: Vec<(Duration, Duration)> = Vec::new();
    for seed in 0..o.seeds {
        let mut sim = boot(seed, &o)?;
        let mut rng = ChaCha20Rng::seed_from_u64(0x7ee5_0000 + seed);
        let mut order: Vec<u64> = (0..o.classes).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next_u32() as usize) % (i + 1));
        }
        for class in order {
            let resources = visit(&sites[class as usize], &mut rng);
            let start = sim.now();
            // The middle relay of the client's circuit to the destination
            // as the visit starts (it carries other circuits' cells too,
            // as a real relay does).
            let middle = middle_relay(&sim);
            let mut watched = vec![CLIENT, DESTINATION];
            watched.extend(middle);
            sim.tap(&watched);
            for r in &resources {
                match fetch(&mut sim, r, &mut rng) {
                    Some(times) => latencies.push(times),
                    None => lost += 1,
                }
                sim.run_for(Duration::from_millis(r.think_ms));
            }
            for t in sim.take_tapped() {
                let side = match t.node {
                    CLIENT => "client",
                    DESTINATION => "destination",
                    _ => "middle",
                };
                let _ = writeln!(
                    csv,
                    "{class},{seed},{side},{},{},{}",
                    t.at.saturating_since(start).as_micros(),
                    if t.outgoing { 1 } else { -1 },
                    t.len
                );
            }
            // A pause between visits, as between page loads.
            sim.run_for(Duration::from_secs(5));
        }
        eprintln!("seed {seed}: {} sites visited", o.classes);
    }
    std::fs::File::create(&o.out)
        .and_then(|mut f| f.write_all(csv.as_bytes()))
        .map_err(|e| format!("{}: {e}", o.out))?;
    eprintln!(
        "{} visits written to {} ({lost} responses lost)",
        o.classes * o.seeds,
        o.out
    );
    let mut requests: Vec<u64> = latencies.iter().map(|l| l.0.as_micros()).collect();
    let mut responses: Vec<u64> = latencies.iter().map(|l| l.1.as_micros()).collect();
    requests.sort_unstable();
    responses.sort_unstable();
    let median = |v: &[u64]| v.get(v.len() / 2).map_or(0.0, |m| *m as f64 / 1000.0);
    // One line for scripts: the requests are the interactive messages
    // (100-800 bytes), the responses the bulk ones.
    println!(
        "latency_ms request_median={:.2} response_median={:.2} fetches={}",
        median(&requests),
        median(&responses),
        latencies.len()
    );
    Ok(())
}

/// A fresh network for `seed`: every node knows most others and the
/// client has a circuit to the destination.
fn boot(seed: u64, o: &Options) -> Result<Sim, String> {
    let config = o.config;
    let mut sim = Sim::new(seed);
    for _ in 0..NODES {
        sim.add_addressed_node(config, 16);
    }
    let boot = Sim::address_of(0);
    for i in 1..NODES {
        sim.handle(i, AddBootstrap::address(boot))
            .map_err(|e| format!("bootstrap: {e}"))?;
    }
    if !sim.run_until_true(Duration::from_secs(120), |sim| {
        (0..NODES).all(|i| sim.node(i).core.node_table().len() >= NODES - 2)
    }) {
        return Err(format!("seed {seed}: the nodes did not learn each other"));
    }
    // A first exchange builds the client's circuit, outside any visit.
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let warm = Resource {
        request: 10,
        response: 10,
        think_ms: 0,
    };
    if fetch(&mut sim, &warm, &mut rng).is_none() {
        return Err(format!("seed {seed}: the first exchange failed"));
    }
    Ok(sim)
}

/// The node index of the middle relay (the second of three) of the
/// client's ready circuit to the destination, if it has one.
fn middle_relay(sim: &Sim) -> Option<usize> {
    let destination = sim.node_id(DESTINATION);
    let circuit = sim
        .node(CLIENT)
        .core
        .own_circuits()
        .find(|c| c.ready && c.path.destination() == Some(destination))?;
    let middle = *circuit.path.relays().get(1)?;
    (0..NODES).find(|&i| sim.node_id(i) == middle)
}

/// The client sends a request; the destination answers it with the
/// response over the same circuit. The request's and the response's
/// delivery times, if the response arrived.
fn fetch(sim: &mut Sim, r: &Resource, rng: &mut ChaCha20Rng) -> Option<(Duration, Duration)> {
    let mut request = vec![0u8; r.request];
    rng.fill_bytes(&mut request);
    let asked = sim.node(DESTINATION).delivered.len();
    let answered = sim.node(CLIENT).delivered.len();
    let deadline = sim.now().saturating_add(RESPONSE_TIMEOUT);
    while sim.send_message(CLIENT, DESTINATION, &request).is_err() {
        if sim.now() >= deadline {
            return None;
        }
        sim.run_for(Duration::from_millis(10));
    }
    let sent = sim.now();
    if !sim.run_until_true(RESPONSE_TIMEOUT, |sim| {
        sim.node(DESTINATION).delivered.len() > asked
    }) {
        return None;
    }
    let request_time = sim.now().saturating_since(sent);
    let Sender::Anonymous(reply_to) = sim.node(DESTINATION).delivered[asked].sender else {
        return None;
    };
    let mut response = vec![0u8; r.response];
    rng.fill_bytes(&mut response);
    if sim
        .handle(
            DESTINATION,
            Reply {
                to: reply_to,
                message: &response,
            },
        )
        .is_err()
    {
        return None;
    }
    let replied = sim.now();
    sim.run_until_true(RESPONSE_TIMEOUT, |sim| {
        sim.node(CLIENT).delivered.len() > answered
    })
    .then(|| (request_time, sim.now().saturating_since(replied)))
}
