//! `chat`: ask GLM, Kimi or a custom model, with files, images, web search and `continuation_id` memory.
//! The answer streams to the caller as progress while it arrives; the result names provider, model and usage.

use std::time::Instant;

use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::conversation::{self, estimate_tokens};
use crate::error::ToolError;
use crate::files;
use crate::provider::{Message, Part, Role};
use crate::store::Turn;
use crate::tools::model_call::{self, Answer, CallSpec};

pub struct Chat;

const SYSTEM_PROMPT: &str = "You are a senior software engineer consulted by another AI coding assistant. Answer \
the question directly and precisely; when you are unsure, say so. Prefer concrete code, commands and file paths \
over generalities.";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The question or request, with all the context the model needs.
    pub prompt: String,
    /// Model name or alias (see `listmodels`); `auto` or omitted picks a fast default.
    #[serde(default)]
    pub model: Option<String>,
    /// Sampling temperature within the model's range (usually 0-1).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// `minimal`, `low`, `medium`, `high` or `max`; `medium` and above turn on reasoning where supported.
    #[serde(default)]
    pub thinking_mode: Option<ThinkingMode>,
    /// Let the model search the web (models with web search only).
    #[serde(default)]
    pub use_websearch: bool,
    /// Continue an earlier thread: pass the `continuation_id` a previous answer returned.
    #[serde(default)]
    pub continuation_id: Option<String>,
    /// Absolute paths of text files to include (at most 1000).
    #[serde(default)]
    #[schemars(length(max = files::lists::MAX_PATHS))]
    pub files: Vec<String>,
    /// Absolute image paths or data URLs (vision models only; at most 8 by default, EXAI_MAX_IMAGES).
    #[serde(default)]
    #[schemars(length(max = crate::config::MAX_IMAGES_CEILING))]
    pub images: Vec<String>,
    /// Reuse the answer to an identical earlier request (needs temperature 0, no web search).
    #[serde(default)]
    pub cache: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ThinkingMode {
    Minimal,
    Low,
    Medium,
    High,
    Max,
}

impl TypedTool for Chat {
    type Input = Input;
    type Output = Answer;
    const NAME: &'static str = "chat";
    const TITLE: &'static str = "Chat with another model";
    const DESCRIPTION: &'static str = "Ask GLM, Kimi or another configured model. Supports files, images, web \
search and multi-turn threads via continuation_id.";
    const TIER: Tier = Tier::Simple;
    const PROFILE: Profile = Profile::Lean;
    const HINTS: Hints = Hints {
        read_only: true,
        destructive: false,
        idempotent: false,
        open_world: true,
    };

    async fn call(ctx: ToolContext, input: Input) -> Result<Answer, ToolError> {
        let started = Instant::now();
        let invalid = |message: String| ToolError::InvalidArguments {
            tool: "chat".into(),
            message,
        };
        if input.prompt.trim().is_empty() {
            return Err(invalid("`prompt` is empty".into()));
        }
        files::lists::check_len("files", input.files.len(), files::lists::MAX_PATHS).map_err(invalid)?;
        let app = &ctx.app;
        let model = model_call::resolve(app, input.model.as_deref(), false, "chat")?;
        if !input.images.is_empty() && !model.vision {
            return Err(invalid(format!(
                "{} cannot see images; use a vision model such as glm-4.5v",
                model.name
            )));
        }
        if input.use_websearch && !model.web_search {
            return Err(invalid(format!(
                "{} has no web search; use a GLM or Kimi k2 model",
                model.name
            )));
        }
        let thread = conversation::open(app, "chat", input.continuation_id.as_deref()).await?;

        // Budget: 60% of the context for history + files + prompt, the rest for the answer.
        let budget = (model.context_window as usize * 6 / 10).saturating_sub(estimate_tokens(&input.prompt));
        let all_files = files::lists::unique(thread.files().iter().chain(&input.files));
        let policy = files::FilePolicy::new(&app.config.files);
        let (file_text, file_tokens) = files::embed("chat", &all_files, budget / 2, &policy).await?;
        let history = thread.history(budget.saturating_sub(file_tokens));

        let mut user_parts = vec![Part::Text {
            text: format!("{}{file_text}", input.prompt),
        }];
        for url in files::image_urls("chat", &input.images, &policy).await? {
            user_parts.push(Part::ImageUrl { url });
        }
        let mut messages = vec![Message::text(Role::System, SYSTEM_PROMPT)];
        messages.extend(history);
        messages.push(Message {
            role: Role::User,
            parts: user_parts,
        });

        let thinking = input.thinking_mode.is_some_and(|m| m >= ThinkingMode::Medium);
        let spec = CallSpec {
            model: &model,
            messages,
            temperature: input.temperature,
            thinking,
            web_search: input.use_websearch,
            cache: input.cache || app.cache.enabled_for("chat"),
        };
        let mut answer = model_call::run(&ctx, spec).await?;

        let now = conversation::now_ms();
        let turns = [
            Turn {
                role: Role::User,
                content: input.prompt,
                files: input.files,
                tool: "chat".into(),
                provider: None,
                model: None,
                created_at_ms: now,
            },
            Turn {
                role: Role::Assistant,
                content: answer.content.clone(),
                files: Vec::new(),
                tool: "chat".into(),
                provider: Some(answer.provider.clone()),
                model: Some(answer.model.clone()),
                created_at_ms: now,
            },
        ];
        conversation::record(app, &thread.id, &turns).await?;
        answer.continuation_id = Some(thread.id);
        answer.latency_ms = started.elapsed().as_millis() as u64;
        Ok(answer)
    }

    fn text(a: &Answer) -> String {
        model_call::render(a)
    }
}
