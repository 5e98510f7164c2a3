//! Calibration of the conformance suite (issue 6): the gold provider (`apnsim send`, this
//! binary) must pass every case, and the committed expected grades must show the naive
//! provider failing exactly the loss cases — a case that cannot tell the two apart is wrong.
//! CI runs the naive provider (Python) and every third-party one against those grades.

use apnsim::conformance::{self, catalogue::catalogue, Expectations, Grade};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn expected() -> Expectations {
    let path = root().join("fixtures/conformance/expected.toml");
    Expectations::parse(&std::fs::read_to_string(&path).expect("expected.toml")).expect("parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gold_provider_passes_every_case() {
    // Relative, as `--report-dir target/conformance` is: drivers run in their own folder.
    let report = PathBuf::from(format!(
        "target/conformance-test-gold-{}",
        std::process::id()
    ));
    let opts = conformance::Options::new(
        vec![root().join("fixtures/providers/apnsim-send")],
        report.clone(),
        root().join("target/providers"),
        PathBuf::from(env!("CARGO_BIN_EXE_apnsim")),
    );
    let m = conformance::run(&opts, |_| {}).await.expect("runs");
    assert_eq!(m.results.len(), catalogue().len());
    let bad: Vec<String> = m
        .results
        .iter()
        .filter(|r| !matches!(r.grade, Grade::Ok | Grade::Informational))
        .map(|r| format!("{} {}: {}", r.case, r.grade, r.summary))
        .collect();
    assert!(
        bad.is_empty(),
        "the gold provider must pass every case:\n{}",
        bad.join("\n")
    );
    // Reporting cases stay INFORMATIONAL, the others OK.
    for r in &m.results {
        let c = catalogue().into_iter().find(|c| c.id == r.case).unwrap();
        let want = if c.informational {
            Grade::Informational
        } else {
            Grade::Ok
        };
        assert_eq!(r.grade, want, "{}", r.case);
    }
    // The reports exist and name every case.
    conformance::report::write_all(&m, &report).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["providers"]["apnsim-send"]["cases"]
            .as_object()
            .unwrap()
            .len(),
        catalogue().len()
    );
    let junit = std::fs::read_to_string(report.join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(html.contains("L2.2") && html.contains("class=\"g OK\""));
    let _ = std::fs::remove_dir_all(&report);
}

#[test]
fn committed_grades_separate_gold_from_naive_on_exactly_the_loss_cases() {
    let e = expected();
    let gold = &e.0["apnsim-send"];
    let naive = &e.0["naive-simple"];
    for c in catalogue() {
        let g = gold.get(c.id).copied();
        assert!(
            matches!(g, Some(Grade::Ok | Grade::Informational)),
            "gold {}: {g:?}",
            c.id
        );
        let n = naive.get(c.id).copied();
        match c.protocol {
            apnsim::model::Protocol::Legacy if c.loss => {
                assert_eq!(n, Some(Grade::Failed), "naive must fail loss case {}", c.id)
            }
            apnsim::model::Protocol::Legacy => {
                assert_ne!(n, Some(Grade::Failed), "naive must not fail {}", c.id)
            }
            _ => assert_eq!(n, Some(Grade::Unsupported), "naive has no HTTP/2: {}", c.id),
        }
    }
}

/// The TLS version a provider speaks changes how its bytes travel, not what the gateway decides:
/// the naive provider hard-coding TLS 1.0 (graded with `tls_min = "1.0"`) is graded as naive-simple.
#[test]
fn committed_grades_of_the_tls10_provider_are_the_naive_ones() {
    let e = expected();
    assert_eq!(e.0["naive-tls10"], e.0["naive-simple"]);
}

#[test]
fn every_bundled_provider_has_expected_grades_for_every_case() {
    let e = expected();
    for entry in std::fs::read_dir(root().join("fixtures/providers")).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("provider.toml").exists() {
            continue;
        }
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let grades =
            e.0.get(&name)
                .unwrap_or_else(|| panic!("no grades for {name}"));
        for c in catalogue() {
            assert!(
                grades.contains_key(c.id),
                "{name} has no grade for {}",
                c.id
            );
        }
    }
}
