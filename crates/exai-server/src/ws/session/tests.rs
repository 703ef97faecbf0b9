//! The session manager's tests: resuming on this replica and on another one sharing a (SQLite) store.

use super::*;
use crate::ws::outbox::{self, Inbox};
use exai_store::SqliteStore;

/// The owner every session of these tests has (one token), unless a test says otherwise.
const OWNER: &str = "owner-of-the-token";

/// A queue with room for everything these tests send.
fn queue() -> (Outbox, Inbox) {
    outbox::outbox(CAPS)
}

const CAPS: Caps = Caps {
    frames: 1000,
    bytes: 1 << 20,
};

fn conn(id: u64, tx: Outbox) -> Conn {
    conn_kicked(id, tx, CancellationToken::new())
}

fn conn_kicked(id: u64, tx: Outbox, kick: CancellationToken) -> Conn {
    Conn {
        id,
        client: [127, 0, 0, 1].into(),
        tx,
        kick,
    }
}

fn texts(rx: &mut Inbox) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Out::Text { text, .. }) = rx.try_recv() {
        out.push(text);
    }
    out
}

async fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(dir.path()).await.unwrap())
}

fn sessions(max: usize, grace: Duration, store: &Arc<dyn Store>) -> Arc<Sessions> {
    let window = Duration::from_secs(30);
    let caps = SessionCaps {
        max,
        max_detached_per_client: 32,
        kept: CAPS,
    };
    Sessions::new(caps, grace, window, Arc::clone(store), CancellationToken::new())
}

/// Waits (bounded) until replica `sessions` has said it is alive.
async fn alive(sessions: &Sessions) {
    for _ in 0..100 {
        if sessions.ctx.alive(&sessions.ctx.replica).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no heartbeat");
}

/// Waits (bounded) until replica `sessions` no longer says it is alive (after its shutdown).
async fn stopped(sessions: &Sessions) {
    for _ in 0..100 {
        if !sessions.ctx.alive(&sessions.ctx.replica).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the heartbeat outlived the shutdown");
}

/// Waits (bounded) until session `id` has `n` kept frames in the store.
async fn stored(store: &Arc<dyn Store>, id: &str, n: usize) {
    for _ in 0..100 {
        let records = store.take_shared(&shared::pending_scope(id), now_ms()).await.unwrap();
        let count = records.len();
        for r in records {
            store
                .put_shared(&shared::pending_scope(id), &r.name, &r.body, r.expires_at_ms)
                .await
                .unwrap();
        }
        if count >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} kept frames never reached the store");
}

#[tokio::test]
async fn results_kept_while_away_arrive_after_the_hello_ack_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let sessions = sessions(1, Duration::from_secs(60), &store);
    let (tx, mut rx) = queue();
    let s = sessions.attach(None, OWNER, conn(1, tx)).await.unwrap();
    assert!(texts(&mut rx)[0].contains("\"resumed\":false"));
    let (tx2, _rx2) = queue();
    let refused = sessions.attach(None, OWNER, conn(2, tx2)).await.err().unwrap();
    assert!(refused.contains("EXAI_WS_MAX_SESSIONS"), "{refused}");
    drop(rx);
    sessions.detach(&s, 1);
    s.deliver("progress".into(), Kind::Live);
    s.deliver("done".into(), Kind::Keep);
    s.deliver("result".into(), Kind::Final);
    // The resume may come while the store writes are under way: each frame still arrives exactly once.
    let (tx, mut rx) = queue();
    let again = sessions.attach(Some(&s.id), OWNER, conn(3, tx)).await.unwrap();
    assert_eq!(again.id, s.id);
    let got = texts(&mut rx);
    assert!(
        got[0].contains("\"resumed\":true") && got[0].contains("\"pending\":1"),
        "{got:?}"
    );
    assert_eq!(&got[1..], ["done", "result"]);
    // The writes that were under way when the resume took the frames delete what they wrote (given a
    // generous second to finish; a copy left behind would be delivered twice).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let left = store
        .take_shared(&shared::pending_scope(&s.id), now_ms())
        .await
        .unwrap();
    assert_eq!(left, [], "no store copy is left to deliver twice");
}

#[tokio::test]
async fn a_session_not_resumed_within_the_grace_period_ends_and_cancels_its_calls() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let sessions = sessions(4, Duration::from_secs(1), &store);
    let (tx, _rx) = queue();
    let s = sessions.attach(None, OWNER, conn(1, tx)).await.unwrap();
    assert!(
        store
            .shared(shared::SESSION_SCOPE, &s.id, now_ms())
            .await
            .unwrap()
            .is_some()
    );
    let call = s.begin_call("\"r1\"").unwrap();
    assert!(s.begin_call("\"r1\"").is_none());
    sessions.detach(&s, 1);
    tokio::time::timeout(Duration::from_secs(10), call.cancelled())
        .await
        .expect("the call is cancelled when the grace period ends");
    assert_eq!(sessions.len(), 0);
    assert_eq!(
        store.shared(shared::SESSION_SCOPE, &s.id, now_ms()).await.unwrap(),
        None
    );
    let (tx, mut rx) = queue();
    sessions.attach(Some(&s.id), OWNER, conn(2, tx)).await.unwrap();
    assert!(texts(&mut rx)[0].contains("\"resumed\":false"));
}

