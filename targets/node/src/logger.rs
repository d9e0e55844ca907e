//! A minimal `log` backend: one line per record on stderr.

use std::io::Write;
use std::time::Instant;

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    start: Instant,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let t = self.start.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        // A closed stderr must not stop the node.
        let _ = writeln!(
            err,
            "{t:9.3} {:5} {}: {}",
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Parses a level name: off, error, warn, info, debug, trace.
pub fn parse_level(name: &str) -> Result<LevelFilter, String> {
    name.parse::<LevelFilter>().map_err(|_| {
        format!("unknown log level {name:?}; use off, error, warn, info, debug or trace")
    })
}

/// Sends log records at `level` and above to stderr.
pub fn init(level: LevelFilter) {
    let logger = Box::new(StderrLogger {
        start: Instant::now(),
    });
    // Only fails if a logger is set already, which leaves that one working.
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
