//! The end of a run: the consolidated findings plus the relevant files' current contents (deduplicated, the
//! largest dropped first until they fit the expert model's budget, every omission reported), sent to the expert.

use std::collections::HashSet;

use super::Definition;
use super::hooks::{Brief, Hooks};
use super::input::{Confidence, Input, ThinkingMode};
use super::state::Investigation;
use crate::conversation::{Thread, estimate_tokens};
use crate::error::ToolError;
use crate::files::{self, FilePolicy};
use crate::models::Model;
use crate::provider::{Message, Part, Role};
use crate::tools::ToolContext;
use crate::tools::model_call::{self, Answer, CallSpec};

/// What the expert was sent, besides the findings.
#[derive(Debug, Default)]
pub struct Sent {
    pub files_sent: Vec<String>,
    pub files_omitted: Vec<String>,
    pub notes: Vec<String>,
}

const COMMON_ROLE: &str = "Another AI coding assistant has investigated step by step and sends you its consolidated \
findings and the relevant files. Verify its claims against the code; say plainly where it is wrong or where \
evidence is missing. Be concrete: files, lines, functions, commands.";

/// The investigation as one text: the steps, the hypothesis, issues by severity, context and files checked.
pub fn consolidated(def: &Definition, inv: &Investigation) -> String {
    let mut out = format!("# Consolidated {} ({} step(s))\n", def.subject, inv.steps.len());
    let branches = inv.branches();
    if branches.is_empty() {
        for s in &inv.steps {
            out.push_str(&format!(
                "\n## Step {}: {}\nFindings: {}\n",
                s.step_number, s.step, s.findings
            ));
        }
    } else {
        out.push_str(&format!(
            "The steps form a main line and {} alternative branch(es), each listed separately below; compare them.\n",
            branches.len() - 1
        ));
        for b in &branches {
            let steps = b.steps.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
            match b.branch_from_step {
                None => out.push_str(&format!("\n## Main line (steps {steps})\n")),
                Some(from) => {
                    let on = inv
                        .step(from)
                        .and_then(|s| s.branch_id.as_deref())
                        .map_or(String::new(), |id| format!(" on branch `{id}`"));
                    out.push_str(&format!(
                        "\n## Branch `{}` (from step {from}{on}; steps {steps})\n",
                        b.branch_id
                    ));
                }
            }
            for s in inv.steps.iter().filter(|s| b.steps.contains(&s.step_number)) {
                out.push_str(&format!(
                    "\n### Step {}: {}\nFindings: {}\n",
                    s.step_number, s.step, s.findings
                ));
            }
        }
    }
    if let Some(h) = inv.hypothesis() {
        out.push_str(&format!("\n## Current hypothesis\n{h}\n"));
    }
    if let Some(c) = inv.confidence() {
        out.push_str(&format!(
            "Confidence: {}\n",
            serde_json::to_value(c).unwrap_or_default().as_str().unwrap_or("")
        ));
    }
    let issues = inv.issues();
    if !issues.is_empty() {
        out.push_str("\n## Issues found\n");
        for i in issues {
            let sev = serde_json::to_value(i.severity).unwrap_or_default();
            let at = i.location.map_or(String::new(), |l| format!(" ({l})"));
            out.push_str(&format!("- [{}] {}{at}\n", sev.as_str().unwrap_or(""), i.description));
        }
    }
    for (title, items) in [
        ("Relevant context", inv.relevant_context()),
        ("Files checked", inv.files_checked()),
    ] {
        if !items.is_empty() {
            out.push_str(&format!("\n## {title}\n"));
            for i in items {
                out.push_str(&format!("- {i}\n"));
            }
        }
    }
    out
}

