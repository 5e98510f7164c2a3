//! The conformance cases: what each sets up, what a correct provider does (with the
//! PROTOCOL.md fact it follows), and the case-specific part of its judgement.

use crate::conformance::case::Facts;
use crate::conformance::case::{AuthChoice, Case, Finding, Grade, Twist, UNREGISTERED_AT_MS};
use crate::conformance::judge::{gap_ms, MIN_BACKOFF};
use crate::journal::EventKind;
use crate::model::wire::Reason;
use crate::model::{Environment, Protocol};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const SHORT: Duration = Duration::from_secs(60);

/// The answer delay of the cases refused with an error-response: every library has written its
/// whole batch long before it, so how fast one writes changes nothing, and it lies in Apple's
/// 200–500 ms (PROTOCOL.md 1.7).
const ANSWERED: &str = "[settings]\nlegacy_answer_delay_ms = 300";
/// The delay of the cases cut with no answer (drop, reset): still longer than any library takes
/// to write its batch, and shorter than the 200 ms a resender that pins a silent close waits after
/// each write, so the close always lands in the wait of the notification that caused it (one
/// round trip, PROTOCOL.md 1.7).
const CUT: &str = "[settings]\nlegacy_answer_delay_ms = 100";
const LONG: Duration = Duration::from_secs(240);

