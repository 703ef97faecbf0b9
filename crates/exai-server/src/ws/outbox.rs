//! A connection's outbound queue, bounded in frames and in bytes (`EXAI_WS_MAX_QUEUED_FRAMES` / `_BYTES`): a client
//! that stops reading cannot make the daemon hold its replies without limit. A full queue says so once (`full`),
//! and the writer then closes the connection with [`NOT_READING`].

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::session::Out;

/// The close code for a client whose outbound queue filled up (it does not read what it asked for).
pub(super) const NOT_READING: u16 = 4007;

/// How much one connection's queue may hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Caps {
    pub frames: usize,
    pub bytes: usize,
}

impl Caps {
    /// The close reason for a queue that overflowed these caps.
    pub(super) fn reason(&self) -> String {
        format!(
            "not reading: outbound queue full ({} frames / {} bytes; EXAI_WS_MAX_QUEUED_FRAMES / _BYTES)",
            self.frames, self.bytes
        )
    }
}

struct Shared {
    caps: Caps,
    /// Text frames and their bytes queued now.
    queued: Mutex<(usize, usize)>,
    /// Cancelled the first time a frame did not fit.
    full: CancellationToken,
}

/// The sending side, cloned by everything that writes to the connection.
#[derive(Clone)]
pub(super) struct Outbox {
    tx: UnboundedSender<Out>,
    shared: Arc<Shared>,
}

/// The writer's side.
pub(super) struct Inbox {
    rx: UnboundedReceiver<Out>,
    shared: Arc<Shared>,
}

/// A new queue bounded by `caps`.
pub(super) fn outbox(caps: Caps) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        caps,
        queued: Mutex::default(),
        full: CancellationToken::new(),
    });
    let inbox = Inbox {
        rx,
        shared: Arc::clone(&shared),
    };
    (Outbox { tx, shared }, inbox)
}

fn text_len(out: &Out) -> Option<usize> {
    match out {
        Out::Text { text, .. } => Some(text.len()),
        Out::Ping | Out::Close { .. } => None,
    }
}

impl Outbox {
    /// Queues `out`, or gives it back when the queue is full (the connection is then being closed as not reading)
    /// or the writer has gone. A frame always fits into an empty queue, however large; control frames always fit.
    pub(super) fn send(&self, out: Out) -> Result<(), Out> {
        self.push(out, false)
    }

    /// Queues `out` past the caps: for the `hello_ack` and the frames a resume delivers, which the session already
    /// bounds (the next frames then wait until the client has read these).
    pub(super) fn force(&self, out: Out) -> Result<(), Out> {
        self.push(out, true)
    }

    fn push(&self, out: Out, force: bool) -> Result<(), Out> {
        let Some(len) = text_len(&out) else {
            return self.tx.send(out).map_err(|e| e.0);
        };
        {
            let mut queued = self.shared.queued.lock().unwrap_or_else(|e| e.into_inner());
            let caps = self.shared.caps;
            let over = queued.0 > 0 && (queued.0 >= caps.frames || queued.1 + len > caps.bytes);
            if self.shared.full.is_cancelled() || (over && !force) {
                drop(queued);
                self.overflow();
                return Err(out);
            }
            queued.0 += 1;
            queued.1 += len;
        }
        self.tx.send(out).map_err(|e| {
            self.shared.release(len);
            e.0
        })
    }

    /// Whether a frame did not fit: the connection is being closed as not reading.
    pub(super) fn is_full(&self) -> bool {
        self.shared.full.is_cancelled()
    }

    fn overflow(&self) {
        if !self.shared.full.is_cancelled() {
            self.shared.full.cancel();
            metrics::counter!("exai_ws_outbound_full_total").increment(1);
        }
    }
}

impl Shared {
    fn release(&self, len: usize) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        queued.0 = queued.0.saturating_sub(1);
        queued.1 = queued.1.saturating_sub(len);
    }
}

impl Inbox {
    /// The next item; `None` once every sender has gone (or the queue was closed and is empty).
    pub(super) async fn recv(&mut self) -> Option<Out> {
        let out = self.rx.recv().await?;
        if let Some(len) = text_len(&out) {
            self.shared.release(len);
        }
        Some(out)
    }

    /// Cancelled once a frame did not fit.
    pub(super) fn full(&self) -> CancellationToken {
        self.shared.full.clone()
    }

    #[cfg(test)]
    fn is_full(&self) -> bool {
        self.shared.full.is_cancelled()
    }

    pub(super) fn caps(&self) -> Caps {
        self.shared.caps
    }

    #[cfg(test)]
    pub(super) fn try_recv(&mut self) -> Result<Out, mpsc::error::TryRecvError> {
        let out = self.rx.try_recv()?;
        if let Some(len) = text_len(&out) {
            self.shared.release(len);
        }
        Ok(out)
    }

    /// Refuses every further item (senders get theirs back); what is queued can still be received.
    pub(super) fn close(&mut self) {
        self.rx.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::session::Kind;

    fn text(n: usize) -> Out {
        Out::Text {
            text: "x".repeat(n),
            kind: Kind::Live,
        }
    }

    #[tokio::test]
    async fn bounded_in_frames_and_bytes_and_a_big_frame_fits_an_empty_queue() {
        let (tx, mut rx) = outbox(Caps { frames: 3, bytes: 100 });
        tx.send(text(500)).unwrap();
        assert!(tx.send(text(1)).is_err(), "the bytes are over: nothing more fits");
        assert!(rx.is_full());
        assert!(tx.send(Out::Ping).is_ok(), "control frames always fit");
        rx.recv().await.unwrap();
        assert!(
            tx.send(text(1)).is_err(),
            "once full, the connection is closing: nothing more"
        );

        let (tx, mut rx) = outbox(Caps { frames: 2, bytes: 100 });
        tx.send(text(10)).unwrap();
        tx.send(text(10)).unwrap();
        assert!(!rx.is_full());
        assert!(tx.send(text(10)).is_err(), "the frames are over");
        assert!(tx.force(text(10)).is_err(), "a full queue takes nothing, forced or not");
        rx.close();
        assert!(rx.recv().await.is_some());

        let (tx, mut rx) = outbox(Caps { frames: 2, bytes: 100 });
        for _ in 0..5 {
            tx.force(text(50)).unwrap();
        }
        assert!(!rx.is_full(), "forced frames go past the caps");
        for _ in 0..5 {
            rx.recv().await.unwrap();
        }
        tx.send(text(50)).unwrap();
        tx.send(text(50)).unwrap();
        assert!(
            tx.send(text(1)).is_err(),
            "the counts went back down as the writer took frames"
        );
    }
}
