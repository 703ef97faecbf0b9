//! `exai shim` end to end: real `exai serve` daemons (GLM/Kimi pointed at the upstream simulator) on a WebSocket
//! port the test picks, and shims as child processes driven over stdio with raw JSON-RPC. Every wait is bounded.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::{Duration, Instant};

use exai_sim::{Delay, Recorded, Script, SimHandle};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, watch};

use crate::chat::sim;
use crate::support::{command, crypto};

/// A port nothing listens on (yet).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ws_url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}")
}

/// `exai serve` with its WebSocket on `ws_port` (HTTP on a free port), models answered by `sim`.
struct DaemonProc {
    child: Child,
}

impl DaemonProc {
    async fn start(sim: &SimHandle, ws_port: u16, data_dir: &Path) -> Self {
        crypto();
        let (glm, kimi, port) = (sim.base_url_glm(), sim.base_url_v1(), ws_port.to_string());
        let env = [
            ("GLM_BASE_URL", glm.as_str()),
            ("KIMI_BASE_URL", kimi.as_str()),
            ("GLM_API_KEY", "test-glm-key"),
            ("KIMI_API_KEY", "test-kimi-key"),
            ("EXAI_WS_HOST", "127.0.0.1"),
            ("EXAI_WS_PORT", port.as_str()),
        ];
        let mut cmd = command(&env);
        cmd.args(["serve", "--port", "0", "--data-dir"]).arg(data_dir);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn exai serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
            .await
            .expect("exai serve printed nothing within 30 s")
            .unwrap();
        assert!(line.contains("listening"), "{line:?}");
        // Keep draining stdout (the websocket line, if any) so the daemon never blocks on a full pipe.
        tokio::spawn(async move {
            let mut sink = String::new();
            while matches!(stdout.read_line(&mut sink).await, Ok(n) if n > 0) {
                sink.clear();
            }
        });
        let daemon = Self { child };
        daemon.wait_for_ws(ws_port).await;
        daemon
    }

