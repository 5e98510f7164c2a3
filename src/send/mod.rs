//! `apnsim send`: a correct reference provider for both protocols, built into the binary. It fires
//! a test push by hand, and it is the conformance suite's gold provider: it follows the driver
//! contract of `fixtures/providers/README.md` (every flag has its `APNSIM_*` twin).

use std::process::ExitCode;

/// Options of `apnsim send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {}

/// Sends what the options or the plan say and prints the contract's report lines.
pub async fn run(_args: SendArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    Err("apnsim send: not built yet".into())
}
