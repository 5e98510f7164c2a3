//! Scenario files: settings, tokens, keys and fault rules in one TOML (or JSON) document, checked
//! up front so a typo is reported with its line and column instead of silently changing a test.
//!
//! Both formats go through one converter over a small value tree, so a TOML file and its JSON twin
//! give the same [`Scenario`], and every problem found is reported (not only the first).

use crate::engine::registry::{Registry, TokenRecord};
use crate::engine::rules::{
    Action, ActionKind, CloseHow, Http2Action, LastStreamId, LegacyAction, Matcher, Rule, RuleSet,
    Trigger,
};
use crate::model::wire::{ErrorCode, Reason, SettingsUpdate, Status};
use crate::model::{DeviceToken, Environment, Protocol};
use crate::settings::Settings;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::path::PathBuf;

mod doc;

use doc::{
    boolean, float, int, line_col, name_of, string, suggest, u32_, u64_, Cx, Entry, Fields, Kind,
    Node,
};

/// Largest scenario accepted, so a mistaken path (a log file, a binary) cannot exhaust memory.
pub const MAX_SCENARIO_BYTES: usize = 4 << 20;

/// A whole scenario: what apnsim knows (tokens, keys), how it behaves (settings) and how it misbehaves (rules).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Scenario {
    /// Settings overriding the defaults; `None` when the file has no `[settings]` table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
    /// Device tokens to register.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<TokenRecord>,
    /// JWT signing keys to trust.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeySpec>,
    /// Fault rules, in evaluation order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// Seed of the rules' RNG (absent = 0), so probabilistic faults replay exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Scenario {
    /// The settings to run with: the file's, else the defaults.
    pub fn effective_settings(&self) -> Settings {
        self.settings.clone().unwrap_or_default()
    }

    /// A fresh runtime state for the rules (counters at zero, RNG at the seed).
    pub fn rule_set(&self) -> RuleSet {
        RuleSet::new(self.rules.clone(), self.seed.unwrap_or(0))
    }

    /// Registers the scenario's tokens (which also queues their feedback: PROTOCOL.md 1.8).
    pub fn register_tokens(&self, registry: &Registry) {
        for t in &self.tokens {
            registry.register(t.clone());
        }
    }
}

/// A JWT signing key the HTTP/2 listener trusts (PROTOCOL.md 2.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySpec {
    /// The 10-character key id (JWT `kid`).
    pub key_id: String,
    /// The 10-character team id (JWT `iss`).
    pub team_id: String,
    /// The public or private key in PEM, inline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    /// Path of an AuthKey_….p8 file (relative paths: relative to the scenario file). With neither
    /// `pem` nor `p8`, apnsim generates the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p8: Option<PathBuf>,
    /// The environment the key is scoped to; `None` = both (keys made before 2025).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// Topics of a topic-specific key; empty = a team-scoped key (any topic of the team).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
    /// The one related key a topic-specific key may share a connection with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related_key_id: Option<String>,
}

/// One problem in a scenario, where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ScenarioError {
    /// 1-based line; 0 when the format gives no position (JSON after parsing).
    pub line: usize,
    /// 1-based column in characters; 0 when unknown.
    pub column: usize,
    /// What is wrong, starting with the field path (e.g. `rules[2].then.status`).
    pub message: String,
}

/// Every problem found in a scenario, printed `file:line:col: message`, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioErrors {
    /// The file name shown before each position.
    pub file: String,
    /// The problems, in file order.
    pub errors: Vec<ScenarioError>,
}

impl ScenarioErrors {
    /// A body that is not UTF-8, positioned at its first bad byte (`valid_up_to` bytes are
    /// text), so it reads like every other scenario error.
    pub fn not_utf8(body: &[u8], valid_up_to: usize) -> Self {
        let text = std::str::from_utf8(&body[..valid_up_to.min(body.len())]).unwrap_or("");
        let (line, column) = doc::line_col(text, text.len());
        ScenarioErrors {
            file: String::new(),
            errors: vec![ScenarioError {
                line,
                column,
                message: "scenario is not UTF-8".into(),
            }],
        }
    }

