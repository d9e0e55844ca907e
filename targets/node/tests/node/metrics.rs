//! `veil node`'s metrics endpoint over real sockets: three nodes link up,
//! one of them serves metrics and sends a message over a circuit through
//! another, and a scraper reads them the way Prometheus would. Every line must parse as the Prometheus text format (with
//! `prometheus-parse`, and, where Python's `prometheus_client` is
//! installed, with its strict OpenMetrics parser too), the families must be
//! there with the values the running nodes imply, and nothing may name a
//! secret or the peer. A client that sends nothing or too much must not
//! stop the next scrape.

use crate::common;

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, free_addr, keygen_into, Children, Scratch};
use prometheus_parse::{LineInfo, Scrape, Value};

/// A raw HTTP exchange: the status line, the headers and the body.
struct Answer {
    status: String,
    headers: String,
    body: String,
}

fn http(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics port");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(request).expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let raw = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    Answer {
        status: status.to_string(),
        headers: headers.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn scrape(addr: SocketAddr, openmetrics: bool) -> Answer {
    let accept = if openmetrics {
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    } else {
        "*/*"
    };
    let answer = http(
        addr,
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n").as_bytes(),
    );
    assert_eq!(answer.status, "HTTP/1.1 200 OK", "{}", answer.body);
    answer
}

/// Every sample of the Prometheus text `body`, after checking that each
/// of its lines parses.
fn parse(body: &str) -> Scrape {
    for line in body.lines() {
        let parsed = LineInfo::parse(line);
        assert!(
            matches!(
                parsed,
                LineInfo::Doc { .. } | LineInfo::Type { .. } | LineInfo::Sample { .. }
            ),
            "not Prometheus text: {line:?}"
        );
    }
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parse the scrape")
}

/// The value of the sample `name` whose labels include `labels`, summed
/// over the samples that match.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(_) | Value::Summary(_) => f64::NAN,
        })
        .collect();
    assert!(!matching.is_empty(), "no sample {name} {labels:?}");
    matching.iter().sum()
}

/// Writes a node's config and starts it; returns its node id.
fn start(children: &mut Children, dir: &std::path::Path, extra: &str) -> String {
    let data = dir.join("data");
    let id = keygen_into(&data);
    fs::write(
        dir.join("veil.toml"),
        format!(
            "data_dir = \"{}\"\nextend_to_private_addresses = true\n{extra}",
            data.display()
        ),
    )
    .expect("config");
    children.push(common::spawn_node(dir));
    id
}

/// Whether Python's `prometheus_client` accepts `body` as OpenMetrics:
/// `None` where it is not installed.
fn python_accepts_openmetrics(body: &str) -> Option<Result<(), String>> {
    let check = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        n = sum(len(f.samples) for f in text_string_to_metric_families(sys.stdin.read()))\n\
        print(n)\n";
    let present = Command::new("python3")
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-c", check])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3 output");
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

