//! The broadcast cases (issue 13; PROTOCOL.md 2.11): a provider's channel-management calls and
//! broadcasts, graded step by step against what apnsim answered. Devices subscribe out of band,
//! so the runner makes the case's subscribed channels before the driver starts ([`prepare`]).

use crate::broadcast::StoragePolicy;
use crate::conformance::case::{
    AuthChoice, Case, Facts, Finding, Grade, PreChannel, Setup, StepExpect,
};
use crate::conformance::judge::{gap_ms, MIN_BACKOFF};
use crate::engine::TokenRecord;
use crate::journal::{Event, EventKind};
use crate::model::{DeviceToken, Protocol};
use crate::plan::{BroadcastOp, BroadcastStep, ResultKind};
use crate::Emulator;
use serde_json::{json, Value};
use std::time::Duration;

/// How a plan step names the case's pre-made channel `n` (1-based) until [`prepare`] runs.
fn pre(n: usize) -> String {
    format!("pre:{n}")
}

/// Creates the case's channels and subscribes their devices, then puts the real channel ids
/// in the plan and the setup.
pub fn prepare(emu: &Emulator, setup: &mut Setup, topic: &str) -> Result<(), String> {
    if setup.plan.broadcasts.is_empty() {
        return Ok(());
    }
    let bundle = setup
        .plan
        .bundle_id
        .get_or_insert_with(|| topic.to_owned())
        .clone();
    let env = setup.environment;
    for (i, c) in setup.channels.iter().enumerate() {
        let id = emu
            .create_channel(env, &bundle, c.policy)
            .map_err(|e| format!("pre-made channel: {e}"))?
            .id;
        for (hex, online) in &c.devices {
            let t = DeviceToken::from_hex(hex).ok_or_else(|| format!("token {hex} is not hex"))?;
            emu.registry().register(TokenRecord::new(t.clone(), None));
            emu.set_device_online(&t, *online);
            emu.subscribe(env, &id, t)
                .map_err(|e| format!("subscribe: {e}"))?;
        }
        let name = pre(i + 1);
        for s in &mut setup.plan.broadcasts {
            if s.channel.as_deref() == Some(name.as_str()) {
                s.channel = Some(id.clone());
            }
        }
        setup.channel_ids.push(id);
    }
    Ok(())
}

fn step(id: u32, op: BroadcastOp, channel: Option<String>) -> BroadcastStep {
    BroadcastStep {
        id,
        op,
        channel,
        storage_policy: (op == BroadcastOp::Create).then_some(1),
        payload: (op == BroadcastOp::Broadcast).then(update),
        expiry: None,
        priority: None,
    }
}

/// A Live Activity update, the only event a broadcast may carry (PROTOCOL.md 2.10).
fn update() -> Value {
    json!({"aps": {"event": "update", "timestamp": 1_700_000_000, "content-state": {"score": 1}}})
}

fn expect(s: &mut Setup, steps: Vec<(BroadcastStep, StepExpect)>) {
    for (st, e) in steps {
        s.step_expect.push((st.id, e));
        s.plan.broadcasts.push(st);
    }
}

