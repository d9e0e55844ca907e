//! `veil node`: one node, its control socket, its state on disk, until
//! SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use clap::Args;
use veil_core::identity::Address;
use veil_core::node::{AddAnchor, LearnDescriptor, NodeConfig, RestoreState, SetAddresses};
use veil_core::time::Duration as CoreDuration;
use veil_mio::{Runtime, RuntimeOptions};
use veil_node::control_address::ControlAddress;

use crate::config::{self, FileConfig, Overrides, Settings};
use crate::control_listener::ControlListener;
use crate::host::{self, Host};
use crate::logger::LogFormat;
use crate::metrics_server::{self, MetricsListener};
use crate::node_metrics::NodeMetrics;
use crate::service_file::{self, DescriptorFile};
use crate::{
    address, control_server, data_dir, keyfile, logger, node_state, saved_bootstrap, snapshot,
};

/// How often the main thread looks at the node thread and the save timer.
const WATCH: Duration = Duration::from_secs(1);

/// The identity key's file name in the data directory.
pub const KEY_FILE: &str = "identity.key";

/// `veil node` flags; each overrides the config file.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// TOML config file; packaging/veil.example.toml shows every field.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on: IP:PORT (TCP) or quic://IP:PORT; repeatable,
    /// one per transport [default: TCP and QUIC on 127.0.0.1:7700].
    #[arg(long, value_parser = address::parse)]
    listen: Vec<Address>,
    /// A node to dial while unlinked, IP:PORT (TCP) or quic://IP:PORT,
    /// written ID@ADDRESS when its node id is known (a probe-resistant node
    /// answers only then); repeatable, replaces the config's list.
    #[arg(long, value_parser = address::parse_bootstrap, value_name = "[ID@]ADDRESS")]
    bootstrap: Vec<address::BootstrapNode>,
    /// Directory for the identity key, the node table and the control
    /// socket; only its owner may access it [default:
    /// $XDG_DATA_HOME/veil or ~/.local/share/veil].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Control socket: a Unix socket's PATH (with a '/'), or a loopback
    /// IP:PORT for TCP, where clients present the cookie from the data
    /// directory [default: DATA_DIR/control.sock].
    #[arg(long, value_name = "PATH|ADDR")]
    control: Option<ControlAddress>,
    /// What to log: off, error, warn, info, debug or trace, or
    /// module=level directives like "info,veil_core::circuit=debug"
    /// (overrides RUST_LOG, which overrides the config) [default: info].
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// Log as human-readable text or as one JSON object per line
    /// [default: text].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Serve Prometheus metrics at http://ADDR/metrics (IP:PORT, e.g.
    /// 127.0.0.1:9870) [default: off].
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Link slots: the most connections at once [default: 64].
    #[arg(long)]
    links: Option<usize>,
    /// Record every input to the node into FILE, for `veil replay`.
    /// WARNING: the trace holds this node's secret identity key; keep it as
    /// private as the key file and record only throwaway identities you
    /// mean to share.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Capture the bytes of every TCP link into FILE (pcap, opens in
    /// Wireshark), for a bug report. It holds what the wire carries (link
    /// frames are encrypted) and no secret.
    #[arg(long, value_name = "FILE")]
    capture: Option<PathBuf>,
}

