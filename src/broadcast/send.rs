//! The `/4/broadcasts/apps/<bundleId>` decision (PROTOCOL.md 2.11, A-LA, A-BERR) as a pure
//! function: headers, body and the channel store in; the push to fan out, or a reason.

use super::channels::{Channel, Channels, StoragePolicy};
use super::reason::BroadcastReason;
use super::request::{channel_id, is_uuid, Fields};
use super::settings::BroadcastSettings;
use crate::model::Environment;
use bytes::Bytes;

/// A broadcast that passed every check, ready to fan out to the channel's subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// The channel (with its subscribers as they are now).
    pub channel: Channel,
    /// 5 or 10.
    pub priority: u8,
    /// `apns-expiration` (UNIX seconds, 0 = now or never), `None` when absent.
    pub expiry: Option<u32>,
    /// `apns-id` when the provider sent one.
    pub apns_id: Option<String>,
    /// `apns-collapse-id` when sent.
    pub collapse_id: Option<String>,
    /// `apns-topic` when sent.
    pub topic: Option<String>,
    /// The JSON payload.
    pub payload: Bytes,
}

/// The topic a broadcast for `bundle_id` may carry (PROTOCOL.md 2.4 liveactivity suffix).
pub fn liveactivity_topic(bundle_id: &str) -> String {
    format!("{bundle_id}.push-type.liveactivity")
}

