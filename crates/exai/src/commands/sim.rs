//! `exai sim`: runs the upstream simulator (a fake GLM/Kimi chat-completions server) until Ctrl-C.
//! Prints `exai-sim listening on http://ADDR` once bound; every response carries `x-exai-simulator: 1`.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use exai_core::config::Config;
use exai_sim::{LatencyProfile, SimConfig, Simulator};

pub async fn run(config: &Config, host: IpAddr, port: u16, profile: LatencyProfile) -> anyhow::Result<()> {
    crate::logging::init(&config.log);
    let addr = SocketAddr::new(host, port);
    let sim = Simulator::start(addr, SimConfig::default().with_latency(profile))
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "exai-sim listening on {} (latency {profile}; Kimi-style base {}, GLM-style base {})",
        sim.url(),
        sim.base_url_v1(),
        sim.base_url_glm()
    )?;
    out.flush()?;
    super::shutdown_on_signal().cancelled().await;
    sim.shutdown().await;
    Ok(())
}
