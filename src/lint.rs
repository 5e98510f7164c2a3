//! The payload check: what a device would make of a payload APNs accepted. APNs answers 200 to
//! many payloads a phone will not display as the sender meant (a string badge, `alert` as a
//! number, `content-available: true`), so every accepted notification is linted here, pure
//! over the payload bytes and the push type, each rule citing the Apple document it follows.
//! The control API shows the result beside the journal event and the device inbox uses it to
//! decide what the lock screen shows; `strict_payload` turns a warning into a rejection.

use serde::Serialize;
use serde_json::{Map, Value};

/// Apple's payload key reference ("Generating a remote notification", table of `aps` keys).
pub const DOC_PAYLOAD_KEYS: &str = "https://developer.apple.com/documentation/usernotifications/generating-a-remote-notification#Payload-key-reference";
/// Apple's page on creating the payload (a JSON dictionary with an `aps` dictionary).
const DOC_PAYLOAD: &str = "https://developer.apple.com/documentation/usernotifications/generating-a-remote-notification#Create-the-JSON-payload";
/// Apple's page on background updates (`content-available` 1, no alert, sound or badge).
const DOC_BACKGROUND: &str = "https://developer.apple.com/documentation/usernotifications/pushing-background-updates-to-your-app";
/// Apple's page on notification service extensions (`mutable-content` 1 needs an alert).
const DOC_MUTABLE: &str = "https://developer.apple.com/documentation/usernotifications/modifying-content-in-newly-delivered-notifications";
/// Apple's page on Live Activity pushes (`timestamp`, `event`, `content-state`).
const DOC_LIVE_ACTIVITY: &str = "https://developer.apple.com/documentation/activitykit/starting-and-updating-live-activities-with-activitykit-push-notifications";
/// Apple's page on sending requests (`apns-push-type` alert shows something to the user).
const DOC_PUSH_TYPE: &str = "https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns";

/// The overall result: `ok` when no rule found anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// The device would handle the payload as written.
    Ok,
    /// At least one finding: the device would not show (or run) what the sender meant.
    Warn,
}

impl Level {
    /// The name used in JSON and in `GET /journal?lint=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
        }
    }

    /// Parses `ok` or `warn`.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "ok" => Some(Level::Ok),
            "warn" => Some(Level::Warn),
            _ => None,
        }
    }
}

/// One rule that a payload broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// The rule's stable kebab-case name.
    pub rule: &'static str,
    /// Where in the payload (`aps.badge`, or empty for the whole payload).
    pub key: String,
    /// What the device would do, in one sentence.
    pub message: String,
    /// The Apple document the rule follows.
    pub doc: &'static str,
}

/// A payload's lint: its level and every finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Lint {
    /// `warn` when there is any finding.
    pub level: Level,
    /// What was found, in payload order.
    pub findings: Vec<Finding>,
}

/// What the lock screen would show for a payload: the banner's fields, or why nothing shows.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Display {
    /// Whether the device would show a banner.
    pub shown: bool,
    /// Why not, when `shown` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The alert title (or its `title-loc-key` with args).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The alert subtitle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    /// The alert body (or its `loc-key` with args).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The badge number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub badge: Option<u64>,
    /// The sound name (`critical` sounds are marked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    /// The thread the banner groups under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// `passive`, `active`, `time-sensitive` or `critical`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interruption_level: Option<String>,
    /// A Live Activity's `content-state`, when the push updates one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_state: Option<Value>,
}

/// Push types whose payload is the app's own dictionary, with no `aps` required (PROTOCOL.md 2.4).
const OWN_PAYLOAD_TYPES: [&str; 6] = [
    "voip",
    "complication",
    "fileprovider",
    "mdm",
    "location",
    "pushtotalk",
];
const LEVELS: [&str; 4] = ["passive", "active", "time-sensitive", "critical"];
const ALERT_STRINGS: [&str; 8] = [
    "title",
    "subtitle",
    "body",
    "launch-image",
    "title-loc-key",
    "subtitle-loc-key",
    "loc-key",
    "action-loc-key",
];
const ALERT_ARRAYS: [&str; 3] = ["title-loc-args", "subtitle-loc-args", "loc-args"];

struct Out(Vec<Finding>);

