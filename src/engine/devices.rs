//! The device model: what a registered device would have displayed, and what APNs holds for it
//! while it is offline. Sans-IO: every function takes `now` and returns the events to journal.
//!
//! The rules (PROTOCOL.md 1.3, 1.4 and 2.3 for expiry and collapse id):
//! - an online device gets the notification at once (`delivered`), whatever its expiry: APNs
//!   "tries at least once";
//! - an offline device: expiry 0 is not stored (`expired` at once), nor is an expiry already
//!   past; otherwise APNs keeps only the latest notification per app (topic): the first is
//!   `stored`, a later one `replaced` (the event names the one it displaced); no expiry means
//!   the store policy (30 days, PROTOCOL.md 2.3);
//! - a broadcast (PROTOCOL.md 2.11, storage policy 1: "most recent") is kept per channel, not
//!   per app: its slot is the channel, so a channel's newest message replaces only that
//!   channel's previous one, never a direct push to the app nor another channel's message;
//! - coming online, each stored notification is `expired` if its expiry has passed, else
//!   `delivered`, oldest first;
//! - on the device, a delivered notification with the same app and collapse id as one already
//!   displayed replaces that entry (the newest goes last), as iOS coalesces by apns-collapse-id.
//!
//! Each notification that reaches the model yields exactly one event: `delivered`, `stored`,
//! `replaced` or `expired` (and a stored one later one more: `delivered` or `expired`).

use crate::engine::registry::TokenRecord;
use crate::journal::{EventKind, NewEvent};
use crate::model::{DeviceToken, Environment, Notification, Protocol};
use serde::Serialize;
use serde_json::json;
use std::collections::{HashMap, VecDeque};

/// PROTOCOL.md 2.3: with no expiry, APNs stores a notification "per policy, up to 30 days".
pub const DEFAULT_RETENTION_SECS: u64 = 30 * 24 * 3600;

/// Bounds on the device model, so a long run or a scripted flood cannot grow memory without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Devices tracked at once; past it the least recently touched device is forgotten.
    pub max_devices: usize,
    /// Displayed notifications kept per device (the oldest go first).
    pub inbox_per_device: usize,
    /// Apps with a stored notification per device; past it the oldest stored one expires.
    pub stored_per_device: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_devices: 10_000,
            inbox_per_device: 100,
            stored_per_device: 64,
        }
    }
}

/// Where a notification came from, so events journaled later (coming online) still say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Origin {
    /// The protocol it arrived on.
    pub protocol: Protocol,
    /// The environment of the connection it arrived on.
    pub environment: Environment,
}

/// What the device model did with one notification; one journal event each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEventKind {
    /// Kept for an offline device.
    Stored,
    /// Kept for an offline device in place of the app's previous stored notification.
    Replaced,
    /// Thrown away: expiry 0 for an offline device, or its expiry passed before delivery.
    Expired,
    /// Shown on the device (it is now in the inbox).
    Delivered,
}

impl DeviceEventKind {
    /// The journal kind of the same name.
    pub fn journal_kind(self) -> EventKind {
        match self {
            DeviceEventKind::Stored => EventKind::Stored,
            DeviceEventKind::Replaced => EventKind::Replaced,
            DeviceEventKind::Expired => EventKind::Expired,
            DeviceEventKind::Delivered => EventKind::Delivered,
        }
    }
}

/// One thing the device model did, ready to journal.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEvent {
    /// What happened.
    pub kind: DeviceEventKind,
    /// Where the notification came from.
    pub origin: Origin,
    /// The notification concerned.
    pub notification: Notification,
    /// Why, for the journal's `detail`.
    pub detail: serde_json::Value,
}

impl DeviceEvent {
    /// The journal event, on `connection` (0 when a device came online rather than a push arrived).
    pub fn into_event(self, connection: u64) -> NewEvent {
        NewEvent::new(
            self.kind.journal_kind(),
            connection,
            self.origin.protocol,
            self.origin.environment,
        )
        .notification(self.notification)
        .detail(self.detail)
    }
}

