//! The catalogue of every tool, one line each, in the order `tools/list` shows them, and the
//! [`Registry`] of tools enabled by `tools.profile`, `tools.enabled` and `tools.disabled`.

use std::sync::Arc;

use super::{
    Tool, Typed, analyze, challenge, chat, codereview, consensus, debug, docgen, fixtures, health, listmodels, planner,
    precommit, refactor, secaudit, status, testgen, thinkdeep, tracer, version,
};
use crate::config::ToolSelection;

/// Every user-facing tool, in listing order. Add a tool here with one line.
fn catalog() -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(Typed::<version::Version>::new()),
        Arc::new(Typed::<status::Status>::new()),
        Arc::new(Typed::<health::Health>::new()),
        Arc::new(Typed::<listmodels::ListModels>::new()),
        Arc::new(Typed::<chat::Chat>::new()),
        Arc::new(Typed::<challenge::Challenge>::new()),
        Arc::new(Typed::<thinkdeep::ThinkDeep>::new()),
        Arc::new(Typed::<debug::Debugger>::new()),
        Arc::new(Typed::<analyze::Analyze>::new()),
        Arc::new(Typed::<codereview::CodeReview>::new()),
        Arc::new(Typed::<planner::Planner>::new()),
        Arc::new(Typed::<precommit::Precommit>::new()),
        Arc::new(Typed::<secaudit::SecAudit>::new()),
        Arc::new(Typed::<testgen::TestGen>::new()),
        Arc::new(Typed::<refactor::Refactor>::new()),
        Arc::new(Typed::<docgen::DocGen>::new()),
        Arc::new(Typed::<tracer::Tracer>::new()),
        Arc::new(Typed::<consensus::Consensus>::new()),
    ]
}

/// Names of every user-facing tool (what `EXAI_ENABLED_TOOLS` / `EXAI_DISABLED_TOOLS` may name).
pub fn names() -> Vec<&'static str> {
    catalog().iter().map(|t| t.spec().name).collect()
}

/// Names of every user-facing tool of one tier, in listing order.
pub fn names_in(tier: super::Tier) -> Vec<&'static str> {
    catalog()
        .iter()
        .map(|t| t.spec())
        .filter(|s| s.tier == tier)
        .map(|s| s.name)
        .collect()
}

/// The tools this server offers, in a stable order.
#[derive(Clone, Default)]
pub struct Registry {
    tools: Vec<Arc<dyn Tool>>,
}

impl Registry {
    /// The tools the selection enables: those in the profile, plus `enabled`, minus `disabled`.
    /// `fixtures` appends the conformance-suite fixture tools (never offered otherwise).
    pub fn select(selection: &ToolSelection, fixtures: bool) -> Self {
        let listed = |list: &[String], name: &str| list.iter().any(|n| n == name);
        let mut tools: Vec<Arc<dyn Tool>> = catalog()
            .into_iter()
            .filter(|t| {
                let s = t.spec();
                (s.profile <= selection.profile || listed(&selection.enabled, s.name))
                    && !listed(&selection.disabled, s.name)
            })
            .collect();
        if fixtures {
            tools.extend(fixtures::catalog());
        }
        Self { tools }
    }

    /// A registry of exactly these tools, in this order: for embedding exai and for tests.
    pub fn from_tools(tools: Vec<Arc<dyn Tool>>) -> Self {
        Self { tools }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.spec().name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Tool>> {
        self.tools.iter()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.tools.iter().map(|t| t.spec().name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::Profile;

    fn selection(profile: Profile, enabled: &[&str], disabled: &[&str]) -> ToolSelection {
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        ToolSelection {
            profile,
            enabled: owned(enabled),
            disabled: owned(disabled),
        }
    }

    #[test]
    fn names_are_unique_snake_case_and_every_tool_has_a_title_and_object_schema() {
        let all = catalog();
        let mut names: Vec<_> = all.iter().map(|t| t.spec().name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for t in &all {
            let s = t.spec();
            assert!(s.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", s.name);
            assert!(!s.title.is_empty() && !s.description.is_empty(), "{}", s.name);
            assert_eq!(
                s.input_schema.get("type").and_then(|v| v.as_str()),
                Some("object"),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn profile_enabled_and_disabled_combine() {
        let lean = Registry::select(&selection(Profile::Lean, &[], &[]), false).names();
        let full = Registry::select(&selection(Profile::Full, &[], &[]), false).names();
        assert!(lean.len() < full.len(), "lean {lean:?} full {full:?}");
        assert_eq!(full, names(), "full offers every tool, in catalogue order");

        let extra = Registry::select(&selection(Profile::Lean, &["version"], &[]), false).names();
        assert!(extra.contains(&"version") && !lean.contains(&"version"));

        let hidden = Registry::select(&selection(Profile::Full, &["status"], &["status"]), false).names();
        assert!(!hidden.contains(&"status"), "disabled wins over enabled");
    }

    #[test]
    fn fixtures_only_with_the_flag() {
        let plain = Registry::select(&selection(Profile::Full, &[], &[]), false);
        assert!(plain.names().iter().all(|n| !n.starts_with("test_")));
        let with = Registry::select(&selection(Profile::Full, &[], &[]), true);
        assert!(with.names().iter().any(|n| n.starts_with("test_")));
    }
}
