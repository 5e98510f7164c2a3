//! Scripted faults: rules that turn "this connection, this notification" into a misbehaviour.
//!
//! Sans-IO and deterministic: counters and a seeded RNG live in [`RuleSet`], rules are evaluated in
//! file order, and the RNG is drawn only when every other condition of a rule matched, so the same
//! scenario, seed and input always give the same verdicts. Listeners carry the [`Fired`] actions out.

use crate::model::wire::{ErrorCode, Reason, SettingsUpdate, Status};
use crate::model::{DeviceToken, Environment, Notification, Protocol, PushType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::time::Duration;

/// Bound on connections whose counters are kept when the caller never reports them closed.
pub const MAX_TRACKED_CONNECTIONS: usize = 100_000;

/// Largest stream id HTTP/2 allows (RFC 9113 5.1.1), the bound for a given GOAWAY last-stream-id.
pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// One scripted fault: when the matcher holds, carry out the action (at most `times` times).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// A label for the journal and the control API, so a fired fault can be traced to its rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The conditions; all given must hold.
    pub when: Matcher,
    /// What apnsim does instead of its default.
    pub then: Action,
    /// Fire this many times, then heal (the rule is skipped afterwards); `None` = forever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// Wait this long before carrying out the action (e.g. Apple's 200–500 ms error delay, PROTOCOL.md 1.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// How a legacy connection the action ends stops sending (default: the action's own way),
    /// so a test can provoke a client's handling of each on purpose (PROTOCOL.md 1.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close: Option<CloseHow>,
}

pub use crate::settings::CloseHow;

impl Rule {
    /// A rule with no name, limit or delay, for the Rust API.
    pub fn new(when: Matcher, then: Action) -> Self {
        Rule {
            name: None,
            when,
            then,
            times: None,
            delay_ms: None,
            close: None,
        }
    }

    /// Names the rule.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Limits the rule to `n` firings.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Delays the action by `ms`.
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }

    /// Closes the legacy connection the action ends this way.
    pub fn close(mut self, how: CloseHow) -> Self {
        self.close = Some(how);
        self
    }

    /// The event the rule is evaluated on: explicit `on`, else connect for the actions that only
    /// make sense before any request (ignore_ping, goaway before SETTINGS) when no notification
    /// condition is given, else notification.
    pub fn trigger(&self) -> Trigger {
        if let Some(on) = self.when.on {
            return on;
        }
        let connect_action = match &self.then {
            Action::Http2(Http2Action::IgnorePing) => true,
            Action::Http2(Http2Action::Goaway {
                before_settings, ..
            }) => *before_settings,
            Action::Accept | Action::Legacy(_) | Action::Http2(_) => false,
        };
        if connect_action && !self.when.has_notification_conditions() {
            Trigger::Connect
        } else {
            Trigger::Notification
        }
    }

    /// Semantic problems, as (field path inside the rule, message), so files and the Rust API
    /// refuse the same nonsense. Empty when the rule is sound.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |path: &str, msg: String| out.push((path.to_string(), msg));
        let w = &self.when;
        if self.times == Some(0) {
            bad(
                "times",
                "times must be at least 1 (remove the rule to disable it)".into(),
            );
        }
        for (field, v) in [
            ("nth", w.nth),
            ("nth_overall", w.nth_overall),
            ("every", w.every),
            ("every_overall", w.every_overall),
            ("connection", w.connection),
            ("connection_overall", w.connection_overall),
        ] {
            if v == Some(0) {
                bad(
                    &format!("when.{field}"),
                    format!("{field} counts from 1, so 0 never matches"),
                );
            }
        }
        if let Some(p) = w.probability {
            if !(0.0..=1.0).contains(&p) {
                bad(
                    "when.probability",
                    format!("probability must be between 0 and 1, got {p}"),
                );
            }
        }
        if let Some(tokens) = &w.token {
            if tokens.is_empty() {
                bad(
                    "when.token",
                    "token list is empty: the rule could never match".into(),
                );
            }
            if tokens.iter().any(DeviceToken::is_empty) {
                bad("when.token", "a device token cannot be empty".into());
            }
        }
        if let Some(how) = self.close {
            match &self.then {
                Action::Legacy(LegacyAction::Error { close: true, .. }) => {}
                Action::Legacy(LegacyAction::Drop { reset }) => {
                    if *reset && how != CloseHow::Reset {
                        bad(
                            "close",
                            format!(
                                "close = {:?} contradicts reset = true (drop reset = true is close = \"reset\")",
                                how.name()
                            ),
                        );
                    }
                }
                other => bad(
                    "close",
                    format!(
                        "close applies to a legacy action that ends the connection (error, drop); action {:?}{} does not",
                        other.name(),
                        if matches!(other, Action::Legacy(LegacyAction::Error { .. })) {
                            " with close = false"
                        } else {
                            ""
                        }
                    ),
                ),
            }
        }
        let protocols = self.then.protocols();
        if let Some(p) = w.protocol {
            if !protocols.contains(&p) {
                bad(
                    "then.action",
                    format!(
                        "action {:?} does not apply to protocol {:?} (it applies to {})",
                        self.then.name(),
                        p.as_str(),
                        protocols
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        match self.trigger() {
            Trigger::Connect => {
                if let Some(field) = w.notification_condition_names().first() {
                    bad(
                        &format!("when.{field}"),
                        format!(
                            "{field} looks at a notification, but the rule is on = \"connect\""
                        ),
                    );
                }
                if !self.then.connection_capable() {
                    bad(
                        "then.action",
                        format!(
                            "action {:?} answers a notification and cannot run on connect",
                            self.then.name()
                        ),
                    );
                }
            }
            Trigger::Notification => {
                if let Action::Http2(Http2Action::Goaway {
                    before_settings: true,
                    ..
                }) = self.then
                {
                    bad(
                        "then.before_settings",
                        "GOAWAY before SETTINGS only happens on connect; a notification arrives after SETTINGS"
                            .into(),
                    );
                }
            }
        }
        out.extend(self.then.check());
        out
    }
}

/// What a rule is evaluated on: once per connection, or once per notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// When the connection is set up (legacy: before the first byte is read; HTTP/2: around SETTINGS).
    Connect,
    /// When a well-formed notification is about to be decided.
    Notification,
}

/// The conditions of a rule: every field is optional and every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Matcher {
    /// Evaluate on connect or per notification (default: see [`Rule::trigger`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on: Option<Trigger>,
    /// Wire protocol of the connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Environment of the connection (SNI or listener).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// The notification's token is one of these.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Vec<DeviceToken>>,
    /// The token is registered for the other environment (PROTOCOL.md 1.6 status 8: the classic bug).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_environment_mismatch: Option<bool>,
    /// The notification's topic, exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The notification's apns-push-type (PROTOCOL.md 2.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_type: Option<PushType>,
    /// The provider API the request is on (`/3/device` and legacy, `/4/broadcasts`, or channel
    /// management, PROTOCOL.md 2.11); `None` = any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    /// The request's `apns-channel-id`, exactly (a broadcast, or a channel read or delete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Exactly the nth notification on its connection (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nth: Option<u64>,
    /// Exactly the nth notification since the scenario was loaded (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nth_overall: Option<u64>,
    /// Every k-th notification on its connection (k, 2k, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    /// Every k-th notification overall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every_overall: Option<u64>,
    /// Notifications after the first n on their connection (n+1, n+2, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// Notifications after the first n overall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_overall: Option<u64>,
    /// The nth connection of this protocol (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<u64>,
    /// The nth connection of any protocol (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_overall: Option<u64>,
    /// Fire with this probability, drawn from the scenario's seeded RNG after all else matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
}

