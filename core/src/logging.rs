//! Logging that costs nothing unless asked for: with the `defmt` feature
//! (firmware) messages go to defmt, with the `log` feature (std) to the
//! `log` facade, and with neither the macros expand to nothing.
//!
//! Arguments must implement both `defmt::Format` and `core::fmt::Display`
//! (node ids, link ids and close reasons do).

/// Logs at info level through whichever backend is enabled.
macro_rules! log_info {
    ($($arg:tt)+) => {{
        #[cfg(feature = "defmt")]
        defmt::info!($($arg)+);
        #[cfg(feature = "log")]
        log::info!($($arg)+);
    }};
}

/// Logs at warn level through whichever backend is enabled.
macro_rules! log_warn {
    ($($arg:tt)+) => {{
        #[cfg(feature = "defmt")]
        defmt::warn!($($arg)+);
        #[cfg(feature = "log")]
        log::warn!($($arg)+);
    }};
}

pub(crate) use {log_info, log_warn};
