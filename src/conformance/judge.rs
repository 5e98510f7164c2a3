//! Turns what happened in one run (the journal, the driver's report, how it ended) into
//! findings. Pure: the runner gathers the facts, this module only reads them.

use crate::conformance::case::{Case, Finding, Grade, Setup, Twist};
use crate::journal::{Event, EventKind};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::catalogue::catalogue;
    use crate::model::{DeviceToken, Environment, Notification, Protocol};

    fn case(id: &str) -> Case {
        catalogue().into_iter().find(|c| c.id == id).unwrap()
    }

    fn setup(c: &Case) -> Setup {
        let mut s = Setup::new(c.id);
        (c.setup)(&mut s, c.protocol);
        s
    }

    fn event(seq: u64, kind: EventKind, token: &str, reason: Option<&str>) -> Event {
        Event {
            seq,
            time_ms: seq * 10,
            connection: 1,
            protocol: Protocol::Http2,
            environment: Environment::Production,
            kind,
            notification: Some(Notification {
                token: DeviceToken::from_bytes(hex::decode(token).unwrap()),
                payload: bytes::Bytes::from_static(b"{}"),
                identifier: None,
                expiry: None,
                priority: 10,
                topic: None,
                push_type: None,
                collapse_id: None,
                apns_id: None,
                command: None,
            }),
            status: None,
            reason: reason.map(Into::into),
            detail: None,
        }
    }

    /// The findings for `c` when every planned notification is accepted once, except as
    /// `tweak` changes the journal and the report.
    fn judge(
        c: &Case,
        exit: Exit,
        tweak: impl Fn(&Setup, &mut Vec<Event>, &mut DriverOutput),
    ) -> (Grade, Vec<Finding>) {
        let s = setup(c);
        let mut events = Vec::new();
        let mut out = DriverOutput {
            done: true,
            ..DriverOutput::default()
        };
        for n in &s.plan.notifications {
            let refused = s.twist_of(n.id).is_some();
            let kind = if refused {
                EventKind::Rejected
            } else {
                EventKind::Accepted
            };
            events.push(event(events.len() as u64 + 1, kind, &n.token, None));
            out.outcomes.push(Outcome {
                id: n.id,
                result: if refused {
                    ResultKind::Failed
                } else {
                    ResultKind::Sent
                },
                reason: None,
                status: None,
                timestamp: None,
                apns_id: None,
            });
        }
        tweak(&s, &mut events, &mut out);
        let facts = Facts::new(c, &s, &out, &exit, &events);
        let findings = common(&facts);
        (grade(c, &findings), findings)
    }

    const OK_EXIT: Exit = Exit::Code { code: 0 };

    #[test]
    fn everything_once_is_ok() {
        assert_eq!(judge(&case("H1.1"), OK_EXIT, |_, _, _| {}).0, Grade::Ok);
        assert_eq!(judge(&case("H2.1"), OK_EXIT, |_, _, _| {}).0, Grade::Ok);
    }

    #[test]
    fn a_notification_reported_sent_but_never_accepted_is_lost() {
        let (g, f) = judge(&case("H1.1"), OK_EXIT, |_, ev, _| {
            ev.remove(3);
        });
        assert_eq!(g, Grade::Failed);
        assert!(f[0].text.starts_with("lost silently"), "{f:?}");
        assert!(f[0].text.contains("#4"));
    }

    #[test]
    fn duplicates_fail_unless_the_case_tolerates_them() {
        let dup = |s: &Setup, ev: &mut Vec<Event>, _: &mut DriverOutput| {
            ev.push(event(99, EventKind::Accepted, &s.token(2), None));
        };
        let (g, f) = judge(&case("H1.1"), OK_EXIT, dup);
        assert_eq!(g, Grade::Failed);
        assert_eq!(f[0].seqs, vec![2, 99]);
        assert_eq!(judge(&case("H4.2"), OK_EXIT, dup).0, Grade::Ok);
    }

    #[test]
    fn a_refused_notification_reported_sent_or_resent_fails() {
        let c = case("H2.1");
        let (g, _) = judge(&c, OK_EXIT, |_, _, out| {
            out.outcomes[4].result = ResultKind::Sent;
        });
        assert_eq!(g, Grade::Failed);
        let (g, f) = judge(&c, OK_EXIT, |s, ev, _| {
            ev.push(event(
                99,
                EventKind::Rejected,
                &s.token(5),
                Some("BadDeviceToken"),
            ));
        });
        assert_eq!(g, Grade::Failed);
        assert!(
            f[0].text.contains("resent after a permanent refusal"),
            "{f:?}"
        );
    }

    #[test]
    fn a_temporary_failure_left_to_the_caller_is_non_strict() {
        let (g, _) = judge(&case("H3.1"), OK_EXIT, |s, ev, out| {
            let t = s.token(5);
            ev.retain(|e| e.notification.as_ref().unwrap().token.to_hex() != t);
            ev.push(event(99, EventKind::Rejected, &t, Some("TooManyRequests")));
            out.outcomes[4].result = ResultKind::Failed;
            out.outcomes[4].reason = Some("TooManyRequests".into());
        });
        assert_eq!(g, Grade::NonStrict);
    }

    #[test]
    fn a_hang_or_a_crash_fails() {
        let (g, f) = judge(&case("H1.1"), Exit::Timeout { secs: 60 }, |_, _, _| {});
        assert_eq!(g, Grade::Failed);
        assert!(f[0].text.starts_with("hang"));
        let (g, _) = judge(&case("H1.1"), OK_EXIT, |_, _, out| out.done = false);
        assert_eq!(g, Grade::Failed);
    }

    #[test]
    fn reporting_cases_are_informational_when_nothing_is_wrong() {
        assert_eq!(
            judge(&case("H7.1"), OK_EXIT, |_, _, _| {}).0,
            Grade::Informational
        );
    }
}