/// Every case, in catalogue order.
pub fn catalogue() -> Vec<Case> {
    let legacy = |id, title, expectation, setup, judge| Case {
        id,
        title,
        expectation,
        protocol: Protocol::Legacy,
        auth: AuthChoice::Certificate,
        loss: false,
        timeout: SHORT,
        setup,
        judge,
        duplicates_tolerated: false,
        informational: false,
    };
    let http2 = |id, title, expectation, auth, setup, judge| Case {
        id,
        title,
        expectation,
        protocol: Protocol::Http2,
        auth,
        loss: false,
        timeout: SHORT,
        setup,
        judge,
        duplicates_tolerated: false,
        informational: false,
    };
    vec![
        legacy(
            "L1.1",
            "Happy path",
            "10 notifications on the production gateway: each accepted once, each reported sent.",
            |s, p| {
                s.batch(10, p);
            },
            no_more,
        ),
        Case {
            timeout: LONG,
            ..legacy(
                "L1.2",
                "Large batch",
                "5000 notifications through one connection: none lost, none twice.",
                |s, p| {
                    s.batch(5000, p);
                },
                no_more,
            )
        },
        legacy(
            "L1.3",
            "Sandbox gateway",
            "5 notifications on the sandbox gateway with the sandbox certificate (PROTOCOL.md 1.1).",
            |s, p| {
                s.environment = Environment::Sandbox;
                s.batch(5, p);
            },
            no_more,
        ),
        Case {
            loss: true,
            ..legacy(
                "L2.1",
                "Invalid token mid-batch",
                "#10 of 20 is a sandbox token: status 8 names it 300 ms later and the gateway closes; \
                 #10 is reported failed and #11–#20 are resent exactly once (PROTOCOL.md 1.6, 1.7).",
                |s, p| {
                    s.batch(20, p)
                        .twist(10, Twist::WrongEnvironmentToken, p)
                        .scenario(ANSWERED);
                },
                no_more,
            )
        },
        Case {
            loss: true,
            duplicates_tolerated: true,
            ..legacy(
                "L2.2",
                "Sandbox token, silent drop",
                "#10 of 20 is a sandbox token and the gateway closes with no error-response, as \
                 providers often saw: nothing written after it may be lost; resending what was \
                 written before it is unavoidable and only counted (PROTOCOL.md 1.7).",
                |s, p| {
                    s.transient_errors = true;
                    s.batch(20, p)
                        .twist(10, Twist::WrongEnvironmentToken, p)
                        .scenario(
                            "[[rules]]\nname = \"silent drop after a sandbox token\"\n\
                             when = { protocol = \"legacy\", token_environment_mismatch = true }\n\
                             then = { action = \"drop\" }",
                        )
                        .scenario(CUT);
                },
                no_more,
            )
        },
        Case {
            loss: true,
            ..legacy(
                "L2.3",
                "Payload too large",
                "#5 of 10 carries a payload over 2048 bytes: it is refused (status 7, or by the \
                 library itself) and the rest are delivered once (PROTOCOL.md 1.5, 1.6).",
                |s, p| {
                    s.batch(10, p)
                        .twist(5, Twist::OversizedPayload, p)
                        .scenario(ANSWERED);
                },
                no_more,
            )
        },
        Case {
            loss: true,
            ..legacy(
                "L2.4",
                "Shutdown mid-batch",
                "After 10 of 30 the gateway answers status 10 naming the last notification it \
                 processed: everything after it is resent on a new connection, once (PROTOCOL.md 1.6).",
                |s, p| {
                    s.batch(30, p).scenario(&once_at_11th(
                        "shutdown",
                        "legacy",
                        r#"{ action = "error", status = "shutdown" }"#,
                    ))
                    .scenario(ANSWERED);
                },
                judge_shutdown,
            )
        },
        Case {
            loss: true,
            duplicates_tolerated: true,
            ..legacy(
                "L3.1",
                "Connection reset mid-batch",
                "The 11th of 30 ends in a TCP reset: nothing may be lost; what was written before \
                 the reset may be resent (the protocol acknowledges nothing) and is counted.",
                |s, p| {
                    s.transient_errors = true;
                    s.batch(30, p).scenario(&once_at_11th(
                        "reset",
                        "legacy",
                        r#"{ action = "drop", reset = true }"#,
                    ))
                    .scenario(CUT);
                },
                no_more,
            )
        },
        Case {
            loss: true,
            ..legacy(
                "L3.2",
                "Error-response in one burst with close_notify",
                "#10 of 20 is a sandbox token, and the 6-byte error-response and the TLS close \
                 arrive in one write (`close = \"burst\"`), as on loopback: a client that drops \
                 the data of a read ending in EOF misses it. #10 must still be reported failed \
                 and #11–#20 resent exactly once (PROTOCOL.md 1.1, 1.6, 1.7).",
                |s, p| {
                    s.batch(20, p)
                        .twist(10, Twist::WrongEnvironmentToken, p)
                        .scenario(
                            "[[rules]]\nname = \"status 8 in one burst with close_notify\"\n\
                             when = { protocol = \"legacy\", token_environment_mismatch = true }\n\
                             then = { action = \"error\", status = \"invalid_token\" }\n\
                             close = \"burst\"",
                        )
                        .scenario(ANSWERED);
                },
                no_more,
            )
        },
        legacy(
            "L4.1",
            "Feedback service",
            "Three tokens of the app were unregistered: after sending, the provider reads the \
             feedback service and reports exactly those tokens with their times in seconds \
             (PROTOCOL.md 1.8).",
            |s, p| {
                s.batch(3, p);
                s.plan.read_feedback = true;
                for (i, id) in FEEDBACK_IDS.iter().enumerate() {
                    let token = s.token(*id);
                    s.scenario(&format!(
                        "[[tokens]]\ntoken = \"{token}\"\ntopic = \"{}\"\nunregistered_at = {}",
                        crate::DEFAULT_TOPIC,
                        feedback_time_ms(i)
                    ));
                }
            },
            judge_feedback,
        ),
        Case {
            informational: true,
            ..legacy(
                "L5.1",
                "Connection reuse and frame format",
                "20 notifications over one connection in command 2 (or 1): a connection per \
                 notification or command 0, which Apple cannot answer, is NON-STRICT \
                 (PROTOCOL.md 1.2, 1.7).",
                |s, p| {
                    s.batch(20, p);
                },
                judge_legacy_manners,
            )
        },
        http2(
            "H1.1",
            "Happy path, certificate",
            "10 notifications with a client certificate: each answered 200 once, reported sent.",
            AuthChoice::Certificate,
            |s, p| {
                s.batch(10, p);
            },
            no_more,
        ),
        http2(
            "H1.2",
            "Happy path, token",
            "10 notifications with an ES256 provider token (PROTOCOL.md 2.8).",
            AuthChoice::Token,
            |s, p| {
                s.batch(10, p);
            },
            no_more,
        ),
        Case {
            timeout: LONG,
            ..http2(
                "H1.3",
                "Large batch",
                "1000 notifications: none lost, none twice.",
                AuthChoice::Either,
                |s, p| {
                    s.batch(1000, p);
                },
                no_more,
            )
        },
        http2(
            "H1.4",
            "Sandbox environment",
            "5 notifications to the sandbox endpoint (PROTOCOL.md 2.1).",
            AuthChoice::Either,
            |s, p| {
                s.environment = Environment::Sandbox;
                s.batch(5, p);
            },
            no_more,
        ),
        http2(
            "H2.1",
            "BadDeviceToken not retried",
            "#5 of 10 is a sandbox token: 400 BadDeviceToken is reported for it, it is not \
             retried, the other 9 are delivered once (PROTOCOL.md 2.7).",
            AuthChoice::Either,
            |s, p| {
                s.batch(10, p).twist(5, Twist::WrongEnvironmentToken, p);
            },
            judge_bad_token,
        ),
        http2(
            "H2.2",
            "410 Unregistered with its timestamp",
            "#5 of 10 was unregistered at 1508249865488 ms: the 410 and that timestamp, to the \
             millisecond, reach the caller (PROTOCOL.md 2.6, 2.7).",
            AuthChoice::Either,
            |s, p| {
                s.batch(10, p).twist(5, Twist::Unregistered, p);
            },
            judge_unregistered,
        ),
        http2(
            "H2.3",
            "Payload too large",
            "#5 of 10 carries a payload over 4096 bytes: refused with 413 PayloadTooLarge (or by \
             the library), not retried; the rest delivered once (PROTOCOL.md 2.5, 2.7).",
            AuthChoice::Either,
            |s, p| {
                s.batch(10, p).twist(5, Twist::OversizedPayload, p);
            },
            no_more,
        ),
        http2(
            "H3.1",
            "429 TooManyRequests retried with backoff",
            "#5 of 10 is throttled twice with 429 TooManyRequests: a correct provider retries it \
             after a pause and it is delivered once; leaving it to the caller is NON-STRICT, \
             retrying at once is NON-STRICT (PROTOCOL.md 2.7).",
            AuthChoice::Either,
            |s, p| {
                s.batch(10, p);
                s.transient.push(Reason::TooManyRequests.as_str());
                let token = s.token(5);
                s.scenario(&format!(
                    "[[rules]]\nname = \"hot device\"\n\
                     when = {{ protocol = \"http2\", token = \"{token}\" }}\n\
                     then = {{ action = \"reject\", reason = \"TooManyRequests\" }}\ntimes = 2"
                ));
            },
            judge_backoff,
        ),
        http2(
            "H3.2",
            "500 and 503 retried with backoff",
            "#4 gets 500 InternalServerError and #7 503 ServiceUnavailable once: both retried \
             after a pause and delivered once (PROTOCOL.md 2.7).",
            AuthChoice::Either,
            |s, p| {
                s.batch(10, p);
                s.transient
                    .extend(["InternalServerError", "ServiceUnavailable", "500", "503"]);
                for (id, reason) in [(4, "InternalServerError"), (7, "ServiceUnavailable")] {
                    let token = s.token(id);
                    s.scenario(&format!(
                        "[[rules]]\nname = \"{reason}\"\n\
                         when = {{ protocol = \"http2\", token = \"{token}\" }}\n\
                         then = {{ action = \"reject\", reason = \"{reason}\" }}\ntimes = 1"
                    ));
                }
            },
            judge_backoff,
        ),
        http2(
            "H4.1",
            "GOAWAY mid-batch",
            "At the 11th of 30 requests the server sends GOAWAY {\"reason\":\"Shutdown\"} and \
             closes: requests above its Last-Stream-ID are retried on a new connection, each \
             delivered exactly once (PROTOCOL.md 2.2).",
            AuthChoice::Either,
            |s, p| {
                s.transient_errors = true;
                s.batch(30, p).scenario(&once_at_11th(
                    "goaway",
                    "http2",
                    r#"{ action = "goaway", reason = "Shutdown", code = "NO_ERROR", last_stream_id = "auto" }"#,
                ));
            },
            judge_reconnected,
        ),
        Case {
            duplicates_tolerated: true,
            ..http2(
                "H4.2",
                "Connection reset mid-batch",
                "At the 11th of 30 requests the TCP connection is reset: unanswered requests are \
                 retried on a new connection; nothing lost (duplicates of requests whose answer \
                 the reset swallowed are counted).",
                AuthChoice::Either,
                |s, p| {
                    s.transient_errors = true;
                    s.batch(30, p).scenario(&once_at_11th(
                        "reset",
                        "http2",
                        r#"{ action = "close", reset = true }"#,
                    ));
                },
                judge_reconnected,
            )
        },
        http2(
            "H5.1",
            "One stream until a valid token",
            "On a token connection the server allows 1 stream until a valid JWT was posted: \
             streams refused over that limit make it NON-STRICT, losses FAILED (PROTOCOL.md 2.2).",
            AuthChoice::Token,
            |s, p| {
                s.batch(20, p);
            },
            judge_one_stream,
        ),
        http2(
            "H5.2",
            "Expired provider token refreshed",
            "The hour a JWT lives is compressed to 3 s from its first use on the connection (a \
             library signs with its own clock, so the emulator's clock cannot age it, and a slow \
             start must not expire it unsent): 12 notifications over 6 s; after \
             403 ExpiredProviderToken the provider signs a new token and retries \
             (PROTOCOL.md 2.8).",
            AuthChoice::Token,
            |s, p| {
                s.batch(12, p).scenario(
                    "[settings]\njwt_max_age_secs = 3\njwt_age_from_first_use = true\njwt_min_update_secs = 1",
                );
                s.plan.pace_ms = 500;
                s.transient.push(Reason::ExpiredProviderToken.as_str());
            },
            judge_refresh,
        ),
        http2(
            "H5.3",
            "Token not refreshed too often",
            "20 notifications over 4 s: one JWT serves them all; a new token within 20 minutes \
             is 429 TooManyProviderTokenUpdates (PROTOCOL.md 2.8).",
            AuthChoice::Token,
            |s, p| {
                s.batch(20, p);
                s.plan.pace_ms = 200;
                s.transient.push(Reason::TooManyProviderTokenUpdates.as_str());
            },
            judge_update_rate,
        ),
        http2(
            "H6.1",
            "PRIORITY frames",
            "APNs ignores PRIORITY: sending it is NON-STRICT (PROTOCOL.md 2.2). ALPN and SNI \
             are reported.",
            AuthChoice::Either,
            |s, p| {
                s.batch(10, p);
            },
            judge_priority,
        ),
        http2(
            "H6.2",
            "HPACK use of authorization and :path",
            "Apple advises sending authorization and :path as literals without indexing: \
             indexing them is NON-STRICT (PROTOCOL.md 2.2).",
            AuthChoice::Token,
            |s, p| {
                s.batch(10, p);
            },
            judge_hpack,
        ),
        Case {
            informational: true,
            ..http2(
                "H7.1",
                "Connection churn",
                "20 notifications over one connection: Apple asks providers to keep connections \
                 open; a connection per notification is NON-STRICT (PROTOCOL.md 2.2, A-SEND).",
                AuthChoice::Either,
                |s, p| {
                    s.batch(20, p);
                },
                judge_churn,
            )
        },
    ]
    .into_iter()
    .chain(crate::conformance::broadcast::cases())
    .collect()
}

