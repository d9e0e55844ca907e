//! `veil`: run a veil node, talk to it, or run a whole local network.
//!
//! Every failure is one line on stderr and a non-zero exit status.
//!
//! # Layers
//!
//! Each module imports only from the layers below its own, so the crate
//! reads from the top down:
//!
//! 1. this file: the command line, dispatched to one module per
//!    subcommand;
//! 2. the subcommands: `daemon` (`veil node`), `control_commands`
//!    (`veil send`, `reply`, `learn-service`, `listen`, `status`), `demo`,
//!    `bench`, `replay`;
//! 3. what they are built from: `control_server` (the control socket in
//!    `veil node`, over `control_listener` and `control_cookie`),
//!    `metrics_server` (`veil node --metrics`: Prometheus metrics over
//!    HTTP),
//!    `local_network` (many nodes on loopback, for `demo` and `bench`),
//!    `saved_bootstrap` (where a restarted node dials), `service_file`
//!    (the rendezvous service's descriptor file) and `terminal_text`
//!    (received messages made safe for a terminal);
//! 4. `host`: one node on its own thread, driven by commands;
//! 5. the bottom: `host_protocol` (the commands a host takes and the
//!    notices it sends), `config` (over `address`, `data_dir` and
//!    `logger`), `keyfile`, `snapshot` (both over `atomic_file`),
//!    `node_metrics` (the metric families the node thread keeps) and
//!    `link_names` (the words status and metrics name links by).
//!
//! Under all of them is the crate's library, `veil_node` (`lib.rs`): the
//! control socket's protocol, its status types and the one client, which
//! the integration tests use too.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
    )
)]

// Subcommands. `demo`, `bench` and `replay` (and the local networks they
// run) only with the `dev-tools` feature; `man` and `completions` only with
// `docs`: an operator's node leaves them out (see Cargo.toml).
#[cfg(feature = "dev-tools")]
mod bench;
mod control_commands;
mod daemon;
#[cfg(feature = "dev-tools")]
mod demo;
#[cfg(feature = "dev-tools")]
mod replay;

// What they are built from.
mod control_cookie;
mod control_listener;
mod control_server;
#[cfg(feature = "dev-tools")]
mod local_network;
mod metrics_server;
mod saved_bootstrap;
mod service_file;
mod terminal_text;

// One node on its own thread.
mod host;

// The bottom.
mod address;
mod atomic_file;
mod config;
mod data_dir;
mod host_protocol;
mod keyfile;
mod link_names;
mod logger;
#[cfg(feature = "docs")]
mod man_page;
mod node_metrics;
mod node_state;
mod snapshot;

use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "docs")]
use clap::CommandFactory;
use clap::{Parser, Subcommand};
#[cfg(feature = "docs")]
use clap_complete::shells::{Bash, Fish, Zsh};
use control_commands::ControlArgs;