    async fn wait_for_ws(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the daemon's websocket on {port} never opened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// An `exai shim` child driven over stdio; a reader task hands over every stdout line as JSON.
pub(crate) struct Shim {
    _child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    data_dir: std::path::PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Shim {
    /// A shim with a data directory of its own (so no daemon token unless `EXAI_WS_TOKEN` is given).
    pub(crate) async fn start(url: &str) -> Self {
        Self::start_with(url, None, &[], &[], Stdio::inherit()).await.0
    }

    /// A shim sharing the daemon's data directory, as on a developer's machine: it needs no configuration.
    pub(crate) async fn start_in(url: &str, data_dir: &Path) -> Self {
        Self::start_with(url, Some(data_dir), &[], &[], Stdio::inherit())
            .await
            .0
    }

    /// A shim with extra environment and flags (and its own data directory unless given); also returns its stderr
    /// when `stderr` is piped.
    pub(crate) async fn start_with(
        url: &str,
        data_dir: Option<&Path>,
        envs: &[(&str, &str)],
        args: &[&str],
        stderr: Stdio,
    ) -> (Self, Option<tokio::process::ChildStderr>) {
        let own = data_dir.is_none().then(|| tempfile::tempdir().unwrap());
        let data_dir = data_dir.map_or_else(|| own.as_ref().unwrap().path().to_owned(), Path::to_owned);
        let mut cmd = command(envs);
        cmd.args(["shim", "--url", url, "--data-dir"]).arg(&data_dir).args(args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr);
        let mut child = cmd.spawn().expect("spawn exai shim");
        let stderr = child.stderr.take();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut line = String::new();
            while matches!(stdout.read_line(&mut line).await, Ok(n) if n > 0) {
                let value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("shim wrote non-JSON ({e}): {line:?}"));
                if tx.send(value).is_err() {
                    break;
                }
                line.clear();
            }
        });
        let mut shim = Self {
            _child: child,
            stdin,
            lines,
            data_dir,
            _dir: own,
        };
        shim.send(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"shim-test","version":"1"}}})).await;
        let init = shim.next(Duration::from_secs(10)).await;
        assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
        assert_eq!(init["result"]["serverInfo"]["name"], "exai", "{init}");
        shim.send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await;
        (shim, stderr)
    }

    async fn send(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn next(&mut self, within: Duration) -> Value {
        tokio::time::timeout(within, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("the shim said nothing within {within:?}"))
            .expect("the shim closed its output")
    }

    pub(crate) async fn start_call(&mut self, id: i64, tool: &str, args: Value, progress: bool) {
        let mut params = json!({"name": tool, "arguments": args});
        if progress {
            params["_meta"] = json!({"progressToken": format!("p{id}")});
        }
        self.send(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":params}))
            .await;
    }

    /// The reply to `id` within `within`, and the progress messages for it that arrived first.
    pub(crate) async fn reply(&mut self, id: i64, within: Duration) -> (Vec<String>, Value) {
        let deadline = Instant::now() + within;
        let mut progress = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self.next(left).await;
            if msg["method"] == "notifications/progress" && msg["params"]["progressToken"] == format!("p{id}") {
                progress.push(msg["params"]["message"].as_str().unwrap_or_default().to_owned());
            } else if msg["id"] == id {
                return (progress, msg);
            }
        }
    }

    pub(crate) async fn call(&mut self, id: i64, tool: &str, args: Value, progress: bool) -> (Vec<String>, Value) {
        self.start_call(id, tool, args, progress).await;
        self.reply(id, Duration::from_secs(20)).await
    }

    /// Replies to every id in `ids`, in whatever order they come.
    async fn replies(&mut self, ids: &[i64], within: Duration) -> HashMap<i64, Value> {
        let deadline = Instant::now() + within;
        let mut out = HashMap::new();
        while out.len() < ids.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self.next(left).await;
            if let Some(id) = msg["id"].as_i64()
                && ids.contains(&id)
            {
                out.insert(id, msg);
            }
        }
        out
    }
}

pub(crate) fn text(reply: &Value) -> String {
    reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn chat(prompt: &str) -> Value {
    json!({"prompt": prompt, "model": "glm-4.6"})
}

#[tokio::test]
async fn the_shim_lists_the_daemons_tools_and_streams_a_chat_with_progress() {
    let sim = sim().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _daemon = DaemonProc::start(&sim, port, dir.path()).await;
    let mut shim = Shim::start_in(&ws_url(port), dir.path()).await;

    shim.send(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})).await;
    let list = shim.next(Duration::from_secs(10)).await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"chat") && names.contains(&"listmodels"), "{names:?}");
    let chat_tool = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "chat")
        .unwrap();
    assert!(
        chat_tool["inputSchema"]["properties"]["prompt"].is_object(),
        "{chat_tool}"
    );

    let script = Script::reply("The answer is forty-two, as computed.")
        .with_chunk_chars(4)
        .with_inter_token_ms(Delay::Fixed(60));
    sim.push_script("glm-4.6", script);
    let (progress, reply) = shim.call(2, "chat", chat("q"), true).await;
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    let s = &reply["result"]["structuredContent"];
    assert_eq!(s["content"], "The answer is forty-two, as computed.", "{reply}");
    assert_eq!(s["model"], "glm-4.6");
    assert!(
        progress.len() >= 3,
        "the text should stream as several notifications: {progress:?}"
    );
    assert_eq!(progress.concat(), "The answer is forty-two, as computed.");

    // An unknown tool is JSON-RPC -32602, as exai itself answers it.
    let (_, unknown) = shim.call(3, "nope", json!({}), false).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    // A tool error from the daemon stays a tool error.
    let (_, bad) = shim
        .call(4, "chat", json!({"prompt": "q", "model": "no-such-model"}), false)
        .await;
    assert_eq!(bad["result"]["isError"], true, "{bad}");
}

