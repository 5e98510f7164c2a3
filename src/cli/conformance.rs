//! `apnsim conformance`: grade provider libraries against the case catalogue.

use apnsim::conformance::{self, catalogue::catalogue, report, Expectations, Grade};
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `apnsim conformance`.
#[derive(Debug, clap::Args)]
pub struct ConformanceArgs {
    /// A provider folder (fixtures/providers/<name>); repeat for several.
    #[arg(long = "provider", value_name = "DIR")]
    providers: Vec<PathBuf>,
    /// Cases to run: ids or globs, comma-separated (`L2.*,H1.1`); default all.
    #[arg(long)]
    cases: Option<String>,
    /// Where index.json, junit.xml, index.html and the per-run artefacts go.
    #[arg(long, default_value = "target/conformance")]
    report_dir: PathBuf,
    /// Expected grades (TOML); exit 1 when a grade differs.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Write this run's grades as an expectations file.
    #[arg(long)]
    write_expect: Option<PathBuf>,
    /// Where scripts/install-providers.sh installed the providers (`{build}`).
    #[arg(long, default_value = "target/providers")]
    tools_dir: PathBuf,
    /// Multiply every case's timeout (slow machines).
    #[arg(long, default_value_t = 1.0)]
    timeout_scale: f64,
    /// Cells run at once [default: the number of cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Run every cell N times: the worst grade counts, cells whose grades differ are flaky
    /// (and fail `--expect`).
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
}

/// Runs the suite, prints the table, writes the reports, compares with `--expect`.
pub async fn run(args: ConformanceArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if args.list {
        println!("Facts cited as PROTOCOL.md N.N are sections of docs/PROTOCOL.md.\n");
        for c in catalogue() {
            if args.cases.as_deref().map_or(true, |p| c.selected_by(p)) {
                println!(
                    "{:<6} {:<7} {}\n       {}",
                    c.id,
                    c.protocol.as_str(),
                    c.title,
                    c.expectation
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.providers.is_empty() {
        return Err("give at least one --provider DIR".into());
    }
    let expect = match &args.expect {
        Some(p) => Some(
            Expectations::parse(
                &std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
            )
            .map_err(|e| format!("{}: {e}", p.display()))?,
        ),
        None => None,
    };
    let opts = conformance::Options {
        providers: args.providers.clone(),
        cases: args.cases.clone(),
        report_dir: args.report_dir.clone(),
        tools: std::path::absolute(&args.tools_dir)?,
        apnsim: std::env::current_exe()?,
        timeout_scale: args.timeout_scale,
        jobs: args.jobs.unwrap_or_else(conformance::default_jobs),
        repeat: args.repeat,
    };
    let started = std::time::Instant::now();
    let matrix = conformance::run(&opts, |r| {
        let mark = match r.grade {
            Grade::Failed => "✗",
            Grade::Unsupported => "-",
            _ => "✓",
        };
        eprintln!(
            "{mark} {:<14} {:<5} {:<13} {:>6} ms  {}",
            r.provider,
            r.case,
            r.grade.as_str(),
            r.duration_ms,
            r.summary
        );
    })
    .await?;
    report::write_all(&matrix, &args.report_dir)?;
    println!("{}", report::table(&matrix));
    println!(
        "{} cell(s) × {} run(s) in {:.1} s with --jobs {}",
        matrix.results.len(),
        opts.repeat.max(1),
        started.elapsed().as_secs_f64(),
        opts.jobs
    );
    let flaky: Vec<&conformance::CaseResult> = matrix
        .results
        .iter()
        .filter(|r| r.flaky.is_some())
        .collect();
    for r in &flaky {
        println!(
            "FLAKY {} {}: {}",
            r.provider,
            r.case,
            r.flaky.as_deref().unwrap_or_default()
        );
    }
    println!(
        "reports: {}/index.html, index.json, junit.xml",
        args.report_dir.display()
    );
    if let Some(path) = &args.write_expect {
        std::fs::write(path, Expectations::from_results(&matrix.results).to_toml())?;
        println!("wrote the grades to {}", path.display());
    }
    if let Some(expect) = expect {
        let ran = |p: &str, c: &str| {
            matrix.providers.iter().any(|x| x.name() == p) && matrix.cases.contains(&c)
        };
        let mismatches = expect.compare(&matrix.results, &ran);
        if !mismatches.is_empty() {
            for m in &mismatches {
                println!("UNEXPECTED {m}");
            }
            println!(
                "{} grade(s) differ from {}",
                mismatches.len(),
                args.expect
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string())
            );
            return Ok(ExitCode::from(1));
        }
        if !flaky.is_empty() {
            println!("{} flaky cell(s)", flaky.len());
            return Ok(ExitCode::from(1));
        }
        println!("every grade matches the expectations");
    }
    Ok(ExitCode::SUCCESS)
}
