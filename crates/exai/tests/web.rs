//! What a web page (or anyone without the owner's secret) can no longer do to the daemon, tried over real sockets
//! with real headers: open a WebSocket from a foreign `Origin` or `Host` (either protocol), read `/metrics` or
//! reset circuits through a rebound name, connect without the token, serve off loopback without a token, or take
//! over a WebSocket session with an id read from the dashboard or opened under another token.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::replicas::{database_url, fresh_schema};
use crate::support::{Daemon, std_command};

use crate::support::{WsSocket as Socket, next_ws_frame as next};

/// Opens the daemon's WebSocket with `headers` on the upgrade request: the socket, or the HTTP status and body of
/// a refused upgrade.
async fn open(d: &Daemon, headers: &[(&str, &str)]) -> Result<Socket, (u16, String)> {
    let mut request = d.ws_url().into_client_request().unwrap();
    for (name, value) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned());
            Err((response.status().as_u16(), body.unwrap_or_default()))
        }
        Err(e) => panic!("websocket connect failed: {e}"),
    }
}

async fn send(socket: &mut Socket, frame: Value) {
    socket.send(Message::text(frame.to_string())).await.unwrap();
}

/// Says `hello` on a fresh connection; returns the socket and the `hello_ack`.
async fn hello(d: &Daemon, frame: Value) -> (Socket, Value) {
    let mut socket = open(d, &[]).await.expect("upgrade");
    send(&mut socket, frame).await;
    let ack = next(&mut socket).await.expect("a hello_ack");
    (socket, ack)
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
        "capabilities": {}, "clientInfo": {"name": "web", "version": "1"}}})
}

#[tokio::test]
async fn websocket_upgrades_from_a_foreign_origin_or_host_are_refused_for_both_protocols() {
    let d = Daemon::start(&[], &["--sim"]).await;
    let bearer = format!("Bearer {}", d.ws_token);
    let port = d.ws_addr.port();
    let evil_host = format!("evil.example:{port}");
    // Each protocol with its own valid credentials: the refusal comes first, from the headers alone.
    let protocols = [
        ("daemon protocol", vec![]),
        ("MCP JSON-RPC", vec![("authorization", bearer.as_str())]),
    ];
    for (protocol, credentials) in &protocols {
        let foreign: [(&str, Vec<(&str, &str)>); 3] = [
            ("a foreign Origin", vec![("origin", "http://evil.example")]),
            ("a foreign Host", vec![("host", evil_host.as_str())]),
            ("a null Origin", vec![("origin", "null")]),
        ];
        for (what, headers) in foreign {
            let all: Vec<(&str, &str)> = headers.iter().chain(credentials).copied().collect();
            let (status, body) = match open(&d, &all).await {
                Ok(_) => panic!("{protocol}: an upgrade with {what} was accepted"),
                Err(refused) => refused,
            };
            assert_eq!(status, 403, "{protocol}, {what}: {body}");
            assert!(body.contains("EXAI_HTTP_ALLOWED_"), "{protocol}, {what}: {body}");
        }
    }

    // The daemon's own origin (a page it serves) and a client sending no Origin pass; each protocol then works.
    let same_origin = format!("http://127.0.0.1:{port}");
    let mut socket = open(&d, &[("origin", same_origin.as_str())])
        .await
        .expect("same origin");
    send(&mut socket, json!({"op": "hello", "token": d.ws_token})).await;
    let ack = next(&mut socket).await.unwrap();
    assert_eq!(ack["ok"], true, "{ack}");
    let mut socket = open(&d, &[("authorization", bearer.as_str())])
        .await
        .expect("no Origin");
    send(&mut socket, initialize()).await;
    let init = next(&mut socket).await.unwrap();
    assert_eq!(init["result"]["serverInfo"]["name"], "exai", "{init}");
}