/// A rule that fires once, on the 11th notification of the run (every fault case cuts there).
fn once_at_11th(name: &str, protocol: &str, then: &str) -> String {
    format!(
        "[[rules]]\nname = \"{name}\"\nwhen = {{ protocol = \"{protocol}\", nth_overall = 11 }}\n\
         then = {then}\ntimes = 1"
    )
}

fn no_more(_: &Facts) -> Vec<Finding> {
    Vec::new()
}

/// Reports the identifier status 10 named (PROTOCOL.md 1.6: the last notification processed),
/// as the journal holds it, and which plan notification carried it.
fn judge_shutdown(f: &Facts) -> Vec<Finding> {
    let Some(e) = f
        .of_kind(EventKind::Rejected)
        .find(|e| e.status == Some(crate::legacy::status::Status::Shutdown.code().into()))
    else {
        return Vec::new();
    };
    let Some(named) = e
        .detail
        .as_ref()
        .and_then(|d| d.get("identifier"))
        .and_then(|v| v.as_str())
    else {
        return Vec::new();
    };
    let carrier = f.of_kind(EventKind::Accepted).find(|a| {
        a.connection == e.connection
            && a.notification
                .as_ref()
                .and_then(|n| n.identifier)
                .is_some_and(|i| hex::encode(i.0) == named)
    });
    let id = carrier
        .and_then(|a| a.notification.as_ref())
        .and_then(|n| {
            let t = n.token.to_hex();
            f.setup
                .plan
                .notifications
                .iter()
                .find(|p| p.token.eq_ignore_ascii_case(&t))
        })
        .map_or("no notification of the connection".to_string(), |p| {
            format!("#{}", p.id)
        });
    let mut seqs = vec![e.seq];
    seqs.extend(carrier.map(|a| a.seq));
    seqs.sort_unstable();
    vec![Finding::new(
        Grade::Ok,
        format!("status 10 named identifier {named}, carried by {id}"),
        seqs,
    )]
}

