//! Live Activity payload checks (PROTOCOL.md 2.10, A-LA): what a device would do with an
//! ActivityKit push. Apple answers most invalid Live Activity payloads with a silent
//! non-display, not an HTTP error, so this module judges and the caller records the verdict
//! (journal event, inbox) while the HTTP answer stays Apple's.

use serde::Serialize;
use serde_json::{Map, Value};

/// Which API carried the push: broadcast cannot start an activity (PROTOCOL.md 2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/3/device/<activity or push-to-start token>`.
    Device,
    /// `/4/broadcasts/apps/<bundleId>`.
    Broadcast,
}

/// One reason a device would not display a Live Activity push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", content = "value", rename_all = "kebab-case")]
pub enum Problem {
    /// The payload is not a JSON object.
    NotJson,
    /// No `aps` dictionary.
    MissingAps,
    /// No `aps.event`.
    MissingEvent,
    /// `aps.event` is not `start`, `update` or `end`.
    UnknownEvent(String),
    /// No `aps.timestamp`.
    MissingTimestamp,
    /// `aps.timestamp` is not a whole number of seconds.
    BadTimestamp,
    /// `start` or `update` without `aps.content-state`.
    MissingContentState,
    /// `aps.content-state` is not a dictionary.
    BadContentState,
    /// `start` without `attributes-type`.
    MissingAttributesType,
    /// `start` without `attributes`.
    MissingAttributes,
    /// `start` without `alert`.
    MissingAlert,
    /// `stale-date` is not a number of seconds.
    BadStaleDate,
    /// `dismissal-date` is not a number of seconds.
    BadDismissalDate,
    /// `relevance-score` is not a number.
    BadRelevanceScore,
    /// `input-push-token` other than 1.
    BadInputPushToken,
    /// `input-push-channel` not a base64 channel id.
    BadInputPushChannel,
    /// `input-push-token` / `input-push-channel` on an event other than `start`.
    InputOutsideStart,
    /// Both `input-push-token` and `input-push-channel`.
    BothInputs,
    /// A broadcast with `event: start` (PROTOCOL.md 2.10: broadcast cannot start an activity).
    BroadcastCannotStart,
}

/// What a device would do with one Live Activity push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// `start`, `update` or `end`, when the payload names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Whether the device would show it.
    pub displayed: bool,
    /// Why not, in payload order (empty when displayed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

impl Problem {
    /// Where in the payload the problem is (`aps.event`; empty for the whole payload).
    pub fn key(&self) -> &'static str {
        match self {
            Problem::NotJson => "",
            Problem::MissingAps => "aps",
            Problem::MissingEvent | Problem::UnknownEvent(_) | Problem::BroadcastCannotStart => {
                "aps.event"
            }
            Problem::MissingTimestamp | Problem::BadTimestamp => "aps.timestamp",
            Problem::MissingContentState | Problem::BadContentState => "aps.content-state",
            Problem::MissingAttributesType => "aps.attributes-type",
            Problem::MissingAttributes => "aps.attributes",
            Problem::MissingAlert => "aps.alert",
            Problem::BadStaleDate => "aps.stale-date",
            Problem::BadDismissalDate => "aps.dismissal-date",
            Problem::BadRelevanceScore => "aps.relevance-score",
            Problem::BadInputPushToken | Problem::BothInputs => "aps.input-push-token",
            Problem::BadInputPushChannel | Problem::InputOutsideStart => "aps.input-push-channel",
        }
    }

    /// What the device does about it, in one sentence (PROTOCOL.md 2.10).
    pub fn message(&self) -> String {
        match self {
            Problem::NotJson => "the payload is not a JSON object; nothing is shown".into(),
            Problem::MissingAps => "a Live Activity push needs an aps dictionary".into(),
            Problem::MissingEvent => "a Live Activity push needs event start, update or end".into(),
            Problem::UnknownEvent(e) => {
                format!("event {e} is not start, update or end; the device ignores the push")
            }
            Problem::MissingTimestamp | Problem::BadTimestamp => {
                "a Live Activity push needs a timestamp (seconds); the device ignores it".into()
            }
            Problem::MissingContentState => {
                "a Live Activity start or update needs a content-state dictionary".into()
            }
            Problem::BadContentState => "content-state is not a dictionary".into(),
            Problem::MissingAttributesType => "a start needs attributes-type".into(),
            Problem::MissingAttributes => "a start needs an attributes dictionary".into(),
            Problem::MissingAlert => "a start needs an alert".into(),
            Problem::BadStaleDate => "stale-date is not a number of seconds".into(),
            Problem::BadDismissalDate => "dismissal-date is not a number of seconds".into(),
            Problem::BadRelevanceScore => "relevance-score is not a number".into(),
            Problem::BadInputPushToken => "input-push-token must be 1".into(),
            Problem::BadInputPushChannel => "input-push-channel is not a base64 channel id".into(),
            Problem::InputOutsideStart => {
                "input-push-token and input-push-channel belong to a start only".into()
            }
            Problem::BothInputs => {
                "input-push-token and input-push-channel exclude each other".into()
            }
            Problem::BroadcastCannotStart => {
                "a broadcast cannot start a Live Activity (PROTOCOL.md 2.10)".into()
            }
        }
    }
}