    /// Names the file for display.
    pub fn with_file(mut self, file: impl Into<String>) -> Self {
        self.file = file.into();
        self
    }
}

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if e.line == 0 {
                write!(f, "{}: {}", self.file, e.message)?;
            } else {
                write!(f, "{}:{}:{}: {}", self.file, e.line, e.column, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

/// Parses a scenario file's text by its name: JSON for `.json`, TOML otherwise; errors carry
/// the file name (what `check-scenario` and `serve --scenario` print).
pub fn parse_named(path: &std::path::Path, text: &str) -> Result<Scenario, ScenarioErrors> {
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let parsed = if json {
        parse_json(text)
    } else {
        parse_toml(text)
    };
    parsed.map_err(|e| e.with_file(path.display().to_string()))
}

/// Parses and checks a TOML scenario.
pub fn parse_toml(text: &str) -> Result<Scenario, ScenarioErrors> {
    if text.len() > MAX_SCENARIO_BYTES {
        return Err(too_big(text.len()));
    }
    let root = match toml::from_str::<Kind>(text) {
        Ok(kind) => Node {
            span: Some(0..text.len()),
            kind,
        },
        Err(e) => {
            let (line, column) = match e.span() {
                Some(s) => line_col(text, s.start),
                None => (1, 1),
            };
            return Err(ScenarioErrors {
                file: "scenario".into(),
                errors: vec![ScenarioError {
                    line,
                    column,
                    message: toml_message(e.message()),
                }],
            });
        }
    };
    finish(scenario_from(&root), Some(text))
}

/// toml's message, with its datetime plumbing (which our value tree refuses) said plainly.
fn toml_message(m: &str) -> String {
    if m.contains("$__toml_private_datetime") {
        "dates and times are not used in scenarios (write milliseconds since the epoch)".into()
    } else {
        m.trim_end().to_string()
    }
}

/// Parses and checks a JSON scenario (same shape as TOML; semantic errors carry no position).
pub fn parse_json(text: &str) -> Result<Scenario, ScenarioErrors> {
    if text.len() > MAX_SCENARIO_BYTES {
        return Err(too_big(text.len()));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => finish(scenario_from(&Node::from_json(&v)), None),
        Err(e) => Err(ScenarioErrors {
            file: "scenario".into(),
            errors: vec![ScenarioError {
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            }],
        }),
    }
}

/// Parses and checks one rule sent as JSON (the control API's "add a rule").
pub fn parse_rule_json(text: &str) -> Result<Rule, ScenarioErrors> {
    if text.len() > MAX_SCENARIO_BYTES {
        return Err(too_big(text.len()));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => rule_from_json(&v),
        Err(e) => Err(ScenarioErrors {
            file: "rule".into(),
            errors: vec![ScenarioError {
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            }],
        }),
    }
}

fn rule_from_json(v: &serde_json::Value) -> Result<Rule, ScenarioErrors> {
    let mut cx = Cx::default();
    let node = Node::from_json(v);
    let rule = rule_from(&mut cx, &node, "rule");
    finish((rule, cx), None).and_then(|r| {
        r.ok_or_else(|| ScenarioErrors {
            file: "rule".into(),
            errors: vec![ScenarioError {
                line: 0,
                column: 0,
                message: "rule: not a rule".into(),
            }],
        })
    })
}

impl<'de> Deserialize<'de> for Rule {
    /// Any serde format (JSON bodies of the control API, embedded TOML), checked like a file.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        rule_from_json(&v).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Scenario {
    /// Any serde format, checked like a file.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        finish(scenario_from(&Node::from_json(&v)), None).map_err(serde::de::Error::custom)
    }
}

fn too_big(len: usize) -> ScenarioErrors {
    ScenarioErrors {
        file: "scenario".into(),
        errors: vec![ScenarioError {
            line: 1,
            column: 1,
            message: format!("scenario is {len} bytes; the limit is {MAX_SCENARIO_BYTES}"),
        }],
    }
}

/// Turns collected (span, message) pairs into positioned errors, or returns the value.
fn finish<T>((value, cx): (T, Cx), text: Option<&str>) -> Result<T, ScenarioErrors> {
    if cx.errors.is_empty() {
        return Ok(value);
    }
    let mut errors: Vec<ScenarioError> = cx
        .errors
        .into_iter()
        .map(|(span, message)| {
            let (line, column) = match (text, span) {
                (Some(t), Some(s)) => line_col(t, s.start),
                _ => (0, 0),
            };
            ScenarioError {
                line,
                column,
                message,
            }
        })
        .collect();
    errors.sort_by_key(|e| (e.line, e.column));
    Err(ScenarioErrors {
        file: "scenario".into(),
        errors,
    })
}

const PROTOCOLS: [(&str, Protocol); 3] = [
    ("legacy", Protocol::Legacy),
    ("http2", Protocol::Http2),
    ("feedback", Protocol::Feedback),
];
const ENVIRONMENTS: [(&str, Environment); 2] = [
    ("sandbox", Environment::Sandbox),
    ("production", Environment::Production),
];
const EVENTS: [(&str, Trigger); 2] = [
    ("connect", Trigger::Connect),
    ("notification", Trigger::Notification),
];

fn environment(cx: &mut Cx, node: &Node, path: &str) -> Option<Environment> {
    name_of(cx, node, path, "environment", &ENVIRONMENTS)
}

fn token(cx: &mut Cx, node: &Node, path: &str) -> Option<DeviceToken> {
    let s = string(cx, node, path)?;
    match DeviceToken::from_hex(&s) {
        Some(t) if !t.is_empty() => Some(t),
        Some(_) => {
            cx.err(
                &node.span,
                format!("{path}: a device token cannot be empty"),
            );
            None
        }
        None => {
            cx.err(
                &node.span,
                format!("{path}: device token must be hex with an even number of digits"),
            );
            None
        }
    }
}

/// A legacy status by name (`invalid_token`) or code (`8`) (PROTOCOL.md 1.6).
fn status(cx: &mut Cx, node: &Node, path: &str) -> Option<Status> {
    match &node.kind {
        Kind::Int(i) => {
            let s = u8::try_from(*i).ok().and_then(Status::from_code);
            if s.is_none() {
                cx.err(
                    &node.span,
                    format!("{path}: {i} is not a legacy status code (0-8, 10, 128, 255)"),
                );
            }
            s
        }
        _ => {
            let table: Vec<(&'static str, Status)> =
                Status::ALL.iter().map(|s| (s.name(), *s)).collect();
            name_of(cx, node, path, "legacy status", &table)
        }
    }
}

/// An HTTP/2 reason by Apple's exact string (PROTOCOL.md 2.7).
fn reason(cx: &mut Cx, node: &Node, path: &str) -> Option<Reason> {
    let table: Vec<(&'static str, Reason)> = Reason::ALL.iter().map(|r| (r.as_str(), *r)).collect();
    name_of(cx, node, path, "APNs reason", &table)
}

/// An HTTP/2 error code by RFC name or number.
fn error_code(cx: &mut Cx, node: &Node, path: &str) -> Option<ErrorCode> {
    match &node.kind {
        Kind::Int(_) => u32_(cx, node, path).map(ErrorCode),
        _ => {
            let s = string(cx, node, path)?;
            let c = ErrorCode::from_name(&s);
            if c.is_none() {
                let hint = match suggest(&s, ErrorCode::NAMES.iter().copied()) {
                    Some(n) => format!("did you mean {n:?}?"),
                    None => format!(
                        "expected a number or one of: {}",
                        ErrorCode::NAMES.join(", ")
                    ),
                };
                cx.err(
                    &node.span,
                    format!("{path}: unknown HTTP/2 error code {s:?}; {hint}"),
                );
            }
            c
        }
    }
}

fn scenario_from(root: &Node) -> (Scenario, Cx) {
    let mut cx = Cx::default();
    let mut sc = Scenario::default();
    let Some(mut f) = Fields::open(&mut cx, root, "") else {
        return (sc, cx);
    };
    if let Some(n) = f.get("settings") {
        sc.settings = settings_from(&mut cx, n);
    }
    if let Some(n) = f.get("seed") {
        sc.seed = u64_(&mut cx, n, "seed");
    }
    if let Some(n) = f.get("tokens") {
        let tokens = array(&mut cx, n, "tokens", token_record);
        for (k, (i, item, t)) in tokens.iter().enumerate() {
            let earlier = tokens.get(..k).unwrap_or(&[]);
            if earlier.iter().any(|(_, _, o)| o.token == t.token) {
                cx.err(
                    &item.span_of("token"),
                    format!("tokens[{i}].token: token {} is listed twice", t.token),
                );
            }
        }
        sc.tokens = tokens.into_iter().map(|(_, _, t)| t).collect();
    }
    if let Some(n) = f.get("keys") {
        let keys = array(&mut cx, n, "keys", key_spec);
        check_keys(&mut cx, &keys);
        sc.keys = keys.into_iter().map(|(_, _, k)| k).collect();
    }
    if let Some(n) = f.get("rules") {
        if let Kind::Array(items) = &n.kind {
            for (i, item) in items.iter().enumerate() {
                if let Some(r) = rule_from(&mut cx, item, &format!("rules[{i}]")) {
                    sc.rules.push(r);
                }
            }
        } else {
            cx.expected(n, "rules", "an array of tables ([[rules]])");
        }
    }
    f.finish(
        &mut cx,
        &["settings", "seed", "tokens", "keys", "rules"],
        "",
    );
    (sc, cx)
}

/// Reads an array of tables, keeping each item's index and node for later cross-checks.
fn array<'a, T>(
    cx: &mut Cx,
    node: &'a Node,
    path: &str,
    item: impl Fn(&mut Cx, &Node, &str) -> Option<T>,
) -> Vec<(usize, &'a Node, T)> {
    match &node.kind {
        Kind::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, n)| item(cx, n, &format!("{path}[{i}]")).map(|t| (i, n, t)))
            .collect(),
        _ => {
            cx.expected(node, path, "an array of tables");
            Vec::new()
        }
    }
}

