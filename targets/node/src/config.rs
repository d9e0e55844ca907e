//! `veil node` settings: a TOML file, overridden by flags, then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use veil_core::identity::{Address, Transport};
use veil_node::control_address::{ControlAddress, SOCKET_FILE};

use crate::address::{self, BootstrapNode};
use crate::data_dir;
use crate::logger::{self, LogFormat};

/// The default listen port, for TCP and (when built with QUIC) UDP.
const DEFAULT_LISTEN: &str = "127.0.0.1:7700";

/// The TOML file. Every field is optional; unknown fields are an error (a
/// typo must not be ignored silently).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Addresses to listen on: at most one TCP (`IP:PORT` or
    /// `tcp://IP:PORT`) and one QUIC (`quic://IP:PORT`); one string or a
    /// list.
    #[serde(default, deserialize_with = "address::deserialize_list")]
    pub listen: Option<Vec<Address>>,
    /// Addresses to advertise in the descriptor, when `listen` is a
    /// wildcard address or behind NAT.
    #[serde(default, deserialize_with = "address::deserialize_list")]
    pub advertise: Option<Vec<Address>>,
    /// Nodes to dial while this node has no link: addresses, each written
    /// `ID@ADDRESS` when the node's id is known (needed to reach a
    /// probe-resistant node).
    #[serde(default, deserialize_with = "address::deserialize_bootstrap_list")]
    pub bootstrap: Option<Vec<BootstrapNode>>,
    /// Dial peers over QUIC first (racing TCP after
    /// `transport_race_delay_ms`); default: whether this node listens for
    /// QUIC.
    pub quic_dials: Option<bool>,
    /// How long a QUIC dial runs alone before TCP is tried too, in
    /// milliseconds.
    pub transport_race_delay_ms: Option<u64>,
    /// Where the identity key, node table and control socket live.
    pub data_dir: Option<PathBuf>,
    /// The control socket: a Unix socket's path (default: `control.sock`
    /// in the data directory), or a loopback `IP:PORT` for TCP with a
    /// cookie.
    pub control: Option<ControlAddress>,
    /// What to log: a level (off, error, warn, info, debug, trace) or
    /// `RUST_LOG`-style directives, e.g. `info,veil_core::circuit=debug`.
    pub log_level: Option<String>,
    /// How log lines look: "text" (default) or "json".
    pub log_format: Option<LogFormat>,
    /// Where to serve Prometheus metrics over HTTP (`GET /metrics`), as
    /// `IP:PORT`; off when absent.
    pub metrics: Option<SocketAddr>,
    /// Whether this node relays for others.
    pub relay: Option<bool>,
    /// Link slots: the most connections at once.
    pub links: Option<usize>,
    /// Outgoing connects in progress at once.
    pub max_pending_dials: Option<usize>,
    /// Links in their handshake at once.
    pub max_half_open: Option<usize>,
    /// Relays in a circuit before the destination (1 to 7).
    pub path_relays: Option<usize>,
    /// Up to this many more relays in each circuit, drawn uniformly per
    /// circuit (0 to 6; `path_relays` plus this is at most 7). Default 0.
    pub extra_path_relays: Option<usize>,
    /// How often descriptors are gossiped, in milliseconds.
    pub gossip_interval_ms: Option<u64>,
    /// How often bootstrap nodes are dialled while unlinked, in milliseconds.
    pub bootstrap_retry_ms: Option<u64>,
    /// How often the node table is saved, in seconds.
    pub snapshot_interval_secs: Option<u64>,
    /// Whether a stranger's `EXTEND` may make this relay connect to a
    /// loopback, private, link-local or multicast address. Off by default,
    /// so the relay cannot be made to scan its own host or network; a test
    /// network whose nodes all listen on `127.N.0.1` turns it on.
    pub extend_to_private_addresses: Option<bool>,
    /// How many relays this node is reached through, 0 to 3: for a node
    /// behind NAT or a firewall, which nobody can dial. It lists that many
    /// relays its own links go to in its descriptor, and senders reach it
    /// through them (relay spec §10, "Introducers"). 0 means it can be
    /// dialled. Default 0, or 2 with `reachability = "detect"`.
    pub introducers: Option<usize>,
    /// Whether others can dial this node: "public" (its addresses are
    /// advertised as given), "detect" (peers are asked to dial each one
    /// back, and only those reached are advertised; introducers if none
    /// was) or "private" (introducers only). Default "public", or
    /// "private" when `introducers` is above 0.
    pub reachability: Option<String>,
    /// Whether this node offers a rendezvous service (relay spec §13):
    /// its keys are `service.key` in the data directory (made at first
    /// start), its signed descriptor is kept in `service.descriptor` there.
    pub service: Option<bool>,
    /// Answer only dialers that know this node's id (from its descriptor),
    /// so that a prober who knows just the address gets silence (link spec
    /// §2.2). Others cannot then bootstrap from this node by address alone.
    /// Default false.
    pub probe_resistant: Option<bool>,
    /// Padding of idle links (transport spec §4.3): "full" (Tor's default:
    /// one padding cell after 1.5-9.5 s of silence), "reduced" (9-14 s,
    /// and peers are asked for the same) or "off" (none, and peers are
    /// asked for none). Default "full".
    pub link_padding: Option<String>,
    /// Message-size padding (relay spec §8.1): "none", or "powers-of-two"
    /// (each message's cell count rounded up to a power of two with
    /// padding cells; about a quarter more cells on mixed sizes). Default
    /// "none".
    pub message_padding: Option<String>,
    /// The defences against traffic analysis, together (docs/anonymity.md):
    /// "off", "default" (idle-link padding, FRONT padding of bursts, light
    /// loop cover) or "strict" (also constant-rate shaping, heavier cover,
    /// message buckets, a random extra relay). `link_padding`,
    /// `message_padding`, `extra_path_relays` and `cover_budget`, when
    /// set, override the preset's. Default "default".
    pub anonymity: Option<String>,
    /// Bytes a second this node's cover traffic may put on its links (relay
    /// spec §8.2); 0 sends none. Default: the preset's (10000 for
    /// "default", 50000 for "strict").
    pub cover_budget: Option<u32>,
    /// Mean mixing delay, ms, for each cell this node relays (relay spec
    /// §9.1): exponential delays, each circuit's cells kept in order; 0
    /// holds nothing. Default: the preset's (10 for "strict", else 0).
    pub mixing_delay_ms: Option<u64>,
    /// Layer-2 guards (relay spec §11, vanguards-lite): the second hop of
    /// every circuit this node builds is one of this many relays, each
    /// kept 1-12 days; 0 draws the second hop afresh. At most 8. Default:
    /// the preset's (4, or 0 for "off").
    pub second_layer_guards: Option<usize>,
}