#[derive(Debug, Parser)]
#[command(name = "veil", version, about = "veil: a peer-to-peer overlay network")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an identity key file (32 secret bytes, mode 0600) and print
    /// its node id.
    Keygen {
        /// Where to write the key; must not exist yet.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a node: TCP listener, control socket, persisted identity and
    /// node table.
    Node(daemon::NodeArgs),
    /// Send stdin as one message to a node, or to a service learnt with
    /// `veil learn-service`, through the local node; exits 0 once the
    /// destination acknowledged it.
    Send {
        /// The destination's node id, or a learnt service's id (64 hex
        /// digits).
        node_id: String,
        #[command(flatten)]
        control: ControlArgs,
        /// Give up after this many seconds without an acknowledgement.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Send stdin as one reply to an anonymous message, over the circuit it
    /// came on; exits 0 once the sender acknowledged it.
    Reply {
        /// The message's reply token: its `reply_to` in `veil listen
        /// --json`.
        token: String,
        #[command(flatten)]
        control: ControlArgs,
        /// Give up after this many seconds without an acknowledgement.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Give the local node a rendezvous service's descriptor (the
    /// service.descriptor file of the node offering it) and print the
    /// service's id, which `veil send` then sends to.
    LearnService {
        /// The descriptor file.
        file: PathBuf,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Print every message the local node receives. On a terminal, control
    /// characters, escape sequences and invalid UTF-8 are shown escaped
    /// (\xNN) unless --raw is given.
    Listen {
        #[command(flatten)]
        control: ControlArgs,
        /// Print each message as the control socket's JSON line instead of
        /// its bytes.
        #[arg(long)]
        json: bool,
        /// Write each message's bytes unchanged even to a terminal (they
        /// come from anonymous senders and may hold escape sequences).
        #[arg(long, conflicts_with = "json")]
        raw: bool,
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Show the local node's links, circuits, known nodes and traffic.
    Status {
        #[command(flatten)]
        control: ControlArgs,
        /// Print the control socket's JSON answer as is.
        #[arg(long)]
        json: bool,
    },
    #[cfg(feature = "dev-tools")]
    /// Replay a trace recorded with `veil node --record` into a fresh node
    /// and check that every output matches. Exits 1 at the first mismatch.
    Replay {
        /// The trace file. It holds the recorded node's secret key.
        file: PathBuf,
        /// A trace without its end record (the node was killed) is fine:
        /// report how far it matched and exit 0.
        #[arg(long)]
        allow_truncated: bool,
    },
    #[cfg(feature = "dev-tools")]
    /// Benchmark a local loopback network: circuit build time, bulk
    /// throughput through one circuit, peak RSS per node.
    Bench(bench::BenchArgs),
    #[cfg(feature = "dev-tools")]
    /// Run a whole network on loopback in this process, send messages over
    /// 3-relay circuits, print a summary.
    Demo {
        /// Nodes in the network (at least 5).
        #[arg(long, default_value_t = 8)]
        nodes: usize,
        /// Messages between random pairs of nodes.
        #[arg(long, default_value_t = 32)]
        messages: usize,
        /// Mebibytes sent through one circuit to measure throughput (0: skip).
        #[arg(long, default_value_t = 20)]
        bulk_mib: usize,
        /// Seed for the pairs and payloads (random if not given).
        #[arg(long)]
        seed: Option<u64>,
        /// What the nodes log: a level (off, error, warn, info, debug,
        /// trace) or module=level directives.
        #[arg(long, default_value = "warn")]
        log_level: String,
    },
    #[cfg(feature = "docs")]
    /// Print a shell completion script for veil. For bash:
    /// `veil completions bash > ~/.local/share/bash-completion/completions/veil`;
    /// zsh: into a directory on $fpath as `_veil`; fish:
    /// `~/.config/fish/completions/veil.fish`.
    Completions {
        /// The shell.
        shell: CompletionShell,
    },
    #[cfg(feature = "docs")]
    /// Print the manual page, veil(1), in roff (`veil man | man -l -`), or
    /// write one page per command into a directory.
    Man {
        /// Write veil.1, veil-node.1, ... into this directory instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// The shells `veil completions` writes scripts for. Only these three:
/// each further shell's generator is code in the binary (see
/// docs/operations.md, "Binary size").
#[cfg(feature = "docs")]
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

fn main() -> ExitCode {
    // A bug must still end as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("veil: internal error: {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                eprintln!("veil: no command given (see veil --help)");
                return ExitCode::from(2);
            }
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("veil: {line} (see veil --help)");
            return ExitCode::from(2);
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("veil: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Keygen { out } => {
            let identity = keyfile::create(&out)?;
            println!("{}", identity.node_id());
            Ok(())
        }
        Command::Node(args) => daemon::run(args),
        #[cfg(feature = "dev-tools")]
        Command::Bench(args) => bench::run(args),
        #[cfg(feature = "dev-tools")]
        Command::Replay {
            file,
            allow_truncated,
        } => replay::run(&file, allow_truncated),
        Command::Send {
            node_id,
            control,
            timeout,
        } => control_commands::send(&control, &node_id, timeout),
        Command::Reply {
            token,
            control,
            timeout,
        } => control_commands::reply(&control, &token, timeout),
        Command::LearnService { file, control } => control_commands::learn_service(&control, &file),
        Command::Listen {
            control,
            json,
            raw,
            count,
        } => control_commands::listen(&control, control_commands::Output::new(json, raw), count),
        Command::Status { control, json } => control_commands::status(&control, json),
        #[cfg(feature = "docs")]
        Command::Completions { shell } => {
            let (mut command, mut out) = (Cli::command(), std::io::stdout());
            match shell {
                CompletionShell::Bash => {
                    clap_complete::generate(Bash, &mut command, "veil", &mut out)
                }
                CompletionShell::Zsh => {
                    clap_complete::generate(Zsh, &mut command, "veil", &mut out)
                }
                CompletionShell::Fish => {
                    clap_complete::generate(Fish, &mut command, "veil", &mut out)
                }
            }
            Ok(())
        }
        #[cfg(feature = "docs")]
        Command::Man { out_dir } => {
            man_page::write(Cli::command(), out_dir.as_deref()).map_err(|e| e.to_string())
        }
        #[cfg(feature = "dev-tools")]
        Command::Demo {
            nodes,
            messages,
            bulk_mib,
            seed,
            log_level,
        } => {
            logger::init(
                logger::parse_filter(&log_level).map_err(|e| e.to_string())?,
                logger::LogFormat::Text,
            );
            demo::run(demo::DemoOptions {
                nodes,
                messages,
                bulk_mib,
                seed,
            })
        }
    }
}