/// The broadcast cases, in catalogue order.
pub fn cases() -> Vec<Case> {
    let case = |id, title, expectation, auth, setup, judge| Case {
        id,
        title,
        expectation,
        protocol: Protocol::Http2,
        auth,
        loss: false,
        timeout: Duration::from_secs(60),
        setup,
        judge,
        duplicates_tolerated: false,
        informational: false,
    };
    use BroadcastOp::*;
    use StepExpect::*;
    vec![
        case(
            "H8.1",
            "Broadcast to subscribed devices",
            "Create a channel (201, apns-channel-id reported), read and delete it; one Live Activity \
             update to a channel with subscribed devices is accepted once and reaches each of them \
             (PROTOCOL.md 2.11).",
            AuthChoice::Either,
            |s, _| {
                s.channels.push(PreChannel {
                    policy: StoragePolicy::MostRecent,
                    devices: vec![(s.token(101), true), (s.token(102), true), (s.token(103), false)],
                });
                expect(
                    s,
                    vec![
                        (step(1, Create, None), Sent),
                        (step(2, Broadcast, Some(pre(1))), Sent),
                        (step(3, Read, Some("@1".into())), Sent),
                        (step(4, Delete, Some("@1".into())), Sent),
                    ],
                );
            },
            judge_delivered,
        ),
        case(
            "H8.2",
            "Bad channel id",
            "A broadcast to a channel id that is not base64 is BadChannelId, to an unknown one \
             ChannelNotRegistered (400, PROTOCOL.md 2.11): each reported failed with that reason, \
             not retried.",
            AuthChoice::Either,
            |s, _| {
                expect(
                    s,
                    vec![
                        (
                            step(1, Broadcast, Some("not base64!".into())),
                            Failed("BadChannelId"),
                        ),
                        (
                            step(2, Broadcast, Some("AAAAAAAAAAAAAAAAAAAAAA==".into())),
                            Failed("ChannelNotRegistered"),
                        ),
                    ],
                );
            },
            judge_steps,
        ),
        case(
            "H8.3",
            "Deleted channel",
            "After deleting a channel, a broadcast to it and a read of it are ChannelNotRegistered \
             (deleted ids are never reused, PROTOCOL.md 2.11), reported failed.",
            AuthChoice::Either,
            |s, _| {
                expect(
                    s,
                    vec![
                        (step(1, Create, None), Sent),
                        (step(2, Delete, Some("@1".into())), Sent),
                        (
                            step(3, Broadcast, Some("@1".into())),
                            Failed("ChannelNotRegistered"),
                        ),
                        (step(4, Read, Some("@1".into())), Failed("ChannelNotRegistered")),
                    ],
                );
            },
            judge_steps,
        ),
        case(
            "H8.4",
            "Expiration rule",
            "A channel with no message storage accepts only apns-expiration 0 (A-BERR, PROTOCOL.md \
             2.11): the provider sends the 0 it is given (not nothing), and reports a later \
             expiration's BadExpirationDate.",
            AuthChoice::Either,
            |s, _| {
                // Two channels, so each step's answer is told apart by its channel.
                for device in [101, 102] {
                    s.channels.push(PreChannel {
                        policy: StoragePolicy::NoStorage,
                        devices: vec![(s.token(device), true)],
                    });
                }
                let mut now = step(1, Broadcast, Some(pre(1)));
                now.expiry = Some(0);
                let mut later = step(2, Broadcast, Some(pre(2)));
                // A day ahead of any clock the run could see, so the answer never depends on it.
                later.expiry = Some(4_000_000_000);
                expect(
                    s,
                    vec![(now, Sent), (later, Failed("BadExpirationDate"))],
                );
            },
            judge_steps,
        ),
        case(
            "H8.5",
            "429 on a broadcast",
            "The first broadcast is refused 429 TooManyRequests: a correct provider retries after a \
             pause and the update goes out once (PROTOCOL.md 2.6, 2.11); reporting the 429 without \
             retrying is NON-STRICT, sending it twice FAILED.",
            AuthChoice::Either,
            |s, _| {
                s.channels.push(PreChannel {
                    policy: StoragePolicy::MostRecent,
                    devices: vec![(s.token(101), true)],
                });
                s.scenario(
                    "[[rules]]\nname = \"throttled broadcast\"\nwhen = { api = \"broadcast\" }\n\
                     then = { action = \"reject\", reason = \"TooManyRequests\" }\ntimes = 1",
                );
                s.transient.push("TooManyRequests");
                expect(s, vec![(step(1, Broadcast, Some(pre(1))), Sent)]);
            },
            judge_delivered,
        ),
        case(
            "H8.6",
            "Token auth on the management API",
            "Create, list, read and delete with a provider token on api-manage-broadcast: the same \
             JWT rules as /3/device (PROTOCOL.md 2.8, 2.11), every call answered with success.",
            AuthChoice::Token,
            |s, _| {
                expect(
                    s,
                    vec![
                        (step(1, Create, None), Sent),
                        (step(2, List, None), Sent),
                        (step(3, Read, Some("@1".into())), Sent),
                        (step(4, Delete, Some("@1".into())), Sent),
                    ],
                );
            },
            judge_steps,
        ),
    ]
}

/// The management op's name on the journal (`channel_management.op`).
fn op_name(op: BroadcastOp) -> &'static str {
    match op {
        BroadcastOp::Create => "create",
        BroadcastOp::Read => "read",
        BroadcastOp::Delete => "delete",
        BroadcastOp::List => "list",
        BroadcastOp::Broadcast => "broadcast",
    }
}

