//! Turns what happened in one run (the journal, the driver's report, how it ended) into
//! findings. Pure: the runner gathers the facts, this module only reads them.

use crate::conformance::case::{Case, Finding, Grade, Setup, Twist};
use crate::journal::{Event, EventKind};
use crate::model::Protocol;
use crate::plan::{DriverOutput, Outcome, ResultKind};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// How the driver process ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "how", rename_all = "kebab-case")]
pub enum Exit {
    /// It exited with this code.
    Code {
        /// The exit code.
        code: i32,
    },
    /// It was killed by a signal (a crash).
    Signal,
    /// It did not finish in time and was killed.
    Timeout {
        /// The limit, in seconds.
        secs: u64,
    },
    /// It could not be started.
    Spawn {
        /// Why.
        error: String,
    },
}

/// Every journal event that concerns one plan notification, by kind.
#[derive(Debug, Clone, Default)]
pub struct Attempts {
    /// `accepted` events.
    pub accepted: Vec<u64>,
    /// `rejected` events with their reason.
    pub rejected: Vec<(u64, String)>,
    /// `dropped` and `discarded` events (received, thrown away).
    pub lost: Vec<u64>,
}

impl Attempts {
    /// Every event seq of this notification, in order.
    pub fn all_seqs(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .accepted
            .iter()
            .chain(self.rejected.iter().map(|(s, _)| s))
            .chain(self.lost.iter())
            .copied()
            .collect();
        v.sort_unstable();
        v
    }

    /// How many times the provider sent it (every event is one copy received).
    pub fn sent(&self) -> usize {
        self.accepted.len() + self.rejected.len() + self.lost.len()
    }
}

/// What one run left behind, indexed for the judge.
pub struct Facts<'a> {
    /// The case.
    pub case: &'a Case,
    /// What it set up.
    pub setup: &'a Setup,
    /// What the driver printed.
    pub output: &'a DriverOutput,
    /// How it ended.
    pub exit: &'a Exit,
    /// The whole journal of the run.
    pub events: &'a [Event],
    /// Whether the provider declares it reads the feedback service.
    pub reads_feedback: bool,
    attempts: HashMap<u32, Attempts>,
    by_seq: HashMap<u64, usize>,
}

impl<'a> Facts<'a> {
    /// Indexes the journal by plan id (each notification has its own token).
    pub fn new(
        case: &'a Case,
        setup: &'a Setup,
        output: &'a DriverOutput,
        exit: &'a Exit,
        events: &'a [Event],
        reads_feedback: bool,
    ) -> Self {
        let ids: HashMap<String, u32> = setup
            .plan
            .notifications
            .iter()
            .map(|n| (n.token.to_ascii_lowercase(), n.id))
            .collect();
        let mut attempts: HashMap<u32, Attempts> = HashMap::new();
        for e in events {
            let Some(n) = &e.notification else { continue };
            let Some(&id) = ids.get(&n.token.to_hex()) else {
                continue;
            };
            let a = attempts.entry(id).or_default();
            match e.kind {
                EventKind::Accepted => a.accepted.push(e.seq),
                EventKind::Rejected => a
                    .rejected
                    .push((e.seq, e.reason.clone().unwrap_or_default())),
                EventKind::Dropped | EventKind::Discarded => a.lost.push(e.seq),
                _ => {}
            }
        }
        let by_seq = events.iter().enumerate().map(|(i, e)| (e.seq, i)).collect();
        Facts {
            case,
            setup,
            output,
            exit,
            events,
            reads_feedback,
            attempts,
            by_seq,
        }
    }

    /// The journal's record of plan id `id`.
    pub fn attempts(&self, id: u32) -> Attempts {
        self.attempts.get(&id).cloned().unwrap_or_default()
    }

    /// The event with sequence number `seq`.
    pub fn event(&self, seq: u64) -> Option<&Event> {
        self.by_seq.get(&seq).map(|&i| &self.events[i])
    }

    /// The driver's (last) report about plan id `id`.
    pub fn report(&self, id: u32) -> Option<&Outcome> {
        self.output.for_id(id).last()
    }