/// `[settings]`: any subset of [`Settings`] fields, merged over the defaults (PROTOCOL.md Part 3).
fn settings_from(cx: &mut Cx, node: &Node) -> Option<Settings> {
    let Kind::Table(entries) = &node.kind else {
        cx.expected(node, "settings", "a table");
        return None;
    };
    let defaults = serde_json::to_value(Settings::default()).ok()?;
    let known: Vec<String> = defaults
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let before = cx.errors.len();
    let mut merged = serde_json::Map::new();
    for e in entries {
        // An old name reads as the new one (`legacy_error_delay_ms`).
        let renamed;
        let e = match crate::settings::SETTING_ALIASES
            .iter()
            .find(|(old, _)| *old == e.key)
        {
            Some((_, new)) => {
                renamed = Entry {
                    key: new.to_string(),
                    ..e.clone()
                };
                &renamed
            }
            None => e,
        };
        let path = format!("settings.{}", e.key);
        if !known.contains(&e.key) {
            let hint = suggest(&e.key, known.iter().map(String::as_str))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            let span = e.key_span.clone().or_else(|| e.value.span.clone());
            cx.err(&span, format!("{path}: unknown setting `{}`{hint}", e.key));
            continue;
        }
        let Some(value) = e.value.to_json() else {
            cx.err(&e.value.span, format!("{path}: not a valid value"));
            continue;
        };
        if let (Some(default), Kind::Table(sub)) = (defaults.get(&e.key), &e.value.kind) {
            // Nested tables (http2_reasons) ignore unknown keys in serde; catch typos here.
            if let Some(obj) = default.as_object() {
                for s in sub {
                    if !obj.contains_key(&s.key) {
                        let span = s.key_span.clone().or_else(|| s.value.span.clone());
                        cx.err(
                            &span,
                            format!("{path}.{}: unknown setting `{}`", s.key, s.key),
                        );
                    }
                }
            }
        }
        let mut one = serde_json::Map::new();
        one.insert(e.key.clone(), value.clone());
        match serde_json::from_value::<Settings>(serde_json::Value::Object(one)) {
            Err(err) => {
                cx.err(&e.value.span, format!("{path}: {err}"));
                continue;
            }
            Ok(alone) => {
                if let Err(err) = alone.check_field(&e.key) {
                    cx.err(&e.value.span, format!("settings.{err}"));
                    continue;
                }
            }
        }
        merged.insert(e.key.clone(), value);
    }
    if cx.errors.len() != before {
        return None;
    }
    match serde_json::from_value::<Settings>(serde_json::Value::Object(merged)) {
        Ok(s) => {
            if let Err(err) = s.check_combined() {
                // Point at the frame limit if the file sets it, else at the buffer, else the table.
                let span = ["legacy_max_frame", "legacy_read_buffer"]
                    .iter()
                    .find_map(|k| entries.iter().find(|e| e.key == *k))
                    .map_or(node.span.clone(), |e| e.value.span.clone());
                cx.err(&span, format!("settings: {err}"));
                return None;
            }
            Some(s)
        }
        Err(err) => {
            cx.err(&node.span, format!("settings: {err}"));
            None
        }
    }
}

fn token_record(cx: &mut Cx, node: &Node, path: &str) -> Option<TokenRecord> {
    let mut f = Fields::open(cx, node, path)?;
    let tok = match f.get("token") {
        Some(n) => token(cx, n, &f.path("token")),
        None => {
            cx.err(&node.span, format!("{path}: missing field `token`"));
            None
        }
    };
    let env = f
        .get("environment")
        .and_then(|n| environment(cx, n, &format!("{path}.environment")));
    let topic = f
        .get("topic")
        .and_then(|n| string(cx, n, &format!("{path}.topic")));
    let unregistered_at = f
        .get("unregistered_at")
        .and_then(|n| u64_(cx, n, &format!("{path}.unregistered_at")));
    let online = f
        .get("online")
        .and_then(|n| boolean(cx, n, &format!("{path}.online")));
    f.finish(
        cx,
        &["token", "environment", "topic", "unregistered_at", "online"],
        "",
    );
    Some(TokenRecord {
        topic,
        unregistered_at,
        online: online.unwrap_or(true),
        ..TokenRecord::new(tok?, env)
    })
}

