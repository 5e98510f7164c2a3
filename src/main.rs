//! The `apnsim` command line: `serve` runs the emulator, `certs` writes identities for providers.

mod cli;

use clap::Parser;

/// mimalloc: the gateway's hot path allocates per read batch, and glibc malloc cost a measurable
/// share of throughput there (benches/legacy_throughput.rs uses the same allocator).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("apnsim: {e}");
        std::process::ExitCode::from(2)
    };
    // `serve --threads N` sizes the runtime, so it is read before the runtime exists.
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    match args.threads() {
        Ok(Some(n)) => {
            rt.worker_threads(n);
        }
        Ok(None) => {}
        Err(e) => return fail(&e),
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    match rt.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}