const FEEDBACK_IDS: [u32; 3] = [1001, 1002, 1003];

fn feedback_time_ms(i: usize) -> u64 {
    1_700_000_000_000 + 300_000 * i as u64 + 123
}

fn judge_feedback(f: &Facts) -> Vec<Finding> {
    let want: BTreeSet<(String, u64)> = FEEDBACK_IDS
        .iter()
        .enumerate()
        .map(|(i, id)| (f.setup.token(*id), feedback_time_ms(i) / 1000))
        .collect();
    let served: Vec<u64> = f
        .of_kind(EventKind::FeedbackServed)
        .map(|e| e.seq)
        .collect();
    let Some(got) = &f.output.feedback else {
        return vec![Finding::new(
            Grade::Failed,
            "no feedback reported: the provider did not read the feedback service",
            served,
        )];
    };
    let got: BTreeSet<(String, u64)> = got
        .iter()
        .map(|t| (t.token.to_ascii_lowercase(), t.timestamp))
        .collect();
    if got == want {
        vec![Finding::new(
            Grade::Ok,
            "the 3 unregistered tokens were reported with their times",
            served,
        )]
    } else {
        let missing = want.difference(&got).count();
        let extra = got.difference(&want).count();
        vec![Finding::new(
            Grade::Failed,
            format!(
                "feedback read wrong: {missing} tuple(s) missing or altered, {extra} unexpected"
            ),
            served,
        )]
    }
}