impl Out {
    fn add(&mut self, rule: &'static str, key: &str, message: String, doc: &'static str) {
        self.0.push(Finding {
            rule,
            key: key.to_string(),
            message,
            doc,
        });
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The `aps` dictionary, or the finding that explains why there is none.
fn aps_of(payload: &[u8], push_type: &str, out: &mut Out) -> Option<Map<String, Value>> {
    let root: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(e) => {
            out.add(
                "invalid-json",
                "",
                format!("the payload is not JSON ({e}); the device drops it"),
                DOC_PAYLOAD,
            );
            return None;
        }
    };
    let Value::Object(mut root) = root else {
        out.add(
            "payload-not-object",
            "",
            format!(
                "the payload is {}, not a JSON dictionary; the device drops it",
                kind(&root)
            ),
            DOC_PAYLOAD,
        );
        return None;
    };
    match root.remove("aps") {
        Some(Value::Object(aps)) => Some(aps),
        // PushKit and the other non-user-facing types hand the whole dictionary to the app.
        None if OWN_PAYLOAD_TYPES.contains(&push_type) => Some(Map::new()),
        None => {
            out.add(
                "aps-missing",
                "aps",
                "no aps dictionary: the device shows nothing and wakes nothing".into(),
                DOC_PAYLOAD,
            );
            None
        }
        Some(other) => {
            out.add(
                "aps-not-object",
                "aps",
                format!(
                    "aps is {}, not a dictionary; the device ignores it",
                    kind(&other)
                ),
                DOC_PAYLOAD,
            );
            None
        }
    }
}

fn is_one(v: &Value) -> bool {
    v.as_u64() == Some(1)
}

fn check_alert(alert: &Value, out: &mut Out) {
    match alert {
        Value::String(_) => {}
        Value::Object(fields) => {
            for (k, v) in fields {
                if ALERT_STRINGS.contains(&k.as_str()) && !v.is_string() {
                    out.add(
                        "alert-field-type",
                        &format!("aps.alert.{k}"),
                        format!("{k} is {}, not a string; the device leaves it out", kind(v)),
                        DOC_PAYLOAD_KEYS,
                    );
                }
                if ALERT_ARRAYS.contains(&k.as_str())
                    && !v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
                {
                    out.add(
                        "alert-field-type",
                        &format!("aps.alert.{k}"),
                        format!(
                            "{k} must be an array of strings; the device cannot format the text"
                        ),
                        DOC_PAYLOAD_KEYS,
                    );
                }
            }
        }
        other => out.add(
            "alert-type",
            "aps.alert",
            format!(
                "alert is {}, not a string or dictionary; no banner is shown",
                kind(other)
            ),
            DOC_PAYLOAD_KEYS,
        ),
    }
}

fn check_sound(sound: &Value, out: &mut Out) {
    match sound {
        Value::String(_) => {}
        Value::Object(s) => {
            if s.get("critical")
                .is_some_and(|c| !(c.as_u64() == Some(0) || is_one(c)))
            {
                out.add(
                    "sound-field-type",
                    "aps.sound.critical",
                    "critical must be the number 1 or 0".into(),
                    DOC_PAYLOAD_KEYS,
                );
            }
            if !s.get("name").is_some_and(Value::is_string) {
                out.add(
                    "sound-field-type",
                    "aps.sound.name",
                    "a sound dictionary needs a name string; the device plays nothing".into(),
                    DOC_PAYLOAD_KEYS,
                );
            }
            if s.get("volume")
                .is_some_and(|v| !v.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)))
            {
                out.add(
                    "sound-field-type",
                    "aps.sound.volume",
                    "volume must be a number from 0 to 1".into(),
                    DOC_PAYLOAD_KEYS,
                );
            }
        }
        other => out.add(
            "sound-type",
            "aps.sound",
            format!(
                "sound is {}, not a string or dictionary; no sound plays",
                kind(other)
            ),
            DOC_PAYLOAD_KEYS,
        ),
    }
}

/// Live Activity rules: the device's own check (PROTOCOL.md 2.10), one module for both the
/// lint and the journal's `live_activity` verdict.
fn check_live_activity(aps: &Map<String, Value>, out: &mut Out) {
    use crate::broadcast::liveactivity::{check_aps, Route};
    for p in check_aps(aps, Route::Device).1 {
        out.add(
            "live-activity-field",
            p.key(),
            p.message(),
            DOC_LIVE_ACTIVITY,
        );
    }
}

