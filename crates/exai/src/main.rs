//! The `exai` binary: parses the command line, loads the configuration once, and wires the core,
//! store and server crates together. Each subcommand lives in `commands/`.

mod cli;
mod commands;
mod loadtest;
mod logging;
mod shim;

use std::process::ExitCode;

use clap::Parser;
use exai_core::config::{Config, ProcessEnv};

use crate::cli::{AdminCommand, BaselineCommand, Cli, Command, ConfigCommand};

/// jemalloc, whose background thread returns freed memory to the system, so RSS falls back after a burst
/// (docs/perf/memory.md; the thread is switched on first thing in `main`).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Purge freed memory from a background thread (dirty pages go after `dirty_decay_ms`, 10 s), not only when a
    // thread happens to allocate again: after a burst, idle workers would otherwise keep it.
    #[cfg(feature = "jemalloc")]
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("exai: cannot start jemalloc's background purging thread: {e}");
    }
    // ring is the process's one rustls crypto provider (reqwest and sqlx alike); a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let env = ProcessEnv;
    let file = cli.config.clone().or_else(|| Config::default_file(&env));
    if let Some(local) = Config::ignored_local_file(file.as_deref()) {
        eprintln!(
            "exai: not reading {} (a file in the working directory may come from a cloned repository); pass \
             --config {} or set EXAI_CONFIG to use it",
            local.display(),
            local.display()
        );
    }
    let overrides = cli.overrides();
    if let Command::Config {
        command: ConfigCommand::Check,
    } = cli.command
    {
        return commands::config::check(Config::inspect(&env, file.as_deref(), &overrides));
    }
    let config = match Config::load(&env, file.as_deref(), &overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("exai: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("exai: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Stdio {
                conformance_fixtures,
                sim,
            } => {
                commands::stdio::run(
                    config,
                    commands::Options {
                        fixtures: conformance_fixtures,
                        sim,
                    },
                )
                .await
            }
            Command::Serve {
                conformance_fixtures,
                sim,
                ..
            } => {
                commands::serve::run(
                    config,
                    commands::Options {
                        fixtures: conformance_fixtures,
                        sim,
                    },
                )
                .await
            }
            Command::Shim { url, start_daemon } => {
                let global_args = commands::shim::global_args(cli.config.as_ref(), cli.data_dir.as_ref());
                let options = commands::shim::ShimOptions {
                    url,
                    start_daemon,
                    global_args,
                };
                commands::shim::run(config, options).await
            }
            Command::Admin {
                command: AdminCommand::ResetCircuits { url },
            } => commands::admin::reset_circuits(&config, url).await,
            Command::Tools { tokens, json } => commands::tools::run(&config, tokens, json),
            Command::Sim {
                port,
                host,
                profile,
                model_scripts,
            } => commands::sim::run(&config, host, port, profile, &model_scripts).await,
            Command::Loadtest(args) => commands::loadtest::run(&config, *args).await,
            Command::Baseline {
                command: BaselineCommand::Collect(args),
            } => commands::baseline::collect(&config, args).await,
            Command::Baseline {
                command: BaselineCommand::Compare(args),
            } => commands::baseline::compare(&config, args).await,
            Command::Config { .. } => unreachable!("handled above"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("exai: {e:#}");
            ExitCode::FAILURE
        }
    }
}
