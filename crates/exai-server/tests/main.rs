//! In-process tests of the server crate over real pipes and real sockets, with a test-only slow tool:
//! cancellation (stdio `notifications/cancelled`, HTTP closed request stream) drops the work, and the
//! tier deadline ends a call with a timeout error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use exai_core::app::App;
use exai_core::config::{Config, MapEnv};
use exai_core::error::ToolError;
use exai_core::tools::{Hints, JsonObject, Profile, Registry, Tier, Tool, ToolContext, ToolOutput, ToolSpec};
use exai_store::SqliteStore;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A tool that never finishes on its own and records when its work is dropped.
struct Hang {
    spec: ToolSpec,
    started: Arc<Notify>,
    dropped: Arc<AtomicBool>,
}

struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Tool for Hang {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    fn call(&self, _ctx: ToolContext, _args: JsonObject) -> BoxFuture<'static, Result<ToolOutput, ToolError>> {
        let (started, flag) = (self.started.clone(), DropFlag(self.dropped.clone()));
        async move {
            let _flag = flag;
            started.notify_one();
            std::future::pending::<()>().await;
            unreachable!()
        }
        .boxed()
    }
}

struct Fixture {
    app: Arc<App>,
    started: Arc<Notify>,
    dropped: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

async fn fixture(tier: Tier, env: &[(&str, &str)]) -> Fixture {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(&MapEnv::new(env.iter().copied()), None, &[]).unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let (started, dropped) = (Arc::new(Notify::new()), Arc::new(AtomicBool::new(false)));
    let hang = Hang {
        spec: ToolSpec {
            name: "hang",
            title: "Hang",
            description: "Never returns.",
            tier,
            profile: Profile::Lean,
            hints: Hints::default(),
            input_schema: rmcp::handler::server::common::schema_for_empty_input(),
            output_schema: None,
        },
        started: started.clone(),
        dropped: dropped.clone(),
    };
    let app = App::new(config, Arc::new(store), Registry::from_tools(vec![Arc::new(hang)]));
    Fixture {
        app,
        started,
        dropped,
        _dir: dir,
    }
}

/// Lines in, lines out, over an in-memory pipe to `stdio::serve_on`.
struct Pipe {
    to_server: tokio::io::DuplexStream,
    from_server: BufReader<tokio::io::DuplexStream>,
}

impl Pipe {
    fn start(app: Arc<App>) -> Self {
        let (client_in, server_out) = tokio::io::duplex(1 << 16);
        let (server_in, client_out) = tokio::io::duplex(1 << 16);
        tokio::spawn(exai_server::stdio::serve_on(
            app,
            server_in,
            server_out,
            CancellationToken::new(),
        ));
        Self {
            to_server: client_out,
            from_server: BufReader::new(client_in),
        }
    }
    async fn send(&mut self, v: Value) {
        self.to_server.write_all(format!("{v}\n").as_bytes()).await.unwrap();
    }
    async fn recv(&mut self) -> Value {
        let mut line = String::new();
        self.from_server.read_line(&mut line).await.unwrap();
        serde_json::from_str(&line).unwrap()
    }
    async fn initialize(&mut self) {
        self.send(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})).await;
        assert!(self.recv().await["result"].is_object());
        self.send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await;
    }
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 2 s");
}

#[tokio::test]
async fn stdio_cancelled_notification_drops_the_work_and_frees_the_slot() {
    let f = fixture(Tier::Simple, &[]).await;
    let mut pipe = Pipe::start(f.app.clone());
    pipe.initialize().await;
    pipe.send(json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"hang","arguments":{}}}))
        .await;
    f.started.notified().await;
    assert_eq!(f.app.runtime.inflight(), 1);
    pipe.send(json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"user"}}))
        .await;
    eventually("the tool's work being dropped", || f.dropped.load(Ordering::SeqCst)).await;
    eventually("the in-flight count returning to 0", || f.app.runtime.inflight() == 0).await;
}

#[tokio::test]
async fn tier_deadline_ends_a_hung_call_with_a_timeout_tool_error() {
    let f = fixture(
        Tier::Tier1,
        &[("EXAI_TIER1_TIMEOUT_SECS", "2"), ("EXAI_DB_TIMEOUT_SECS", "1")],
    )
    .await;
    let mut pipe = Pipe::start(f.app.clone());
    pipe.initialize().await;
    // The database is open; from here the clock only moves when every task is idle.
    tokio::time::pause();
    let before = tokio::time::Instant::now();
    pipe.send(json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"hang","arguments":{}}}))
        .await;
    let reply = pipe.recv().await;
    assert_eq!(reply["id"], 3);
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        text, "`hang` timed out after 2000 ms (nothing recorded)",
        "the hang tool spends its time unrecorded"
    );
    assert!(
        before.elapsed() >= Duration::from_secs(2),
        "the deadline, not something sooner, ended the call"
    );
    assert!(f.dropped.load(Ordering::SeqCst));
    assert_eq!(f.app.runtime.inflight(), 0);
}

#[tokio::test]
async fn http_client_hanging_up_cancels_the_call() {
    let f = fixture(Tier::Simple, &[]).await;
    let (listener, addr) = exai_server::http::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(exai_server::http::serve(
        listener,
        f.app.clone(),
        exai_server::prometheus::Exporter::default(),
        shutdown.clone(),
    ));
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let body =
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hang","arguments":{},"_meta":meta}});
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "hang")
        .body(body.to_string())
        .send();
    let call = tokio::spawn(response);
    f.started.notified().await;
    assert_eq!(f.app.runtime.inflight(), 1);
    call.abort(); // the client goes away mid-call
    eventually("the tool's work being dropped", || f.dropped.load(Ordering::SeqCst)).await;
    eventually("the in-flight count returning to 0", || f.app.runtime.inflight() == 0).await;
    shutdown.cancel();
}