fn is_seconds(v: &Value) -> bool {
    v.as_u64().is_some() || v.as_f64().is_some_and(|f| f >= 0.0 && f.fract() == 0.0)
}

/// Judges a Live Activity payload as a device would (PROTOCOL.md 2.10).
pub fn check(payload: &[u8], route: Route) -> Verdict {
    let root: Option<Value> = serde_json::from_slice(payload).ok();
    let Some(aps) = root
        .as_ref()
        .and_then(Value::as_object)
        .map(|o| o.get("aps"))
    else {
        return Verdict {
            event: None,
            displayed: false,
            problems: vec![Problem::NotJson],
        };
    };
    let Some(aps) = aps.and_then(Value::as_object) else {
        return Verdict {
            event: None,
            displayed: false,
            problems: vec![Problem::MissingAps],
        };
    };
    let (event, problems) = check_aps(aps, route);
    Verdict {
        event,
        displayed: problems.is_empty(),
        problems,
    }
}

/// The checks on an `aps` dictionary, shared with the payload lint ([`crate::lint`]): the
/// event it names and every problem, in payload order.
pub fn check_aps(aps: &Map<String, Value>, route: Route) -> (Option<String>, Vec<Problem>) {
    let mut problems = Vec::new();
    let event = aps.get("event").and_then(Value::as_str).map(str::to_owned);
    match (aps.get("event"), event.as_deref()) {
        (None, _) => problems.push(Problem::MissingEvent),
        (Some(_), Some("start" | "update" | "end")) => {}
        (Some(v), _) => problems.push(Problem::UnknownEvent(v.to_string())),
    }
    match aps.get("timestamp") {
        None => problems.push(Problem::MissingTimestamp),
        Some(v) if !is_seconds(v) => problems.push(Problem::BadTimestamp),
        _ => {}
    }
    let is_start = event.as_deref() == Some("start");
    match aps.get("content-state") {
        None if matches!(event.as_deref(), Some("start" | "update")) => {
            problems.push(Problem::MissingContentState)
        }
        Some(v) if !v.is_object() => problems.push(Problem::BadContentState),
        _ => {}
    }
    if is_start {
        if route == Route::Broadcast {
            problems.push(Problem::BroadcastCannotStart);
        }
        if !aps.get("attributes-type").is_some_and(Value::is_string) {
            problems.push(Problem::MissingAttributesType);
        }
        if !aps.get("attributes").is_some_and(Value::is_object) {
            problems.push(Problem::MissingAttributes);
        }
        if aps.get("alert").is_none() {
            problems.push(Problem::MissingAlert);
        }
    }
    if aps.get("stale-date").is_some_and(|v| !is_seconds(v)) {
        problems.push(Problem::BadStaleDate);
    }
    if aps.get("dismissal-date").is_some_and(|v| !is_seconds(v)) {
        problems.push(Problem::BadDismissalDate);
    }
    if aps.get("relevance-score").is_some_and(|v| !v.is_number()) {
        problems.push(Problem::BadRelevanceScore);
    }
    let token = aps.get("input-push-token");
    let channel = aps.get("input-push-channel");
    if (token.is_some() || channel.is_some()) && !is_start {
        problems.push(Problem::InputOutsideStart);
    }
    if token.is_some() && channel.is_some() {
        problems.push(Problem::BothInputs);
    }
    if token.is_some_and(|v| v.as_u64() != Some(1)) {
        problems.push(Problem::BadInputPushToken);
    }
    if channel.is_some_and(|v| !v.as_str().is_some_and(super::channels::is_well_formed)) {
        problems.push(Problem::BadInputPushChannel);
    }
    (event, problems)
}

/// The verdict for a push accepted on `/3/device`: `Some` for `apns-push-type: liveactivity` only.
pub fn device_verdict(n: &crate::model::Notification) -> Option<Verdict> {
    (n.push_type == Some(crate::model::PushType::LiveActivity))
        .then(|| check(&n.payload, Route::Device))
}

