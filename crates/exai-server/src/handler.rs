//! The one MCP handler behind every transport: advertises exai's protocol versions and tools, and runs
//! `tools/call` with a deadline by tool tier, progress forwarding and cancellation that drops the work.
//! With `--conformance-fixtures` it also delegates resources, prompts, completion and logging to
//! [`crate::conformance`]; otherwise those methods answer "method not found" and only `tools` is advertised
//! (plus the tasks extension, [`crate::tasks`], when a model-backed tool is enabled).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use exai_core::app::App;
use exai_core::error::ToolError;
use exai_core::protocol::SUPPORTED_VERSIONS;
use exai_core::resilience::budget::Budget;
use exai_core::tools::{Progress, ProgressSink, Tier, Tool as ExaiTool, ToolContext};
use futures::FutureExt;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, CompleteRequestMethod,
    CompleteRequestParams, CompleteResult, ConstString, CustomRequest, CustomResult, DiscoverResult, ErrorCode,
    GetPromptRequestMethod, GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult, Implementation,
    ListPromptsRequestMethod, ListPromptsResult, ListResourceTemplatesRequestMethod, ListResourceTemplatesResult,
    ListResourcesRequestMethod, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ProtocolVersion, ReadResourceRequestMethod, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, SetLevelRequestMethod, SubscribeRequestMethod,
    SubscribeRequestParams, Tool, UnsubscribeRequestMethod, UnsubscribeRequestParams, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::task_manager::TaskExit;
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use tokio_util::sync::CancellationToken;

use crate::conformance::{self, Conformance};
use crate::tasks::{self, Tasks};
use crate::{catalog, executions, rescue};

/// How long clients may cache `tools/list`: the list is fixed for the life of the process.
const TOOLS_TTL_MS: u64 = 300_000;

const INSTRUCTIONS: &str = "exai lets you consult other models (GLM, Kimi, OpenAI-compatible endpoints): `chat` asks \
one (pass back `continuation_id` to continue a thread), `challenge` makes you re-examine a claim, `listmodels` shows \
the models and which have keys.";

#[derive(Clone)]
pub struct ExaiHandler {
    app: Arc<App>,
    tools: Arc<[Tool]>,
    /// The conformance-suite fixtures, only with `--conformance-fixtures`.
    fixtures: Option<Arc<Conformance>>,
    /// Tool calls running as tasks (SEP-2663); shared by every handler of one HTTP server.
    tasks: Tasks,
    /// A random id for this handler's session (see `session_key`).
    session: Arc<str>,
}

impl ExaiHandler {
    /// A handler with its own task store (stdio: one client), whose tasks stop when the handler is dropped.
    pub fn new(app: Arc<App>) -> Self {
        Self::with_tasks(app, Tasks::new(CancellationToken::new()))
    }

    /// A handler sharing `tasks` with the other handlers of one server.
    pub(crate) fn with_tasks(app: Arc<App>, tasks: Tasks) -> Self {
        let tools = Self::catalog(&app);
        Self::with_catalog(app, tools, tasks)
    }

    /// The tool definitions a handler of `app` lists: built once per server, because building them (every schema)
    /// costs far more than answering a call, and HTTP makes a handler per session or stateless request.
    pub(crate) fn catalog(app: &App) -> Arc<[Tool]> {
        let mut tools = catalog::definitions(&app.tools);
        if app.conformance_fixtures() {
            tools.extend(conformance::tools());
        }
        tools.into()
    }

    /// A handler listing `tools` (from [`Self::catalog`] of the same app) and sharing `tasks` with the other
    /// handlers of one server (HTTP: one per session or stateless request).
    pub(crate) fn with_catalog(app: Arc<App>, tools: Arc<[Tool]>, tasks: Tasks) -> Self {
        let fixtures = app.conformance_fixtures().then(|| Arc::new(Conformance::default()));
        Self {
            app,
            tools,
            fixtures,
            tasks,
            session: uuid::Uuid::new_v4().to_string().into(),
        }
    }

    /// Whose per-session limit a call counts against: this handler's session (stdio: the connection; HTTP
    /// 2025-era: the `Mcp-Session-Id` session, each of which has its own handler), or for stateless 2026-07-28
    /// requests, which have no session, the client named in the request's `_meta`.
    fn session_key(&self, context: &RequestContext<RoleServer>) -> String {
        match context.meta.client_info() {
            Some(client) if context.peer.peer_info().is_none() => format!("client {}/{}", client.name, client.version),
            _ => format!("session {}", self.session),
        }
    }

    /// Whether any offered tool can run as a task (the fixtures always can).
    fn offers_tasks(&self) -> bool {
        self.fixtures.is_some() || self.app.tools.iter().any(|t| tasks::eligible(t.spec()))
    }

    /// The fixtures, or "method not found" for method `M` on a normal server.
    fn fixtures<M: ConstString>(&self) -> Result<&Conformance, ErrorData> {
        self.fixtures.as_deref().ok_or_else(ErrorData::method_not_found::<M>)
    }

