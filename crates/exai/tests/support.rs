//! Starting the real binary for tests: a hermetic environment (no inherited EXAI_* or provider keys),
//! a temporary data directory, and for `serve` the address parsed from its "listening on" line.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_exai");

/// `exai` with a clean environment: only PATH and HOME survive, logs kept quiet.
pub fn command(envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()))
        .env("EXAI_LOG_LEVEL", "warn")
        .envs(envs.iter().copied())
        .kill_on_drop(true);
    cmd
}

/// The same, as a blocking std command for CLI tests.
pub fn std_command(envs: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()))
        .env("EXAI_LOG_LEVEL", "warn")
        .envs(envs.iter().copied());
    cmd
}

/// Installs ring as the test process's rustls provider (reqwest is built without a default one).
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A running `exai serve`, killed on drop.
pub struct Daemon {
    pub addr: SocketAddr,
    _child: Child,
    _stdout: BufReader<ChildStdout>,
    _dir: TempDir,
}

impl Daemon {
    pub async fn start(envs: &[(&str, &str)], extra_args: &[&str]) -> Self {
        crypto();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = command(envs);
        cmd.args(["serve", "--port", "0", "--data-dir"])
            .arg(dir.path())
            .args(extra_args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn exai serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
            .await
            .expect("exai serve printed nothing within 30 s")
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap();
        Self {
            addr,
            _child: child,
            _stdout: stdout,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
