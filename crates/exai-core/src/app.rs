//! The application state every tool call sees: the validated config, the store, runtime counters,
//! the enabled tools, the model registry and the providers. Built once by the binary and shared behind an `Arc`.

use std::sync::Arc;

use crate::config::Config;
use crate::models::ModelRegistry;
use crate::observe::Observe;
use crate::observe::journal::Journal;
use crate::provider::Providers;
use crate::resilience::Resilience;
use crate::resilience::fleet::FleetLink;
use crate::runtime::Runtime;
use crate::store::Store;
use crate::tools::Registry;
use crate::tools::model_call::cache::ResponseCache;

pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub runtime: Arc<Runtime>,
    pub tools: Registry,
    pub models: ModelRegistry,
    pub providers: Providers,
    pub resilience: Resilience,
    /// Answers to deterministic calls, in process and (with Redis) shared by the replicas.
    pub cache: ResponseCache,
    /// Recent calls and the live event stream (dashboard, alerts, auditor).
    pub observe: Observe,
    /// Finished calls on their way to the `tool_executions` table.
    pub journal: Journal,
    /// Work a call leaves behind (such as recording it); waited for on shutdown.
    pub background: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("tools", &self.tools.names())
            .finish_non_exhaustive()
    }
}

impl App {
    /// An app with the built-in model registry and no providers (every model call then fails clearly).
    pub fn new(config: Config, store: Arc<dyn Store>, tools: Registry) -> Arc<Self> {
        Self::with_providers(
            config,
            store,
            tools,
            ModelRegistry::builtin(),
            Providers::default(),
            None,
        )
    }

    pub fn with_providers(
        config: Config,
        store: Arc<dyn Store>,
        tools: Registry,
        models: ModelRegistry,
        providers: Providers,
        fleet: Option<Arc<FleetLink>>,
    ) -> Arc<Self> {
        let shared = fleet.as_ref().and_then(|f| f.cache.clone());
        let cache = ResponseCache::new(config.cache.clone(), shared);
        let resilience = Resilience::from_config(&config, fleet);
        Arc::new(Self {
            config: Arc::new(config),
            store,
            runtime: Arc::new(Runtime::default()),
            tools,
            models,
            providers,
            resilience,
            cache,
            observe: Observe::default(),
            journal: Journal::default(),
            background: tokio_util::task::TaskTracker::new(),
        })
    }

    /// Whether this process serves the MCP conformance-suite fixtures (`--conformance-fixtures`): the
    /// server then also offers resources, prompts, completion and logging, which it never does otherwise.
    pub fn conformance_fixtures(&self) -> bool {
        crate::tools::fixtures::registered(&self.tools)
    }
}