impl Matcher {
    /// The given fields that only a notification can satisfy.
    fn notification_condition_names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut add = |set: bool, name| {
            if set {
                v.push(name)
            }
        };
        add(self.token.is_some(), "token");
        add(
            self.token_environment_mismatch.is_some(),
            "token_environment_mismatch",
        );
        add(self.topic.is_some(), "topic");
        add(self.push_type.is_some(), "push_type");
        add(self.api.is_some(), "api");
        add(self.channel.is_some(), "channel");
        add(self.nth.is_some(), "nth");
        add(self.nth_overall.is_some(), "nth_overall");
        add(self.every.is_some(), "every");
        add(self.every_overall.is_some(), "every_overall");
        add(self.after.is_some(), "after");
        add(self.after_overall.is_some(), "after_overall");
        v
    }

    /// Whether any field looks at a notification (so the rule cannot run on connect).
    pub fn has_notification_conditions(&self) -> bool {
        !self.notification_condition_names().is_empty()
    }

    /// The connection-level conditions (everything but probability).
    fn connection_matches(&self, c: &ConnCounters, protocol: Protocol, env: Environment) -> bool {
        self.protocol.map_or(true, |p| p == protocol)
            && self.environment.map_or(true, |e| e == env)
            && self.connection.map_or(true, |n| n == c.index)
            && self
                .connection_overall
                .map_or(true, |n| n == c.index_overall)
    }

    /// The notification-level conditions (everything but probability).
    fn notification_matches(&self, ctx: &NotificationCtx<'_>, on_conn: u64, overall: u64) -> bool {
        let n = ctx.notification;
        self.token.as_ref().map_or(true, |ts| ts.contains(&n.token))
            && self
                .token_environment_mismatch
                .map_or(true, |m| m == ctx.token_environment_mismatch)
            && self
                .topic
                .as_deref()
                .map_or(true, |t| n.topic.as_deref() == Some(t))
            && self.push_type.map_or(true, |t| n.push_type == Some(t))
            && self.api.map_or(true, |a| a == ctx.api)
            && self
                .channel
                .as_deref()
                .map_or(true, |c| ctx.channel == Some(c))
            && self.nth.map_or(true, |k| on_conn == k)
            && self.nth_overall.map_or(true, |k| overall == k)
            && self.every.map_or(true, |k| k != 0 && on_conn % k == 0)
            && self
                .every_overall
                .map_or(true, |k| k != 0 && overall % k == 0)
            && self.after.map_or(true, |k| on_conn > k)
            && self.after_overall.map_or(true, |k| overall > k)
    }
}

/// The Last-Stream-ID of a scripted GOAWAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LastStreamId {
    /// The highest stream the connection processed (an honest GOAWAY).
    #[default]
    Auto,
    /// Exactly this id (e.g. lower than processed, to test pushy#807-style resends).
    Id(u32),
}

impl Serialize for LastStreamId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LastStreamId::Auto => s.serialize_str("auto"),
            LastStreamId::Id(id) => s.serialize_u32(*id),
        }
    }
}

/// What apnsim does when a rule fires, instead of its Apple-exact default: an accept, or an action
/// of one protocol (so each listener matches only its own actions, exhaustively).
///
/// Serialised flat, as written in a scenario: `{"action": "drop", "reset": true}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Both protocols: accept, overriding a default refusal (e.g. a token of the other environment).
    Accept,
    /// An action of the legacy binary transport (gateway, and feedback for transport faults).
    Legacy(LegacyAction),
    /// An action of the HTTP/2 provider API.
    Http2(Http2Action),
}

/// Every action a scenario can name: the one table of names (and the fields each takes) that
/// serde ([`Action`]'s serialisation), [`Action::name`] and the scenario parser all read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// [`Action::Accept`].
    Accept,
    /// [`LegacyAction::Error`].
    Error,
    /// [`LegacyAction::Drop`].
    Drop,
    /// [`LegacyAction::Stall`].
    Stall,
    /// [`LegacyAction::Throttle`].
    Throttle,
    /// [`Http2Action::Reject`].
    Reject,
    /// [`Http2Action::Goaway`].
    Goaway,
    /// [`Http2Action::RstStream`].
    RstStream,
    /// [`Http2Action::Delay`].
    Delay,
    /// [`Http2Action::Close`].
    Close,
    /// [`Http2Action::Settings`].
    Settings,
    /// [`Http2Action::IgnorePing`].
    IgnorePing,
}

impl ActionKind {
    /// Every action, in the order the scenario documentation lists them.
    pub const ALL: [ActionKind; 12] = [
        ActionKind::Accept,
        ActionKind::Error,
        ActionKind::Drop,
        ActionKind::Stall,
        ActionKind::Throttle,
        ActionKind::Reject,
        ActionKind::Goaway,
        ActionKind::RstStream,
        ActionKind::Delay,
        ActionKind::Close,
        ActionKind::Settings,
        ActionKind::IgnorePing,
    ];

