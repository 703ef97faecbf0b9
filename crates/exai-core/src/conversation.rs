//! Conversation threads behind `continuation_id`: open (or start) a thread, turn its stored turns into
//! messages trimmed newest-first to a token budget, and record new turns with the configured expiry.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::app::App;
use crate::error::ToolError;
use crate::provider::{Message, Role};
use crate::store::Turn;

/// Rough tokens for a text: about 4 characters each (enough for budgeting, not for billing).
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An open thread: its id and the turns stored so far (oldest first).
#[derive(Debug, Clone)]
pub struct Thread {
    pub id: String,
    pub turns: Vec<Turn>,
}

impl Thread {
    /// Every file earlier turns referenced, first mention first, without repeats.
    pub fn files(&self) -> Vec<String> {
        crate::files::lists::unique(self.turns.iter().flat_map(|t| &t.files))
    }

    /// The stored turns as chat messages, dropping the oldest until they fit `budget_tokens`.
    pub fn history(&self, budget_tokens: usize) -> Vec<Message> {
        let mut used = 0;
        let mut kept: Vec<Message> = Vec::new();
        for turn in self.turns.iter().rev() {
            let cost = estimate_tokens(&turn.content);
            if used + cost > budget_tokens {
                break;
            }
            used += cost;
            kept.push(Message::text(turn.role, turn.content.clone()));
        }
        kept.reverse();
        // A history must not start with an orphaned assistant answer.
        while kept.first().is_some_and(|m| m.role == Role::Assistant) {
            kept.remove(0);
        }
        kept
    }
}

/// Opens the thread `id` names, or starts a new one. An unknown or expired id is an error that tells the
/// caller to start a new conversation.
pub async fn open(app: &App, tool: &str, id: Option<&str>) -> Result<Thread, ToolError> {
    let Some(id) = id.map(str::trim).filter(|id| !id.is_empty()) else {
        return Ok(Thread {
            id: uuid::Uuid::new_v4().to_string(),
            turns: Vec::new(),
        });
    };
    let invalid = |message: String| ToolError::InvalidArguments {
        tool: tool.to_owned(),
        message,
    };
    let found = app
        .store
        .conversation(id)
        .await
        .map_err(|e| ToolError::Unavailable(e.to_string()))?;
    match found {
        None => Err(invalid(format!(
            "continuation_id `{id}` is unknown (never issued, or already purged); start a new conversation by \
             omitting continuation_id"
        ))),
        Some(c) if c.expires_at_ms < now_ms() => Err(invalid(format!(
            "continuation_id `{id}` expired {} minutes ago (threads last {} minutes after their last turn); start a \
             new conversation by omitting continuation_id",
            (now_ms() - c.expires_at_ms) / 60_000,
            app.config.conversations.ttl.as_secs() / 60
        ))),
        Some(c) => Ok(Thread {
            id: c.id,
            turns: c.turns,
        }),
    }
}

/// Appends `turns` to the thread and pushes its expiry out by `conversations.ttl_secs`.
pub async fn record(app: &App, thread_id: &str, turns: &[Turn]) -> Result<(), ToolError> {
    let c = &app.config.conversations;
    let expires = now_ms() + c.ttl.as_millis() as i64;
    app.store
        .append_turns(thread_id, turns, expires, c.max_turns.get() as usize)
        .await
        .map_err(|e| ToolError::Unavailable(format!("could not save the conversation: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: Role, content: &str, files: &[&str]) -> Turn {
        Turn {
            role,
            content: content.to_owned(),
            files: files.iter().map(|f| (*f).to_owned()).collect(),
            tool: "chat".to_owned(),
            provider: None,
            model: None,
            created_at_ms: 0,
        }
    }

    #[test]
    fn history_keeps_the_newest_turns_that_fit_and_never_starts_with_an_answer() {
        let t = Thread {
            id: "x".into(),
            turns: vec![
                turn(Role::User, &"a".repeat(400), &[]),
                turn(Role::Assistant, &"b".repeat(400), &[]),
                turn(Role::User, &"c".repeat(40), &[]),
                turn(Role::Assistant, &"d".repeat(40), &[]),
            ],
        };
        assert_eq!(t.history(10_000).len(), 4);
        let trimmed = t.history(130);
        assert_eq!(
            trimmed.len(),
            2,
            "the 100-token answer no longer fits; the orphan is dropped"
        );
        assert_eq!(trimmed[0].role, Role::User);
        assert!(t.history(5).is_empty());
    }

    #[test]
    fn files_are_collected_once_in_first_mention_order() {
        let t = Thread {
            id: "x".into(),
            turns: vec![
                turn(Role::User, "q", &["/a", "/b"]),
                turn(Role::User, "q", &["/b", "/c"]),
            ],
        };
        assert_eq!(t.files(), ["/a", "/b", "/c"]);
    }
}
