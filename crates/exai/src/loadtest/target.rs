//! The server under test. Either a running daemon given by URL (refused unless loopback, or `--allow-remote`),
//! or one the runner starts: the upstream simulator in this process plus an `exai serve` child on free ports with
//! its GLM / Kimi base URLs pointed at the simulator and dummy keys (for stdio: one `exai stdio` child per
//! session instead). Started servers get a clean environment and a temporary data directory.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use exai_sim::{LatencyProfile, SimConfig, SimHandle, Simulator};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::client::stdio::Launch;
use super::client::{Session, http::HttpSession, stdio::StdioSession, ws::WsSession};
use super::options::{LatencyChoice, Protocol, TargetArgs, Transport, Upstream};

/// Refuses a URL whose host is not a loopback address, unless `allow_remote`.
pub fn check_loopback(url: &str, allow_remote: bool) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
    let host = parsed.host_str().unwrap_or_default();
    if !is_loopback(&parsed) && !allow_remote {
        bail!(
            "refusing to load-test {url}: {host} is not a loopback address (pass --allow-remote to target another \
             machine you are allowed to load)"
        );
    }
    Ok(())
}

/// Whether `url` names this machine's loopback interface.
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The tokens a run presents. `http` goes with `/mcp` and `/metrics` (and a started server gets it as both its
/// HTTP and WebSocket token); `ws` is the WebSocket token of a running `--target`; without one, the token file
/// (`ws-token`) in `data_dir`, this user's data directory, where the local daemon keeps it.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub http: Option<String>,
    pub ws: Option<String>,
    pub data_dir: PathBuf,
}

impl Tokens {
    /// `--token` for both, else `EXAI_HTTP_TOKEN` / `EXAI_WS_TOKEN` from `config`.
    pub fn new(config: &exai_core::config::Config, flag: Option<String>) -> Self {
        let expose = |s: &Option<exai_core::config::Secret>| s.as_ref().map(|t| t.expose().to_owned());
        Self {
            http: flag.clone().or_else(|| expose(&config.http.token)),
            ws: flag.or_else(|| expose(&config.ws.token)),
            data_dir: config.data_dir.clone(),
        }
    }
}

/// The WebSocket token in `data_dir`'s token file, or an error saying how to give one.
fn token_file(data_dir: &Path) -> anyhow::Result<String> {
    match exai_core::ws_token::read(data_dir)? {
        Some(token) => Ok(token.expose().to_owned()),
        None => bail!(
            "no WebSocket token: pass --token or set EXAI_WS_TOKEN, or run on the daemon's machine as its user (its \
             token file {} does not exist)",
            exai_core::ws_token::path(data_dir).display()
        ),
    }
}

/// What the sessions connect to, and what the runner started (stopped by [`Target::stop`] or on drop).
pub struct Target {
    pub transport: Transport,
    /// The daemon's HTTP base (`http://host:port`): `/mcp`, `/metrics`. None for started stdio children.
    pub http_base: Option<String>,
    pub ws_url: Option<String>,
    pub token: Option<String>,
    /// The token WebSocket sessions say `hello` with (see [`Tokens`]).
    pub ws_token: Option<String>,
    /// HTTP sessions use the stateless 2026-07-28 era.
    pub stateless: bool,
    /// The runner started this server, so no other client's calls are counted in its metrics.
    pub exclusive: bool,
    /// The started simulator (scenarios script it).
    pub sim: Option<SimHandle>,
    /// Every replica's HTTP base (`--replicas`; one entry otherwise, none for stdio). `http_base` is the first.
    pub http_bases: Vec<String>,
    stdio: Option<Launch>,
    daemons: Vec<(Child, BufReader<ChildStdout>)>,
    _data_dirs: Vec<tempfile::TempDir>,
}