#[cfg(test)]
mod tests {
    use super::Problem::*;
    use super::*;

    const UPDATE: &str =
        r#"{"aps":{"event":"update","timestamp":1700000000,"content-state":{"score":1}}}"#;
    const START: &str = r#"{"aps":{"event":"start","timestamp":1700000000,"content-state":{},"attributes-type":"Match","attributes":{"team":"A"},"alert":{"title":"t","body":"b"}}}"#;

    #[test]
    fn table() {
        use Route::*;
        let cases: &[(&str, Route, &[Problem])] = &[
            (UPDATE, Device, &[]),
            (UPDATE, Broadcast, &[]),
            (START, Device, &[]),
            (START, Broadcast, &[BroadcastCannotStart]),
            (
                r#"{"aps":{"event":"end","timestamp":1,"dismissal-date":2}}"#,
                Broadcast,
                &[],
            ),
            (
                r#"{"aps":{"event":"end","timestamp":1,"dismissal-date":"soon"}}"#,
                Device,
                &[BadDismissalDate],
            ),
            (
                r#"{"aps":{"event":"update","timestamp":1,"content-state":{},"stale-date":"x"}}"#,
                Device,
                &[BadStaleDate],
            ),
            (
                r#"{"aps":{"event":"update","timestamp":1,"content-state":{},"relevance-score":"x"}}"#,
                Device,
                &[BadRelevanceScore],
            ),
            (
                r#"{"aps":{"event":"update","timestamp":1}}"#,
                Device,
                &[MissingContentState],
            ),
            (
                r#"{"aps":{"event":"update","timestamp":1,"content-state":3}}"#,
                Device,
                &[BadContentState],
            ),
            (
                r#"{"aps":{"timestamp":1,"content-state":{}}}"#,
                Device,
                &[MissingEvent],
            ),
            (
                r#"{"aps":{"event":"pause","timestamp":1}}"#,
                Device,
                &[UnknownEvent("\"pause\"".into())],
            ),
            (
                r#"{"aps":{"event":"update","content-state":{}}}"#,
                Device,
                &[MissingTimestamp],
            ),
            (
                r#"{"aps":{"event":"update","timestamp":"now","content-state":{}}}"#,
                Device,
                &[BadTimestamp],
            ),
            (
                r#"{"aps":{"event":"start","timestamp":1,"content-state":{}}}"#,
                Device,
                &[MissingAttributesType, MissingAttributes, MissingAlert],
            ),
            (
                r#"{"aps":{"event":"start","timestamp":1,"content-state":{},"attributes-type":"M","attributes":{},"alert":"a","input-push-token":1}}"#,
                Device,
                &[],
            ),
            (
                r#"{"aps":{"event":"start","timestamp":1,"content-state":{},"attributes-type":"M","attributes":{},"alert":"a","input-push-token":2}}"#,
                Device,
                &[BadInputPushToken],
            ),
            (
                r#"{"aps":{"event":"start","timestamp":1,"content-state":{},"attributes-type":"M","attributes":{},"alert":"a","input-push-channel":"dHN0LXNyY2gtY2hubA=="}}"#,
                Device,
                &[],
            ),
            (
                r#"{"aps":{"event":"start","timestamp":1,"content-state":{},"attributes-type":"M","attributes":{},"alert":"a","input-push-channel":"!"}}"#,
                Device,
                &[BadInputPushChannel],
            ),
            (
                r#"{"aps":{"event":"start","timestamp":1,"content-state":{},"attributes-type":"M","attributes":{},"alert":"a","input-push-channel":"dHN0LXNyY2gtY2hubA==","input-push-token":1}}"#,
                Device,
                &[BothInputs],
            ),
            (
                r#"{"aps":{"event":"update","timestamp":1,"content-state":{},"input-push-token":1}}"#,
                Device,
                &[InputOutsideStart],
            ),
            (r#"{"alert":"x"}"#, Device, &[MissingAps]),
            ("not json", Device, &[NotJson]),
        ];
        for (payload, route, want) in cases {
            let v = check(payload.as_bytes(), *route);
            assert_eq!(&v.problems[..], *want, "{payload} via {route:?}");
            assert_eq!(v.displayed, want.is_empty());
        }
    }

    #[test]
    fn verdict_serialises_for_the_journal() {
        let v = check(START.as_bytes(), Route::Broadcast);
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            serde_json::json!({"event":"start","displayed":false,"problems":[{"problem":"broadcast-cannot-start"}]})
        );
    }
}