    /// The name as written in `then = { action = "…" }`, in the journal and the control API.
    pub fn name(self) -> &'static str {
        self.spec().0
    }

    /// The fields the action takes besides `action`, as written in a scenario.
    pub fn fields(self) -> &'static [&'static str] {
        self.spec().1
    }

    /// The table row: (name, fields).
    fn spec(self) -> (&'static str, &'static [&'static str]) {
        match self {
            ActionKind::Accept => ("accept", &[]),
            ActionKind::Error => ("error", &["status", "close"]),
            ActionKind::Drop => ("drop", &["reset"]),
            ActionKind::Stall => ("stall", &["for_ms"]),
            ActionKind::Throttle => ("throttle", &["bytes_per_sec"]),
            ActionKind::Reject => (
                "reject",
                &["reason", "status", "timestamp_ms", "max_concurrent_streams"],
            ),
            ActionKind::Goaway => (
                "goaway",
                &["reason", "code", "last_stream_id", "before_settings"],
            ),
            ActionKind::RstStream => ("rst_stream", &["code"]),
            ActionKind::Delay => ("delay", &["ms"]),
            ActionKind::Close => ("close", &["reset"]),
            ActionKind::Settings => (
                "settings",
                &[
                    "header_table_size",
                    "max_concurrent_streams",
                    "initial_window_size",
                    "max_frame_size",
                    "max_header_list_size",
                ],
            ),
            ActionKind::IgnorePing => ("ignore_ping", &[]),
        }
    }
}

/// Flat, as written in a scenario: `{"action": "drop", "reset": true}` (optional fields only
/// when set).
impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("action", self.name())?;
        fn opt<M: SerializeMap, T: Serialize>(
            m: &mut M,
            k: &str,
            v: &Option<T>,
        ) -> Result<(), M::Error> {
            match v {
                Some(v) => m.serialize_entry(k, v),
                None => Ok(()),
            }
        }
        match self {
            Action::Accept | Action::Http2(Http2Action::IgnorePing) => {}
            Action::Legacy(LegacyAction::Error { status, close }) => {
                m.serialize_entry("status", status)?;
                m.serialize_entry("close", close)?;
            }
            Action::Legacy(LegacyAction::Drop { reset })
            | Action::Http2(Http2Action::Close { reset }) => m.serialize_entry("reset", reset)?,
            Action::Legacy(LegacyAction::Stall { for_ms }) => opt(&mut m, "for_ms", for_ms)?,
            Action::Legacy(LegacyAction::Throttle { bytes_per_sec }) => {
                m.serialize_entry("bytes_per_sec", bytes_per_sec)?
            }
            Action::Http2(Http2Action::Reject {
                reason,
                status,
                timestamp_ms,
                max_concurrent_streams,
            }) => {
                m.serialize_entry("reason", reason)?;
                opt(&mut m, "status", status)?;
                opt(&mut m, "timestamp_ms", timestamp_ms)?;
                opt(&mut m, "max_concurrent_streams", max_concurrent_streams)?;
            }
            Action::Http2(Http2Action::Goaway {
                reason,
                code,
                last_stream_id,
                before_settings,
            }) => {
                opt(&mut m, "reason", reason)?;
                m.serialize_entry("code", code)?;
                m.serialize_entry("last_stream_id", last_stream_id)?;
                m.serialize_entry("before_settings", before_settings)?;
            }
            Action::Http2(Http2Action::RstStream { code }) => m.serialize_entry("code", code)?,
            Action::Http2(Http2Action::Delay { ms }) => m.serialize_entry("ms", ms)?,
            Action::Http2(Http2Action::Settings(u)) => {
                opt(&mut m, "header_table_size", &u.header_table_size)?;
                opt(&mut m, "max_concurrent_streams", &u.max_concurrent_streams)?;
                opt(&mut m, "initial_window_size", &u.initial_window_size)?;
                opt(&mut m, "max_frame_size", &u.max_frame_size)?;
                opt(&mut m, "max_header_list_size", &u.max_header_list_size)?;
            }
        }
        m.end()
    }
}

impl From<LegacyAction> for Action {
    fn from(a: LegacyAction) -> Self {
        Action::Legacy(a)
    }
}

impl From<Http2Action> for Action {
    fn from(a: Http2Action) -> Self {
        Action::Http2(a)
    }
}

/// A fault of the legacy binary transport.
#[derive(Debug, Clone, PartialEq)]
pub enum LegacyAction {
    /// Answer an error-response with this status (PROTOCOL.md 1.6), then close unless `close` is false.
    Error {
        /// The status byte.
        status: Status,
        /// Close after the packet (Apple always did: PROTOCOL.md 1.7).
        close: bool,
    },
    /// Close with no error-response (PROTOCOL.md 1.7, the silent drop).
    Drop {
        /// Abort with a TCP reset instead of a clean close.
        reset: bool,
    },
    /// Stop reading (the provider's writes eventually block).
    Stall {
        /// Resume reading after this long; `None` = never.
        for_ms: Option<u64>,
    },
    /// Read at most this many bytes per second.
    Throttle {
        /// The rate.
        bytes_per_sec: u64,
    },
}

/// A fault of the HTTP/2 provider API.
#[derive(Debug, Clone, PartialEq)]
pub enum Http2Action {
    /// Refuse the request with this reason (PROTOCOL.md 2.7).
    Reject {
        /// Apple's reason.
        reason: Reason,
        /// `:status` override (default: the reason's own status).
        status: Option<u16>,
        /// The 410 body timestamp in ms (default: now, for Unregistered/ExpiredToken).
        timestamp_ms: Option<u64>,
        /// Then send SETTINGS_MAX_CONCURRENT_STREAMS = this (Apple sends 1: PROTOCOL.md 2.2).
        max_concurrent_streams: Option<u32>,
    },
    /// Send GOAWAY and close (PROTOCOL.md 2.2).
    Goaway {
        /// Debug data `{"reason":…}`; `None` = empty debug data.
        reason: Option<Reason>,
        /// GOAWAY error code.
        code: ErrorCode,
        /// Last-Stream-ID.
        last_stream_id: LastStreamId,
        /// Send it instead of the server's first SETTINGS (pushy#831).
        before_settings: bool,
    },
    /// Reset the request's stream.
    RstStream {
        /// RST_STREAM error code.
        code: ErrorCode,
    },
    /// Hold the response this long, then answer as apnsim would have.
    Delay {
        /// The delay.
        ms: u64,
    },
    /// Close the TCP connection with no GOAWAY.
    Close {
        /// Abort with a TCP reset instead of a clean close.
        reset: bool,
    },
    /// Send a SETTINGS frame with these values (then carry on as usual).
    Settings(SettingsUpdate),
    /// Never answer PING from now on.
    IgnorePing,
}