/// The relevant files' text within `budget` tokens: unreadable files and, largest first, files that do not fit
/// are left out and reported. Sizes are taken first (nothing read), so only files that may fit are read: a long
/// list of large files costs what the budget holds, not their sum.
async fn gather(tool: &str, paths: &[String], budget: usize, policy: &FilePolicy, sent: &mut Sent) -> String {
    let sized = match policy.sizes(tool, paths.to_vec()).await {
        Ok(sized) => sized,
        Err(e) => {
            sent.files_omitted.extend(paths.iter().map(|p| format!("{p}: {e}")));
            Vec::new()
        }
    };
    let mut seen = HashSet::new();
    let mut candidates: Vec<(String, usize)> = Vec::new();
    for (path, outcome) in sized {
        match outcome {
            Ok((id, _)) if !seen.insert(id) => {}
            Ok((_, size)) => candidates.push((path, usize::try_from(size).unwrap_or(usize::MAX))),
            Err(e) => sent.files_omitted.push(format!("{path}: {e}")),
        }
    }
    let candidates = fit(candidates, |(_, size)| *size, budget, sent);
    let wanted: Vec<String> = candidates.into_iter().map(|(path, _)| path).collect();
    let outcomes = match policy.read_texts(tool, wanted.clone()).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            sent.files_omitted.extend(wanted.iter().map(|p| format!("{p}: {e}")));
            Vec::new()
        }
    };
    let mut read: Vec<(String, String)> = Vec::new();
    let mut seen = HashSet::new();
    for (path, outcome) in outcomes {
        match outcome {
            Ok((id, _)) if !seen.insert(id) => {}
            Ok((_, text)) => read.push((path, text)),
            Err(e) => sent.files_omitted.push(format!("{path}: {e}")),
        }
    }
    // Files may have grown since their sizes were taken: fit what was read again.
    let read = fit(read, |(_, text)| text.len(), budget, sent);
    let mut out = String::new();
    for (path, text) in &read {
        out.push_str(&files::block(path, text));
        sent.files_sent.push(path.clone());
    }
    out
}

/// `items` (a path and what `bytes` measures) within `budget` tokens: the largest left out first (the later of two
/// the same size first), each reported; the rest in their order. One sort, not a scan per file left out.
fn fit<T>(
    items: Vec<(String, T)>,
    bytes: impl Fn(&(String, T)) -> usize,
    budget: usize,
    sent: &mut Sent,
) -> Vec<(String, T)> {
    let tokens = |item: &(String, T)| bytes(item).div_ceil(4);
    let mut total: usize = items.iter().map(tokens).sum();
    if total <= budget {
        return items;
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| bytes(&items[b]).cmp(&bytes(&items[a])).then(b.cmp(&a)));
    let mut dropped = vec![false; items.len()];
    for i in order {
        if total <= budget {
            break;
        }
        let cost = tokens(&items[i]);
        total -= cost;
        dropped[i] = true;
        sent.files_omitted.push(format!(
            "{}: about {cost} tokens, left out (largest first) to fit the expert's {budget}-token file budget",
            items[i].0
        ));
    }
    items
        .into_iter()
        .zip(dropped)
        .filter_map(|(item, dropped)| (!dropped).then_some(item))
        .collect()
}