/// The channel id a step used: literal, or the channel its `@<id>` create step got (as the
/// driver reported it, else the n-th create apnsim answered).
fn channel_of(f: &Facts, st: &BroadcastStep) -> Option<String> {
    let Some(r) = st.channel_ref() else {
        return st.channel.clone();
    };
    if let Some(c) = f.report(r).and_then(|o| o.channel.clone()) {
        return Some(c);
    }
    let nth = f
        .setup
        .plan
        .broadcasts
        .iter()
        .filter(|s| s.op == BroadcastOp::Create)
        .position(|s| s.id == r)?;
    successes(f, BroadcastOp::Create, None)
        .get(nth)
        .and_then(|e| manage_detail(e)?["channel"].as_str().map(str::to_owned))
}

fn manage_detail(e: &Event) -> Option<&Value> {
    e.detail.as_ref()?.get("channel_management")
}

/// apnsim's successful answers to `op` (on `channel`, when given).
fn successes<'a>(f: &'a Facts, op: BroadcastOp, channel: Option<&str>) -> Vec<&'a Event> {
    f.events
        .iter()
        .filter(|e| match op {
            BroadcastOp::Broadcast => {
                e.kind == EventKind::Accepted
                    && e.detail.as_ref().is_some_and(|d| {
                        d.get("apns_request_id").is_some()
                            && channel.map_or(true, |c| d["channel"] == c)
                    })
            }
            _ => {
                e.kind == EventKind::Observation
                    && manage_detail(e).is_some_and(|m| {
                        m["op"] == op_name(op) && channel.map_or(true, |c| m["channel"] == c)
                    })
            }
        })
        .collect()
}

/// apnsim's refusals of `op` (on `channel`, when given).
fn refusals<'a>(f: &'a Facts, op: BroadcastOp, channel: Option<&str>) -> Vec<&'a Event> {
    let api = match op {
        BroadcastOp::Broadcast => "broadcast",
        _ => "channel-management",
    };
    let (method, tail) = match op {
        BroadcastOp::Create => ("POST", "/channels"),
        BroadcastOp::Read => ("GET", "/channels"),
        BroadcastOp::Delete => ("DELETE", "/channels"),
        BroadcastOp::List => ("GET", "/all-channels"),
        BroadcastOp::Broadcast => ("POST", ""),
    };
    f.of_kind(EventKind::Rejected)
        .filter(|e| {
            e.detail.as_ref().is_some_and(|d| {
                d["api"] == api
                    && d["method"] == method
                    && d["path"].as_str().is_some_and(|p| p.ends_with(tail))
                    && channel.map_or(true, |c| d["channel"] == c)
            })
        })
        .collect()
}

