//! Broadcast push and Live Activities (PROTOCOL.md 2.10–2.11; issue 13): the channel store, the
//! channel-management API, `/4/broadcasts`, Live Activity payload checks. Everything here is
//! sans-IO; `http2::server` hands broadcast-family requests to [`decide`] and runs the effects.

pub mod channels;
pub mod liveactivity;
pub mod manage;
pub mod reason;
pub mod request;
pub mod send;
pub mod settings;

pub use channels::{Channel, ChannelError, Channels, StoragePolicy};
pub use reason::BroadcastReason;
pub use request::{ManageOp, Route};
pub use settings::BroadcastSettings;

use crate::model::{DeviceToken, Environment, Notification};
use bytes::Bytes;
use request::Fields;

/// What a broadcast-family request came to, before it is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    /// A management call succeeded.
    Managed(manage::Managed),
    /// A broadcast passed every check and is to be fanned out.
    Broadcast(send::Broadcast),
}

/// One decided request: the request id to answer with, the route when it parsed, the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// `apns-request-id`: echoed when the request carried a valid one, else generated.
    pub request_id: String,
    /// The operation, when the path named one.
    pub route: Option<Route>,
    /// The answer.
    pub outcome: Result<Done, BroadcastReason>,
}

/// A request past its request id, route, auth and feature checks, or the reason it failed
/// there: the point where scenario rules may step in before the operation runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// `apns-request-id`: echoed when the request carried a valid one, else generated.
    pub request_id: String,
    /// The operation, when the path named one.
    pub route: Option<Route>,
    /// The route to run, or the reason to answer.
    pub outcome: Result<Route, BroadcastReason>,
}

/// The first half of [`decide`] (PROTOCOL.md 2.11): request id, route, auth (the caller's,
/// shared with `/3/device`), FeatureNotEnabled. Changes nothing.
pub fn admit(
    method: &str,
    path: &str,
    host: request::Host,
    fields: &Fields<'_>,
    settings: &BroadcastSettings,
    new_request_id: impl FnOnce() -> String,
    authenticate: impl FnOnce(&str) -> Result<(), BroadcastReason>,
) -> Admitted {
    let (request_id, id_error) = match request::request_id(fields) {
        Ok(Some(id)) => (id, None),
        Ok(None) => (new_request_id(), None),
        Err(r) => (new_request_id(), Some(r)),
    };
    let route = request::route(method, path).and_then(|r| {
        if host.serves(path.as_bytes()) {
            Ok(r)
        } else {
            Err(BroadcastReason::BadPath)
        }
    });
    let outcome = (|| {
        let route = route.clone()?;
        if let Some(r) = id_error {
            return Err(r);
        }
        let bundle = match &route {
            Route::Manage(_, b) | Route::Broadcast(b) => b.as_str(),
        };
        authenticate(bundle)?;
        if settings.disabled_apps.iter().any(|a| a == bundle) {
            return Err(BroadcastReason::FeatureNotEnabled);
        }
        Ok(route)
    })();
    Admitted {
        request_id,
        route: route.ok(),
        outcome,
    }
}

/// The second half of [`decide`]: the operation's own checks, and for a management call its
/// effect on `store`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    route: &Route,
    fields: &Fields<'_>,
    body: Bytes,
    env: Environment,
    store: &mut Channels,
    settings: &BroadcastSettings,
    now_ms: u64,
    random: impl FnMut() -> [u8; 16],
) -> Result<Done, BroadcastReason> {
    match route {
        Route::Manage(op, b) => {
            manage::manage(*op, b, fields, &body, env, store, settings, now_ms, random)
                .map(Done::Managed)
        }
        Route::Broadcast(b) => {
            send::check(b, fields, body, env, store, settings).map(Done::Broadcast)
        }
    }
}

/// Decides one broadcast-family request (PROTOCOL.md 2.11): [`admit`], then [`run`].
#[allow(clippy::too_many_arguments)]
pub fn decide(
    method: &str,
    path: &str,
    fields: &Fields<'_>,
    body: Bytes,
    env: Environment,
    store: &mut Channels,
    settings: &BroadcastSettings,
    now_ms: u64,
    random: impl FnMut() -> [u8; 16],
    new_request_id: impl FnOnce() -> String,
    authenticate: impl FnOnce(&str) -> Result<(), BroadcastReason>,
) -> Decision {
    let a = admit(
        method,
        path,
        request::Host::Other,
        fields,
        settings,
        new_request_id,
        authenticate,
    );
    Decision {
        request_id: a.request_id,
        route: a.route,
        outcome: a
            .outcome
            .and_then(|r| run(&r, fields, body, env, store, settings, now_ms, random)),
    }
}