    /// Events of one kind.
    pub fn of_kind(&self, kind: EventKind) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.kind == kind)
    }

    /// Connections the provider opened on the case's protocol (feedback reads excluded).
    pub fn connections(&self) -> Vec<&Event> {
        self.of_kind(EventKind::ConnectionOpened)
            .filter(|e| e.protocol == self.case.protocol)
            .collect()
    }

    /// `observation` events carrying `key` in their detail, with the value.
    pub fn observations(&self, key: &str) -> Vec<(&Event, &serde_json::Value)> {
        self.of_kind(EventKind::Observation)
            .filter_map(|e| Some((e, e.detail.as_ref()?.get(key)?)))
            .collect()
    }

    /// What each closed HTTP/2 connection reported about itself (ALPN, PRIORITY, HPACK…).
    pub fn closed_observations(&self) -> Vec<(&Event, &serde_json::Value)> {
        self.of_kind(EventKind::ConnectionClosed)
            .filter_map(|e| Some((e, e.detail.as_ref()?.get("observations")?)))
            .collect()
    }
}

/// What the plan meant for one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meant {
    Delivered,
    Refused(Twist),
}

/// Plan ids and journal seqs gathered under one folded line.
type Gathered = (Vec<u32>, Vec<u64>);

/// Findings of one category, folded into one line with the ids and their evidence.
#[derive(Default)]
struct Fold {
    lines: BTreeMap<(Grade, &'static str), Gathered>,
}

/// Most ids and seqs printed per folded line: a 5000-notification loss stays readable.
const MAX_LISTED: usize = 12;

impl Fold {
    fn add(&mut self, grade: Grade, what: &'static str, id: u32, seqs: Vec<u64>) {
        let e = self.lines.entry((grade, what)).or_default();
        e.0.push(id);
        e.1.extend(seqs);
    }

