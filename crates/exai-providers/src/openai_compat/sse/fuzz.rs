//! Fuzz target for [`SseParser`]: byte streams heavy in SSE syntax, line breaks of every kind, BOMs and invalid UTF-8,
//! fed whole, byte by byte and split at arbitrary points; events written by a server come back exactly; the event
//! size limit holds however the stream is split. Also replays `fuzz/corpus/sse/`.

use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::*;

/// `cases` in `cargo test`; `PROPTEST_CASES` overrides it for deeper runs.
fn config(cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

/// What a parser made of a stream: the events before any failure, whether it failed, and what was left pending.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<SseEvent>,
    too_large: Option<EventTooLarge>,
    partial: bool,
}

fn run<'a>(limit: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut parser = SseParser::with_limit(limit);
    let mut events = Vec::new();
    let mut too_large = None;
    for chunk in chunks {
        match parser.feed(chunk) {
            Ok(more) => events.extend(more),
            Err(e) => {
                too_large = Some(e);
                break;
            }
        }
    }
    Outcome {
        events,
        too_large,
        partial: too_large.is_none() && parser.has_partial(),
    }
}

/// Splits `bytes` at `cuts` (offsets, taken modulo the length + 1, in any order).
fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in at {
        chunks.push(&bytes[start..cut]);
        start = cut;
    }
    chunks.push(&bytes[start..]);
    chunks
}

/// What must hold for any stream: however it is split, the same events, or the same failure.
fn check(bytes: &[u8], limit: usize, cuts: &[usize]) -> Result<(), TestCaseError> {
    let by_byte = run(limit, bytes.chunks(1));
    for other in [run(limit, split(bytes, cuts)), run(limit, [bytes])] {
        if by_byte.too_large.is_none() {
            prop_assert_eq!(&other, &by_byte);
        } else {
            // The failing chunk's own events go down with the stream: the same failure after a prefix of them.
            prop_assert_eq!(other.too_large, Some(EventTooLarge { limit }));
            prop_assert!(by_byte.events.starts_with(&other.events));
        }
    }
    for event in &by_byte.events {
        prop_assert!(
            event.data.len() <= limit,
            "event of {} bytes passed a {limit}-byte limit",
            event.data.len()
        );
    }
    Ok(())
}

/// Streams made of the pieces SSE parsers get wrong.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            &b"data:"[..], b"data: ", b"data", b"event:", b"event: error", b"id: 1", b"retry: 5", b":", b": ping",
            b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n", b"\xEF\xBB\xBF", b" ", b"[DONE]", b"{\"a\":1}",
            b"\xff", b"\xc3", b"\xa9", b"\xe4\xbd\xa0",
        ])
        .prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// One event as a server writes it: an optional name and data lines (no line breaks inside).
fn event() -> impl Strategy<Value = (Option<String>, Vec<String>)> {
    (
        prop::option::of("[a-z]{1,8}"),
        prop::collection::vec("[^\r\n]{0,24}", 1..4),
    )
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..12)
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn any_stream_split_anywhere_gives_the_same_events(bytes in stream(), cuts in cuts()) {
        check(&bytes, MAX_EVENT_BYTES, &cuts)?;
    }

    #[test]
    fn the_size_limit_holds_however_the_stream_is_split(bytes in stream(), limit in 0usize..48, cuts in cuts()) {
        check(&bytes, limit, &cuts)?;
        let outcome = run(limit, bytes.chunks(1));
        let longest_line = bytes.split(|&b| b == b'\n' || b == b'\r').map(<[u8]>::len).max().unwrap_or(0);
        prop_assert!(longest_line <= limit || outcome.too_large.is_some(), "a {longest_line}-byte line passed");
    }

    #[test]
    fn events_a_server_writes_come_back_exactly(
        events in prop::collection::vec(event(), 0..6),
        breaks in prop::collection::vec(prop::sample::select(vec!["\n", "\r", "\r\n"]), 1..4),
        comments in any::<bool>(),
        bom in any::<bool>(),
        cuts in cuts(),
    ) {
        let mut text = String::from(if bom { "\u{feff}" } else { "" });
        for (i, (name, lines)) in events.iter().enumerate() {
            let br = breaks[i % breaks.len()];
            if comments {
                text.push_str(&format!(": keep-alive{br}"));
            }
            if let Some(name) = name {
                text.push_str(&format!("event: {name}{br}"));
            }
            for line in lines {
                text.push_str(&format!("data: {line}{br}"));
            }
            text.push_str(br);
        }
        let expected: Vec<SseEvent> = events
            .iter()
            .map(|(name, lines)| SseEvent { event: name.clone(), data: lines.join("\n") })
            .collect();
        check(text.as_bytes(), MAX_EVENT_BYTES, &cuts)?;
        prop_assert_eq!(run(MAX_EVENT_BYTES, split(text.as_bytes(), &cuts)).events, expected);
    }
}

#[test]
fn corpus_replays() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/sse");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    assert!(!paths.is_empty(), "corpus {} is empty", dir.display());
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        for limit in [MAX_EVENT_BYTES, 64] {
            let cuts: Vec<usize> = (1..8).map(|i| i * 7919).collect();
            if let Err(e) = check(&bytes, limit, &cuts) {
                panic!("{}: {e}", path.display());
            }
        }
    }
}

#[test]
fn an_endless_line_fails_at_the_limit_and_keeps_failing() {
    let mut p = SseParser::with_limit(1024);
    assert!(p.feed(&[b'a'; 1000]).unwrap().is_empty());
    assert_eq!(p.feed(&[b'a'; 100]), Err(EventTooLarge { limit: 1024 }));
    assert_eq!(p.feed(b"\n\n"), Err(EventTooLarge { limit: 1024 }));
    assert!(p.line.capacity() == 0 && p.data.capacity() == 0, "buffers released");
    let mut p = SseParser::new();
    let line = vec![b'x'; 1 << 20];
    let mut failed = None;
    for i in 0..(MAX_EVENT_BYTES >> 20) + 1 {
        if let Err(e) = p.feed(&line) {
            failed = Some((i, e));
            break;
        }
    }
    assert_eq!(
        failed,
        Some((MAX_EVENT_BYTES >> 20, EventTooLarge { limit: MAX_EVENT_BYTES }))
    );
    // Many `data:` lines of one event count together (with the line being read).
    let mut p = SseParser::with_limit(100);
    assert!(p.feed(&b"data: 0123456789\n".repeat(8)).is_ok());
    assert!(p.feed(&b"data: 0123456789\n".repeat(2)).is_err());
}
