//! Subcommands and their options; each `serve` option has an `APNSIM_*` environment twin and a
//! `--config` TOML key of the same name.

mod channels;
mod conformance;
mod serve;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// apnsim: a fake Apple Push Notification service for testing push providers.
#[derive(Debug, Parser)]
#[command(name = "apnsim", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the emulator (legacy gateway, feedback service).
    Serve(Box<serve::ServeArgs>),
    /// Validate a scenario file (TOML, or JSON by extension); errors come as file:line:col.
    CheckScenario {
        /// The scenario file.
        file: PathBuf,
    },
    /// Write a CA, a server certificate and provider identities (PEM, combined PEM, .p12).
    Certs {
        /// Directory to write into (created if missing; existing files are replaced).
        #[arg(long, default_value = "certs", env = "APNSIM_CERTS")]
        dir: PathBuf,
        /// App topic (bundle id) of the provider certificates.
        #[arg(long, default_value = apnsim::DEFAULT_TOPIC, env = "APNSIM_TOPIC")]
        topic: String,
    },
    /// Grade provider libraries against the conformance cases.
    Conformance(Box<conformance::ConformanceArgs>),
    /// Send notifications as a correct provider would (both protocols); the conformance gold provider.
    Send(Box<apnsim::send::SendArgs>),
    /// Broadcast channels: create, list, read, delete, and broadcast to one (PROTOCOL.md 2.11).
    Channels(Box<channels::ChannelsArgs>),
}

impl Cli {
    /// Worker threads of the runtime this command runs on (`serve --threads`; `None` = one per core).
    pub fn threads(&self) -> Result<Option<usize>, String> {
        match &self.command {
            Command::Serve(args) => args.threads(),
            _ => Ok(None),
        }
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Send(args) => apnsim::send::run(*args).await,
        Command::Channels(args) => channels::run(*args).await,
        Command::Conformance(args) => conformance::run(*args).await,
        Command::CheckScenario { file } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            match apnsim::engine::scenario::parse_named(&file, &text) {
                Ok(s) => {
                    println!(
                        "{}: ok ({} rules, {} tokens, {} keys)",
                        file.display(),
                        s.rules.len(),
                        s.tokens.len(),
                        s.keys.len()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Certs { dir, topic } => {
            let manifest = apnsim::certs::generate(&dir, &topic)?;
            println!(
                "wrote certificates for topic {topic} into {}",
                dir.display()
            );
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
