//! `--expect FILE`: the grades a run must produce, so maintainers (and our CI) can gate on them.
//!
//! ```toml
//! [naive-simple]
//! "L1.1" = "OK"
//! "L2.1" = "FAILED"
//! ```

use crate::conformance::case::Grade;
use crate::conformance::runner::CaseResult;
use std::collections::BTreeMap;

/// Expected grade per provider and case.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expectations(pub BTreeMap<String, BTreeMap<String, Grade>>);

/// A grade that differs from the expected one.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Provider.
    pub provider: String,
    /// Case id.
    pub case: String,
    /// What the file says.
    pub expected: Grade,
    /// What the run gave (`None`: the case did not run).
    pub got: Option<Grade>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.got {
            Some(g) => write!(
                f,
                "{} {}: expected {}, got {g}",
                self.provider, self.case, self.expected
            ),
            None => write!(
                f,
                "{} {}: expected {}, but it did not run",
                self.provider, self.case, self.expected
            ),
        }
    }
}

impl Expectations {
    /// Parses the TOML; unknown grade names are errors.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: BTreeMap<String, BTreeMap<String, String>> =
            toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut out = BTreeMap::new();
        for (provider, cases) in raw {
            let mut m = BTreeMap::new();
            for (case, grade) in cases {
                let g = Grade::parse(&grade)
                    .ok_or_else(|| format!("[{provider}] {case}: unknown grade {grade:?}"))?;
                m.insert(case, g);
            }
            out.insert(provider, m);
        }
        Ok(Expectations(out))
    }

    /// The grades of a run, as an expectations file (to commit after reviewing them).
    pub fn from_results(results: &[CaseResult]) -> Self {
        let mut out: BTreeMap<String, BTreeMap<String, Grade>> = BTreeMap::new();
        for r in results {
            out.entry(r.provider.clone())
                .or_default()
                .insert(r.case.clone(), r.grade);
        }
        Expectations(out)
    }

    /// Renders the TOML form.
    pub fn to_toml(&self) -> String {
        let mut s = String::new();
        for (provider, cases) in &self.0 {
            s.push_str(&format!("[{provider}]\n"));
            for (case, grade) in cases {
                s.push_str(&format!("\"{case}\" = \"{grade}\"\n"));
            }
            s.push('\n');
        }
        s
    }

    /// Grades that differ, for the providers and cases the run selected.
    pub fn compare(
        &self,
        results: &[CaseResult],
        ran: &dyn Fn(&str, &str) -> bool,
    ) -> Vec<Mismatch> {
        let mut out = Vec::new();
        for (provider, cases) in &self.0 {
            for (case, &expected) in cases {
                if !ran(provider, case) {
                    continue;
                }
                let got = results
                    .iter()
                    .find(|r| &r.provider == provider && &r.case == case)
                    .map(|r| r.grade);
                if got != Some(expected) {
                    out.push(Mismatch {
                        provider: provider.clone(),
                        case: case.clone(),
                        expected,
                        got,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown_grades() {
        let e = Expectations::parse("[p]\n\"L1.1\" = \"OK\"\n\"L2.1\" = \"failed\"\n").unwrap();
        assert_eq!(e.0["p"]["L2.1"], Grade::Failed);
        assert_eq!(Expectations::parse(&e.to_toml()).unwrap(), e);
        assert!(Expectations::parse("[p]\n\"L1.1\" = \"GREAT\"\n").is_err());
    }
}
