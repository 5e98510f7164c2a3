//! The machine-readable reports of a run (`index.json`, JUnit XML) and the compact terminal
//! table; the HTML matrix is in `html`.

use crate::conformance::case::Grade;
use crate::conformance::catalogue::catalogue;
use crate::conformance::Matrix;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::Path;

/// `index.json`: provider → case → grade, duration, summary, evidence; plus the case catalogue.
pub fn index_json(m: &Matrix) -> Value {
    let cat = catalogue();
    let cases: Vec<Value> = m
        .cases
        .iter()
        .filter_map(|id| cat.iter().find(|c| c.id == *id))
        .map(|c| {
            json!({
                "id": c.id, "title": c.title, "protocol": c.protocol.as_str(),
                "expectation": c.expectation, "loss": c.loss,
            })
        })
        .collect();
    let mut providers = Map::new();
    for p in &m.providers {
        let mut results = Map::new();
        for r in m.results.iter().filter(|r| r.provider == p.name()) {
            results.insert(
                r.case.clone(),
                json!({
                    "grade": r.grade, "summary": r.summary, "duration_ms": r.duration_ms,
                    "auth": r.auth, "exit": r.exit, "evidence": r.findings,
                    "artifacts": r.artifacts, "flaky": r.flaky,
                }),
            );
        }
        providers.insert(
            p.name().to_string(),
            json!({
                "language": p.spec.language, "library": p.spec.library,
                "version": p.spec.version, "notes": p.spec.notes, "cases": results,
            }),
        );
    }
    json!({ "cases": cases, "providers": providers })
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

fn evidence_text(r: &crate::conformance::CaseResult) -> String {
    let mut s = String::new();
    for f in &r.findings {
        let _ = write!(s, "[{}] {}", f.grade, f.text);
        if !f.seqs.is_empty() {
            let seqs: Vec<String> = f.seqs.iter().map(u64::to_string).collect();
            let _ = write!(s, " (journal seq {})", seqs.join(", "));
        }
        s.push('\n');
    }
    s
}

/// JUnit XML: a suite per provider, a test case per case; FAILED fails, UNSUPPORTED skips.
pub fn junit_xml(m: &Matrix) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"apnsim conformance\">\n",
    );
    for p in &m.providers {
        let rs: Vec<_> = m
            .results
            .iter()
            .filter(|r| r.provider == p.name())
            .collect();
        let failures = rs.iter().filter(|r| r.grade == Grade::Failed).count();
        let skipped = rs.iter().filter(|r| r.grade == Grade::Unsupported).count();
        let time: u64 = rs.iter().map(|r| r.duration_ms).sum();
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">",
            xml_escape(p.name()),
            rs.len(),
            time as f64 / 1000.0
        );
        for r in rs {
            let _ = write!(
                s,
                "    <testcase classname=\"{}\" name=\"{} {}\" time=\"{:.3}\">",
                xml_escape(p.name()),
                xml_escape(&r.case),
                xml_escape(&r.title),
                r.duration_ms as f64 / 1000.0
            );
            match r.grade {
                Grade::Failed => {
                    let _ = write!(
                        s,
                        "<failure message=\"{}\">{}</failure>",
                        xml_escape(&r.summary),
                        xml_escape(&evidence_text(r))
                    );
                }
                Grade::Unsupported => {
                    let _ = write!(s, "<skipped message=\"{}\"/>", xml_escape(&r.summary));
                }
                g => {
                    let _ = write!(
                        s,
                        "<system-out>{g}: {}\n{}</system-out>",
                        xml_escape(&r.summary),
                        xml_escape(&evidence_text(r))
                    );
                }
            }
            s.push_str("</testcase>\n");
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

/// Short cell text for the terminal table.
fn cell(g: Grade) -> &'static str {
    match g {
        Grade::Ok => "OK",
        Grade::Informational => "INFO",
        Grade::NonStrict => "NON-STRICT",
        Grade::Unsupported => "-",
        Grade::Failed => "FAILED",
    }
}

/// The compact table: a row per case, a column per provider.
pub fn table(m: &Matrix) -> String {
    let names: Vec<&str> = m.providers.iter().map(|p| p.name()).collect();
    let width: Vec<usize> = names.iter().map(|n| n.len().max(10)).collect();
    let cat = catalogue();
    let title_w = 40;
    let mut s = format!("{:<6} {:<title_w$}", "case", "");
    for (n, w) in names.iter().zip(&width) {
        let _ = write!(s, " {n:<w$}");
    }
    s.push('\n');
    for id in &m.cases {
        let title = cat.iter().find(|c| c.id == *id).map_or("", |c| c.title);
        let title: String = title.chars().take(title_w).collect();
        let _ = write!(s, "{id:<6} {title:<title_w$}");
        for (n, w) in names.iter().zip(&width) {
            let g = m
                .results
                .iter()
                .find(|r| r.provider == *n && r.case == *id)
                .map_or("?".to_string(), |r| {
                    let mark = if r.flaky.is_some() { " (flaky)" } else { "" };
                    format!("{}{mark}", cell(r.grade))
                });
            let _ = write!(s, " {g:<w$}");
        }
        s.push('\n');
    }
    s
}

/// Writes `index.json`, `junit.xml` and `index.html` into `dir`.
pub fn write_all(m: &Matrix, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let index = index_json(m);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec_pretty(&index).map_err(std::io::Error::other)?,
    )?;
    std::fs::write(dir.join("junit.xml"), junit_xml(m))?;
    std::fs::write(
        dir.join("index.html"),
        crate::conformance::html::render(m, &index),
    )?;
    Ok(())
}