/// The notification each subscriber's device gets from a broadcast: storage policy 0 → expiry 0
/// (never stored for an offline device); policy 1 → the most recent kept at most
/// `stored_message_secs` (A-CHAN: 8 hours), sooner if `apns-expiration` says so.
pub fn fan_out(
    b: &send::Broadcast,
    settings: &BroadcastSettings,
    now_ms: u64,
) -> Vec<Notification> {
    let cap = (now_ms / 1000).saturating_add(settings.stored_message_secs);
    let expiry = match b.channel.message_storage_policy {
        StoragePolicy::NoStorage => 0,
        StoragePolicy::MostRecent => match b.expiry {
            Some(e) => u64::from(e).min(cap),
            None => cap,
        },
    };
    let topic: std::sync::Arc<str> = send::liveactivity_topic(&b.channel.bundle_id).into();
    b.channel
        .subscribers
        .iter()
        .map(|t: &DeviceToken| Notification {
            token: t.clone(),
            payload: b.payload.clone(),
            identifier: None,
            expiry: Some(u32::try_from(expiry).unwrap_or(u32::MAX)),
            priority: b.priority,
            topic: Some(topic.clone()),
            push_type: Some(crate::model::PushType::LiveActivity),
            collapse_id: b.collapse_id.clone(),
            apns_id: b.apns_id.clone(),
            command: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[(&str, &str)]) -> Vec<(Bytes, Bytes)> {
        v.iter()
            .map(|(a, b)| {
                (
                    Bytes::copy_from_slice(a.as_bytes()),
                    Bytes::copy_from_slice(b.as_bytes()),
                )
            })
            .collect()
    }

    fn run(
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        store: &mut Channels,
        s: &BroadcastSettings,
        auth: Result<(), BroadcastReason>,
    ) -> Decision {
        decide(
            method,
            path,
            &Fields(&h(headers)),
            Bytes::from_static(br#"{"message-storage-policy":1,"push-type":"LiveActivity"}"#),
            Environment::Production,
            store,
            s,
            0,
            || [3; 16],
            || "generated".into(),
            |_| auth,
        )
    }

    #[test]
    fn order_request_id_route_auth_feature() {
        let mut store = Channels::new();
        let s = BroadcastSettings {
            disabled_apps: vec!["com.off".into()],
            ..BroadcastSettings::default()
        };
        let id = "123e4567-e89b-12d3-a456-426614174000";
        let d = run(
            "POST",
            "/1/apps/com.x/channels",
            &[("apns-request-id", id)],
            &mut store,
            &s,
            Ok(()),
        );
        assert_eq!(d.request_id, id);
        assert!(matches!(d.outcome, Ok(Done::Managed(ref m)) if m.status == 201));
        let d = run(
            "POST",
            "/1/apps/com.x/channels",
            &[("apns-request-id", "bad")],
            &mut store,
            &s,
            Ok(()),
        );
        assert_eq!(
            (d.request_id.as_str(), d.outcome),
            ("generated", Err(BroadcastReason::BadMessageId))
        );
        let d = run(
            "POST",
            "/1/nope",
            &[],
            &mut store,
            &s,
            Err(BroadcastReason::MissingProviderToken),
        );
        assert_eq!(d.outcome, Err(BroadcastReason::BadPath));
        let d = run(
            "POST",
            "/1/apps/com.x/channels",
            &[],
            &mut store,
            &s,
            Err(BroadcastReason::MissingProviderToken),
        );
        assert_eq!(d.outcome, Err(BroadcastReason::MissingProviderToken));
        let d = run(
            "POST",
            "/1/apps/com.off/channels",
            &[],
            &mut store,
            &s,
            Ok(()),
        );
        assert_eq!(d.outcome, Err(BroadcastReason::FeatureNotEnabled));
    }

    #[test]
    fn fan_out_follows_the_storage_policy() {
        let mut store = Channels::new();
        let s = BroadcastSettings::default();
        let now_ms = 1_700_000_000_000;
        let mut b = send::Broadcast {
            channel: store
                .create(
                    Environment::Production,
                    "com.x",
                    StoragePolicy::MostRecent,
                    10,
                    0,
                    || [1; 16],
                )
                .unwrap(),
            priority: 10,
            expiry: None,
            apns_id: None,
            collapse_id: None,
            topic: None,
            payload: Bytes::from_static(b"{}"),
        };
        b.channel
            .subscribers
            .insert(DeviceToken::from_hex("aa").unwrap());
        b.channel
            .subscribers
            .insert(DeviceToken::from_hex("bb").unwrap());
        let n = fan_out(&b, &s, now_ms);
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].expiry, Some(1_700_000_000 + 8 * 3600));
        assert_eq!(n[0].topic.as_deref(), Some("com.x.push-type.liveactivity"));
        b.expiry = Some(1_700_000_060);
        assert_eq!(fan_out(&b, &s, now_ms)[0].expiry, Some(1_700_000_060));
        b.expiry = Some(1_900_000_000);
        assert_eq!(
            fan_out(&b, &s, now_ms)[0].expiry,
            Some(1_700_000_000 + 8 * 3600),
            "capped at 8 hours"
        );
        b.channel.message_storage_policy = StoragePolicy::NoStorage;
        assert_eq!(fan_out(&b, &s, now_ms)[0].expiry, Some(0));
    }
}