#[tokio::test]
async fn a_session_moves_to_another_replica_with_its_kept_and_its_late_results() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let a = sessions(4, Duration::from_secs(1), &store);
    let b = sessions(4, Duration::from_secs(1), &store);
    alive(&a).await;
    let (tx, rx) = queue();
    let s = a.attach(None, OWNER, conn(1, tx)).await.unwrap();
    let running = s.begin_call("\"late\"").unwrap();
    let cancelled = s.begin_call("\"stop\"").unwrap();
    drop(rx);
    a.detach(&s, 1);
    s.deliver("done".into(), Kind::Keep);
    s.deliver("result".into(), Kind::Final);
    stored(&store, &s.id, 2).await;

    let (tx, mut rx) = queue();
    let moved = b.attach(Some(&s.id), OWNER, conn(1, tx)).await.unwrap();
    assert_eq!(moved.id, s.id);
    let got = texts(&mut rx);
    assert!(
        got[0].contains("\"resumed\":true") && got[0].contains("\"pending\":1"),
        "{got:?}"
    );
    assert_eq!(&got[1..], ["done", "result"]);

    // A cancel sent to B reaches the call on A; A's grace period ends without cancelling the other call.
    moved.cancel_elsewhere("\"stop\"");
    tokio::time::timeout(Duration::from_secs(10), cancelled.cancelled())
        .await
        .expect("the cancel mark reaches replica A");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!running.is_cancelled(), "a call of a moved session runs to its end");
    assert_eq!(a.len(), 0, "replica A let the session go");

    // The call finishing on A: its frames reach the client on B.
    s.end_call("\"late\"");
    s.deliver("late done".into(), Kind::Keep);
    s.deliver("late result".into(), Kind::Final);
    let mut late = Vec::new();
    for _ in 0..100 {
        late.extend(texts(&mut rx));
        if late.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(late, ["late done", "late result"]);
}

#[tokio::test]
async fn a_session_held_by_a_stopped_replica_delivers_what_finished_then_ends_with_4006() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let stop_a = CancellationToken::new();
    let window = Duration::from_secs(30);
    let caps = SessionCaps {
        max: 4,
        max_detached_per_client: 32,
        kept: CAPS,
    };
    let a = Sessions::new(
        caps,
        Duration::from_secs(30),
        window,
        Arc::clone(&store),
        stop_a.clone(),
    );
    let b = sessions(4, Duration::from_secs(30), &store);
    alive(&a).await;
    let (tx, rx) = queue();
    let s = a.attach(None, OWNER, conn(1, tx)).await.unwrap();
    drop(rx);
    a.detach(&s, 1);
    s.deliver("result".into(), Kind::Final);
    stored(&store, &s.id, 1).await;
    stop_a.cancel();
    stopped(&a).await;
    let (tx, mut rx) = queue();
    let moved = b.attach(Some(&s.id), OWNER, conn(1, tx)).await.unwrap();
    assert_eq!(moved.id, s.id);
    let mut got = Vec::new();
    while let Ok(out) = rx.try_recv() {
        got.push(match out {
            Out::Text { text, .. } => text,
            Out::Close { code, .. } => code.to_string(),
            Out::Ping => "ping".into(),
        });
    }
    assert!(
        got[0].contains("\"resumed\":true") && got[0].contains("\"pending\":1"),
        "{got:?}"
    );
    assert_eq!(&got[1..], ["result", "4006"]);
    let (tx, mut rx) = queue();
    let fresh = b.attach(Some(&s.id), OWNER, conn(2, tx)).await.unwrap();
    assert_ne!(fresh.id, s.id);
    assert!(texts(&mut rx)[0].contains("\"resumed\":false"));

    // With nothing finished there, a session of a stopped replica is not resumed at all.
    let c = sessions(4, Duration::from_secs(30), &store);
    alive(&c).await;
    let (tx, _rx) = queue();
    let empty = c.attach(None, OWNER, conn(1, tx)).await.unwrap();
    c.shutdown.cancel();
    stopped(&c).await;
    let (tx, mut rx) = queue();
    let fresh = b.attach(Some(&empty.id), OWNER, conn(3, tx)).await.unwrap();
    assert_ne!(fresh.id, empty.id);
    let got = texts(&mut rx);
    assert_eq!(got.len(), 1, "no 4006 dance: {got:?}");
    assert!(got[0].contains("\"resumed\":false"), "{got:?}");
}