/// Checks one broadcast request, in this order **[inferred]**, the real order being unknown:
/// push type, topic, channel id, apns-id, priority, expiry, collapse id, payload.
pub fn check(
    bundle_id: &str,
    fields: &Fields<'_>,
    body: Bytes,
    env: Environment,
    store: &Channels,
    settings: &BroadcastSettings,
) -> Result<Broadcast, BroadcastReason> {
    // A-LA: `apns-push-type: liveactivity`; A-BERR spells it LiveActivity (PROTOCOL.md 2.11 [uncertain]).
    match fields.get("apns-push-type")? {
        None => return Err(BroadcastReason::MissingPushType),
        Some("liveactivity") => {}
        Some(v) if !settings.push_type_case_sensitive && v.eq_ignore_ascii_case("liveactivity") => {
        }
        Some(_) => return Err(BroadcastReason::InvalidPushType),
    }
    // PROTOCOL.md 2.11 [uncertain]: apns-topic optional; when sent, the bare bundle lacks the
    // push-type suffix (TopicDisallowed, A-BERR's wording) and any other app is TopicMismatch.
    let topic = fields.get("apns-topic")?;
    match topic {
        None if settings.require_topic => return Err(BroadcastReason::TopicDisallowed),
        None => {}
        Some(t) if t == liveactivity_topic(bundle_id) => {}
        Some(t) if t == bundle_id => return Err(BroadcastReason::TopicDisallowed),
        Some(_) => return Err(BroadcastReason::TopicMismatch),
    }
    let id = channel_id(fields)?;
    let channel = store
        .get(env, bundle_id, id)
        .map_err(|_| BroadcastReason::ChannelNotRegistered)?;
    let apns_id = match fields.get("apns-id")? {
        Some(v) if is_uuid(v) => Some(v.to_owned()),
        Some(_) => return Err(BroadcastReason::BadMessageId),
        None => None,
    };
    // PROTOCOL.md 2.10: priority 5 or 10 (10 when absent).
    let priority = match fields.get("apns-priority")? {
        None | Some("10") => 10,
        Some("5") => 5,
        Some(_) => return Err(BroadcastReason::BadPriority),
    };
    let expiry = match fields.get("apns-expiration")? {
        None => None,
        Some(v) => Some(
            v.parse::<u32>()
                .ok()
                .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(BroadcastReason::BadExpirationDate)?,
        ),
    };
    // A-BERR: a channel with no message storage accepts only expiry 0.
    if channel.message_storage_policy == StoragePolicy::NoStorage {
        match expiry {
            Some(0) => {}
            None if !settings.missing_expiry_rejected => {}
            _ => return Err(BroadcastReason::BadExpirationDate),
        }
    }
    let collapse_id = fields.get("apns-collapse-id")?.map(str::to_owned);
    if collapse_id
        .as_ref()
        .is_some_and(|c| c.len() > crate::model::wire::MAX_COLLAPSE_ID_BYTES)
    {
        return Err(BroadcastReason::BadRequestParams);
    }
    if body.is_empty() {
        return Err(BroadcastReason::PayloadEmpty);
    }
    if body.len() > settings.max_payload {
        return Err(BroadcastReason::PayloadTooLarge);
    }
    // PROTOCOL.md 2.5: broadcast has BadRequestPayload for a body that is not JSON.
    if !serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| v.is_object()) {
        return Err(BroadcastReason::BadRequestPayload);
    }
    Ok(Broadcast {
        channel: channel.clone(),
        priority,
        expiry,
        apns_id,
        collapse_id,
        topic: topic.map(str::to_owned),
        payload: body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use BroadcastReason::*;

    const P: Environment = Environment::Production;
    const BODY: &str = r#"{"aps":{"event":"update","timestamp":1,"content-state":{}}}"#;

    fn setup() -> (Channels, String, String) {
        let mut c = Channels::new();
        let keep = c
            .create(P, "com.x", StoragePolicy::MostRecent, 10, 0, || [1; 16])
            .unwrap()
            .id;
        let none = c
            .create(P, "com.x", StoragePolicy::NoStorage, 10, 0, || [2; 16])
            .unwrap()
            .id;
        (c, keep, none)
    }

    fn run(
        store: &Channels,
        channel: &str,
        extra: &[(&str, &str)],
        drop: &[&str],
        body: &str,
        s: &BroadcastSettings,
    ) -> Result<Broadcast, BroadcastReason> {
        let mut v: Vec<(String, String)> = vec![
            ("apns-push-type".into(), "liveactivity".into()),
            ("apns-channel-id".into(), channel.into()),
        ];
        v.retain(|(n, _)| !drop.contains(&n.as_str()));
        for (n, val) in extra {
            v.retain(|(k, _)| k != n);
            v.push(((*n).into(), (*val).into()));
        }
        let h: Vec<(Bytes, Bytes)> = v
            .into_iter()
            .map(|(a, b)| (Bytes::from(a), Bytes::from(b)))
            .collect();
        check(
            "com.x",
            &Fields(&h),
            Bytes::copy_from_slice(body.as_bytes()),
            P,
            store,
            s,
        )
    }

    /// Channel, extra headers, dropped headers, body, expected outcome.
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [&'a str],
        &'a str,
        Result<(), BroadcastReason>,
    );

    #[test]
    fn table() {
        let s = BroadcastSettings::default();
        let (store, keep, none) = setup();
        let unknown = crate::broadcast::channels::encode_id([9; 16]);
        let cases: &[Case] = &[
            (&keep, &[], &[], BODY, Ok(())),
            (
                &keep,
                &[("apns-push-type", "LiveActivity")],
                &[],
                BODY,
                Ok(()),
            ),
            (
                &keep,
                &[
                    ("apns-topic", "com.x.push-type.liveactivity"),
                    ("apns-priority", "5"),
                    ("apns-expiration", "0"),
                ],
                &[],
                BODY,
                Ok(()),
            ),
            (&none, &[("apns-expiration", "0")], &[], BODY, Ok(())),
            (
                &none,
                &[("apns-expiration", "1800000000")],
                &[],
                BODY,
                Err(BadExpirationDate),
            ),
            (&none, &[], &[], BODY, Err(BadExpirationDate)),
            (
                &keep,
                &[("apns-expiration", "soon")],
                &[],
                BODY,
                Err(BadExpirationDate),
            ),
            (&keep, &[], &["apns-push-type"], BODY, Err(MissingPushType)),
            (
                &keep,
                &[("apns-push-type", "alert")],
                &[],
                BODY,
                Err(InvalidPushType),
            ),
            (
                &keep,
                &[("apns-topic", "com.x")],
                &[],
                BODY,
                Err(TopicDisallowed),
            ),
            (
                &keep,
                &[("apns-topic", "com.y.push-type.liveactivity")],
                &[],
                BODY,
                Err(TopicMismatch),
            ),
            (
                &keep,
                &[],
                &["apns-channel-id"],
                BODY,
                Err(MissingChannelId),
            ),
            ("!!", &[], &[], BODY, Err(BadChannelId)),
            (&unknown, &[], &[], BODY, Err(ChannelNotRegistered)),
            (&keep, &[("apns-id", "nope")], &[], BODY, Err(BadMessageId)),
            (
                &keep,
                &[("apns-priority", "1")],
                &[],
                BODY,
                Err(BadPriority),
            ),
            (
                &keep,
                &[("apns-collapse-id", &"c".repeat(65))],
                &[],
                BODY,
                Err(BadRequestParams),
            ),
            (&keep, &[], &[], "", Err(PayloadEmpty)),
            (&keep, &[], &[], "{oops", Err(BadRequestPayload)),
        ];
        for (i, (ch, extra, drop, body, want)) in cases.iter().enumerate() {
            let got = run(&store, ch, extra, drop, body, &s).map(|_| ());
            assert_eq!(&got, want, "case {i}");
        }
        let big = format!(r#"{{"aps":{{}},"x":"{}"}}"#, "a".repeat(4096));
        assert_eq!(
            run(&store, &keep, &[], &[], &big, &s).map(|_| ()),
            Err(PayloadTooLarge)
        );
    }

    #[test]
    fn settings_flip_the_uncertain_points() {
        let (store, keep, none) = setup();
        let s = BroadcastSettings {
            missing_expiry_rejected: false,
            require_topic: true,
            push_type_case_sensitive: true,
            ..BroadcastSettings::default()
        };
        let topic = ("apns-topic", "com.x.push-type.liveactivity");
        assert!(run(&store, &none, &[topic], &[], BODY, &s).is_ok());
        assert_eq!(
            run(&store, &keep, &[], &[], BODY, &s).map(|_| ()),
            Err(TopicDisallowed)
        );
        assert_eq!(
            run(
                &store,
                &keep,
                &[topic, ("apns-push-type", "LiveActivity")],
                &[],
                BODY,
                &s
            )
            .map(|_| ()),
            Err(InvalidPushType)
        );
    }
}