/// Everything `veil node` runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_tcp: SocketAddr,
    pub listen_quic: Option<SocketAddr>,
    pub advertise: Vec<Address>,
    pub bootstrap: Vec<BootstrapNode>,
    pub quic_dials: bool,
    pub transport_race_delay_ms: u64,
    pub data_dir: PathBuf,
    pub control: ControlAddress,
    /// A filter `logger::parse_filter` accepted.
    pub log_filter: String,
    pub log_format: LogFormat,
    pub metrics: Option<SocketAddr>,
    pub relay: bool,
    pub links: usize,
    pub max_pending_dials: usize,
    pub max_half_open: usize,
    pub path_relays: usize,
    pub extra_path_relays: usize,
    pub gossip_interval_ms: u64,
    pub bootstrap_retry_ms: u64,
    pub snapshot_interval_secs: u64,
    pub extend_to_private_addresses: bool,
    pub introducers: usize,
    pub reachability: veil_core::node::Reachability,
    pub service: bool,
    pub probe_resistant: bool,
    pub link_padding: veil_core::link::LinkPadding,
    pub message_padding: veil_core::node::MessagePadding,
    pub cover: veil_core::node::CoverTraffic,
    pub shaping: veil_core::circuit::Shaping,
    pub mixing_delay_ms: u64,
    pub second_layer_guards: usize,
}