/// Checks `payload` as a device would read it, for a push of `push_type` (`None` = alert, the
/// default when the header is absent or the protocol has none).
pub fn lint(payload: &[u8], push_type: Option<&str>) -> Lint {
    let mut out = Out(Vec::new());
    let push_type = push_type.unwrap_or("alert");
    if let Some(aps) = aps_of(payload, push_type, &mut out) {
        check_aps(&aps, push_type, &mut out);
    }
    let findings = out.0;
    Lint {
        level: if findings.is_empty() {
            Level::Ok
        } else {
            Level::Warn
        },
        findings,
    }
}

fn check_aps(aps: &Map<String, Value>, push_type: &str, out: &mut Out) {
    if let Some(alert) = aps.get("alert") {
        check_alert(alert, out);
    }
    if let Some(b) = aps.get("badge") {
        if !b.is_u64() {
            out.add(
                "badge-type",
                "aps.badge",
                format!(
                    "badge is {}, not a non-negative integer; the badge is left unchanged",
                    kind(b)
                ),
                DOC_PAYLOAD_KEYS,
            );
        }
    }
    if let Some(s) = aps.get("sound") {
        check_sound(s, out);
    }
    for key in ["thread-id", "category", "target-content-id"] {
        if aps.get(key).is_some_and(|v| !v.is_string()) {
            out.add(
                "string-field-type",
                &format!("aps.{key}"),
                format!("{key} must be a string; the device ignores it"),
                DOC_PAYLOAD_KEYS,
            );
        }
    }
    let background = aps.get("content-available");
    if let Some(c) = background.filter(|c| !is_one(c)) {
        out.add(
            "content-available-value",
            "aps.content-available",
            format!("content-available is {c}, not the number 1; the app is not woken"),
            DOC_BACKGROUND,
        );
    }
    let mutable = aps.get("mutable-content");
    if let Some(m) = mutable.filter(|m| !is_one(m)) {
        out.add(
            "mutable-content-value",
            "aps.mutable-content",
            format!("mutable-content is {m}, not the number 1; the service extension does not run"),
            DOC_MUTABLE,
        );
    }
    let has_alert = aps.get("alert").is_some_and(|a| match a {
        Value::String(s) => !s.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => false,
    });
    if mutable.is_some_and(is_one) && !has_alert {
        out.add(
            "mutable-content-without-alert",
            "aps.mutable-content",
            "mutable-content without an alert: the service extension is never called".into(),
            DOC_MUTABLE,
        );
    }
    if let Some(l) = aps.get("interruption-level") {
        if !l.as_str().is_some_and(|s| LEVELS.contains(&s)) {
            out.add(
                "interruption-level-value",
                "aps.interruption-level",
                format!(
                    "interruption-level {l} is not one of passive, active, time-sensitive, critical; the device uses active"
                ),
                DOC_PAYLOAD_KEYS,
            );
        }
    }
    if let Some(r) = aps.get("relevance-score") {
        if !r.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)) {
            out.add(
                "relevance-score-range",
                "aps.relevance-score",
                format!("relevance-score {r} is not a number from 0 to 1; the device ignores it"),
                DOC_PAYLOAD_KEYS,
            );
        }
    }
    match push_type {
        "background" => {
            for key in ["alert", "sound", "badge"] {
                if aps.contains_key(key) {
                    out.add(
                        "background-with-alert",
                        &format!("aps.{key}"),
                        format!(
                            "a background push must not carry {key}; the system may not deliver it"
                        ),
                        DOC_BACKGROUND,
                    );
                }
            }
            if !background.is_some_and(is_one) {
                out.add(
                    "background-without-content-available",
                    "aps.content-available",
                    "a background push needs content-available 1; the app is not woken".into(),
                    DOC_BACKGROUND,
                );
            }
        }
        "alert"
            if !has_alert
                && !aps.contains_key("badge")
                && !aps.contains_key("sound")
                && !background.is_some_and(is_one) =>
        {
            out.add(
                "alert-without-content",
                "aps",
                "an alert push with no alert, badge or sound: the user sees nothing".into(),
                DOC_PUSH_TYPE,
            );
        }
        "liveactivity" => check_live_activity(aps, out),
        _ => {}
    }
}