fn is_apple_id(s: &str) -> bool {
    s.len() == 10 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn key_spec(cx: &mut Cx, node: &Node, path: &str) -> Option<KeySpec> {
    let mut f = Fields::open(cx, node, path)?;
    let id = |cx: &mut Cx, f: &mut Fields<'_>, key: &str| -> Option<String> {
        let p = f.path(key);
        match f.get(key) {
            Some(n) => {
                let s = string(cx, n, &p)?;
                if is_apple_id(&s) {
                    Some(s)
                } else {
                    // PROTOCOL.md 2.8: kid and iss are 10-character ids.
                    cx.err(
                        &n.span,
                        format!("{p}: {s:?} is not a 10-character Apple id"),
                    );
                    None
                }
            }
            None => {
                cx.err(&node.span, format!("{path}: missing field `{key}`"));
                None
            }
        }
    };
    let key_id = id(cx, &mut f, "key_id");
    let team_id = id(cx, &mut f, "team_id");
    let pem_node = f.get("pem");
    let pem = pem_node.and_then(|n| string(cx, n, &format!("{path}.pem")));
    if let (Some(p), Some(n)) = (&pem, pem_node) {
        if !p.contains("-----BEGIN ") {
            cx.err(
                &n.span,
                format!("{path}.pem: not a PEM block (no -----BEGIN line)"),
            );
        }
    }
    let p8 = f
        .get("p8")
        .and_then(|n| string(cx, n, &format!("{path}.p8")))
        .map(PathBuf::from);
    if let (Some(_), Some(_), Some(n)) = (&pem, &p8, pem_node) {
        cx.err(&n.span, format!("{path}: give `pem` or `p8`, not both"));
    }
    let env = f
        .get("environment")
        .and_then(|n| environment(cx, n, &format!("{path}.environment")));
    let topics = match f.get("topics") {
        Some(n) => match &n.kind {
            Kind::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, t)| string(cx, t, &format!("{path}.topics[{i}]")))
                .collect(),
            _ => {
                cx.expected(n, &format!("{path}.topics"), "an array of strings");
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let related = f
        .get("related_key_id")
        .and_then(|n| string(cx, n, &format!("{path}.related_key_id")));
    f.finish(
        cx,
        &[
            "key_id",
            "team_id",
            "pem",
            "p8",
            "environment",
            "topics",
            "related_key_id",
        ],
        "",
    );
    Some(KeySpec {
        key_id: key_id?,
        team_id: team_id?,
        pem,
        p8,
        environment: env,
        topics,
        related_key_id: related,
    })
}

fn check_keys(cx: &mut Cx, keys: &[(usize, &Node, KeySpec)]) {
    for (k, (i, node, key)) in keys.iter().enumerate() {
        let earlier = keys.get(..k).unwrap_or(&[]);
        if earlier.iter().any(|(_, _, o)| o.key_id == key.key_id) {
            cx.err(
                &node.span_of("key_id"),
                format!("keys[{i}].key_id: key id {} is listed twice", key.key_id),
            );
        }
        if let Some(r) = &key.related_key_id {
            let span = node.span_of("related_key_id");
            if *r == key.key_id {
                cx.err(
                    &span,
                    format!("keys[{i}].related_key_id: a key cannot be related to itself"),
                );
            } else if !keys.iter().any(|(_, _, o)| o.key_id == *r) {
                cx.err(
                    &span,
                    format!("keys[{i}].related_key_id: no key {r} in this scenario"),
                );
            }
        }
    }
}

fn rule_from(cx: &mut Cx, node: &Node, path: &str) -> Option<Rule> {
    let mut f = Fields::open(cx, node, path)?;
    let name = f.get("name").and_then(|n| string(cx, n, &f.path("name")));
    let when = match f.get("when") {
        Some(n) => matcher_from(cx, n, &f.path("when")),
        None => Some(Matcher::default()),
    };
    let then = match f.get("then") {
        Some(n) => action_from(cx, n, &f.path("then")),
        None => {
            cx.err(
                &node.span,
                format!("{path}: missing field `then` (e.g. then = {{ action = \"drop\" }})"),
            );
            None
        }
    };
    let times = f.get("times").and_then(|n| u32_(cx, n, &f.path("times")));
    let delay_ms = f
        .get("delay_ms")
        .and_then(|n| u64_(cx, n, &f.path("delay_ms")));
    let close = f.get("close").and_then(|n| {
        let table = CloseHow::ALL.map(|h| (h.name(), h));
        name_of(cx, n, &f.path("close"), "close", &table)
    });
    f.finish(
        cx,
        &["name", "when", "then", "times", "delay_ms", "close"],
        "",
    );
    let rule = Rule {
        name,
        when: when?,
        then: then?,
        times,
        delay_ms,
        close,
    };
    for (field, msg) in rule.check() {
        cx.err(&node.span_of(&field), format!("{path}.{field}: {msg}"));
    }
    Some(rule)
}

const MATCHER_FIELDS: [&str; 18] = [
    "on",
    "protocol",
    "environment",
    "token",
    "token_environment_mismatch",
    "topic",
    "push_type",
    "api",
    "channel",
    "nth",
    "nth_overall",
    "every",
    "every_overall",
    "after",
    "after_overall",
    "connection",
    "connection_overall",
    "probability",
];

fn matcher_from(cx: &mut Cx, node: &Node, path: &str) -> Option<Matcher> {
    let mut f = Fields::open(cx, node, path)?;
    let before = cx.errors.len();
    let mut m = Matcher::default();
    let p = |k: &str| format!("{path}.{k}");
    m.on = f
        .get("on")
        .and_then(|n| name_of(cx, n, &p("on"), "event", &EVENTS));
    m.protocol = f
        .get("protocol")
        .and_then(|n| name_of(cx, n, &p("protocol"), "protocol", &PROTOCOLS));
    m.environment = f
        .get("environment")
        .and_then(|n| environment(cx, n, &p("environment")));
    m.token = f.get("token").and_then(|n| match &n.kind {
        Kind::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, t)| token(cx, t, &format!("{path}.token[{i}]")))
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Option<Vec<_>>>(),
        _ => token(cx, n, &p("token")).map(|t| vec![t]),
    });
    m.token_environment_mismatch = f
        .get("token_environment_mismatch")
        .and_then(|n| boolean(cx, n, &p("token_environment_mismatch")));
    m.topic = f.get("topic").and_then(|n| string(cx, n, &p("topic")));
    m.push_type = f.get("push_type").and_then(|n| {
        let table = crate::model::PushType::ALL.map(|t| (t.as_str(), t));
        name_of(cx, n, &p("push_type"), "push type", &table)
    });
    m.api = f.get("api").and_then(|n| {
        let table = crate::engine::rules::Api::ALL.map(|a| (a.as_str(), a));
        name_of(cx, n, &p("api"), "api", &table)
    });
    m.channel = f.get("channel").and_then(|n| string(cx, n, &p("channel")));
    let mut count = |f: &mut Fields<'_>, k: &str| f.get(k).and_then(|n| u64_(cx, n, &p(k)));
    m.nth = count(&mut f, "nth");
    m.nth_overall = count(&mut f, "nth_overall");
    m.every = count(&mut f, "every");
    m.every_overall = count(&mut f, "every_overall");
    m.after = count(&mut f, "after");
    m.after_overall = count(&mut f, "after_overall");
    m.connection = count(&mut f, "connection");
    m.connection_overall = count(&mut f, "connection_overall");
    m.probability = f
        .get("probability")
        .and_then(|n| float(cx, n, &p("probability")));
    f.finish(cx, &MATCHER_FIELDS, "");
    (cx.errors.len() == before).then_some(m)
}