#[test]
fn a_linked_node_serves_parseable_metrics_that_name_no_secret_and_no_peer() {
    let scratch = Scratch::new("metrics");
    let mut children = Children::default();
    // Three networks, so that a one-relay path A -> R -> B is allowed.
    let a_listen = free_addr("127.94.0.1");
    let r_listen = free_addr("127.95.0.1");
    let b_listen = free_addr("127.96.0.1");
    let metrics = free_addr("127.0.0.1");
    let quick = "gossip_interval_ms = 200\nbootstrap_retry_ms = 300\npath_relays = 1\n";
    let a_id = start(
        &mut children,
        &scratch.path("a"),
        &format!("listen = \"{a_listen}\"\nmetrics = \"{metrics}\"\n{quick}"),
    );
    let r_id = start(
        &mut children,
        &scratch.path("r"),
        &format!("listen = \"{r_listen}\"\nbootstrap = \"{a_listen}\"\n{quick}"),
    );
    let b_id = start(
        &mut children,
        &scratch.path("b"),
        &format!("listen = \"{b_listen}\"\nbootstrap = \"{a_listen}\"\n{quick}"),
    );
    eventually(Duration::from_secs(20), || TcpStream::connect(metrics).ok())
        .expect("the metrics port answers");
    let log = || {
        ["a", "r", "b"]
            .iter()
            .map(|n| {
                format!(
                    "--- {n}\n{}",
                    common::read(&scratch.path(n).join("stderr.log"))
                )
            })
            .collect::<String>()
    };

    // Linked and discovered: A holds a TCP link and knows R and B (a
    // bootstrap link may be handed off once its dialler links elsewhere).
    let linked = eventually(Duration::from_secs(30), || {
        let s = parse(&scrape(metrics, false).body);
        (value(&s, "veil_links", &[("state", "established")]) >= 1.0
            && value(&s, "veil_known_nodes", &[]) >= 2.0)
            .then_some(s)
    });
    let s = linked.unwrap_or_else(|| panic!("A never linked and learnt R and B\n{}", log()));
    assert_eq!(
        value(
            &s,
            "veil_links",
            &[("state", "established"), ("transport", "tcp")]
        ),
        value(&s, "veil_links", &[("state", "established")]),
        "both nodes listen on TCP only"
    );
    assert_eq!(value(&s, "veil_link_slots", &[]), 64.0);
    let sent = value(&s, "veil_link_sent_bytes_total", &[]);
    let padding = value(&s, "veil_link_padding_sent_bytes_total", &[]);
    assert!(
        sent > 0.0 && padding < sent,
        "sent {sent}, padding {padding}"
    );
    assert!(value(&s, "veil_link_received_bytes_total", &[]) > 0.0);
    assert_eq!(value(&s, "veil_build_info", &[]), 1.0);
    assert_eq!(
        value(&s, "veil_reachability", &[]),
        1.0,
        "exactly one reachability state holds"
    );
    for family in [
        "veil_half_open_connections",
        "veil_inbound_connections_refused_total",
        "veil_cells_dropped_total",
        "veil_circuits",
        "veil_circuits_closed_total",
        "veil_links_closed_total",
        "veil_messages_pending",
        "veil_messages_failed_total",
        "veil_relay_suspicions_total",
        "veil_relays_tracked",
        "veil_relay_circuits",
        "veil_uptime_seconds",
        "veil_circuit_build_timeout_seconds",
    ] {
        assert!(value(&s, family, &[]) >= 0.0, "{family}");
    }
    for reason in ["link_queue_full", "circuit_stalled", "delivery_queue_full"] {
        assert_eq!(
            value(&s, "veil_cells_dropped_total", &[("reason", reason)]),
            0.0
        );
    }
    let histograms: HashSet<&str> = s
        .samples
        .iter()
        .filter(|x| matches!(x.value, Value::Histogram(_)))
        .map(|x| x.metric.as_str())
        .collect();
    assert_eq!(
        histograms,
        HashSet::from([
            "veil_circuit_build_duration_seconds",
            "veil_message_delivery_duration_seconds"
        ])
    );

    // A message from A to B, over A -> R -> B: one circuit built, one
    // delivery acknowledged, both timed.
    let sent = common::run(
        &[
            "send",
            &b_id,
            "--data-dir",
            scratch.path("a").join("data").to_str().expect("utf-8"),
        ],
        b"counted",
        Duration::from_secs(90),
    );
    assert!(
        sent.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&sent.stderr),
        log()
    );
    let s = parse(&scrape(metrics, false).body);
    assert_eq!(value(&s, "veil_messages_sent_total", &[]), 1.0);
    assert_eq!(value(&s, "veil_messages_acknowledged_total", &[]), 1.0);
    assert_eq!(
        value(&s, "veil_message_delivery_duration_seconds_count", &[]),
        1.0
    );
    let delivery = value(&s, "veil_message_delivery_duration_seconds_sum", &[]);
    assert!(
        delivery > 0.0 && delivery < 90.0,
        "delivery took {delivery} s"
    );
    let built = value(&s, "veil_circuits_built_total", &[]);
    assert!(built >= 1.0, "{built}");
    assert_eq!(
        value(&s, "veil_circuit_build_duration_seconds_count", &[]),
        built,
        "every build timed"
    );
    assert!(value(&s, "veil_circuits", &[("role", "own"), ("state", "ready")]) >= 1.0);
    for family in ["veil_link_rtt_seconds", "veil_circuit_rtt_seconds"] {
        let (min, median, max) = (
            value(&s, family, &[("stat", "min")]),
            value(&s, family, &[("stat", "median")]),
            value(&s, family, &[("stat", "max")]),
        );
        assert!(
            0.0 < min && min <= median && median <= max && max < 30.0,
            "{family}: {min} {median} {max}"
        );
    }
    assert!(value(&s, "veil_link_cells_sent_total", &[]) > 0.0);

    // The same, as OpenMetrics, for scrapers that ask for it.
    let om = scrape(metrics, true);
    assert!(
        om.headers
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{}",
        om.headers
    );
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    match python_accepts_openmetrics(&om.body) {
        Some(Ok(())) => {}
        Some(Err(e)) => panic!("prometheus_client refused the OpenMetrics text: {e}"),
        None => eprintln!("python3 prometheus_client not installed: strict check skipped"),
    }

    // Nothing secret, nothing that names the peer.
    let body = scrape(metrics, false).body + &om.body;
    for node in ["a", "r", "b"] {
        let key = fs::read(scratch.path(node).join("data/identity.key")).expect("key");
        assert!(!key.is_empty());
        assert!(!body.contains(&hex::encode(&key)), "{node}'s secret key");
    }
    for needle in [
        a_id,
        r_id,
        b_id,
        a_listen.ip().to_string(),
        r_listen.ip().to_string(),
        b_listen.ip().to_string(),
        format!(":{}", r_listen.port()),
        format!(":{}", b_listen.port()),
        "127.0.0.1".to_string(),
    ] {
        assert!(!body.contains(&needle), "{needle} in the metrics");
    }
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !has_long_hex(line),
            "a long hex string (an id or a key?) in {line:?}"
        );
    }
}

