//! Where raw configuration text comes from: built-in defaults, an optional `exai.toml`, then the environment.
//! Environment access goes through [`Env`] so tests never touch the process environment.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::error::Problem;
use super::keys::{KEYS, by_path};

/// Read access to environment variables.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed set of variables, for tests and embedding.
#[derive(Debug, Default, Clone)]
pub struct MapEnv(pub HashMap<String, String>);

impl MapEnv {
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Which layer a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env(&'static str),
    Flag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File => f.write_str("exai.toml"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag => f.write_str("command line"),
        }
    }
}

/// One raw value and where it came from.
#[derive(Debug, Clone)]
pub struct RawValue {
    pub text: String,
    pub source: Source,
}

/// Raw text for every key, after layering defaults, file and environment.
pub type RawSettings = BTreeMap<&'static str, RawValue>;

/// `[providers.custom.<name>]` tables from the file: name -> field -> text.
pub type CustomRaw = BTreeMap<String, BTreeMap<String, String>>;

/// The prefix of custom-endpoint tables in `exai.toml`.
const CUSTOM_PREFIX: &str = "providers.custom.";

/// Layers the three sources; problems in the file (unknown keys, bad TOML) are collected, not fatal.
pub fn layer(env: &dyn Env, file: Option<&Path>, problems: &mut Vec<Problem>) -> (RawSettings, CustomRaw) {
    let mut custom = CustomRaw::new();
    let mut raw: RawSettings = KEYS
        .iter()
        .map(|k| {
            (
                k.path,
                RawValue {
                    text: k.default.to_owned(),
                    source: Source::Default,
                },
            )
        })
        .collect();
    if let Some(path) = file {
        for (key, text) in read_file(path, problems) {
            if let Some((name, field)) = key.strip_prefix(CUSTOM_PREFIX).and_then(|rest| rest.split_once('.')) {
                custom
                    .entry(name.to_owned())
                    .or_default()
                    .insert(field.to_owned(), text);
                continue;
            }
            match by_path(&key) {
                Some(k) => {
                    raw.insert(
                        k.path,
                        RawValue {
                            text,
                            source: Source::File,
                        },
                    );
                }
                None => problems.push(Problem::new(
                    format!("{} key `{key}`", path.display()),
                    "",
                    "unknown key; see `exai config check` or the README for the valid keys",
                )),
            }
        }
    }
    for k in KEYS {
        if let Some(text) = env.var(k.env) {
            raw.insert(
                k.path,
                RawValue {
                    text,
                    source: Source::Env(k.env),
                },
            );
        }
    }
    (raw, custom)
}

/// Flattens a TOML file into `dotted.path -> text`; arrays become comma lists.
fn read_file(path: &Path, problems: &mut Vec<Problem>) -> Vec<(String, String)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(Problem::new(
                path.display().to_string(),
                "",
                format!("cannot read config file: {e}"),
            ));
            return Vec::new();
        }
    };
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            problems.push(Problem::new(
                path.display().to_string(),
                "",
                format!("invalid TOML: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    flatten("", &toml::Value::Table(table), &mut out);
    out
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(table) => {
            for (k, v) in table {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        toml::Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        toml::Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.push((prefix.to_owned(), parts.join(",")));
        }
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_overrides_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exai.toml");
        std::fs::write(
            &file,
            "[http]\nport = 9000\nhost = \"0.0.0.0\"\n[tools]\nenabled = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let env = MapEnv::new([("EXAI_HTTP_PORT", "9100")]);
        let mut problems = Vec::new();
        let (raw, _) = layer(&env, Some(&file), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(raw["http.port"].text, "9100");
        assert_eq!(raw["http.port"].source, Source::Env("EXAI_HTTP_PORT"));
        assert_eq!(raw["http.host"].text, "0.0.0.0");
        assert_eq!(raw["http.host"].source, Source::File);
        assert_eq!(raw["tools.enabled"].text, "a,b");
        assert_eq!(raw["log.format"].source, Source::Default);
    }

    #[test]
    fn unknown_file_keys_and_bad_toml_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exai.toml");
        std::fs::write(&file, "[http]\nprot = 1\n").unwrap();
        let mut problems = Vec::new();
        layer(&MapEnv::default(), Some(&file), &mut problems);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().contains("http.prot"), "{}", problems[0]);

        std::fs::write(&file, "[http\n").unwrap();
        let mut problems = Vec::new();
        layer(&MapEnv::default(), Some(&file), &mut problems);
        assert!(problems[0].to_string().contains("invalid TOML"), "{}", problems[0]);
    }
}