#[tokio::test]
async fn metrics_and_admin_refuse_a_foreign_host_or_origin() {
    crate::support::crypto();
    let d = Daemon::start(&[], &["--sim"]).await;
    let c = reqwest::Client::new();
    let evil_host = format!("evil.example:{}", d.addr.port());
    let same_origin = format!("http://127.0.0.1:{}", d.addr.port());
    for (method, path) in [("GET", "/metrics"), ("POST", "/admin/reset-circuits")] {
        let request = |headers: &[(&str, &str)]| {
            let mut r = c.request(method.parse().unwrap(), d.url(path));
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send()
        };
        for headers in [
            vec![("host", evil_host.as_str())],
            vec![("origin", "http://evil.example")],
            vec![("host", evil_host.as_str()), ("origin", "http://evil.example")],
        ] {
            let resp = request(&headers).await.unwrap();
            assert_eq!(resp.status(), 403, "{method} {path} with {headers:?}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "forbidden", "{body}");
        }
        let resp = request(&[("origin", same_origin.as_str())]).await.unwrap();
        assert_eq!(resp.status(), 200, "{method} {path} from the daemon's own origin");
        assert_eq!(
            request(&[]).await.unwrap().status(),
            200,
            "{method} {path} with no Origin"
        );
    }
}

#[tokio::test]
async fn without_ws_token_set_the_daemon_makes_a_private_token_and_requires_it() {
    let d = Daemon::start(&[], &["--sim"]).await;
    let file = d.data_dir().join("ws-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = std::fs::metadata(&file).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the owner reads the token file");
    }
    assert_eq!(d.ws_token.len(), 64, "32 random bytes as hex");
    assert!(d.ws_token.chars().all(|c| c.is_ascii_hexdigit()));

    // No token, an empty one, a wrong one: refused with 4003 (a page cannot read the file to learn it).
    for frame in [
        json!({"op": "hello"}),
        json!({"op": "hello", "token": ""}),
        json!({"op": "hello", "token": "guess"}),
    ] {
        let (mut socket, ack) = hello(&d, frame.clone()).await;
        assert_eq!(
            (&ack["ok"], &ack["error"]),
            (&json!(false), &json!("unauthorized")),
            "{frame}: {ack}"
        );
        assert_eq!(next(&mut socket).await.unwrap_err().0, 4003, "{frame}");
    }
    let mut socket = open(&d, &[]).await.unwrap();
    send(&mut socket, initialize()).await;
    assert_eq!(
        next(&mut socket).await.unwrap_err().0,
        4003,
        "JSON-RPC without the token"
    );
    let wrong = open(&d, &[("authorization", "Bearer guess")]).await;
    let mut socket = wrong.unwrap();
    send(&mut socket, initialize()).await;
    assert_eq!(
        next(&mut socket).await.unwrap_err().0,
        4003,
        "JSON-RPC with a wrong token"
    );

    let (_, ack) = hello(&d, json!({"op": "hello", "token": d.ws_token})).await;
    assert_eq!(ack["ok"], true, "the file's token opens a session: {ack}");
}

#[tokio::test]
async fn a_token_file_other_users_can_read_stops_the_daemon_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ws-token");
    std::fs::write(&file, "0123456789abcdef0123456789abcdef0123456789abcdef").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = std_command(&[])
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ws-token") && stderr.contains("other users") && stderr.contains("EXAI_WS_TOKEN"),
        "{stderr}"
    );
}

/// `exai serve` on `0.0.0.0` with `envs` and `args`; kills it once it printed its first line (or exited).
async fn serve_everywhere(envs: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = crate::support::command(envs);
    cmd.args(["serve", "--host", "0.0.0.0", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    let read = tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut first);
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap()
        .unwrap();
    let status = match first.is_empty() {
        true => child.wait().await.unwrap().code(),
        false => {
            // Started: give the start-up warning a moment to reach stderr, then stop it.
            tokio::time::sleep(Duration::from_millis(300)).await;
            child.start_kill().unwrap();
            child.wait().await.unwrap();
            None
        }
    };
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().unwrap();
    tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut stderr)
        .await
        .unwrap();
    (status, first, stderr)
}