/// Runs the node until a signal; `Err` is one line saying what failed.
pub fn run(args: NodeArgs) -> Result<(), String> {
    let file = match &args.config {
        Some(path) => config::read_file(path)?,
        None => FileConfig::default(),
    };
    let settings = config::resolve(
        file,
        Overrides {
            listen: args.listen,
            bootstrap: args.bootstrap,
            data_dir: args.data_dir,
            control: args.control,
            log_level: args.log_level,
            rust_log: std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()),
            log_format: args.log_format,
            metrics: args.metrics,
            links: args.links,
        },
    )?;
    logger::init(
        logger::parse_filter(&settings.log_filter).map_err(|e| e.to_string())?,
        settings.log_format,
    );
    let dir = &settings.data_dir;
    data_dir::prepare(dir)?;
    let (identity, created) = keyfile::load_or_create(&dir.join(KEY_FILE))?;
    if created {
        log::info!("created identity key {}", dir.join(KEY_FILE).display());
    }
    let service = if settings.service {
        if args.record.is_some() {
            return Err(format!(
                "--record cannot record a node that offers a service (service = true): {}",
                veil_mio::OfferServiceError::Recording
            ));
        }
        let path = dir.join(service_file::KEY_FILE);
        let (keys, created) = keyfile::load_or_create_service(&path)?;
        if created {
            log::info!("created service keys {}", path.display());
        }
        Some(keys)
    } else {
        None
    };
    // Load the snapshot before binding: a corrupt one stops the node
    // before it touches the network.
    let known = snapshot::load(dir)?;
    let state = node_state::load(dir)?;

    // Removes the socket file when `run` returns, a clean shutdown or not.
    let (control_listener, _socket_file) = ControlListener::bind(&settings.control, dir)?;
    let metrics_listener = match settings.metrics {
        Some(addr) => Some(MetricsListener::bind(addr).map_err(|e| e.to_string())?),
        None => None,
    };
    let options = RuntimeOptions {
        links: settings.links,
        max_pending_dials: settings.max_pending_dials,
        ..RuntimeOptions::default()
    };
    let mut rt = match &args.record {
        None => Runtime::bind_with(
            node_config(&settings),
            identity,
            settings.listen_tcp,
            options,
        ),
        Some(path) => {
            let file = veil_mio::trace::create_trace_file(path)
                .map_err(|e| format!("cannot create trace file {}: {e}", path.display()))?;
            eprintln!(
                "veil: warning: recording a trace to {}; it holds this node's secret identity \
                 key (mode 0600): keep it private, share only traces of throwaway identities",
                path.display()
            );
            Runtime::bind_recording(
                node_config(&settings),
                identity,
                settings.listen_tcp,
                options,
                Box::new(file),
            )
        }
    }
    .map_err(|e| e.to_string())?;
    if let Some(path) = &args.capture {
        rt.capture_links(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        log::info!("capturing TCP link bytes into {}", path.display());
    }
    listen_quic(&mut rt, &settings)?;
    if !settings.advertise.is_empty() {
        rt.handle(SetAddresses::from_slice(&settings.advertise));
    } else if settings.listen_tcp.ip().is_unspecified() {
        log::warn!(
            "listening on a wildcard address with nothing to advertise: other nodes cannot \
             reach this one for circuits; set advertise in the config"
        );
    }
    restore(&mut rt, &known, &settings);
    if let Some(bytes) = state {
        let path = dir.join(node_state::FILE);
        let restored = rt
            .handle(RestoreState { bytes: &bytes })
            .map_err(|e| format!("{}: {e}", path.display()))?;
        log::info!(
            "restored the onion keys, {} guards, {} sampled guards, {} relay health records and {} build times from {}",
            restored.guards,
            restored.guard_sample,
            restored.health_records,
            restored.build_times,
            path.display()
        );
    }

    let mut descriptor_file = None;
    if let Some(keys) = service {
        let id = rt.offer_service(keys).map_err(|e| e.to_string())?;
        let file = DescriptorFile::new(dir);
        log::info!(
            "offering rendezvous service {id}; its descriptor goes to {} once introduction \
             points are set up",
            file.path().display()
        );
        descriptor_file = Some(file);
    }

    let (signals, signalled) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = signals.send(());
    })
    .map_err(|e| format!("cannot install the SIGINT/SIGTERM handler: {e}"))?;

    let id = rt.node_id();
    let listening = host::listening(&rt);
    let metrics = metrics_listener.map(|listener| {
        let (metrics, registry) = NodeMetrics::new();
        (listener, metrics, registry)
    });
    let host = Host::spawn(
        rt,
        "veil-node".into(),
        metrics.as_ref().map(|(_, m, _)| m.clone()),
    )?;
    control_server::serve(control_listener, host.handle())?;
    let mut metrics_note = String::new();
    if let Some((listener, _, registry)) = metrics {
        let at = listener
            .local_addr()
            .map_err(|e| format!("cannot read the metrics socket's address: {e}"))?;
        metrics_server::serve(listener, registry, host.handle()).map_err(|e| e.to_string())?;
        log::info!("serving Prometheus metrics at http://{at}/metrics");
        metrics_note = format!(", metrics on http://{at}/metrics");
    }
    println!(
        "veil node {id} listening on {listening}, control on {}{metrics_note}",
        settings.control
    );
    let interval = Duration::from_secs(settings.snapshot_interval_secs);
    let mut last_save = Instant::now();
    loop {
        match signalled.recv_timeout(WATCH) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if host.is_finished() {
            // The node thread stopped on an error: report it.
            break;
        }
        if let Some(file) = &mut descriptor_file {
            // A node thread that stopped is found out above, next time.
            if let Ok(Some(service)) = host.handle().service() {
                if let Err(e) = file.update(&service) {
                    log::warn!("{e}");
                }
            }
        }
        if last_save.elapsed() >= interval {
            last_save = Instant::now();
            let saved = host.handle().descriptors()?;
            if let Err(e) = snapshot::save(dir, &saved) {
                log::warn!("{e}");
            }
            if let Err(e) = node_state::save(dir, &saved.state) {
                log::warn!("{e}");
            }
        }
    }
    log::info!("shutting down: closing links and saving the node table");
    let saved = host.shutdown()?;
    node_state::save(dir, &saved.state)?;
    if snapshot::save(dir, &saved)? {
        log::info!(
            "saved {} nodes and {} anchors; stopped",
            saved.descriptors.len(),
            saved.anchors.len()
        );
    } else {
        log::info!("knows no node: kept the saved node table; stopped");
    }
    Ok(())
}

