//! `challenge`: wraps a statement so the calling assistant re-examines it critically instead of agreeing.
//! No model is called: the tool is a prompt transformer, instant and free.

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;

pub struct Challenge;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The statement, claim or proposed change to scrutinise.
    pub prompt: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub status: &'static str,
    pub original_statement: String,
    /// Instructions to follow now, in place of agreeing.
    pub challenge_prompt: String,
}

impl TypedTool for Challenge {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "challenge";
    const TITLE: &'static str = "Challenge a statement";
    const DESCRIPTION: &'static str = "Re-examine a claim critically instead of agreeing by reflex. Returns \
instructions; calls no model.";
    const TIER: Tier = Tier::Tier1;
    const PROFILE: Profile = Profile::Lean;
    const HINTS: Hints = Hints::LOCAL_QUERY;

    async fn call(_ctx: ToolContext, input: Input) -> Result<Output, ToolError> {
        if input.prompt.trim().is_empty() {
            return Err(ToolError::InvalidArguments {
                tool: "challenge".into(),
                message: "`prompt` is empty".into(),
            });
        }
        Ok(Output {
            status: "challenge_accepted",
            challenge_prompt: wrap(&input.prompt),
            original_statement: input.prompt,
        })
    }

    fn text(o: &Output) -> String {
        o.challenge_prompt.clone()
    }
}

/// The instructions that replace agreement.
fn wrap(statement: &str) -> String {
    format!(
        "CRITICAL REASSESSMENT - do not automatically agree:\n\n\"{}\"\n\nCarefully evaluate the statement \
         above. Is it accurate, complete and well-reasoned? Look for errors, gaps, hidden assumptions and \
         counter-examples; check it against the code and facts you have. If you disagree, say so plainly and \
         explain why. If it holds up, say why it holds up. Your answer must be your own reasoned judgement, \
         not deference.",
        statement.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_the_trimmed_statement_in_a_critical_reassessment() {
        let w = wrap("  The cache is always consistent \n");
        assert!(w.starts_with("CRITICAL REASSESSMENT"), "{w}");
        assert!(w.contains("\"The cache is always consistent\""), "{w}");
        assert!(w.contains("do not automatically agree"));
    }
}