#[tokio::test]
async fn serving_off_loopback_needs_a_token_or_the_explicit_opt_out() {
    let (status, out, err) = serve_everywhere(&[], &[]).await;
    assert_eq!(status, Some(1), "refused: {out}{err}");
    assert!(err.contains("EXAI_HTTP_TOKEN") && err.contains("0.0.0.0"), "{err}");
    assert!(
        err.contains("--insecure-no-auth"),
        "the refusal names the opt-out: {err}"
    );

    // HTTP guarded, the WebSocket daemon too open: its variable is named (the token file does not count).
    let ws_everywhere = [("EXAI_HTTP_TOKEN", "h"), ("EXAI_WS_HOST", "0.0.0.0")];
    let (status, _, err) = serve_everywhere(&ws_everywhere, &[]).await;
    assert_eq!(status, Some(1), "{err}");
    assert!(
        err.contains("EXAI_WS_TOKEN") && !err.contains("without EXAI_HTTP_TOKEN"),
        "{err}"
    );

    let (status, out, _) = serve_everywhere(&[("EXAI_HTTP_TOKEN", "h")], &[]).await;
    assert_eq!(status, None, "a token is enough to start: {out}");
    assert!(out.contains("listening on http://0.0.0.0:"), "{out}");

    for (envs, args) in [
        (vec![], vec!["--insecure-no-auth"]),
        (vec![("EXAI_INSECURE_NO_AUTH", "true")], vec![]),
    ] {
        let (status, out, err) = serve_everywhere(&envs, &args).await;
        assert_eq!(status, None, "the opt-out starts it: {out}{err}");
        assert!(out.contains("listening on http://0.0.0.0:"), "{out}");
        assert!(
            err.contains("WARN") && err.contains("EXAI_INSECURE_NO_AUTH") && err.contains("0.0.0.0"),
            "a warning at start: {err}"
        );
    }
}