/// Flags that override the file.
#[derive(Debug, Default)]
pub struct Overrides {
    pub listen: Vec<Address>,
    pub bootstrap: Vec<BootstrapNode>,
    pub data_dir: Option<PathBuf>,
    pub control: Option<ControlAddress>,
    pub log_level: Option<String>,
    /// `RUST_LOG`, when set: below the flag, above the file.
    pub rust_log: Option<String>,
    pub log_format: Option<LogFormat>,
    pub metrics: Option<SocketAddr>,
    pub links: Option<usize>,
}

/// Reads the TOML file at `path`.
pub fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().replace('\n', " ");
        match e.span() {
            Some(span) => {
                let line = text
                    .get(..span.start)
                    .map_or(0, |t| t.lines().count().max(1));
                format!("config {} line {line}: {msg}", path.display())
            }
            None => format!("config {}: {msg}", path.display()),
        }
    })
}

/// Flags over file over defaults, checked.
pub fn resolve(file: FileConfig, flags: Overrides) -> Result<Settings, String> {
    let data_dir = flags
        .data_dir
        .or(file.data_dir)
        .or_else(data_dir::default_dir)
        .ok_or_else(|| {
            "no data directory: pass --data-dir DIR or set data_dir in the config (or HOME)"
                .to_string()
        })?;
    let control = flags
        .control
        .or(file.control)
        .unwrap_or_else(|| ControlAddress::Unix(data_dir.join(SOCKET_FILE)));
    if let ControlAddress::Tcp(addr) = control {
        if !addr.ip().is_loopback() {
            return Err(format!(
                "control address {addr} is not a loopback address; a TCP control socket only \
                 listens on 127.0.0.1 or ::1 (its cookie would cross the network in clear)"
            ));
        }
    }
    let log_filter = flags
        .log_level
        .or(flags.rust_log)
        .or(file.log_level)
        .unwrap_or_else(|| logger::DEFAULT_FILTER.into());
    logger::parse_filter(&log_filter).map_err(|e| e.to_string())?;
    let bootstrap = if flags.bootstrap.is_empty() {
        file.bootstrap.unwrap_or_default()
    } else {
        flags.bootstrap
    };
    if bootstrap.len() > veil_core::node::MAX_BOOTSTRAP {
        return Err(format!(
            "{} bootstrap addresses given; a node keeps at most {}",
            bootstrap.len(),
            veil_core::node::MAX_BOOTSTRAP
        ));
    }
    let listen = if flags.listen.is_empty() {
        file.listen.unwrap_or_default()
    } else {
        flags.listen
    };
    let (listen_tcp, listen_quic) = listeners(&listen)?;
    if let Some(a) = bootstrap
        .iter()
        .map(|b| &b.address)
        .chain(file.advertise.iter().flatten())
        .find(|a| a.transport == Transport::Quic && !cfg!(feature = "quic"))
    {
        return Err(format!(
            "{} is a QUIC address, and this veil was built without QUIC (cargo feature `quic`)",
            address::display(a)
        ));
    }
    let anonymity: veil_core::node::Anonymity = match file.anonymity.as_deref() {
        None => veil_core::node::Anonymity::Default,
        Some(name) => name.parse().map_err(|_| {
            format!("anonymity = \"{name}\": use \"off\", \"default\" or \"strict\"")
        })?,
    };
    let settings = Settings {
        listen_tcp,
        listen_quic,
        advertise: file.advertise.unwrap_or_default(),
        bootstrap,
        quic_dials: file.quic_dials.unwrap_or(listen_quic.is_some()),
        transport_race_delay_ms: file.transport_race_delay_ms.unwrap_or(250),
        data_dir,
        control,
        log_filter,
        log_format: flags.log_format.or(file.log_format).unwrap_or_default(),
        metrics: flags.metrics.or(file.metrics),
        relay: file.relay.unwrap_or(true),
        links: flags.links.or(file.links).unwrap_or(64),
        max_pending_dials: file.max_pending_dials.unwrap_or(16),
        max_half_open: file.max_half_open.unwrap_or(16),
        path_relays: file.path_relays.unwrap_or(3),
        extra_path_relays: file
            .extra_path_relays
            .unwrap_or(anonymity.extra_path_relays()),
        gossip_interval_ms: file.gossip_interval_ms.unwrap_or(30_000),
        bootstrap_retry_ms: file.bootstrap_retry_ms.unwrap_or(30_000),
        snapshot_interval_secs: file.snapshot_interval_secs.unwrap_or(60),
        extend_to_private_addresses: file.extend_to_private_addresses.unwrap_or(false),
        introducers: file.introducers.unwrap_or(0),
        reachability: match (file.reachability.as_deref(), file.introducers) {
            (Some("public"), _) => veil_core::node::Reachability::Public,
            (Some("detect"), _) => veil_core::node::Reachability::Detect,
            (Some("private"), _) => veil_core::node::Reachability::Private,
            (Some(other), _) => {
                return Err(format!(
                    "reachability = \"{other}\": use \"public\", \"detect\" or \"private\""
                ))
            }
            (None, Some(n)) if n > 0 => veil_core::node::Reachability::Private,
            (None, _) => veil_core::node::Reachability::Public,
        },
        service: file.service.unwrap_or(false),
        probe_resistant: file.probe_resistant.unwrap_or(false),
        link_padding: match file.link_padding.as_deref() {
            None => anonymity.link_padding(),
            Some("full") => veil_core::link::LinkPadding::FULL,
            Some("reduced") => veil_core::link::LinkPadding::REDUCED,
            Some("off") => veil_core::link::LinkPadding::OFF,
            Some(other) => {
                return Err(format!(
                    "link_padding = \"{other}\": use \"full\", \"reduced\" or \"off\""
                ))
            }
        },
        message_padding: match file.message_padding.as_deref() {
            None => anonymity.message_padding(),
            Some("none") => veil_core::node::MessagePadding::None,
            Some("powers-of-two") => veil_core::node::MessagePadding::PowersOfTwo,
            Some(other) => {
                return Err(format!(
                    "message_padding = \"{other}\": use \"none\" or \"powers-of-two\""
                ))
            }
        },
        cover: veil_core::node::CoverTraffic {
            budget: file.cover_budget.unwrap_or(anonymity.cover().budget),
            ..anonymity.cover()
        },
        shaping: anonymity.shaping(),
        mixing_delay_ms: file
            .mixing_delay_ms
            .unwrap_or(anonymity.mixing_delay_mean().as_micros() / 1000),
        second_layer_guards: file
            .second_layer_guards
            .unwrap_or(anonymity.second_layer_guards()),
    };
    if settings.second_layer_guards > veil_core::node::MAX_SECOND_LAYER_GUARDS {
        return Err(format!(
            "second_layer_guards = {}: use 0 (off) to {} (4 is vanguards-lite)",
            settings.second_layer_guards,
            veil_core::node::MAX_SECOND_LAYER_GUARDS
        ));
    }
    if settings.introducers > veil_core::identity::MAX_INTRODUCERS {
        return Err(format!(
            "introducers = {}: use 0 (this node can be dialled) to {}",
            settings.introducers,
            veil_core::identity::MAX_INTRODUCERS
        ));
    }
    if !(1..=4096).contains(&settings.links) {
        return Err(format!("links = {}: use 1 to 4096", settings.links));
    }
    if !(1..=7).contains(&settings.path_relays) {
        return Err(format!(
            "path_relays = {}: use 1 to 7",
            settings.path_relays
        ));
    }
    if settings
        .path_relays
        .saturating_add(settings.extra_path_relays)
        > 7
    {
        return Err(format!(
            "extra_path_relays = {}: path_relays ({}) plus extra_path_relays must be at most 7",
            settings.extra_path_relays, settings.path_relays
        ));
    }
    if settings.max_pending_dials == 0 || settings.max_half_open == 0 {
        return Err("max_pending_dials and max_half_open must be at least 1".into());
    }
    if settings.gossip_interval_ms < 10 || settings.bootstrap_retry_ms < 10 {
        return Err("gossip_interval_ms and bootstrap_retry_ms must be at least 10".into());
    }
    if settings.snapshot_interval_secs == 0 {
        return Err("snapshot_interval_secs must be at least 1".into());
    }
    if settings.quic_dials && settings.listen_quic.is_none() {
        return Err(
            "quic_dials = true needs a QUIC socket: add a quic://IP:PORT listen address".into(),
        );
    }
    Ok(settings)
}

