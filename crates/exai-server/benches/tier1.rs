//! Tier-1 tools (`version`, `status`, `health`, `listmodels`) called through the real MCP handler over an
//! in-memory duplex pipe (`stdio::serve_on`, SQLite store), against a JSON-RPC `ping` round trip on the same pipe.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use exai_core::app::App;
use exai_core::config::{Config, MapEnv};
use exai_core::tools::Registry;
use exai_store::SqliteStore;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio_util::sync::CancellationToken;

/// The client end of a pipe to `serve_on`: one line out, one line back.
struct Pipe {
    to_server: DuplexStream,
    from_server: BufReader<DuplexStream>,
    line: String,
    next_id: u64,
}

impl Pipe {
    async fn round_trip(&mut self, method: &str, params: &str) -> &str {
        self.next_id += 1;
        let request = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"{method}"{params}}}"#,
            self.next_id
        ) + "\n";
        self.to_server.write_all(request.as_bytes()).await.unwrap();
        self.line.clear();
        self.from_server.read_line(&mut self.line).await.unwrap();
        &self.line
    }
}

async fn start() -> (Pipe, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(&MapEnv::new([]), None, &[]).unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let tools = Registry::select(&config.tools, false);
    let app = App::new(config, Arc::new(store), tools);
    let (client_in, server_out) = tokio::io::duplex(1 << 16);
    let (server_in, client_out) = tokio::io::duplex(1 << 16);
    tokio::spawn(exai_server::stdio::serve_on(
        app,
        server_in,
        server_out,
        CancellationToken::new(),
    ));
    let mut pipe = Pipe {
        to_server: client_out,
        from_server: BufReader::new(client_in),
        line: String::new(),
        next_id: 0,
    };
    let init =
        r#","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}"#;
    assert!(pipe.round_trip("initialize", init).await.contains("\"result\""));
    pipe.to_server
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .await
        .unwrap();
    (pipe, dir)
}

fn tier1(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut pipe, _dir) = rt.block_on(start());
    let mut calls = vec![("ping".to_owned(), "ping", String::new())];
    for tool in ["version", "status", "health", "listmodels"] {
        let params = format!(r#","params":{{"name":"{tool}","arguments":{{}}}}"#);
        let reply: Value = serde_json::from_str(rt.block_on(pipe.round_trip("tools/call", &params))).unwrap();
        assert_eq!(reply["result"]["isError"], Value::Bool(false), "{tool}: {reply}");
        calls.push((tool.to_owned(), "tools/call", params));
    }
    let mut group = c.benchmark_group("tier1");
    for (name, method, params) in &calls {
        group.bench_function(name.as_str(), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        std::hint::black_box(pipe.round_trip(method, params).await.len());
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = tier1
}
criterion_main!(benches);
