//! The `apnsim` command line: `serve` runs the emulator, `certs` writes identities for providers.

mod cli;

use clap::Parser;

/// mimalloc: the gateway's hot path allocates per read batch, and glibc malloc cost a measurable
/// share of throughput there (benches/legacy_throughput.rs uses the same allocator).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
