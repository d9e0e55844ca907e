//! Logging through defmt with the `defmt` feature (firmware); without it
//! the macros expand to nothing (their arguments are still evaluated by
//! reference, so nothing goes unused).

/// Logs at info level.
macro_rules! log_info {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        defmt::info!($fmt $(, $arg)*);
        #[cfg(not(feature = "defmt"))]
        { $(let _ = &$arg;)* }
    }};
}

/// Logs at warn level.
macro_rules! log_warn {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        defmt::warn!($fmt $(, $arg)*);
        #[cfg(not(feature = "defmt"))]
        { $(let _ = &$arg;)* }
    }};
}

pub(crate) use {log_info, log_warn};