impl Action {
    /// Which action this is (its row in the [`ActionKind`] table).
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Accept => ActionKind::Accept,
            Action::Legacy(a) => match a {
                LegacyAction::Error { .. } => ActionKind::Error,
                LegacyAction::Drop { .. } => ActionKind::Drop,
                LegacyAction::Stall { .. } => ActionKind::Stall,
                LegacyAction::Throttle { .. } => ActionKind::Throttle,
            },
            Action::Http2(a) => match a {
                Http2Action::Reject { .. } => ActionKind::Reject,
                Http2Action::Goaway { .. } => ActionKind::Goaway,
                Http2Action::RstStream { .. } => ActionKind::RstStream,
                Http2Action::Delay { .. } => ActionKind::Delay,
                Http2Action::Close { .. } => ActionKind::Close,
                Http2Action::Settings(_) => ActionKind::Settings,
                Http2Action::IgnorePing => ActionKind::IgnorePing,
            },
        }
    }

    /// The action's name as written in `then = { action = "…" }`.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The protocols the action can be carried out on; a rule never fires elsewhere.
    pub fn protocols(&self) -> &'static [Protocol] {
        match self {
            Action::Accept => &[Protocol::Legacy, Protocol::Http2],
            Action::Legacy(LegacyAction::Error { .. }) => &[Protocol::Legacy],
            // The feedback service is the same binary TLS transport, so transport faults apply.
            Action::Legacy(
                LegacyAction::Drop { .. }
                | LegacyAction::Stall { .. }
                | LegacyAction::Throttle { .. },
            ) => &[Protocol::Legacy, Protocol::Feedback],
            Action::Http2(_) => &[Protocol::Http2],
        }
    }

    /// Whether the action makes sense with no notification to answer.
    pub fn connection_capable(&self) -> bool {
        match self {
            Action::Accept => false,
            Action::Legacy(a) => match a {
                LegacyAction::Error { .. } => false,
                LegacyAction::Drop { .. }
                | LegacyAction::Stall { .. }
                | LegacyAction::Throttle { .. } => true,
            },
            Action::Http2(a) => match a {
                Http2Action::Reject { .. }
                | Http2Action::RstStream { .. }
                | Http2Action::Delay { .. } => false,
                Http2Action::Goaway { .. }
                | Http2Action::Close { .. }
                | Http2Action::Settings(_)
                | Http2Action::IgnorePing => true,
            },
        }
    }

    /// Field-level problems, as (field path inside the rule, message).
    fn check(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |path: &str, msg: &str| out.push((path.to_string(), msg.to_string()));
        match self {
            Action::Legacy(LegacyAction::Throttle { bytes_per_sec: 0 }) => bad(
                "then.bytes_per_sec",
                "bytes_per_sec must be at least 1 (use stall to stop reading)",
            ),
            Action::Http2(Http2Action::Reject {
                status: Some(s), ..
            }) if !(400..=599).contains(s) => {
                bad("then.status", "a rejection status must be 400–599")
            }
            Action::Http2(Http2Action::Goaway {
                last_stream_id: LastStreamId::Id(id),
                ..
            }) if *id > MAX_STREAM_ID => bad(
                "then.last_stream_id",
                "last_stream_id must be at most 2147483647 (RFC 9113 5.1.1)",
            ),
            Action::Http2(Http2Action::Settings(s)) => {
                if s.is_empty() {
                    bad(
                        "then",
                        "settings needs at least one parameter, e.g. max_concurrent_streams = 1",
                    );
                }
                if s.initial_window_size.is_some_and(|w| w > MAX_STREAM_ID) {
                    bad(
                        "then.initial_window_size",
                        "initial_window_size must be at most 2147483647 (RFC 9113 6.5.2)",
                    );
                }
                if s.max_frame_size
                    .is_some_and(|f| !(16_384..=16_777_215).contains(&f))
                {
                    bad(
                        "then.max_frame_size",
                        "max_frame_size must be 16384–16777215 (RFC 9113 6.5.2)",
                    );
                }
            }
            // Every other action has no field a parser could get wrong beyond its type.
            Action::Accept | Action::Legacy(_) | Action::Http2(_) => {}
        }
        out
    }
}

/// A rule that fired: what the listener must do, and which rule said so (for the journal).
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// Index of the rule in the rule set (file order).
    pub rule: usize,
    /// The rule's name.
    pub name: Option<String>,
    /// The action to carry out.
    pub action: Action,
    /// Wait this long first.
    pub delay: Option<Duration>,
    /// How to close the legacy connection the action ends, when the rule says.
    pub close: Option<CloseHow>,
    /// Whether it fired on connect or on a notification.
    pub trigger: Trigger,
}

impl Fired {
    /// The `rule` object of every journal event a fired rule shaped, the same on every protocol:
    /// `{"rule": index, "name": …, "action": …}`, plus `"on": "connect"` for a connect rule.
    pub fn journal_detail(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "rule": self.rule,
            "name": self.name,
            "action": self.action.name(),
        });
        if self.trigger == Trigger::Connect {
            v["on"] = "connect".into();
        }
        v
    }
}

/// What the rules may look at when a connection is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCtx {
    /// Connection id, as in the journal (the key for later notifications).
    pub id: u64,
    /// Wire protocol.
    pub protocol: Protocol,
    /// The connection's environment.
    pub environment: Environment,
}

/// What the rules may look at when a notification is decided.
#[derive(Debug, Clone, Copy)]
pub struct NotificationCtx<'a> {
    /// Connection id (as given to [`RuleSet::on_connection`]).
    pub connection_id: u64,
    /// Wire protocol.
    pub protocol: Protocol,
    /// The connection's environment.
    pub environment: Environment,
    /// The notification.
    pub notification: &'a Notification,
    /// The token is registered for the other environment; see [`token_environment_mismatch`].
    pub token_environment_mismatch: bool,
    /// The API the request is on.
    pub api: Api,
    /// The request's `apns-channel-id`, if any.
    pub channel: Option<&'a str>,
}

/// The provider API a request is on (the journal's `api`): rules can target one, and the
/// broadcast family's requests go through the same rules as `/3/device` (PROTOCOL.md 2.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Api {
    /// `/3/device` and the legacy binary gateway.
    Device,
    /// `POST /4/broadcasts/apps/<bundleId>`.
    Broadcast,
    /// The channel-management API (`/1/apps/<bundleId>/…`).
    ChannelManagement,
}

impl Api {
    /// Every API, in the order the scenario reference lists them.
    pub const ALL: [Api; 3] = [Api::Device, Api::Broadcast, Api::ChannelManagement];