#[tokio::test]
async fn the_dashboard_metrics_and_logs_never_show_a_resumable_session_id() {
    crate::support::crypto();
    let envs = [(
        "EXAI_LOG_LEVEL",
        "debug,rmcp=warn,sqlx=warn,hyper=warn,tungstenite=warn",
    )];
    let (d, logs) = Daemon::start_logged(&envs, &["--sim"]).await;
    let (mut victim, ack) = hello(&d, json!({"op": "hello", "token": d.ws_token})).await;
    let id = ack["session_id"].as_str().unwrap().to_owned();
    send(
        &mut victim,
        json!({"op": "call_tool", "request_id": "r1", "name": "version", "arguments": {}}),
    )
    .await;
    loop {
        let f = next(&mut victim).await.unwrap();
        if f["op"] == "call_tool_res" {
            break;
        }
    }
    let c = reqwest::Client::new();
    let mut calls = Value::Null;
    for _ in 0..100 {
        calls = c
            .get(d.url("/dashboard/api/calls"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if calls.to_string().contains("ws session") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shown = calls.to_string();
    assert!(
        shown.contains(&format!("ws session {}", &id[..8])),
        "the call is shown under a short tag: {shown}"
    );
    assert!(
        !shown.contains(&id),
        "the dashboard shows the whole session id: {shown}"
    );
    let metrics = c.get(d.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains(&id), "/metrics shows the session id");

    // What the dashboard shows resumes nothing, and the victim keeps its connection.
    let shown_sessions: Vec<String> = calls["calls"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter_map(|c| c["session"].as_str().map(str::to_owned))
        .collect();
    assert!(!shown_sessions.is_empty(), "{calls}");
    for session in shown_sessions {
        for candidate in [session.clone(), session.trim_start_matches("ws session ").to_owned()] {
            let (_, ack) = hello(&d, json!({"op": "hello", "token": d.ws_token, "session_id": candidate})).await;
            assert_eq!(ack["resumed"], false, "{candidate:?} resumed a session: {ack}");
        }
    }
    send(&mut victim, json!({"op": "ping"})).await;
    assert_eq!(
        next(&mut victim).await.unwrap()["op"],
        "pong",
        "the victim was not taken over"
    );

    drop(victim);
    let logged = logs.lock().unwrap().clone();
    assert!(
        logged.contains("websocket session attached"),
        "debug logs were collected: {logged}"
    );
    assert!(!logged.contains(&id), "the session id reached the logs: {logged}");
}

#[tokio::test]
async fn a_session_opened_under_one_token_is_not_resumed_under_another() {
    let Some(url) = database_url() else {
        return;
    };
    let (url, _cleanup) = fresh_schema(&url, "web_owner").await;
    let replica = |token: &'static str| {
        let url = url.clone();
        async move {
            let envs = [
                ("EXAI_DATABASE_URL", url.as_str()),
                ("EXAI_WS_TOKEN", token),
                ("EXAI_WS_SESSION_GRACE_SECS", "30"),
            ];
            Daemon::start(&envs, &["--sim"]).await
        }
    };
    // Two replicas sharing one store but with different tokens (as after a token change on one of them).
    let a = replica("token-of-replica-a").await;
    let b = replica("token-of-replica-b").await;
    let (socket, ack) = hello(&a, json!({"op": "hello", "token": a.ws_token})).await;
    let id = ack["session_id"].as_str().unwrap().to_owned();
    drop(socket);

    let (_, ack) = hello(&b, json!({"op": "hello", "token": b.ws_token, "session_id": id})).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(
        ack["resumed"], false,
        "a session of token A resumed under token B: {ack}"
    );
    assert_ne!(ack["session_id"], id.as_str());

    let (_, ack) = hello(&a, json!({"op": "hello", "token": a.ws_token, "session_id": id})).await;
    assert_eq!(ack["resumed"], true, "its own token still resumes it: {ack}");
    assert_eq!(ack["session_id"], id.as_str());
}

#[tokio::test]
async fn a_loadtest_against_a_running_daemon_reads_its_token_file() {
    let d = Daemon::start(&[], &["--sim"]).await;
    let reports = tempfile::tempdir().unwrap();
    let (target, ws_url) = (d.url(""), d.ws_url());
    let run = |data_dir: std::path::PathBuf| {
        let args = [
            "loadtest",
            "--target",
            target.as_str(),
            "--ws-url",
            ws_url.as_str(),
            "--transport",
            "ws",
            "--scenario",
            "custom",
            "--sessions",
            "1",
            "--calls",
            "3",
            "--duration",
            "20s",
            "--mix",
            "status=100",
            "--quiet",
            "--report-dir",
            reports.path().to_str().unwrap(),
        ];
        let mut cmd = crate::support::command(&[]);
        cmd.arg("--data-dir").arg(data_dir).args(args);
        async move { cmd.output().await.unwrap() }
    };
    // As the daemon's user with its data directory: no token to configure.
    let out = run(d.data_dir().to_owned()).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    // Elsewhere, with no token: a clear error naming what to set.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = run(elsewhere.path().to_owned()).await;
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("EXAI_WS_TOKEN") && text.contains("ws-token"), "{text}");
}

#[tokio::test]
async fn the_shim_needs_no_configuration_beside_its_daemon_and_says_what_to_set_elsewhere() {
    let d = Daemon::start(&[], &["--sim"]).await;
    let url = format!("ws://{}", d.ws_addr);
    let mut shim = crate::shim::Shim::start_in(&url, d.data_dir()).await;
    let (_, reply) = shim.call(1, "version", json!({}), false).await;
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    // Another user's (here: another data directory's) shim has no token to present.
    let mut stranger = crate::shim::Shim::start(&url).await;
    let (_, reply) = stranger.call(1, "version", json!({}), false).await;
    let said = reply.to_string();
    assert!(said.contains("EXAI_WS_TOKEN") && said.contains("ws-token"), "{said}");
}

/// Another user on the machine reads neither the conversations in the database nor its write-ahead log: the
/// database files are private (0600) even in a data directory others can enter (made by an older version, or
/// chosen by the user), an existing database others could read is made private, and a data directory exai creates
/// is 0700 on every path that creates it (here with `EXAI_WS_TOKEN` set, so no token file is made first).
#[cfg(unix)]
#[tokio::test]
async fn the_database_is_private_even_in_a_directory_others_can_enter() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    let existing = root.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).unwrap();
    // An empty file is an empty SQLite database: one an older version left readable by everyone.
    std::fs::write(existing.join("exai.db"), b"").unwrap();
    std::fs::set_permissions(existing.join("exai.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let made = root.path().join("made").join("data");
    let token = [("EXAI_WS_TOKEN", "a-token-set-by-the-user-0123456789")];
    for (dir, envs) in [(&existing, &[][..]), (&made, &token[..])] {
        let d = Daemon::start(envs, &["--sim", "--data-dir", dir.to_str().unwrap()]).await;
        // A conversation is stored.
        let http = reqwest::Client::new();
        let prompt = json!({"prompt": "a private question"});
        let resp = crate::support::stateless_call(&http, &d.url("/mcp"), 1, "chat", prompt, "web")
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        assert!(dir.join("exai.db").exists());
        for name in ["exai.db", "exai.db-wal", "exai.db-shm"] {
            let file = dir.join(name);
            if file.exists() {
                assert_eq!(mode(&file) & 0o077, 0, "{} is mode {:o}", file.display(), mode(&file));
            }
        }
    }
    assert_eq!(mode(&made), 0o700, "a data directory exai creates is private");
}

/// A data directory other users can write to (one in `/tmp`, or made group-writable) would let them put their own
/// database (or a link to one they read) or token file in place before the daemon starts: `exai serve` refuses it
/// and names what to do.
#[cfg(unix)]
#[tokio::test]
async fn a_data_directory_other_users_can_write_to_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let shared = root.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let mut cmd = crate::support::command(&[]);
    cmd.args(["serve", "--sim", "--port", "0", "--data-dir"]).arg(&shared);
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .expect("exai serve started in a directory other users can write to")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started: {stderr}");
    assert!(
        stderr.contains("other users can write") && stderr.contains("EXAI_DATA_DIR"),
        "{stderr}"
    );
    assert!(!shared.join("exai.db").exists() && !shared.join("ws-token").exists());
}

/// Even `EXAI_LOG_LEVEL=trace` (what one turns on to debug, and what `exai shim --start-daemon` would keep in
/// `daemon.log`) logs neither the token a client says `hello` with nor its session id: the WebSocket library dumps
/// every frame at that level.
#[tokio::test]
async fn trace_logs_hold_neither_the_hello_token_nor_the_session_id() {
    let (d, logs) = Daemon::start_logged(&[("EXAI_LOG_LEVEL", "trace")], &["--sim"]).await;
    let (mut socket, ack) = hello(&d, json!({"op": "hello", "token": d.ws_token})).await;
    let id = ack["session_id"].as_str().unwrap().to_owned();
    send(
        &mut socket,
        json!({"op": "call_tool", "request_id": "r1", "name": "version", "arguments": {}}),
    )
    .await;
    while next(&mut socket).await.unwrap()["op"] != "call_tool_res" {}
    drop(socket);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logged = logs.lock().unwrap().clone();
    assert!(logged.contains("DEBUG"), "verbose logs were collected: {logged}");
    assert!(!logged.contains(&d.ws_token), "the token reached the logs");
    assert!(!logged.contains(&id), "the session id reached the logs");
}

/// This machine's address on the interface that leaves it (no packet is sent), if it has one.
fn outbound_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

/// A WebSocket listener on this machine's outward address, standing in for another host: it answers any `hello`
/// with a refusal and keeps what it heard. `None` when the machine has no such address.
async fn another_host() -> Option<(String, std::sync::Arc<std::sync::Mutex<String>>)> {
    let ip = outbound_ip()?;
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.ok()?;
    let addr = listener.local_addr().unwrap();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let kept = heard.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                continue;
            };
            if let Some(Ok(message)) = ws.next().await {
                kept.lock().unwrap().push_str(message.to_text().unwrap_or_default());
                let refusal = json!({"op": "hello_ack", "ok": false, "error": "unauthorized", "message": "no"});
                let _ = ws.send(Message::text(refusal.to_string())).await;
                let _ = ws.close(None).await;
            }
        }
    });
    Some((format!("ws://{addr}/"), heard))
}

