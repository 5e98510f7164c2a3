//! The HTTP/2 listeners' hook for the broadcast family (`/1/apps/…` channel management and
//! `/4/broadcasts/…`, PROTOCOL.md 2.11): runs [`crate::broadcast::decide`] with this
//! connection's auth state, journals, fans a broadcast out to subscribed devices, and answers.

use super::ApnsHandler;
use crate::broadcast::liveactivity::{self, Route as LaRoute};
use crate::broadcast::request::{Fields, Host};
use crate::broadcast::{self, BroadcastReason, Done, Route};
use crate::engine::devices::Origin;
use crate::engine::rules::{Action, Api, Http2Action};
use crate::engine::Verdict;
use crate::http2::apns::Cut;
use crate::http2::conn::Request;
use crate::http2::driver::{Command, Response};
use crate::journal::EventKind;
use crate::model::{DeviceToken, Notification, Protocol};
use bytes::Bytes;
use serde_json::json;
use std::time::Duration;

impl ApnsHandler {
    /// Auth as on `/3/device` (PROTOCOL.md 2.8, 2.9), on the connection's own token state:
    /// a certificate must be of this environment and name the app; a JWT goes through the same
    /// checks. Returns whether the stream limit may now rise (first valid JWT, PROTOCOL.md 2.2).
    fn broadcast_auth(&self, bundle: &str, fields: &Fields<'_>) -> Result<bool, BroadcastReason> {
        if let Some(forced) = *self.core.http2.forced.read() {
            return Err(
                BroadcastReason::from_apns(forced).unwrap_or(BroadcastReason::InternalServerError)
            );
        }
        if let Some(client) = self.apns.client() {
            if !client.covers(self.apns.environment()) {
                return Err(BroadcastReason::BadCertificateEnvironment);
            }
            // [inferred] A certificate for another app: A-BERR's TopicMismatch.
            return if client.topics.iter().any(|t| t == bundle) {
                Ok(false)
            } else {
                Err(BroadcastReason::TopicMismatch)
            };
        }
        let environment = self.apns.environment();
        let now = self.core.clock.now_secs();
        let checked = self.apns.with_token(|token| {
            let keys = self.core.http2.keys.read();
            let checked = token.check(
                fields.raw("authorization"),
                Some(bundle),
                environment,
                now,
                &keys,
                &self.core.http2.cache,
            );
            if checked == Err(crate::http2::reason::Reason::ExpiredProviderToken) {
                token.expired();
            }
            checked
        });
        match checked {
            Ok(_) => Ok(self.apns.take_raise()),
            Err(r) => {
                Err(BroadcastReason::from_apns(r).unwrap_or(BroadcastReason::InvalidProviderToken))
            }
        }
    }

