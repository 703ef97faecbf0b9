//! `exai sim`: runs the upstream simulator (a fake GLM/Kimi chat-completions server) until Ctrl-C.
//! Prints `exai-sim listening on http://ADDR` once bound; every response carries `x-exai-simulator: 1`.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use exai_core::config::Config;
use exai_sim::{LatencyProfile, Script, SimConfig, Simulator};

pub async fn run(
    config: &Config,
    host: IpAddr,
    port: u16,
    profile: LatencyProfile,
    model_scripts: &[String],
) -> anyhow::Result<()> {
    crate::logging::init(&config.log);
    let addr = SocketAddr::new(host, port);
    let mut sim_config = SimConfig::default().with_latency(profile);
    for arg in model_scripts {
        let (model, json) = arg
            .split_once('=')
            .with_context(|| format!("--model-script expects MODEL=JSON, got `{arg}`"))?;
        let script: Script =
            serde_json::from_str(json).with_context(|| format!("--model-script for `{model}`: not a script"))?;
        sim_config = sim_config.with_model_script(model, script);
    }
    let sim = Simulator::start(addr, sim_config)
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
