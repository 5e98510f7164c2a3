//! Known device tokens and the feedback lists they feed: the state that makes a token
//! "from the other environment", "unregistered since T", or offline.

use crate::model::{DeviceToken, Environment};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What apnsim knows about one device token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    /// The token.
    #[schema(value_type = String, pattern = "^([0-9a-fA-F]{2})+$")]
    pub token: DeviceToken,
    /// The environment that issued it; `None` = valid in both.
    #[serde(default)]
    pub environment: Option<Environment>,
    /// The app (bundle id) it belongs to; `None` = any topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// When APNs learnt the app was gone (ms since the epoch): HTTP/2 answers 410, legacy
    /// accepts and lists it in feedback (PROTOCOL.md 1.8, 2.6).
    #[serde(default, deserialize_with = "crate::model::whole::optional")]
    pub unregistered_at: Option<u64>,
    /// Whether the device is reachable (the device model stores for offline devices).
    #[serde(default = "default_online")]
    pub online: bool,
}

fn default_online() -> bool {
    true
}

impl TokenRecord {
    /// A token valid in `environment`, for any topic, online.
    pub fn new(token: DeviceToken, environment: Option<Environment>) -> Self {
        TokenRecord {
            token,
            environment,
            topic: None,
            unregistered_at: None,
            online: true,
        }
    }
}

/// One feedback tuple waiting to be read (PROTOCOL.md 1.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeedbackEntry {
    /// Seconds since the epoch when the app was found gone.
    #[schema(value_type = u64, maximum = 4_294_967_295u64)]
    pub timestamp: u32,
    /// The token.
    pub token: DeviceToken,
}

#[derive(Debug, Default)]
struct Inner {
    tokens: HashMap<DeviceToken, TokenRecord>,
    feedback: HashMap<(Environment, String), Vec<FeedbackEntry>>,
}

/// The shared registry handle (cheap to clone; used by listeners, the Rust API and the control API).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Inner>>,
    /// Whether any token is registered, readable without the lock: the legacy hot path asks it
    /// once per run so unknown tokens (the common case) never pay for the device model.
    any: Arc<AtomicBool>,
}

impl Registry {
    /// An empty registry: every well-formed token is accepted (PROTOCOL.md Part 3).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a token. An `unregistered_at` token with a topic also queues a feedback
    /// tuple for that topic in its environment(s), as Apple's feedback service would list it.
    pub fn register(&self, record: TokenRecord) {
        let mut inner = self.inner.write();
        if let (Some(at_ms), Some(topic)) = (record.unregistered_at, record.topic.clone()) {
            let entry = FeedbackEntry {
                timestamp: u32::try_from(at_ms / 1000).unwrap_or(u32::MAX),
                token: record.token.clone(),
            };
            for env in envs(record.environment) {
                push_feedback(&mut inner, env, &topic, entry.clone());
            }
        }
        inner.tokens.insert(record.token.clone(), record);
        self.any.store(true, Ordering::Release);
    }

    /// Forgets a token; returns whether it was known.
    pub fn remove(&self, token: &DeviceToken) -> bool {
        let mut inner = self.inner.write();
        let known = inner.tokens.remove(token).is_some();
        self.any.store(!inner.tokens.is_empty(), Ordering::Release);
        known
    }

