//! The `apnsim` command line: `serve` runs the emulator, `certs` writes identities for providers.

mod cli;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("apnsim: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