/// Apple allows several connections and asks that they stay open (PROTOCOL.md 2.2): a pool kept
/// to the end is fine; churn is a connection closed and another opened while sends go on, or
/// about as many connections as notifications.
fn judge_churn(f: &Facts) -> Vec<Finding> {
    let conns = f.connections();
    let n = f.setup.plan.notifications.len();
    let seqs: Vec<u64> = conns.iter().map(|e| e.seq).collect();
    if conns.len() <= 1 {
        return vec![Finding::new(
            Grade::Ok,
            format!("one connection for {n} notifications"),
            seqs,
        )];
    }
    // A connection opened after another closed, that then carried a notification.
    let closed: Vec<u64> = f
        .of_kind(EventKind::ConnectionClosed)
        .filter(|e| e.protocol == f.case.protocol)
        .map(|e| e.seq)
        .collect();
    let reopened: Vec<u64> = conns
        .iter()
        .filter(|o| closed.iter().any(|c| *c < o.seq))
        .filter(|o| {
            f.of_kind(EventKind::Accepted)
                .any(|a| a.connection == o.connection)
        })
        .map(|o| o.seq)
        .collect();
    if conns.len() * 2 >= n || !reopened.is_empty() {
        vec![Finding::new(
            Grade::NonStrict,
            format!(
                "connection churn: {} connections for {n} notifications, {} opened after another closed",
                conns.len(),
                reopened.len()
            ),
            seqs,
        )]
    } else {
        vec![Finding::new(
            Grade::Ok,
            format!(
                "a pool of {} connections kept open for {n} notifications",
                conns.len()
            ),
            seqs,
        )]
    }
}

