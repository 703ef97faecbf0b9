//! The fleet settings (`redis.*`): where the replicas' shared limits live, how long a slot outlives its holder,
//! how long one Redis command may take, and what to do when Redis fails.

use std::time::Duration;

use super::Secret;
use super::validate::Reader;
use crate::resilience::fleet::OnFailure;

/// `redis.*`. Without `url`, limits are per process and nothing else here is used.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub url: Option<Secret>,
    pub key_prefix: String,
    pub lease_ttl: Duration,
    pub timeout: Duration,
    pub on_failure: OnFailure,
}

pub(super) fn read(r: &mut Reader<'_>) -> Option<FleetConfig> {
    let url = r.optional_secret("redis.url");
    if let Some(u) = &url
        && !u.expose().starts_with("redis://")
    {
        r.problem("redis.url", "expected a redis:// URL (TLS is not supported)");
    }
    let lease_ttl = r.secs("redis.lease_ttl_secs");
    let timeout_ms: Option<u64> = r.parse("redis.timeout_ms", "a whole number of milliseconds, at least 1");
    let timeout_ms = timeout_ms.filter(|ms| {
        let ok = *ms >= 1;
        if !ok {
            r.problem(
                "redis.timeout_ms",
                "expected a whole number of milliseconds, at least 1",
            );
        }
        ok
    });
    let timeout_ms = timeout_ms.and_then(|ms| r.capped("redis.timeout_ms", Duration::from_millis(ms)).map(|_| ms));
    if let (Some(ttl), Some(ms)) = (lease_ttl, timeout_ms)
        && Duration::from_millis(ms.saturating_mul(3)) >= ttl
    {
        r.problem(
            "redis.timeout_ms",
            format!(
                "must be below a third of EXAI_REDIS_LEASE_TTL_SECS ({} s): leases are renewed every third of it",
                ttl.as_secs()
            ),
        );
    }
    let on_failure = match r.text("redis.on_failure").to_ascii_lowercase().as_str() {
        "open" => Some(OnFailure::Open),
        "closed" => Some(OnFailure::Closed),
        _ => {
            r.problem("redis.on_failure", "expected `open` or `closed`");
            None
        }
    };
    let key_prefix = r.text("redis.key_prefix").to_owned();
    Some(FleetConfig {
        url,
        key_prefix,
        lease_ttl: lease_ttl?,
        timeout: Duration::from_millis(timeout_ms?),
        on_failure: on_failure?,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, MapEnv};
    use crate::resilience::fleet::OnFailure;

    #[test]
    fn redis_settings_are_checked() {
        let load = |pairs: &[(&str, &str)]| Config::load(&MapEnv::new(pairs.iter().copied()), None, &[]);
        let c = load(&[]).unwrap();
        assert!(c.fleet.url.is_none());
        assert_eq!(c.fleet.on_failure, OnFailure::Open);
        let c = load(&[
            ("EXAI_REDIS_URL", "redis://127.0.0.1:6379"),
            ("EXAI_REDIS_ON_FAILURE", "closed"),
        ])
        .unwrap();
        assert_eq!(c.fleet.on_failure, OnFailure::Closed);
        let err = load(&[
            ("EXAI_REDIS_URL", "http://x"),
            ("EXAI_REDIS_ON_FAILURE", "maybe"),
            ("EXAI_REDIS_TIMEOUT_MS", "5000"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("EXAI_REDIS_URL") && err.contains("redis:// URL"), "{err}");
        assert!(err.contains("EXAI_REDIS_ON_FAILURE"), "{err}");
        assert!(err.contains("below a third of EXAI_REDIS_LEASE_TTL_SECS"), "{err}");
        assert!(!err.contains("http://x"), "the URL is a secret: {err}");
    }
}