/// A notification APNs holds for an offline device.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredNotification {
    /// The notification.
    pub notification: Notification,
    /// When it was stored (ms since the epoch, emulator clock).
    pub stored_at_ms: u64,
    /// When it expires (seconds since the epoch): its own expiry, or the 30-day policy.
    pub expires_at: u64,
    /// Where it came from.
    pub origin: Origin,
    /// The broadcast channel it came through: its store slot (PROTOCOL.md 2.11); `None` for a
    /// push to the device token, kept per app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// A notification the device displayed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Displayed {
    /// The notification.
    pub notification: Notification,
    /// When it was delivered (ms since the epoch, emulator clock).
    pub delivered_at_ms: u64,
    /// Where it came from.
    pub origin: Origin,
}

/// What one device shows and what waits for it: the inbox of the control and Rust APIs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceView {
    /// The token.
    pub token: DeviceToken,
    /// Whether the device is online (from the registry).
    pub online: bool,
    /// Held while offline, oldest first (at most one per app).
    pub stored: Vec<StoredNotification>,
    /// Displayed, newest last.
    pub inbox: Vec<Displayed>,
}

#[derive(Debug, Default)]
struct Device {
    /// At most one per app, oldest first.
    stored: Vec<StoredNotification>,
    inbox: VecDeque<Displayed>,
    /// The store's tick when this device was last touched (for eviction).
    touched: u64,
}

/// Every tracked device: the sans-IO store the engine consults for registered tokens.
#[derive(Debug, Default)]
pub struct Devices {
    devices: HashMap<DeviceToken, Device>,
    limits: Limits,
    tick: u64,
}

/// The app a notification is for: its topic (a legacy notification carries its certificate's topic).
fn app(n: &Notification) -> &str {
    n.topic.as_deref().unwrap_or("")
}

/// When a notification stored at `now_ms` expires, in seconds (PROTOCOL.md 1.3, 2.3).
fn expires_at(n: &Notification, now_ms: u64) -> u64 {
    match n.expiry {
        Some(e) => u64::from(e),
        None => (now_ms / 1000).saturating_add(DEFAULT_RETENTION_SECS),
    }
}

impl Devices {
    /// An empty store with these bounds (each at least 1).
    pub fn new(limits: Limits) -> Self {
        Devices {
            devices: HashMap::new(),
            limits: Limits {
                max_devices: limits.max_devices.max(1),
                inbox_per_device: limits.inbox_per_device.max(1),
                stored_per_device: limits.stored_per_device.max(1),
            },
            tick: 0,
        }
    }

    /// An accepted notification reaches the device model. Only registered tokens whose app is
    /// still installed take part: `None` (unknown token) or an unregistered one yield nothing.
    pub fn on_accepted(
        &mut self,
        record: Option<&TokenRecord>,
        origin: Origin,
        n: &Notification,
        now_ms: u64,
    ) -> Vec<DeviceEvent> {
        self.on_accepted_via(record, origin, n, None, now_ms)
    }

    /// As [`Devices::on_accepted`], for a notification that came through broadcast `channel`
    /// (`None`: sent to the token): an offline device keeps the most recent one per channel.
    pub fn on_accepted_via(
        &mut self,
        record: Option<&TokenRecord>,
        origin: Origin,
        n: &Notification,
        channel: Option<&str>,
        now_ms: u64,
    ) -> Vec<DeviceEvent> {
        let Some(record) = record else {
            return Vec::new();
        };
        if record.unregistered_at.is_some() {
            return Vec::new();
        }
        let now_secs = now_ms / 1000;
        let event = |kind, detail| DeviceEvent {
            kind,
            origin,
            notification: n.clone(),
            detail,
        };
        if record.online {
            let collapsed = self.display(&record.token, n.clone(), origin, now_ms);
            let detail = match collapsed {
                Some(old) => json!({ "collapsed": old }),
                None => json!({}),
            };
            return vec![event(DeviceEventKind::Delivered, detail)];
        }
        // PROTOCOL.md 1.3, 1.4, 2.3: expiry 0 = do not store; a past expiry cannot be stored either.
        let expires = expires_at(n, now_ms);
        if n.expiry == Some(0) {
            return vec![event(
                DeviceEventKind::Expired,
                json!({ "why": "expiry 0: not stored" }),
            )];
        }
        if expires <= now_secs {
            return vec![event(
                DeviceEventKind::Expired,
                json!({ "why": "expiry already passed", "expires_at": expires }),
            )];
        }
        let limits = self.limits;
        let device = self.touch(&record.token);
        let held = StoredNotification {
            notification: n.clone(),
            stored_at_ms: now_ms,
            expires_at: expires,
            origin,
            channel: channel.map(str::to_owned),
        };
        // APNs keeps only the latest notification per app (per channel for a broadcast,
        // PROTOCOL.md 2.11); a collapse id does not change that.
        if let Some(i) = device.stored.iter().position(|s| {
            s.channel.as_deref() == channel && (channel.is_some() || app(&s.notification) == app(n))
        }) {
            let old = device.stored.remove(i);
            let same_collapse =
                n.collapse_id.is_some() && old.notification.collapse_id == n.collapse_id;
            device.stored.push(held);
            return vec![event(
                DeviceEventKind::Replaced,
                json!({
                    "app": app(n),
                    "by": match (channel, same_collapse) {
                        (Some(_), _) => "one-per-channel",
                        (None, true) => "collapse-id",
                        (None, false) => "one-per-app",
                    },
                    "replaced": old.notification,
                    "expires_at": expires,
                }),
            )];
        }
        let mut out = Vec::with_capacity(1);
        if device.stored.len() >= limits.stored_per_device {
            let oldest = device.stored.remove(0);
            out.push(DeviceEvent {
                kind: DeviceEventKind::Expired,
                origin: oldest.origin,
                notification: oldest.notification,
                detail: json!({ "why": "store full" }),
            });
        }
        device.stored.push(held);
        out.push(event(
            DeviceEventKind::Stored,
            json!({ "app": app(n), "expires_at": expires }),
        ));
        out
    }

