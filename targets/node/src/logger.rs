//! Logs on stderr through `tracing`: one line per record, as text or JSON,
//! filtered per module.
//!
//! The core and the adapters log through the `log` facade (the core must
//! stay `no_std`, where `tracing`'s subscriber machinery is not); the
//! subscriber's `tracing-log` bridge turns those records into `tracing`
//! events, so one filter and one format cover every crate. Filters use
//! `RUST_LOG`'s syntax (`info,veil_core::circuit=debug`) because operators
//! of Rust services already know it.
//!
//! The filter is `tracing_subscriber`'s `Targets`, not its `EnvFilter`:
//! both take `level` and `module=level` directives, and only `EnvFilter`
//! also filters by span and field, which nothing in veil uses (the core has
//! no spans). `EnvFilter` brings a regular expression engine with its
//! Unicode tables, about 0.9 MiB of the stripped binary
//! (docs/operations.md, "Binary size").

use std::fmt;

use serde::Deserialize;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter a node logs with when nothing sets one.
pub const DEFAULT_FILTER: &str = "info";

/// How each record is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line: time, level, module, message.
    #[default]
    Text,
    /// One JSON object per line, for log shippers (Vector, Fluent Bit,
    /// Loki's promtail).
    Json,
}

/// A log filter that did not parse.
#[derive(Debug)]
pub struct FilterError {
    given: String,
    reason: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "log level {:?} is not a filter ({}); use a level (off, error, warn, info, debug, \
             trace) or comma-separated module=level directives, e.g. \
             \"info,veil_core::circuit=debug\"",
            self.given, self.reason
        )
    }
}

impl std::error::Error for FilterError {}

/// Checks a filter: a level, or `module=level` directives as `RUST_LOG`
/// takes them. A bare word that is not a level is refused, though
/// `RUST_LOG` would read it as a module to trace: in a config file it is
/// far more likely a misspelt level, which would silently turn logging
/// off everywhere else.
pub fn parse_filter(text: &str) -> Result<Targets, FilterError> {
    // Spaces after commas are common in hand-written config.
    let directives: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let misspelt = directives
        .iter()
        .find(|d| !d.contains('=') && d.parse::<LevelFilter>().is_err());
    if let Some(word) = misspelt {
        return Err(FilterError {
            given: text.to_string(),
            reason: format!("{word:?} is neither a level nor module=level"),
        });
    }
    directives
        .join(",")
        .parse::<Targets>()
        .map_err(|e| FilterError {
            given: text.to_string(),
            reason: e.to_string(),
        })
}

/// Sends records that `filter` lets through to stderr, in `format`, the
/// `log` records of every crate included.
pub fn init(filter: Targets, format: LogFormat) {
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    // Only fails if a subscriber or logger is set already, which leaves
    // that one working (tests that run several nodes in one process).
    let _ = match format {
        LogFormat::Text => registry.with(lines).try_init(),
        LogFormat::Json => registry.with(lines.json()).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_module_directives_parse_and_typos_do_not() {
        for good in [
            "info",
            "off",
            "warn,veil_core::circuit=debug",
            "veil_mio=trace",
        ] {
            assert!(parse_filter(good).is_ok(), "{good}");
        }
        let e = parse_filter("info,veil_core=loud").unwrap_err().to_string();
        assert!(e.contains("\"info,veil_core=loud\""), "{e}");
        assert!(e.contains("info,veil_core::circuit=debug"), "{e}");
        let e = parse_filter("inof").unwrap_err().to_string();
        assert!(
            e.contains("\"inof\" is neither a level nor module=level"),
            "{e}"
        );
        let spaced = parse_filter("WARN, veil_mio=debug").unwrap();
        assert!(spaced.would_enable("veil_mio::runtime", &tracing::Level::DEBUG));
        assert!(!spaced.would_enable("veil_core::node", &tracing::Level::INFO));
    }

    #[test]
    fn the_format_is_named_in_lowercase() {
        #[derive(Deserialize)]
        struct F {
            f: LogFormat,
        }
        let f: F = toml::from_str(r#"f = "json""#).unwrap();
        assert_eq!(f.f, LogFormat::Json);
        assert!(toml::from_str::<F>(r#"f = "xml""#).is_err());
    }
}
