//! JSON-RPC decoding of incoming messages (`inbound::decode`) on a typical `tools/call` request and on two
//! malformed ones (bad params, truncated JSON), against `serde_json::from_slice::<Value>` on the same bytes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use exai_server::inbound::{self, Decoded};
use serde_json::Value;

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

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = decode
}
criterion_main!(benches);
