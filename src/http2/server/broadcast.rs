//! The HTTP/2 listeners' hook for the broadcast family (`/1/apps/…` channel management and
//! `/4/broadcasts/…`, PROTOCOL.md 2.11): runs [`crate::broadcast::decide`] with this
//! connection's auth state, journals, fans a broadcast out to subscribed devices, and answers.

use super::ApnsHandler;
use crate::broadcast::liveactivity::{self, Route as LaRoute};
use crate::broadcast::request::Fields;
use crate::broadcast::{self, BroadcastReason, Done, Route};
use crate::engine::devices::Origin;
use crate::engine::rules::{Action, Http2Action};
use crate::engine::Verdict;
use crate::http2::conn::Request;
use crate::http2::driver::Response;
use crate::journal::EventKind;
use crate::model::{DeviceToken, Notification, Protocol};
use bytes::Bytes;
use serde_json::json;

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
    /// The duration is how long a scenario rule holds the answer.
    pub(super) fn broadcast(
        &self,
        req: &Request,
    ) -> (Option<Response>, Option<std::time::Duration>) {
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
        let settings = &self.core.settings.broadcast;
        let now_ms = self.core.clock.now_ms();
        let mut raise = false;
        let decision = {
            let mut store = self.core.broadcast.lock();
            broadcast::decide(
                method,
                path,
                &fields,
                req.body.clone(),
                self.apns.environment(),
                &mut store,
                settings,
                now_ms,
                rand::random,
                || self.apns.generate_id(),
                |bundle| {
                    raise = self.broadcast_auth(bundle, &fields)?;
                    Ok(())
                },
            )
        };
        let api = match &decision.route {
            Some(Route::Broadcast(_)) => "broadcast",
            Some(Route::Manage(..)) => "channel-management",
            None if path.starts_with("/4/") => "broadcast",
            None => "channel-management",
        };
        let rid = decision.request_id.clone();
        let mut then = Vec::new();
        if raise {
            then.push(self.apns.raise_command());
        }
        let event = |kind| self.apns.event(kind);
        let mut hold = None;
        let mut rule = None;
        let mut outcome = decision.outcome;
        // Scenario rules see a valid broadcast as a notification with an empty token, topic
        // `<bundle>.push-type.liveactivity`, push type `liveactivity`: `reject` and `delay` apply.
        if let Ok(Done::Broadcast(b)) = &outcome {
            if let Verdict::Fault(f) = self
                .core
                .engine
                .decide(&self.apns.conn_state(), &head_of(b, None))
            {
                rule = Some(f.journal_detail());
                hold = f.delay;
                match f.action {
                    Action::Http2(Http2Action::Reject { reason, .. }) => {
                        outcome = Err(BroadcastReason::from_apns(reason)
                            .unwrap_or(BroadcastReason::InternalServerError));
                    }
                    Action::Http2(Http2Action::Delay { ms }) => {
                        hold =
                            Some(hold.unwrap_or_default() + std::time::Duration::from_millis(ms));
                    }
                    _ => {}
                }
            }
        }
        let response = match outcome {
            Err(reason) => {
                if reason == BroadcastReason::ExpiredProviderToken {
                    self.apns.with_token(|t| t.expired());
                }
                let channel = fields.get("apns-channel-id").ok().flatten();
                self.core.journal.record(
                    event(EventKind::Rejected)
                        .status(reason.status(), reason.as_str())
                        .detail(json!({
                            "api": api,
                            "apns_request_id": rid,
                            "method": method,
                            "path": path,
                            "channel": channel,
                            "rule": rule,
                        })),
                );
                Response {
                    status: reason.status(),
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
                let (op, bundle) = match &decision.route {
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
                    }
                })));
                let mut h = vec![("apns-request-id".to_string(), rid)];
                h.extend(m.headers);
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
        (Some(response), hold)
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
