//! The response cache: a deterministic model call (temperature 0, no web search) asked again within
//! `cache.ttl_secs` is answered from here instead of upstream. Opt-in per call (`chat`'s `cache: true`) or per tool
//! (`cache.enabled_tools`); off by default.
//!
//! The key is the SHA-256 of a canonical JSON of what goes upstream — the resolved model, the messages, the
//! parameters that change the answer — never of the caller's request id. Two layers: an in-process
//! [`moka`] cache (TTL, at most `cache.max_entries` answers) whose `try_get_with` makes concurrent identical misses
//! share one upstream call, in front of a [`SharedCache`] (Redis in `exai-fleet`, when `EXAI_REDIS_URL` is set) so
//! every replica sees what one of them asked. A shared-layer failure is a miss (counted in
//! `exai_fleet_failures_total{operation="cache_get"|"cache_set"}`), never an error to the caller. Only complete
//! answers (`finish_reason` `stop`) from the model asked for (no fallback) are kept.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::{Answer, CallSpec};
use crate::error::ToolError;
use crate::resilience::fleet::FleetError;

/// The second layer, shared by the replicas: plain get and set-with-TTL of serialized answers.
pub trait SharedCache: Send + Sync + std::fmt::Debug {
    /// The value stored under `key`, if any; answers within the store's own timeout.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, FleetError>>;
    /// Stores `value` under `key` for `ttl`.
    fn set<'a>(&'a self, key: &'a str, value: String, ttl: Duration) -> BoxFuture<'a, Result<(), FleetError>>;
}

/// `cache.*`.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Tools whose deterministic calls are cached without `cache: true` (`cache.enabled_tools`).
    pub enabled_tools: Vec<String>,
    /// How long an answer is served from the cache (`cache.ttl_secs`).
    pub ttl: Duration,
    /// Most answers the in-process layer keeps (`cache.max_entries`).
    pub max_entries: u64,
}

/// The cache key of a call, or `None` when its answer is not deterministic (temperature other than 0, web search).
pub fn key(spec: &CallSpec<'_>) -> Option<String> {
    if spec.web_search || spec.temperature != Some(0.0) {
        return None;
    }
    // A fixed shape (serde_json orders the fields); bump `v` whenever it changes.
    let canonical = serde_json::json!({
        "v": 1,
        "provider": spec.model.provider,
        "model": spec.model.name,
        "messages": spec.messages,
        "temperature": 0,
        "thinking": spec.thinking,
    });
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Upstream,
    Memory,
    Shared,
}

/// Why the in-process layer keeps nothing for a call; shared with the calls that waited on it.
#[derive(Debug)]
enum NotKept {
    /// Answered, but not completely (cut off, filtered) or by a fallback model: passed on, not cached, so a
    /// stand-in's answer is not served once the model asked for is back.
    Unkept(Box<Answer>),
    /// Failed; the caller that ran it gets the error itself, the waiters this text.
    Failed(String),
}

