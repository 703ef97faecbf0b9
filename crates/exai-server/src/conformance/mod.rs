//! MCP conformance-suite fixtures needing the request itself: rich content, resources, prompts, completion,
//! logging, sampling/elicitation, MRTR, `x-mcp-header` and tasks tools. Served only with `--conformance-fixtures`.

// rmcp marks logging, sampling, roots and resources/subscribe deprecated (SEP-2577); the suite still checks them.
#![allow(deprecated)]

/// A fixture value written as JSON (as the spec gives it) turned into the rmcp type the context expects.
/// (A macro so exai-server needs no direct `serde` dependency for the `DeserializeOwned` bound.)
macro_rules! parse {
    ($value:expr) => {
        serde_json::from_value($value).map_err($crate::conformance::bad_fixture)
    };
}

mod content;
mod headers;
mod logging;
mod mrtr;
mod prompts;
mod resources;
mod session;
mod tasks;

use std::sync::Arc;
use std::sync::Mutex;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult, DiscoverResult,
    GetPromptRequestParams, GetPromptResponse, JsonObject, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, LoggingLevel, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig, SetLevelRequestMethod, SetLevelRequestParams, SubscribeRequestParams, Tool,
    UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::Value;

use crate::tasks::Tasks;

/// Per-session fixture state (the HTTP service builds one handler per session).
#[derive(Debug)]
pub struct Conformance {
    /// The level from `logging/setLevel` (2025-11-25 sessions).
    log_level: Mutex<LoggingLevel>,
}

impl Default for Conformance {
    fn default() -> Self {
        Self {
            log_level: Mutex::new(LoggingLevel::Info),
        }
    }
}

/// What a fixture server advertises on top of `tools`.
pub fn capabilities() -> ServerCapabilities {
    let caps = serde_json::json!({
        "tools": {}, "resources": {"subscribe": true}, "prompts": {}, "completions": {}, "logging": {}
    });
    serde_json::from_value(caps).expect("fixture capabilities are valid")
}

/// The `server/discover` answer: `resources/subscribe` is 2025-only, and declaring `subscribe` there would
/// promise `subscriptions/listen`, which exai does not implement.
pub fn discover(versions: Vec<ProtocolVersion>, mut info: ServerConfig) -> DiscoverResult {
    if let Some(resources) = info.capabilities.resources.as_mut() {
        resources.subscribe = None;
    }
    DiscoverResult::from_server_info(versions, info)
}

/// The fixture tools served here (after exai's own tools and the core fixtures).
pub fn tools() -> Vec<Tool> {
    [
        content::tools(),
        headers::tools(),
        logging::tools(),
        session::tools(),
        mrtr::tools(),
        tasks::tools(),
    ]
    .concat()
}

impl Conformance {
    /// Runs `request` if it names a fixture tool served here; `None` leaves it to the normal registry.
    pub async fn call_tool(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        tasks: &Tasks,
    ) -> Option<Result<CallToolResponse, ErrorData>> {
        let name = request.name.as_ref();
        if let Some(result) = content::call(name) {
            return Some(result);
        }
        if let Some(result) = logging::call(self, name, context).await {
            return Some(result);
        }
        let args = request.arguments.clone().unwrap_or_default();
        if let Some(result) = headers::call(name, &args) {
            return Some(result);
        }
        if let Some(result) = session::call(name, &args, context).await {
            return Some(result);
        }
        if let Some(result) = tasks::call(request, context, tasks).await {
            return Some(result);
        }
        mrtr::call(request, context)
    }

