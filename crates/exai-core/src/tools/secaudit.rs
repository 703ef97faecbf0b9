//! `secaudit`: a security audit, OWASP-oriented, step by step, with severity-graded vulnerabilities; at the end
//! an expert model reviews the findings and the relevant files. A [`Definition`] on the shared workflow engine.
//!
//! [`Definition`]: crate::workflow::Definition

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::workflow::{self, Definition, Input, Output};

pub struct SecAudit;

const DEF: Definition = Definition {
    name: "secaudit",
    subject: "security audit",
    first_step: "map the attack surface: entry points, trust boundaries, authentication and authorisation, data stores, secrets, dependencies.",
    next_step: "check the OWASP Top 10 areas in the relevant code (injection, broken access control, cryptographic failures, insecure design, misconfiguration, vulnerable components, authentication, integrity, logging, SSRF); report each vulnerability in issues_found with a severity.",
    wants_hypothesis: false,
    expert_role: "You are an application-security expert auditing code against the OWASP Top 10 with another engineer.",
    expert_task: "Audit the code: confirm or reject each reported vulnerability, add those that were missed, and grade every one critical, high, medium or low with its location, how it could be exploited, and a concrete remediation. Note the controls that are done well.",
    next_actions: &[
        "Fix critical and high vulnerabilities first; add a test that proves each fix.",
        "Report the audit grouped by severity and OWASP category, with locations and remediations.",
    ],
};

impl TypedTool for SecAudit {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "secaudit";
    const TITLE: &'static str = "Security audit (OWASP)";
    const DESCRIPTION: &'static str = "Security audit, OWASP Top 10-oriented (injection, access control, secrets, crypto, dependencies), step by step with \
severity-graded vulnerabilities; an expert model reviews the findings at the end. Use for security, codereview for general \
quality. Call once per step; pass continuation_id.";
    const TIER: Tier = Tier::Workflow;
    const PROFILE: Profile = Profile::Full;
    const HINTS: Hints = workflow::HINTS;

    async fn call(ctx: ToolContext, input: Input) -> Result<Output, ToolError> {
        workflow::run(&DEF, ctx, input).await
    }

    fn text(o: &Output) -> String {
        workflow::render(o)
    }
}
