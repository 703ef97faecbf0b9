//! Memory and connection exhaustion, against a real `exai serve` over real sockets: a WebSocket client that does not
//! read, an unauthenticated huge first frame, hello+close floods, and clients that trickle their request headers.
//! Every wait is bounded; the assertions are on behaviour (close codes, refusals, metrics), never on memory.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::chat::sim;
use crate::support::{self, Daemon};

const TOKEN: &str = "dos-test-token";

use crate::support::{WsSocket as Ws, next_ws_frame as next};

/// `exai serve` with a WebSocket token, GLM answered by `sim`, and `extra`.
async fn daemon(sim: &exai_sim::SimHandle, extra: &[(&str, &str)]) -> Daemon {
    let glm = sim.base_url_glm();
    let mut env = vec![
        ("GLM_BASE_URL", glm.as_str()),
        ("GLM_API_KEY", "test-glm-key"),
        ("EXAI_WS_TOKEN", TOKEN),
    ];
    env.extend_from_slice(extra);
    Daemon::start(&env, &[]).await
}

async fn connect(d: &Daemon) -> Ws {
    tokio_tungstenite::connect_async(d.ws_url())
        .await
        .expect("websocket connect")
        .0
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// Says hello (with `session_id` to resume); returns the socket and the `hello_ack`.
async fn hello(d: &Daemon, session_id: Option<&str>) -> (Ws, Value) {
    let mut ws = connect(d).await;
    let mut frame = json!({"op": "hello", "token": TOKEN});
    if let Some(id) = session_id {
        frame["session_id"] = json!(id);
    }
    send(&mut ws, frame).await;
    let ack = next(&mut ws).await.expect("a hello_ack");
    assert_eq!(ack["op"], "hello_ack", "{ack}");
    (ws, ack)
}

/// Polls `url` until `check` accepts its body (bounded); `Err(last body)` when it never did.
async fn poll(url: &str, check: impl Fn(&str) -> bool) -> Result<(), String> {
    let client = reqwest::Client::new();
    let mut last = String::new();
    for _ in 0..150 {
        if let Ok(resp) = client.get(url).send().await
            && let Ok(body) = resp.text().await
        {
            if check(&body) {
                return Ok(());
            }
            last = body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last)
}

async fn until_body(url: &str, what: &str, check: impl Fn(&str) -> bool) {
    if let Err(last) = poll(url, check).await {
        panic!("{what} never showed at {url}; last body: {last}");
    }
}

/// Tries (bounded) to open a WebSocket session at `addr`; `Err(last close)` when every try was refused.
async fn ws_admitted(addr: SocketAddr) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..75 {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await.unwrap();
        let hello = json!({"op": "hello", "token": TOKEN}).to_string();
        let _ = ws.send(Message::text(hello)).await;
        match next(&mut ws).await {
            Ok(ack) if ack["ok"] == true => return Ok(()),
            Ok(ack) => last = ack.to_string(),
            // Past the per-address limit: upgraded, then closed with 1008.
            Err((code, reason)) => last = format!("{code} {reason}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last)
}

/// The value of the metric line starting with `series` in a Prometheus text (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_client_that_does_not_read_is_closed_with_4007_and_its_result_waits_for_its_resume() {
    let sim = sim().await;
    crate::ws::slow(&sim, "the kept answer", 1500);
    let d = daemon(
        &sim,
        &[
            ("EXAI_WS_MAX_QUEUED_FRAMES", "64"),
            ("EXAI_WS_MAX_QUEUED_BYTES", "262144"),
        ],
    )
    .await;
    let (mut ws, ack) = hello(&d, None).await;
    let session = ack["session_id"].as_str().unwrap().to_owned();
    send(
        &mut ws,
        json!({"op": "call_tool", "request_id": "r1", "name": "chat", "arguments": {"prompt": "hi", "model": "glm-4.6"}}),
    )
    .await;
    // 4,000 requests for the tool list, none of the answers read (the daemon may hang up before the last).
    for i in 0..4000 {
        let frame = json!({"op": "list_tools", "request_id": i}).to_string();
        if ws.send(Message::text(frame)).await.is_err() {
            break;
        }
    }
    let metrics = d.url("/metrics");
    until_body(&metrics, "a not-reading close", |m| {
        metric(m, "exai_ws_closed_not_reading_total") >= 1.0
    })
    .await;

    // The client reads at last: what was already on the wire, then the close that says why.
    let (mut lists, mut result) = (0, None);
    let (code, reason) = loop {
        match next(&mut ws).await {
            Ok(f) if f["op"] == "list_tools_res" => lists += 1,
            Ok(f) if f["request_id"] == "r1" && f["op"] == "call_tool_res" => result = Some(f),
            Ok(_) => {}
            Err(close) => break close,
        }
    };
    assert_eq!(code, 4007, "{reason}");
    assert!(reason.contains("not reading"), "{reason}");
    assert!(reason.contains("EXAI_WS_MAX_QUEUED_FRAMES"), "{reason}");
    assert!(
        lists < 4000,
        "the daemon stopped queueing answers for a client that did not read ({lists})"
    );

    // The call's result was not lost: it comes on the resumed session (unless it came before the close).
    if result.is_none() {
        let (mut ws, ack) = hello(&d, Some(&session)).await;
        assert_eq!(ack["resumed"], true, "{ack}");
        while result.is_none() {
            let f = next(&mut ws).await.expect("the kept result");
            if f["request_id"] == "r1" && f["op"] == "call_tool_res" {
                result = Some(f);
            }
        }
    }
    let result = result.unwrap();
    assert!(result.to_string().contains("the kept answer"), "{result}");
    let health = reqwest::get(d.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "the daemon keeps serving");
}

#[tokio::test]
async fn a_client_with_a_zero_window_is_dropped_after_the_write_timeout() {
    let sim = sim().await;
    // Queue caps far above what is sent, so only the write timeout can end this connection.
    let d = daemon(
        &sim,
        &[
            ("EXAI_WS_MAX_QUEUED_FRAMES", "100000"),
            ("EXAI_WS_MAX_QUEUED_BYTES", "1073741824"),
            ("EXAI_WS_WRITE_TIMEOUT_SECS", "2"),
        ],
    )
    .await;
    let (mut ws, _) = hello(&d, None).await;
    for i in 0..1000 {
        send(&mut ws, json!({"op": "list_tools", "request_id": i})).await;
    }
    // The socket stays open on this side, never read: the daemon's writer blocks, then gives up.
    let metrics = d.url("/metrics");
    until_body(&metrics, "a write timeout", |m| {
        metric(m, "exai_ws_write_timeouts_total") >= 1.0
    })
    .await;
    let open = "exai_open_connections{transport=\"ws\"}";
    until_body(&metrics, "the connection's slot given back", |m| metric(m, open) == 0.0).await;
    drop(ws);
}

#[tokio::test]
async fn an_unauthenticated_30_mb_first_frame_is_refused_with_1009_and_the_daemon_keeps_serving() {
    let sim = sim().await;
    let d = daemon(&sim, &[]).await;
    let ws = connect(&d).await;
    let (mut sink, mut stream) = ws.split();
    let big = format!("{{\"op\":\"hello\",\"pad\":\"{}\"}}", "x".repeat(30 << 20));
    // The daemon stops reading long before the end: the send fails or stalls, and that is fine.
    let sender = tokio::spawn(async move {
        let _ = sink.send(Message::text(big)).await;
        sink
    });
    let close = loop {
        let message = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("a close within 20 s");
        match message {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| (u16::from(f.code), f.reason.to_string())),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let (code, reason) = close.expect("a close code");
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("first frame over 65536 bytes"), "{reason}");
    sender.abort();

    let (mut ws, ack) = hello(&d, None).await;
    assert_eq!(ack["ok"], true, "{ack}");
    send(&mut ws, json!({"op": "ping", "request_id": 1})).await;
    assert_eq!(next(&mut ws).await.unwrap(), json!({"op": "pong", "request_id": 1}));
    assert_eq!(reqwest::get(d.url("/healthz")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn three_hundred_hello_and_close_cycles_leave_room_for_a_new_client() {
    let sim = sim().await;
    // Connections are not what is tested here: let every cycle's socket count, however slowly it goes.
    let d = daemon(&sim, &[("EXAI_MAX_CONNECTIONS_PER_IP", "1000")]).await;
    for i in 0..300 {
        let (mut ws, ack) = hello(&d, None).await;
        assert_eq!(ack["ok"], true, "cycle {i}: {ack}");
        ws.close(None).await.unwrap();
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {}
    }
    let (_ws, ack) = hello(&d, None).await;
    assert_eq!(ack["ok"], true, "a new client still gets a session: {ack}");

    // Sessions that never ran a call wait only a few seconds for their client (the grace period is 300 s).
    let metrics = d.url("/metrics");
    let open = "exai_open_sessions{transport=\"ws\"}";
    until_body(&metrics, "the idle sessions ending", |m| metric(m, open) <= 1.0).await;
}

/// On a connected socket, sends a request's headers one byte every 300 ms, never finishing them (for up to 60 s,
/// or until the daemon hangs up); returns whether the daemon hung up.
fn trickle(mut tcp: TcpStream) -> tokio::task::JoinHandle<bool> {
    let start = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    tokio::spawn(async move {
        for byte in start.iter().chain(std::iter::repeat(&b'a')).take(200) {
            if tcp.write_all(std::slice::from_ref(byte)).await.is_err() {
                return true;
            }
            let mut buf = [0u8; 512];
            if let Ok(read) = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut buf)).await {
                match read {
                    Ok(0) | Err(_) => return true,
                    // A refusal (503) past the connection limit: the daemon hangs up right after it.
                    Ok(_) => {}
                }
            }
        }
        false
    })
}

/// `exai serve --sim` with a dashboard port; returns the child and the HTTP, WebSocket and dashboard addresses.
async fn daemon_with_dashboard(
    extra: &[(&str, &str)],
    dir: &std::path::Path,
) -> (tokio::process::Child, [SocketAddr; 3]) {
    support::crypto();
    let mut env = vec![("MONITORING_DASHBOARD_PORT", "0"), ("EXAI_WS_TOKEN", TOKEN)];
    env.extend_from_slice(extra);
    let mut cmd = support::command(&env);
    cmd.args(["serve", "--port", "0", "--sim", "--data-dir"]).arg(dir);
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut addrs = Vec::new();
    for prefix in ["http://", "ws://", "http://"] {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
            .await
            .expect("a line within 30 s")
            .unwrap();
        let addr = line
            .split(prefix)
            .nth(1)
            .and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == '/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        addrs.push(addr.parse().unwrap());
    }
    (child, [addrs[0], addrs[1], addrs[2]])
}

#[tokio::test]
async fn clients_trickling_their_headers_do_not_keep_others_out_past_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let limits = [
        ("EXAI_MAX_CONNECTIONS_PER_IP", "3"),
        ("EXAI_HEADER_READ_TIMEOUT_SECS", "2"),
    ];
    let (_child, [http, ws, dash]) = daemon_with_dashboard(&limits, dir.path()).await;

    // Each port: as many tricklers as the per-address limit, sending headers one byte at a time.
    // All connected before any other client, so they are the ones the daemon admits.
    let mut tricklers = Vec::new();
    for addr in [http, dash, ws] {
        for _ in 0..3 {
            tricklers.push(trickle(TcpStream::connect(addr).await.unwrap()));
        }
    }
    // A client of each port gets in within the bound (30 s), while the tricklers are still at it (60 s).
    let healthz = format!("http://{http}/healthz");
    let metrics = format!("http://{dash}/metrics");
    let (http_in, dash_in, ws_in) = tokio::join!(
        poll(&healthz, |b| b.contains("ok")),
        poll(&metrics, |b| b.contains("exai_")),
        ws_admitted(ws),
    );
    assert!(
        http_in.is_ok() && dash_in.is_ok() && ws_in.is_ok(),
        "kept out by the tricklers: HTTP port {http_in:?}, dashboard port {dash_in:?}, WebSocket port {ws_in:?}"
    );
    for t in tricklers {
        assert!(t.await.unwrap(), "the daemon hung up on every trickler");
    }

    // The dashboard port has connection limits too: of six silent connections from this address, those past the
    // limit (3) get a 503 naming it at once (the admitted ones are closed by the first-bytes deadline, answerless).
    let silent: Vec<TcpStream> = futures::future::join_all((0..6).map(|_| TcpStream::connect(dash)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let answers = futures::future::join_all(silent.into_iter().map(|mut tcp| async move {
        let mut answer = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut answer)).await;
        answer
    }))
    .await;
    let refused: Vec<&String> = answers.iter().filter(|a| a.starts_with("HTTP/1.1 503")).collect();
    assert!(
        refused.len() >= 3,
        "past EXAI_MAX_CONNECTIONS_PER_IP on the dashboard port: {answers:?}"
    );
    assert!(refused[0].contains("EXAI_MAX_CONNECTIONS_PER_IP"), "{answers:?}");
}

/// A client that sends its headers at once and then trickles the body (one byte every 300 ms of a declared 1,000)
/// is answered 408 with a JSON-RPC error naming `EXAI_BODY_READ_TIMEOUT_SECS` once that passes, rather than holding
/// its connection slot for as long as it likes; the daemon keeps serving.
#[tokio::test]
async fn a_body_trickled_after_its_headers_gets_408_at_the_body_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let limits = [("EXAI_BODY_READ_TIMEOUT_SECS", "2")];
    let (_child, [http, _, _]) = daemon_with_dashboard(&limits, dir.path()).await;
    let mut tcp = TcpStream::connect(http).await.unwrap();
    let head = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
                accept: application/json, text/event-stream\r\ncontent-length: 1000\r\n\r\n{";
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let started = std::time::Instant::now();
    // Up to 60 s of trickling (far past the 2 s timeout); stops as soon as the daemon answers.
    for _ in 0..200 {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Err(_) => {
                if tcp.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "after {:?}: {answer:?}",
        started.elapsed()
    );
    assert!(answer.contains("EXAI_BODY_READ_TIMEOUT_SECS"), "{answer}");
    assert!(answer.contains("\"jsonrpc\""), "{answer}");
    let healthz = format!("http://{http}/healthz");
    assert!(
        poll(&healthz, |b| b.contains("ok")).await.is_ok(),
        "the daemon stopped serving"
    );
}

/// Cleartext HTTP/2 (the prior-knowledge preface and one empty SETTINGS frame, then silence) would get round the
/// header-read timeout, which hyper applies to HTTP/1 only, and hold a connection slot for ever: every port speaks
/// HTTP/1.1 only, so such a connection is closed at once, long before the (here 60 s) header timeout.
#[tokio::test]
async fn a_silent_http2_connection_is_closed_at_once_on_every_port() {
    let dir = tempfile::tempdir().unwrap();
    let limits = [("EXAI_HEADER_READ_TIMEOUT_SECS", "60")];
    let (_child, addrs) = daemon_with_dashboard(&limits, dir.path()).await;
    for addr in addrs {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
        tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;
        assert!(
            closed.is_ok(),
            "{addr}: an HTTP/2 connection was still open after 10 s (it answered {:?})",
            String::from_utf8_lossy(&rest)
        );
    }
}