    /// Whether any token is registered (one atomic load, no lock).
    pub fn has_tokens(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The record for a token, if registered.
    pub fn get(&self, token: &DeviceToken) -> Option<TokenRecord> {
        self.inner.read().tokens.get(token).cloned()
    }

    /// Runs `f` on the record without cloning it (the per-notification hot path).
    pub fn with<R>(&self, token: &DeviceToken, f: impl FnOnce(Option<&TokenRecord>) -> R) -> R {
        // Lock-free when nothing is registered: the usual case, and the gateway's hot path.
        if !self.has_tokens() {
            return f(None);
        }
        let inner = self.inner.read();
        f(inner.tokens.get(token))
    }

    /// Marks a device online or offline; false when the token is unknown.
    pub fn set_online(&self, token: &DeviceToken, online: bool) -> bool {
        self.set_online_then(token, online, |r| r.is_some())
    }

    /// Marks a device online or offline and runs `f` on the updated record (`None` = unknown)
    /// before any notification can see the new state: the device model delivers what it stored
    /// under this lock, so no push decided meanwhile lands in the store of an online device.
    pub fn set_online_then<R>(
        &self,
        token: &DeviceToken,
        online: bool,
        f: impl FnOnce(Option<&TokenRecord>) -> R,
    ) -> R {
        let mut inner = self.inner.write();
        match inner.tokens.get_mut(token) {
            Some(r) => {
                r.online = online;
                f(Some(r))
            }
            None => f(None),
        }
    }

    /// Every registered token, sorted for stable output.
    pub fn list(&self) -> Vec<TokenRecord> {
        let mut all: Vec<_> = self.inner.read().tokens.values().cloned().collect();
        all.sort_by(|a, b| a.token.cmp(&b.token));
        all
    }

    /// Queues a feedback tuple for `topic` in `environment` (`None` = both).
    pub fn add_feedback(
        &self,
        environment: Option<Environment>,
        topic: &str,
        entry: FeedbackEntry,
    ) {
        let mut inner = self.inner.write();
        for env in envs(environment) {
            push_feedback(&mut inner, env, topic, entry.clone());
        }
    }

    /// Takes (and so clears: PROTOCOL.md 1.8) the feedback list of each topic in `environment`.
    pub fn take_feedback(&self, environment: Environment, topics: &[String]) -> Vec<FeedbackEntry> {
        let mut inner = self.inner.write();
        let mut out = Vec::new();
        for topic in topics {
            if let Some(list) = inner.feedback.remove(&(environment, topic.clone())) {
                out.extend(list);
            }
        }
        out
    }

    /// The feedback waiting for a topic, without clearing it.
    pub fn peek_feedback(&self, environment: Environment, topic: &str) -> Vec<FeedbackEntry> {
        self.inner
            .read()
            .feedback
            .get(&(environment, topic.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Forgets every token and feedback entry.
    pub fn clear(&self) {
        let mut inner = self.inner.write();
        inner.tokens.clear();
        inner.feedback.clear();
        self.any.store(false, Ordering::Release);
    }
}

fn envs(environment: Option<Environment>) -> Vec<Environment> {
    match environment {
        Some(e) => vec![e],
        None => vec![Environment::Sandbox, Environment::Production],
    }
}

/// Bound on one feedback list, so a scenario cannot grow memory without limit.
const MAX_FEEDBACK_PER_TOPIC: usize = 100_000;

fn push_feedback(inner: &mut Inner, env: Environment, topic: &str, entry: FeedbackEntry) {
    let list = inner.feedback.entry((env, topic.to_string())).or_default();
    if list.len() < MAX_FEEDBACK_PER_TOPIC && !list.iter().any(|e| e.token == entry.token) {
        list.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(b: u8) -> DeviceToken {
        DeviceToken::from_bytes(vec![b; 32])
    }

    #[test]
    fn unregistered_tokens_feed_their_topic_once() {
        let r = Registry::new();
        r.register(TokenRecord {
            topic: Some("com.a".into()),
            unregistered_at: Some(1_700_000_000_123),
            ..TokenRecord::new(tok(1), Some(Environment::Production))
        });
        assert!(r
            .take_feedback(Environment::Sandbox, &["com.a".into()])
            .is_empty());
        let got = r.take_feedback(Environment::Production, &["com.a".into()]);
        assert_eq!(
            got,
            vec![FeedbackEntry {
                timestamp: 1_700_000_000,
                token: tok(1)
            }]
        );
        assert!(r
            .take_feedback(Environment::Production, &["com.a".into()])
            .is_empty());
    }

    #[test]
    fn online_flag_and_removal() {
        let r = Registry::new();
        assert!(!r.set_online(&tok(2), false));
        r.register(TokenRecord::new(tok(2), None));
        assert!(r.set_online(&tok(2), false));
        assert!(!r.get(&tok(2)).unwrap().online);
        assert!(r.has_tokens());
        assert!(r.remove(&tok(2)));
        assert!(r.get(&tok(2)).is_none());
        assert!(!r.has_tokens());
    }
}