#[tokio::test]
async fn concurrent_calls_through_one_shim_overlap() {
    let sim = sim().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _daemon = DaemonProc::start(&sim, port, dir.path()).await;
    let mut shim = Shim::start_in(&ws_url(port), dir.path()).await;
    // Four: within the daemon's per-provider WebSocket limit (EXAI_WS_GLM_MAX_INFLIGHT).
    let ids: Vec<i64> = (10..14).collect();
    for _ in &ids {
        sim.push_script(
            "glm-4.6",
            Script::reply("slow answer").with_ttft_ms(Delay::Fixed(1_500)),
        );
    }
    let started = Instant::now();
    for id in &ids {
        shim.start_call(*id, "chat", chat(&format!("call {id}")), true).await;
    }
    let replies = shim.replies(&ids, Duration::from_secs(20)).await;
    let elapsed = started.elapsed();
    for (id, reply) in &replies {
        assert_eq!(reply["result"]["isError"], false, "call {id}: {reply}");
        assert_eq!(reply["result"]["structuredContent"]["content"], "slow answer");
    }
    assert!(
        elapsed < Duration::from_millis(4_500),
        "four 1.5 s calls took {elapsed:?}: they ran one at a time"
    );
}

#[tokio::test]
async fn two_shims_share_one_daemon() {
    let sim = sim().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _daemon = DaemonProc::start(&sim, port, dir.path()).await;
    let mut a = Shim::start_in(&ws_url(port), dir.path()).await;
    let mut b = Shim::start_in(&ws_url(port), dir.path()).await;
    sim.push_script("glm-4.6", Script::reply("for a").with_ttft_ms(Delay::Fixed(1_500)));
    sim.push_script("glm-4.6", Script::reply("for b").with_ttft_ms(Delay::Fixed(1_500)));
    let started = Instant::now();
    a.start_call(1, "chat", chat("a"), false).await;
    b.start_call(1, "chat", chat("b"), false).await;
    let (_, ra) = a.reply(1, Duration::from_secs(20)).await;
    let (_, rb) = b.reply(1, Duration::from_secs(20)).await;
    let elapsed = started.elapsed();
    let mut answers = [
        ra["result"]["structuredContent"]["content"]
            .as_str()
            .unwrap_or_else(|| panic!("{ra}"))
            .to_owned(),
        rb["result"]["structuredContent"]["content"]
            .as_str()
            .unwrap_or_else(|| panic!("{rb}"))
            .to_owned(),
    ];
    answers.sort();
    assert_eq!(answers, ["for a", "for b"]);
    assert!(
        elapsed < Duration::from_millis(2_900),
        "the two shims' calls did not overlap: {elapsed:?}"
    );
}

#[tokio::test]
async fn cancelling_through_the_shim_closes_the_upstream_request() {
    let sim = sim().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _daemon = DaemonProc::start(&sim, port, dir.path()).await;
    let mut shim = Shim::start_in(&ws_url(port), dir.path()).await;
    sim.push_script(
        "glm-4.6",
        Script::reply("never delivered").with_ttft_ms(Delay::Fixed(60_000)),
    );
    shim.start_call(7, "chat", chat("long"), true).await;
    assert!(
        sim.wait_for(Duration::from_secs(10), |r| r.len() == 1).await,
        "the call reached the upstream"
    );
    assert!(!sim.requests()[0].hung_up());
    shim.send(json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"user"}}))
        .await;
    let hung_up = sim
        .wait_for(Duration::from_secs(5), |r| r.iter().any(Recorded::hung_up))
        .await;
    assert!(hung_up, "the upstream request was closed: {:?}", sim.requests());
    // The shim keeps serving.
    let (_, reply) = shim
        .call(8, "challenge", json!({"prompt": "the sky is green"}), false)
        .await;
    assert_eq!(reply["result"]["isError"], false, "{reply}");
}

