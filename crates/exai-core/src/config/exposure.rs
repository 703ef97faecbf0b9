//! Which listeners of `exai serve` would face the network without a token: binding HTTP or WebSocket off loopback
//! needs `EXAI_HTTP_TOKEN` / `EXAI_WS_TOKEN` set, or `EXAI_INSECURE_NO_AUTH=true` (`--insecure-no-auth`) to start.

use std::net::IpAddr;

use super::Config;

impl Config {
    /// One line per listener that would be reachable from other machines without a token, naming the address and
    /// the variable to set; empty when every listener is on loopback or guarded. The WebSocket token must be set
    /// explicitly: the one `exai serve` creates in its data directory is for local clients (every replica would
    /// make a different one, and remote clients have no way to read it).
    pub fn unauthenticated_listeners(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !is_loopback(self.http.host) && self.http.token.is_none() {
            out.push(format!(
                "HTTP (/mcp, /admin, /metrics, the dashboard) on {} without EXAI_HTTP_TOKEN",
                self.http.host
            ));
        }
        if !is_loopback(self.ws.host) && self.ws.token.is_none() {
            out.push(format!(
                "the WebSocket daemon on {} without EXAI_WS_TOKEN",
                self.ws.host
            ));
        }
        out
    }
}

/// `127.0.0.0/8` and `::1` (also as `::ffff:127.x.y.z`); `0.0.0.0` and `::` listen on every interface.
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, MapEnv};

    fn load(pairs: &[(&str, &str)]) -> Config {
        let env = MapEnv::new(pairs.iter().copied());
        Config::load(&env, None, &[]).unwrap()
    }

    #[test]
    fn only_a_non_loopback_listener_without_its_token_is_named() {
        assert!(
            load(&[]).unauthenticated_listeners().is_empty(),
            "the defaults are loopback"
        );
        let local = load(&[("EXAI_HTTP_HOST", "::1"), ("EXAI_WS_HOST", "127.0.0.2")]);
        assert!(local.unauthenticated_listeners().is_empty());
        let open = load(&[("EXAI_HTTP_HOST", "0.0.0.0"), ("EXAI_WS_HOST", "::")]);
        let named = open.unauthenticated_listeners();
        assert_eq!(named.len(), 2, "{named:?}");
        assert!(
            named[0].contains("EXAI_HTTP_TOKEN") && named[0].contains("0.0.0.0"),
            "{named:?}"
        );
        assert!(named[1].contains("EXAI_WS_TOKEN"), "{named:?}");
        let guarded = load(&[
            ("EXAI_HTTP_HOST", "0.0.0.0"),
            ("EXAI_HTTP_TOKEN", "h"),
            ("EXAI_WS_HOST", "0.0.0.0"),
            ("EXAI_WS_TOKEN", "w"),
        ]);
        assert!(guarded.unauthenticated_listeners().is_empty());
        assert!(!open.insecure_no_auth);
        assert!(load(&[("EXAI_INSECURE_NO_AUTH", "true")]).insecure_no_auth);
    }
}
