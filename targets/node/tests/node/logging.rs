//! `veil node`'s logs: per-module filters (from the config's `log_level`,
//! `RUST_LOG` and `--log-level`, in that order of strength) and the JSON
//! format, on a real node process.

use crate::common;

use std::fs::{self, File};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{eventually, free_addr, Children, Scratch, VEIL};

/// Starts a node with `config` (data_dir and listen added) and `env`;
/// returns its stderr once it has logged `until`, or panics after 20 s.
fn logs(name: &str, config: &str, env: &[(&str, &str)], args: &[&str], until: &str) -> String {
    let scratch = Scratch::new(name);
    let data = scratch.path("data");
    let listen = free_addr("127.94.0.5");
    let path = scratch.path("veil.toml");
    fs::write(
        &path,
        format!(
            "data_dir = \"{}\"\nlisten = \"{listen}\"\n{config}",
            data.display()
        ),
    )
    .expect("config");
    let stderr = scratch.path("stderr.log");
    let mut children = Children::default();
    let mut command = Command::new(VEIL);
    command
        .args(["node", "--config"])
        .arg(&path)
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).expect("log"));
    children.push(command.spawn().expect("spawn veil node"));
    eventually(Duration::from_secs(20), || {
        let text = common::read(&stderr);
        text.contains(until).then_some(text)
    })
    .unwrap_or_else(|| panic!("no {until:?} in:\n{}", common::read(&stderr)))
}

#[test]
fn a_module_directive_lets_one_module_through_at_its_own_level() {
    // Warnings only, except the daemon's info lines.
    let text = logs(
        "log-modules",
        "log_level = \"warn,veil::daemon=info\"\n",
        &[],
        &[],
        "created identity key",
    );
    assert!(
        !text.contains("listening on"),
        "the node thread's info line passed a warn filter:\n{text}"
    );
    // RUST_LOG overrides the config: now the node thread is let through.
    let text = logs(
        "log-rust-log",
        "log_level = \"warn\"\n",
        &[("RUST_LOG", "info")],
        &[],
        "listening on",
    );
    assert!(text.contains("created identity key"), "{text}");
    // And --log-level overrides RUST_LOG.
    let text = logs(
        "log-flag",
        "",
        &[("RUST_LOG", "off")],
        &["--log-level", "veil::host=info"],
        "listening on",
    );
    assert!(!text.contains("created identity key"), "{text}");
}

#[test]
fn json_lines_are_json_objects_with_level_target_and_message() {
    let text = logs(
        "log-json",
        "log_format = \"json\"\n",
        &[],
        &[],
        "listening on",
    );
    let mut seen = 0;
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert_eq!(v["level"], "INFO", "{line}");
        assert!(
            v["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("veil::")),
            "{line}"
        );
        assert!(v["fields"]["message"].is_string(), "{line}");
        seen += 1;
    }
    assert!(seen >= 2, "{text}");
}

#[test]
fn a_filter_that_does_not_parse_stops_the_node_in_one_line() {
    let out = common::run(
        &[
            "node",
            "--data-dir",
            "/nonexistent/veil",
            "--log-level",
            "info,veil=loud",
        ],
        b"",
        Duration::from_secs(20),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("\"info,veil=loud\" is not a filter"),
        "{stderr}"
    );
}
