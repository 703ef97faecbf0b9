//! What the replicas share about WebSocket sessions, in the store's shared records: which replica holds a session,
//! the frames kept for a detached session, and cancels aimed at calls running on another replica.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Scope of the holder records: name = session id, body = [`Holder`].
pub(super) const SESSION_SCOPE: &str = "ws-session";

/// How often a replica rewrites the holder records of the sessions attached to it.
pub(super) const REFRESH: Duration = Duration::from_secs(10);

/// Scope of the replicas' heartbeats: name = replica id; a replica whose record lapsed has stopped.
pub(super) const REPLICA_SCOPE: &str = "ws-replica";

/// How often a replica says it is alive, and how long after its last word it counts as stopped.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(1);
pub(super) const HEARTBEAT_LAPSE: Duration = Duration::from_secs(4);

/// How often a session polls the store: for frames of calls running on another replica (attached sessions that
/// came from elsewhere) and for cancels aimed at its own calls (detached sessions with calls running).
pub(super) const POLL: Duration = Duration::from_millis(400);

/// How long past the longest call deadline a resumed session keeps polling for another replica's results.
pub(super) const POLL_MARGIN: Duration = Duration::from_secs(15);

/// How long past the grace period a kept frame stays in the store (the resume that collects it must come within
/// the grace period of the replica holding the session).
pub(super) const PENDING_MARGIN: Duration = Duration::from_secs(60);

/// Who holds a session: the replica whose process has it (attached, or within its grace period), and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Holder {
    pub replica: String,
    /// [`owner`] of the token that opened the session; a record without one (an older version wrote it) is
    /// resumed by nobody.
    #[serde(default)]
    pub owner: Option<String>,
}

impl Holder {
    pub(super) fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` for a body this version cannot read (treated as no holder).
    pub(super) fn decode(body: &str) -> Option<Self> {
        serde_json::from_str(body).ok()
    }
}

/// One kept frame as stored: its text and whether it is final (counted in `hello_ack`'s `pending`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct KeptBody {
    #[serde(rename = "final")]
    pub is_final: bool,
    pub frame: String,
}

impl KeptBody {
    pub(super) fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(super) fn decode(body: &str) -> Option<Self> {
        serde_json::from_str(body).ok()
    }
}

/// The scope of session `id`'s kept frames.
pub(super) fn pending_scope(id: &str) -> String {
    format!("ws-pending:{id}")
}

/// The scope of cancels aimed at session `id`'s calls (name = the request id's JSON text).
pub(super) fn cancel_scope(id: &str) -> String {
    format!("ws-cancel:{id}")
}

/// A kept frame's record name: names sort in delivery order (time, then replica, then that replica's sequence),
/// and no two replicas make the same name.
pub(super) fn kept_name(now_ms: i64, replica: &str, seq: u64) -> String {
    format!("{:016}-{replica}-{seq:012}", now_ms.max(0))
}

/// A session's owner as the store keeps it: a SHA-256 of the token its client authenticated with (never the
/// token itself), so a resume proves the same token without the records holding it.
pub(super) fn owner(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"exai ws session owner\0")
        .chain_update(token.as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What logs and records show of a session id (a resume credential): its first 8 characters.
pub(super) fn tag(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A random id for this process's replica.
pub(super) fn new_replica_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_names_sort_in_delivery_order() {
        let r = "r";
        let mut names = vec![
            kept_name(1_700_000_000_123, r, 10),
            kept_name(1_700_000_000_123, r, 9),
            kept_name(999, r, 11),
            kept_name(1_700_000_000_124, r, 1),
        ];
        names.sort();
        assert_eq!(
            names,
            [
                kept_name(999, r, 11),
                kept_name(1_700_000_000_123, r, 9),
                kept_name(1_700_000_000_123, r, 10),
                kept_name(1_700_000_000_124, r, 1),
            ]
        );
        assert_ne!(kept_name(5, "a", 1), kept_name(5, "b", 1));
    }

    #[test]
    fn bodies_round_trip_and_bad_ones_are_none() {
        let holder = Holder {
            replica: "abc".into(),
            owner: Some(owner("t")),
        };
        assert_eq!(Holder::decode(&holder.encode()), Some(holder));
        let older = Holder::decode(r#"{"replica":"abc"}"#).unwrap();
        assert_eq!(older.owner, None, "a record of an older version has no owner");
        assert_ne!(owner("a"), owner("b"));
        assert_eq!(owner("a").len(), 64);
        assert_eq!(tag("0123456789abcdef"), "01234567");
        assert_eq!(Holder::decode("not json"), None);
        let kept = KeptBody {
            is_final: true,
            frame: r#"{"op":"error"}"#.into(),
        };
        assert_eq!(KeptBody::decode(&kept.encode()), Some(kept));
        assert_eq!(KeptBody::decode("{}"), None);
    }
}