/// Asks the expert model about the whole investigation; its answer streams to the caller as progress.
pub async fn consult(
    def: &Definition,
    ctx: &ToolContext,
    model: &Model,
    inv: &Investigation,
    thread: &Thread,
    input: &Input,
    hooks: &impl Hooks,
) -> Result<(Answer, Sent), ToolError> {
    // Every model call of the step (a consultation's, then the expert's) reports through one increasing sequence.
    let ctx = &ToolContext {
        progress: ctx.progress.sequenced(),
        ..ctx.clone()
    };
    let app = &ctx.app;
    let mut sent = Sent::default();
    let findings = consolidated(def, inv);
    let task = format!("\n\n# Your task\n{}", def.expert_task);
    let system = format!("{}\n\n{COMMON_ROLE}", def.expert_role);
    let material = hooks.material(ctx).await?.unwrap_or_default();
    sent.notes.extend(material.notes);
    // 60% of the context for the request, the rest for the answer; files get what the findings leave.
    let request = model.context_window as usize * 6 / 10;
    let fixed = estimate_tokens(&findings) + estimate_tokens(&task) + estimate_tokens(&system);
    let cost = estimate_tokens(&material.text);
    if cost > 0 && fixed + cost > request {
        return Err(ToolError::InvalidArguments {
            tool: def.name.to_owned(),
            message: format!(
                "the {} is about {cost} tokens; with the findings that is more than the {request} tokens {} takes \
                 in one request; narrow it down or pick a model with a larger context",
                material
                    .text
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("material")
                    .trim_start_matches("# "),
                model.name
            ),
        });
    }
    let budget = request.saturating_sub(fixed + cost);
    let policy = FilePolicy::new(&app.config.files);
    let file_text = gather(def.name, &inv.relevant_files(), budget * 3 / 4, &policy, &mut sent).await;
    // Earlier turns of other tools in the same thread (a chat that led here) as history, within what is left.
    let others = Thread {
        id: thread.id.clone(),
        turns: thread.turns.iter().filter(|t| t.tool != def.name).cloned().collect(),
    };
    let history = others.history(budget.saturating_sub(estimate_tokens(&file_text)));

    let thinking = input.thinking_mode.is_none_or(|m| m >= ThinkingMode::Medium);
    let brief = format!(
        "{findings}{}\n# Relevant files{}{file_text}",
        material.text,
        if file_text.is_empty() { "\n(none)\n" } else { "\n" }
    );
    let brief_for = Brief {
        text: &brief,
        thinking,
        web_search: input.use_websearch,
    };
    let review = hooks.consult(ctx, &brief_for).await?.unwrap_or_default();
    sent.notes.extend(review.notes);
    let mut parts = vec![Part::Text {
        text: format!("{brief}{}{task}", review.text),
    }];
    let images = inv.images();
    if !images.is_empty() {
        if model.vision {
            for url in files::image_urls(def.name, &images, &policy).await? {
                parts.push(Part::ImageUrl { url });
            }
        } else {
            sent.notes.push(format!(
                "{} image(s) not sent: {} cannot see images (pick a vision model such as glm-4.5v)",
                images.len(),
                model.name
            ));
        }
    }
    let mut messages = vec![Message::text(Role::System, system)];
    messages.extend(history);
    messages.push(Message {
        role: Role::User,
        parts,
    });

    let answer = model_call::run(
        ctx,
        CallSpec {
            model,
            messages,
            temperature: input.temperature,
            thinking,
            web_search: input.use_websearch,
            cache: ctx.app.cache.enabled_for(def.name),
        },
    )
    .await?;
    Ok((answer, sent))
}

/// Why the expert is not consulted, if it is not.
pub fn skip_reason(input: &Input) -> Option<String> {
    if !input.use_assistant_model {
        Some("use_assistant_model is false".into())
    } else if input.confidence == Some(Confidence::Certain) {
        Some("confidence is certain".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_that_cannot_fit_are_left_out_by_size_without_being_read() {
        let dir = tempfile::tempdir().unwrap();
        let policy = FilePolicy {
            roots: vec![dir.path().to_path_buf()],
            pinned: Vec::new(),
            max_file_bytes: 1 << 20,
            max_images: 1,
            max_image_total_bytes: 1,
        };
        // A large file that would be refused as binary if it were read, two that fit, one named twice.
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        std::fs::write(dir.path().join("big.bin"), vec![0u8; 4_000]).unwrap();
        std::fs::write(dir.path().join("a.txt"), "a".repeat(40)).unwrap();
        std::fs::write(dir.path().join("b.txt"), "b".repeat(80)).unwrap();
        let paths = [path("a.txt"), path("big.bin"), path("b.txt"), path("a.txt")];
        let mut sent = Sent::default();
        let text = gather("debug", &paths, 100, &policy, &mut sent).await;
        assert_eq!(sent.files_sent, [path("a.txt"), path("b.txt")]);
        assert!(text.contains(&"a".repeat(40)) && text.contains(&"b".repeat(80)));
        assert_eq!(sent.files_omitted.len(), 1, "{:?}", sent.files_omitted);
        assert!(
            sent.files_omitted[0].contains("big.bin: about 1000 tokens, left out (largest first)"),
            "{:?}",
            sent.files_omitted
        );
        // Over budget among files that are all read: the largest goes, the later of two the same size first.
        std::fs::write(dir.path().join("c.txt"), "c".repeat(80)).unwrap();
        let mut sent = Sent::default();
        gather(
            "debug",
            &[path("a.txt"), path("b.txt"), path("c.txt")],
            40,
            &policy,
            &mut sent,
        )
        .await;
        assert_eq!(sent.files_sent, [path("a.txt"), path("b.txt")]);
    }
}