impl Target {
    /// Connects to `args.target`, or starts a server. `latency` applies to a started simulator; `env` is extra
    /// settings a started server needs (the scenario's, then `--server-env`). `replicas` started `exai serve`
    /// children share the one simulator (and whatever Redis / PostgreSQL `env` names).
    pub async fn prepare(
        args: &TargetArgs,
        transport: Transport,
        latency: LatencyChoice,
        mut env: Vec<(String, String)>,
        tokens: Tokens,
        replicas: usize,
    ) -> anyhow::Result<Self> {
        let token = tokens.http.clone();
        if let Some(base) = args.target.as_deref().filter(|_| !args.start) {
            if transport == Transport::Stdio {
                bail!("--transport stdio starts its own `exai stdio` children; it takes no --target");
            }
            check_loopback(base, args.allow_remote)?;
            if !args.server_env.is_empty() || args.latency_profile.is_some() || args.upstream == Upstream::Real {
                eprintln!(
                    "exai loadtest: --server-env, --latency-profile and --upstream apply to started servers only; \
                     ignored for --target"
                );
            }
            let base = base.trim_end_matches('/').trim_end_matches("/mcp").to_owned();
            let ws_url = match &args.ws_url {
                Some(url) => url.clone(),
                None => {
                    let parsed = reqwest::Url::parse(&base)?;
                    format!("ws://{}:8079/", parsed.host_str().unwrap_or("127.0.0.1"))
                }
            };
            check_loopback(&ws_url, args.allow_remote)?;
            let ws_token = match (transport, tokens.ws) {
                (_, Some(token)) => Some(token),
                // The token file opens this machine's daemon: it is never sent to another host.
                (Transport::Ws, None) if !is_loopback(&reqwest::Url::parse(&ws_url)?) => bail!(
                    "no WebSocket token for {ws_url}: pass --token or set EXAI_WS_TOKEN (the token file in the data \
                     directory is only sent to a daemon on this machine's loopback address)"
                ),
                (Transport::Ws, None) => Some(token_file(&tokens.data_dir)?),
                _ => None,
            };
            return Ok(Self {
                transport,
                http_bases: vec![base.clone()],
                http_base: Some(base),
                ws_url: Some(ws_url),
                token,
                ws_token,
                stateless: args.protocol == Protocol::Stateless,
                exclusive: false,
                sim: None,
                stdio: None,
                daemons: Vec::new(),
                _data_dirs: Vec::new(),
            });
        }
        for pair in &args.server_env {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("--server-env `{pair}` is not KEY=VALUE"))?;
            env.push((key.to_owned(), value.to_owned()));
        }
        let mut base_env: Vec<(String, String)> = ["PATH", "HOME"]
            .into_iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_owned(), v)))
            .collect();
        base_env.extend(
            [
                // Failed calls are the point of some scenarios: only errors reach the terminal.
                ("EXAI_LOG_LEVEL", "error"),
                ("EXAI_HTTP_HOST", "127.0.0.1"),
                ("EXAI_WS_HOST", "127.0.0.1"),
                ("EXAI_WS_PORT", "0"),
                // Every session and the probe come from 127.0.0.1: the per-address limit would refuse them.
                ("EXAI_MAX_CONNECTIONS_PER_IP", "10000"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        // The caller's directory (precommit reviews it), unless it can never be a root (`/`, the home directory).
        if let Ok(cwd) = std::env::current_dir()
            && exai_core::config::never_a_root(&cwd, std::env::var_os("HOME").map(std::path::PathBuf::from).as_deref())
                .is_none()
        {
            base_env.push(("EXAI_ALLOWED_ROOTS".to_owned(), cwd.display().to_string()));
        }
        if let Some(token) = &token {
            base_env.push(("EXAI_HTTP_TOKEN".to_owned(), token.clone()));
            base_env.push(("EXAI_WS_TOKEN".to_owned(), token.clone()));
        }
        let sim = match args.upstream {
            Upstream::Sim => {
                let profile = match latency {
                    LatencyChoice::Providers => LatencyProfile::Realistic,
                    LatencyChoice::Zero => LatencyProfile::Zero,
                };
                let sim = Simulator::start_local(SimConfig::default().with_latency(profile))
                    .await
                    .context("starting the upstream simulator")?;
                base_env.extend([
                    ("GLM_BASE_URL".to_owned(), sim.base_url_glm()),
                    ("KIMI_BASE_URL".to_owned(), sim.base_url_v1()),
                    ("GLM_API_KEY".to_owned(), "loadtest-not-a-real-key".to_owned()),
                    ("KIMI_API_KEY".to_owned(), "loadtest-not-a-real-key".to_owned()),
                ]);
                Some(sim)
            }
            Upstream::Real => {
                let keys = ["GLM_API_KEY", "KIMI_API_KEY"];
                if keys.iter().all(|k| std::env::var(k).is_err()) {
                    bail!("--upstream real needs GLM_API_KEY and/or KIMI_API_KEY in the environment");
                }
                for key in [keys[0], keys[1], "GLM_BASE_URL", "KIMI_BASE_URL"] {
                    if let Ok(value) = std::env::var(key) {
                        base_env.push((key.to_owned(), value));
                    }
                }
                None
            }
        };
        base_env.extend(env);
        let program = std::env::current_exe().context("finding the exai binary")?;
        let mut target = Self {
            transport,
            http_base: None,
            ws_url: None,
            ws_token: token.clone(),
            token,
            stateless: args.protocol == Protocol::Stateless,
            exclusive: true,
            sim,
            http_bases: Vec::new(),
            stdio: None,
            daemons: Vec::new(),
            _data_dirs: Vec::new(),
        };
        if transport == Transport::Stdio {
            let data_dir = data_dir()?;
            target.stdio = Some(Launch {
                program,
                data_dir: data_dir.path().to_owned(),
                env: base_env,
            });
            target._data_dirs.push(data_dir);
            return Ok(target);
        }
        for _ in 0..replicas.max(1) {
            let data_dir = data_dir()?;
            let mut command = Command::new(&program);
            command
                .env_clear()
                .envs(base_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .args(["serve", "--port", "0", "--data-dir"])
                .arg(data_dir.path())
                // Not the caller's directory: its exai.toml must not change the server under test.
                .current_dir(data_dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            let mut child = command.spawn().context("starting exai serve")?;
            let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
            let http = read_address(&mut stdout, "http://").await?;
            let ws = read_address(&mut stdout, "ws://").await?;
            target.http_base.get_or_insert_with(|| format!("http://{http}"));
            target.ws_url.get_or_insert_with(|| format!("ws://{ws}/"));
            target.http_bases.push(format!("http://{http}"));
            if target.ws_token.is_none() {
                // The first server's own token (its data directory's file): the sessions dial its WebSocket.
                target.ws_token = Some(token_file(data_dir.path())?);
            }
            target.daemons.push((child, stdout));
            target._data_dirs.push(data_dir);
        }
        Ok(target)
    }

    /// A new client session named `name` on the target's transport (HTTP: on the first replica).
    pub async fn session(&self, name: &str) -> anyhow::Result<Session> {
        self.session_on(0, name).await
    }

    /// A new client session named `name`; over HTTP on replica `replica` (modulo the replica count).
    pub async fn session_on(&self, replica: usize, name: &str) -> anyhow::Result<Session> {
        let token = self.token.as_deref();
        Ok(match self.transport {
            Transport::Http => {
                let base = self
                    .http_bases
                    .get(replica % self.http_bases.len().max(1))
                    .map_or(self.http(), String::as_str);
                Session::Http(HttpSession::connect(base, token, name, self.stateless).await?)
            }
            Transport::Ws => Session::Ws(
                WsSession::connect(self.ws_url.as_deref().unwrap_or_default(), self.ws_token.as_deref()).await?,
            ),
            Transport::Stdio => {
                let launch = self.stdio.as_ref().context("no stdio launch settings")?;
                Session::Stdio(StdioSession::start(launch, name).await?)
            }
        })
    }

    /// An HTTP session for control calls (`status`) on replica `replica`, when there is a daemon.
    pub async fn control_on(&self, replica: usize, name: &str) -> anyhow::Result<Option<HttpSession>> {
        match self.http_bases.get(replica).or(self.http_base.as_ref()) {
            Some(base) => Ok(Some(
                HttpSession::connect(base, self.token.as_deref(), name, false).await?,
            )),
            None => Ok(None),
        }
    }

    fn http(&self) -> &str {
        self.http_base.as_deref().unwrap_or_default()
    }

    /// What the report names as the target.
    pub fn describe(&self) -> String {
        match (&self.http_base, self.transport) {
            (_, Transport::Stdio) => "exai stdio children (started)".to_owned(),
            (Some(base), Transport::Ws) => format!("{} (daemon {base})", self.ws_url.as_deref().unwrap_or("?")),
            (Some(base), _) => format!("{base}/mcp"),
            (None, _) => "?".to_owned(),
        }
    }

    /// Stops what the runner started.
    pub async fn stop(mut self) {
        for (mut child, _) in std::mem::take(&mut self.daemons) {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
    }
}

/// A temporary data directory for a started server.
fn data_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("exai-loadtest-")
        .tempdir()
        .context("creating a data directory")
}

/// Reads one `exai serve` start-up line and returns the address after `scheme`.
async fn read_address(stdout: &mut BufReader<ChildStdout>, scheme: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
        .await
        .context("exai serve printed no address within 30 s")??;
    line.split(scheme)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|addr| addr.trim_end_matches('/').to_owned())
        .with_context(|| format!("exai serve did not start: {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::check_loopback;

    #[test]
    fn only_loopback_targets_pass_without_allow_remote() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:8080/mcp",
            "ws://127.0.0.2/",
        ] {
            assert!(check_loopback(url, false).is_ok(), "{url}");
        }
        let err = check_loopback("http://10.0.0.5:8080", false).unwrap_err();
        assert!(err.to_string().contains("--allow-remote"), "{err}");
        assert!(check_loopback("http://example.com", true).is_ok());
    }
}