fn judge_legacy_manners(f: &Facts) -> Vec<Finding> {
    let mut out = judge_churn(f);
    let mut commands: BTreeSet<u8> = BTreeSet::new();
    let mut seqs = Vec::new();
    for e in f.of_kind(EventKind::Accepted) {
        if let Some(c) = e.notification.as_ref().and_then(|n| n.command) {
            if commands.insert(c) {
                seqs.push(e.seq);
            }
        }
    }
    let list: Vec<String> = commands.iter().map(u8::to_string).collect();
    let grade = if commands.contains(&0) {
        Grade::NonStrict
    } else {
        Grade::Ok
    };
    let why = if grade == Grade::NonStrict {
        " (command 0 cannot be answered: errors are silent)"
    } else {
        ""
    };
    out.push(Finding::new(
        grade,
        format!("frames use command {}{why}", list.join(", ")),
        seqs,
    ));
    out
}

fn judge_bad_token(f: &Facts) -> Vec<Finding> {
    {
        let a = f.attempts(5);
        match f.report(5) {
            Some(o) if o.reason.as_deref() == Some(Reason::BadDeviceToken.as_str()) => {
                vec![Finding::new(
                    Grade::Ok,
                    "#5 reported with reason BadDeviceToken",
                    a.all_seqs(),
                )]
            }
            Some(o) => vec![Finding::new(
                Grade::Ok,
                format!(
                    "#5 reported {:?} with reason {:?} (Apple's: BadDeviceToken)",
                    o.result, o.reason
                ),
                a.all_seqs(),
            )],
            None => Vec::new(),
        }
    }
}

fn judge_unregistered(f: &Facts) -> Vec<Finding> {
    let seqs = f.attempts(5).all_seqs();
    let Some(o) = f.report(5) else {
        return Vec::new(); // `common` already failed the missing report
    };
    match o.timestamp {
        Some(t) if t == UNREGISTERED_AT_MS => vec![Finding::new(
            Grade::Ok,
            format!("#5: 410 with timestamp {t} ms, intact"),
            seqs,
        )],
        Some(t) if t == UNREGISTERED_AT_MS / 1000 * 1000 || t == UNREGISTERED_AT_MS / 1000 => {
            vec![Finding::new(
                Grade::NonStrict,
                format!(
                    "#5: the 410 timestamp reaches the caller truncated to seconds ({t}, sent {UNREGISTERED_AT_MS})"
                ),
                seqs,
            )]
        }
        Some(t) => vec![Finding::new(
            Grade::Failed,
            format!("#5: wrong 410 timestamp {t} (sent {UNREGISTERED_AT_MS})"),
            seqs,
        )],
        None => vec![Finding::new(
            Grade::Failed,
            "#5: the 410 timestamp never reaches the caller",
            seqs,
        )],
    }
}

fn judge_backoff(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for n in &f.setup.plan.notifications {
        let a = f.attempts(n.id);
        let transient: Vec<u64> = a
            .rejected
            .iter()
            .filter(|(_, r)| f.setup.transient.iter().any(|t| r == t))
            .map(|(s, _)| *s)
            .collect();
        for s in transient {
            let Some(next) = a.all_seqs().into_iter().find(|x| *x > s) else {
                continue;
            };
            let (Some(e1), Some(e2)) = (f.event(s), f.event(next)) else {
                continue;
            };
            let gap = gap_ms(e1, e2);
            let grade = if gap < MIN_BACKOFF.as_millis() as u64 {
                Grade::NonStrict
            } else {
                Grade::Ok
            };
            let how = if grade == Grade::Ok {
                "backed off"
            } else {
                "retried at once"
            };
            out.push(Finding::new(
                grade,
                format!(
                    "#{}: {how}, {gap} ms after {}",
                    n.id,
                    e1.reason.as_deref().unwrap_or("?")
                ),
                vec![s, next],
            ));
        }
    }
    out
}

fn judge_reconnected(f: &Facts) -> Vec<Finding> {
    let conns = f.connections();
    vec![Finding::new(
        Grade::Ok,
        format!("{} connection(s) opened", conns.len()),
        conns.iter().map(|e| e.seq).collect(),
    )]
}

