//! The sans-IO decision: given what a connection is and what arrived, what apnsim answers.
//! Every protocol funnels into `decide`, so a rule written once applies to both.

pub mod devices;
pub mod registry;
pub mod rules;
pub mod scenario;

use crate::model::{DeviceToken, Environment, Notification, Protocol};
use crate::settings::Settings;
use devices::{DeviceEvent, DeviceView, Devices, Origin};
use parking_lot::Mutex;
pub use registry::{FeedbackEntry, Registry, TokenRecord};
use rules::{Action, ConnectionCtx, Fired, NotificationCtx, RuleSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the engine knows about the connection a notification came on.
#[derive(Debug, Clone)]
pub struct ConnState {
    /// Connection id, as in the journal.
    pub id: u64,
    /// Wire protocol.
    pub protocol: Protocol,
    /// The connection's environment (SNI or listener).
    pub environment: Environment,
    /// Notifications already decided on this connection.
    pub decided: u64,
}

/// Why a notification is refused, in protocol-neutral terms; each listener maps it to its wire answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Token unknown under strict tokens, or from the other environment (legacy 8, HTTP/2 BadDeviceToken).
    InvalidToken,
    /// Token registered for another topic (HTTP/2 DeviceTokenNotForTopic).
    TokenNotForTopic,
    /// Token unregistered since this time in ms (HTTP/2 410 Unregistered).
    Unregistered(u64),
    /// `strict_payload`: the payload lint warned (HTTP/2 400 BadRequestPayload, legacy 255).
    LintedPayload,
}

/// The engine's decision for one notification.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Take it.
    Accept,
    /// Refuse it with the protocol's answer.
    Reject(Refusal),
    /// Cut the connection with no answer.
    Drop,
    /// A scenario rule fired: the listener carries out its action.
    Fault(Fired),
}

/// Apple's own answer with no rule involved (PROTOCOL.md Part 3): what a rule that answers
/// "as usual" falls back to, so carrying out a rule never consults the rules again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultVerdict {
    /// Take it.
    Accept,
    /// Refuse it with the protocol's answer.
    Reject(Refusal),
}

impl From<DefaultVerdict> for Verdict {
    fn from(v: DefaultVerdict) -> Self {
        match v {
            DefaultVerdict::Accept => Verdict::Accept,
            DefaultVerdict::Reject(r) => Verdict::Reject(r),
        }
    }
}

/// The decision maker shared by every listener.
#[derive(Debug, Clone)]
pub struct Engine {
    settings: Settings,
    registry: Registry,
    rules: Arc<Mutex<RuleSet>>,
    /// Set while any rule is loaded, so the hot path skips the rules lock when there are none.
    has_rules: Arc<AtomicBool>,
    /// What registered devices stored and displayed (the device model).
    devices: Arc<Mutex<Devices>>,
}

impl Engine {
    /// An engine over `registry` with `settings` and no rules.
    pub fn new(settings: Settings, registry: Registry) -> Self {
        Engine {
            settings,
            registry,
            rules: Arc::new(Mutex::new(RuleSet::empty())),
            has_rules: Arc::new(AtomicBool::new(false)),
            devices: Arc::new(Mutex::new(Devices::new(devices::Limits::default()))),
        }
    }

    /// Whether the device model can have anything to do: some token is registered. One atomic
    /// load, so the legacy hot path checks it once per run and unknown tokens cost nothing.
    pub fn devices_active(&self) -> bool {
        self.registry.has_tokens()
    }

    /// The device model's events for a notification just accepted on a connection of `origin`
    /// (nothing for unknown tokens). Lock order: registry, then devices.
    pub fn device_events(&self, origin: Origin, n: &Notification, now_ms: u64) -> Vec<DeviceEvent> {
        self.device_events_via(origin, n, None, now_ms)
    }

    /// As [`Engine::device_events`] for a notification that came through broadcast `channel`:
    /// an offline device keeps the most recent one per channel (PROTOCOL.md 2.11).
    pub fn device_events_via(
        &self,
        origin: Origin,
        n: &Notification,
        channel: Option<&str>,
        now_ms: u64,
    ) -> Vec<DeviceEvent> {
        if !self.devices_active() {
            return Vec::new();
        }
        self.registry.with(&n.token, |record| match record {
            None => Vec::new(),
            Some(r) => self
                .devices
                .lock()
                .on_accepted_via(Some(r), origin, n, channel, now_ms),
        })
    }

