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
/// are left out and reported.
async fn gather(tool: &str, paths: &[String], budget: usize, policy: &FilePolicy, sent: &mut Sent) -> String {
    let mut read: Vec<(String, String)> = Vec::new();
    let mut seen = HashSet::new();
    let outcomes = match policy.read_texts(tool, paths.to_vec()).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            sent.files_omitted.extend(paths.iter().map(|p| format!("{p}: {e}")));
            Vec::new()
        }
    };
    for (path, outcome) in outcomes {
        match outcome {
            Ok((id, _)) if !seen.insert(id) => {}
            Ok((_, text)) => read.push((path, text)),
            Err(e) => sent.files_omitted.push(format!("{path}: {e}")),
        }
    }
    let mut total: usize = read.iter().map(|(_, t)| estimate_tokens(t)).sum();
    while total > budget {
        let (i, _) = read
            .iter()
            .enumerate()
            .max_by_key(|(_, (_, t))| t.len())
            .expect("over budget means at least one file");
        let (path, text) = read.remove(i);
        let cost = estimate_tokens(&text);
        total -= cost;
        sent.files_omitted.push(format!(
            "{path}: about {cost} tokens, left out (largest first) to fit the expert's {budget}-token file budget"
        ));
    }
    let mut out = String::new();
    for (path, text) in &read {
        out.push_str(&files::block(path, text));
        sent.files_sent.push(path.clone());
    }
    out
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
