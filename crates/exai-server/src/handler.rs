//! The one MCP handler behind every transport: advertises exai's protocol versions and tools, and runs
//! `tools/call` with a deadline by tool tier, progress forwarding and cancellation that drops the work.
//! With `--conformance-fixtures` it also delegates resources, prompts, completion and logging to
//! [`crate::conformance`]; otherwise those methods answer "method not found" and only `tools` is advertised.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use exai_core::app::App;
use exai_core::error::ToolError;
use exai_core::protocol::SUPPORTED_VERSIONS;
use exai_core::tools::{Progress, ProgressSink, Tier, ToolContext};
use futures::FutureExt;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CompleteRequestMethod, CompleteRequestParams, CompleteResult,
    ConstString, CustomRequest, CustomResult, DiscoverResult, ErrorCode, GetPromptRequestMethod,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsRequestMethod, ListPromptsResult,
    ListResourceTemplatesRequestMethod, ListResourceTemplatesResult, ListResourcesRequestMethod, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ProtocolVersion, ReadResourceRequestMethod,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, SetLevelRequestMethod,
    SubscribeRequestMethod, SubscribeRequestParams, Tool, UnsubscribeRequestMethod, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};

use crate::conformance::{self, Conformance};
use crate::{catalog, rescue};

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
}

impl ExaiHandler {
    pub fn new(app: Arc<App>) -> Self {
        let mut tools = catalog::definitions(&app.tools);
        let fixtures = app.conformance_fixtures().then(|| {
            tools.extend(conformance::tools());
            Arc::new(Conformance::default())
        });
        Self {
            app,
            tools: tools.into(),
            fixtures,
        }
    }

    /// The fixtures, or "method not found" for method `M` on a normal server.
    fn fixtures<M: ConstString>(&self) -> Result<&Conformance, ErrorData> {
        self.fixtures.as_deref().ok_or_else(ErrorData::method_not_found::<M>)
    }

    fn deadline(&self, tier: Tier) -> Duration {
        let t = &self.app.config.timeouts;
        match tier {
            Tier::Tier1 => t.tier1,
            Tier::Simple => t.simple_tool,
            Tier::Workflow => t.workflow_tool,
        }
    }
}

/// The protocol versions as rmcp constants, in exai's (newest-first) order.
fn protocol_versions() -> Vec<ProtocolVersion> {
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
}

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
        let capabilities = match self.fixtures {
            Some(_) => conformance::capabilities(),
            None => ServerCapabilities::builder().enable_tools().build(),
        };
        ServerConfig::new(capabilities)
            .with_server_info(info)
            .with_instructions(INSTRUCTIONS)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Owned(protocol_versions())
    }

    async fn discover(&self, _context: RequestContext<RoleServer>) -> Result<DiscoverResult, ErrorData> {
        let versions = protocol_versions();
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
            && let Some(response) = fixtures.call_tool(&request, &context).await
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
        let _inflight = self.app.runtime.enter();
        let started = Instant::now();
        let limit = self.deadline(tool.spec().tier);
        let deadline = tokio::time::Instant::now() + limit;
        let ctx = ToolContext {
            app: Arc::clone(&self.app),
            progress: progress_sink(&context),
            cancel: context.ct.clone(),
            deadline,
        };
        let work = tool.call(ctx, request.arguments.unwrap_or_default());
        // Dropping `work` on timeout or cancellation stops everything it was doing.
        let outcome = tokio::select! {
            r = tokio::time::timeout_at(deadline, work) => {
                r.unwrap_or_else(|_| Err(ToolError::Timeout { tool: name.clone(), after: limit }))
            }
            () = context.ct.cancelled() => Err(ToolError::Cancelled { tool: name.clone() }),
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match &outcome {
            Ok(out) if !out.is_error => tracing::info!(tool = %name, ms, "tool call ok"),
            Ok(_) => tracing::info!(tool = %name, ms, "tool call returned a tool error"),
            Err(e) => tracing::warn!(tool = %name, ms, error = %e, "tool call failed"),
        }
        rescue::call_result(outcome).map(Into::into)
    }
}