/// Opens the QUIC socket, if the settings ask for one.
#[cfg(feature = "quic")]
fn listen_quic(rt: &mut Runtime, settings: &Settings) -> Result<(), String> {
    if let Some(addr) = settings.listen_quic {
        rt.listen_quic(addr, veil_mio::veil_quic::QuicConfig::default())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Built without QUIC, the settings never ask for it (`config::resolve`
/// refuses `quic://` addresses).
#[cfg(not(feature = "quic"))]
fn listen_quic(_: &mut Runtime, _: &Settings) -> Result<(), String> {
    Ok(())
}

fn node_config(settings: &Settings) -> NodeConfig {
    NodeConfig {
        relay: settings.relay,
        quic_dials: settings.quic_dials,
        transport_race_delay: CoreDuration::from_millis(settings.transport_race_delay_ms),
        max_half_open: settings.max_half_open,
        path_relays: settings.path_relays,
        extra_path_relays: settings.extra_path_relays,
        gossip_interval: CoreDuration::from_millis(settings.gossip_interval_ms),
        bootstrap_retry: CoreDuration::from_millis(settings.bootstrap_retry_ms),
        extend_to_private_addresses: settings.extend_to_private_addresses,
        introducers: if settings.introducers == 0 {
            NodeConfig::default().introducers
        } else {
            settings.introducers
        },
        reachability: settings.reachability,
        answer_unkeyed_dials: !settings.probe_resistant,
        link: veil_core::link::LinkConfig {
            padding: settings.link_padding,
            ..NodeConfig::default().link
        },
        message_padding: settings.message_padding,
        cover: settings.cover,
        shaping: settings.shaping,
        mixing_delay_mean: CoreDuration::from_millis(settings.mixing_delay_ms),
        second_layer_guards: settings.second_layer_guards,
        ..NodeConfig::default()
    }
}

/// Dials the saved anchors (the peers of the node's outbound links when it
/// saved) ahead of everything else; returns how many were dialled.
fn restore_anchors(rt: &mut Runtime, anchors: &[Vec<u8>]) -> usize {
    let mut dialled = 0usize;
    for descriptor in anchors {
        match rt.handle(AddAnchor { descriptor }) {
            Ok(()) => dialled = dialled.saturating_add(1),
            Err(e) => log::info!("saved anchor not dialled: {e}"),
        }
    }
    dialled
}

/// Dials the saved anchors, learns the saved node table and sets the
/// bootstrap addresses: the configured ones, or else relays from the saved
/// table, expired ones included (`saved_bootstrap`).
fn restore(rt: &mut Runtime, saved: &snapshot::SavedTable, settings: &Settings) {
    let anchors = restore_anchors(rt, &saved.anchors);
    if anchors > 0 {
        log::info!("dialling {anchors} saved anchors");
    }
    let known = &saved.descriptors;
    let mut learned = 0usize;
    for descriptor in known {
        match rt.handle(LearnDescriptor { descriptor }) {
            Ok(_) => learned = learned.saturating_add(1),
            Err(e) => log::debug!("saved descriptor not restored: {e:?}"),
        }
    }
    if !known.is_empty() {
        log::info!(
            "restored {learned} of {} saved nodes from {}",
            known.len(),
            settings.data_dir.join(snapshot::FILE).display()
        );
    }
    for node in &settings.bootstrap {
        if let Err(e) = rt.add_bootstrap_node(node.address, node.node_id) {
            log::warn!("bootstrap address {} not used: {e}", node.address.socket);
        }
    }
    // Relays of the saved table fill the bootstrap list after the
    // configured addresses: a node whose configured bootstrap nodes are
    // down or hung links up from what it knew (issue 11). The list holds
    // `MAX_BOOTSTRAP`; what does not fit is not given.
    for addr in saved_bootstrap::relay_addresses(known) {
        if settings.bootstrap.iter().any(|b| b.address.socket == addr) {
            continue;
        }
        if rt.add_bootstrap(addr).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{SocketAddr, TcpListener};
    use std::time::SystemTime;

    use veil_core::identity::{DescriptorRepr, Identity, Transport, MAX_DESCRIPTOR_LEN};

    use super::*;

    /// A descriptor of a relay listening at `at`, valid from `from` (unix
    /// seconds) for `secs`.
    fn descriptor(at: SocketAddr, from: u64, secs: u64) -> Vec<u8> {
        let identity = Identity::from_secret_bytes([9; 32]);
        let mut repr = DescriptorRepr {
            identity: identity.public(),
            onion_key: [1; 32],
            relay: true,
            issued_at: from,
            expires_at: from + secs,
            addresses: Default::default(),
        };
        repr.addresses
            .push(Address {
                transport: Transport::Tcp,
                socket: at,
            })
            .expect("room for one address");
        let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
        let len = repr.emit_signed(&identity, &mut buf).expect("emit");
        buf[..len].to_vec()
    }

    #[test]
    fn saved_anchors_are_dialled_at_start() {
        let anchor = TcpListener::bind("127.0.0.1:0").expect("bind");
        anchor.set_nonblocking(true).expect("nonblocking");
        let at = anchor.local_addr().expect("address");
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let mut rt = Runtime::bind_with(
            NodeConfig::default(),
            Identity::from_secret_bytes([3; 32]),
            "127.0.0.1:0".parse().expect("address"),
            RuntimeOptions::default(),
        )
        .expect("runtime");
        // An anchor whose descriptor expired while the node was down is
        // not dialled; a valid one is, at once.
        let expired = descriptor(at, now - 7200, 3600);
        assert_eq!(restore_anchors(&mut rt, &[expired]), 0);
        assert_eq!(restore_anchors(&mut rt, &[descriptor(at, now, 3600)]), 1);
        // Generous: the dial is made on the node's next turns.
        let give_up = Instant::now() + Duration::from_secs(30);
        while anchor.accept().is_err() {
            assert!(Instant::now() < give_up, "the anchor was never dialled");
            rt.turn(Some(Duration::from_millis(10)), |_, _| {})
                .expect("turn");
        }
    }
}