fn judge_one_stream(f: &Facts) -> Vec<Finding> {
    let refused = f.observations("refused_stream");
    if refused.is_empty() {
        return vec![Finding::new(
            Grade::Ok,
            "never exceeded the one-stream limit",
            vec![],
        )];
    }
    vec![Finding::new(
        Grade::NonStrict,
        format!(
            "opened streams over the server's limit ({} refused with REFUSED_STREAM)",
            refused.len()
        ),
        refused.iter().map(|(e, _)| e.seq).collect(),
    )]
}

fn jwt_fingerprints(f: &Facts) -> (BTreeSet<String>, Vec<u64>) {
    let mut set = BTreeSet::new();
    let mut seqs = Vec::new();
    for (e, v) in f.observations("jwt") {
        if let Some(fp) = v.get("fingerprint").and_then(|x| x.as_str()) {
            if set.insert(fp.to_string()) {
                seqs.push(e.seq);
            }
        }
    }
    (set, seqs)
}

fn rejections(f: &Facts, reason: &str) -> Vec<u64> {
    f.of_kind(EventKind::Rejected)
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(|e| e.seq)
        .collect()
}

fn judge_refresh(f: &Facts) -> Vec<Finding> {
    let (tokens, token_seqs) = jwt_fingerprints(f);
    let expired = rejections(f, Reason::ExpiredProviderToken.as_str());
    let mut out = vec![Finding::new(
        Grade::Ok,
        format!(
            "{} distinct JWT(s) signed; {} request(s) answered ExpiredProviderToken",
            tokens.len(),
            expired.len()
        ),
        token_seqs,
    )];
    let times: Vec<u64> = f
        .of_kind(EventKind::Accepted)
        .chain(f.of_kind(EventKind::Rejected))
        .map(|e| e.time_ms)
        .collect();
    let span = times
        .iter()
        .max()
        .zip(times.iter().min())
        .map_or(0, |(a, b)| a - b);
    if expired.is_empty() && tokens.len() < 2 && span < 3000 {
        out.push(Finding::new(
            Grade::Informational,
            format!(
                "not exercised: the requests spanned {span} ms, less than the token's 3 s life \
                 (does the driver honour pace_ms?)"
            ),
            vec![],
        ));
    }
    if tokens.len() < 2 && !expired.is_empty() {
        out.push(Finding::new(
            Grade::Failed,
            "never signed a new token after 403 ExpiredProviderToken (a token that expires \
             before the library's own timer says so fails every later request)",
            expired,
        ));
    }
    out
}

/// PROTOCOL.md 2.8 (thread 702056): more than one new token per team within 20 minutes is too
/// often, across connections; the emulator may only see it per connection, so count here.
fn judge_update_rate(f: &Facts) -> Vec<Finding> {
    let mut teams: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for (e, v) in f.observations("jwt") {
        let Some(fp) = v.get("fingerprint").and_then(|x| x.as_str()) else {
            continue;
        };
        let team = v
            .get("iss")
            .and_then(|x| x.as_str())
            .unwrap_or("the team")
            .to_string();
        let list = teams.entry(team).or_default();
        if !list.iter().any(|(f, _)| f == fp) {
            list.push((fp.to_string(), e.seq));
        }
    }
    let too_many = rejections(f, Reason::TooManyProviderTokenUpdates.as_str());
    let n = f.setup.plan.notifications.len();
    let total: usize = teams.values().map(Vec::len).sum();
    let mut out = vec![Finding::new(
        Grade::Ok,
        format!("{total} distinct JWT(s) for {n} notifications"),
        teams.values().flatten().map(|(_, s)| *s).collect(),
    )];
    for (team, tokens) in &teams {
        if tokens.len() > 1 {
            out.push(Finding::new(
                Grade::NonStrict,
                format!(
                    "{} JWTs signed for {team} within one run (under 20 minutes): Apple allows one \
                     new token per team per 20 minutes, across connections",
                    tokens.len()
                ),
                tokens.iter().map(|(_, s)| *s).collect(),
            ));
        }
    }
    if !too_many.is_empty() {
        out.push(Finding::new(
            Grade::NonStrict,
            format!(
                "{} request(s) answered TooManyProviderTokenUpdates: the token changed within 20 minutes",
                too_many.len()
            ),
            too_many,
        ));
    }
    out
}