#[tokio::test]
async fn when_the_assistant_goes_away_its_running_calls_are_cancelled_on_the_daemon() {
    let sim = sim().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _daemon = DaemonProc::start(&sim, port, dir.path()).await;
    let mut shim = Shim::start_in(&ws_url(port), dir.path()).await;
    sim.push_script(
        "glm-4.6",
        Script::reply("nobody is listening").with_ttft_ms(Delay::Fixed(60_000)),
    );
    shim.start_call(1, "chat", chat("orphan"), false).await;
    assert!(
        sim.wait_for(Duration::from_secs(10), |r| r.len() == 1).await,
        "the call reached the upstream"
    );
    // The assistant closes the shim's stdin; the shim exits on its own.
    let Shim {
        _child: mut child,
        stdin,
        ..
    } = shim;
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    assert!(
        matches!(status, Ok(Ok(s)) if s.success()),
        "the shim exits cleanly: {status:?}"
    );
    let hung_up = sim
        .wait_for(Duration::from_secs(5), |r| r.iter().any(Recorded::hung_up))
        .await;
    assert!(hung_up, "the daemon dropped the orphaned call: {:?}", sim.requests());
}

#[tokio::test]
async fn a_daemon_restart_mid_call_gives_a_clear_answer_and_the_shim_reconnects() {
    let sim = sim().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let daemon = DaemonProc::start(&sim, port, dir.path()).await;
    let mut shim = Shim::start_in(&ws_url(port), dir.path()).await;
    sim.push_script(
        "glm-4.6",
        Script::reply("interrupted").with_ttft_ms(Delay::Fixed(30_000)),
    );
    shim.start_call(1, "chat", chat("mid-call"), true).await;
    assert!(
        sim.wait_for(Duration::from_secs(10), |r| r.len() == 1).await,
        "the call reached the upstream"
    );
    daemon.kill().await;
    let _daemon = DaemonProc::start(&sim, port, dir.path()).await;
    // The restarted daemon never saw the call: the shim must say so rather than hang.
    let (_, reply) = shim.reply(1, Duration::from_secs(30)).await;
    let answered = reply["result"]["isError"] == false;
    let message = text(&reply);
    assert!(
        answered || (message.contains("daemon") && message.contains("retry")),
        "a result or a clear error, got {reply}"
    );
    // The shim reconnected: the next call goes through.
    sim.push_script("glm-4.6", Script::reply("after the restart"));
    let (_, again) = shim.call(2, "chat", chat("again"), false).await;
    assert_eq!(
        again["result"]["structuredContent"]["content"], "after the restart",
        "{again}"
    );
}

