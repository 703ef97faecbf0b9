//! The correlation table: every call and `list_tools` the shim has in flight, keyed by its `request_id`, so each
//! frame goes to the call it names (a progress frame is never mistaken for a result) and ids are never reused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// A `list_tools` answer: the tool definitions, or why there are none.
pub type ToolList = Result<Vec<Value>, String>;

/// What happens to one call, in order: any number of `Progress`, then exactly one final event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Progress(String),
    /// A `call_tool_res` frame (the whole frame: `outputs`, `structured`, `is_error`).
    Result(Value),
    /// An `error` frame for this call.
    Error {
        code: String,
        message: String,
    },
    /// The shim could not get an answer (the daemon lost the call, refused the session, …).
    Failed(String),
}

impl Event {
    pub fn is_final(&self) -> bool {
        !matches!(self, Event::Progress(_))
    }
}

#[derive(Debug)]
pub struct Table {
    /// Unique per shim process (random), so ids never collide across shims sharing a daemon.
    prefix: String,
    next: AtomicU64,
    calls: Mutex<HashMap<String, mpsc::UnboundedSender<Event>>>,
    lists: Mutex<HashMap<String, oneshot::Sender<ToolList>>>,
}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

impl Table {
    pub fn new() -> Self {
        Self {
            prefix: format!("shim-{}-{:08x}", std::process::id(), fastrand::u32(..)),
            next: AtomicU64::new(1),
            calls: Mutex::new(HashMap::new()),
            lists: Mutex::new(HashMap::new()),
        }
    }

    /// A request id never handed out before by this shim.
    pub fn fresh_id(&self) -> String {
        format!("{}-{}", self.prefix, self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Registers a call; its events arrive on the receiver.
    pub fn open_call(&self) -> (String, mpsc::UnboundedReceiver<Event>) {
        let id = self.fresh_id();
        let (tx, rx) = mpsc::unbounded_channel();
        self.calls.lock().unwrap().insert(id.clone(), tx);
        (id, rx)
    }

    pub fn open_list(&self) -> (String, oneshot::Receiver<ToolList>) {
        let id = self.fresh_id();
        let (tx, rx) = oneshot::channel();
        self.lists.lock().unwrap().insert(id.clone(), tx);
        (id, rx)
    }

    /// Forgets a call (it ended, or its caller went away); `true` when it was still open.
    pub fn close_call(&self, id: &str) -> bool {
        self.calls.lock().unwrap().remove(id).is_some()
    }

    pub fn close_list(&self, id: &str) {
        self.lists.lock().unwrap().remove(id);
    }

    /// Delivers an event to the call it belongs to; a final event closes it. `false` when no open call has that id.
    pub fn deliver(&self, id: &str, event: Event) -> bool {
        let mut calls = self.calls.lock().unwrap();
        let sent = match calls.get(id) {
            Some(tx) => tx.send(event.clone()).is_ok(),
            None => return false,
        };
        if !sent || event.is_final() {
            calls.remove(id);
        }
        true
    }

    /// Answers a `list_tools`: the one with this id, or every waiting one when the daemon echoed no id.
    pub fn deliver_list(&self, id: Option<&str>, tools: ToolList) -> bool {
        let mut lists = self.lists.lock().unwrap();
        match id {
            Some(id) => match lists.remove(id) {
                Some(tx) => {
                    let _ = tx.send(tools);
                    true
                }
                None => false,
            },
            None => {
                let any = !lists.is_empty();
                for (_, tx) in lists.drain() {
                    let _ = tx.send(tools.clone());
                }
                any
            }
        }
    }

    pub fn has_list(&self, id: &str) -> bool {
        self.lists.lock().unwrap().contains_key(id)
    }

    /// Fails every open call and list with `reason` (the daemon lost them); returns how many calls there were.
    pub fn fail_all(&self, reason: &str) -> usize {
        let calls: Vec<_> = self.calls.lock().unwrap().drain().collect();
        for (_, tx) in &calls {
            let _ = tx.send(Event::Failed(reason.to_owned()));
        }
        for (_, tx) in self.lists.lock().unwrap().drain() {
            let _ = tx.send(Err(reason.to_owned()));
        }
        calls.len()
    }

    /// Fails the open `list_tools` requests only (their connection dropped; calls may still resume).
    pub fn fail_lists(&self, reason: &str) {
        for (_, tx) in self.lists.lock().unwrap().drain() {
            let _ = tx.send(Err(reason.to_owned()));
        }
    }

    /// The ids of every open call.
    pub fn open_ids(&self) -> Vec<String> {
        self.calls.lock().unwrap().keys().cloned().collect()
    }

    pub fn open_calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_never_reused() {
        let table = Table::new();
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| table.fresh_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert_ne!(
            Table::new().fresh_id(),
            Table::new().fresh_id(),
            "two shims must not share ids"
        );
    }

    #[test]
    fn frames_reach_the_call_they_name_and_the_final_one_closes_it() {
        let table = Table::new();
        let (a, mut rx_a) = table.open_call();
        let (b, mut rx_b) = table.open_call();
        assert!(table.deliver(&b, Event::Progress("b1".into())));
        assert!(table.deliver(&a, Event::Progress("a1".into())));
        assert!(table.deliver(&a, Event::Result(json!({"outputs": []}))));
        assert!(!table.deliver(&a, Event::Progress("late".into())), "a is closed");
        assert_eq!(rx_a.try_recv().unwrap(), Event::Progress("a1".into()));
        assert!(matches!(rx_a.try_recv().unwrap(), Event::Result(_)));
        assert_eq!(rx_b.try_recv().unwrap(), Event::Progress("b1".into()));
        assert!(rx_b.try_recv().is_err(), "b is still running");
        assert_eq!(table.open_calls(), 1);
        assert!(!table.deliver("unknown", Event::Progress("x".into())));
    }

    #[test]
    fn a_lost_session_fails_every_open_call() {
        let table = Table::new();
        let (_, mut rx1) = table.open_call();
        let (_, mut rx2) = table.open_call();
        let (_, list) = table.open_list();
        assert_eq!(table.fail_all("lost"), 2);
        assert_eq!(rx1.try_recv().unwrap(), Event::Failed("lost".into()));
        assert_eq!(rx2.try_recv().unwrap(), Event::Failed("lost".into()));
        assert_eq!(list.blocking_recv().unwrap(), Err("lost".into()));
        assert_eq!(table.open_calls(), 0);
    }

    #[test]
    fn list_results_match_by_id_or_go_to_every_waiter() {
        let table = Table::new();
        let (id, rx) = table.open_list();
        let (_, rx2) = table.open_list();
        assert!(table.deliver_list(Some(&id), Ok(vec![json!({"name": "chat"})])));
        assert_eq!(rx.blocking_recv().unwrap().unwrap().len(), 1);
        assert!(table.deliver_list(None, Ok(vec![])));
        assert_eq!(rx2.blocking_recv().unwrap(), Ok(vec![]));
        assert!(!table.deliver_list(None, Ok(vec![])));
    }
}
