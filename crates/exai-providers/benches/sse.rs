//! The SSE parser (`openai_compat::sse::SseParser`) over a recorded GLM stream fed in 97-byte network-like
//! chunks, against splitting the same bytes on `\n`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use exai_providers::openai_compat::sse::SseParser;

const STREAM: &[u8] = include_bytes!("../tests/fixtures/glm_stream_reasoning.sse");
const CHUNK: usize = 97;

fn sse(c: &mut Criterion) {
    let events: usize = STREAM
        .chunks(CHUNK)
        .scan(SseParser::new(), |p, chunk| Some(p.feed(chunk).unwrap().len()))
        .sum();
    assert_eq!(events, 8, "the fixture has 7 chunks and [DONE]");
    let mut group = c.benchmark_group("sse");
    group.throughput(Throughput::Bytes(STREAM.len() as u64));
    group.bench_function("parser", |b| {
        b.iter(|| {
            let mut parser = SseParser::new();
            for chunk in black_box(STREAM).chunks(CHUNK) {
                black_box(parser.feed(chunk).unwrap());
            }
        })
    });
    group.bench_function("split_lines", |b| {
        b.iter(|| {
            for line in black_box(STREAM).split(|&b| b == b'\n') {
                black_box(line);
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = sse
}
criterion_main!(benches);
