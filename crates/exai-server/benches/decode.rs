//! JSON-RPC decoding of incoming messages (`inbound::decode`) on a typical `tools/call` request and on two
//! malformed ones (bad params, truncated JSON), against `serde_json::from_slice::<Value>` on the same bytes; and
//! encoding a typical `tools/call` reply (rmcp's typed message, as the transports write it) against the same JSON
//! as a `Value`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use exai_server::inbound::{self, Decoded};
use rmcp::model::{CallToolResult, ContentBlock, RequestId, ServerJsonRpcMessage, ServerResult};
use serde_json::{Value, json};

const TOOLS_CALL: &[u8] = concat!(
    r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"chat","arguments":{"#,
    r#""prompt":"Review this function for off-by-one errors and suggest a fix.","model":"glm-4.6","#,
    r#""temperature":0.3,"files":["src/lib.rs"]},"_meta":{"progressToken":"p-42"}}}"#
)
.as_bytes();
/// Valid JSON, but `params.name` has the wrong type: decoded, its params checked again, answered -32602.
const INVALID_PARAMS: &[u8] =
    br#"{"jsonrpc":"2.0","id":43,"method":"tools/call","params":{"name":5,"arguments":{"prompt":"hello"}}}"#;

fn decode(c: &mut Criterion) {
    assert!(matches!(inbound::decode(TOOLS_CALL), Decoded::Message(_)));
    // The same request cut off mid-way: -32700 Parse error.
    let truncated = &TOOLS_CALL[..TOOLS_CALL.len() / 2];
    for bad in [INVALID_PARAMS, truncated] {
        assert!(matches!(inbound::decode(bad), Decoded::Reject(_)));
    }
    let mut group = c.benchmark_group("decode");
    for (name, bytes) in [
        ("tools_call", TOOLS_CALL),
        ("invalid_params", INVALID_PARAMS),
        ("parse_error", truncated),
    ] {
        group.bench_function(format!("{name}/inbound"), |b| {
            b.iter(|| inbound::decode(black_box(bytes)))
        });
        group.bench_function(format!("{name}/serde_value"), |b| {
            b.iter(|| serde_json::from_slice::<Value>(black_box(bytes)))
        });
    }
    group.finish();
}

/// A `chat`-sized reply: one text block and its structured content.
fn reply() -> ServerJsonRpcMessage {
    let text = "The loop runs one step too far: `i <= len` should be `i < len`. ".repeat(8);
    let structured = json!({"answer": text, "provider": "glm", "model": "glm-4.6", "latency_ms": 812,
        "usage": {"tokens_in": 412, "tokens_out": 96}, "continuation_id": "5d1c3c1e-8a39-4b8e-9f7b-2f0c1f9a7e21"});
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    ServerJsonRpcMessage::response(ServerResult::CallToolResult(result), RequestId::Number(42))
}

fn encode(c: &mut Criterion) {
    let message = reply();
    let value = serde_json::to_value(&message).unwrap();
    // The same JSON either way (a `Value` orders keys, so compare parsed).
    let typed: Value = serde_json::from_str(&serde_json::to_string(&message).unwrap()).unwrap();
    assert_eq!(typed, value);
    let mut group = c.benchmark_group("encode");
    group.bench_function("tools_call_reply/rmcp", |b| {
        b.iter(|| serde_json::to_string(black_box(&message)))
    });
    group.bench_function("tools_call_reply/serde_value", |b| {
        b.iter(|| serde_json::to_string(black_box(&value)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = decode, encode
}
criterion_main!(benches);
