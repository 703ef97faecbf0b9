//! What the decoders' fuzz targets share (tests only): the seed corpus under `fuzz/corpus/<target>/`, the number of
//! cases per run, and generators of JSON text with the shapes parsers get wrong.

use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::Config;

/// `cases` per target in `cargo test` (a few seconds each); `PROPTEST_CASES` overrides it for deeper runs.
pub fn config(cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

/// Every file of `fuzz/corpus/<target>/` (seeds and the regressions fuzzing found), sorted by name.
pub fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

/// Numbers as clients write them, including the ones no Rust number type holds.
pub fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        prop::sample::select(vec![
            "0",
            "-0",
            "1.0",
            "1e2",
            "2.5",
            "1e400",
            "-1e400",
            "1e-400",
            "9007199254740993",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551616",
            "123456789012345678901234567890123456789",
            "01",
            "1.",
            ".5",
            "+1",
            "NaN",
        ])
        .prop_map(str::to_owned),
    ]
}

/// String literals: any text correctly escaped, and escapes a parser must refuse or handle (lone surrogates, NUL).
pub fn string_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        1 => prop::sample::select(vec![
            r#""""#,
            r#""\u0000""#,
            r#""\ud800""#,
            r#""\udc00\ud800""#,
            r#""\ud83d\ude00""#,
            r#""\x""#,
            r#""\u12""#,
            "\"tab\there\"",
            "\"\u{feff}\"",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Object keys, few enough that duplicates are common.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["id", "a", "name", "arguments", "params", "method", "op", "request_id", ""])
            .prop_map(|k| format!("\"{k}\"")),
        1 => string_lit(),
    ]
}

/// Any JSON value as text, nesting up to `depth` levels.
pub fn json_text(depth: u32) -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(vec!["null", "true", "false"]).prop_map(str::to_owned),
        number(),
        string_lit(),
    ];
    leaf.prop_recursive(depth, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((key(), inner), 0..4).prop_map(|fields| object(&fields)),
        ]
    })
}

/// `{k:v,...}` from already-rendered keys and values (duplicates kept, as sent).
pub fn object(fields: &[(String, String)]) -> String {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{{{}}}", body.join(","))
}

/// `levels` nested arrays around `1`.
pub fn nested(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

/// One change to a message's bytes.
#[derive(Debug, Clone)]
pub enum Mutation {
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, u8),
    Replace(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Bom,
    Whitespace,
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes that matter to JSON and UTF-8: structure, quotes, escapes, continuation and invalid lead bytes.
    let byte = prop_oneof![
        prop::sample::select(b"{}[]\":,\\ \n0-eE.tfn\x00\x80\xbf\xc0\xed\xf5\xff".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), byte.clone()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<prop::sample::Index>(), byte).prop_map(|(i, b)| Mutation::Replace(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Delete),
        Just(Mutation::Bom),
        Just(Mutation::Whitespace),
    ]
}

/// Applies `mutations` in order.
pub fn mutate(text: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len();
        match m {
            Mutation::Truncate(i) => bytes.truncate(i.index(len + 1)),
            Mutation::Insert(i, b) => bytes.insert(i.index(len + 1), *b),
            Mutation::Replace(i, b) if len > 0 => bytes[i.index(len)] = *b,
            Mutation::Delete(i) if len > 0 => {
                bytes.remove(i.index(len));
            }
            Mutation::Replace(..) | Mutation::Delete(_) => {}
            Mutation::Bom => bytes.splice(0..0, *b"\xEF\xBB\xBF").for_each(drop),
            Mutation::Whitespace => {
                bytes.splice(0..0, *b" \t\r\n").for_each(drop);
                bytes.extend_from_slice(b"\r\n ");
            }
        }
    }
    bytes
}
