//! The `veil` binary's one-shot commands: demo, keygen, completions and
//! man, and the errors of `veil node` on bad keys, a corrupt node table and
//! bad arguments.

use crate::common;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::{run, Scratch};

/// A data directory as `veil node` wants it: mode 0700.
fn private_dir(path: &Path) {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .expect("data dir");
}

#[test]
fn demo_runs_a_network_and_prints_the_summary() {
    let out = run(&["demo"], b"", Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for line in [
        "discovery",
        "32/32 delivered exactly once and intact",
        "circuits",
        "bulk",
        "veil demo: ok",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
}

#[test]
fn demo_refuses_too_few_nodes_in_one_line() {
    let out = run(&["demo", "--nodes", "3"], b"", Duration::from_secs(30));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("at least 5 nodes"), "{stderr}");
}

#[test]
fn keygen_writes_a_private_key_and_never_overwrites() {
    let dir = Scratch::new("keygen");
    let key = dir.path("id.key");
    let key_arg = key.to_str().expect("utf-8 path");
    let out = run(&["keygen", "--out", key_arg], b"", Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "prints the node id: {id:?}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let meta = fs::metadata(&key).expect("key written");
    assert_eq!(meta.len(), 32);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let before = fs::read(&key).expect("key");
    let again = run(&["keygen", "--out", key_arg], b"", Duration::from_secs(30));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(fs::read(&key).expect("key"), before, "key unchanged");
}

#[test]
fn node_refuses_a_key_others_can_read_or_of_the_wrong_length() {
    let dir = Scratch::new("badkey");
    let data = dir.path("data");
    private_dir(&data);
    let key = data.join("identity.key");
    let key_arg = key.to_str().expect("utf-8 path");
    let data_arg = data.to_str().expect("utf-8 path");
    assert!(
        run(&["keygen", "--out", key_arg], b"", Duration::from_secs(30))
            .status
            .success()
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let listen = common::free_addr("127.0.0.1").to_string();
    let args = ["node", "--data-dir", data_arg, "--listen", &listen];
    let out = run(&args, b"", Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("mode 0644"), "{stderr}");

    fs::write(&key, [7u8; 31]).expect("short key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = run(&args, b"", Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("31 bytes, not 32"), "{stderr}");
}

#[test]
fn node_refuses_a_corrupt_node_table_in_one_line_and_keeps_it() {
    let dir = Scratch::new("badsnapshot");
    let data = dir.path("data");
    private_dir(&data);
    let snapshot = data.join("nodes.json");
    let data_arg = data.to_str().expect("utf-8 path");
    // A key made beforehand, so the node logs nothing about creating one.
    let key = data.join("identity.key");
    let made = run(
        &["keygen", "--out", key.to_str().expect("utf-8 path")],
        b"",
        Duration::from_secs(30),
    );
    assert!(made.status.success(), "{made:?}");
    let listen = common::free_addr("127.0.0.1").to_string();
    let args = ["node", "--data-dir", data_arg, "--listen", &listen];
    for (text, says) in [
        // Torn (which atomic saves never leave), garbage, empty.
        (
            &br#"{"version":1,"descriptors":["00"#[..],
            "nodes.json is corrupt",
        ),
        (b"\x7fELF\x00\x01", "nodes.json is corrupt"),
        (b"", "nodes.json is corrupt"),
        (br#"{"version":1,"descriptors":["not hex"]}"#, "not hex"),
        (br#"{"version":9,"descriptors":[]}"#, "format version 9"),
    ] {
        fs::write(&snapshot, text).expect("write the snapshot");
        let out = run(&args, b"", Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started over {text:?}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert_eq!(
            fs::read(&snapshot).expect("snapshot"),
            text,
            "the refused file is left for the operator"
        );
    }
}

/// As ssh does for `~/.ssh`: a data directory that group or others can
/// enter is refused before anything is read or created in it, in one line
/// that says how to fix it; a new one is created 0700.
#[test]
fn node_refuses_a_data_directory_others_can_access() {
    let dir = Scratch::new("opendir");
    let data = dir.path("data");
    private_dir(&data);
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).expect("chmod");
    let data_arg = data.to_str().expect("utf-8 path");
    let listen = common::free_addr("127.0.0.1").to_string();
    let args = ["node", "--data-dir", data_arg, "--listen", &listen];
    let out = run(&args, b"", Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started in an open data directory");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("mode 0755"), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod 700 {data_arg}")),
        "{stderr}"
    );
    assert!(!data.join("identity.key").exists(), "no key made there");

    // A data directory the node creates itself is private.
    let fresh = dir.path("fresh/data");
    let fresh_arg = fresh.to_str().expect("utf-8 path");
    let out = run(
        &["node", "--data-dir", fresh_arg, "--listen", "192.0.2.1:1"],
        b"",
        Duration::from_secs(30),
    );
    assert!(!out.status.success(), "cannot listen on 192.0.2.1");
    let mode = fs::metadata(&fresh).expect("created").permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn errors_are_one_line_and_non_zero() {
    for args in [
        &["frobnicate"][..],
        &["send", "not-an-id"],
        &[
            "status",
            "--control",
            "127.0.0.1:1",
            "--data-dir",
            "/nonexistent",
        ],
        &["status", "--control", "/nonexistent/control.sock"],
        &["listen", "--control", "localhost:7701"],
        &["node", "--control", "control.sock"],
        &[
            "node",
            "--data-dir",
            "/nonexistent/x",
            "--control",
            "192.0.2.1:1",
        ],
    ] {
        let out = run(args, b"", Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "veil {args:?} succeeded");
        assert_eq!(stderr.lines().count(), 1, "veil {args:?}: {stderr}");
        assert!(stderr.starts_with("veil: "), "veil {args:?}: {stderr}");
    }
}

/// `veil learn-service` and `veil reply` check what they are given before
/// they look for a node: a file that is not a service descriptor, and a
/// reply token that is not one, are refused in one line, exit status 1.
#[test]
fn learn_service_and_reply_refuse_malformed_input_in_one_line() {
    let dir = Scratch::new("service-cli");
    let garbage = dir.path("garbage.descriptor");
    fs::write(&garbage, b"not a service descriptor\n").expect("garbage");
    let empty = dir.path("empty.descriptor");
    fs::write(&empty, b"").expect("empty");
    let long = dir.path("long.descriptor");
    fs::write(&long, vec![0u8; 1000]).expect("long");
    let missing = dir.path("missing.descriptor");
    let path = |p: &Path| p.to_str().expect("utf-8").to_string();
    let nowhere = dir.path("nowhere/control.sock");
    let control = path(&nowhere);
    for (args, says) in [
        (
            vec!["learn-service".to_string(), path(&garbage)],
            "service descriptor refused: ",
        ),
        (
            vec!["learn-service".to_string(), path(&empty)],
            "service descriptor refused: ",
        ),
        (
            vec!["learn-service".to_string(), path(&long)],
            "not a service descriptor",
        ),
        (
            vec!["learn-service".to_string(), path(&missing)],
            "cannot read",
        ),
        (
            vec!["reply".to_string(), "zz".to_string()],
            "malformed reply token",
        ),
        (
            vec!["reply".to_string(), "00".to_string()],
            "malformed reply token",
        ),
        (
            vec!["reply".to_string(), String::new()],
            "malformed reply token",
        ),
    ] {
        let mut args = args;
        args.extend(["--control".to_string(), control.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Nothing on stdin: these exit before they would read it.
        let out = run(&args, b"", Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "veil {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "veil {args:?}: {stderr}");
        assert!(
            stderr.starts_with("veil: ") && stderr.contains(says),
            "veil {args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "veil {args:?} printed something");
    }
    // Without a FILE or TOKEN: clap's one line, exit status 2.
    for args in [&["learn-service"][..], &["reply"]] {
        let out = run(args, b"", Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "veil {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "veil {args:?}: {stderr}");
    }
}

#[test]
fn completions_for_bash_zsh_and_fish_and_the_man_page_name_the_subcommands() {
    for (shell, marker, flag) in [
        ("bash", "complete -F _veil", "--metrics"),
        ("zsh", "#compdef veil", "--metrics="),
        ("fish", "complete -c veil", "-l metrics"),
    ] {
        let out = run(&["completions", shell], b"", Duration::from_secs(20));
        assert!(out.status.success(), "{out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        assert!(
            script.contains(flag),
            "{shell}: no {flag:?} (veil node's flags)"
        );
    }
    let out = run(&["completions", "tcsh"], b"", Duration::from_secs(20));
    assert!(!out.status.success());
    let out = run(&["man"], b"", Duration::from_secs(20));
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH veil 1"), "{page}");
    for sub in ["node", "status", "completions"] {
        assert!(
            page.contains(&format!("veil\\-{sub}(1)")),
            "no veil-{sub}(1) in {page}"
        );
    }
    let scratch = Scratch::new("man");
    let dir = scratch.path("man1");
    fs::create_dir(&dir).expect("dir");
    let out = run(
        &["man", "--out-dir", dir.to_str().expect("utf-8")],
        b"",
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{out:?}");
    let node = fs::read_to_string(dir.join("veil-node.1")).expect("veil-node.1");
    assert!(node.contains("\\-\\-log\\-format"), "{node}");
}