    /// Marks a registered device online or offline; coming online delivers (or expires) what was
    /// stored for it. `None` when the token is not registered.
    pub fn set_device_online(
        &self,
        token: &DeviceToken,
        online: bool,
        now_ms: u64,
    ) -> Option<Vec<DeviceEvent>> {
        self.registry
            .set_online_then(token, online, |record| match record {
                None => None,
                Some(_) if online => Some(self.devices.lock().on_online(token, now_ms)),
                Some(_) => Some(Vec::new()),
            })
    }

    /// What a registered device shows and what waits for it; `None` when not registered.
    pub fn device_view(&self, token: &DeviceToken) -> Option<DeviceView> {
        self.registry.with(token, |record| {
            record.map(|r| self.devices.lock().view(token, r.online))
        })
    }

    /// Forgets what a device stored and displayed (its token left the registry).
    pub fn forget_device(&self, token: &DeviceToken) {
        self.devices.lock().forget(token);
    }

    /// Replaces the scenario rules (counters and the random sequence start afresh).
    pub fn set_rules(&self, rules: RuleSet) {
        let any = !rules.rules().is_empty();
        *self.rules.lock() = rules;
        self.has_rules.store(any, Ordering::Release);
    }

    /// The rules loaded now, with how often each has fired.
    pub fn rules_snapshot(&self) -> (Vec<rules::Rule>, Vec<u32>) {
        let r = self.rules.lock();
        (r.rules().to_vec(), r.fired_counts().to_vec())
    }

    /// Connection-level rule actions for a new connection (GOAWAY before SETTINGS, stall, …).
    pub fn on_connection(&self, conn: &ConnState) -> Vec<Fired> {
        if !self.has_rules.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.rules.lock().on_connection(&ConnectionCtx {
            id: conn.id,
            protocol: conn.protocol,
            environment: conn.environment,
        })
    }

    /// Forgets a closed connection's rule counters.
    pub fn connection_closed(&self, id: u64) {
        if self.has_rules.load(Ordering::Acquire) {
            self.rules.lock().connection_closed(id);
        }
    }

    /// The settings it decides by.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The token registry it consults.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Decides one well-formed notification (codec-level checks already passed): scenario rules
    /// first (first match wins; `accept` overrides the default), then Apple's default behaviour.
    pub fn decide(&self, conn: &ConnState, n: &Notification) -> Verdict {
        self.decide_on(conn, n, rules::Api::Device, None)
    }

    /// As [`Engine::decide`], for a request on `api` carrying `apns-channel-id` `channel`
    /// (PROTOCOL.md 2.11): the broadcast family goes through the same rules.
    pub fn decide_on(
        &self,
        conn: &ConnState,
        n: &Notification,
        api: rules::Api,
        channel: Option<&str>,
    ) -> Verdict {
        if self.has_rules.load(Ordering::Acquire) {
            let ctx = NotificationCtx {
                connection_id: conn.id,
                protocol: conn.protocol,
                environment: conn.environment,
                notification: n,
                token_environment_mismatch: rules::token_environment_mismatch(
                    &self.registry,
                    &n.token,
                    conn.environment,
                ),
                api,
                channel,
            };
            if let Some(fired) = self.rules.lock().on_notification(&ctx) {
                return match fired.action {
                    Action::Accept if fired.delay.is_none() => Verdict::Accept,
                    _ => Verdict::Fault(fired),
                };
            }
        }
        match self.default_verdict(conn, n) {
            // An apnsim extension for strict CI, off by default (Apple accepts these payloads).
            DefaultVerdict::Accept
                if self.settings.strict_payload
                    && crate::lint::lint(
                        &n.payload,
                        n.push_type.map(crate::model::PushType::as_str),
                    )
                    .level
                        == crate::lint::Level::Warn =>
            {
                Verdict::Reject(Refusal::LintedPayload)
            }
            v => v.into(),
        }
    }