#[tokio::test]
async fn without_a_daemon_the_shim_says_how_to_start_one() {
    let port = free_port();
    let mut shim = Shim::start(&ws_url(port)).await;
    let started = Instant::now();
    let (_, reply) = shim.call(1, "chat", json!({"prompt": "q"}), false).await;
    let message = text(&reply);
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    assert!(
        message.contains("exai serve") && message.contains(&port.to_string()),
        "{message}"
    );
    shim.send(json!({"jsonrpc":"2.0","id":2,"method":"tools/list"})).await;
    let list = shim.next(Duration::from_secs(20)).await;
    let error = list["error"]["message"].as_str().unwrap_or_else(|| panic!("{list}"));
    assert!(error.contains("exai serve"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failing took {:?}",
        started.elapsed()
    );
}

/// A TCP relay between the shim and the daemon that the test can cut (dropping every connection through it) and
/// close to new connections: a network drop with the daemon still running.
pub(crate) struct Relay {
    pub(crate) port: u16,
    cut: watch::Sender<u64>,
    open: Arc<AtomicBool>,
    target: Arc<AtomicU16>,
}

impl Relay {
    pub(crate) async fn start(target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, _) = watch::channel(0u64);
        let open = Arc::new(AtomicBool::new(true));
        let target = Arc::new(AtomicU16::new(target));
        let (cuts, accepting, to) = (cut.clone(), open.clone(), target.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: the shim sees the connection close before hello_ack
                }
                let mut cut = cuts.subscribe();
                let target = to.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            cut,
            open,
            target,
        }
    }

    /// Drops every connection through the relay and refuses new ones until [`Relay::reopen`].
    pub(crate) fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    pub(crate) fn reopen(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// New connections go to `port` (as a load balancer would send a reconnect to another replica).
    pub(crate) fn retarget(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_call_that_finishes_while_the_connection_is_down_is_delivered_after_the_reconnect() {
    let sim = sim().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _daemon = DaemonProc::start(&sim, port, dir.path()).await;
    let relay = Relay::start(port).await;
    let mut shim = Shim::start_in(&ws_url(relay.port), dir.path()).await;
    sim.push_script(
        "glm-4.6",
        Script::reply("finished while away").with_ttft_ms(Delay::Fixed(1_000)),
    );
    shim.start_call(1, "chat", chat("drop"), true).await;
    assert!(
        sim.wait_for(Duration::from_secs(10), |r| r.len() == 1).await,
        "the call reached the upstream"
    );
    relay.cut();
    // The call finishes upstream while the shim cannot reach the daemon; the daemon keeps its result.
    assert!(
        sim.wait_for(Duration::from_secs(10), |r| r
            .iter()
            .any(|c| c.outcome == exai_sim::Outcome::Completed))
            .await,
        "the upstream answered"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    relay.reopen();
    let (_, reply) = shim.reply(1, Duration::from_secs(30)).await;
    assert_eq!(
        reply["result"]["isError"], false,
        "the resumed session delivered the result: {reply}"
    );
    assert_eq!(reply["result"]["structuredContent"]["content"], "finished while away");
    assert_eq!(sim.chat_requests().len(), 1, "delivered, not re-run");
}

/// Kills a process the test did not spawn itself (a daemon the shim started detached) when dropped.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(self.0.to_string())
            .status();
    }
}

#[tokio::test]
async fn with_start_daemon_the_shim_starts_a_daemon_and_uses_it() {
    let port = free_port();
    let env = [("EXAI_HTTP_PORT", "0"), ("EXAI_LOG_LEVEL", "info")];
    // A data directory that does not exist yet: the shim creates it (for the daemon's log) before the daemon runs.
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("fresh");
    let (mut shim, stderr) = Shim::start_with(
        &ws_url(port),
        Some(&data_dir),
        &env,
        &["--start-daemon"],
        Stdio::piped(),
    )
    .await;
    let (_, reply) = shim.call(1, "version", json!({}), false).await;
    // The shim logs the daemon's pid; kill that daemon whatever happens next.
    let mut stderr = BufReader::new(stderr.unwrap()).lines();
    let pid = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.contains("started an exai daemon")
                && let Some(pid) = line.split("pid=").nth(1).and_then(|p| p.split_whitespace().next())
            {
                return pid.parse::<u32>().unwrap();
            }
        }
        panic!("the shim never said it started a daemon")
    })
    .await
    .expect("the shim logged the daemon it started");
    let _daemon = KillOnDrop(pid);
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    assert_eq!(reply["result"]["structuredContent"]["name"], "exai", "{reply}");
    // It is a real daemon on that port: a second shim reaches it without starting another (with the token the
    // daemon created in the data directory they share, and no configuration).
    let mut other = Shim::start_in(&ws_url(port), &shim.data_dir).await;
    let (_, again) = other.call(1, "version", json!({}), false).await;
    assert_eq!(again["result"]["isError"], false, "{again}");
    // Other users on the machine can read neither the daemon's log nor anything else in its data directory.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&data_dir), 0o700, "the data directory the shim made");
        assert_eq!(mode(&data_dir.join("daemon.log")), 0o600, "the daemon's log");
    }
}
