//! The conformance suite: runs real, unmodified provider libraries against apnsim case by case
//! and grades them, the way h2spec grades HTTP/2 servers (issue 6).
//!
//! `catalogue` holds the cases, `runner` runs one against one provider, `judge` turns the
//! journal and the driver's report into findings, `report` and `html` write them out,
//! `expect` compares them with committed grades.

pub mod case;
pub mod catalogue;
pub mod expect;
pub mod html;
pub mod judge;
pub mod provider;
pub mod report;
pub mod runner;

pub use case::{Case, Finding, Grade};
pub use expect::Expectations;
pub use provider::Provider;
pub use runner::{CaseResult, RunEnv};

use std::path::PathBuf;

/// What `apnsim conformance` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Provider folders.
    pub providers: Vec<PathBuf>,
    /// Case selection (`L2.*,H1.1`); `None` = all.
    pub cases: Option<String>,
    /// Where reports go.
    pub report_dir: PathBuf,
    /// Where providers are installed.
    pub tools: PathBuf,
    /// The binary drivers call as `{apnsim}`.
    pub apnsim: PathBuf,
    /// Multiplies every case's timeout.
    pub timeout_scale: f64,
}

/// Everything a run produced: what reports are written from.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// The providers, in the order given.
    pub providers: Vec<Provider>,
    /// The cases run.
    pub cases: Vec<&'static str>,
    /// One per provider and case.
    pub results: Vec<CaseResult>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    /// A provider folder is unusable.
    #[error(transparent)]
    Provider(#[from] provider::ProviderError),
    /// Certificates could not be written.
    #[error("certificates: {0}")]
    Certs(String),
    /// The report directory could not be written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No case matches the selection.
    #[error("no case matches {0:?}")]
    NoCases(String),
}

/// Runs the selected cases against each provider in turn; `progress` hears of each result.
pub async fn run(
    opts: &Options,
    mut progress: impl FnMut(&CaseResult),
) -> Result<Matrix, ConformanceError> {
    let providers = opts
        .providers
        .iter()
        .map(|d| Provider::load(d))
        .collect::<Result<Vec<_>, _>>()?;
    let catalogue = catalogue::catalogue();
    let cases: Vec<&Case> = catalogue
        .iter()
        .filter(|c| opts.cases.as_deref().map_or(true, |p| c.selected_by(p)))
        .collect();
    if cases.is_empty() {
        return Err(ConformanceError::NoCases(
            opts.cases.clone().unwrap_or_default(),
        ));
    }
    // Drivers run in their own folder: every path they are given must be absolute.
    let report_dir = std::path::absolute(&opts.report_dir)?;
    std::fs::create_dir_all(&report_dir)?;
    let certs = report_dir.join("certs");
    let manifest = crate::certs::generate(&certs, crate::DEFAULT_TOPIC)
        .map_err(|e| ConformanceError::Certs(e.to_string()))?;
    let env = RunEnv {
        tools: opts.tools.clone(),
        apnsim: opts.apnsim.clone(),
        certs: certs.canonicalize()?,
        manifest,
        runs: report_dir.join("runs"),
        timeout_scale: opts.timeout_scale,
    };
    let mut results = Vec::new();
    for p in &providers {
        for c in &cases {
            let r = runner::run_case(&env, p, c).await;
            progress(&r);
            results.push(r);
        }
    }
    Ok(Matrix {
        providers,
        cases: cases.iter().map(|c| c.id).collect(),
        results,
    })
}
