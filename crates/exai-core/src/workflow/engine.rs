//! One workflow call: validate, replay the investigation under `continuation_id`, record the step, then either
//! answer at once with guidance (no model call) or end the run, consulting the expert model unless told not to.

use super::hooks::{Hooks, NoHooks};
use super::input::{Confidence, Input};
use super::output::{Output, Status, StepFindings};
use super::state::{Investigation, StepRecord};
use super::{Definition, expert, guidance};
use crate::conversation::{self, now_ms};
use crate::error::ToolError;
use crate::files::FilePolicy;
use crate::provider::Role;
use crate::store::Turn;
use crate::tools::ToolContext;
use crate::tools::model_call;

/// Runs one step of `def`'s workflow.
pub async fn run(def: &Definition, ctx: ToolContext, input: Input) -> Result<Output, ToolError> {
    run_with(def, ctx, input, &NoHooks).await
}

/// Runs one step of `def`'s workflow with the tool's `hooks`.
pub async fn run_with(
    def: &Definition,
    ctx: ToolContext,
    input: Input,
    hooks: &impl Hooks,
) -> Result<Output, ToolError> {
    let app = ctx.app.clone();
    let invalid = |message: String| ToolError::InvalidArguments {
        tool: def.name.to_owned(),
        message,
    };
    input.check_shape().map_err(invalid)?;
    // Resolve the expert model now, so a bad name or temperature is reported at the first step, not the last.
    let model = model_call::resolve(&app, input.model.as_deref(), true, def.name)?;
    if let Some(t) = input.temperature
        && !(model.temperature.0..=model.temperature.1).contains(&t)
    {
        return Err(invalid(format!(
            "temperature {t} is outside {}'s range {}..={}",
            model.name, model.temperature.0, model.temperature.1
        )));
    }
    let thread = conversation::open(&app, def.name, input.continuation_id.as_deref()).await?;
    let mut inv = Investigation::replay(def.name, &thread.turns);
    input.check_sequence(def.name, &inv).map_err(invalid)?;
    hooks.check_steps(&input, &inv).map_err(invalid)?;
    let policy = FilePolicy::new(&app.config.files);
    for (_, read) in policy.read_texts(def.name, input.relevant_files.clone()).await? {
        read?;
    }
    // The images of the whole run go to the expert together: their count and bytes are checked as a whole now.
    let mut after = inv.clone();
    after.apply(StepRecord::new(def.name, &input));
    crate::files::images::check(def.name, &after.images(), &policy).await?;
    hooks.check(&ctx, &input).await?;

    let mut record = StepRecord::new(def.name, &input);
    hooks.annotate(&mut record);
    let dropped = inv.apply(record.clone());
    conversation::record(&app, &thread.id, &[record.to_turn(now_ms())]).await?;

    let mut notes = Vec::new();
    if !dropped.is_empty() {
        let list = dropped.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        notes.push(format!(
            "backtracked: discarded step(s) {list}; the investigation continues from here"
        ));
    }
    let cap = app.config.workflow.max_steps.get();
    let capped = input.next_step_required && (inv.calls >= cap || input.step_number >= cap);
    if capped {
        notes.push(format!(
            "safety cap reached: this {} has taken {} step call(s) (workflow.max_steps / EXAI_WORKFLOW_MAX_STEPS = \
             {cap}), so it ends here; review the findings below, and start a new run at step_number 1 if more is \
             needed",
            def.subject,
            inv.calls.max(input.step_number)
        ));
    }
    let certain = input.confidence == Some(Confidence::Certain);
    let mut out = Output {
        tool: def.name.to_owned(),
        status: Status::InProgress,
        step_number: input.step_number,
        total_steps: input.total_steps,
        next_step_required: input.next_step_required,
        steps_recorded: inv.steps.len(),
        confidence: inv.confidence(),
        hypothesis: inv.hypothesis().map(str::to_owned),
        findings: Vec::new(),
        issues_by_severity: inv.issues(),
        files_checked: inv.files_checked().len(),
        relevant_files: inv.relevant_files(),
        branches: inv.branches(),
        guidance: None,
        expert_analysis: None,
        expert_skipped: None,
        files_sent: Vec::new(),
        files_omitted: Vec::new(),
        next_actions: Vec::new(),
        notes,
        continuation_id: thread.id.clone(),
    };
    if input.next_step_required && !certain && !capped {
        out.guidance = Some(guidance::next(def, &inv, &input, &thread.id));
        return Ok(out);
    }

    out.status = if capped {
        Status::StepCapReached
    } else {
        Status::Complete
    };
    out.next_step_required = false;
    out.findings = inv
        .steps
        .iter()
        .map(|s| StepFindings {
            step_number: s.step_number,
            step: s.step.clone(),
            findings: s.findings.clone(),
            branch_id: s.branch_id.clone(),
        })
        .collect();
    out.next_actions = def.next_actions.iter().map(|a| (*a).to_owned()).collect();
    match expert::skip_reason(&input) {
        Some(why) => out.expert_skipped = Some(why),
        None => {
            let (answer, sent) = expert::consult(def, &ctx, &model, &inv, &thread, &input, hooks).await?;
            conversation::record(
                &app,
                &thread.id,
                &[Turn {
                    role: Role::Assistant,
                    content: answer.content.clone(),
                    files: Vec::new(),
                    tool: def.name.to_owned(),
                    provider: Some(answer.provider.clone()),
                    model: Some(answer.model.clone()),
                    created_at_ms: now_ms(),
                }],
            )
            .await?;
            out.files_sent = sent.files_sent;
            out.files_omitted = sent.files_omitted;
            out.notes.extend(sent.notes);
            out.next_actions.insert(
                0,
                "Weigh the expert analysis against your own evidence; verify its claims in the code before acting."
                    .to_owned(),
            );
            out.expert_analysis = Some(answer);
        }
    }
    Ok(out)
}
