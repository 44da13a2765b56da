//! `afterglow-collector`: parses the command line, loads the configuration, runs the collector.

use std::path::PathBuf;

use afterglow_collector::CollectorConfig;
use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Stores and serves the logs and metrics that Afterglow agents send.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Configuration file (TOML); without one, the embedded defaults apply.
    #[arg(long, short, env = "AFTERGLOW_COLLECTOR_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validates the configuration file, prints every problem and exits non-zero if any.
    Check,
    /// Manages access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Makes a new random token: prints it once (keep it; it is not stored anywhere) and the
    /// `[[tokens]]` stanza, holding only its SHA-256, to paste into collector.toml.
    New {
        /// Who will hold it (unique among the tokens).
        #[arg(long)]
        name: String,
        /// A tenant it reads or ingests into (repeat, or separate with commas).
        #[arg(long = "tenant", value_delimiter = ',')]
        tenants: Vec<String>,
        /// What it may do: ingest, read, admin (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        can: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Token(TokenCommand::New { name, tenants, can })) = &cli.command {
        return new_token(name, tenants, can);
    }
    let config = match &cli.config {
        Some(path) => CollectorConfig::load(path),
        None => Ok(CollectorConfig::embedded_default()),
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        let scheme = if config.tls.is_enabled() {
            "https"
        } else {
            "http"
        };
        let on_listening = move |addrs: afterglow_collector::BoundAddrs| {
            // A stable line for scripts and tests: where to reach this collector.
            println!(
                "afterglow-collector listening: http={scheme}://{} grpc={scheme}://{}",
                addrs.http, addrs.grpc
            );
        };
        match cli.config {
            Some(path) => {
                afterglow_collector::run_from_file(path, config, shutdown, on_listening).await
            }
            None => afterglow_collector::run(config, shutdown, on_listening).await,
        }
    })?;
    Ok(())
}

/// `token new`: checks the entry it would make as the configuration would, then prints the
/// token (stdout's first line, for scripts) and the stanza.
fn new_token(name: &str, tenants: &[String], can: &[String]) -> anyhow::Result<()> {
    use afterglow_collector::auth::token;
    use afterglow_collector::config::Capability;
    let can = can
        .iter()
        .map(|text| match text.trim() {
            "ingest" => Ok(Capability::Ingest),
            "read" => Ok(Capability::Read),
            "admin" => Ok(Capability::Admin),
            other => anyhow::bail!("--can {other:?}: must be ingest, read or admin"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let secret = token::new_token();
    let stanza = token::stanza(name, &token::digest(&secret), tenants, &can);
    if let Err(problems) = CollectorConfig::parse(&stanza) {
        anyhow::bail!("{}", problems.join("\n"));
    }
    println!("{secret}");
    eprintln!(
        "\nThat is the token; it is shown only this once. Give it to its holder (agent: `token` or `token_file`; HTTP: `Authorization: Bearer <token>`), and add this to collector.toml:\n"
    );
    print!("\n{stanza}");
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