/// The token file opens this machine's daemon: `exai shim --url` naming another host never sends it there, and
/// the shim says to set `EXAI_WS_TOKEN`.
#[tokio::test]
async fn the_shim_never_sends_the_token_file_to_another_host() {
    let d = Daemon::start(&[], &["--sim"]).await;
    let (url, heard) = match another_host().await {
        Some((url, heard)) => (url, Some(heard)),
        None => ("ws://exai.invalid:8079".to_owned(), None),
    };
    let mut shim = crate::shim::Shim::start_in(&url, d.data_dir()).await;
    let (_, reply) = shim.call(1, "version", json!({}), false).await;
    let said = reply.to_string();
    if let Some(heard) = heard {
        assert!(
            !heard.lock().unwrap().contains(&d.ws_token),
            "the token file was sent to {url}"
        );
    }
    assert!(said.contains("EXAI_WS_TOKEN") && said.contains("loopback"), "{said}");
}

/// The same for `exai loadtest --allow-remote --ws-url` naming another host: no token file is sent, and it says
/// to pass one.
#[tokio::test]
async fn a_loadtest_never_sends_the_token_file_to_another_host() {
    let d = Daemon::start(&[], &["--sim"]).await;
    let Some((ws_url, heard)) = another_host().await else {
        return;
    };
    let reports = tempfile::tempdir().unwrap();
    let mut cmd = crate::support::command(&[]);
    cmd.arg("--data-dir").arg(d.data_dir()).args([
        "loadtest",
        "--allow-remote",
        "--target",
        d.url("").as_str(),
        "--ws-url",
        ws_url.as_str(),
        "--transport",
        "ws",
        "--scenario",
        "custom",
        "--sessions",
        "1",
        "--calls",
        "1",
        "--duration",
        "5s",
        "--mix",
        "status=100",
        "--quiet",
        "--report-dir",
        reports.path().to_str().unwrap(),
    ]);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !heard.lock().unwrap().contains(&d.ws_token),
        "the token file was sent to {ws_url}"
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("EXAI_WS_TOKEN") && text.contains("loopback"), "{text}");
}

