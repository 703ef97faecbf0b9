//! The last line of the git hardening: read a repository's effective configuration (`git config --list`, which runs
//! nothing) and refuse one that still names a program the diff could run, naming each key.

/// One key that names a program, and the scope that set it (`local`, `worktree`, `command`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramKey {
    pub key: String,
    pub scope: String,
}

/// The keys of `listing` (the output of `git config --list -z --show-scope`) whose effective value (the last one
/// given, as git reads it) names a program that `git diff`, `git ls-files` or `git rev-parse` could run, after the
/// overrides of [`super::command::OVERRIDES`].
///
/// Refused: `core.fsmonitor` other than false, `core.hooksPath` other than `/dev/null`, `diff.external`,
/// `diff.<driver>.textconv` and `.command`, `filter.<driver>.clean`, `.smudge` and `.process`. Keys that name
/// programs git only runs for other commands (`core.sshCommand`, `credential.helper`, `core.editor`,
/// `merge.<driver>.driver`, `gpg.program`, ...) are left alone: no transport is allowed, nothing is edited, merged
/// or signed, and refusing them would turn away ordinary repositories for no gain.
pub fn program_keys(listing: &[u8]) -> Vec<ProgramKey> {
    // Entries are `scope NUL key LF value NUL` (a key with no value has no LF).
    let mut effective: Vec<(String, Option<String>, String)> = Vec::new();
    let mut fields = listing.split(|&b| b == 0);
    while let (Some(scope), Some(entry)) = (fields.next(), fields.next()) {
        let entry = String::from_utf8_lossy(entry);
        let (key, value) = match entry.split_once('\n') {
            Some((key, value)) => (key, Some(value.to_owned())),
            None => (&*entry, None),
        };
        let scope = String::from_utf8_lossy(scope).into_owned();
        effective.retain(|(k, _, _)| !same_key(k, key));
        effective.push((key.to_owned(), value, scope));
    }
    effective
        .into_iter()
        .filter(|(key, value, _)| names_program(key, value.as_deref()))
        .map(|(key, _, scope)| ProgramKey { key, scope })
        .collect()
}

/// Section and variable names are case-insensitive, a subsection is not.
fn same_key(a: &str, b: &str) -> bool {
    let ((s1, sub1, v1), (s2, sub2, v2)) = (split(a), split(b));
    s1.eq_ignore_ascii_case(s2) && sub1 == sub2 && v1.eq_ignore_ascii_case(v2)
}

/// `section[.subsection].variable`.
fn split(key: &str) -> (&str, Option<&str>, &str) {
    let (section, rest) = key.split_once('.').unwrap_or((key, ""));
    match rest.rsplit_once('.') {
        Some((sub, var)) => (section, Some(sub), var),
        None => (section, None, rest),
    }
}

/// Whether `key = value` makes git run a program; `None` is a key given without `=` (true, for a boolean; git
/// refuses it for a command).
fn names_program(key: &str, value: Option<&str>) -> bool {
    let (section, sub, var) = split(key);
    let (section, var) = (section.to_ascii_lowercase(), var.to_ascii_lowercase());
    // Any character at all names a program: git runs a value such as U+000B, found through PATH (an empty entry
    // there is the work tree). Only a value git leaves empty runs nothing.
    let set = value.is_some_and(|v| !v.is_empty());
    match (section.as_str(), sub, var.as_str()) {
        // `true` (or no value) starts git's own fsmonitor daemon, which outlives the call: refused too.
        ("core", None, "fsmonitor") => !value.is_some_and(is_false),
        ("core", None, "hookspath") => value != Some("/dev/null"),
        ("diff", None, "external") => set,
        ("diff", Some(_), "textconv" | "command") => set,
        ("filter", Some(_), "clean" | "smudge" | "process") => set,
        _ => false,
    }
}