    /// Answers one broadcast-family request; journals before the client can see the answer.
    /// Scenario rules apply as on `/3/device` (PROTOCOL.md 2.11 and the rules' own facts): a
    /// broadcast meets them once it passed its checks, a management call once authenticated
    /// and before it changes anything, so a fault never leaves a half-done call.
    pub(super) fn broadcast(&self, req: &Request) -> Outcome {
        let headers: Vec<(Bytes, Bytes)> = req
            .headers
            .iter()
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect();
        let fields = Fields(&headers);
        let text = |n: &str| {
            fields
                .raw(n)
                .and_then(|v| std::str::from_utf8(v).ok())
                .unwrap_or("")
        };
        let (method, path) = (text(":method"), text(":path"));
        let channel = fields.get("apns-channel-id").ok().flatten();
        let event = |kind| self.apns.event(kind);
        let stream_id = req.stream_id;
        let api_of = |route: &Option<Route>| match route {
            Some(Route::Broadcast(_)) => Api::Broadcast,
            Some(Route::Manage(..)) => Api::ChannelManagement,
            None if path.starts_with("/4/") => Api::Broadcast,
            None => Api::ChannelManagement,
        };
        // After a scripted GOAWAY or close, later streams are not processed (as on /3/device).
        if self.apns.is_cut(stream_id) {
            self.core
                .journal
                .record(event(EventKind::Discarded).detail(json!({
                    "stream_id": stream_id,
                    "after": "goaway-or-close",
                    "api": api_of(&crate::broadcast::request::route(method, path).ok()),
                    "path": path,
                    "channel": channel,
                })));
            return Outcome::default();
        }
        let settings = &self.core.settings.broadcast;
        let now_ms = self.core.clock.now_ms();
        let mut raise = false;
        let admitted = broadcast::admit(
            method,
            path,
            host_of(&fields, &self.apns),
            &fields,
            settings,
            || self.apns.generate_id(),
            |bundle| {
                raise = self.broadcast_auth(bundle, &fields)?;
                Ok(())
            },
        );
        let api = api_of(&admitted.route);
        let rid = admitted.request_id.clone();
        let mut then = Vec::new();
        if raise {
            then.push(self.apns.raise_command());
        }
        let mut shaped = Shaped::default();
        let outcome = match admitted.outcome {
            Err(r) => Err(r),
            Ok(route @ Route::Manage(..)) => {
                shaped = self.rules(&head_of_manage(&route), api, channel, stream_id);
                match shaped.reject {
                    Some(r) => Err(r),
                    None if shaped.silent.is_some() => Err(BroadcastReason::InternalServerError),
                    None => self.run(&route, &fields, req.body.clone(), now_ms),
                }
            }
            Ok(route @ Route::Broadcast(_)) => {
                match self.run(&route, &fields, req.body.clone(), now_ms) {
                    Ok(Done::Broadcast(b)) => {
                        shaped = self.rules(&head_of(&b, None), api, channel, stream_id);
                        match shaped.reject {
                            Some(r) => Err(r),
                            None => Ok(Done::Broadcast(b)),
                        }
                    }
                    other => other,
                }
            }
        };
        self.apns.decided(stream_id);
        then.extend(shaped.then);
        let rule = shaped.rule;
        // The detail of a request that was cut or refused (built only on those paths).
        let refused = || {
            json!({
                "api": api,
                "apns_request_id": rid,
                "method": method,
                "path": path,
                "channel": channel,
                "rule": rule,
            })
        };
        if let Some(cmd) = shaped.silent {
            // GOAWAY, RST_STREAM or close instead of an answer: nothing was done.
            self.core
                .journal
                .record(event(EventKind::Dropped).detail(refused()));
            then.push(cmd);
            return Outcome {
                response: None,
                hold: shaped.hold,
                commands: then,
            };
        }
        let response = match outcome {
            Err(reason) => {
                if reason == BroadcastReason::ExpiredProviderToken {
                    self.apns.with_token(|t| t.expired());
                }
                let status = shaped.status.unwrap_or(reason.status());
                self.core.journal.record(
                    event(EventKind::Rejected)
                        .status(status, reason.as_str())
                        .detail(refused()),
                );
                Response {
                    status,
                    headers: vec![
                        ("content-type".into(), "application/json".into()),
                        ("apns-request-id".into(), rid),
                    ],
                    body: Some(Bytes::from(broadcast::reason::body(
                        reason,
                        settings.spaced_service_unavailable,
                    ))),
                    then,
                }
            }
            Ok(Done::Managed(m)) => {
                let (op, bundle) = match &admitted.route {
                    Some(Route::Manage(op, b)) => (Some(*op), b.as_str()),
                    _ => (None, ""),
                };
                self.core.journal.record(event(EventKind::Observation).detail(json!({
                    "channel_management": {
                        "op": op,
                        "bundle_id": bundle,
                        "status": m.status,
                        "apns_request_id": rid,
                        "channel": m.channel.as_ref().map(|c| &c.id),
                        "message_storage_policy": m.channel.as_ref().map(|c| c.message_storage_policy),
                        "rule": rule,
                    }
                })));
                let mut h = vec![("apns-request-id".into(), rid)];
                h.extend(m.headers.into_iter().map(|(n, v)| (n.into(), v)));
                let body = m.body.map(|b| {
                    h.push(("content-type".into(), "application/json".into()));
                    Bytes::from(serde_json::to_vec(&b).unwrap_or_default())
                });
                Response {
                    status: m.status,
                    headers: h,
                    body,
                    then,
                }
            }
            Ok(Done::Broadcast(b)) => {
                let apns_id = b.apns_id.clone().unwrap_or_else(|| self.apns.generate_id());
                // PROTOCOL.md 2.10: the HTTP answer stays Apple's; what a device would do is recorded.
                let verdict = liveactivity::check(&b.payload, LaRoute::Broadcast);
                let channel_detail = json!({
                    "rule": rule,
                    "channel": b.channel.id,
                    "apns_request_id": rid,
                    "message_storage_policy": b.channel.message_storage_policy,
                    "subscribers": b.channel.subscribers.len(),
                    "live_activity": verdict,
                });
                let head = head_of(&b, Some(apns_id.clone()));
                let origin = Origin {
                    protocol: Protocol::Http2,
                    environment: self.apns.environment(),
                };
                let mut per_device = Vec::new();
                for n in broadcast::fan_out(&b, settings, now_ms) {
                    for d in
                        self.core
                            .engine
                            .device_events_via(origin, &n, Some(&b.channel.id), now_ms)
                    {
                        let mut e = d.into_event(self.apns.id());
                        let mut detail = e.detail.take().unwrap_or_else(|| json!({}));
                        detail["channel"] = json!(b.channel.id);
                        detail["live_activity"] = json!(verdict);
                        per_device.push(e.detail(detail));
                    }
                }
                self.core.journal.record_batch(
                    std::iter::once(
                        event(EventKind::Accepted)
                            .notification(head)
                            .detail(channel_detail),
                    )
                    .chain(per_device),
                );
                Response {
                    status: 200,
                    headers: vec![("apns-request-id".into(), rid), ("apns-id".into(), apns_id)],
                    body: None,
                    then,
                }
            }
        };
        Outcome {
            response: Some(response),
            hold: shaped.hold,
            commands: Vec::new(),
        }
    }

