//! Fuzz target for MCP JSON-RPC over the WebSocket ([`decode_frame`], text and binary frames): the JSON-RPC
//! properties of `inbound`'s target hold, and whitespace around a message never changes its answer.

use proptest::prelude::*;

use super::*;
use crate::fuzz_support::{self, config, mutate, mutation};
use crate::inbound::fuzz::{check, message};

/// The decoding of a frame, comparable across runs.
fn outcome(bytes: &[u8]) -> String {
    match decode_frame(bytes) {
        Decoded::Message(message) => format!("message {}", serde_json::to_string(&message).unwrap()),
        Decoded::Ignore(why) => format!("ignored: {why}"),
        Decoded::Reject(rejection) => format!("rejected {}", rejection.to_json()),
    }
}

fn whitespace() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(b" \t\r\n".to_vec()), 0..4)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn whitespace_around_a_frame_changes_nothing(
        text in message(),
        mutations in prop::collection::vec(mutation(), 0..3),
        (before, after) in (whitespace(), whitespace()),
    ) {
        let bytes = mutate(&text, &mutations);
        check(bytes.trim_ascii())?;
        let wrapped = [before.as_slice(), &bytes, &after].concat();
        prop_assert_eq!(outcome(&wrapped), outcome(bytes.trim_ascii()));
    }

    #[test]
    fn binary_frames_of_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..160)) {
        check(bytes.trim_ascii())?;
        let _ = outcome(&bytes);
    }
}

#[test]
fn corpus_replays() {
    for target in ["jsonrpc", "ws_mcp"] {
        for (path, bytes) in fuzz_support::corpus(target) {
            if let Err(e) = check(bytes.trim_ascii()) {
                panic!("{}: {e}", path.display());
            }
            assert_eq!(outcome(&bytes), outcome(bytes.trim_ascii()), "{}", path.display());
        }
    }
}