/// git's spellings of false (an empty value after `=` is false too), as git reads them: untrimmed (a value quoted
/// with a space around `false` is no boolean to git, so a program path).
fn is_false(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "" | "false" | "no" | "off" | "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(entries: &[(&str, &str, Option<&str>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (scope, key, value) in entries {
            out.extend_from_slice(scope.as_bytes());
            out.push(0);
            out.extend_from_slice(key.as_bytes());
            if let Some(v) = value {
                out.push(b'\n');
                out.extend_from_slice(v.as_bytes());
            }
            out.push(0);
        }
        out
    }

    fn keys(entries: &[(&str, &str, Option<&str>)]) -> Vec<String> {
        program_keys(&listing(entries))
            .into_iter()
            .map(|k| format!("{}@{}", k.key, k.scope))
            .collect()
    }

    #[test]
    fn filters_and_diff_drivers_are_refused_by_name_and_scope() {
        let found = keys(&[
            ("local", "core.bare", Some("false")),
            ("local", "filter.Evil.clean", Some("touch /tmp/x; cat")),
            ("local", "filter.lfs.required", Some("true")),
            ("worktree", "diff.evil.textconv", Some("cat")),
            ("local", "diff.tool.command", Some("meld")),
            ("local", "diff.external", Some("sh x")),
            ("local", "filter.p.process", Some("p")),
            ("local", "filter.s.smudge", Some("s")),
        ]);
        assert_eq!(
            found,
            [
                "filter.Evil.clean@local",
                "diff.evil.textconv@worktree",
                "diff.tool.command@local",
                "diff.external@local",
                "filter.p.process@local",
                "filter.s.smudge@local"
            ]
        );
    }

    #[test]
    fn the_last_value_wins_so_the_overrides_neutralise_fsmonitor_and_hooks() {
        let overridden = keys(&[
            ("local", "core.fsmonitor", Some("touch /tmp/x")),
            ("local", "core.hooksPath", Some("evil-hooks")),
            ("command", "core.fsmonitor", Some("false")),
            ("command", "core.hookspath", Some("/dev/null")),
        ]);
        assert!(overridden.is_empty(), "{overridden:?}");
        let still = keys(&[
            ("command", "core.fsmonitor", Some("false")),
            ("local", "CORE.FSMONITOR", Some("touch /tmp/x")),
            ("local", "core.fsmonitor", Some("true")),
        ]);
        assert_eq!(still, ["core.fsmonitor@local"]);
        let valueless = keys(&[("local", "core.fsmonitor", None), ("local", "filter.x.clean", None)]);
        assert_eq!(valueless, ["core.fsmonitor@local"], "a valueless boolean is true");
        // An emptied filter runs nothing; a subsection is case-sensitive, so `filter.A` does not reset `filter.a`.
        assert!(
            keys(&[
                ("local", "filter.a.clean", Some("x")),
                ("local", "filter.a.clean", Some(""))
            ])
            .is_empty()
        );
        assert_eq!(
            keys(&[
                ("local", "filter.a.clean", Some("x")),
                ("local", "filter.A.clean", Some(""))
            ]),
            ["filter.a.clean@local"]
        );
    }

    #[test]
    fn a_value_of_whitespace_still_names_a_program() {
        for odd in ["\u{b}", "\u{c}", "\r", "\u{a0}", "\u{3000}", " "] {
            assert_eq!(
                keys(&[("local", "filter.evil.clean", Some(odd))]),
                ["filter.evil.clean@local"],
                "{odd:?}"
            );
        }
    }

    #[test]
    fn programs_for_other_commands_and_valueless_keys_are_left_alone() {
        let found = keys(&[
            ("local", "core.sshcommand", Some("ssh -i key")),
            ("local", "credential.helper", Some("store")),
            ("local", "merge.ours.driver", Some("true")),
            ("local", "diff.evil.binary", Some("true")),
            ("local", "diff.evil.xfuncname", Some("^fn")),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }
}