    pub fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if stateless(context) {
            return Err(ErrorData::method_not_found::<SetLevelRequestMethod>());
        }
        *self.log_level.lock().unwrap_or_else(|e| e.into_inner()) = request.level;
        Ok(())
    }

    pub fn complete(&self, request: CompleteRequestParams) -> Result<CompleteResult, ErrorData> {
        prompts::complete(request)
    }

    pub fn list_prompts(&self) -> Result<ListPromptsResult, ErrorData> {
        prompts::list()
    }

    pub fn get_prompt(&self, request: GetPromptRequestParams) -> Result<GetPromptResponse, ErrorData> {
        prompts::get(request)
    }

    pub fn list_resources(&self) -> Result<ListResourcesResult, ErrorData> {
        resources::list()
    }

    pub fn list_resource_templates(&self) -> Result<ListResourceTemplatesResult, ErrorData> {
        resources::templates()
    }

    pub fn read_resource(&self, request: ReadResourceRequestParams) -> Result<ReadResourceResponse, ErrorData> {
        resources::read(&request.uri)
    }

    pub fn subscribe(&self, request: SubscribeRequestParams) -> Result<(), ErrorData> {
        resources::check_known(&request.uri)
    }

    pub fn unsubscribe(&self, request: UnsubscribeRequestParams) -> Result<(), ErrorData> {
        resources::check_known(&request.uri)
    }

    fn log_level(&self) -> LoggingLevel {
        *self.log_level.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether the request uses the 2026-07-28 stateless wire (no `initialize`, no server→client requests).
fn stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

fn bad_fixture(e: serde_json::Error) -> ErrorData {
    ErrorData::internal_error(format!("bad conformance fixture: {e}"), None)
}

/// A fixture tool definition.
fn tool(name: &'static str, description: &'static str, input_schema: Value) -> Tool {
    let Value::Object(schema) = input_schema else {
        unreachable!("fixture input schemas are objects")
    };
    Tool::new_with_raw(name, Some(description.into()), Arc::new(schema as JsonObject))
}

/// A tool taking no arguments.
fn no_args() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

/// A complete tool result with these content blocks (JSON, as the spec writes them).
fn tool_result(content: Value) -> Result<CallToolResponse, ErrorData> {
    Ok(CallToolResult::success(parse!(content)?).into())
}

/// A complete tool result with one text block.
fn text_result(text: impl Into<String>) -> Result<CallToolResponse, ErrorData> {
    Ok(CallToolResult::success(vec![rmcp::model::ContentBlock::text(text)]).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exai_core::app::App;
    use exai_core::config::{Config, MapEnv, ToolSelection};
    use exai_core::store::{Conversation, Execution, Store, StoreError, StoreHealth, Turn};
    use exai_core::tools::{Profile, Registry};
    use futures::future::BoxFuture;
    use rmcp::ServerHandler;

    struct NoStore;
    impl Store for NoStore {
        fn ping(&self) -> BoxFuture<'_, Result<StoreHealth, StoreError>> {
            unimplemented!()
        }
        fn record_start(&self, _: &str, _: &str) -> BoxFuture<'_, Result<(), StoreError>> {
            unimplemented!()
        }
        fn append_turns<'a>(
            &'a self,
            _: &'a str,
            _: &'a [Turn],
            _: i64,
            _: usize,
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            unimplemented!()
        }
        fn conversation<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Conversation>, StoreError>> {
            unimplemented!()
        }
        fn purge_expired(&self, _: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
            unimplemented!()
        }
        fn record_executions<'a>(&'a self, _: &'a [Execution]) -> BoxFuture<'a, Result<(), StoreError>> {
            unimplemented!()
        }
        fn recent_executions(&self, _: u32) -> BoxFuture<'_, Result<Vec<Execution>, StoreError>> {
            unimplemented!()
        }
        fn purge_executions(&self, _: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
            unimplemented!()
        }
        fn record_tool_baselines<'a>(
            &'a self,
            _: &'a [exai_core::store::ToolBaseline],
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            unimplemented!()
        }
        fn latest_tool_baselines(&self) -> BoxFuture<'_, Result<Vec<exai_core::store::ToolBaseline>, StoreError>> {
            unimplemented!()
        }
        fn record_alert<'a>(&'a self, _: &'a exai_core::store::AlertRecord) -> BoxFuture<'a, Result<(), StoreError>> {
            unimplemented!()
        }
        fn recent_alerts(&self, _: u32) -> BoxFuture<'_, Result<Vec<exai_core::store::AlertRecord>, StoreError>> {
            unimplemented!()
        }
        fn record_observation<'a>(
            &'a self,
            _: &'a exai_core::store::Observation,
        ) -> BoxFuture<'a, Result<i64, StoreError>> {
            unimplemented!()
        }
        fn observations(&self, _: u32) -> BoxFuture<'_, Result<Vec<exai_core::store::Observation>, StoreError>> {
            unimplemented!()
        }
        fn acknowledge_observation(&self, _: i64, _: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
            unimplemented!()
        }
        fn put_shared<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: &'a str,
            _: i64,
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            unimplemented!()
        }
        fn shared<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: i64,
        ) -> BoxFuture<'a, Result<Option<exai_core::store::SharedRecord>, StoreError>> {
            unimplemented!()
        }
        fn touch_shared<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: i64,
            _: i64,
        ) -> BoxFuture<'a, Result<bool, StoreError>> {
            unimplemented!()
        }
        fn take_shared<'a>(
            &'a self,
            _: &'a str,
            _: i64,
        ) -> BoxFuture<'a, Result<Vec<exai_core::store::SharedRecord>, StoreError>> {
            unimplemented!()
        }
        fn delete_shared<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
            unimplemented!()
        }
        fn purge_shared(&self, _: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
            unimplemented!()
        }
    }

    fn handler(fixtures: bool) -> crate::ExaiHandler {
        handler_without(fixtures, &[])
    }

    fn handler_without(fixtures: bool, disabled: &[&str]) -> crate::ExaiHandler {
        let config = Config::load(&MapEnv::default(), None, &[]).unwrap();
        let selection = ToolSelection {
            profile: Profile::Full,
            enabled: vec![],
            disabled: disabled.iter().map(|s| s.to_string()).collect(),
        };
        let app = App::new(config, Arc::new(NoStore), Registry::select(&selection, fixtures));
        crate::ExaiHandler::new(app)
    }

    #[test]
    fn a_normal_server_advertises_only_tools_and_the_tasks_extension() {
        // `chat` (in the full profile) calls a model, so it may run as a task (SEP-2663).
        let caps = serde_json::to_value(handler(false).get_info().capabilities).unwrap();
        assert_eq!(
            caps,
            serde_json::json!({"tools": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}})
        );
        assert!(handler(false).get_tool("test_image_content").is_none());
    }

    #[test]
    fn without_a_model_tool_there_is_no_tasks_extension() {
        let caps = serde_json::to_value(
            handler_without(
                false,
                &[
                    "chat",
                    "thinkdeep",
                    "debug",
                    "analyze",
                    "codereview",
                    "planner",
                    "precommit",
                    "secaudit",
                    "testgen",
                    "refactor",
                    "docgen",
                    "tracer",
                    "consensus",
                ],
            )
            .get_info()
            .capabilities,
        )
        .unwrap();
        assert_eq!(caps, serde_json::json!({"tools": {}}));
    }

    #[test]
    fn a_fixture_server_advertises_and_lists_the_fixtures() {
        let h = handler(true);
        let caps = serde_json::to_value(h.get_info().capabilities).unwrap();
        for key in ["tools", "resources", "prompts", "completions", "logging", "extensions"] {
            assert!(caps.get(key).is_some(), "{key} missing from {caps}");
        }
        assert!(h.get_tool("test_image_content").is_some() && h.get_tool("version").is_some());
    }

    #[test]
    fn every_fixture_tool_has_a_description_and_an_object_schema() {
        let tools = tools();
        let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), tools.len(), "duplicate fixture tool names");
        for t in &tools {
            assert!(t.description.as_deref().is_some_and(|d| !d.is_empty()), "{}", t.name);
            assert_eq!(t.input_schema.get("type"), Some(&Value::from("object")), "{}", t.name);
        }
    }

    #[test]
    fn discover_drops_subscribe_but_keeps_resources() {
        let info = ServerConfig::new(capabilities());
        let result = discover(vec![ProtocolVersion::V_2026_07_28], info);
        let resources = result.capabilities.resources.expect("resources declared");
        assert_eq!(resources.subscribe, None);
        assert!(result.capabilities.prompts.is_some() && result.capabilities.completions.is_some());
    }
}