    fn deadline(&self, tier: Tier) -> Duration {
        deadline(&self.app, tier)
    }
}

/// A tool tier's deadline (the call's one budget).
pub(crate) fn deadline(app: &App, tier: Tier) -> Duration {
    let t = &app.config.timeouts;
    match tier {
        Tier::Tier1 => t.tier1,
        Tier::Simple => t.simple_tool,
        Tier::Files => t.files_tool,
        Tier::Workflow => t.workflow_tool,
    }
}

/// The protocol versions as rmcp constants, in exai's (newest-first) order; built once.
static PROTOCOL_VERSIONS: std::sync::LazyLock<Vec<ProtocolVersion>> = std::sync::LazyLock::new(|| {
    SUPPORTED_VERSIONS
        .iter()
        .map(|v| {
            ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .find(|k| k.as_str() == *v)
                .cloned()
                .unwrap_or_else(|| panic!("rmcp does not know protocol version {v}"))
        })
        .collect()
});

/// Forwards tool progress as `notifications/progress` when the caller sent a progress token.
fn progress_sink(context: &RequestContext<RoleServer>) -> ProgressSink {
    let Some(token) = context.meta.get_progress_token() else {
        return ProgressSink::none();
    };
    let peer: Peer<RoleServer> = context.peer.clone();
    ProgressSink::new(move |p: Progress| {
        let mut param = ProgressNotificationParam::new(token.clone(), p.progress);
        param.total = p.total;
        param.message = p.message;
        let peer = peer.clone();
        async move {
            if let Err(e) = peer.notify_progress(param).await {
                tracing::debug!(error = %e, "progress notification not delivered");
            }
        }
        .boxed()
    })
}

impl ServerHandler for ExaiHandler {
    fn get_info(&self) -> ServerConfig {
        let mut info = Implementation::new("exai", exai_core::VERSION);
        info.title = Some("exai: consult GLM, Kimi and other models".into());
        let mut capabilities = match self.fixtures {
            Some(_) => conformance::capabilities(),
            None => ServerCapabilities::builder().enable_tools().build(),
        };
        if self.offers_tasks() {
            tasks::advertise(&mut capabilities);
        }
        ServerConfig::new(capabilities)
            .with_server_info(info)
            .with_instructions(INSTRUCTIONS)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(PROTOCOL_VERSIONS.as_slice())
    }

    async fn discover(&self, _context: RequestContext<RoleServer>) -> Result<DiscoverResult, ErrorData> {
        let versions = PROTOCOL_VERSIONS.clone();
        Ok(match self.fixtures {
            Some(_) => conformance::discover(versions, self.get_info()),
            None => DiscoverResult::from_server_info(versions, self.get_info()),
        })
    }

    #[allow(deprecated)] // logging/setLevel is 2025-only; the fixtures answer -32601 on 2026-07-28
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixtures::<SetLevelRequestMethod>()?.set_level(request, &context)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.fixtures::<CompleteRequestMethod>()?.complete(request)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.fixtures::<ListPromptsRequestMethod>()?.list_prompts()
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.fixtures::<GetPromptRequestMethod>()?.get_prompt(request)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.fixtures::<ListResourcesRequestMethod>()?.list_resources()
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.fixtures::<ListResourceTemplatesRequestMethod>()?
            .list_resource_templates()
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.fixtures::<ReadResourceRequestMethod>()?.read_resource(request)
    }

    #[allow(deprecated)] // resources/subscribe is 2025-only; rmcp answers it with -32601 on 2026-07-28
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixtures::<SubscribeRequestMethod>()?.subscribe(request)
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixtures::<UnsubscribeRequestMethod>()?.unsubscribe(request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec())
            .with_ttl_ms(TOOLS_TTL_MS)
            .with_cache_scope(CacheScope::Public))
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!(
                "Method not found: `{}` is not an MCP method exai serves",
                request.method
            ),
            Some(serde_json::json!({ "method": request.method })),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(fixtures) = &self.fixtures
            && let Some(response) = fixtures.call_tool(&request, &context, &self.tasks).await
        {
            return response;
        }
        let name = request.name.to_string();
        let Some(tool) = self.app.tools.get(&name).cloned() else {
            let err = ToolError::UnknownTool {
                name: name.clone(),
                available: self.app.tools.names().join(", "),
            };
            tracing::info!(tool = %name, "unknown tool");
            return rescue::call_result(Err(err)).map(Into::into);
        };
        let limit = self.deadline(tool.spec().tier);
        let args = request.arguments.unwrap_or_default();
        let session = self.session_key(&context);
        if tasks::eligible(tool.spec()) && tasks::requested(&context) {
            let app = Arc::clone(&self.app);
            let work = move |task, cancel| {
                let run = run_tool(app, tool, args, limit, session, tasks::status_sink(task), cancel);
                run.map(|r| r.map_err(TaskExit::Error)).boxed()
            };
            return Ok(self
                .tasks
                .start(&context, limit, format!("{name}: started"), work)
                .await);
        }
        let progress = progress_sink(&context);
        run_tool(
            Arc::clone(&self.app),
            tool,
            args,
            limit,
            session,
            progress,
            context.ct.clone(),
        )
        .await
        .map(Into::into)
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        self.tasks.get(&request.task_id, &context).await.map(GetTaskResult::new)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks
            .update(&request.task_id, request.input_responses, &context)
            .await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks.cancel(&request.task_id, &context).await
    }
}

