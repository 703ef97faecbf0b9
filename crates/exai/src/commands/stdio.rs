//! `exai stdio`: one MCP client on stdin/stdout.

use exai_core::config::Config;

pub async fn run(config: Config, options: super::Options) -> anyhow::Result<()> {
    let started = super::start(config, options, "stdio").await?;
    let app = started.app.clone();
    let served = exai_server::stdio::serve(app.clone(), super::shutdown_on_signal()).await;
    // Calls still being recorded finish first.
    app.background.close();
    app.background.wait().await;
    served?;
    Ok(())
}