    fn into_findings(self) -> Vec<Finding> {
        self.lines
            .into_iter()
            .map(|((grade, what), (ids, mut seqs))| {
                let mut list: Vec<String> = ids
                    .iter()
                    .take(MAX_LISTED)
                    .map(|i| format!("#{i}"))
                    .collect();
                if ids.len() > MAX_LISTED {
                    list.push(format!("… ({} in all)", ids.len()));
                }
                seqs.sort_unstable();
                seqs.truncate(3 * MAX_LISTED);
                Finding::new(grade, format!("{what}: {}", list.join(", ")), seqs)
            })
            .collect()
    }
}

/// The checks every case makes: the driver ended well, each notification meant to arrive
/// arrived exactly once and was reported sent, each meant to be refused was reported so.
pub fn common(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    match f.exit {
        Exit::Code { code: 0 } => {}
        Exit::Code { code } => out.push(Finding::new(
            Grade::Failed,
            format!("the driver exited with status {code}"),
            vec![],
        )),
        Exit::Signal => out.push(Finding::new(
            Grade::Failed,
            "the driver was killed by a signal (crash)",
            vec![],
        )),
        Exit::Timeout { secs } => out.push(Finding::new(
            Grade::Failed,
            format!("hang: the driver had not finished after {secs} s and was killed"),
            vec![],
        )),
        Exit::Spawn { error } => out.push(Finding::new(
            Grade::Failed,
            format!("the driver could not be started: {error}"),
            vec![],
        )),
    }
    if !f.output.done && matches!(f.exit, Exit::Code { .. }) {
        out.push(Finding::new(
            Grade::Failed,
            "the driver never printed {\"done\":true}",
            vec![],
        ));
    }

    let tolerated = f.case.duplicates_tolerated;
    let mut fold = Fold::default();
    for n in &f.setup.plan.notifications {
        let id = n.id;
        let a = f.attempts(id);
        let report = f.report(id).map(|o| o.result);
        let meant = match f.setup.twist_of(id) {
            Some(t) => Meant::Refused(t),
            None => Meant::Delivered,
        };
        match meant {
            Meant::Delivered => {
                match a.accepted.len() {
                    0 => {
                        let transient = f.report(id).is_some_and(|o| {
                            (o.result == ResultKind::Error && f.setup.transient_errors)
                                || matches!(o.result, ResultKind::Failed | ResultKind::Error)
                                    && o.reason.as_deref().is_some_and(|r| {
                                        f.setup.transient.iter().any(|t| r.contains(t))
                                    })
                        });
                        if transient {
                            fold.add(
                                Grade::NonStrict,
                                "not retried: the temporary failure was reported to the caller",
                                id,
                                a.all_seqs(),
                            );
                        } else if report == Some(ResultKind::Sent) {
                            fold.add(
                                Grade::Failed,
                                "lost silently (reported sent, never accepted)",
                                id,
                                a.all_seqs(),
                            );
                        } else {
                            fold.add(Grade::Failed, "never delivered", id, a.all_seqs());
                        }
                    }
                    1 => {}
                    _ if tolerated => fold.add(
                        Grade::Ok,
                        "delivered more than once (resent after a cut with no answer; unavoidable here)",
                        id,
                        a.accepted.clone(),
                    ),
                    _ => fold.add(
                        Grade::Failed,
                        "duplicated (accepted more than once)",
                        id,
                        a.accepted.clone(),
                    ),
                }
                if !a.accepted.is_empty() {
                    match report {
                        None => fold.add(Grade::Failed, "no report line", id, vec![]),
                        Some(ResultKind::Sent) => {}
                        Some(ResultKind::Unknown) => fold.add(
                            Grade::Ok,
                            "delivered, the library never said so",
                            id,
                            vec![],
                        ),
                        Some(ResultKind::Error) if f.setup.transient_errors => fold.add(
                            Grade::Ok,
                            "delivered, but the cut connection swallowed the answer (reported error)",
                            id,
                            a.accepted.clone(),
                        ),
                        Some(_) => fold.add(
                            Grade::Failed,
                            "wrong report: delivered but reported as failed",
                            id,
                            a.accepted.clone(),
                        ),
                    }
                }
            }
            Meant::Refused(_) => {
                match report {
                    None if a.sent() == 0 => fold.add(Grade::Failed, "no report line", id, vec![]),
                    None => fold.add(Grade::Failed, "no report line", id, a.all_seqs()),
                    Some(ResultKind::Sent) if tolerated => fold.add(
                        Grade::NonStrict,
                        "reported sent, though APNs cut the connection after it",
                        id,
                        a.all_seqs(),
                    ),
                    Some(ResultKind::Sent) => fold.add(
                        Grade::Failed,
                        "wrong report: refused by APNs but reported sent",
                        id,
                        a.all_seqs(),
                    ),
                    Some(_) => {}
                }
                if a.sent() > 1 && !tolerated {
                    fold.add(
                        Grade::Failed,
                        "resent after a permanent refusal",
                        id,
                        a.all_seqs(),
                    );
                }
            }
        }
    }
    out.extend(fold.into_findings());
    out
}

/// The case's grade: the worst finding; OK becomes INFORMATIONAL on reporting cases.
pub fn grade(case: &Case, findings: &[Finding]) -> Grade {
    let worst = findings.iter().map(|f| f.grade).max().unwrap_or(Grade::Ok);
    if worst == Grade::Ok && case.informational {
        Grade::Informational
    } else {
        worst
    }
}

/// One line saying why the grade is what it is.
pub fn summary(grade: Grade, findings: &[Finding], delivered: usize, planned: usize) -> String {
    let of = |g: Grade| -> Vec<&str> {
        findings
            .iter()
            .filter(|f| f.grade == g)
            .map(|f| f.text.as_str())
            .collect()
    };
    let worst = match grade {
        // A reporting case says what it saw.
        Grade::Informational if of(grade).is_empty() => of(Grade::Ok),
        Grade::Ok => Vec::new(),
        g => of(g),
    };
    if !worst.is_empty() {
        worst.join("; ")
    } else if delivered == planned {
        format!("all {planned} notifications delivered")
    } else {
        format!("{delivered} of {planned} notifications delivered, the rest refused as meant")
    }
}

/// Milliseconds between two events (for backoff checks).
pub fn gap_ms(earlier: &Event, later: &Event) -> u64 {
    later.time_ms.saturating_sub(earlier.time_ms)
}

/// The smallest pause a retry after a temporary error must leave (anything less is hammering).
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// Whether `protocol` is the legacy one (a convenience for case judges).
pub fn is_legacy(f: &Facts) -> bool {
    f.case.protocol == Protocol::Legacy
}