    /// The spelling in scenarios and on the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Device => "device",
            Api::Broadcast => "broadcast",
            Api::ChannelManagement => "channel-management",
        }
    }
}

/// Whether `token` is registered for an environment other than `connection_env` (the caller
/// passes the result in [`NotificationCtx`]).
pub fn token_environment_mismatch(
    registry: &crate::engine::registry::Registry,
    token: &DeviceToken,
    connection_env: Environment,
) -> bool {
    registry.with(token, |r| {
        r.and_then(|r| r.environment)
            .is_some_and(|e| e != connection_env)
    })
}

/// Per-connection counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnCounters {
    index: u64,
    index_overall: u64,
    notifications: u64,
}

/// The runtime state of a scenario's rules: fire counts, notification and connection counters,
/// and the seeded RNG. Replace it (not the rules inside) to restart a scenario from scratch.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    fired: Vec<u32>,
    seed: u64,
    rng: StdRng,
    conns: BTreeMap<u64, ConnCounters>,
    connections_by_protocol: [u64; 3],
    connections_overall: u64,
    notifications_overall: u64,
}

fn protocol_slot(p: Protocol) -> usize {
    match p {
        Protocol::Legacy => 0,
        Protocol::Feedback => 1,
        Protocol::Http2 => 2,
    }
}

impl RuleSet {
    /// A fresh rule set; `seed` drives every `probability` (one seed per scenario).
    pub fn new(rules: Vec<Rule>, seed: u64) -> Self {
        let fired = vec![0; rules.len()];
        RuleSet {
            rules,
            fired,
            seed,
            rng: StdRng::seed_from_u64(seed),
            conns: BTreeMap::new(),
            connections_by_protocol: [0; 3],
            connections_overall: 0,
            notifications_overall: 0,
        }
    }

