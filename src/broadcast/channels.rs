//! The broadcast channels of one emulator, per environment, and the devices subscribed to each:
//! a sans-IO store (randomness and time are passed in).
//!
//! Apple's rules (PROTOCOL.md 2.11, A-CHAN): ids are base64, random, not shared across
//! environments; the storage policy is fixed at creation; at most 10,000 channels per
//! environment; a deleted channel's id is never issued again.

use crate::model::{DeviceToken, Environment};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// How a channel treats a broadcast for an offline device (A-CHAN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum StoragePolicy {
    /// 0: no storage; offline devices miss the message, and only expiry 0 is accepted.
    NoStorage,
    /// 1: the most recent message is kept for an offline device, at most 8 hours.
    MostRecent,
}

impl From<StoragePolicy> for u8 {
    fn from(p: StoragePolicy) -> u8 {
        match p {
            StoragePolicy::NoStorage => 0,
            StoragePolicy::MostRecent => 1,
        }
    }
}

impl TryFrom<u8> for StoragePolicy {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            0 => Ok(StoragePolicy::NoStorage),
            1 => Ok(StoragePolicy::MostRecent),
            _ => Err(format!("message-storage-policy must be 0 or 1, not {v}")),
        }
    }
}

/// One channel as the control API and the journal show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Channel {
    /// Base64 id, as Apple's `apns-channel-id`.
    pub id: String,
    /// The app it belongs to.
    pub bundle_id: String,
    /// Environment it lives in.
    pub environment: Environment,
    /// Fixed at creation.
    #[schema(value_type = u8, minimum = 0, maximum = 1)]
    pub message_storage_policy: StoragePolicy,
    /// When it was created (ms since the epoch, emulator clock).
    pub created_at_ms: u64,
    /// Subscribed device tokens.
    pub subscribers: BTreeSet<DeviceToken>,
}

/// Why a channel operation failed (the caller maps each to its Apple reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The environment already holds the maximum number of live channels.
    #[error("channel limit of the environment reached")]
    Full,
    /// No live channel with this id for this app in this environment.
    #[error("no such channel")]
    NotRegistered,
}

#[derive(Debug, Default)]
struct EnvStore {
    live: BTreeMap<String, Channel>,
    /// Every id ever issued here, deleted or not: ids are never reused.
    issued: HashSet<String>,
}

/// Every channel, per environment.
#[derive(Debug, Default)]
pub struct Channels {
    production: EnvStore,
    sandbox: EnvStore,
}

/// A channel id from 16 random bytes: standard base64 with padding, as Apple's examples.
pub fn encode_id(random: [u8; 16]) -> String {
    base64::engine::general_purpose::STANDARD.encode(random)
}

/// Whether `id` is a well-formed channel id (standard base64, not empty): else BadChannelId.
pub fn is_well_formed(id: &str) -> bool {
    !id.is_empty()
        && base64::engine::general_purpose::STANDARD
            .decode(id)
            .is_ok_and(|b| !b.is_empty())
}

impl Channels {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn env(&self, env: Environment) -> &EnvStore {
        match env {
            Environment::Production => &self.production,
            Environment::Sandbox => &self.sandbox,
        }
    }

    fn env_mut(&mut self, env: Environment) -> &mut EnvStore {
        match env {
            Environment::Production => &mut self.production,
            Environment::Sandbox => &mut self.sandbox,
        }
    }

    /// A live channel of `env`, or NotRegistered (never created, or deleted).
    fn live_mut(&mut self, env: Environment, id: &str) -> Result<&mut Channel, ChannelError> {
        self.env_mut(env)
            .live
            .get_mut(id)
            .ok_or(ChannelError::NotRegistered)
    }

    /// Creates a channel; `random` yields fresh bytes for the id (drawn again on a collision
    /// with any id ever issued in the environment).
    pub fn create(
        &mut self,
        env: Environment,
        bundle_id: &str,
        policy: StoragePolicy,
        max: usize,
        now_ms: u64,
        mut random: impl FnMut() -> [u8; 16],
    ) -> Result<Channel, ChannelError> {
        let store = self.env_mut(env);
        if store.live.len() >= max {
            return Err(ChannelError::Full);
        }
        let id = loop {
            let id = encode_id(random());
            if !store.issued.contains(&id) {
                break id;
            }
        };
        store.issued.insert(id.clone());
        let channel = Channel {
            id: id.clone(),
            bundle_id: bundle_id.to_owned(),
            environment: env,
            message_storage_policy: policy,
            created_at_ms: now_ms,
            subscribers: BTreeSet::new(),
        };
        store.live.insert(id, channel.clone());
        Ok(channel)
    }

    /// The live channel `id` of `bundle_id` (a channel of another app is not registered for this one).
    pub fn get(
        &self,
        env: Environment,
        bundle_id: &str,
        id: &str,
    ) -> Result<&Channel, ChannelError> {
        self.env(env)
            .live
            .get(id)
            .filter(|c| c.bundle_id == bundle_id)
            .ok_or(ChannelError::NotRegistered)
    }

    /// Any live channel by id, whatever its app (control API).
    pub fn find(&self, env: Environment, id: &str) -> Option<&Channel> {
        self.env(env).live.get(id)
    }