/// The text of an alert string or of one of its keys, with a `*-loc-key` shown as
/// `key(arg, …)` when the literal text is absent (the device would look it up in the app).
fn alert_text(alert: &Map<String, Value>, text: &str, loc: &str, args: &str) -> Option<String> {
    if let Some(t) = alert.get(text).and_then(Value::as_str) {
        return Some(t.to_string());
    }
    let key = alert.get(loc).and_then(Value::as_str)?;
    let args: Vec<&str> = alert
        .get(args)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Some(format!("{key}({})", args.join(", ")))
}

/// What the lock screen would show for a payload of `push_type`; uses [`lint`]'s rules to
/// decide that a payload shows nothing (invalid JSON, no aps, an alert of the wrong type,
/// a background push, nothing to show).
pub fn display(payload: &[u8], push_type: Option<&str>) -> Display {
    let mut d = Display {
        shown: false,
        reason: None,
        title: None,
        subtitle: None,
        body: None,
        badge: None,
        sound: None,
        thread: None,
        interruption_level: None,
        content_state: None,
    };
    let mut out = Out(Vec::new());
    let push_type = push_type.unwrap_or("alert");
    let Some(aps) = aps_of(payload, push_type, &mut out) else {
        d.reason = out.0.first().map(|f| f.message.clone());
        return d;
    };
    match aps.get("alert") {
        Some(Value::String(s)) => d.body = Some(s.clone()),
        Some(Value::Object(a)) => {
            d.title = alert_text(a, "title", "title-loc-key", "title-loc-args");
            d.subtitle = alert_text(a, "subtitle", "subtitle-loc-key", "subtitle-loc-args");
            d.body = alert_text(a, "body", "loc-key", "loc-args");
        }
        _ => {}
    }
    d.badge = aps.get("badge").and_then(Value::as_u64);
    d.sound = match aps.get("sound") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(s)) => s.get("name").and_then(Value::as_str).map(|n| {
            if s.get("critical").is_some_and(is_one) {
                format!("{n} (critical)")
            } else {
                n.to_string()
            }
        }),
        _ => None,
    };
    d.thread = aps
        .get("thread-id")
        .and_then(Value::as_str)
        .map(str::to_string);
    d.interruption_level = aps
        .get("interruption-level")
        .and_then(Value::as_str)
        .filter(|l| LEVELS.contains(l))
        .map(str::to_string);
    d.content_state = aps.get("content-state").filter(|c| c.is_object()).cloned();
    let visible = d.title.is_some() || d.subtitle.is_some() || d.body.is_some();
    let reason = match push_type {
        "background" => Some("a background push wakes the app and shows nothing"),
        "liveactivity" if d.content_state.is_some() || visible => None,
        "liveactivity" => Some("a Live Activity push with no content-state changes nothing"),
        _ if visible => None,
        _ if aps.contains_key("alert") => Some("the alert is not a string or dictionary"),
        _ if d.badge.is_some() || d.sound.is_some() => {
            Some("no alert: only the badge or sound changes")
        }
        _ => Some("nothing to show: no alert, badge or sound"),
    };
    d.shown = reason.is_none();
    d.reason = reason.map(str::to_string);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One payload per rule: (push type, payload, the rule it must break).
    const CASES: &[(Option<&str>, &str, &str)] = &[
        (None, "{not json", "invalid-json"),
        (None, "[1,2]", "payload-not-object"),
        (None, r#"{"data":1}"#, "aps-missing"),
        (None, r#"{"aps":"hi"}"#, "aps-not-object"),
        (None, r#"{"aps":{"alert":42}}"#, "alert-type"),
        (None, r#"{"aps":{"alert":{"title":7}}}"#, "alert-field-type"),
        (
            None,
            r#"{"aps":{"alert":{"loc-key":"K","loc-args":[1]}}}"#,
            "alert-field-type",
        ),
        (None, r#"{"aps":{"alert":"hi","badge":"3"}}"#, "badge-type"),
        (None, r#"{"aps":{"alert":"hi","sound":5}}"#, "sound-type"),
        (
            None,
            r#"{"aps":{"alert":"hi","sound":{"critical":1,"volume":2,"name":"a"}}}"#,
            "sound-field-type",
        ),
        (
            None,
            r#"{"aps":{"alert":"hi","thread-id":9}}"#,
            "string-field-type",
        ),
        (
            Some("background"),
            r#"{"aps":{"content-available":true}}"#,
            "content-available-value",
        ),
        (
            None,
            r#"{"aps":{"alert":"hi","mutable-content":true}}"#,
            "mutable-content-value",
        ),
        (
            None,
            r#"{"aps":{"mutable-content":1,"badge":1}}"#,
            "mutable-content-without-alert",
        ),
        (
            None,
            r#"{"aps":{"alert":"hi","interruption-level":"urgent"}}"#,
            "interruption-level-value",
        ),
        (
            None,
            r#"{"aps":{"alert":"hi","relevance-score":1.5}}"#,
            "relevance-score-range",
        ),
        (
            Some("background"),
            r#"{"aps":{"content-available":1,"alert":"hi"}}"#,
            "background-with-alert",
        ),
        (
            Some("background"),
            r#"{"aps":{}}"#,
            "background-without-content-available",
        ),
        (
            Some("alert"),
            r#"{"aps":{"category":"c"}}"#,
            "alert-without-content",
        ),
        (
            Some("liveactivity"),
            r#"{"aps":{"event":"update","content-state":{}}}"#,
            "live-activity-field",
        ),
    ];

    #[test]
    fn each_rule_has_a_payload_that_breaks_it() {
        for (push_type, payload, rule) in CASES {
            let l = lint(payload.as_bytes(), *push_type);
            assert_eq!(l.level, Level::Warn, "{payload}");
            assert!(
                l.findings.iter().any(|f| f.rule == *rule),
                "{payload} should break {rule}: {:?}",
                l.findings
            );
            for f in &l.findings {
                assert!(f.doc.starts_with("https://developer.apple.com/"), "{f:?}");
            }
        }
    }

    #[test]
    fn well_formed_payloads_are_ok() {
        let good: &[(Option<&str>, &str)] = &[
            (None, r#"{"aps":{"alert":"Hello"}}"#),
            (
                None,
                r#"{"aps":{"alert":{"title":"T","subtitle":"S","body":"B"},"badge":3,"sound":"default","thread-id":"t","interruption-level":"time-sensitive","relevance-score":0.5,"mutable-content":1}}"#,
            ),
            (None, r#"{"aps":{"badge":0}}"#),
            (
                None,
                r#"{"aps":{"alert":"x","sound":{"critical":1,"name":"alarm.caf","volume":0.8}}}"#,
            ),
            (
                Some("background"),
                r#"{"aps":{"content-available":1},"k":"v"}"#,
            ),
            (
                Some("liveactivity"),
                r#"{"aps":{"timestamp":1700000000,"event":"update","content-state":{"score":"2-1"}}}"#,
            ),
            (Some("voip"), r#"{"call":"x"}"#),
            (Some("mdm"), r#"{"mdm":"magic"}"#),
        ];
        for (push_type, payload) in good {
            let l = lint(payload.as_bytes(), *push_type);
            assert_eq!(l.level, Level::Ok, "{payload}: {:?}", l.findings);
        }
    }

    #[test]
    fn the_lock_screen_view() {
        let d = display(
            br#"{"aps":{"alert":{"title":"T","loc-key":"MSG","loc-args":["a","b"]},"badge":2,"sound":{"critical":1,"name":"s"}}}"#,
            None,
        );
        assert!(d.shown);
        assert_eq!(d.title.as_deref(), Some("T"));
        assert_eq!(d.body.as_deref(), Some("MSG(a, b)"));
        assert_eq!(d.badge, Some(2));
        assert_eq!(d.sound.as_deref(), Some("s (critical)"));
        let hidden = display(br#"{"aps":{"alert":42,"badge":"3"}}"#, None);
        assert!(!hidden.shown);
        assert_eq!(hidden.badge, None);
        assert!(hidden.reason.unwrap().contains("not a string"));
        assert!(!display(b"nope", None).shown);
        assert!(!display(br#"{"aps":{"content-available":1}}"#, Some("background")).shown);
        let la = display(
            br#"{"aps":{"timestamp":1,"event":"update","content-state":{"s":1}}}"#,
            Some("liveactivity"),
        );
        assert!(la.shown);
    }
}
