//! `afterglow-agent`: parses the command line, loads the configuration, runs the agent.

use std::path::PathBuf;

use afterglow_agent::AgentConfig;
use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Tails Dask logs and ships them to an Afterglow collector.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Configuration file (TOML); without one, the embedded defaults apply.
    #[arg(long, short, env = "AFTERGLOW_AGENT_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validates the configuration file, prints every problem and exits non-zero if any.
    Check,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => AgentConfig::load(path),
        None => Ok(AgentConfig::embedded_default()),
    };
    if let Some(Command::Check) = cli.command {
        let path = cli.config.context("check needs --config FILE")?;
        match config {
            Ok(_) => println!("{}: ok", path.display()),
            Err(problems) => {
                eprintln!("{problems}");
                std::process::exit(1);
            }
        }
        return Ok(());
    }
    let config = config?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        afterglow_agent::run(config, shutdown).await
    })?;
    Ok(())
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler succeeds");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    shutdown.cancel();
}
