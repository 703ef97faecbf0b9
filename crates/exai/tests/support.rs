//! Starting the real binary for tests: a hermetic environment (no inherited EXAI_* or provider keys),
//! a temporary data directory, and for `serve` the address parsed from its "listening on" line.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_exai");

/// The tools of the default (`standard`) profile, in listing order.
pub const STANDARD_TOOLS: [&str; 9] = [
    "version",
    "status",
    "health",
    "listmodels",
    "chat",
    "challenge",
    "thinkdeep",
    "debug",
    "codereview",
];

/// `exai` with a clean environment: only PATH and HOME survive, logs kept quiet.
pub fn command(envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()))
        .env("EXAI_LOG_LEVEL", "warn")
        // `exai serve` also opens the WebSocket endpoint: a free port, so daemons in parallel tests never clash.
        .env("EXAI_WS_PORT", "0")
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
        .env("EXAI_WS_PORT", "0")
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
    /// The WebSocket endpoint's address (the second stdout line, `exai websocket on ws://ADDR`).
    pub ws_addr: SocketAddr,
    /// The token WebSocket clients present: `EXAI_WS_TOKEN` when the test set one, else the daemon's token file.
    pub ws_token: String,
    _child: Child,
    _stdout: BufReader<ChildStdout>,
    _dir: TempDir,
}

impl Daemon {
    pub async fn start(envs: &[(&str, &str)], extra_args: &[&str]) -> Self {
        Self::launch(envs, extra_args, Stdio::inherit()).await
    }

    /// The same, collecting everything the daemon logs (stderr) into the returned buffer as it comes.
    pub async fn start_logged(
        envs: &[(&str, &str)],
        extra_args: &[&str],
    ) -> (Self, std::sync::Arc<std::sync::Mutex<String>>) {
        let mut daemon = Self::launch(envs, extra_args, Stdio::piped()).await;
        let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stderr = BufReader::new(daemon._child.stderr.take().unwrap());
        let sink = logs.clone();
        tokio::spawn(async move {
            let mut line = String::new();
            while matches!(stderr.read_line(&mut line).await, Ok(n) if n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        (daemon, logs)
    }

    async fn launch(envs: &[(&str, &str)], extra_args: &[&str], stderr: Stdio) -> Self {
        crypto();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = command(envs);
        cmd.args(["serve", "--port", "0", "--data-dir"])
            .arg(dir.path())
            .args(extra_args);
        cmd.stdout(Stdio::piped()).stderr(stderr);
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
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
            .await
            .expect("exai serve printed no websocket line within 30 s")
            .unwrap();
        let ws_addr = line
            .strip_prefix("exai websocket on ws://")
            .map(str::trim)
            .unwrap_or_else(|| panic!("no websocket address in {line:?}"))
            .parse()
            .unwrap();
        // A `--data-dir` among the extra arguments wins over the temporary one (the last flag counts).
        let data_dir = extra_args
            .windows(2)
            .rev()
            .find(|w| w[0] == "--data-dir")
            .map_or_else(|| dir.path().to_owned(), |w| std::path::PathBuf::from(w[1]));
        let ws_token = match envs.iter().find(|(k, _)| *k == "EXAI_WS_TOKEN") {
            Some((_, token)) => token.to_string(),
            None => std::fs::read_to_string(data_dir.join("ws-token")).expect("the daemon's ws-token file"),
        };
        Self {
            addr,
            ws_addr,
            ws_token,
            _child: child,
            _stdout: stdout,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The daemon's `--data-dir` (its SQLite database lives here).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Kills the daemon with SIGKILL (no shutdown, no cleanup) and waits for it to be gone.
    pub async fn kill(&mut self) {
        self._child.start_kill().unwrap();
        self._child.wait().await.unwrap();
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.ws_addr)
    }
}

/// Sends raw lines and collects replies: by id, and the id-less errors in arrival order.
pub struct Raw {
    pub child: tokio::process::Child,
    pub stdin: tokio::process::ChildStdin,
    stdout: BufReader<tokio::process::ChildStdout>,
    _dir: tempfile::TempDir,
}

impl Raw {
    /// Calls a tool and returns the progress messages that arrived before the reply, and the reply.
    pub async fn call(&mut self, id: i64, tool: &str, args: Value, progress: bool) -> (Vec<String>, Value) {
        let mut params = json!({"name": tool, "arguments": args});
        if progress {
            params["_meta"] = json!({"progressToken": format!("p{id}")});
        }
        self.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":params}).to_string())
            .await;
        let mut messages = Vec::new();
        loop {
            let msg = self.next().await;
            if msg["method"] == "notifications/progress" {
                messages.push(msg["params"]["message"].as_str().unwrap_or_default().to_owned());
            } else if msg["id"] == id {
                return (messages, msg);
            }
        }
    }

    pub async fn start(envs: &[(&str, &str)], extra: &[&str]) -> Self {
        crypto();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = command(envs);
        cmd.arg("stdio").arg("--data-dir").arg(dir.path()).args(extra);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut raw = Self {
            child,
            stdin,
            stdout,
            _dir: dir,
        };
        raw.send(&json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}).to_string()).await;
        let init = raw.next().await;
        assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
        raw.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        raw
    }

    pub async fn send(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    pub async fn next(&mut self) -> Value {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), self.stdout.read_line(&mut line))
            .await
            .expect("reply within 10 s")
            .unwrap();
        assert!(n > 0, "exai stdio closed its output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"))
    }
}

/// The JSON-RPC reply in a response body: the body itself when it is JSON, else the server-sent event whose `data:`
/// is a message with an `id`.
pub fn jsonrpc_reply(text: &str) -> Value {
    if let Ok(v) = serde_json::from_str(text) {
        return v;
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC reply in {text:?}"))
}

/// A stateless (2026-07-28) `tools/call` of `tool` with `arguments` to `mcp` (a daemon's `/mcp` URL) as client
/// `client`, with the MCP headers the era asks for; callers add auth or send it as is.
pub fn stateless_call(
    http: &reqwest::Client,
    mcp: &str,
    id: i64,
    tool: &str,
    arguments: Value,
    client: &str,
) -> reqwest::RequestBuilder {
    let meta = serde_json::json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": client, "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}});
    let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": meta}});
    http.post(mcp)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(body.to_string())
}

/// The test Redis (`EXAI_TEST_REDIS_URL`); `None` (skip `what`) only outside CI.
pub fn redis_url(what: &str) -> Option<String> {
    match std::env::var("EXAI_TEST_REDIS_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => panic!("EXAI_TEST_REDIS_URL must be set in CI"),
        Err(_) => {
            eprintln!("EXAI_TEST_REDIS_URL not set: skipping the {what} test (scripts/test sets it)");
            None
        }
    }
}

/// A Redis key prefix no other test run shares: `exai-test:<scope>:<pid>:<nanos>:`.
pub fn unique_prefix(scope: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("exai-test:{scope}:{}:{nanos}:", std::process::id())
}

/// A raw WebSocket client's socket.
pub type WsSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON text frame within 20 s, or the close (code, reason); a socket that just ends counts as 1006.
pub async fn next_ws_frame(ws: &mut WsSocket) -> Result<Value, (u16, String)> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a frame within 20 s");
        match message {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str()).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return Err(frame.map_or((1005, String::new()), |f| (f.code.into(), f.reason.to_string())));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err((1006, e.to_string())),
            None => return Err((1006, "stream ended".into())),
        }
    }
}
