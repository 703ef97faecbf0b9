//! A stdio MCP client session: one `exai stdio` child per session (what a desktop assistant launches), JSON-RPC
//! lines on its stdin and stdout, `initialize` (2025-11-25) first. The child is killed when the session ends.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{CallResult, ErrorKind};

/// How to start `exai stdio`.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub data_dir: PathBuf,
    pub env: Vec<(String, String)>,
}

pub struct StdioSession {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl StdioSession {
    pub async fn start(launch: &Launch, name: &str) -> anyhow::Result<Self> {
        let mut command = Command::new(&launch.program);
        command
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("stdio")
            .arg("--data-dir")
            .arg(&launch.data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} stdio", launch.program.display()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut session = Self {
            child,
            stdin,
            stdout,
            next_id: 1,
        };
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion": super::http::PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": name, "version": exai_core::VERSION}}});
        session.send(&init).await?;
        let reply = tokio::time::timeout(Duration::from_secs(30), session.reply(0))
            .await
            .context("exai stdio did not answer initialize within 30 s")??;
        if reply.0.get("result").is_none() {
            bail!("initialize failed: {}", reply.0);
        }
        session
            .send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await?;
        Ok(session)
    }

    async fn send(&mut self, message: &Value) -> anyhow::Result<()> {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Reads lines until the reply to `id`, counting progress notifications.
    async fn reply(&mut self, id: u64) -> anyhow::Result<(Value, u32)> {
        let mut progress = 0;
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line).await? == 0 {
                bail!("exai stdio closed its output");
            }
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if message["method"] == "notifications/progress" {
                progress += 1;
            } else if message["id"] == id {
                return Ok((message, progress));
            }
        }
    }

    pub async fn call(&mut self, tool: &str, args: Value, stream: bool) -> CallResult {
        let id = self.next_id;
        self.next_id += 1;
        let mut params = json!({"name": tool, "arguments": args});
        if stream {
            params["_meta"] = json!({"progressToken": format!("p{id}")});
        }
        let request = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":params});
        if let Err(e) = self.send(&request).await {
            return CallResult::failed(ErrorKind::Transport, format!("{e:#}"));
        }
        match self.reply(id).await {
            Ok((reply, progress)) => CallResult::from_jsonrpc(&reply, progress),
            Err(e) => CallResult::failed(ErrorKind::Transport, format!("{e:#}")),
        }
    }

    pub async fn list_tools(&mut self) -> anyhow::Result<Vec<String>> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/list","params":{}}))
            .await?;
        let (reply, _) = self.reply(id).await?;
        Ok(super::tool_names(&reply["result"]))
    }

    /// Closes stdin (exai stdio exits at end of input) and waits briefly, then kills it.
    pub async fn close(mut self) {
        drop(self.stdin);
        if tokio::time::timeout(Duration::from_secs(3), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
