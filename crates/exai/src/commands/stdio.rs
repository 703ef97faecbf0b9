//! `exai stdio`: one MCP client on stdin/stdout.

use exai_core::config::Config;

pub async fn run(config: Config, fixtures: bool) -> anyhow::Result<()> {
    let app = super::start(config, fixtures, "stdio").await?;
    exai_server::stdio::serve(app, super::shutdown_on_signal()).await?;
    Ok(())
}