    /// Deletes a channel; its id stays issued, so it is never handed out again.
    pub fn delete(
        &mut self,
        env: Environment,
        bundle_id: &str,
        id: &str,
    ) -> Result<Channel, ChannelError> {
        self.get(env, bundle_id, id)?;
        self.env_mut(env)
            .live
            .remove(id)
            .ok_or(ChannelError::NotRegistered)
    }

    /// The live channel ids of `bundle_id`, in id order.
    pub fn list(&self, env: Environment, bundle_id: &str) -> Vec<String> {
        self.env(env)
            .live
            .values()
            .filter(|c| c.bundle_id == bundle_id)
            .map(|c| c.id.clone())
            .collect()
    }

    /// Every live channel of the environment (control API).
    pub fn all(&self, env: Environment) -> Vec<Channel> {
        self.env(env).live.values().cloned().collect()
    }

    /// Live channels in the environment.
    pub fn len(&self, env: Environment) -> usize {
        self.env(env).live.len()
    }

    /// True when neither environment holds a live channel.
    pub fn is_empty(&self) -> bool {
        self.production.live.is_empty() && self.sandbox.live.is_empty()
    }

    /// Subscribes a device to a channel; true when it was not subscribed yet.
    pub fn subscribe(
        &mut self,
        env: Environment,
        id: &str,
        token: DeviceToken,
    ) -> Result<bool, ChannelError> {
        let c = self.live_mut(env, id)?;
        Ok(c.subscribers.insert(token))
    }

    /// Unsubscribes a device; true when it was subscribed.
    pub fn unsubscribe(
        &mut self,
        env: Environment,
        id: &str,
        token: &DeviceToken,
    ) -> Result<bool, ChannelError> {
        let c = self.live_mut(env, id)?;
        Ok(c.subscribers.remove(token))
    }

    /// Forgets everything (ids issued included).
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut() -> [u8; 16] {
        let mut n = 0u8;
        move || {
            n = n.wrapping_add(1);
            [n; 16]
        }
    }

    const P: Environment = Environment::Production;
    const S: Environment = Environment::Sandbox;

    #[test]
    fn create_read_list_delete() {
        let mut c = Channels::new();
        let mut rng = counter();
        let a = c
            .create(P, "com.x", StoragePolicy::MostRecent, 10, 5, &mut rng)
            .unwrap();
        assert!(is_well_formed(&a.id));
        assert_eq!(
            c.get(P, "com.x", &a.id).unwrap().message_storage_policy,
            StoragePolicy::MostRecent
        );
        assert_eq!(
            c.get(P, "com.y", &a.id),
            Err(ChannelError::NotRegistered),
            "other app"
        );
        assert_eq!(
            c.get(S, "com.x", &a.id),
            Err(ChannelError::NotRegistered),
            "other environment"
        );
        assert_eq!(c.list(P, "com.x"), vec![a.id.clone()]);
        c.delete(P, "com.x", &a.id).unwrap();
        assert_eq!(c.get(P, "com.x", &a.id), Err(ChannelError::NotRegistered));
        assert!(c.list(P, "com.x").is_empty());
    }

    #[test]
    fn deleted_ids_are_never_issued_again() {
        let mut c = Channels::new();
        let a = c
            .create(P, "com.x", StoragePolicy::NoStorage, 10, 0, || [7; 16])
            .unwrap();
        c.delete(P, "com.x", &a.id).unwrap();
        let mut draws = vec![[7u8; 16], [7; 16], [8; 16]].into_iter();
        let b = c
            .create(P, "com.x", StoragePolicy::NoStorage, 10, 0, || {
                draws.next().unwrap()
            })
            .unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!(b.id, encode_id([8; 16]));
    }

    #[test]
    fn the_limit_counts_live_channels_per_environment() {
        let mut c = Channels::new();
        let mut rng = counter();
        let a = c
            .create(P, "com.x", StoragePolicy::NoStorage, 2, 0, &mut rng)
            .unwrap();
        c.create(P, "com.y", StoragePolicy::NoStorage, 2, 0, &mut rng)
            .unwrap();
        assert_eq!(
            c.create(P, "com.x", StoragePolicy::NoStorage, 2, 0, &mut rng),
            Err(ChannelError::Full)
        );
        c.create(S, "com.x", StoragePolicy::NoStorage, 2, 0, &mut rng)
            .unwrap();
        c.delete(P, "com.x", &a.id).unwrap();
        c.create(P, "com.x", StoragePolicy::NoStorage, 2, 0, &mut rng)
            .unwrap();
    }

    #[test]
    fn subscriptions() {
        let mut c = Channels::new();
        let a = c
            .create(P, "com.x", StoragePolicy::NoStorage, 2, 0, counter())
            .unwrap();
        let t = DeviceToken::from_hex("aabb").unwrap();
        assert_eq!(c.subscribe(P, &a.id, t.clone()), Ok(true));
        assert_eq!(c.subscribe(P, &a.id, t.clone()), Ok(false));
        assert_eq!(
            c.subscribe(S, &a.id, t.clone()),
            Err(ChannelError::NotRegistered)
        );
        assert_eq!(c.get(P, "com.x", &a.id).unwrap().subscribers.len(), 1);
        assert_eq!(c.unsubscribe(P, &a.id, &t), Ok(true));
        assert_eq!(c.unsubscribe(P, &a.id, &t), Ok(false));
    }

    #[test]
    fn well_formed_ids() {
        assert!(is_well_formed("dHN0LXNyY2gtY2hubA=="));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed("not base64!"));
        assert!(!is_well_formed("abc"));
    }
}
