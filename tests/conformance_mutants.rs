//! Calibration of the conformance suite by mutants (issue 10): each mutant provider
//! (`apnsim send --mutant NAME`, fixtures/providers/mutants/) breaks exactly one rule. It must be
//! FAILED or NON-STRICT exactly on the cases that target its defect and OK on the others run
//! beside them; a provider that does nothing must be FAILED on every case, with the cause named.
//! Real processes against real emulators; every cell is asserted.

use apnsim::conformance::{self, catalogue::catalogue, CaseResult, Grade};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Mutant, the cases it runs, and the grade of each case that targets its defect; every other
/// case of the selection must be OK (INFORMATIONAL on reporting cases).
type Row = (&'static str, &'static str, &'static [(&'static str, Grade)]);

const MATRIX: &[Row] = &[
    (
        "no-reconnect",
        "H1.1,H3.1,H4.1,H4.2,H7.1",
        &[("H4.1", Grade::Failed), ("H4.2", Grade::Failed)],
    ),
    (
        "retry-at-once",
        "H1.1,H3.1,H3.2,H4.1",
        &[("H3.1", Grade::NonStrict), ("H3.2", Grade::NonStrict)],
    ),
    ("no-resign", "H1.2,H5.2,H5.3", &[("H5.2", Grade::Failed)]),
    (
        "connection-per-notification",
        "H1.1,H4.1,H5.3,H7.1",
        &[("H7.1", Grade::NonStrict)],
    ),
    (
        "resend-preceding",
        "L1.1,L2.1,L2.4",
        &[("L2.1", Grade::Failed)],
    ),
    (
        "no-resend-following",
        "L1.1,L2.1,L2.4",
        &[("L2.1", Grade::Failed), ("L2.4", Grade::Failed)],
    ),
    (
        "ignore-shutdown-identifier",
        "L1.1,L2.1,L2.4",
        &[("L2.4", Grade::Failed)],
    ),
    (
        "sends-priority",
        "H1.1,H6.1,H6.2",
        &[("H6.1", Grade::NonStrict)],
    ),
    (
        "indexes-authorization",
        "H1.2,H6.1,H6.2",
        &[("H6.2", Grade::NonStrict)],
    ),
];

async fn run(mutants: &[&str], cases: Option<&str>, tag: &str) -> Vec<CaseResult> {
    let report = PathBuf::from(format!(
        "target/conformance-test-mutants-{tag}-{}",
        std::process::id()
    ));
    let mut opts = conformance::Options::new(
        mutants
            .iter()
            .map(|m| root().join("fixtures/providers/mutants").join(m))
            .collect(),
        report.clone(),
        root().join("target/providers"),
        PathBuf::from(env!("CARGO_BIN_EXE_apnsim")),
    );
    opts.cases = cases.map(str::to_string);
    let m = conformance::run(&opts, |_| {}).await.expect("runs");
    let _ = std::fs::remove_dir_all(&report);
    m.results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_nothing_providers_fail_every_case_with_the_cause_named() {
    let results = run(&["never-connects", "lies-sent"], None, "nothing").await;
    assert_eq!(results.len(), 2 * catalogue().len());
    for r in &results {
        assert_eq!(
            r.grade,
            Grade::Failed,
            "{} {}: {}",
            r.provider,
            r.case,
            r.summary
        );
        assert!(
            r.findings.iter().all(|f| f.grade != Grade::NonStrict),
            "{} {}: nothing is excused: {:?}",
            r.provider,
            r.case,
            r.findings
        );
        assert!(
            r.summary.contains("never reached apnsim"),
            "{} {}: the cause is named: {}",
            r.provider,
            r.case,
            r.summary
        );
        for f in r.findings.iter().filter(|f| f.grade != Grade::Ok) {
            assert!(
                !f.seqs.is_empty(),
                "{} {}: every finding cites journal seqs: {f:?}",
                r.provider,
                r.case
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mutant_fails_exactly_the_cases_that_target_its_defect() {
    let mut wrong = Vec::new();
    for (mutant, cases, targeted) in MATRIX {
        let results = run(&[mutant], Some(cases), mutant).await;
        assert_eq!(results.len(), cases.split(',').count(), "{mutant}");
        for r in &results {
            let informational = catalogue()
                .into_iter()
                .find(|c| c.id == r.case)
                .is_some_and(|c| c.informational);
            let want = targeted
                .iter()
                .find(|(c, _)| *c == r.case)
                .map(|(_, g)| *g)
                .unwrap_or(if informational {
                    Grade::Informational
                } else {
                    Grade::Ok
                });
            if r.grade != want {
                wrong.push(format!(
                    "{mutant} × {}: {} (want {want}): {}",
                    r.case, r.grade, r.summary
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "mutant matrix:\n{}", wrong.join("\n"));
}
