//! An incremental server-sent-events parser: bytes arrive split anywhere, complete events come out.
//! Follows the WHATWG event-stream rules (`data:` lines joined by `\n`, comments, `\r\n`/`\r`/`\n`, BOM), and holds
//! at most [`MAX_EVENT_BYTES`] of an unfinished event, so an upstream that never ends a line cannot exhaust memory.

/// The most bytes of one event (its unfinished line, `data` and `event` together) the parser holds.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// One dispatched event. `event` is the `event:` field when the server named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// The stream sent an event larger than the parser's limit; the parser keeps refusing after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge {
    pub limit: usize,
}

impl std::fmt::Display for EventTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a server-sent event exceeds the {}-byte limit", self.limit)
    }
}

impl std::error::Error for EventTooLarge {}

/// Parser state between chunks: the unfinished line and the event being assembled.
#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a leading `\n` in the next one belongs to that line break.
    after_cr: bool,
    started: bool,
    data: String,
    has_data: bool,
    event: Option<String>,
    limit: usize,
    /// Set once the limit was passed: every later `feed` fails too.
    overflowed: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::with_limit(MAX_EVENT_BYTES)
    }
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser that holds at most `limit` bytes of one event.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            started: false,
            data: String::new(),
            has_data: false,
            event: None,
            limit,
            overflowed: false,
        }
    }

    /// Feeds the next bytes and returns every event they complete, in order; fails once an event grows past the
    /// limit (the events completed before it in `bytes` are dropped with the stream).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, EventTooLarge> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.overflowed {
                break;
            }
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut out);
                }
                _ => {
                    self.line.push(b);
                    self.check_size();
                }
            }
        }
        if self.overflowed {
            self.line = Vec::new();
            self.data = String::new();
            return Err(EventTooLarge { limit: self.limit });
        }
        Ok(out)
    }

    /// Marks the parser overflowed when the event held so far passes the limit.
    fn check_size(&mut self) {
        let held = self.line.len() + self.data.len() + self.event.as_ref().map_or(0, String::len);
        if held > self.limit {
            self.overflowed = true;
        }
    }

    /// Whether bytes of an unfinished event are pending (the stream stopped mid-event).
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.has_data
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let mut raw = std::mem::take(&mut self.line);
        if !self.started {
            self.started = true;
            if raw.starts_with(&[0xEF, 0xBB, 0xBF]) {
                raw.drain(..3);
            }
        }
        if raw.is_empty() {
            self.dispatch(out);
            return;
        }
        let line = String::from_utf8_lossy(&raw);
        if line.starts_with(':') {
            return; // comment / keep-alive
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&line[..], ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                self.check_size();
            }
            "event" => {
                self.event = Some(value.to_string());
                self.check_size();
            }
            _ => {} // `id`, `retry` and unknown fields do not matter here
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        out.push(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(s: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: s.to_string(),
        }
    }

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        chunks.iter().flat_map(|c| p.feed(c).unwrap()).collect()
    }

    #[test]
    fn table_of_streams() {
        let cases: &[(&str, Vec<SseEvent>)] = &[
            ("data: a\n\n", vec![data("a")]),
            ("data:a\n\n", vec![data("a")]),
            ("data:  two spaces\n\n", vec![data(" two spaces")]),
            ("data: a\r\n\r\ndata: b\r\n\r\n", vec![data("a"), data("b")]),
            ("data: a\r\rdata: b\r\r", vec![data("a"), data("b")]),
            ("data: line1\ndata: line2\n\n", vec![data("line1\nline2")]),
            (": keep-alive\n\ndata: x\n\n", vec![data("x")]),
            (
                "event: error\ndata: {}\n\n",
                vec![SseEvent {
                    event: Some("error".into()),
                    data: "{}".into(),
                }],
            ),
            ("id: 7\nretry: 10\ndata: y\n\n", vec![data("y")]),
            ("data\n\n", vec![data("")]),
            ("\u{feff}data: bom\n\n", vec![data("bom")]),
            ("data: [DONE]\n\n", vec![data("[DONE]")]),
            ("event: ping\n\n", vec![]),
            ("data: unterminated", vec![]),
            ("data: 你好\n\n", vec![data("你好")]),
        ];
        for (input, expected) in cases {
            assert_eq!(&parse_all(&[input.as_bytes()]), expected, "input {input:?}");
        }
    }

    #[test]
    fn crlf_split_across_chunks_is_one_break() {
        let events = parse_all(&[b"data: a\r", b"\n\r", b"\ndata: b\n\n"]);
        assert_eq!(events, vec![data("a"), data("b")]);
    }

    #[test]
    fn partial_event_is_reported() {
        let mut p = SseParser::new();
        assert!(p.feed(b"data: {\"a\":").unwrap().is_empty());
        assert!(p.has_partial());
        assert_eq!(p.feed(b"1}\n\n").unwrap(), vec![data("{\"a\":1}")]);
        assert!(!p.has_partial());
    }

    const SAMPLE: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"你好\"}}]}\r\n\r\n: ping\n\nevent: message\ndata: a\ndata: b\n\ndata: [DONE]\n\n";

    proptest! {
        #[test]
        fn any_split_gives_the_same_events(cuts in proptest::collection::vec(0usize..SAMPLE.len(), 0..12)) {
            let bytes = SAMPLE.as_bytes();
            let whole = parse_all(&[bytes]);
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for c in cuts {
                chunks.push(&bytes[start..c.max(start)]);
                start = c.max(start);
            }
            chunks.push(&bytes[start..]);
            prop_assert_eq!(parse_all(&chunks), whole);
        }

        #[test]
        fn arbitrary_data_round_trips(lines in proptest::collection::vec("[^\r\n]{0,20}", 1..5), sep in prop_oneof!["\n", "\r\n", "\r"]) {
            let mut text = String::new();
            for l in &lines {
                text.push_str(&format!("data: {l}{sep}"));
            }
            text.push_str(&sep);
            let expected = lines.join("\n");
            let mut p = SseParser::new();
            let events: Vec<_> = text.as_bytes().iter().flat_map(|b| p.feed(std::slice::from_ref(b)).unwrap()).collect();
            prop_assert_eq!(events, vec![data(&expected)]);
        }
    }
}