/// A repository's `exai.toml` must not change the daemon started in it (`exai shim --start-daemon` starts it in the
/// assistant's project; desktop assistants launch `exai stdio` there): found in the working directory, the file is
/// not read at all (it could open the daemon to every page, or send the API keys to its own `base_url`), and exai
/// says so; named with `--config` it is the user's choice and applies.
#[tokio::test]
async fn an_exai_toml_in_the_working_directory_is_never_read() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("exai.toml"),
        "[http]\nallowed_origins = \"*\"\n[ws]\ntoken = \"a-token-the-repository-knows-0123456789\"\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let serve = |args: &[&str]| {
        let mut cmd = crate::support::command(&[]);
        cmd.current_dir(repo.path())
            .env("HOME", home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("EXAI_CONFIG")
            .args(["serve", "--sim", "--port", "0", "--data-dir"])
            .arg(data.path())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    // Picked up from the working directory: ignored, so the WebSocket port still wants the daemon's own token
    // and still refuses a foreign page.
    let mut child = serve(&[]);
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let (mut http, mut ws) = (String::new(), String::new());
    for line in [&mut http, &mut ws] {
        let read = tokio::io::AsyncBufReadExt::read_line(&mut stdout, line);
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .unwrap()
            .unwrap();
    }
    assert!(http.contains("listening on"), "{http}");
    let ws_url = ws.trim().rsplit(' ').next().unwrap().to_owned();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url.as_str()).unwrap();
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await;
    assert!(refused.is_err(), "the repository's allowed_origins = \"*\" was applied");
    let token = std::fs::read_to_string(data.path().join("ws-token")).unwrap();
    assert_ne!(token.trim(), "a-token-the-repository-knows-0123456789");
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not reading") && stderr.contains("exai.toml") && stderr.contains("--config"),
        "{stderr}"
    );

    // Named explicitly, it applies: the daemon starts with the file's token.
    let mut child = serve(&["--config", "exai.toml"]);
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    let read = tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut first);
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap()
        .unwrap();
    assert!(first.contains("listening on"), "{first}");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

/// `exai stdio` (what desktop assistants launch in the project) reads no `./exai.toml` either: a repository's
/// provider `base_url` would receive the API key.
#[test]
fn stdio_in_a_repository_never_reads_its_exai_toml() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("exai.toml"),
        "[providers.glm]\nbase_url = \"http://attacker.invalid/v4\"\n",
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_exai"))
        .current_dir(repo.path())
        .env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("EXAI_CONFIG")
        .args(["config", "check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains("attacker.invalid"), "{stdout}");
    assert!(stderr.contains("not reading"), "{stderr}");
    // The user's own file is read.
    let user = home.path().join(".config").join("exai");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("exai.toml"), "[http]\nport = 8181\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_exai"))
        .current_dir(repo.path())
        .env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("EXAI_CONFIG")
        .args(["config", "check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("http.port") && l.contains("8181"))
            && !stdout.contains("attacker.invalid"),
        "{stdout}"
    );
}

/// A token with `+`, `/` and `=` (`openssl rand -base64`), URL-encoded in `?token=` as clients do, is accepted; the
/// same token sent raw works too, and a wrong one is still refused.
#[tokio::test]
async fn a_url_encoded_query_token_is_decoded_before_it_is_compared() {
    let token = "ab+cd/ef==";
    let d = Daemon::start(&[("EXAI_WS_TOKEN", token)], &[]).await;
    let connect = |query: &'static str| {
        let url = format!("{}?token={query}", d.ws_url());
        async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
            send(&mut socket, initialize()).await;
            next(&mut socket).await
        }
    };
    let reply = connect("ab%2Bcd%2Fef%3D%3D")
        .await
        .expect("the encoded token was refused");
    assert_eq!(reply["id"], 1, "{reply}");
    let reply = connect("ab+cd/ef==").await.expect("the raw token was refused");
    assert_eq!(reply["id"], 1, "{reply}");
    let (code, _) = connect("ab%2Bcd%2Fef%3D")
        .await
        .expect_err("a wrong token was accepted");
    assert_eq!(code, 4003);
}
