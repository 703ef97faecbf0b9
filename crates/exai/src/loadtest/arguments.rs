//! Valid arguments for each tool, so every call does real work: a prompt of the requested size for `chat` and
//! `challenge`, a one-step run that ends in the expert call for workflow tools, and no arguments for tier 1.

use std::sync::LazyLock;

use exai_core::tools::{Tier, registry};
use serde_json::{Value, json};

/// The workflow tools (one call with `next_step_required: false` runs the expert analysis), from the registry.
static WORKFLOWS: LazyLock<Vec<&'static str>> = LazyLock::new(|| registry::names_in(Tier::Workflow));

/// Builds arguments for one call.
#[derive(Debug, Clone)]
pub struct Arguments {
    pub prompt_bytes: usize,
    pub chat_models: Vec<String>,
}

impl Arguments {
    /// Arguments for call number `n` of `tool` (`n` varies the prompt and rotates the chat model).
    pub fn for_call(&self, tool: &str, n: u64) -> Value {
        match tool {
            "chat" => {
                let model = &self.chat_models[n as usize % self.chat_models.len()];
                json!({"prompt": self.prompt(n), "model": model})
            }
            "challenge" => json!({"prompt": self.prompt(n)}),
            t if WORKFLOWS.contains(&t) => {
                let mut args = json!({
                    "step": self.prompt(n),
                    "step_number": 1,
                    "total_steps": 1,
                    "next_step_required": false,
                    "findings": "Load-test findings: the cache grows with request count; evict() is never called.",
                    "confidence": "medium",
                });
                if t == "precommit" {
                    let cwd = std::env::current_dir().unwrap_or_default();
                    args["path"] = json!(cwd.display().to_string());
                }
                if t == "consensus" {
                    args["models"] = json!([
                        {"model": "glm-4.5-flash", "stance": "for"},
                        {"model": "kimi-k2-turbo-preview", "stance": "against"}
                    ]);
                }
                args
            }
            _ => json!({}),
        }
    }

    /// A prompt of about `prompt_bytes` bytes, unique per call.
    fn prompt(&self, n: u64) -> String {
        const FILLER: &str = "Explain the trade-offs of bounded queues versus load shedding in an LLM gateway. ";
        let mut text = format!("[load test call {n}] ");
        while text.len() < self.prompt_bytes {
            text.push_str(FILLER);
        }
        let mut cut = self.prompt_bytes.max(16).min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::Arguments;

    #[test]
    fn prompts_have_the_requested_size_and_models_rotate() {
        let args = Arguments {
            prompt_bytes: 1000,
            chat_models: vec!["a".into(), "b".into()],
        };
        let first = args.for_call("chat", 0);
        assert_eq!(first["prompt"].as_str().unwrap().len(), 1000);
        assert_eq!(first["model"], "a");
        assert_eq!(args.for_call("chat", 1)["model"], "b");
        assert_eq!(args.for_call("debug", 3)["next_step_required"], false);
        assert_eq!(args.for_call("version", 3), serde_json::json!({}));
    }
}