/// Whether `line` holds 16 hex digits in a row, letters among them (ids
/// and keys are 64; a long decimal number is not one).
fn has_long_hex(line: &str) -> bool {
    line.split(|c: char| !c.is_ascii_hexdigit())
        .any(|run| run.len() >= 16 && run.chars().any(|c| c.is_ascii_alphabetic()))
}

#[test]
fn slow_and_oversized_clients_do_not_stop_scrapes_and_other_paths_are_404() {
    let scratch = Scratch::new("metrics-http");
    let mut children = Children::default();
    let listen = free_addr("127.94.0.3");
    let metrics = free_addr("127.0.0.1");
    start(
        &mut children,
        &scratch.path("n"),
        &format!("listen = \"{listen}\"\nmetrics = \"{metrics}\"\n"),
    );
    eventually(Duration::from_secs(20), || TcpStream::connect(metrics).ok())
        .expect("the metrics port answers");

    // Two clients that connect and say nothing hold two of the four
    // connection threads until the deadline (one more is left for the
    // connection that found the port open, which may still be closing); a
    // scrape still goes through at once.
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(metrics).expect("connect"))
        .collect();
    let start = Instant::now();
    let s = parse(&scrape(metrics, false).body);
    assert!(value(&s, "veil_uptime_seconds", &[]) >= 0.0);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "a scrape behind idle clients took {:?}",
        start.elapsed()
    );
    // The idle ones are closed at the deadline (5 s), unanswered.
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        assert!(buf.is_empty(), "an idle client got {buf:?}");
    }

    let not_found = http(metrics, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(not_found.status, "HTTP/1.1 404 Not Found");
    let wrong_method = http(metrics, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(wrong_method.status, "HTTP/1.1 405 Method Not Allowed");
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let mut stream = TcpStream::connect(metrics).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The server stops reading at its limit; the rest may not be taken.
    let _ = stream.write_all(huge.as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400 Bad Request"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}