    /// A device came online: each stored notification is delivered, or expired if its expiry
    /// passed (PROTOCOL.md 1.3: stored "until that time"), oldest first.
    pub fn on_online(&mut self, token: &DeviceToken, now_ms: u64) -> Vec<DeviceEvent> {
        let stored = match self.devices.get_mut(token) {
            Some(d) if !d.stored.is_empty() => std::mem::take(&mut d.stored),
            _ => return Vec::new(),
        };
        let now_secs = now_ms / 1000;
        let mut out = Vec::with_capacity(stored.len());
        for s in stored {
            if s.expires_at <= now_secs {
                out.push(DeviceEvent {
                    kind: DeviceEventKind::Expired,
                    origin: s.origin,
                    notification: s.notification,
                    detail: json!({ "why": "expired while offline", "expires_at": s.expires_at }),
                });
                continue;
            }
            let collapsed = self.display(token, s.notification.clone(), s.origin, now_ms);
            let mut detail = json!({ "stored_at_ms": s.stored_at_ms });
            if let Some(old) = collapsed {
                detail["collapsed"] = json!(old);
            }
            out.push(DeviceEvent {
                kind: DeviceEventKind::Delivered,
                origin: s.origin,
                notification: s.notification,
                detail,
            });
        }
        out
    }