/// Both layers.
pub struct ResponseCache {
    pub config: CacheConfig,
    local: moka::future::Cache<String, Arc<Answer>>,
    shared: Option<Arc<dyn SharedCache>>,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("entries", &self.local.entry_count())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl ResponseCache {
    pub fn new(config: CacheConfig, shared: Option<Arc<dyn SharedCache>>) -> Self {
        let local = moka::future::Cache::builder()
            .max_capacity(config.max_entries)
            .time_to_live(config.ttl)
            .build();
        Self { config, local, shared }
    }

    /// Whether `tool` caches its deterministic calls by configuration (`cache.enabled_tools`).
    pub fn enabled_for(&self, tool: &str) -> bool {
        self.config.enabled_tools.iter().any(|t| t == tool)
    }

    /// The answer stored under `key`, else `call`'s (stored when complete). Concurrent callers of one key share
    /// one `call`. A served answer has `cached` set.
    pub async fn serve(
        &self,
        key: String,
        call: impl Future<Output = Result<Answer, ToolError>>,
    ) -> Result<Answer, ToolError> {
        let source = Mutex::new(Source::Memory);
        let own_error: Mutex<Option<ToolError>> = Mutex::new(None);
        let set = |s: Source| *source.lock().unwrap_or_else(|e| e.into_inner()) = s;
        let shared_key = format!("cache:{key}");
        let init = async {
            if let Some(shared) = &self.shared
                && let Ok(Some(text)) = shared.get(&shared_key).await
                && let Ok(answer) = serde_json::from_str::<Answer>(&text)
            {
                set(Source::Shared);
                return Ok(Arc::new(answer));
            }
            set(Source::Upstream);
            let answer = match call.await {
                Ok(a) => a,
                Err(e) => {
                    let text = e.to_string();
                    *own_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    return Err(NotKept::Failed(text));
                }
            };
            if answer.finish_reason != "stop" || answer.fallback_reason.is_some() {
                return Err(NotKept::Unkept(Box::new(answer)));
            }
            if let Some(shared) = &self.shared
                && let Ok(text) = serde_json::to_string(&answer)
            {
                // A failure is counted by the store and costs only this answer's sharing.
                let _ = shared.set(&shared_key, text, self.config.ttl).await;
            }
            Ok(Arc::new(answer))
        };
        let outcome = self.local.try_get_with(key, init).await;
        let source = *source.lock().unwrap_or_else(|e| e.into_inner());
        match source {
            Source::Upstream => metrics::counter!("exai_cache_misses_total").increment(1),
            Source::Memory => metrics::counter!("exai_cache_hits_total", "layer" => "memory").increment(1),
            Source::Shared => metrics::counter!("exai_cache_hits_total", "layer" => "redis").increment(1),
        }
        match outcome {
            Ok(answer) => {
                let mut answer = Answer::clone(&answer);
                answer.cached = source != Source::Upstream;
                Ok(answer)
            }
            Err(not_kept) => {
                if let Some(e) = own_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    return Err(e);
                }
                match &*not_kept {
                    NotKept::Unkept(answer) => Ok(Answer::clone(answer)),
                    NotKept::Failed(text) => Err(ToolError::Unavailable(format!(
                        "an identical call answered first failed: {text}"
                    ))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelRegistry;
    use crate::provider::{Message, Role};

    fn spec<'a>(model: &'a crate::models::Model, prompt: &str, temperature: Option<f32>) -> CallSpec<'a> {
        CallSpec {
            model,
            messages: vec![Message::text(Role::System, "s"), Message::text(Role::User, prompt)],
            temperature,
            thinking: false,
            web_search: false,
            cache: true,
        }
    }

    #[test]
    fn the_key_is_the_canonical_upstream_request() {
        let models = ModelRegistry::builtin();
        let glm = models.resolve("glm-4.6").unwrap();
        let flash = models.resolve("glm-4.5-flash").unwrap();
        let k = key(&spec(glm, "q", Some(0.0))).unwrap();
        assert_eq!(k.len(), 64);
        assert_eq!(
            Some(&k),
            key(&spec(glm, "q", Some(0.0))).as_ref(),
            "same request, same key"
        );
        assert_ne!(Some(&k), key(&spec(glm, "q2", Some(0.0))).as_ref(), "messages count");
        assert_ne!(Some(&k), key(&spec(flash, "q", Some(0.0))).as_ref(), "the model counts");
        let mut thinking = spec(glm, "q", Some(0.0));
        thinking.thinking = true;
        assert_ne!(Some(k), key(&thinking), "reasoning changes the answer");
    }

    #[test]
    fn only_deterministic_requests_have_a_key() {
        let models = ModelRegistry::builtin();
        let glm = models.resolve("glm-4.6").unwrap();
        assert!(key(&spec(glm, "q", Some(0.7))).is_none());
        assert!(
            key(&spec(glm, "q", None)).is_none(),
            "the model's default temperature is not 0"
        );
        let mut search = spec(glm, "q", Some(0.0));
        search.web_search = true;
        assert!(key(&search).is_none());
    }

    #[test]
    fn the_cache_is_off_by_default_and_its_settings_are_checked() {
        use crate::config::{Config, MapEnv};
        let load = |pairs: &[(&str, &str)]| Config::load(&MapEnv::new(pairs.iter().copied()), None, &[]);
        let c = load(&[]).unwrap();
        assert!(c.cache.enabled_tools.is_empty());
        assert_eq!((c.cache.ttl, c.cache.max_entries), (Duration::from_secs(3600), 1000));
        let err = load(&[
            ("EXAI_CACHE_ENABLED_TOOLS", "chat,nope"),
            ("EXAI_CACHE_TTL_SECS", "0"),
            ("EXAI_CACHE_MAX_ENTRIES", "0"),
        ])
        .unwrap_err()
        .to_string();
        for needle in [
            "EXAI_CACHE_ENABLED_TOOLS",
            "nope",
            "EXAI_CACHE_TTL_SECS",
            "EXAI_CACHE_MAX_ENTRIES",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    fn answer(text: &str, finish: &str) -> Answer {
        let mut a = Answer::empty("sim", "glm-4.6", "glm-4.6");
        a.content = text.into();
        a.finish_reason = finish.into();
        a
    }

    fn cache() -> ResponseCache {
        ResponseCache::new(
            CacheConfig {
                enabled_tools: Vec::new(),
                ttl: Duration::from_secs(60),
                max_entries: 10,
            },
            None,
        )
    }

    #[tokio::test]
    async fn concurrent_identical_misses_share_one_call() {
        let cache = cache();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let call = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(answer("a", "stop"))
        };
        let (a, b) = tokio::join!(cache.serve("k".into(), call()), cache.serve("k".into(), call()));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!((a.content.as_str(), b.content.as_str()), ("a", "a"));
        assert!(a.cached != b.cached, "one asked upstream, the other waited on it");
        let c = cache.serve("k".into(), call()).await.unwrap();
        assert!(c.cached);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failures_and_incomplete_answers_are_not_kept() {
        let cache = cache();
        let err = cache
            .serve("k".into(), async { Err(ToolError::Unavailable("down".into())) })
            .await
            .unwrap_err();
        assert!(matches!(err, ToolError::Unavailable(m) if m == "down"));
        let cut = cache
            .serve("k".into(), async { Ok(answer("a", "length")) })
            .await
            .unwrap();
        assert!(!cut.cached);
        let mut stand_in = answer("f", "stop");
        stand_in.fallback_reason = Some("glm-4.6: HTTP 503".into());
        let fell_back = cache.serve("k".into(), async { Ok(stand_in) }).await.unwrap();
        assert_eq!((fell_back.content.as_str(), fell_back.cached), ("f", false));
        let next = cache
            .serve("k".into(), async { Ok(answer("b", "stop")) })
            .await
            .unwrap();
        assert_eq!((next.content.as_str(), next.cached), ("b", false));
    }
}