#[tokio::test]
async fn only_the_token_that_opened_a_session_resumes_it_here_or_on_another_replica() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let a = sessions(4, Duration::from_secs(60), &store);
    let b = sessions(4, Duration::from_secs(60), &store);
    alive(&a).await;
    let (mine, theirs) = (shared::owner("token A"), shared::owner("token B"));
    // The victim stays attached: a session taken over would cancel its `kick`.
    let kick = CancellationToken::new();
    let (tx, _victim) = queue();
    let s = a.attach(None, &mine, conn_kicked(1, tx, kick.clone())).await.unwrap();

    for (replica, conn) in [(&a, 2), (&b, 3)] {
        let (tx, mut rx) = queue();
        let other = replica
            .attach(Some(&s.id), &theirs, conn_kicked(conn, tx, CancellationToken::new()))
            .await
            .unwrap();
        assert_ne!(other.id, s.id, "another token gets a session of its own");
        assert!(texts(&mut rx)[0].contains("\"resumed\":false"));
    }
    assert!(!kick.is_cancelled(), "the session's own connection was not taken over");

    let (tx, mut rx) = queue();
    let same = b.attach(Some(&s.id), &mine, conn(4, tx)).await.unwrap();
    assert_eq!(same.id, s.id, "the same token resumes it, on another replica too");
    assert!(texts(&mut rx)[0].contains("\"resumed\":true"));
}

#[tokio::test]
async fn a_client_keeps_few_disconnected_sessions_and_empty_ones_make_room_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let caps = SessionCaps {
        max: 3,
        max_detached_per_client: 2,
        kept: CAPS,
    };
    let window = Duration::from_secs(30);
    let sessions = Sessions::new(
        caps,
        Duration::from_secs(60),
        window,
        Arc::clone(&store),
        CancellationToken::new(),
    );
    let mut gone = Vec::new();
    for id in 0..3 {
        let (tx, _rx) = queue();
        let s = sessions.attach(None, OWNER, conn(id, tx)).await.unwrap();
        sessions.detach(&s, id);
        gone.push(s);
    }
    assert_eq!(
        sessions.len(),
        2,
        "a third disconnected session of one address ends its oldest"
    );
    assert!(gone[0].ended.is_cancelled());

    let other = |id, tx| Conn {
        client: [10, 0, 0, 2].into(),
        ..conn(id, tx)
    };
    let (tx, _a) = queue();
    sessions.attach(None, OWNER, other(10, tx)).await.unwrap();
    gone[2].begin_call("\"x\"").unwrap();
    let (tx, _b) = queue();
    sessions.attach(None, OWNER, other(11, tx)).await.unwrap();
    assert!(
        gone[1].ended.is_cancelled(),
        "at the cap, a disconnected session that never ran a call made room"
    );
    assert!(!gone[2].ended.is_cancelled());
    let (tx, _c) = queue();
    let refused = sessions.attach(None, OWNER, other(12, tx)).await.err().unwrap();
    assert!(
        refused.contains("EXAI_WS_MAX_SESSIONS"),
        "one that ran a call is kept: {refused}"
    );
}
