//! `exai shim --start-daemon`: starts `exai serve` as a detached child (its own process group, no stdin, output
//! to `daemon.log` in the data directory) listening on the shim's WebSocket address, so it outlives the shim.

use std::path::PathBuf;
use std::process::{Command, Stdio};

#[derive(Debug, Clone)]
pub struct DaemonStarter {
    /// The `exai` binary (this one).
    pub exe: PathBuf,
    /// Global flags to pass on (`--config`, `--data-dir`).
    pub args: Vec<String>,
    /// Where the daemon's WebSocket should listen (from the shim's URL).
    pub ws_host: Option<String>,
    pub ws_port: Option<u16>,
    pub log: PathBuf,
}

impl DaemonStarter {
    /// Starts the daemon; returns its process id. The child is reaped by a thread, never waited on.
    pub fn start(&self) -> std::io::Result<u32> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.args).arg("serve");
        if let Some(host) = &self.ws_host {
            cmd.env("EXAI_WS_HOST", host);
        }
        if let Some(port) = self.ws_port {
            cmd.env("EXAI_WS_PORT", port.to_string());
        }
        // The data directory and the log are this user's only (`exai_core::private`): the daemon keeps its
        // database and token file there.
        if let Some(dir) = self.log.parent() {
            let _ = exai_core::private::create_dir(dir);
        }
        let log = exai_core::private::append(&self.log)?;
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: Ctrl-C or a signal to the assistant's group does not stop the shared daemon.
            cmd.process_group(0);
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(pid)
    }
}

/// Host and port of a `ws://host:port[/path]` URL (IPv6 hosts in brackets); `None` for parts that are missing.
pub fn host_port(url: &str) -> (Option<String>, Option<u16>) {
    let rest = url.strip_prefix("ws://").unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.ends_with(']')) => (h, p.parse().ok()),
        _ => (authority, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ((!host.is_empty()).then(|| host.to_owned()), port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_ws_urls() {
        assert_eq!(host_port("ws://127.0.0.1:8079"), (Some("127.0.0.1".into()), Some(8079)));
        assert_eq!(
            host_port("ws://127.0.0.1:9000/ws"),
            (Some("127.0.0.1".into()), Some(9000))
        );
        assert_eq!(host_port("ws://[::1]:8079"), (Some("::1".into()), Some(8079)));
        assert_eq!(host_port("ws://localhost"), (Some("localhost".into()), None));
    }
}