    /// An empty rule set: apnsim behaves as Apple documents.
    pub fn empty() -> Self {
        RuleSet::new(Vec::new(), 0)
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The seed the RNG started from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How many times each rule fired (same order as [`RuleSet::rules`]).
    pub fn fired_counts(&self) -> &[u32] {
        &self.fired
    }

    /// Whether rule `i` has used up its `times` (healed).
    pub fn is_exhausted(&self, i: usize) -> bool {
        match (self.rules.get(i), self.fired.get(i)) {
            (Some(r), Some(&n)) => r.times.is_some_and(|t| n >= t),
            _ => true,
        }
    }

    /// Appends a rule at runtime (the control API's "add a toxic"); returns its index.
    pub fn push(&mut self, rule: Rule) -> usize {
        self.rules.push(rule);
        self.fired.push(0);
        self.rules.len() - 1
    }

    /// Removes rule `i` at runtime; later rules shift down by one.
    pub fn remove(&mut self, i: usize) -> Option<Rule> {
        if i >= self.rules.len() {
            return None;
        }
        self.fired.remove(i);
        Some(self.rules.remove(i))
    }

    /// Removes every rule called `name`; returns how many.
    pub fn remove_named(&mut self, name: &str) -> usize {
        let mut removed = 0;
        let mut i = 0;
        while i < self.rules.len() {
            if self.rules[i].name.as_deref() == Some(name) {
                self.rules.remove(i);
                self.fired.remove(i);
                removed += 1;
            } else {
                i += 1;
            }
        }
        removed
    }

    /// Forgets a closed connection's counters (they are also bounded by [`MAX_TRACKED_CONNECTIONS`]).
    pub fn connection_closed(&mut self, id: u64) {
        self.conns.remove(&id);
    }

    /// Registers a new connection and returns every connect-time rule that fires, in file order.
    /// Calling it again for the same id evaluates nothing and returns no action.
    pub fn on_connection(&mut self, ctx: &ConnectionCtx) -> Vec<Fired> {
        if self.conns.contains_key(&ctx.id) {
            return Vec::new();
        }
        let c = self.register(ctx.id, ctx.protocol);
        let mut out = Vec::new();
        for i in 0..self.rules.len() {
            let ok = {
                let r = &self.rules[i];
                r.trigger() == Trigger::Connect
                    && r.then.protocols().contains(&ctx.protocol)
                    && r.when.connection_matches(&c, ctx.protocol, ctx.environment)
            };
            if ok && !self.is_exhausted(i) && self.draw(i) {
                out.push(self.fire(i));
            }
        }
        out
    }

    /// Counts the notification and returns the first notification rule that fires (file order).
    pub fn on_notification(&mut self, ctx: &NotificationCtx<'_>) -> Option<Fired> {
        let c = match self.conns.get_mut(&ctx.connection_id) {
            Some(c) => {
                c.notifications = c.notifications.saturating_add(1);
                *c
            }
            None => {
                // The caller skipped on_connection: count the connection without connect rules.
                let mut c = self.register(ctx.connection_id, ctx.protocol);
                c.notifications = 1;
                if let Some(slot) = self.conns.get_mut(&ctx.connection_id) {
                    *slot = c;
                }
                c
            }
        };
        self.notifications_overall = self.notifications_overall.saturating_add(1);
        let overall = self.notifications_overall;
        for i in 0..self.rules.len() {
            let ok = {
                let r = &self.rules[i];
                r.trigger() == Trigger::Notification
                    && r.then.protocols().contains(&ctx.protocol)
                    && r.when.connection_matches(&c, ctx.protocol, ctx.environment)
                    && r.when.notification_matches(ctx, c.notifications, overall)
            };
            if ok && !self.is_exhausted(i) && self.draw(i) {
                return Some(self.fire(i));
            }
        }
        None
    }

    fn register(&mut self, id: u64, protocol: Protocol) -> ConnCounters {
        let slot = &mut self.connections_by_protocol[protocol_slot(protocol)];
        *slot = slot.saturating_add(1);
        self.connections_overall = self.connections_overall.saturating_add(1);
        let c = ConnCounters {
            index: *slot,
            index_overall: self.connections_overall,
            notifications: 0,
        };
        if self.conns.len() >= MAX_TRACKED_CONNECTIONS {
            // Oldest ids first: the caller most likely forgot to report them closed.
            self.conns.pop_first();
        }
        self.conns.insert(id, c);
        c
    }

    /// Draws the RNG for rule `i` only if it has a probability (so rules without one never shift
    /// the sequence).
    fn draw(&mut self, i: usize) -> bool {
        match self.rules.get(i).and_then(|r| r.when.probability) {
            None => true,
            Some(p) if p >= 1.0 => true,
            Some(p) if p.is_nan() || p <= 0.0 => false,
            Some(p) => self.rng.gen::<f64>() < p,
        }
    }

    fn fire(&mut self, i: usize) -> Fired {
        if let Some(n) = self.fired.get_mut(i) {
            *n = n.saturating_add(1);
        }
        let r = &self.rules[i];
        Fired {
            rule: i,
            name: r.name.clone(),
            action: r.then.clone(),
            delay: r.delay_ms.map(Duration::from_millis),
            close: r.close,
            trigger: r.trigger(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_and_fields_come_from_one_table() {
        let every: Vec<Action> = vec![
            Action::Accept,
            LegacyAction::Error {
                status: Status::ProcessingError,
                close: false,
            }
            .into(),
            LegacyAction::Drop { reset: true }.into(),
            LegacyAction::Stall { for_ms: Some(5) }.into(),
            LegacyAction::Throttle { bytes_per_sec: 9 }.into(),
            Http2Action::Reject {
                reason: Reason::TooManyRequests,
                status: Some(503),
                timestamp_ms: Some(1),
                max_concurrent_streams: Some(1),
            }
            .into(),
            Http2Action::Goaway {
                reason: Some(Reason::Shutdown),
                code: ErrorCode::NO_ERROR,
                last_stream_id: LastStreamId::Id(3),
                before_settings: false,
            }
            .into(),
            Http2Action::RstStream {
                code: ErrorCode::CANCEL,
            }
            .into(),
            Http2Action::Delay { ms: 7 }.into(),
            Http2Action::Close { reset: false }.into(),
            Http2Action::Settings(SettingsUpdate {
                header_table_size: Some(1),
                max_concurrent_streams: Some(2),
                initial_window_size: Some(3),
                max_frame_size: Some(16_384),
                max_header_list_size: Some(5),
            })
            .into(),
            Http2Action::IgnorePing.into(),
        ];
        let kinds: Vec<ActionKind> = every.iter().map(Action::kind).collect();
        assert_eq!(kinds, ActionKind::ALL);
        for a in &every {
            let v = serde_json::to_value(a).unwrap();
            let obj = v.as_object().unwrap();
            assert_eq!(obj["action"], a.name());
            // Every field serde writes is one the scenario parser reads for this action, and
            // with every optional field set, all of them are written.
            let mut written: Vec<&str> = obj.keys().map(String::as_str).collect();
            let mut table: Vec<&str> = std::iter::once("action")
                .chain(a.kind().fields().iter().copied())
                .collect();
            written.sort_unstable();
            table.sort_unstable();
            assert_eq!(written, table, "{a:?}");
        }
    }

    fn tok(b: u8) -> DeviceToken {
        DeviceToken::from_bytes(vec![b; 32])
    }

    fn note(token: u8, topic: Option<&str>, push_type: Option<&str>) -> Notification {
        Notification {
            token: tok(token),
            payload: bytes::Bytes::from_static(b"{}"),
            identifier: None,
            expiry: None,
            priority: 10,
            topic: topic.map(Into::into),
            push_type: push_type.and_then(|p| PushType::from_header(p.as_bytes())),
            collapse_id: None,
            apns_id: None,
            command: None,
        }
    }

    fn drop_() -> Action {
        Action::Legacy(LegacyAction::Drop { reset: false })
    }

    fn reject(reason: Reason) -> Action {
        Action::Http2(Http2Action::Reject {
            reason,
            status: None,
            timestamp_ms: None,
            max_concurrent_streams: None,
        })
    }

    /// Feeds `n` notifications from connection `conn` and returns which fired (rule index or None).
    fn run(rs: &mut RuleSet, conn: u64, p: Protocol, notes: &[Notification]) -> Vec<Option<usize>> {
        notes
            .iter()
            .map(|n| {
                rs.on_notification(&NotificationCtx {
                    connection_id: conn,
                    protocol: p,
                    environment: Environment::Production,
                    notification: n,
                    token_environment_mismatch: false,
                    api: Api::Device,
                    channel: None,
                })
                .map(|f| f.rule)
            })
            .collect()
    }

    fn one(rs: &mut RuleSet, ctx: NotificationCtx<'_>) -> Option<Fired> {
        rs.on_notification(&ctx)
    }

    fn ctx<'a>(
        n: &'a Notification,
        p: Protocol,
        e: Environment,
        mismatch: bool,
    ) -> NotificationCtx<'a> {
        NotificationCtx {
            connection_id: 1,
            protocol: p,
            environment: e,
            notification: n,
            token_environment_mismatch: mismatch,
            api: Api::Device,
            channel: None,
        }
    }

    #[test]
    fn classic_silent_drop_rule() {
        let rule = Rule::new(
            Matcher {
                protocol: Some(Protocol::Legacy),
                token_environment_mismatch: Some(true),
                ..Matcher::default()
            },
            drop_(),
        );
        assert!(rule.check().is_empty());
        let mut rs = RuleSet::new(vec![rule], 0);
        let n = note(1, None, None);
        assert!(one(
            &mut rs,
            ctx(&n, Protocol::Legacy, Environment::Production, false)
        )
        .is_none());
        let f = one(
            &mut rs,
            ctx(&n, Protocol::Legacy, Environment::Production, true),
        )
        .unwrap();
        assert_eq!(f.action, drop_());
        assert_eq!(f.rule, 0);
        assert!(one(
            &mut rs,
            ctx(&n, Protocol::Http2, Environment::Production, true)
        )
        .is_none());
    }

    #[test]
    fn each_matcher_field_filters() {
        let n = note(1, Some("com.a"), Some("alert"));
        let base = |m: Matcher| RuleSet::new(vec![Rule::new(m, Action::Accept)], 0);
        let cases: Vec<(Matcher, bool)> = vec![
            (
                Matcher {
                    environment: Some(Environment::Production),
                    ..Default::default()
                },
                true,
            ),
            (
                Matcher {
                    environment: Some(Environment::Sandbox),
                    ..Default::default()
                },
                false,
            ),
            (
                Matcher {
                    protocol: Some(Protocol::Legacy),
                    ..Default::default()
                },
                true,
            ),
            (
                Matcher {
                    protocol: Some(Protocol::Http2),
                    ..Default::default()
                },
                false,
            ),
            (
                Matcher {
                    token: Some(vec![tok(2), tok(1)]),
                    ..Default::default()
                },
                true,
            ),
            (
                Matcher {
                    token: Some(vec![tok(2)]),
                    ..Default::default()
                },
                false,
            ),
            (
                Matcher {
                    topic: Some("com.a".into()),
                    ..Default::default()
                },
                true,
            ),
            (
                Matcher {
                    topic: Some("com.a.voip".into()),
                    ..Default::default()
                },
                false,
            ),
            (
                Matcher {
                    push_type: Some(PushType::Alert),
                    ..Default::default()
                },
                true,
            ),
            (
                Matcher {
                    push_type: Some(PushType::Voip),
                    ..Default::default()
                },
                false,
            ),
            (
                Matcher {
                    token_environment_mismatch: Some(false),
                    ..Default::default()
                },
                true,
            ),
            (
                Matcher {
                    token_environment_mismatch: Some(true),
                    ..Default::default()
                },
                false,
            ),
            (
                Matcher {
                    connection: Some(1),
                    ..Default::default()
                },
                true,
            ),
            (
                Matcher {
                    connection: Some(2),
                    ..Default::default()
                },
                false,
            ),
            (
                Matcher {
                    connection_overall: Some(1),
                    ..Default::default()
                },
                true,
            ),
            (
                Matcher {
                    probability: Some(1.0),
                    ..Default::default()
                },
                true,
            ),
            (
                Matcher {
                    probability: Some(0.0),
                    ..Default::default()
                },
                false,
            ),
        ];
        for (m, want) in cases {
            let mut rs = base(m.clone());
            let got = one(
                &mut rs,
                ctx(&n, Protocol::Legacy, Environment::Production, false),
            );
            assert_eq!(got.is_some(), want, "{m:?}");
        }
    }

    #[test]
    fn nth_every_after_on_connection_and_overall() {
        let notes: Vec<_> = (0..7).map(|_| note(1, None, None)).collect();
        let m = |f: fn(&mut Matcher)| {
            let mut m = Matcher::default();
            f(&mut m);
            RuleSet::new(vec![Rule::new(m, Action::Accept)], 0)
        };
        let fired = |v: Vec<Option<usize>>| -> Vec<usize> {
            v.iter()
                .enumerate()
                .filter(|(_, f)| f.is_some())
                .map(|(i, _)| i + 1)
                .collect()
        };
        let mut rs = m(|m| m.nth = Some(3));
        assert_eq!(fired(run(&mut rs, 1, Protocol::Legacy, &notes)), vec![3]);
        assert_eq!(
            fired(run(&mut rs, 2, Protocol::Legacy, &notes)),
            vec![3],
            "per connection"
        );
        let mut rs = m(|m| m.every = Some(3));
        assert_eq!(fired(run(&mut rs, 1, Protocol::Legacy, &notes)), vec![3, 6]);
        let mut rs = m(|m| m.after = Some(5));
        assert_eq!(fired(run(&mut rs, 1, Protocol::Legacy, &notes)), vec![6, 7]);
        let mut rs = m(|m| m.nth_overall = Some(9));
        assert!(fired(run(&mut rs, 1, Protocol::Legacy, &notes)).is_empty());
        assert_eq!(fired(run(&mut rs, 2, Protocol::Legacy, &notes)), vec![2]);
        let mut rs = m(|m| m.every_overall = Some(4));
        run(&mut rs, 1, Protocol::Legacy, &notes[..3]);
        assert_eq!(fired(run(&mut rs, 2, Protocol::Legacy, &notes)), vec![1, 5]);
        let mut rs = m(|m| m.after_overall = Some(8));
        run(&mut rs, 1, Protocol::Legacy, &notes);
        assert_eq!(
            fired(run(&mut rs, 2, Protocol::Legacy, &notes)),
            vec![2, 3, 4, 5, 6, 7]
        );
    }

    #[test]
    fn times_heals_and_first_match_wins() {
        let rules = vec![
            Rule::new(Matcher::default(), reject(Reason::TooManyRequests)).times(2),
            Rule::new(Matcher::default(), reject(Reason::BadDeviceToken)).named("fallback"),
        ];
        let mut rs = RuleSet::new(rules, 0);
        let notes: Vec<_> = (0..4).map(|_| note(1, None, None)).collect();
        assert_eq!(
            run(&mut rs, 1, Protocol::Http2, &notes),
            vec![Some(0), Some(0), Some(1), Some(1)]
        );
        assert!(rs.is_exhausted(0));
        assert!(!rs.is_exhausted(1));
        assert_eq!(rs.fired_counts(), &[2, 2]);
        assert_eq!(rs.remove_named("fallback"), 1);
        assert_eq!(run(&mut rs, 1, Protocol::Http2, &notes), vec![None; 4]);
    }

    #[test]
    fn actions_only_fire_on_their_protocol() {
        let rules = vec![
            Rule::new(
                Matcher::default(),
                Action::Legacy(LegacyAction::Error {
                    status: Status::InvalidToken,
                    close: true,
                }),
            ),
            Rule::new(Matcher::default(), reject(Reason::BadDeviceToken)),
        ];
        let mut rs = RuleSet::new(rules, 0);
        let n = [note(1, None, None)];
        assert_eq!(run(&mut rs, 1, Protocol::Legacy, &n), vec![Some(0)]);
        assert_eq!(run(&mut rs, 2, Protocol::Http2, &n), vec![Some(1)]);
        assert_eq!(run(&mut rs, 3, Protocol::Feedback, &n), vec![None]);
    }

    #[test]
    fn delay_and_name_travel_with_the_action() {
        let r = Rule::new(
            Matcher::default(),
            Action::Http2(Http2Action::Delay { ms: 5 }),
        )
        .named("slow")
        .delay_ms(250);
        let mut rs = RuleSet::new(vec![r], 0);
        let n = note(1, None, None);
        let f = one(
            &mut rs,
            ctx(&n, Protocol::Http2, Environment::Sandbox, false),
        )
        .unwrap();
        assert_eq!(f.delay, Some(Duration::from_millis(250)));
        assert_eq!(f.name.as_deref(), Some("slow"));
        assert_eq!(f.action, Action::Http2(Http2Action::Delay { ms: 5 }));
    }

    #[test]
    fn connection_rules_fire_on_connect_only() {
        let rules = vec![
            Rule::new(
                Matcher {
                    connection: Some(2),
                    ..Default::default()
                },
                Action::Http2(Http2Action::Goaway {
                    reason: None,
                    code: ErrorCode::NO_ERROR,
                    last_stream_id: LastStreamId::Auto,
                    before_settings: true,
                }),
            ),
            Rule::new(Matcher::default(), Action::Http2(Http2Action::IgnorePing)),
            Rule::new(
                Matcher {
                    on: Some(Trigger::Connect),
                    protocol: Some(Protocol::Legacy),
                    ..Default::default()
                },
                Action::Legacy(LegacyAction::Throttle { bytes_per_sec: 10 }),
            ),
            Rule::new(
                Matcher {
                    on: Some(Trigger::Connect),
                    ..Default::default()
                },
                Action::Http2(Http2Action::Settings(SettingsUpdate {
                    max_concurrent_streams: Some(1),
                    ..Default::default()
                })),
            )
            .times(1),
        ];
        for r in &rules {
            assert!(r.check().is_empty(), "{r:?}: {:?}", r.check());
            assert_eq!(r.trigger(), Trigger::Connect);
        }
        let mut rs = RuleSet::new(rules, 0);
        let c = |id, protocol| ConnectionCtx {
            id,
            protocol,
            environment: Environment::Production,
        };
        let names = |v: Vec<Fired>| v.into_iter().map(|f| f.action.name()).collect::<Vec<_>>();
        assert_eq!(
            names(rs.on_connection(&c(1, Protocol::Http2))),
            vec!["ignore_ping", "settings"]
        );
        assert_eq!(
            names(rs.on_connection(&c(2, Protocol::Http2))),
            vec!["goaway", "ignore_ping"]
        );
        assert!(
            rs.on_connection(&c(2, Protocol::Http2)).is_empty(),
            "idempotent"
        );
        assert_eq!(
            names(rs.on_connection(&c(3, Protocol::Legacy))),
            vec!["throttle"]
        );
        // Connect rules never fire on notifications.
        let n = [note(1, None, None)];
        assert_eq!(run(&mut rs, 1, Protocol::Http2, &n), vec![None]);
    }

    #[test]
    fn check_refuses_nonsense() {
        let paths = |r: Rule| r.check().into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        let http2_drop = Rule::new(
            Matcher {
                protocol: Some(Protocol::Http2),
                ..Default::default()
            },
            drop_(),
        );
        assert_eq!(paths(http2_drop), vec!["then.action"]);
        let p = Rule::new(
            Matcher {
                probability: Some(1.5),
                ..Default::default()
            },
            drop_(),
        );
        assert_eq!(paths(p), vec!["when.probability"]);
        let z = Rule::new(
            Matcher {
                every: Some(0),
                ..Default::default()
            },
            drop_(),
        )
        .times(0);
        assert_eq!(paths(z), vec!["times", "when.every"]);
        let c = Rule::new(
            Matcher {
                on: Some(Trigger::Connect),
                nth: Some(1),
                ..Default::default()
            },
            reject(Reason::Shutdown),
        );
        assert_eq!(paths(c), vec!["when.nth", "then.action"]);
        let g = Rule::new(
            Matcher {
                nth: Some(1),
                ..Default::default()
            },
            Action::Http2(Http2Action::Goaway {
                reason: None,
                code: ErrorCode(0),
                last_stream_id: LastStreamId::Id(u32::MAX),
                before_settings: true,
            }),
        );
        assert_eq!(
            paths(g),
            vec!["then.before_settings", "then.last_stream_id"]
        );
        let s = Rule::new(
            Matcher::default(),
            Action::Http2(Http2Action::Settings(SettingsUpdate::default())),
        );
        assert_eq!(paths(s), vec!["then"]);
        // A misspelt push type cannot reach a rule: the matcher holds a `PushType`, and the
        // scenario parser refuses the name at `when.push_type` (scenario tests).
    }

    fn flaky(seed: u64, n: usize) -> Vec<bool> {
        let r = Rule::new(
            Matcher {
                probability: Some(0.1),
                ..Default::default()
            },
            drop_(),
        );
        let mut rs = RuleSet::new(vec![r], seed);
        let notes = vec![note(1, None, None); n];
        run(&mut rs, 1, Protocol::Legacy, &notes)
            .into_iter()
            .map(|f| f.is_some())
            .collect()
    }

    #[test]
    fn probability_is_seeded_deterministic_and_about_right() {
        let a = flaky(42, 10_000);
        assert_eq!(a, flaky(42, 10_000), "same seed, same sequence");
        assert_ne!(a, flaky(43, 10_000), "different seed, different sequence");
        let hits = a.iter().filter(|&&b| b).count();
        assert!((800..=1200).contains(&hits), "10% of 10000, got {hits}");
    }

    #[test]
    fn probability_is_drawn_only_when_the_rest_matches() {
        // A non-matching notification in between must not shift the random sequence.
        let r = Rule::new(
            Matcher {
                probability: Some(0.5),
                token: Some(vec![tok(1)]),
                ..Default::default()
            },
            drop_(),
        );
        let mut plain = RuleSet::new(vec![r.clone()], 7);
        let mut mixed = RuleSet::new(vec![r], 7);
        let mut a = Vec::new();
        let mut b = Vec::new();
        for _ in 0..200 {
            a.extend(run(&mut plain, 1, Protocol::Legacy, &[note(1, None, None)]));
            run(&mut mixed, 1, Protocol::Legacy, &[note(2, None, None)]);
            b.extend(run(&mut mixed, 1, Protocol::Legacy, &[note(1, None, None)]));
        }
        assert_eq!(a, b);
        assert!(a.iter().any(Option::is_some) && a.iter().any(Option::is_none));
    }

    #[test]
    fn error_code_names() {
        assert_eq!(
            ErrorCode::from_name("enhance_your_calm"),
            Some(ErrorCode(0xb))
        );
        assert_eq!(ErrorCode::from_name("NOPE"), None);
        for (i, n) in ErrorCode::NAMES.iter().enumerate() {
            let c = ErrorCode(i as u32);
            assert_eq!(c.name(), Some(*n));
            assert_eq!(ErrorCode::from_name(n), Some(c));
        }
        assert_eq!(ErrorCode(0x99).to_string(), "0x99");
    }

    #[test]
    fn connection_counters_are_bounded_and_forgettable() {
        let mut rs = RuleSet::empty();
        for id in 0..(MAX_TRACKED_CONNECTIONS as u64 + 10) {
            rs.on_connection(&ConnectionCtx {
                id,
                protocol: Protocol::Legacy,
                environment: Environment::Sandbox,
            });
        }
        assert_eq!(rs.conns.len(), MAX_TRACKED_CONNECTIONS);
        rs.connection_closed(MAX_TRACKED_CONNECTIONS as u64 + 9);
        assert_eq!(rs.conns.len(), MAX_TRACKED_CONNECTIONS - 1);
    }
}
