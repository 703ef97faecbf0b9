//! `exai-bench`: the side-by-side benchmarks behind the README's performance section. Everything it compares runs
//! in the same invocation on the same machine, so the ratios hold even when the absolute numbers are noisy.
//!
//! - `gateway`: a zero-latency upstream (the simulator, and nginx returning a fixed completion) called directly and
//!   through exai's `chat` tool over Streamable HTTP, at several concurrencies, streaming and not.
//! - `tier1`: `version` over Streamable HTTP (JSON responses) and stdio, against the official Python MCP SDK serving
//!   a constant tool the same way.
//! - `memory`: the daemon's RSS at idle, at the peak of a burst and after it, for several builds back to back.

mod gateway;
mod load;
mod mcp;
mod memory;
mod procs;
mod table;
mod tier1;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "exai-bench", about = "Side-by-side benchmarks of exai (run with --release)")]
struct Cli {
    /// The exai binary to measure (build it with `cargo build --release`).
    #[arg(long, global = true, default_value = "target/release/exai")]
    exai: PathBuf,
    /// Seconds of measurement per cell (after a warm-up of a quarter of that).
    #[arg(long, global = true, default_value_t = 3.0)]
    secs: f64,
    /// Concurrencies to run.
    #[arg(long, global = true, value_delimiter = ',', default_value = "1,16,64,256")]
    concurrency: Vec<usize>,
    /// Pin the servers under test to CPU 0 (`taskset`), so "one core" means one core.
    #[arg(long, global = true)]
    pin: bool,
    /// Also write the results as JSON here.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Direct upstream vs the same upstream through exai's `chat` tool.
    Gateway {
        /// nginx binary for the static upstream (skipped with a note when absent: `apt-get install nginx-light`).
        #[arg(long, default_value = "/usr/sbin/nginx")]
        nginx: PathBuf,
    },
    /// exai's `version` tool vs the Python MCP SDK serving a constant tool, over HTTP and stdio.
    Tier1 {
        /// Python with `mcp` installed (`.ci/python-sdk.sh` makes one at ~/.cache/exai-ci/py-venv).
        #[arg(long)]
        python: Option<PathBuf>,
    },
    /// RSS at idle, at the peak of a WebSocket burst and after it, for each build in turn (e.g. with mimalloc and
    /// with the system allocator: `cargo build -p exai --no-default-features`).
    Memory {
        /// A build to measure, `NAME=PATH` (repeatable); default: `--exai`.
        #[arg(long = "build", value_parser = memory::named)]
        builds: Vec<(String, PathBuf)>,
    },
}

/// What every benchmark needs to know about the run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub exai: PathBuf,
    pub measure: Duration,
    pub warmup: Duration,
    pub concurrency: Vec<usize>,
    pub pin: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("cannot install the rustls crypto provider"))?;
    if let Command::Memory { builds } = &cli.command {
        let builds = if builds.is_empty() {
            vec![("exai".to_owned(), cli.exai.clone())]
        } else {
            builds.clone()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let figures = runtime.block_on(memory::run(&builds))?;
        println!("{}", memory::markdown(&figures));
        if let Some(path) = cli.json {
            std::fs::write(&path, serde_json::to_string_pretty(&figures)?)?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(());
    }
    anyhow::ensure!(
        cli.exai.exists(),
        "{} not found: build it with `cargo build --release -p exai` or pass --exai",
        cli.exai.display()
    );
    let settings = Settings {
        exai: std::fs::canonicalize(&cli.exai)?,
        measure: Duration::from_secs_f64(cli.secs),
        warmup: Duration::from_secs_f64(cli.secs / 4.0),
        concurrency: cli.concurrency,
        pin: cli.pin,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        match cli.command {
            Command::Gateway { nginx } => gateway::run(&settings, &nginx).await,
            Command::Tier1 { python } => tier1::run(&settings, python).await,
            Command::Memory { .. } => unreachable!("measured above"),
        }
    })?;
    println!("{}", report.markdown());
    if let Some(path) = cli.json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
