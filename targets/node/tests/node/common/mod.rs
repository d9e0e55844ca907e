//! Running the built `veil` binary from tests: bounded waits, scratch
//! directories, and children that are killed whatever happens.
#![allow(dead_code)]

use std::fs;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod netns;

pub const VEIL: &str = env!("CARGO_BIN_EXE_veil");

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "veil-test-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Children killed on drop, so a failing test leaves no process behind.
#[derive(Default)]
pub struct Children(pub Vec<Child>);

impl Children {
    pub fn push(&mut self, child: Child) -> usize {
        self.0.push(child);
        self.0.len() - 1
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `veil args…` with `stdin`, killing it after `timeout`.
pub fn run(args: &[&str], stdin: &[u8], timeout: Duration) -> Output {
    use std::io::Write;
    let mut child = Command::new(VEIL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn veil");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output());
    let start = Instant::now();
    while !waiter.is_finished() {
        if start.elapsed() > timeout {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!(
                "`veil {}` did not finish within {timeout:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    waiter.join().expect("waiter").expect("veil output")
}

/// Waits for `child` to exit, at most `timeout`.
pub fn wait(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port free on `ip` a moment ago.
pub fn free_addr(ip: &str) -> SocketAddr {
    let ip: IpAddr = ip.parse().expect("ip");
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).expect("bind port 0");
    listener.local_addr().expect("local addr")
}

/// Polls `f` every 100 ms until it returns `Some`, at most `timeout`.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The text of a file, or empty.
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Makes the data directory `data` (mode 0700) and a fresh identity key in
/// it with `veil keygen`; returns the new node's id (hex), as printed.
pub fn keygen_into(data: &Path) -> String {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data)
        .expect("data dir");
    let key = data.join("identity.key");
    let out = run(
        &["keygen", "--out", key.to_str().expect("utf-8")],
        b"",
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts `veil node` with `dir/veil.toml`, its stderr in `dir/stderr.log`
/// (stdin and stdout closed).
pub fn spawn_node(dir: &Path) -> Child {
    Command::new(VEIL)
        .args(["node", "--config"])
        .arg(dir.join("veil.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("stderr.log")).expect("log"))
        .spawn()
        .expect("spawn veil node")
}