fn judge_priority(f: &Facts) -> Vec<Finding> {
    let mut priority = 0u64;
    let mut seqs = Vec::new();
    let mut alpn = BTreeSet::new();
    let mut sni = BTreeSet::new();
    for (e, o) in f.closed_observations() {
        let p = o
            .get("priority_frames")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if p > 0 {
            seqs.push(e.seq);
        }
        priority += p;
        alpn.insert(o.get("alpn").and_then(|v| v.as_bool()).unwrap_or(false));
        sni.insert(
            o.get("sni")
                .and_then(|v| v.as_str())
                .unwrap_or("none")
                .to_string(),
        );
    }
    let mut out = vec![Finding::new(
        Grade::Ok,
        format!(
            "ALPN h2 offered: {}; SNI: {}",
            alpn.iter()
                .map(|b| if *b { "yes" } else { "no" })
                .collect::<Vec<_>>()
                .join("/"),
            sni.into_iter().collect::<Vec<_>>().join(", ")
        ),
        vec![],
    )];
    if priority > 0 {
        out.push(Finding::new(
            Grade::NonStrict,
            format!("sent PRIORITY information {priority} time(s); APNs ignores it"),
            seqs,
        ));
    }
    out
}

fn judge_hpack(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for header in ["authorization", ":path"] {
        let mut forms = BTreeSet::new();
        let mut seqs = Vec::new();
        for (e, o) in f.closed_observations() {
            if let Some(list) = o
                .get("hpack")
                .and_then(|h| h.get(header))
                .and_then(|v| v.as_array())
            {
                for r in list.iter().filter_map(|v| v.as_str()) {
                    let base = r.trim_end_matches("+huffman").to_string();
                    if forms.insert(base) {
                        seqs.push(e.seq);
                    }
                }
            }
        }
        let indexed = forms
            .iter()
            .any(|r| r == "incremental_indexing" || r == "indexed");
        let list = forms.into_iter().collect::<Vec<_>>().join(", ");
        out.push(if indexed {
            Finding::new(
                Grade::NonStrict,
                format!("{header} is HPACK-indexed ({list}); Apple: literal without indexing"),
                seqs,
            )
        } else {
            Finding::new(Grade::Ok, format!("{header} sent as {list}"), seqs)
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::case::Setup;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_scenarios_parse() {
        let cases = catalogue();
        let ids: HashSet<_> = cases.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), cases.len());
        for c in &cases {
            let mut s = Setup::new(c.id);
            (c.setup)(&mut s, c.protocol);
            assert!(
                !s.plan.notifications.is_empty() || !s.plan.broadcasts.is_empty(),
                "{}",
                c.id
            );
            crate::engine::scenario::parse_toml(&s.scenario)
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", c.id, s.scenario));
            assert!(c.id.starts_with(match c.protocol {
                Protocol::Legacy => 'L',
                _ => 'H',
            }));
        }
    }

    #[test]
    fn the_catalogue_covers_the_loss_cases() {
        let loss: Vec<_> = catalogue()
            .into_iter()
            .filter(|c| c.loss)
            .map(|c| c.id)
            .collect();
        assert_eq!(loss, ["L2.1", "L2.2", "L2.3", "L2.4", "L3.1", "L3.2"]);
    }

    #[test]
    fn every_protocol_citation_resolves_in_docs() {
        let doc = include_str!("../../docs/PROTOCOL.md");
        for c in catalogue() {
            let text = c.expectation;
            for (at, _) in text.match_indices("PROTOCOL.md ") {
                let rest = &text[at + "PROTOCOL.md ".len()..];
                let mut refs = vec![];
                for part in rest.split([',', ')']) {
                    let r = part.trim();
                    if r.chars().next().is_some_and(|ch| ch.is_ascii_digit()) {
                        refs.push(r.split_whitespace().next().unwrap_or(r).to_string());
                    } else {
                        break;
                    }
                }
                for r in refs {
                    assert!(
                        doc.contains(&format!("## {r} ")),
                        "{}: PROTOCOL.md {r} is not a section of docs/PROTOCOL.md",
                        c.id
                    );
                }
            }
        }
    }
}