    /// What the device shows and what waits for it (`online` comes from the registry).
    pub fn view(&self, token: &DeviceToken, online: bool) -> DeviceView {
        let device = self.devices.get(token);
        DeviceView {
            token: token.clone(),
            online,
            stored: device.map(|d| d.stored.clone()).unwrap_or_default(),
            inbox: device
                .map(|d| d.inbox.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// Forgets a device (its token was removed from the registry).
    pub fn forget(&mut self, token: &DeviceToken) {
        self.devices.remove(token);
    }

    /// Forgets every device.
    pub fn clear(&mut self) {
        self.devices.clear();
    }

    /// How many devices are tracked.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// True when no device is tracked.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Puts `n` on the device's screen; returns the entry it coalesced with (same app and
    /// collapse id), if any.
    fn display(
        &mut self,
        token: &DeviceToken,
        n: Notification,
        origin: Origin,
        now_ms: u64,
    ) -> Option<Notification> {
        let limit = self.limits.inbox_per_device;
        let device = self.touch(token);
        let collapsed = n.collapse_id.as_ref().and_then(|id| {
            let i = device.inbox.iter().position(|d| {
                d.notification.collapse_id.as_ref() == Some(id) && app(&d.notification) == app(&n)
            })?;
            device.inbox.remove(i).map(|d| d.notification)
        });
        while device.inbox.len() >= limit {
            device.inbox.pop_front();
        }
        device.inbox.push_back(Displayed {
            notification: n,
            delivered_at_ms: now_ms,
            origin,
        });
        collapsed
    }

    /// The device's entry, created if new (evicting the least recently touched one when full).
    fn touch(&mut self, token: &DeviceToken) -> &mut Device {
        self.tick += 1;
        let tick = self.tick;
        if !self.devices.contains_key(token) && self.devices.len() >= self.limits.max_devices {
            if let Some(oldest) = self
                .devices
                .iter()
                .min_by_key(|(_, d)| d.touched)
                .map(|(t, _)| t.clone())
            {
                self.devices.remove(&oldest);
            }
        }
        let device = self.devices.entry(token.clone()).or_default();
        device.touched = tick;
        device
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Identifier;

    const NOW_MS: u64 = 1_700_000_000_000;
    const NOW: u32 = 1_700_000_000;

    fn tok(b: u8) -> DeviceToken {
        DeviceToken::from_bytes(vec![b; 32])
    }

    fn record(b: u8, online: bool) -> TokenRecord {
        TokenRecord {
            online,
            ..TokenRecord::new(tok(b), None)
        }
    }

    fn note(
        b: u8,
        id: u32,
        topic: &str,
        expiry: Option<u32>,
        collapse: Option<&str>,
    ) -> Notification {
        Notification {
            token: tok(b),
            payload: bytes::Bytes::from(format!("{{\"n\":{id}}}")),
            identifier: Some(Identifier::from_u32(id)),
            expiry,
            priority: 10,
            topic: Some(topic.into()),
            push_type: None,
            collapse_id: collapse.map(Into::into),
            apns_id: None,
            command: None,
        }
    }

    fn origin() -> Origin {
        Origin {
            protocol: Protocol::Http2,
            environment: Environment::Production,
        }
    }

    fn kinds(events: &[DeviceEvent]) -> Vec<DeviceEventKind> {
        events.iter().map(|e| e.kind).collect()
    }

    fn ids(list: impl IntoIterator<Item = Notification>) -> Vec<u32> {
        list.into_iter()
            .map(|n| n.identifier.map_or(0, |i| i.as_u32()))
            .collect()
    }

    fn later() -> Option<u32> {
        Some(NOW + 3600)
    }

    #[test]
    fn unknown_and_unregistered_tokens_take_no_part() {
        let mut d = Devices::new(Limits::default());
        let n = note(1, 1, "com.a", later(), None);
        assert!(d.on_accepted(None, origin(), &n, NOW_MS).is_empty());
        let gone = TokenRecord {
            unregistered_at: Some(5),
            ..record(1, false)
        };
        assert!(d.on_accepted(Some(&gone), origin(), &n, NOW_MS).is_empty());
        assert!(d.is_empty());
    }

    #[test]
    fn online_device_displays_at_once_even_with_expiry_zero() {
        let mut d = Devices::new(Limits::default());
        let r = record(1, true);
        let ev = d.on_accepted(
            Some(&r),
            origin(),
            &note(1, 1, "com.a", Some(0), None),
            NOW_MS,
        );
        assert_eq!(kinds(&ev), vec![DeviceEventKind::Delivered]);
        let v = d.view(&tok(1), true);
        assert!(v.stored.is_empty());
        assert_eq!(ids(v.inbox.into_iter().map(|x| x.notification)), vec![1]);
    }

    #[test]
    fn offline_keeps_one_per_app_and_replaces() {
        let mut d = Devices::new(Limits::default());
        let r = record(1, false);
        let ev = d.on_accepted(
            Some(&r),
            origin(),
            &note(1, 1, "com.a", later(), None),
            NOW_MS,
        );
        assert_eq!(kinds(&ev), vec![DeviceEventKind::Stored]);
        let ev = d.on_accepted(
            Some(&r),
            origin(),
            &note(1, 2, "com.b", later(), None),
            NOW_MS,
        );
        assert_eq!(kinds(&ev), vec![DeviceEventKind::Stored]);
        let ev = d.on_accepted(
            Some(&r),
            origin(),
            &note(1, 3, "com.a", later(), None),
            NOW_MS,
        );
        assert_eq!(kinds(&ev), vec![DeviceEventKind::Replaced]);
        assert_eq!(ev[0].detail["by"], "one-per-app");
        assert_eq!(ev[0].detail["replaced"]["identifier"], "00000001");
        let v = d.view(&tok(1), false);
        assert!(v.inbox.is_empty());
        // Oldest first: com.b (2), then the replacement for com.a (3).
        assert_eq!(
            ids(v.stored.into_iter().map(|s| s.notification)),
            vec![2, 3]
        );
    }

    #[test]
    fn later_collapse_id_replaces_the_stored_one() {
        let mut d = Devices::new(Limits::default());
        let r = record(1, false);
        d.on_accepted(
            Some(&r),
            origin(),
            &note(1, 1, "com.a", None, Some("score")),
            NOW_MS,
        );
        let ev = d.on_accepted(
            Some(&r),
            origin(),
            &note(1, 2, "com.a", None, Some("score")),
            NOW_MS,
        );
        assert_eq!(kinds(&ev), vec![DeviceEventKind::Replaced]);
        assert_eq!(ev[0].detail["by"], "collapse-id");
        let v = d.view(&tok(1), false);
        assert_eq!(
            ids(v.stored.iter().map(|s| s.notification.clone())),
            vec![2]
        );
        // No expiry: the 30-day store policy.
        assert_eq!(
            v.stored[0].expires_at,
            u64::from(NOW) + DEFAULT_RETENTION_SECS
        );
    }

    #[test]
    fn collapse_id_coalesces_on_the_screen() {
        let mut d = Devices::new(Limits::default());
        let r = record(1, true);
        for (id, collapse, topic) in [
            (1, Some("score"), "com.a"),
            (2, None, "com.a"),
            (3, Some("score"), "com.b"),
            (4, Some("score"), "com.a"),
        ] {
            let ev = d.on_accepted(
                Some(&r),
                origin(),
                &note(1, id, topic, None, collapse),
                NOW_MS,
            );
            assert_eq!(kinds(&ev), vec![DeviceEventKind::Delivered]);
            if id == 4 {
                assert_eq!(ev[0].detail["collapsed"]["identifier"], "00000001");
            } else {
                assert!(ev[0].detail.get("collapsed").is_none());
            }
        }
        let v = d.view(&tok(1), true);
        // 1 was replaced by 4 (same app and collapse id), which goes last; 3 is another app.
        assert_eq!(
            ids(v.inbox.into_iter().map(|x| x.notification)),
            vec![2, 3, 4]
        );
    }

    #[test]
    fn expiry_zero_or_past_is_not_stored() {
        let mut d = Devices::new(Limits::default());
        let r = record(1, false);
        let ev = d.on_accepted(
            Some(&r),
            origin(),
            &note(1, 1, "com.a", Some(0), None),
            NOW_MS,
        );
        assert_eq!(kinds(&ev), vec![DeviceEventKind::Expired]);
        let ev = d.on_accepted(
            Some(&r),
            origin(),
            &note(1, 2, "com.a", Some(NOW), None),
            NOW_MS,
        );
        assert_eq!(kinds(&ev), vec![DeviceEventKind::Expired]);
        assert!(d.view(&tok(1), false).stored.is_empty());
        assert!(d.on_online(&tok(1), NOW_MS).is_empty());
    }

    #[test]
    fn a_broadcast_is_kept_per_channel_not_per_app() {
        let mut d = Devices::new(Limits::default());
        let r = record(1, false);
        let via = |d: &mut Devices, id, ch| {
            let n = note(1, id, "com.a.push-type.liveactivity", Some(NOW + 60), None);
            kinds(&d.on_accepted_via(Some(&r), origin(), &n, ch, NOW_MS))
        };
        assert_eq!(via(&mut d, 1, Some("A")), vec![DeviceEventKind::Stored]);
        assert_eq!(via(&mut d, 2, Some("B")), vec![DeviceEventKind::Stored]);
        assert_eq!(via(&mut d, 3, None), vec![DeviceEventKind::Stored]);
        assert_eq!(via(&mut d, 4, Some("A")), vec![DeviceEventKind::Replaced]);
        assert_eq!(via(&mut d, 5, None), vec![DeviceEventKind::Replaced]);
        let stored = d.view(&tok(1), false).stored;
        assert_eq!(
            stored
                .iter()
                .map(|s| s.channel.as_deref())
                .collect::<Vec<_>>(),
            vec![Some("B"), Some("A"), None]
        );
        assert_eq!(
            ids(stored.into_iter().map(|s| s.notification)),
            vec![2, 4, 5]
        );
    }

    #[test]
    fn coming_online_delivers_in_order_and_expires_the_stale() {
        let mut d = Devices::new(Limits::default());
        let r = record(1, false);
        d.on_accepted(
            Some(&r),
            origin(),
            &note(1, 1, "com.a", Some(NOW + 10), None),
            NOW_MS,
        );
        d.on_accepted(
            Some(&r),
            origin(),
            &note(1, 2, "com.b", Some(NOW + 100), None),
            NOW_MS,
        );
        d.on_accepted(Some(&r), origin(), &note(1, 3, "com.c", None, None), NOW_MS);
        let ev = d.on_online(&tok(1), NOW_MS + 50_000);
        assert_eq!(
            kinds(&ev),
            vec![
                DeviceEventKind::Expired,
                DeviceEventKind::Delivered,
                DeviceEventKind::Delivered
            ]
        );
        assert_eq!(ids(ev.into_iter().map(|e| e.notification)), vec![1, 2, 3]);
        let v = d.view(&tok(1), true);
        assert!(v.stored.is_empty());
        assert_eq!(
            ids(v.inbox.iter().map(|x| x.notification.clone())),
            vec![2, 3]
        );
        assert_eq!(v.inbox[0].delivered_at_ms, NOW_MS + 50_000);
        // Nothing left to deliver a second time.
        assert!(d.on_online(&tok(1), NOW_MS + 60_000).is_empty());
    }

    #[test]
    fn online_events_keep_their_origin() {
        let mut d = Devices::new(Limits::default());
        let r = record(1, false);
        let legacy = Origin {
            protocol: Protocol::Legacy,
            environment: Environment::Sandbox,
        };
        d.on_accepted(
            Some(&r),
            legacy,
            &note(1, 1, "com.a", later(), None),
            NOW_MS,
        );
        let ev = d.on_online(&tok(1), NOW_MS);
        assert_eq!(ev[0].origin, legacy);
        let e = ev[0].clone().into_event(0);
        assert_eq!(e.kind, EventKind::Delivered);
        assert_eq!(e.connection, 0);
        assert_eq!(e.protocol, Protocol::Legacy);
        assert_eq!(e.environment, Environment::Sandbox);
    }

    #[test]
    fn bounds_hold() {
        let limits = Limits {
            max_devices: 2,
            inbox_per_device: 3,
            stored_per_device: 2,
        };
        let mut d = Devices::new(limits);
        let on = record(1, true);
        for id in 1..=5 {
            d.on_accepted(
                Some(&on),
                origin(),
                &note(1, id, "com.a", None, None),
                NOW_MS,
            );
        }
        let v = d.view(&tok(1), true);
        assert_eq!(
            ids(v.inbox.into_iter().map(|x| x.notification)),
            vec![3, 4, 5]
        );
        let off = record(2, false);
        d.on_accepted(
            Some(&off),
            origin(),
            &note(2, 1, "com.a", None, None),
            NOW_MS,
        );
        d.on_accepted(
            Some(&off),
            origin(),
            &note(2, 2, "com.b", None, None),
            NOW_MS,
        );
        let ev = d.on_accepted(
            Some(&off),
            origin(),
            &note(2, 3, "com.c", None, None),
            NOW_MS,
        );
        assert_eq!(
            kinds(&ev),
            vec![DeviceEventKind::Expired, DeviceEventKind::Stored]
        );
        assert_eq!(ids([ev[0].notification.clone()]), vec![1]);
        assert_eq!(d.view(&tok(2), false).stored.len(), 2);
        // A third device evicts the least recently touched (device 1).
        let third = record(3, true);
        d.on_accepted(
            Some(&third),
            origin(),
            &note(3, 1, "com.a", None, None),
            NOW_MS,
        );
        assert_eq!(d.len(), 2);
        assert!(d.view(&tok(1), true).inbox.is_empty());
        assert_eq!(d.view(&tok(2), false).stored.len(), 2);
    }

    #[test]
    fn forget_drops_a_device() {
        let mut d = Devices::new(Limits::default());
        let r = record(1, false);
        d.on_accepted(Some(&r), origin(), &note(1, 1, "com.a", None, None), NOW_MS);
        d.forget(&tok(1));
        assert!(d.view(&tok(1), false).stored.is_empty());
        assert!(d.on_online(&tok(1), NOW_MS).is_empty());
    }
}