fn seqs(events: &[&Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Grades every step: the report against the expectation, the journal as the evidence.
fn judge_steps(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for st in &f.setup.plan.broadcasts {
        let Some(want) = f
            .setup
            .step_expect
            .iter()
            .find(|(id, _)| *id == st.id)
            .map(|(_, e)| e.clone())
        else {
            continue;
        };
        let channel = channel_of(f, st);
        let keyed = match st.op {
            BroadcastOp::Create | BroadcastOp::List => None,
            _ => channel.as_deref(),
        };
        let ok = successes(f, st.op, keyed);
        let refused = refusals(f, st.op, keyed);
        let mut evidence = seqs(&ok);
        evidence.extend(seqs(&refused));
        evidence.sort_unstable();
        let what = format!("step {} ({})", st.id, op_name(st.op));
        let report = f.report(st.id);
        let said = report.map_or("nothing".to_string(), |o| {
            format!(
                "{}{}",
                serde_json::to_value(o.result)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                o.reason
                    .as_deref()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default()
            )
        });
        match want {
            StepExpect::Sent => {
                let transient = refused.iter().any(|e| {
                    e.reason
                        .as_deref()
                        .is_some_and(|r| f.setup.transient.contains(&r))
                });
                // PROTOCOL.md 2.6: a 429 or 5xx is retried after a pause (as H3 grades it).
                let hasty = ok.first().and_then(|done| {
                    let before = refused.iter().rev().find(|e| e.seq < done.seq)?;
                    let gap = gap_ms(before, done);
                    (transient && gap < MIN_BACKOFF.as_millis() as u64).then_some(gap)
                });
                match (ok.len(), report.map(|o| o.result)) {
                    (1, Some(ResultKind::Sent)) if hasty.is_some() => out.push(Finding::new(
                        Grade::NonStrict,
                        format!(
                            "{what}: retried {} ms after a temporary refusal, under the {} ms \
                             pause Apple asks for (PROTOCOL.md 2.6)",
                            hasty.unwrap_or_default(),
                            MIN_BACKOFF.as_millis()
                        ),
                        evidence,
                    )),
                    (1, Some(ResultKind::Sent)) => out.push(Finding::new(
                        Grade::Ok,
                        format!("{what}: answered with success once, reported sent"),
                        evidence,
                    )),
                    (0, Some(ResultKind::Failed | ResultKind::Error)) if transient => {
                        out.push(Finding::new(
                            Grade::NonStrict,
                            format!(
                                "{what}: refused with a temporary reason and reported {said} \
                                 without a retry (the caller was told)"
                            ),
                            evidence,
                        ))
                    }
                    (0, _) if evidence.is_empty() => out.push(Finding::new(
                        Grade::Failed,
                        format!("{what} never reached apnsim; the library reported {said}"),
                        f.driver_window(),
                    )),
                    (0, _) => out.push(Finding::new(
                        Grade::Failed,
                        format!("{what}: never answered with success; the library reported {said}"),
                        evidence,
                    )),
                    (1, _) => out.push(Finding::new(
                        Grade::Failed,
                        format!(
                            "{what}: apnsim answered with success but the library reported {said}"
                        ),
                        evidence,
                    )),
                    (n, _) => out.push(Finding::new(
                        Grade::Failed,
                        format!("{what}: done {n} times (a duplicate)"),
                        evidence,
                    )),
                }
            }
            StepExpect::Failed(reason) => {
                let right = refused
                    .iter()
                    .filter(|e| e.reason.as_deref() == Some(reason))
                    .count();
                let reported = report.is_some_and(|o| {
                    o.result == ResultKind::Failed && o.reason.as_deref() == Some(reason)
                });
                if right == 0 {
                    out.push(Finding::new(
                        Grade::Failed,
                        if evidence.is_empty() {
                            format!("{what} never reached apnsim; the library reported {said}")
                        } else {
                            format!(
                                "{what}: apnsim never refused it with {reason} (the request was \
                                 not the planned one); the library reported {said}"
                            )
                        },
                        if evidence.is_empty() {
                            f.driver_window()
                        } else {
                            evidence
                        },
                    ));
                } else if !ok.is_empty() {
                    out.push(Finding::new(
                        Grade::Failed,
                        format!(
                            "{what}: answered with success though it should fail with {reason}"
                        ),
                        evidence,
                    ));
                } else if !reported {
                    out.push(Finding::new(
                        Grade::Failed,
                        format!("{what}: apnsim answered {reason}, the library reported {said}"),
                        evidence,
                    ));
                } else if right > 1 {
                    out.push(Finding::new(
                        Grade::NonStrict,
                        format!(
                            "{what}: {reason} retried {} times: Apple says not to retry a 4xx \
                             (PROTOCOL.md 2.6)",
                            right - 1
                        ),
                        evidence,
                    ));
                } else {
                    out.push(Finding::new(
                        Grade::Ok,
                        format!("{what}: refused {reason}, reported so"),
                        evidence,
                    ));
                }
            }
        }
    }
    out
}

/// [`judge_steps`], plus what each subscribed device got from the accepted broadcasts (a fact
/// about apnsim's fan-out, cited so the run shows delivery).
fn judge_delivered(f: &Facts) -> Vec<Finding> {
    let mut out = judge_steps(f);
    for (i, id) in f.setup.channel_ids.iter().enumerate() {
        let device: Vec<&Event> = f
            .events
            .iter()
            .filter(|e| {
                matches!(e.kind, EventKind::Delivered | EventKind::Stored)
                    && e.detail
                        .as_ref()
                        .is_some_and(|d| d["channel"] == id.as_str())
            })
            .collect();
        let subscribed = f.setup.channels.get(i).map_or(0, |c| c.devices.len());
        if !device.is_empty() {
            out.push(Finding::new(
                Grade::Ok,
                format!(
                    "the broadcast reached the channel's {subscribed} subscribed device(s): {} \
                     delivered or stored",
                    device.len()
                ),
                seqs(&device),
            ));
        }
    }
    out
}
