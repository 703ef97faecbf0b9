//! Starting the observers of `exai serve`: the alert rules (`alerts.enabled`) and the AI auditor
//! (`auditor.enabled`), spawned on the app's task tracker so shutdown waits for them.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{alerts, auditor};
use crate::app::App;

/// Spawns the alert loop and the auditor, each when enabled; both stop when `shutdown` is cancelled and are
/// tracked by `app.background` (the daemon closes and waits for it on the way out). The auditor's channel is
/// attached before this returns, so no call made afterwards is missed.
pub fn start(app: Arc<App>, shutdown: CancellationToken) {
    if app.config.alerts.enabled {
        alerts::export_rules();
        app.background.spawn(alerts::run(app.clone(), shutdown.clone()));
    }
    if app.config.auditor.enabled {
        let (tx, rx) = mpsc::channel(app.config.auditor.queue);
        app.observe.attach_auditor(tx);
        app.background.spawn(auditor::run(app.clone(), rx, shutdown));
    }
}
