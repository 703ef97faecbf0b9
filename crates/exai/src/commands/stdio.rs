//! `exai stdio`: one MCP client on stdin/stdout.

use exai_core::config::Config;

pub async fn run(config: Config, options: super::Options) -> anyhow::Result<()> {
    let started = super::start(config, options, "stdio").await?;
    let app = started.app.clone();
    exai_server::stdio::serve(app, super::shutdown_on_signal()).await?;
    Ok(())
}
