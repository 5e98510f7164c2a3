//! Turns what happened in one run (the journal, the driver's report, how it ended) into
//! findings. Pure: the runner gathers the facts, this module only reads them.

pub use crate::conformance::case::{Attempts, Exit, Facts};
use crate::conformance::case::{Case, Finding, Grade, Twist};
use crate::journal::{Event, EventKind};
use crate::plan::ResultKind;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

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
    lines: BTreeMap<(Grade, String), Gathered>,
}

/// Most ids and seqs printed per folded line: a 5000-notification loss stays readable.
const MAX_LISTED: usize = 12;

impl Fold {
    fn add(&mut self, grade: Grade, what: impl Into<String>, id: u32, seqs: Vec<u64>) {
        let e = self.lines.entry((grade, what.into())).or_default();
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
                seqs.dedup();
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
    let ended = f.exit_evidence();
    match f.exit {
        Exit::Code { code: 0 } => {}
        Exit::Code { code } => out.push(Finding::new(
            Grade::Failed,
            format!("the driver exited with status {code}"),
            ended.clone(),
        )),
        Exit::Signal => out.push(Finding::new(
            Grade::Failed,
            "the driver was killed by a signal (crash)",
            ended.clone(),
        )),
        Exit::Timeout { secs, killed_at_ms } => out.push(timeout_finding(f, *secs, *killed_at_ms)),
        Exit::Spawn { error } => out.push(Finding::new(
            Grade::Failed,
            format!("the driver could not be started: {error}"),
            ended.clone(),
        )),
    }
    if !f.output.done && matches!(f.exit, Exit::Code { .. }) {
        out.push(Finding::new(
            Grade::Failed,
            "the driver never printed {\"done\":true}",
            ended,
        ));
    }

    let tolerated = f.case.duplicates_tolerated;
    let fault = f.fault();
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
                        let (grade, what, mut seqs) = undelivered(f, id, &a, fault);
                        seqs.extend(a.all_seqs());
                        fold.add(grade, what, id, seqs);
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
            Meant::Refused(twist) => {
                match report {
                    None if a.sent() == 0 => fold.add(Grade::Failed, "no report line", id, vec![]),
                    None => fold.add(Grade::Failed, "no report line", id, a.all_seqs()),
                    // The library altered it (a payload shortened to fit) and APNs took that.
                    Some(_) if !a.accepted.is_empty() => fold.add(
                        Grade::Failed,
                        "delivered altered: the library changed a notification meant to be \
                         refused (APNs accepted what it sent)",
                        id,
                        a.all_seqs(),
                    ),
                    Some(ResultKind::Sent) if a.sent() == 0 => fold.add(
                        Grade::Failed,
                        "reported sent, never reached APNs",
                        id,
                        vec![],
                    ),
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
                    // Only an oversized payload may be refused by the library itself.
                    Some(_) if a.sent() == 0 && twist != Twist::OversizedPayload => fold.add(
                        Grade::Failed,
                        "reported failed without ever reaching APNs",
                        id,
                        vec![],
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
    out.extend(causes(f));
    out.extend(observed(f));
    out
}

/// Gives every costly finding that cites nothing the run's window (the driver's start to its
/// exit): a finding about something that never happened (never sent, never reported, feedback
/// never read) has no event of its own. Run over the common and the case's findings.
pub fn cite_window(f: &Facts, findings: &mut [Finding]) {
    let window = f.driver_window();
    for x in findings
        .iter_mut()
        .filter(|x| x.grade != Grade::Ok && x.seqs.is_empty())
    {
        x.seqs.clone_from(&window);
    }
}

/// Facts apnsim saw about the provider's connections that cost nothing but are worth knowing:
/// JWT quirks (iat not an integer, DER signatures, extra claims or header fields) and the SNI
/// names sent, each with the seqs of the connections that showed them.
pub fn observed(f: &Facts) -> Vec<Finding> {
    let mut facts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let list = |v: &serde_json::Value, key: &str| -> Vec<String> {
        v.get(key)
            .and_then(|x| x.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (e, o) in f.closed_observations() {
        if let Some(jwt) = o.get("jwt") {
            for form in list(jwt, "iat_forms")
                .into_iter()
                .filter(|x| x != "integer")
            {
                facts
                    .entry(format!("JWT iat sent as {form}"))
                    .or_default()
                    .push(e.seq);
            }
            for form in list(jwt, "signature_forms")
                .into_iter()
                .filter(|x| x != "raw")
            {
                facts
                    .entry(format!("JWT signature in {form} form"))
                    .or_default()
                    .push(e.seq);
            }
            for claim in list(jwt, "extra_claims") {
                facts
                    .entry(format!("JWT extra claim {claim}"))
                    .or_default()
                    .push(e.seq);
            }
            for field in list(jwt, "extra_header_fields") {
                facts
                    .entry(format!("JWT extra header field {field}"))
                    .or_default()
                    .push(e.seq);
            }
        }
    }
    for (e, o) in f.closed_observations() {
        // PROTOCOL.md 2.2: Apple asks for `authorization` and `:path` as literals without
        // indexing; H6.2 grades it, every other case shows it.
        if let Some(hpack) = o.get("hpack").and_then(|h| h.as_object()) {
            for (header, reps) in hpack {
                let reps: BTreeSet<String> = reps
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str())
                    .map(|r| r.trim_end_matches("+huffman").replace('_', " "))
                    .collect();
                for rep in reps {
                    facts
                        .entry(format!("HPACK {header} sent as {rep} (PROTOCOL.md 2.2)"))
                        .or_default()
                        .push(e.seq);
                }
            }
        }
        if o.get("priority_frames")
            .and_then(|v| v.as_u64())
            .is_some_and(|n| n > 0)
        {
            facts
                .entry("PRIORITY information sent (PROTOCOL.md 2.2: APNs ignores it)".into())
                .or_default()
                .push(e.seq);
        }
    }
    for e in f.connections() {
        let sni = e
            .detail
            .as_ref()
            .and_then(|d| d.get("sni"))
            .and_then(|s| s.as_str())
            .unwrap_or("none");
        facts.entry(format!("SNI {sni}")).or_default().push(e.seq);
    }
    facts
        .into_iter()
        .map(|(what, seqs)| Finding::new(Grade::Ok, format!("observed: {what}"), seqs))
        .collect()
}

/// A driver killed at its timeout: still delivering (too slow) or stuck (a hang), with progress.
fn timeout_finding(f: &Facts, secs: u64, killed_at_ms: u64) -> Finding {
    let accepted: Vec<&Event> = f.of_kind(EventKind::Accepted).collect();
    let planned = f.setup.plan.notifications.len();
    let delivered = f
        .setup
        .plan
        .notifications
        .iter()
        .filter(|n| !f.attempts(n.id).accepted.is_empty())
        .count();
    match accepted.last() {
        Some(last) if killed_at_ms > 0 => {
            let before = killed_at_ms.saturating_sub(last.time_ms);
            let how = if before <= 2_000 {
                "too slow: still delivering when the timeout hit"
            } else {
                "hang: stalled before the timeout"
            };
            Finding::new(
                Grade::Failed,
                format!(
                    "{how} ({delivered} of {planned} delivered, the last {:.1} s before the {secs} s timeout)",
                    before as f64 / 1000.0
                ),
                vec![last.seq],
            )
        }
        _ => Finding::new(
            Grade::Failed,
            format!(
                "hang: the driver had not finished after {secs} s and was killed ({delivered} of {planned} delivered)"
            ),
            accepted.last().map(|e| vec![e.seq]).unwrap_or_default(),
        ),
    }
}

/// Why a notification meant to arrive never did, and what it costs: an `error` (or a temporary
/// reason) is excused only by the journal's evidence that the case's fault hit it.
fn undelivered(
    f: &Facts,
    id: u32,
    a: &Attempts,
    fault: Option<&Event>,
) -> (Grade, String, Vec<u64>) {
    let Some(o) = f.report(id) else {
        return (
            Grade::Failed,
            "never delivered, no report line".into(),
            vec![],
        );
    };
    let reason = o.reason.as_deref().unwrap_or("");
    let temporary = f.setup.transient.iter().any(|t| reason.contains(t));
    if matches!(o.result, ResultKind::Failed | ResultKind::Error) && temporary {
        // The temporary answer must be APNs's, for this notification.
        let answered: Vec<u64> = a
            .rejected
            .iter()
            .filter(|(_, r)| f.setup.transient.iter().any(|t| r.contains(t)))
            .map(|(s, _)| *s)
            .collect();
        return if answered.is_empty() {
            (
                Grade::Failed,
                format!("never delivered, reported {reason:?} though APNs never answered it so"),
                vec![],
            )
        } else {
            (
                Grade::NonStrict,
                "not retried: the temporary failure was reported to the caller".into(),
                answered,
            )
        };
    }
    if o.result == ResultKind::Error && f.setup.transient_errors {
        let Some(fault) = fault else {
            return (
                Grade::Failed,
                "never delivered, reported error though the case's fault never fired".into(),
                vec![],
            );
        };
        let what = fault_name(fault);
        // The provider went on after the fault: it opened a new connection, or (a pool, like Go's
        // transport opening two at once) sent on another connection it already had. Either way
        // the error was not the library giving up; which of the two happened is timing.
        let reopened = f
            .connections()
            .into_iter()
            .find(|e| e.seq > fault.seq && e.connection != fault.connection)
            .or_else(|| {
                let first = first_sent_after(f, fault)?;
                let seq = *f.attempts(first).all_seqs().first()?;
                f.event(seq)
            });
        let Some(reopened) = reopened else {
            return (
                Grade::Failed,
                format!(
                    "never delivered: the provider never reconnected after {what} at seq {}",
                    fault.seq
                ),
                vec![fault.seq],
            );
        };
        let seen_in_flight = a.all_seqs().into_iter().any(|s| {
            s >= fault.seq && f.event(s).is_some_and(|e| e.connection == fault.connection)
        });
        // What the provider wrote just before the cut may never be read by the server: whether
        // the journal shows it is the machine's timing, not the library's behaviour. So a
        // notification the provider issued before it learned of the fault (its plan id precedes
        // the first one it sent after the fault on another connection) counts as in flight too.
        let in_flight =
            seen_in_flight || first_sent_after(f, fault).is_some_and(|first| id < first);
        return if in_flight {
            (
                Grade::NonStrict,
                format!(
                    "not retried: in flight when {what} at seq {} cut its connection, reported error",
                    fault.seq
                ),
                vec![fault.seq, reopened.seq],
            )
        } else {
            (
                Grade::Failed,
                format!(
                    "never delivered, reported error though it was not in flight when {what} at seq {} fired",
                    fault.seq
                ),
                vec![fault.seq],
            )
        };
    }
    if o.result == ResultKind::Sent {
        let text = if a.sent() == 0 {
            "lost silently (reported sent, never reached APNs)"
        } else {
            "lost silently (reported sent, never accepted)"
        };
        return (Grade::Failed, text.into(), vec![]);
    }
    (Grade::Failed, "never delivered".into(), vec![])
}

/// The lowest plan id the provider first sent after `fault`, on another connection: where it
/// went on once it knew of the fault (retries of earlier ones aside; providers send in plan
/// order, concurrently or not).
fn first_sent_after(f: &Facts, fault: &Event) -> Option<u32> {
    f.setup
        .plan
        .notifications
        .iter()
        .filter(|n| {
            f.attempts(n.id).all_seqs().first().is_some_and(|&s| {
                s > fault.seq && f.event(s).is_some_and(|e| e.connection != fault.connection)
            })
        })
        .map(|n| n.id)
        .min()
}

/// How the findings name a fault rule's action.
fn fault_name(e: &Event) -> &'static str {
    let d = e.detail.as_ref();
    let action = d
        .and_then(|d| d.get("rule"))
        .and_then(|r| r.get("action"))
        .and_then(|a| a.as_str())
        .unwrap_or("");
    let reset = d.and_then(|d| d.get("reset")).and_then(|r| r.as_bool()) == Some(true);
    match action {
        "goaway" => "the GOAWAY",
        "close" | "drop" if reset => "the reset",
        "close" => "the connection cut",
        "drop" => "the silent close",
        "error" => "the error-response",
        _ => "the fault",
    }
}

/// Why notifications never reached apnsim, from the journal: connections refused in the TLS
/// handshake or closed for a protocol error before any notification, grouped by their detail.
/// Empty when every planned notification reached apnsim at least once.
pub fn causes(f: &Facts) -> Vec<Finding> {
    let unseen = f
        .setup
        .plan
        .notifications
        .iter()
        .filter(|n| f.attempts(n.id).sent() == 0)
        // An oversized payload the library refused itself (reported, not sent) is not a loss.
        .filter(|n| {
            !(f.setup.twist_of(n.id) == Some(Twist::OversizedPayload)
                && f.report(n.id).is_some_and(|o| o.result != ResultKind::Sent))
        })
        // Nor is one the fault excused (in flight, its bytes cut before the server read them).
        .filter(|n| undelivered(f, n.id, &f.attempts(n.id), f.fault()).0 != Grade::NonStrict)
        .count();
    if unseen == 0 {
        return Vec::new();
    }
    let mut groups: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in f.events {
        let d = e.detail.as_ref();
        let why = match e.kind {
            EventKind::ConnectionRefused => d
                .and_then(|d| d.get("error").or_else(|| d.get("reason")))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .map(|w| format!("refused in the TLS handshake: {w}")),
            EventKind::ConnectionClosed => d
                .and_then(|d| d.get("connection_error"))
                .and_then(|c| c.get("message"))
                .and_then(|m| m.as_str())
                .map(|m| format!("closed for a protocol error: {m}")),
            _ => None,
        };
        if let Some(why) = why {
            groups.entry(why).or_default().push(e.seq);
        }
    }
    let n = f.setup.plan.notifications.len();
    if groups.is_empty() {
        let opened: Vec<u64> = f.connections().iter().map(|e| e.seq).collect();
        let window = f.driver_window();
        let server_events = f.events.iter().filter(|e| !window.contains(&e.seq)).count();
        let text = if server_events == 0 {
            let between = match window.as_slice() {
                [a, b] => format!(" between the driver's start (seq {a}) and its exit (seq {b})"),
                _ => String::new(),
            };
            return vec![Finding::new(
                Grade::Failed,
                format!("{unseen} of {n} notifications never reached apnsim: no connection was ever made{between}"),
                window,
            )];
        } else if opened.is_empty() {
            format!("{unseen} of {n} notifications never reached apnsim: no connection on the case's protocol")
        } else {
            format!(
                "{unseen} of {n} notifications never reached apnsim over the {} connection(s) opened",
                opened.len()
            )
        };
        return vec![Finding::new(Grade::Failed, text, opened)];
    }
    groups
        .into_iter()
        .map(|(why, seqs)| {
            let list: Vec<String> = seqs.iter().take(MAX_LISTED).map(u64::to_string).collect();
            Finding::new(
                Grade::Failed,
                format!(
                    "{} connection(s) {why} (seq {}); {unseen} of {n} notifications never reached apnsim",
                    seqs.len(),
                    list.join(", ")
                ),
                seqs,
            )
        })
        .collect()
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
    use crate::conformance::case::Setup;
    use crate::conformance::catalogue::catalogue;
    use crate::model::{DeviceToken, Environment, Notification, Protocol};
    use crate::plan::{DriverOutput, Outcome};

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
                channel: None,
            });
        }
        tweak(&s, &mut events, &mut out);
        let facts = Facts::new(c, &s, &out, &exit, &events);
        let mut findings = common(&facts);
        findings.extend((c.judge)(&facts));
        cite_window(&facts, &mut findings);
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
        let (g, f) = judge(
            &case("H1.1"),
            Exit::Timeout {
                secs: 60,
                killed_at_ms: 0,
            },
            |_, _, _| {},
        );
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

    /// A provider that never connects and reports `error` for every notification.
    fn never_connects(s: &Setup, ev: &mut Vec<Event>, out: &mut DriverOutput) {
        ev.clear();
        for (o, n) in out.outcomes.iter_mut().zip(&s.plan.notifications) {
            o.result = ResultKind::Error;
            o.reason = Some("connection refused".into());
            let _ = n;
        }
    }

    #[test]
    fn a_provider_that_never_connects_fails_the_fault_cases_too() {
        for id in ["L2.2", "L3.1", "H4.1", "H4.2", "H3.1", "H2.1", "L2.3"] {
            let (g, f) = judge(&case(id), OK_EXIT, never_connects);
            assert_eq!(g, Grade::Failed, "{id}: {f:?}");
            assert!(
                f.iter().all(|x| x.grade != Grade::NonStrict),
                "{id}: nothing is excused: {f:?}"
            );
            assert!(
                f.iter().any(|x| x.text.contains("never reached apnsim")),
                "{id}: the cause is named: {f:?}"
            );
        }
    }

    fn with_detail(mut e: Event, detail: serde_json::Value) -> Event {
        e.detail = Some(detail);
        e
    }

    fn conn_event(seq: u64, kind: EventKind, connection: u64) -> Event {
        let mut e = event(seq, kind, &"00".repeat(32), None);
        e.notification = None;
        e.connection = connection;
        e
    }

    /// H4.1 where the GOAWAY hits #11 (seq 12) and everything from #11 on is reported `error`;
    /// `reconnect` says whether a second connection was opened after it.
    fn goaway_run(reconnect: bool) -> (Grade, Vec<Finding>) {
        judge(&case("H4.1"), OK_EXIT, move |s, ev, out| {
            ev.truncate(10);
            ev.insert(0, conn_event(0, EventKind::ConnectionOpened, 1));
            let t = s.token(11);
            let mut fault = event(12, EventKind::Dropped, &t, None);
            fault = with_detail(
                fault,
                serde_json::json!({"rule": {"action": "goaway", "rule": 0}}),
            );
            ev.push(fault);
            ev.push(event(13, EventKind::Discarded, &s.token(12), None));
            if reconnect {
                ev.push(conn_event(14, EventKind::ConnectionOpened, 2));
            }
            for o in out.outcomes.iter_mut().skip(10) {
                o.result = ResultKind::Error;
                o.reason = Some("connection lost".into());
            }
        })
    }

    #[test]
    fn an_error_is_excused_only_in_flight_on_the_faulted_connection_after_a_reconnect() {
        let (g, f) = goaway_run(false);
        assert_eq!(g, Grade::Failed, "{f:?}");
        let t = f
            .iter()
            .find(|x| {
                x.text
                    .contains("never reconnected after the GOAWAY at seq 12")
            })
            .unwrap_or_else(|| panic!("{f:?}"));
        assert!(t.seqs.contains(&12));

        let (g, f) = goaway_run(true);
        assert_eq!(g, Grade::Failed, "#13-#30 were never in flight: {f:?}");
        let excused = f
            .iter()
            .find(|x| x.grade == Grade::NonStrict)
            .unwrap_or_else(|| panic!("{f:?}"));
        assert!(
            excused.text.contains("#11") && excused.text.contains("#12"),
            "{f:?}"
        );
        assert!(!excused.text.contains("#13"), "{f:?}");
        assert!(excused.seqs.contains(&12) && excused.seqs.contains(&14));
        assert!(f
            .iter()
            .any(|x| x.grade == Grade::Failed && x.text.contains("not in flight")));
    }

    #[test]
    fn a_pool_that_goes_on_over_a_connection_it_already_had_has_moved_on() {
        // Go's transport may open two connections at once; after the reset of the first, the
        // rest go out on the second, opened before the fault: the library did not give up.
        let (g, f) = judge(&case("H4.2"), OK_EXIT, |s, ev, out| {
            ev.clear();
            ev.push(conn_event(1, EventKind::ConnectionOpened, 1));
            ev.push(conn_event(2, EventKind::ConnectionOpened, 2));
            for i in 1..=10u32 {
                ev.push(event(
                    2 + u64::from(i),
                    EventKind::Accepted,
                    &s.token(i),
                    None,
                ));
            }
            ev.push(with_detail(
                event(13, EventKind::Dropped, &s.token(11), None),
                serde_json::json!({"rule": {"action": "close", "rule": 0}, "reset": true}),
            ));
            for i in 12..=30u32 {
                let mut e = event(2 + u64::from(i), EventKind::Accepted, &s.token(i), None);
                e.connection = 2;
                ev.push(e);
            }
            out.outcomes[10].result = ResultKind::Error;
            out.outcomes[10].reason = Some("connection reset by peer".into());
        });
        assert_eq!(g, Grade::NonStrict, "{f:?}");
        let excused = f
            .iter()
            .find(|x| x.grade == Grade::NonStrict)
            .unwrap_or_else(|| panic!("{f:?}"));
        assert!(excused.text.contains("#11"), "{f:?}");
        assert!(
            excused.seqs.contains(&13) && excused.seqs.contains(&14),
            "cites the fault and the first delivery after it on the other connection: {f:?}"
        );
    }

    #[test]
    fn a_temporary_reason_is_excused_only_when_apns_gave_it() {
        let (g, f) = judge(&case("H3.1"), OK_EXIT, |s, ev, out| {
            let t = s.token(5);
            ev.retain(|e| e.notification.as_ref().unwrap().token.to_hex() != t);
            out.outcomes[4].result = ResultKind::Failed;
            out.outcomes[4].reason = Some("TooManyRequests".into());
        });
        assert_eq!(g, Grade::Failed, "{f:?}");
    }

    #[test]
    fn refused_connections_are_cited_grouped_with_their_seqs() {
        let (g, f) = judge(&case("H1.1"), OK_EXIT, |_, ev, out| {
            ev.clear();
            for seq in [1, 4, 7] {
                ev.push(with_detail(
                    conn_event(seq, EventKind::ConnectionRefused, seq),
                    serde_json::json!({"error": "the client offered only TLS 1.0"}),
                ));
            }
            for o in &mut out.outcomes {
                o.result = ResultKind::Error;
            }
        });
        assert_eq!(g, Grade::Failed);
        let c = f
            .iter()
            .find(|x| {
                x.text
                    .starts_with("3 connection(s) refused in the TLS handshake")
            })
            .unwrap_or_else(|| panic!("{f:?}"));
        assert_eq!(c.seqs, vec![1, 4, 7]);
        assert!(
            c.text.contains("(seq 1, 4, 7)") && c.text.contains("TLS 1.0"),
            "{c:?}"
        );
    }

    #[test]
    fn an_oversized_payload_shortened_by_the_library_is_not_called_refused() {
        let (g, f) = judge(&case("H2.3"), OK_EXIT, |s, ev, out| {
            let t = s.token(5);
            for e in ev.iter_mut() {
                if e.notification.as_ref().unwrap().token.to_hex() == t {
                    e.kind = EventKind::Accepted;
                }
            }
            out.outcomes[4].result = ResultKind::Sent;
        });
        assert_eq!(g, Grade::Failed);
        assert!(
            f.iter().all(|x| !x.text.contains("refused by APNs")),
            "{f:?}"
        );
        assert!(
            f.iter().any(|x| x.text.starts_with("delivered altered")),
            "{f:?}"
        );
    }

    #[test]
    fn a_timeout_while_still_delivering_reports_progress() {
        let (g, f) = judge(
            &case("H1.1"),
            Exit::Timeout {
                secs: 60,
                killed_at_ms: 100 + 300,
            },
            |_, _, _| {},
        );
        assert_eq!(g, Grade::Failed);
        assert!(
            f[0].text.contains("still delivering")
                && f[0].text.contains("10 of 10 delivered, the last 0.3 s"),
            "{f:?}"
        );
    }

    /// Spreads the run's notifications over `conns` connections, opened (and, with `churn`,
    /// each closed before the next opens) around them, signing one JWT per connection.
    fn over_connections(
        conns: u64,
        churn: bool,
    ) -> impl Fn(&Setup, &mut Vec<Event>, &mut DriverOutput) {
        move |_, ev, _| {
            let notes: Vec<Event> = std::mem::take(ev);
            let per = notes.len().div_ceil(conns as usize);
            let mut seq = 1000;
            let mut next = |ev: &mut Vec<Event>, e: Event| {
                let mut e = e;
                seq += 1;
                e.seq = seq;
                ev.push(e);
            };
            for (k, chunk) in notes.chunks(per).enumerate() {
                let c = k as u64 + 1;
                next(ev, conn_event(0, EventKind::ConnectionOpened, c));
                next(
                    ev,
                    with_detail(
                        conn_event(0, EventKind::Observation, c),
                        serde_json::json!({"jwt": {"iss": "TEAM000001", "fingerprint": format!("{c:016x}")}}),
                    ),
                );
                for n in chunk {
                    let mut n = n.clone();
                    n.connection = if churn { c } else { 1 + (n.seq % conns) };
                    next(ev, n);
                }
                if churn {
                    next(ev, conn_event(0, EventKind::ConnectionClosed, c));
                }
            }
        }
    }

    #[test]
    fn a_kept_pool_is_not_churn_but_reconnecting_between_sends_is() {
        let c = case("H7.1");
        let (g, f) = judge(&c, OK_EXIT, over_connections(2, false));
        assert_eq!(g, Grade::Informational, "{f:?}");
        assert!(f.iter().any(|x| x.text.contains("a pool of 2")), "{f:?}");
        let (g, f) = judge(&c, OK_EXIT, over_connections(2, true));
        assert_eq!(g, Grade::NonStrict, "{f:?}");
        let (g, _) = judge(&c, OK_EXIT, over_connections(20, false));
        assert_eq!(g, Grade::NonStrict, "a connection per notification");
    }

    #[test]
    fn new_tokens_are_counted_per_team_across_connections() {
        let c = case("H5.3");
        let (g, f) = judge(&c, OK_EXIT, over_connections(1, false));
        assert_eq!(g, Grade::Ok, "{f:?}");
        let (g, f) = judge(&c, OK_EXIT, over_connections(20, true));
        assert_eq!(g, Grade::NonStrict, "{f:?}");
        let x = f.iter().find(|x| x.grade == Grade::NonStrict).unwrap();
        assert!(x.text.starts_with("20 JWTs signed"), "{x:?}");
        assert_eq!(x.seqs.len(), 20);
    }

    #[test]
    fn tokens_are_counted_per_team_by_their_iss() {
        let c = case("H5.3");
        let two_teams = |_: &Setup, ev: &mut Vec<Event>, _: &mut DriverOutput| {
            for (seq, team) in [(100, "TEAMA00001"), (101, "TEAMB00001")] {
                ev.push(with_detail(
                    conn_event(seq, EventKind::Observation, seq),
                    serde_json::json!({"jwt": {"iss": team, "fingerprint": format!("{seq:016x}")}}),
                ));
            }
        };
        let (g, f) = judge(&c, OK_EXIT, two_teams);
        assert_eq!(g, Grade::Ok, "one token per team: {f:?}");
        let (g, f) = judge(&c, OK_EXIT, |s, ev, out| {
            two_teams(s, ev, out);
            ev.push(with_detail(
                conn_event(102, EventKind::Observation, 102),
                serde_json::json!({"jwt": {"iss": "TEAMA00001", "fingerprint": "ff"}}),
            ));
        });
        assert_eq!(g, Grade::NonStrict, "{f:?}");
        let x = f.iter().find(|x| x.grade == Grade::NonStrict).unwrap();
        assert!(x.text.starts_with("2 JWTs signed for TEAMA00001"), "{x:?}");
        assert_eq!(x.seqs, vec![100, 102]);
    }

    fn marker(seq: u64, what: serde_json::Value) -> Event {
        with_detail(
            conn_event(seq, EventKind::Observation, 0),
            serde_json::json!({ crate::conformance::case::DRIVER_MARKER: what }),
        )
    }

    #[test]
    fn a_driver_that_ended_badly_is_cited_by_the_journal() {
        let (g, f) = judge(&case("H1.1"), Exit::Code { code: 3 }, |_, ev, _| {
            ev.insert(0, marker(0, serde_json::json!("started")));
            ev.push(marker(50, serde_json::json!({"how": "code", "code": 3})));
        });
        assert_eq!(g, Grade::Failed);
        let x = f
            .iter()
            .find(|x| x.text.contains("exited with status 3"))
            .unwrap_or_else(|| panic!("{f:?}"));
        assert_eq!(
            x.seqs,
            vec![10, 50],
            "the last event before the exit, and the exit"
        );
    }

    #[test]
    fn a_provider_that_never_connected_is_cited_by_the_drivers_window() {
        let (g, f) = judge(&case("H1.1"), OK_EXIT, |s, ev, out| {
            never_connects(s, ev, out);
            ev.push(marker(1, serde_json::json!("started")));
            ev.push(marker(2, serde_json::json!({"how": "code", "code": 0})));
        });
        assert_eq!(g, Grade::Failed);
        for x in f.iter().filter(|x| x.grade != Grade::Ok) {
            assert_eq!(x.seqs, vec![1, 2], "{x:?}");
        }
        assert!(f.iter().any(|x| x.text.contains(
            "no connection was ever made between the driver's start (seq 1) and its exit (seq 2)"
        )));
    }

    #[test]
    fn hpack_and_priority_facts_are_shown_on_every_case() {
        let (g, f) = judge(&case("H1.2"), OK_EXIT, |_, ev, _| {
            ev.push(with_detail(
                conn_event(77, EventKind::ConnectionClosed, 1),
                serde_json::json!({"observations": {
                    "hpack": {"authorization": ["without_indexing+huffman"], ":path": ["incremental_indexing"]},
                    "priority_frames": 2
                }}),
            ));
        });
        assert_eq!(g, Grade::Ok, "facts cost nothing outside H6.1/H6.2: {f:?}");
        for text in [
            "observed: HPACK authorization sent as without indexing",
            "observed: HPACK :path sent as incremental indexing",
            "observed: PRIORITY information sent",
        ] {
            let x = f
                .iter()
                .find(|x| x.text.starts_with(text))
                .unwrap_or_else(|| panic!("{text}: {f:?}"));
            assert_eq!(x.seqs, vec![77]);
        }
    }

    /// H4.2-like: the reset hits #11 (seq 12); #12 is reported error and never journaled (its
    /// bytes were unread when the connection was cut); the provider reconnects (seq 14) and
    /// sends `resumed_from`..=#30 there.
    fn reset_run(resumed_from: u32) -> (Grade, Vec<Finding>) {
        judge(&case("H4.2"), OK_EXIT, move |s, ev, out| {
            let later: Vec<Event> = ev.split_off(10);
            ev.insert(0, conn_event(0, EventKind::ConnectionOpened, 1));
            ev.push(with_detail(
                event(12, EventKind::Dropped, &s.token(11), None),
                serde_json::json!({"rule": {"action": "close", "rule": 0}, "reset": true}),
            ));
            ev.push(conn_event(14, EventKind::ConnectionOpened, 2));
            for (k, mut e) in later.into_iter().enumerate() {
                let id = k as u32 + 11;
                if id >= resumed_from {
                    e.seq = 100 + u64::from(id);
                    e.connection = 2;
                    ev.push(e);
                }
            }
            for o in out.outcomes.iter_mut() {
                if o.id >= 11 && o.id < resumed_from {
                    o.result = ResultKind::Error;
                }
            }
        })
    }

    #[test]
    fn a_request_cut_before_the_server_read_it_is_in_flight_whatever_the_timing() {
        let (g, f) = reset_run(13);
        assert_eq!(
            g,
            Grade::NonStrict,
            "#12 was issued before the reset: {f:?}"
        );
        let (g, f) = reset_run(12);
        assert_eq!(g, Grade::NonStrict, "{f:?}");
    }
}
