//! MCP over stdin/stdout, what desktop assistants launch. Logs never go to stdout here.

use std::sync::Arc;

use exai_core::app::App;
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use crate::ExaiHandler;

/// Serves one client on stdin/stdout until it disconnects or `shutdown` fires.
pub async fn serve(app: Arc<App>, shutdown: CancellationToken) -> Result<(), std::io::Error> {
    let service = ExaiHandler::new(app)
        .serve_with_ct(rmcp::transport::stdio(), shutdown)
        .await
        .map_err(std::io::Error::other)?;
    service.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}