    /// Runs an admitted operation on the channel store.
    fn run(
        &self,
        route: &Route,
        fields: &Fields<'_>,
        body: Bytes,
        now_ms: u64,
    ) -> Result<Done, BroadcastReason> {
        let mut store = self.core.broadcast.lock();
        broadcast::run(
            route,
            fields,
            body,
            self.apns.environment(),
            &mut store,
            &self.core.settings.broadcast,
            now_ms,
            rand::random,
        )
    }

    /// What the scenario rules make of one broadcast-family request (the actions of
    /// `/3/device`, PROTOCOL.md 2.2 for GOAWAY, reset and close).
    fn rules(
        &self,
        head: &Notification,
        api: Api,
        channel: Option<&str>,
        stream_id: u32,
    ) -> Shaped {
        let Verdict::Fault(f) =
            self.core
                .engine
                .decide_on(&self.apns.conn_state(), head, api, channel)
        else {
            return Shaped::default();
        };
        let mut s = Shaped {
            rule: Some(f.journal_detail()),
            hold: f.delay,
            ..Shaped::default()
        };
        let Action::Http2(action) = f.action else {
            return s;
        };
        match action {
            Http2Action::Reject { reason, status, .. } => {
                s.reject = Some(
                    BroadcastReason::from_apns(reason)
                        .unwrap_or(BroadcastReason::InternalServerError),
                );
                s.status = status;
            }
            Http2Action::Delay { ms } => {
                s.hold = Some(s.hold.unwrap_or_default() + Duration::from_millis(ms));
            }
            Http2Action::Settings(u) => s.then.push(Command::Settings(u)),
            Http2Action::IgnorePing => s.then.push(Command::IgnorePing(true)),
            a => match self.apns.cut(&a, stream_id) {
                Some(Cut::Silent(cmd)) => s.silent = Some(cmd),
                Some(Cut::After(cmd)) => s.then.push(cmd),
                None => {}
            },
        }
        s
    }
}

/// How the broadcast hook answers: the response (none when a rule cut the stream), how long
/// to hold it, and the commands to run instead of one.
#[derive(Default)]
pub(super) struct Outcome {
    pub(super) response: Option<Response>,
    pub(super) hold: Option<Duration>,
    pub(super) commands: Vec<Command>,
}

/// A fired rule's effect on a broadcast-family request.
#[derive(Default)]
struct Shaped {
    rule: Option<serde_json::Value>,
    reject: Option<BroadcastReason>,
    status: Option<u16>,
    hold: Option<Duration>,
    then: Vec<Command>,
    silent: Option<Command>,
}

/// The Apple host a request names (`:authority`, else SNI).
pub(super) fn host_of(fields: &Fields<'_>, apns: &crate::http2::apns::Session) -> Host {
    let authority = fields
        .raw(":authority")
        .and_then(|v| std::str::from_utf8(v).ok());
    Host::of(authority, apns.sni().as_deref())
}

/// What scenario rules see of a management call: no token, the app's bundle id as topic, no
/// push type (it is not a push); the `channel` and `api` keys tell it apart.
fn head_of_manage(route: &Route) -> Notification {
    let bundle = match route {
        Route::Manage(_, b) | Route::Broadcast(b) => b.as_str(),
    };
    Notification {
        token: DeviceToken::from_bytes(Bytes::new()),
        payload: Bytes::new(),
        identifier: None,
        expiry: None,
        priority: 10,
        topic: Some(bundle.into()),
        push_type: None,
        collapse_id: None,
        apns_id: None,
        command: None,
    }
}

/// The journal's notification for a broadcast: a broadcast has no device token, so the token
/// is empty and the channel stands in (detail `channel`).
fn head_of(b: &broadcast::send::Broadcast, apns_id: Option<String>) -> Notification {
    Notification {
        token: DeviceToken::from_bytes(Bytes::new()),
        payload: b.payload.clone(),
        identifier: None,
        expiry: b.expiry,
        priority: b.priority,
        topic: Some(broadcast::send::liveactivity_topic(&b.channel.bundle_id).into()),
        push_type: Some(crate::model::PushType::LiveActivity),
        collapse_id: b.collapse_id.clone(),
        apns_id,
        command: None,
    }
}
