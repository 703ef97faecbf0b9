//! Fuzz target for [`Config::load`]: environment maps and `exai.toml` files with values of every shape (huge and
//! negative numbers, floats, odd URLs and lists, any text, deep TOML nesting), plus the seed corpus of TOML files.
//! Loading never panics; every problem names its key; secrets never appear in the error.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use super::validate::MAX_DURATION;
use super::*;

/// `cases` in `cargo test`; `PROPTEST_CASES` overrides it for deeper runs.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

/// Whether a problem's `setting` names where it comes from: a key (variable or path), a custom table, a flag or
/// the file itself.
fn names_a_key(setting: &str, file: &Path) -> bool {
    KEYS.iter().any(|k| setting.contains(k.env) || setting.contains(k.path))
        || setting.starts_with("exai.toml providers.custom.")
        || setting.starts_with("exai.toml [providers.custom.")
        || setting.starts_with("flag for `")
        || setting.starts_with(&file.display().to_string())
}

/// Loads and checks what must hold for any input.
fn check(env: &MapEnv, toml: Option<&[u8]>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exai.toml");
    if let Some(text) = toml {
        std::fs::write(&file, text).unwrap();
    }
    let loaded = Config::load(env, toml.map(|_| file.as_path()), &[]);
    match loaded {
        Ok(config) => {
            prop_assert!(config.ws.idle_timeout <= MAX_DURATION && config.conversations.ttl <= MAX_DURATION);
        }
        Err(ConfigError(problems)) => {
            prop_assert!(!problems.is_empty());
            for p in &problems {
                prop_assert!(names_a_key(&p.setting, &file), "problem names no key: {p}");
                prop_assert!(!p.message.is_empty(), "problem without a message: {p}");
            }
            let shown = ConfigError(problems).to_string();
            for k in KEYS.iter().filter(|k| k.secret) {
                if let Some(secret) = env.var(k.env).filter(|s| s.starts_with("s3cr3t-")) {
                    prop_assert!(!shown.contains(&secret), "{} shown in: {shown}", k.env);
                }
            }
        }
    }
    Ok(())
}

/// Values as users (and typos) write them.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "", " ", "0", "1", "-1", "5", " 7 ", "65535", "65536", "1024", "1023", "4294967295", "4294967296",
            "315360000", "315360001", "315360000000", "315360000001", "18446744073709551615",
            "18446744073709551616", "1e3", "0.5", "1.0", "-0", "NaN", "inf", "-inf", "true", "false", "yes", "off",
            "TRUE", "text", "json", "lean", "full", "open", "closed", "*", "a,,b", ",", "version,chat", "nope",
            "127.0.0.1", "::1", "0.0.0.0", "999.1.1.1", "http://127.0.0.1:1/v1", "https://x", "ftp://x",
            "http://[::1", "http://", "postgres://u:p@h/db", "redis://h", "/abs/dir", "relative/dir", "/a,/b",
            "glm-4.6>kimi-k2", "glm-4.6>", ">", "\u{0}", "\u{feff}1", "１", "٣",
        ])
        .prop_map(str::to_owned),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<String>(),
    ]
}

/// An environment: some of the keys' variables set to any values, and the secrets to recognisable text.
fn env() -> impl Strategy<Value = MapEnv> {
    let set = prop::collection::vec((prop::sample::select(KEYS), value()), 0..12);
    let secret = prop::option::of("[a-zA-Z0-9]{12}").prop_map(|s| s.map(|s| format!("s3cr3t-{s}")));
    (set, secret).prop_map(|(set, secret)| {
        let mut env: std::collections::HashMap<String, String> =
            set.into_iter().map(|(k, v)| (k.env.to_owned(), v)).collect();
        if let Some(secret) = secret {
            for k in KEYS.iter().filter(|k| k.secret) {
                env.insert(k.env.to_owned(), secret.clone());
            }
        }
        MapEnv(env)
    })
}

/// A TOML value of any type, rendered.
fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        value().prop_map(|v| toml::Value::String(v).to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| toml::Value::Float(f).to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("1979-05-27T07:32:00Z".to_owned()),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|v| {
                let fields: Vec<String> = v.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", fields.join(", "))
            }),
        ]
    })
}

/// `exai.toml` files: known keys (as `[section]` tables or dotted keys), custom provider tables and unknown keys.
fn toml_file() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        4 => (prop::sample::select(KEYS), toml_value()).prop_map(|(k, v)| format!("{} = {v}", k.path)),
        1 => ("[a-z]{1,6}", prop::sample::select(vec!["base_url", "models", "api_key_env", "timeout_secs", "x"]), toml_value())
            .prop_map(|(name, field, v)| format!("providers.custom.{name}.{field} = {v}")),
        1 => ("[a-z_.]{1,20}", toml_value()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => "[a-z.]{1,12}".prop_map(|t| format!("[{t}]")),
    ];
    prop::collection::vec(line, 0..10).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_environment(env in env()) {
        check(&env, None)?;
    }

    #[test]
    fn any_file_and_environment(env in env(), file in toml_file()) {
        check(&env, Some(file.as_bytes()))?;
    }

    #[test]
    fn damaged_files(file in toml_file(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = file.into_bytes();
        let at = cut.index(bytes.len() + 1);
        bytes.insert(at, byte);
        check(&MapEnv::default(), Some(&bytes))?;
    }

    /// Every duration key refuses more than ten years, naming its variable (longer ones overflowed clock arithmetic).
    #[test]
    fn durations_past_ten_years_are_refused_by_name(
        key in prop::sample::select(KEYS.iter().filter(|k| k.path.ends_with("_secs") || k.path.ends_with("_ms")).collect::<Vec<_>>()),
        extra in 1u64..u64::MAX / 2,
    ) {
        let limit = if key.path.ends_with("_ms") { MAX_DURATION.as_millis() as u64 } else { MAX_DURATION.as_secs() };
        let text = limit.saturating_add(extra).to_string();
        let env = MapEnv::new([(key.env, text.as_str())]);
        let Err(ConfigError(problems)) = Config::load(&env, None, &[]) else {
            return Err(TestCaseError::fail(format!("{} = {text} accepted", key.env)));
        };
        prop_assert!(problems.iter().any(|p| p.setting.contains(key.env)), "{problems:?}");
        check(&env, None)?;
    }
}

#[test]
fn corpus_replays() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/config");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    assert!(!paths.is_empty(), "corpus {} is empty", dir.display());
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        if let Err(e) = check(&MapEnv::default(), Some(&bytes)) {
            panic!("{}: {e}", path.display());
        }
    }
}