    /// Apple's behaviour with no rule involved (PROTOCOL.md Part 3).
    pub fn default_verdict(&self, conn: &ConnState, n: &Notification) -> DefaultVerdict {
        let strict = self.settings.strict_tokens;
        self.registry.with(&n.token, |record| match record {
            // PROTOCOL.md Part 3: unknown tokens are accepted unless strict-tokens.
            None if strict => DefaultVerdict::Reject(Refusal::InvalidToken),
            None => DefaultVerdict::Accept,
            Some(r) => {
                // PROTOCOL.md 1.6 status 8 / Part 3: a token of the other environment is invalid.
                if r.environment.is_some_and(|e| e != conn.environment) {
                    return DefaultVerdict::Reject(Refusal::InvalidToken);
                }
                if conn.protocol == Protocol::Legacy {
                    // Apple never told legacy providers about unregistered tokens (feedback did).
                    return DefaultVerdict::Accept;
                }
                if let (Some(want), Some(got)) = (&r.topic, &n.topic) {
                    if !topic_matches(want, got) {
                        return DefaultVerdict::Reject(Refusal::TokenNotForTopic);
                    }
                }
                match r.unregistered_at {
                    Some(at) => DefaultVerdict::Reject(Refusal::Unregistered(at)),
                    None => DefaultVerdict::Accept,
                }
            }
        })
    }
}

/// A token registered for an app also serves the app's suffixed topics (.voip, .complication, …).
fn topic_matches(registered: &str, topic: &str) -> bool {
    topic == registered
        || topic
            .strip_prefix(registered)
            .is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeviceToken;

    fn note(token: u8, topic: Option<&str>) -> Notification {
        Notification {
            token: DeviceToken::from_bytes(vec![token; 32]),
            payload: bytes::Bytes::from_static(b"{}"),
            identifier: None,
            expiry: None,
            priority: 10,
            topic: topic.map(Into::into),
            push_type: None,
            collapse_id: None,
            apns_id: None,
            command: None,
        }
    }

    fn conn(protocol: Protocol, environment: Environment) -> ConnState {
        ConnState {
            id: 1,
            protocol,
            environment,
            decided: 0,
        }
    }

    #[test]
    fn unknown_tokens_pass_unless_strict() {
        let n = note(1, None);
        let c = conn(Protocol::Legacy, Environment::Production);
        assert_eq!(
            Engine::new(Settings::default(), Registry::new()).decide(&c, &n),
            Verdict::Accept
        );
        let strict = Settings {
            strict_tokens: true,
            ..Settings::default()
        };
        assert_eq!(
            Engine::new(strict, Registry::new()).decide(&c, &n),
            Verdict::Reject(Refusal::InvalidToken)
        );
    }

    #[test]
    fn environment_topic_and_unregistered() {
        let reg = Registry::new();
        let e = Engine::new(Settings::default(), reg.clone());
        reg.register(TokenRecord::new(
            DeviceToken::from_bytes(vec![1; 32]),
            Some(Environment::Sandbox),
        ));
        reg.register(TokenRecord {
            topic: Some("com.a".into()),
            unregistered_at: Some(5),
            ..TokenRecord::new(DeviceToken::from_bytes(vec![2; 32]), None)
        });
        let prod_legacy = conn(Protocol::Legacy, Environment::Production);
        let prod_h2 = conn(Protocol::Http2, Environment::Production);
        assert_eq!(
            e.decide(&prod_legacy, &note(1, None)),
            Verdict::Reject(Refusal::InvalidToken)
        );
        assert_eq!(
            e.decide(
                &conn(Protocol::Legacy, Environment::Sandbox),
                &note(1, None)
            ),
            Verdict::Accept
        );
        assert_eq!(
            e.decide(&prod_legacy, &note(2, Some("com.a"))),
            Verdict::Accept
        );
        assert_eq!(
            e.decide(&prod_h2, &note(2, Some("com.a.voip"))),
            Verdict::Reject(Refusal::Unregistered(5))
        );
        assert_eq!(
            e.decide(&prod_h2, &note(2, Some("com.b"))),
            Verdict::Reject(Refusal::TokenNotForTopic)
        );
        assert!(!topic_matches("com.a", "com.ab"));
    }
}