fn action_from(cx: &mut Cx, node: &Node, path: &str) -> Option<Action> {
    let mut f = Fields::open(cx, node, path)?;
    let Some(name_node) = f.get("action") else {
        let names: Vec<&str> = ActionKind::ALL.iter().map(|k| k.name()).collect();
        cx.err(
            &node.span,
            format!(
                "{path}: missing field `action` (one of: {})",
                names.join(", ")
            ),
        );
        return None;
    };
    let table = ActionKind::ALL.map(|k| (k.name(), k));
    let kind = name_of(cx, name_node, &f.path("action"), "action", &table)?;
    let name = kind.name();
    let before = cx.errors.len();
    let p = |k: &str| format!("{path}.{k}");
    let action = {
        let f = &mut f;
        let mut req = |cx: &mut Cx, key: &str| {
            let n = f.get(key);
            if n.is_none() {
                cx.err(
                    &node.span,
                    format!("{path}: action {name:?} needs field `{key}`"),
                );
            }
            n
        };
        match kind {
            ActionKind::Accept => Some(Action::Accept),
            ActionKind::Error => {
                let status = req(cx, "status").and_then(|n| status(cx, n, &p("status")));
                let close = f.get("close").and_then(|n| boolean(cx, n, &p("close")));
                status.map(|status| {
                    Action::Legacy(LegacyAction::Error {
                        status,
                        close: close.unwrap_or(true),
                    })
                })
            }
            ActionKind::Drop | ActionKind::Close => {
                let reset = f
                    .get("reset")
                    .and_then(|n| boolean(cx, n, &p("reset")))
                    .unwrap_or(false);
                Some(if kind == ActionKind::Drop {
                    Action::Legacy(LegacyAction::Drop { reset })
                } else {
                    Action::Http2(Http2Action::Close { reset })
                })
            }
            ActionKind::Stall => Some(Action::Legacy(LegacyAction::Stall {
                for_ms: f.get("for_ms").and_then(|n| u64_(cx, n, &p("for_ms"))),
            })),
            ActionKind::Throttle => req(cx, "bytes_per_sec")
                .and_then(|n| u64_(cx, n, &p("bytes_per_sec")))
                .map(|bytes_per_sec| Action::Legacy(LegacyAction::Throttle { bytes_per_sec })),
            ActionKind::Reject => {
                let r = req(cx, "reason").and_then(|n| reason(cx, n, &p("reason")));
                let status = f
                    .get("status")
                    .and_then(|n| int::<u16>(cx, n, &p("status"), "400 to 599"));
                let timestamp_ms = f
                    .get("timestamp_ms")
                    .and_then(|n| u64_(cx, n, &p("timestamp_ms")));
                let mcs = f
                    .get("max_concurrent_streams")
                    .and_then(|n| u32_(cx, n, &p("max_concurrent_streams")));
                r.map(|reason| {
                    Action::Http2(Http2Action::Reject {
                        reason,
                        status,
                        timestamp_ms,
                        max_concurrent_streams: mcs,
                    })
                })
            }
            ActionKind::Goaway => {
                let reason = f.get("reason").and_then(|n| reason(cx, n, &p("reason")));
                let code = f
                    .get("code")
                    .and_then(|n| error_code(cx, n, &p("code")))
                    .unwrap_or(ErrorCode::NO_ERROR);
                let last_stream_id = match f.get("last_stream_id") {
                    None => LastStreamId::Auto,
                    Some(n) => match &n.kind {
                        Kind::Str(s) if s == "auto" => LastStreamId::Auto,
                        Kind::Int(_) => u32_(cx, n, &p("last_stream_id"))
                            .map(LastStreamId::Id)
                            .unwrap_or_default(),
                        _ => {
                            cx.expected(n, &p("last_stream_id"), "\"auto\" or a stream id");
                            LastStreamId::Auto
                        }
                    },
                };
                let before_settings = f
                    .get("before_settings")
                    .and_then(|n| boolean(cx, n, &p("before_settings")))
                    .unwrap_or(false);
                Some(Action::Http2(Http2Action::Goaway {
                    reason,
                    code,
                    last_stream_id,
                    before_settings,
                }))
            }
            ActionKind::RstStream => Some(Action::Http2(Http2Action::RstStream {
                code: f
                    .get("code")
                    .and_then(|n| error_code(cx, n, &p("code")))
                    .unwrap_or(ErrorCode::INTERNAL_ERROR),
            })),
            ActionKind::Delay => req(cx, "ms")
                .and_then(|n| u64_(cx, n, &p("ms")))
                .map(|ms| Action::Http2(Http2Action::Delay { ms })),
            ActionKind::Settings => {
                let mut get = |k: &str| f.get(k).and_then(|n| u32_(cx, n, &p(k)));
                Some(Action::Http2(Http2Action::Settings(SettingsUpdate {
                    header_table_size: get("header_table_size"),
                    max_concurrent_streams: get("max_concurrent_streams"),
                    initial_window_size: get("initial_window_size"),
                    max_frame_size: get("max_frame_size"),
                    max_header_list_size: get("max_header_list_size"),
                })))
            }
            ActionKind::IgnorePing => Some(Action::Http2(Http2Action::IgnorePing)),
        }
    };
    let mut allowed = vec!["action"];
    allowed.extend(kind.fields().iter().copied());
    f.finish(cx, &allowed, &format!(" for action {name:?}"));
    if cx.errors.len() != before {
        return None;
    }
    action
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_utf8_is_placed_at_its_first_bad_byte() {
        let body = "[settings]\nbé".bytes().chain([0xff]).collect::<Vec<u8>>();
        let at = std::str::from_utf8(&body).unwrap_err().valid_up_to();
        let e = ScenarioErrors::not_utf8(&body, at).with_file("scenario");
        assert_eq!(e.to_string(), "scenario:2:3: scenario is not UTF-8");
    }
    use crate::engine::rules::{Api, ConnectionCtx, NotificationCtx};
    use crate::model::Notification;
    use proptest::prelude::*;

    fn err(text: &str) -> ScenarioErrors {
        parse_toml(text).expect_err("should fail")
    }

    /// 1-based (line, column) of the first occurrence of `needle` in `text`.
    fn pos(text: &str, needle: &str) -> (usize, usize) {
        for (i, line) in text.lines().enumerate() {
            if let Some(c) = line.find(needle) {
                return (i + 1, line[..c].chars().count() + 1);
            }
        }
        panic!("{needle} not in text");
    }

    fn at(e: &ScenarioErrors) -> Vec<(usize, usize)> {
        e.errors.iter().map(|e| (e.line, e.column)).collect()
    }

    fn fixtures() -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
        let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("fixtures/scenarios")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| {
                (
                    p.display().to_string(),
                    std::fs::read_to_string(&p).expect("read"),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn every_fixture_parses_and_says_what_it_reproduces() {
        let all = fixtures();
        assert!(all.len() >= 9, "{} fixtures", all.len());
        for (path, text) in all {
            assert!(text.starts_with("# "), "{path} must start with a comment");
            let sc = parse_toml(&text).unwrap_or_else(|e| panic!("{}", e.with_file(path.clone())));
            assert!(
                !sc.rules.is_empty() || !sc.tokens.is_empty(),
                "{path} does nothing"
            );
            // Every fixture survives the JSON round trip unchanged.
            let json = serde_json::to_string(&sc).expect("serialize");
            assert_eq!(parse_json(&json).expect("json"), sc, "{path}");
        }
    }

    #[test]
    fn classic_rule_is_one_short_rule() {
        let sc = parse_toml(
            r#"
[[rules]]
when = { protocol = "legacy", token_environment_mismatch = true }
then = { action = "drop" }
"#,
        )
        .unwrap();
        assert_eq!(
            sc.rules,
            vec![Rule::new(
                Matcher {
                    protocol: Some(Protocol::Legacy),
                    token_environment_mismatch: Some(true),
                    ..Matcher::default()
                },
                Action::Legacy(LegacyAction::Drop { reset: false })
            )]
        );
        assert_eq!(sc.seed, None);
        assert_eq!(sc.settings, None);
    }

    fn then(t: &str) -> Action {
        let text = format!("[[rules]]\nthen = {t}\n");
        let sc = parse_toml(&text).unwrap_or_else(|e| panic!("{t}: {e}"));
        sc.rules.into_iter().next().unwrap().then
    }

    #[test]
    fn every_action_parses() {
        assert_eq!(then(r#"{ action = "accept" }"#), Action::Accept);
        assert_eq!(
            then(r#"{ action = "error", status = "invalid_token" }"#),
            Action::Legacy(LegacyAction::Error {
                status: Status::InvalidToken,
                close: true
            })
        );
        assert_eq!(
            then(r#"{ action = "error", status = 10, close = false }"#),
            Action::Legacy(LegacyAction::Error {
                status: Status::Shutdown,
                close: false
            })
        );
        assert_eq!(
            then(r#"{ action = "drop", reset = true }"#),
            Action::Legacy(LegacyAction::Drop { reset: true })
        );
        assert_eq!(
            then(r#"{ action = "stall" }"#),
            Action::Legacy(LegacyAction::Stall { for_ms: None })
        );
        assert_eq!(
            then(r#"{ action = "stall", for_ms = 3000 }"#),
            Action::Legacy(LegacyAction::Stall { for_ms: Some(3000) })
        );
        assert_eq!(
            then(r#"{ action = "throttle", bytes_per_sec = 64 }"#),
            Action::Legacy(LegacyAction::Throttle { bytes_per_sec: 64 })
        );
        assert_eq!(
            then(
                r#"{ action = "reject", reason = "Unregistered", status = 410, timestamp_ms = 5, max_concurrent_streams = 1 }"#
            ),
            Action::Http2(Http2Action::Reject {
                reason: Reason::Unregistered,
                status: Some(410),
                timestamp_ms: Some(5),
                max_concurrent_streams: Some(1)
            })
        );
        assert_eq!(
            then(r#"{ action = "goaway" }"#),
            Action::Http2(Http2Action::Goaway {
                reason: None,
                code: ErrorCode::NO_ERROR,
                last_stream_id: LastStreamId::Auto,
                before_settings: false
            })
        );
        assert_eq!(
            then(
                r#"{ action = "goaway", reason = "Shutdown", code = "ENHANCE_YOUR_CALM", last_stream_id = 7 }"#
            ),
            Action::Http2(Http2Action::Goaway {
                reason: Some(Reason::Shutdown),
                code: ErrorCode::ENHANCE_YOUR_CALM,
                last_stream_id: LastStreamId::Id(7),
                before_settings: false
            })
        );
        assert_eq!(
            then(r#"{ action = "rst_stream", code = 7 }"#),
            Action::Http2(Http2Action::RstStream {
                code: ErrorCode::REFUSED_STREAM
            })
        );
        assert_eq!(
            then(r#"{ action = "rst_stream" }"#),
            Action::Http2(Http2Action::RstStream {
                code: ErrorCode::INTERNAL_ERROR
            })
        );
        assert_eq!(
            then(r#"{ action = "delay", ms = 1500 }"#),
            Action::Http2(Http2Action::Delay { ms: 1500 })
        );
        assert_eq!(
            then(r#"{ action = "close" }"#),
            Action::Http2(Http2Action::Close { reset: false })
        );
        assert_eq!(
            then(r#"{ action = "settings", max_concurrent_streams = 1 }"#),
            Action::Http2(Http2Action::Settings(SettingsUpdate {
                max_concurrent_streams: Some(1),
                ..SettingsUpdate::default()
            }))
        );
        assert_eq!(
            then(r#"{ action = "ignore_ping" }"#),
            Action::Http2(Http2Action::IgnorePing)
        );
    }

    #[test]
    fn a_misspelt_push_type_is_refused_at_its_field() {
        let text = "[[rules]]\nwhen = { push_type = \"Alert\" }\nthen = { action = \"accept\" }\n";
        let e = err(text);
        assert_eq!(at(&e), vec![pos(text, "\"Alert\"")]);
        assert!(e.errors[0].message.contains("when.push_type"), "{e:?}");
        assert!(e.errors[0].message.contains("alert"), "{e:?}");
    }

    #[test]
    fn sub_table_form_equals_inline_form() {
        let inline = "[[rules]]\nwhen = { protocol = \"http2\", after = 3 }\nthen = { action = \"goaway\", reason = \"Shutdown\" }\ntimes = 1\n";
        let long = "[[rules]]\ntimes = 1\n[rules.when]\nprotocol = \"http2\"\nafter = 3\n[rules.then]\naction = \"goaway\"\nreason = \"Shutdown\"\n";
        assert_eq!(parse_toml(inline).unwrap(), parse_toml(long).unwrap());
        let text = "[[rules]]\n[rules.then]\naction = \"goaway\"\nreason = \"shutdown\"\n";
        assert_eq!(at(&err(text)), vec![(4, 10)]);
    }

    #[test]
    fn every_matcher_field_parses() {
        let sc = parse_toml(
            r#"
seed = 9
[[rules]]
name = "all"
when = { on = "notification", protocol = "http2", environment = "sandbox", token = ["AB01", "cd02"], token_environment_mismatch = false, topic = "com.a", push_type = "voip", api = "broadcast", channel = "AAEC", nth = 1, nth_overall = 2, every = 3, every_overall = 4, after = 5, after_overall = 6, connection = 7, connection_overall = 8, probability = 0.5 }
then = { action = "accept" }
times = 3
delay_ms = 200
"#,
        )
        .unwrap();
        let r = &sc.rules[0];
        let m = &r.when;
        assert_eq!(m.on, Some(Trigger::Notification));
        assert_eq!(m.environment, Some(Environment::Sandbox));
        assert_eq!(
            m.token,
            Some(vec![
                DeviceToken::from_hex("ab01").unwrap(),
                DeviceToken::from_hex("cd02").unwrap()
            ])
        );
        assert_eq!(m.token_environment_mismatch, Some(false));
        assert_eq!(m.topic.as_deref(), Some("com.a"));
        assert_eq!(m.push_type, Some(crate::model::PushType::Voip));
        assert_eq!(m.api, Some(crate::engine::rules::Api::Broadcast));
        assert_eq!(m.channel.as_deref(), Some("AAEC"));
        assert_eq!(
            [
                m.nth,
                m.nth_overall,
                m.every,
                m.every_overall,
                m.after,
                m.after_overall,
                m.connection,
                m.connection_overall
            ],
            [1, 2, 3, 4, 5, 6, 7, 8].map(Some)
        );
        assert_eq!(m.probability, Some(0.5));
        assert_eq!(
            (r.times, r.delay_ms, r.name.as_deref()),
            (Some(3), Some(200), Some("all"))
        );
        assert_eq!(sc.seed, Some(9));
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let text = "[[rules]]\nwhen = { protocol = \"legacy\"\nthen = { action = \"drop\" }\n";
        let e = err(text);
        assert_eq!(e.errors.len(), 1);
        assert_eq!(e.errors[0].line, 2, "{e}");
        let e = err("seed = 1\nseed = 2\n");
        assert_eq!(e.errors[0].line, 2, "{e}");
    }

    #[test]
    fn semantic_errors_point_at_the_value() {
        let text = "\n[[rules]]\nwhen = { protocol = \"legacy\" }\nthen = { action = \"error\", status = \"invalid-token\" }\n";
        let e = err(text);
        assert_eq!(at(&e), vec![pos(text, "\"invalid-token\"")], "{e}");
        assert!(e.errors[0].message.contains("rules[0].then.status"), "{e}");
        assert!(
            e.errors[0]
                .message
                .contains("did you mean \"invalid_token\""),
            "{e}"
        );

        let text = "[[rules]]\nwhen = { protocol = \"http2\" }\nthen = { action = \"drop\" }\n";
        let e = err(text);
        assert_eq!(at(&e), vec![pos(text, "\"drop\"")], "{e}");
        assert!(
            e.errors[0].message.contains("does not apply to protocol"),
            "{e}"
        );

        let text = "[[rules]]\nwhen = { probability = 1.5 }\nthen = { action = \"drop\" }\n";
        let e = err(text);
        assert_eq!(at(&e), vec![pos(text, "1.5")], "{e}");

        let text = "[[tokens]]\ntoken = \"xyz\"\n";
        let e = err(text);
        assert_eq!(at(&e), vec![pos(text, "\"xyz\"")], "{e}");

        let text =
            "[[rules]]\nwhen = { token = [\"ab\", \"q\"] }\nthen = { action = \"accept\" }\n";
        let e = err(text);
        assert_eq!(at(&e), vec![pos(text, "\"q\"")], "{e}");

        let text =
            "[[rules]]\nthen = { action = \"reject\", reason = \"BadEnvironmentKeyInToken\" }\n";
        let e = err(text);
        assert_eq!(
            at(&e),
            vec![pos(text, "\"BadEnvironmentKeyInToken\"")],
            "{e}"
        );
        assert!(
            e.errors[0].message.contains("BadEnvironmentKeyIdInToken"),
            "{e}"
        );

        let text = "[[rules]]\nthen = { action = \"error\", status = 9 }\n";
        assert_eq!(at(&err(text)), vec![pos(text, "9 }")]);

        let text = "[[rules]]\nthen = { action = \"goaway\", code = \"CALM\" }\n";
        assert_eq!(at(&err(text)), vec![pos(text, "\"CALM\"")]);
    }

    #[test]
    fn unknown_fields_point_at_the_key_and_all_errors_are_listed() {
        let text = "seed = -1\n[[rules]]\nwhne = { nth = 1 }\nthen = { action = \"drop\", rest = true }\n\n[settings]\nlegacy_max_paylod = 10\nstrict_tokens = \"yes\"\n";
        let e = err(text);
        assert_eq!(
            at(&e),
            vec![
                pos(text, "-1"),
                pos(text, "whne"),
                pos(text, "rest"),
                pos(text, "legacy_max_paylod"),
                pos(text, "\"yes\""),
            ],
            "{e}"
        );
        let shown = e.clone().with_file("f.toml").to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(
            lines[1].starts_with("f.toml:3:1: rules[0].whne: unknown field `whne`"),
            "{shown}"
        );
        assert!(lines[2].contains("did you mean `reset`?"), "{shown}");
        assert!(
            lines[3].contains("did you mean `legacy_max_payload`?"),
            "{shown}"
        );
    }

    #[test]
    fn missing_and_misplaced_fields() {
        let e = err("[[rules]]\nwhen = { nth = 1 }\n");
        assert!(e.errors[0].message.contains("missing field `then`"), "{e}");
        let e = err("[[rules]]\nthen = { action = \"throttle\" }\n");
        assert!(
            e.errors[0].message.contains("needs field `bytes_per_sec`"),
            "{e}"
        );
        let text = "[[rules]]\nthen = { action = \"drop\", status = 8 }\n";
        let e = err(text);
        assert_eq!(at(&e), vec![pos(text, "status")]);
        assert!(e.errors[0].message.contains("for action \"drop\""), "{e}");
        let text =
            "[[rules]]\nwhen = { on = \"connect\", nth = 2 }\nthen = { action = \"close\" }\n";
        assert_eq!(at(&err(text)), vec![pos(text, "2 }")]);
        let e = err("[[keys]]\nkey_id = \"short\"\nteam_id = \"TEAM000001\"\n[[keys]]\nkey_id = \"KEY0000001\"\nteam_id = \"TEAM000001\"\nrelated_key_id = \"KEY0000009\"\n");
        assert_eq!(at(&e), vec![(2, 10), (7, 18)], "{e}");
        assert!(e.errors[1].message.contains("no key KEY0000009"), "{e}");
        let e = err("[[tokens]]\ntoken = \"ab\"\n[[tokens]]\ntoken = \"AB\"\n");
        assert_eq!(at(&e), vec![(4, 9)], "{e}");
        let e = err("seed = 1979-05-27T07:32:00Z\n");
        assert_eq!(at(&e), vec![(1, 8)]);
        assert!(e.errors[0].message.contains("dates and times"), "{e}");
    }

    #[test]
    fn settings_merge_over_defaults() {
        let sc = parse_toml(
            "[settings]\nlegacy_max_payload = 256\nstrict_tokens = true\nhttp2_reasons = { expired-token = false }\n",
        )
        .unwrap();
        let s = sc.settings.unwrap();
        assert_eq!(s.legacy_max_payload, 256);
        assert!(s.strict_tokens);
        assert!(!s.http2_reasons.expired_token);
        assert!(s.http2_reasons.invalid_push_type);
        assert_eq!(s.http2_max_payload, Settings::default().http2_max_payload);
        let text = "[settings]\nhttp2_reasons = { expird-token = false }\n";
        assert_eq!(at(&err(text)), vec![pos(text, "expird-token")]);
    }

    #[test]
    fn close_says_how_a_legacy_connection_ends_and_is_checked() {
        let sc =
            parse_toml("[[rules]]\nthen = { action = \"error\", status = 8 }\nclose = \"burst\"\n")
                .unwrap();
        assert_eq!(sc.rules[0].close, Some(CloseHow::Burst));
        let json = serde_json::to_string(&sc).unwrap();
        assert!(json.contains(r#""close":"burst""#), "{json}");
        assert_eq!(parse_json(&json).unwrap(), sc);
        for how in CloseHow::ALL {
            let text = format!(
                "[[rules]]\nthen = {{ action = \"drop\" }}\nclose = {:?}\n",
                how.name()
            );
            assert_eq!(parse_toml(&text).unwrap().rules[0].close, Some(how));
        }
        for (rule, want) in [
            (
                "then = { action = \"error\", status = 8 }\nclose = \"brust\"",
                "unknown close \"brust\"; did you mean \"burst\"?",
            ),
            (
                "then = { action = \"stall\" }\nclose = \"fin\"",
                "close applies to a legacy action that ends the connection",
            ),
            (
                "then = { action = \"error\", status = 8, close = false }\nclose = \"fin\"",
                "\"error\" with close = false does not",
            ),
            (
                "then = { action = \"drop\", reset = true }\nclose = \"fin\"",
                "contradicts reset = true",
            ),
        ] {
            let e = err(&format!("[[rules]]\n{rule}\n")).to_string();
            assert!(e.contains(want), "{rule}: {e}");
        }
    }

    #[test]
    fn json_and_toml_give_the_same_scenario() {
        let toml_text = r#"
seed = 3
[settings]
legacy_error_delay_ms = 250
[[tokens]]
token = "0a0b"
environment = "sandbox"
topic = "com.a"
[[keys]]
key_id = "ABC123DEFG"
team_id = "DEF123GHIJ"
pem = "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"
topics = ["com.a"]
[[rules]]
name = "r"
when = { protocol = "legacy", token = "0A0B", probability = 0.25 }
then = { action = "error", status = "shutdown", close = false }
times = 2
delay_ms = 10
[[rules]]
when = { on = "connect", connection_overall = 2 }
then = { action = "goaway", before_settings = true, code = 11, last_stream_id = 0 }
"#;
        let json_text = r#"{
  "seed": 3,
  "settings": { "legacy_error_delay_ms": 250 },
  "tokens": [ { "token": "0a0b", "environment": "sandbox", "topic": "com.a" } ],
  "keys": [ { "key_id": "ABC123DEFG", "team_id": "DEF123GHIJ", "topics": ["com.a"],
              "pem": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n" } ],
  "rules": [
    { "name": "r", "when": { "protocol": "legacy", "token": "0A0B", "probability": 0.25 },
      "then": { "action": "error", "status": 10, "close": false }, "times": 2, "delay_ms": 10 },
    { "when": { "on": "connect", "connection_overall": 2 },
      "then": { "action": "goaway", "before_settings": true, "code": "ENHANCE_YOUR_CALM", "last_stream_id": 0 } }
  ]
}"#;
        let a = parse_toml(toml_text).unwrap();
        let b = parse_json(json_text).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.rules.len(), 2);
        // Serialising and reading back is the identity, and serde's Deserialize agrees.
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(parse_json(&json).unwrap(), a);
        assert_eq!(serde_json::from_str::<Scenario>(&json).unwrap(), a);
        let r: Rule = serde_json::from_value(serde_json::to_value(&a.rules[0]).unwrap()).unwrap();
        assert_eq!(r, a.rules[0]);
        assert!(parse_rule_json(r#"{"then":{"action":"nope"}}"#).is_err());
        // JSON semantic errors have no position but still name the field.
        let e =
            parse_json(r#"{"rules":[{"then":{"action":"drop"},"when":{"nth":0}}]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "scenario: rules[0].when.nth: nth counts from 1, so 0 never matches"
        );
        let e = parse_json("{\n  \"seed\": }").unwrap_err();
        assert_eq!(at(&e), vec![(2, 11)]);
    }

    fn verdicts(sc: &Scenario, seed: Option<u64>) -> Vec<Option<(usize, &'static str)>> {
        let mut rs = match seed {
            Some(s) => RuleSet::new(sc.rules.clone(), s),
            None => sc.rule_set(),
        };
        let n = Notification {
            token: DeviceToken::from_bytes(vec![7; 32]),
            payload: bytes::Bytes::from_static(b"{}"),
            identifier: None,
            expiry: None,
            priority: 10,
            topic: None,
            push_type: None,
            collapse_id: None,
            apns_id: None,
            command: None,
        };
        let mut out = Vec::new();
        for conn in 0..20u64 {
            let protocol = if conn % 2 == 0 {
                Protocol::Legacy
            } else {
                Protocol::Http2
            };
            let env = Environment::Production;
            for f in rs.on_connection(&ConnectionCtx {
                id: conn,
                protocol,
                environment: env,
            }) {
                out.push(Some((f.rule, f.action.name())));
            }
            for _ in 0..50 {
                let f = rs.on_notification(&NotificationCtx {
                    connection_id: conn,
                    protocol,
                    environment: env,
                    notification: &n,
                    token_environment_mismatch: false,
                    api: Api::Device,
                    channel: None,
                });
                out.push(f.map(|f| (f.rule, f.action.name())));
            }
            rs.connection_closed(conn);
        }
        out
    }

    #[test]
    fn same_scenario_seed_and_input_give_the_same_verdicts() {
        let text = include_str!("../../../fixtures/scenarios/flaky-network.toml");
        let sc = parse_toml(text).unwrap();
        let a = verdicts(&sc, None);
        assert_eq!(a, verdicts(&parse_toml(text).unwrap(), None));
        assert_ne!(a, verdicts(&sc, Some(1)));
        let fired = a.iter().flatten().count();
        assert!(
            fired > 0 && fired < 100,
            "about 2% of 1000 plus one connect rule, got {fired}"
        );
        assert!(a.contains(&Some((2, "ignore_ping"))));
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(s in ".{0,400}") {
            let _ = parse_toml(&s);
            let _ = parse_json(&s);
            let _ = parse_rule_json(&s);
        }

        #[test]
        fn parsing_scenario_like_text_never_panics(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("[[rules]]\n"), Just("[settings]\n"), Just("[[tokens]]\n"), Just("[[keys]]\n"),
                    Just("when = { "), Just("then = { "), Just(" }\n"), Just("action = "),
                    Just("\"drop\""), Just("\"error\""), Just("\"goaway\""), Just("\"settings\""),
                    Just("status = "), Just("reason = "), Just("nth = "), Just("probability = "),
                    Just("token = "), Just("\"ab\""), Just("-1"), Just("1e400"), Just("nan"),
                    Just("9999999999999999999"), Just(", "), Just("["), Just("]"), Just("1979-05-27T07:32:00Z"),
                    Just("protocol = \"legacy\""), Just("on = \"connect\""), Just("seed = "), Just("\n"),
                ],
                0..40,
            )
        ) {
            let text: String = parts.concat();
            if let Err(e) = parse_toml(&text) {
                prop_assert!(!e.errors.is_empty());
                for er in &e.errors {
                    prop_assert!(er.line >= 1 && er.column >= 1, "{}", e);
                }
            }
        }
    }
}
