//! `afterglow-agent`: parses the command line, loads the configuration, runs the agent (or,
//! with `run -- CMD`, runs CMD and ships its output).
//!
//! The rule a reader must not miss: in `run` mode the agent's exit code is the command's, so
//! nothing here may exit with a code of its own once the command has started.

use std::ffi::OsString;
use std::path::PathBuf;

use afterglow_agent::config::Role;
use afterglow_agent::{AgentConfig, Error};
use anyhow::Context;
use clap::builder::{PossibleValuesParser, TypedValueParser};
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
    /// Runs CMD, ships its stdout and stderr (also copied to the agent's own), forwards
    /// SIGINT and SIGTERM to it and exits with its exit code (128 + N if signal N killed it).
    ///
    /// Without --config, the collector, cluster and node come from AFTERGLOW_COLLECTOR,
    /// AFTERGLOW_CLUSTER and AFTERGLOW_NODE when set, everything else from the defaults.
    Run {
        /// Role of the wrapped process.
        #[arg(long, default_value = "other", value_parser = role_parser())]
        role: Role,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
}

/// Exit code when the command is not found, as shells give.
const EXIT_COMMAND_NOT_FOUND: i32 = 127;
/// Exit code when the command exists but cannot be started, as shells give.
const EXIT_COMMAND_NOT_STARTED: i32 = 126;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check) => check(cli.config),
        Some(Command::Run { role, command }) => {
            let config = match &cli.config {
                Some(path) => AgentConfig::load(path)?,
                None => config_from_env()?,
            };
            init_tracing();
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let outcome = runtime.block_on(afterglow_agent::wrap::run_wrapped(
                config,
                role,
                command,
                CancellationToken::new(),
            ));
            let code = match outcome {
                Ok(code) => code,
                Err(error) => {
                    let code = match &error {
                        Error::SpawnChild { source, .. }
                            if source.kind() == std::io::ErrorKind::NotFound =>
                        {
                            EXIT_COMMAND_NOT_FOUND
                        }
                        Error::SpawnChild { .. } => EXIT_COMMAND_NOT_STARTED,
                        _ => 1,
                    };
                    eprintln!("Error: {:#}", anyhow::Error::new(error));
                    code
                }
            };
            // Not dropping the runtime: a copy to stdout may still sit in a blocking
            // thread after the delivery wait gave up, and dropping would wait for it.
            std::process::exit(code)
        }
        None => {
            let config = match &cli.config {
                Some(path) => AgentConfig::load(path)?,
                None => AgentConfig::embedded_default(),
            };
            init_tracing();
            // One async worker: it only ships and serves /metrics (tailers have their own
            // threads), and each further thread costs memory (a malloc arena, buffers).
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(cancel_on_signal(shutdown.clone()));
                afterglow_agent::run(config, shutdown).await
            })?;
            Ok(())
        }
    }
}

fn check(path: Option<PathBuf>) -> anyhow::Result<()> {
    let path = path.context("check needs --config FILE")?;
    match AgentConfig::load(&path) {
        Ok(_) => println!("{}: ok", path.display()),
        Err(problems) => {
            eprintln!("{problems}");
            std::process::exit(1);
        }
    }
    Ok(())
}

/// The embedded defaults with the collector, cluster and node from the environment.
fn config_from_env() -> anyhow::Result<AgentConfig> {
    let mut text = String::new();
    for (key, variable) in [
        ("collector", "AFTERGLOW_COLLECTOR"),
        ("cluster", "AFTERGLOW_CLUSTER"),
        ("node", "AFTERGLOW_NODE"),
    ] {
        if let Some(value) = std::env::var_os(variable) {
            let value = value
                .into_string()
                .map_err(|_| anyhow::anyhow!("{variable} is not valid UTF-8"))?;
            text.push_str(&format!("{key} = {}\n", toml::Value::String(value)));
        }
    }
    AgentConfig::parse(&text).map_err(|problems| {
        anyhow::anyhow!(
            "bad settings in the environment (AFTERGLOW_COLLECTOR, AFTERGLOW_CLUSTER, AFTERGLOW_NODE):\n  {}",
            problems.join("\n  ")
        )
    })
}

fn role_parser() -> impl TypedValueParser<Value = Role> {
    PossibleValuesParser::new(["scheduler", "worker", "nanny", "client", "other"]).map(|role| {
        match role.as_str() {
            "scheduler" => Role::Scheduler,
            "worker" => Role::Worker,
            "nanny" => Role::Nanny,
            "client" => Role::Client,
            _ => Role::Other,
        }
    })
}

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