/// The TCP address and the optional QUIC address to listen on. With none
/// given: TCP and (when built with QUIC) QUIC, both on 127.0.0.1:7700.
fn listeners(listen: &[Address]) -> Result<(SocketAddr, Option<SocketAddr>), String> {
    let default: SocketAddr = DEFAULT_LISTEN
        .parse()
        .map_err(|_| "internal: bad default listen address".to_string())?;
    if listen.is_empty() {
        return Ok((default, cfg!(feature = "quic").then_some(default)));
    }
    let of = |transport| {
        let all: Vec<SocketAddr> = listen
            .iter()
            .filter(|a| a.transport == transport)
            .map(|a| a.socket)
            .collect();
        match all.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(format!(
                "{} {transport:?} listen addresses given; a node listens on at most one per transport",
                all.len()
            )),
        }
    };
    let quic = of(Transport::Quic)?;
    if quic.is_some() && !cfg!(feature = "quic") {
        return Err(
            "a quic:// listen address was given, and this veil was built without QUIC \
             (cargo feature `quic`)"
                .into(),
        );
    }
    // A node always listens on TCP (the transport every node speaks); with
    // only a QUIC address given, TCP takes the same IP and port.
    let tcp = of(Transport::Tcp)?.or(quic).unwrap_or(default);
    Ok((tcp, quic))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(listen: &[&str]) -> Overrides {
        Overrides {
            listen: listen.iter().map(|a| address::parse(a).unwrap()).collect(),
            data_dir: Some("/tmp/veil-test".into()),
            ..Overrides::default()
        }
    }

    #[test]
    #[cfg(feature = "quic")]
    fn defaults_listen_on_tcp_and_quic_and_dial_quic() {
        let s = resolve(FileConfig::default(), flags(&[])).unwrap();
        assert_eq!(s.listen_tcp, "127.0.0.1:7700".parse().unwrap());
        assert_eq!(s.listen_quic, Some(s.listen_tcp));
        assert!(s.quic_dials);
        assert_eq!(s.transport_race_delay_ms, 250);
    }

    #[test]
    fn the_anonymity_preset_sets_every_defence_and_settings_override_it() {
        use veil_core::node::Anonymity;
        let default = resolve(FileConfig::default(), flags(&["127.0.0.1:7800"])).unwrap();
        assert_eq!(default.cover, Anonymity::Default.cover());
        assert_eq!(default.link_padding, veil_core::link::LinkPadding::FULL);
        assert_eq!(default.second_layer_guards, 4);
        assert!(!default.shaping.is_on());
        let strict: FileConfig = toml::from_str(
            "anonymity = \"strict\"\ncover_budget = 1234\nsecond_layer_guards = 2\n",
        )
        .unwrap();
        let strict = resolve(strict, flags(&["127.0.0.1:7800"])).unwrap();
        assert_eq!(
            strict.cover.budget, 1234,
            "the setting overrides the preset"
        );
        assert_eq!(
            strict.cover.loop_interval,
            Anonymity::Strict.cover().loop_interval
        );
        assert_eq!(strict.shaping, Anonymity::Strict.shaping());
        assert_eq!(strict.mixing_delay_ms, 10);
        assert_eq!(strict.extra_path_relays, 1);
        assert_eq!(strict.second_layer_guards, 2);
        let off: FileConfig = toml::from_str("anonymity = \"off\"\n").unwrap();
        let off = resolve(off, flags(&["127.0.0.1:7800"])).unwrap();
        assert!(!off.cover.is_on());
        assert_eq!(off.second_layer_guards, 0);
        assert_eq!(off.link_padding, veil_core::link::LinkPadding::NONE);
    }

    #[test]
    fn an_unknown_preset_or_too_many_layer_2_guards_is_refused_in_one_line() {
        let unknown: FileConfig = toml::from_str("anonymity = \"paranoid\"\n").unwrap();
        let e = resolve(unknown, flags(&["127.0.0.1:7800"])).unwrap_err();
        assert_eq!(
            e,
            "anonymity = \"paranoid\": use \"off\", \"default\" or \"strict\""
        );
        let many: FileConfig = toml::from_str("second_layer_guards = 9\n").unwrap();
        let e = resolve(many, flags(&["127.0.0.1:7800"])).unwrap_err();
        assert!(
            e.starts_with("second_layer_guards = 9: use 0 (off) to 8"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    #[test]
    fn a_tcp_address_alone_means_no_quic() {
        let s = resolve(FileConfig::default(), flags(&["127.0.0.1:7800"])).unwrap();
        assert_eq!(s.listen_quic, None);
        assert!(!s.quic_dials);
    }

    #[test]
    #[cfg(feature = "quic")]
    fn a_quic_address_alone_listens_on_tcp_there_too() {
        let s = resolve(FileConfig::default(), flags(&["quic://127.0.0.1:7900"])).unwrap();
        assert_eq!(s.listen_quic, Some("127.0.0.1:7900".parse().unwrap()));
        assert_eq!(s.listen_tcp, "127.0.0.1:7900".parse().unwrap());
    }

    #[test]
    fn two_addresses_of_one_transport_are_refused() {
        let e = resolve(
            FileConfig::default(),
            flags(&["127.0.0.1:1", "tcp://127.0.0.1:2"]),
        )
        .unwrap_err();
        assert!(e.contains("at most one per transport"), "{e}");
    }

    #[test]
    #[cfg(not(feature = "quic"))]
    fn quic_addresses_are_refused_without_the_quic_feature() {
        let e = resolve(FileConfig::default(), flags(&["quic://127.0.0.1:7900"])).unwrap_err();
        assert!(e.contains("without QUIC"), "{e}");
    }

    #[test]
    fn quic_dials_without_a_quic_socket_is_refused() {
        let file: FileConfig = toml::from_str("quic_dials = true").unwrap();
        let e = resolve(file, flags(&["127.0.0.1:7800"])).unwrap_err();
        assert!(e.contains("quic://"), "{e}");
    }

    #[test]
    fn the_control_socket_is_in_the_data_directory_unless_configured() {
        let s = resolve(FileConfig::default(), flags(&[])).unwrap();
        assert_eq!(
            s.control,
            ControlAddress::Unix("/tmp/veil-test/control.sock".into())
        );
        let file: FileConfig = toml::from_str(r#"control = "127.0.0.1:7701""#).unwrap();
        let s = resolve(file, flags(&[])).unwrap();
        assert_eq!(
            s.control,
            ControlAddress::Tcp("127.0.0.1:7701".parse().unwrap())
        );
        let file: FileConfig = toml::from_str(r#"control = "192.0.2.1:7701""#).unwrap();
        let e = resolve(file, flags(&[])).unwrap_err();
        assert!(e.contains("not a loopback address"), "{e}");
        let e = toml::from_str::<FileConfig>(r#"control = "localhost:7701""#).unwrap_err();
        assert!(e.to_string().contains("neither IP:PORT nor a path"), "{e}");
    }

    #[test]
    fn a_service_is_offered_only_when_asked() {
        let s = resolve(FileConfig::default(), flags(&[])).unwrap();
        assert!(!s.service);
        let file: FileConfig = toml::from_str("service = true").unwrap();
        assert!(resolve(file, flags(&[])).unwrap().service);
        assert!(toml::from_str::<FileConfig>(r#"service = "yes""#).is_err());
    }

    /// packaging/veil.example.toml, the commented example config.
    const EXAMPLE: &str = include_str!("../../../packaging/veil.example.toml");

    /// The example with every "#name = value" line turned on.
    fn example_all_set() -> String {
        EXAMPLE
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase()) => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_example_config_parses_as_shipped_and_with_every_setting_on() {
        let shipped: FileConfig = toml::from_str(EXAMPLE).expect("the example as shipped");
        let s = resolve(shipped, Overrides::default()).expect("resolves");
        assert_eq!(s.log_filter, "info");
        assert!(s.relay);
        assert_eq!(s.metrics, None, "metrics are off by default");
        let all: FileConfig = toml::from_str(&example_all_set()).expect("every setting on");
        // Naming every field, without `..`: a field added to FileConfig
        // does not compile here until the example shows it too.
        let FileConfig {
            listen,
            advertise,
            bootstrap,
            quic_dials,
            transport_race_delay_ms,
            data_dir,
            control,
            log_level,
            log_format,
            metrics,
            relay,
            links,
            max_pending_dials,
            max_half_open,
            path_relays,
            extra_path_relays,
            gossip_interval_ms,
            bootstrap_retry_ms,
            snapshot_interval_secs,
            extend_to_private_addresses,
            introducers,
            reachability,
            service,
            probe_resistant,
            link_padding,
            message_padding,
            anonymity,
            cover_budget,
            mixing_delay_ms,
            second_layer_guards,
        } = &all;
        let set = [
            listen.is_some(),
            advertise.is_some(),
            bootstrap.is_some(),
            quic_dials.is_some(),
            transport_race_delay_ms.is_some(),
            data_dir.is_some(),
            control.is_some(),
            log_level.is_some(),
            log_format.is_some(),
            metrics.is_some(),
            relay.is_some(),
            links.is_some(),
            max_pending_dials.is_some(),
            max_half_open.is_some(),
            path_relays.is_some(),
            extra_path_relays.is_some(),
            gossip_interval_ms.is_some(),
            bootstrap_retry_ms.is_some(),
            snapshot_interval_secs.is_some(),
            extend_to_private_addresses.is_some(),
            introducers.is_some(),
            reachability.is_some(),
            service.is_some(),
            probe_resistant.is_some(),
            link_padding.is_some(),
            message_padding.is_some(),
            anonymity.is_some(),
            cover_budget.is_some(),
            mixing_delay_ms.is_some(),
            second_layer_guards.is_some(),
        ];
        assert!(
            set.iter().all(|&x| x),
            "a field the example does not show: {set:?}"
        );
        assert_eq!(*metrics, Some("127.0.0.1:9870".parse().unwrap()));
        #[cfg(feature = "quic")]
        resolve(all, Overrides::default()).expect("every setting on resolves");
    }

    #[test]
    fn every_setting_in_the_example_has_a_comment_above_it() {
        let mut previous = "";
        let mut settings = 0;
        for line in EXAMPLE.lines() {
            let setting = line.trim_start_matches('#');
            let is_setting =
                setting.starts_with(|c: char| c.is_ascii_lowercase()) && setting.contains(" = ");
            if is_setting {
                settings += 1;
                assert!(
                    previous.starts_with("# ") || previous == "#",
                    "{line:?} has no comment above it"
                );
            }
            previous = line;
        }
        assert_eq!(settings, 30, "one line per field of FileConfig");
    }

    #[test]
    fn toml_takes_one_address_or_a_list() {
        let one: FileConfig = toml::from_str(r#"listen = "quic://127.0.0.1:1""#).unwrap();
        assert_eq!(one.listen.unwrap().len(), 1);
        let many: FileConfig =
            toml::from_str(r#"bootstrap = ["127.0.0.1:1", "quic://127.0.0.2:1"]"#).unwrap();
        let many = many.bootstrap.unwrap();
        assert_eq!(many[1].address.transport, Transport::Quic);
        assert!(toml::from_str::<FileConfig>(r#"listen = "udp://1.2.3.4:5""#).is_err());
    }
}
