//! The conformance suite: runs real, unmodified provider libraries against apnsim case by case
//! and grades them, the way h2spec grades HTTP/2 servers (issue 6).
//!
//! `catalogue` holds the cases, `runner` runs one against one provider, `judge` turns the
//! journal and the driver's report into findings, `report` and `html` write them out,
//! `expect` compares them with committed grades.

pub mod broadcast;
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
    /// Cells run at once (each case has its own emulator on ephemeral ports).
    pub jobs: usize,
    /// Runs per cell: the worst grade counts, differing grades mark the cell flaky.
    pub repeat: u32,
}

impl Options {
    /// Options for `providers` with the defaults of `apnsim conformance`.
    pub fn new(
        providers: Vec<PathBuf>,
        report_dir: PathBuf,
        tools: PathBuf,
        apnsim: PathBuf,
    ) -> Self {
        Options {
            providers,
            cases: None,
            report_dir,
            tools,
            apnsim,
            timeout_scale: 1.0,
            jobs: default_jobs(),
            repeat: 1,
        }
    }
}

/// `--jobs` by default: the number of cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
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

/// A result for a case id the catalogue lost between selection and run (cannot happen).
fn unreachable_case(p: &Provider, id: &str) -> CaseResult {
    runner::not_run(p, id, "no such case")
}

/// Runs the selected cases against each provider, `jobs` cells at once, each `repeat` times;
/// `progress` hears of each run as it ends.
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
    let env = std::sync::Arc::new(env);
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let repeat = opts.repeat.max(1);
    let mut set = tokio::task::JoinSet::new();
    for (pi, p) in providers.iter().enumerate() {
        for (ci, c) in cases.iter().enumerate() {
            for run in 0..repeat {
                let (env, gate, p, id) = (env.clone(), gate.clone(), p.clone(), c.id);
                set.spawn(async move {
                    let _slot = gate.acquire_owned().await;
                    let catalogue = catalogue::catalogue();
                    let c = catalogue.iter().find(|c| c.id == id);
                    let r = match c {
                        Some(c) => runner::run_case(&env, &p, c, run).await,
                        None => unreachable_case(&p, id),
                    };
                    (pi, ci, r)
                });
            }
        }
    }
    let mut cells: Vec<Vec<Vec<CaseResult>>> = vec![vec![Vec::new(); cases.len()]; providers.len()];
    while let Some(done) = set.join_next().await {
        let Ok((pi, ci, r)) = done else { continue };
        progress(&r);
        cells[pi][ci].push(r);
    }
    let results = cells
        .into_iter()
        .flatten()
        .filter_map(runner::worst_of)
        .collect();
    Ok(Matrix {
        providers,
        cases: cases.iter().map(|c| c.id).collect(),
        results,
    })
}
