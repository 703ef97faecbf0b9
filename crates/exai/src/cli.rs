//! The command line: `exai stdio`, `exai serve`, `exai config check`, `exai tools`, `exai loadtest`,
//! `exai baseline`, `exai --version`.
//! Flags override configuration; every flag names the config key it sets.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "exai",
    version,
    // A repeated flag takes its last value (wrappers can override what they were given).
    args_override_self = true,
    about = "MCP server that lets coding assistants consult GLM, Kimi and other models"
)]
pub struct Cli {
    /// Path to exai.toml (default: $EXAI_CONFIG, else ~/.config/exai/exai.toml when present; ./exai.toml is never
    /// read unless named here).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data directory for the embedded database (config key `data_dir`, env EXAI_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over stdin/stdout (what Claude Code, Cursor and Claude Desktop launch).
    Stdio {
        /// Also offer the MCP conformance suite's fixture tools (testing only).
        #[arg(long)]
        conformance_fixtures: bool,
        /// Answer every model call from the built-in simulator: a demo without API keys. Answers are
        /// labelled provider `sim`, never GLM or Kimi.
        #[arg(long)]
        sim: bool,
    },
    /// Run the daemon: MCP Streamable HTTP at /mcp, plus /healthz and /readyz.
    Serve {
        /// Address to bind (config key `http.host`, env EXAI_HTTP_HOST).
        #[arg(long)]
        host: Option<IpAddr>,
        /// Port to bind; 0 picks a free one and prints it (config key `http.port`, env EXAI_HTTP_PORT).
        #[arg(long)]
        port: Option<u16>,
        /// Also offer the MCP conformance suite's fixture tools (testing only).
        #[arg(long)]
        conformance_fixtures: bool,
        /// Answer every model call from the built-in simulator: a demo without API keys. Answers are
        /// labelled provider `sim`, never GLM or Kimi.
        #[arg(long)]
        sim: bool,
        /// Start even when HTTP or WebSocket listens off loopback without EXAI_HTTP_TOKEN / EXAI_WS_TOKEN
        /// (config key `insecure_no_auth`, env EXAI_INSECURE_NO_AUTH); warns at every start.
        #[arg(long)]
        insecure_no_auth: bool,
    },
    /// MCP over stdin/stdout for one assistant, bridged to the shared daemon (`exai serve`) over WebSocket.
    Shim {
        /// The daemon's WebSocket (default ws://EXAI_WS_HOST:EXAI_WS_PORT, i.e. ws://127.0.0.1:8079).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Start `exai serve` in the background when no daemon answers.
        #[arg(long)]
        start_daemon: bool,
    },
    /// Load-test a running daemon (loopback only unless --allow-remote) or a started simulator + server with
    /// many concurrent MCP sessions; writes JSON and HTML reports and fails when an invariant broke.
    Loadtest(Box<crate::loadtest::LoadtestArgs>),
    /// Per-tool latency baselines: `collect` stores them, `compare` fails on a regression (for CI).
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },
    /// Operate a running daemon.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// List the enabled tools and their schemas.
    Tools {
        /// Estimate how many tokens the enabled tool definitions cost a client per turn.
        #[arg(long)]
        tokens: bool,
        /// Print the exact `tools/list` JSON instead of a summary.
        #[arg(long, conflicts_with = "tokens")]
        json: bool,
    },
    /// Run the upstream simulator: a fake GLM/Kimi chat-completions server for tests and load tests.
    Sim {
        /// Port to bind; 0 picks a free one and prints it.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: IpAddr,
        /// Latency profile: `zero` (no delay) or `realistic` (GLM 1-5 s, Kimi 2-10 s per answer).
        #[arg(long, default_value = "zero")]
        profile: exai_sim::LatencyProfile,
        /// `MODEL=SCRIPT`: how every request for MODEL behaves, SCRIPT being the JSON of an `x-sim-script`
        /// header (e.g. `glm-4.5-air={"reply":"[]"}`); repeatable.
        #[arg(long = "model-script", value_name = "MODEL=JSON")]
        model_scripts: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Run every tool N times and store each tool's p50 / p95 / mean in `tool_baselines`.
    Collect(crate::commands::baseline::MeasureArgs),
    /// Measure again and exit 1 naming every tool that regressed past the threshold.
    Compare(crate::commands::baseline::CompareArgs),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Close every circuit breaker of a running `exai serve` (authenticates with EXAI_HTTP_TOKEN when set).
    ResetCircuits {
        /// The daemon's base URL (default: http://EXAI_HTTP_HOST:EXAI_HTTP_PORT).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets masked) and every problem found; exit 2 if any.
    Check,
}

impl Cli {
    /// Flag values as `(config key path, value)` overrides.
    pub fn overrides(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(dir) = &self.data_dir {
            out.push(("data_dir", dir.display().to_string()));
        }
        if let Command::Serve {
            host,
            port,
            insecure_no_auth,
            ..
        } = &self.command
        {
            if *insecure_no_auth {
                out.push(("insecure_no_auth", "true".to_owned()));
            }
            if let Some(host) = host {
                out.push(("http.host", host.to_string()));
            }
            if let Some(port) = port {
                out.push(("http.port", port.to_string()));
            }
        }
        out
    }
}