/// Runs one tool call as an MCP result (see [`execute`]).
async fn run_tool(
    app: Arc<App>,
    tool: Arc<dyn ExaiTool>,
    args: exai_core::tools::JsonObject,
    limit: Duration,
    session: String,
    progress: ProgressSink,
    cancel: CancellationToken,
) -> Result<CallToolResult, ErrorData> {
    rescue::call_result(execute(app, tool, args, limit, session, progress, cancel).await)
}

/// Runs one tool call: takes its session's and then the global permit, and runs it under one budget (the tier's
/// deadline) until it finishes, times out or `cancel` fires. Dropping the tool's future on timeout or cancellation
/// stops everything it was doing; the permits, owned guards, go back on every path. Every transport's calls
/// (MCP and the WebSocket daemon protocol) come through here.
pub(crate) async fn execute(
    app: Arc<App>,
    tool: Arc<dyn ExaiTool>,
    args: exai_core::tools::JsonObject,
    limit: Duration,
    session: String,
    progress: ProgressSink,
    cancel: CancellationToken,
) -> Result<exai_core::tools::ToolOutput, ToolError> {
    let name = tool.spec().name.to_owned();
    let _inflight = app.runtime.enter();
    let started = Instant::now();
    let budget = Budget::new(limit);
    let usage = exai_core::tools::CallUsage::default();
    let work = async {
        let limits = &app.resilience.limits;
        let _session_permit = limits.session(&session).acquire(&budget).await?;
        // Only calls that reach a model count against the fleet: `health` and `status` answer while Redis is down.
        let _global_permit = if tool.spec().hints.open_world {
            limits.global.acquire(&budget).await?
        } else {
            limits.global.acquire_here(&budget).await?
        };
        let ctx = ToolContext {
            app: Arc::clone(&app),
            progress,
            cancel: cancel.clone(),
            budget: budget.clone(),
            usage: usage.clone(),
        };
        tool.call(ctx, args).await
    };
    let outcome = tokio::select! {
        r = tokio::time::timeout_at(budget.deadline(), work) => r.unwrap_or_else(|_| {
            Err(ToolError::Timeout { tool: name.clone(), after: limit, spent: budget.ledger() })
        }),
        () = cancel.cancelled() => Err(ToolError::Cancelled { tool: name.clone() }),
    };
    // This call's permits are back; more held than calls running would be a leak (logged and counted).
    app.resilience.limits.check(|| app.runtime.inflight());
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = outcome_status(&outcome);
    let error_kind = match &outcome {
        Ok(out) if out.is_error => Some("tool_error"),
        Ok(_) => None,
        Err(e) => Some(executions::error_kind(e)),
    };
    metrics::counter!(
        "exai_tool_calls_total",
        "tool" => name.clone(),
        "status" => status,
        "error_kind" => error_kind.unwrap_or("none"),
    )
    .increment(1);
    metrics::histogram!("exai_tool_latency_seconds", "tool" => name.clone()).record(ms / 1000.0);
    executions::record(
        &app,
        executions::Finished {
            tool: &name,
            latency: started.elapsed(),
            status,
            error_kind,
            used: usage.get(),
            session: &session,
        },
    );
    match &outcome {
        Ok(out) if !out.is_error => tracing::info!(tool = %name, ms, "tool call ok"),
        Ok(_) => tracing::info!(tool = %name, ms, "tool call returned a tool error"),
        Err(e) => tracing::warn!(tool = %name, ms, error = %e, "tool call failed"),
    }
    outcome
}

/// A bounded label for a call's outcome.
fn outcome_status(outcome: &Result<exai_core::tools::ToolOutput, ToolError>) -> &'static str {
    match outcome {
        Ok(out) if !out.is_error => "ok",
        Ok(_) => "tool_error",
        Err(ToolError::Timeout { .. }) => "timeout",
        Err(ToolError::Cancelled { .. }) => "cancelled",
        Err(ToolError::OverCapacity(_)) => "over_capacity",
        Err(ToolError::FleetUnavailable(_)) => "fleet_unavailable",
        Err(ToolError::CircuitOpen(_)) => "circuit_open",
        Err(ToolError::InvalidArguments { .. } | ToolError::UnknownTool { .. }) => "invalid",
        Err(_) => "error",
    }
}
