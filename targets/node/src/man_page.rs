//! `veil man`: the manual, rendered from the same clap definitions as
//! `--help` by `clap_mangen`, so it cannot drift from the command line.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why the manual was not written.
#[derive(Debug)]
pub enum ManError {
    /// Standard output did not take it (a closed pipe, a full disk).
    Stdout(io::Error),
    /// The pages could not be written into the directory.
    Dir { dir: PathBuf, source: io::Error },
}

impl fmt::Display for ManError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManError::Stdout(e) => write!(f, "cannot write the man page to stdout: {e}"),
            ManError::Dir { dir, source } => write!(
                f,
                "cannot write man pages into {} ({source}); create the directory or pick \
                 another --out-dir",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for ManError {}

/// Writes `veil(1)` to stdout, or, with `out_dir`, one page per command
/// into it: `veil.1`, `veil-node.1`, `veil-send.1`, ...
pub fn write(command: clap::Command, out_dir: Option<&Path>) -> Result<(), ManError> {
    match out_dir {
        Some(dir) => clap_mangen::generate_to(command, dir).map_err(|source| ManError::Dir {
            dir: dir.to_path_buf(),
            source,
        }),
        None => {
            let mut out = io::stdout().lock();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .and_then(|()| out.flush())
                .map_err(ManError::Stdout)
        }
    }
}
