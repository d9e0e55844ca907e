//! Anonymity presets (`anonymity = "off" | "default" | "strict"`): one
//! setting that chooses every defence against traffic analysis together,
//! at a cost each preset states. Measured against the harness's attacks
//! in `docs/anonymity.md`.

use core::fmt;
use core::str::FromStr;

use crate::circuit::Shaping;
use crate::link::LinkPadding;
use crate::time::Duration;

use super::{CoverTraffic, MessagePadding, NodeConfig};

/// A preset of the defences against traffic analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Anonymity {
    /// No padding, no cover, no shaping: the cells of the traffic and
    /// nothing else. What the firmware image does (it has none of the
    /// features).
    Off,
    /// Tor's channel padding on idle links, FRONT padding at the start of
    /// each burst with a light loop cover that doubles as the liveness
    /// probe of idle circuits, and vanguards-lite (4 layer-2 guards). Costs about a quarter more bytes on the
    /// harness's page loads, adds no latency.
    #[default]
    Default,
    /// Everything: constant-rate shaping of circuit ends, heavier FRONT,
    /// loop and drop cover, power-of-two message buckets, one more relay
    /// at random, and mixing delays (10 ms mean) for the cells it relays. Costs several times the bytes and a tenth of a second
    /// per 16 KiB message.
    Strict,
}

impl Anonymity {
    /// Every preset, mildest first.
    pub const ALL: [Anonymity; 3] = [Anonymity::Off, Anonymity::Default, Anonymity::Strict];

    /// The preset's name in configuration files.
    pub fn name(self) -> &'static str {
        match self {
            Anonymity::Off => "off",
            Anonymity::Default => "default",
            Anonymity::Strict => "strict",
        }
    }

    /// Idle-link padding (transport spec §4.3).
    pub fn link_padding(self) -> LinkPadding {
        match self {
            Anonymity::Off => LinkPadding::NONE,
            Anonymity::Default | Anonymity::Strict => LinkPadding::FULL,
        }
    }

    /// Message-size padding (relay spec §8.1).
    pub fn message_padding(self) -> MessagePadding {
        match self {
            Anonymity::Off | Anonymity::Default => MessagePadding::None,
            Anonymity::Strict => MessagePadding::PowersOfTwo,
        }
    }

    /// Relays added at random to each path (relay spec §7).
    pub fn extra_path_relays(self) -> usize {
        match self {
            Anonymity::Off | Anonymity::Default => 0,
            Anonymity::Strict => 1,
        }
    }

    /// Cover traffic and its budget (relay spec §8.2).
    pub fn cover(self) -> CoverTraffic {
        match self {
            Anonymity::Off => CoverTraffic::OFF,
            Anonymity::Default => CoverTraffic {
                budget: 10_000,
                loop_interval: Duration::from_secs(10),
                drop_interval: Duration::ZERO,
                front_cells: 40,
                front_window_min: Duration::from_millis(500),
                front_window_max: Duration::from_secs(3),
            },
            Anonymity::Strict => CoverTraffic {
                budget: 50_000,
                loop_interval: Duration::from_secs(1),
                drop_interval: Duration::from_secs(2),
                front_cells: 100,
                front_window_min: Duration::from_millis(300),
                front_window_max: Duration::from_secs(2),
            },
        }
    }

    /// Constant-rate shaping of circuit ends (relay spec §8.3).
    pub fn shaping(self) -> Shaping {
        match self {
            Anonymity::Off | Anonymity::Default => Shaping::OFF,
            Anonymity::Strict => Shaping {
                interval: Duration::from_millis(20),
                bucket: 32,
                linger: Duration::from_millis(1500),
            },
        }
    }

    /// Mean mixing delay at each relay for the cells this node relays
    /// (relay spec §9.1).
    pub fn mixing_delay_mean(self) -> Duration {
        match self {
            Anonymity::Off | Anonymity::Default => Duration::ZERO,
            Anonymity::Strict => Duration::from_millis(10),
        }
    }

    /// Layer-2 guards for the second hop of every path (relay spec §11,
    /// vanguards-lite).
    pub fn second_layer_guards(self) -> usize {
        match self {
            Anonymity::Off => 0,
            Anonymity::Default | Anonymity::Strict => 4,
        }
    }

    /// `config` with every defence set as this preset says.
    pub fn apply(self, config: NodeConfig) -> NodeConfig {
        let mut config = config;
        config.link.padding = self.link_padding();
        config.message_padding = self.message_padding();
        config.extra_path_relays = self.extra_path_relays();
        config.cover = self.cover();
        config.shaping = self.shaping();
        config.mixing_delay_mean = self.mixing_delay_mean();
        config.second_layer_guards = self.second_layer_guards();
        config
    }
}

impl fmt::Display for Anonymity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An anonymity preset name that is none of the three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownAnonymity;

impl fmt::Display for UnknownAnonymity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown anonymity preset: use \"off\", \"default\" or \"strict\"")
    }
}

impl core::error::Error for UnknownAnonymity {}

impl FromStr for Anonymity {
    type Err = UnknownAnonymity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Anonymity::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or(UnknownAnonymity)
    }
}
