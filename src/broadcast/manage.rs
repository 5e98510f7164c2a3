//! The channel-management API (PROTOCOL.md 2.11, A-CHAN) as a pure function: a parsed request
//! and the channel store in, the answer out. Auth and the request id are settled before.

use super::channels::{Channel, ChannelError, Channels, StoragePolicy};
use super::reason::BroadcastReason;
use super::request::{channel_id, Fields, ManageOp};
use super::settings::BroadcastSettings;
use crate::model::Environment;
use serde_json::{json, Value};

/// A successful management call, before the request id is added.
#[derive(Debug, Clone, PartialEq)]
pub struct Managed {
    /// 201 create, 200 read and list, 204 delete (A-CHAN).
    pub status: u16,
    /// Extra response headers (`apns-channel-id` on create).
    pub headers: Vec<(String, String)>,
    /// JSON body (read, list); `None` = no DATA at all.
    pub body: Option<Value>,
    /// The channel concerned (create, read, delete).
    pub channel: Option<Channel>,
}

/// The create body: `{"message-storage-policy":0|1,"push-type":"LiveActivity"}` (A-CHAN).
/// Empty → PayloadEmpty; not a JSON object → BadRequestPayload; no push-type → MissingPushType;
/// another push type → InvalidPushType ("only LiveActivity", A-BERR); policy missing or not 0/1
/// → BadRequestParams **[inferred]**. The casing of `LiveActivity` follows the same setting as
/// the send header (PROTOCOL.md 2.11 [uncertain]): node-apn 8 writes `liveactivity` here.
pub fn parse_create_body(
    body: &[u8],
    case_sensitive: bool,
) -> Result<StoragePolicy, BroadcastReason> {
    if body.is_empty() {
        return Err(BroadcastReason::PayloadEmpty);
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| BroadcastReason::BadRequestPayload)?;
    let o = v.as_object().ok_or(BroadcastReason::BadRequestPayload)?;
    match o.get("push-type") {
        None => return Err(BroadcastReason::MissingPushType),
        Some(Value::String(s)) if s == "LiveActivity" => {}
        Some(Value::String(s)) if !case_sensitive && s.eq_ignore_ascii_case("LiveActivity") => {}
        Some(_) => return Err(BroadcastReason::InvalidPushType),
    }
    o.get("message-storage-policy")
        .and_then(Value::as_u64)
        .and_then(|p| u8::try_from(p).ok())
        .and_then(|p| StoragePolicy::try_from(p).ok())
        .ok_or(BroadcastReason::BadRequestParams)
}

/// Carries out one management call on `store` (A-CHAN table).
#[allow(clippy::too_many_arguments)]
pub fn manage(
    op: ManageOp,
    bundle_id: &str,
    fields: &Fields<'_>,
    body: &[u8],
    env: Environment,
    store: &mut Channels,
    settings: &BroadcastSettings,
    now_ms: u64,
    random: impl FnMut() -> [u8; 16],
) -> Result<Managed, BroadcastReason> {
    let not_registered = |_: ChannelError| BroadcastReason::ChannelNotRegistered;
    match op {
        ManageOp::Create => {
            if body.len() > settings.max_payload {
                return Err(BroadcastReason::PayloadTooLarge);
            }
            let policy = parse_create_body(body, settings.push_type_case_sensitive)?;
            let c = store
                .create(
                    env,
                    bundle_id,
                    policy,
                    settings.max_channels,
                    now_ms,
                    random,
                )
                .map_err(|_| BroadcastReason::CannotCreateChannelConfig)?;
            Ok(Managed {
                status: 201,
                headers: vec![("apns-channel-id".into(), c.id.clone())],
                body: None,
                channel: Some(c),
            })
        }
        ManageOp::Read => {
            let id = channel_id(fields)?;
            let c = store.get(env, bundle_id, id).map_err(not_registered)?;
            Ok(Managed {
                status: 200,
                headers: Vec::new(),
                body: Some(json!({
                    "message-storage-policy": u8::from(c.message_storage_policy),
                    "push-type": "LiveActivity",
                })),
                channel: Some(c.clone()),
            })
        }
        ManageOp::Delete => {
            let id = channel_id(fields)?;
            let c = store.delete(env, bundle_id, id).map_err(not_registered)?;
            Ok(Managed {
                status: 204,
                headers: Vec::new(),
                body: None,
                channel: Some(c),
            })
        }
        // PROTOCOL.md 2.11 [uncertain]: the body carries the documented `channels` key.
        ManageOp::List => Ok(Managed {
            status: 200,
            headers: Vec::new(),
            body: Some(json!({ "channels": store.list(env, bundle_id) })),
            channel: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use BroadcastReason::*;

    const P: Environment = Environment::Production;

    fn run(
        op: ManageOp,
        headers: &[(&str, &str)],
        body: &str,
        store: &mut Channels,
        s: &BroadcastSettings,
    ) -> Result<Managed, BroadcastReason> {
        let h: Vec<(Bytes, Bytes)> = headers
            .iter()
            .map(|(a, b)| {
                (
                    Bytes::copy_from_slice(a.as_bytes()),
                    Bytes::copy_from_slice(b.as_bytes()),
                )
            })
            .collect();
        let mut n = 0u8;
        manage(
            op,
            "com.x",
            &Fields(&h),
            body.as_bytes(),
            P,
            store,
            s,
            0,
            || {
                n += 1;
                [n; 16]
            },
        )
    }

    #[test]
    fn create_bodies() {
        assert_eq!(
            parse_create_body(
                br#"{"message-storage-policy":1,"push-type":"LiveActivity"}"#,
                true
            ),
            Ok(StoragePolicy::MostRecent)
        );
        assert_eq!(
            parse_create_body(
                br#"{"message-storage-policy":0,"push-type":"LiveActivity"}"#,
                true
            ),
            Ok(StoragePolicy::NoStorage)
        );
        assert_eq!(parse_create_body(b"", true), Err(PayloadEmpty));
        let lower = br#"{"message-storage-policy":1,"push-type":"liveactivity"}"#;
        assert_eq!(parse_create_body(lower, true), Err(InvalidPushType));
        assert_eq!(
            parse_create_body(lower, false),
            Ok(StoragePolicy::MostRecent)
        );
        assert_eq!(parse_create_body(b"[1", true), Err(BadRequestPayload));
        assert_eq!(parse_create_body(b"[]", true), Err(BadRequestPayload));
        assert_eq!(
            parse_create_body(br#"{"message-storage-policy":1}"#, true),
            Err(MissingPushType)
        );
        assert_eq!(
            parse_create_body(br#"{"message-storage-policy":1,"push-type":"alert"}"#, true),
            Err(InvalidPushType)
        );
        assert_eq!(
            parse_create_body(
                br#"{"message-storage-policy":2,"push-type":"LiveActivity"}"#,
                true
            ),
            Err(BadRequestParams)
        );
        assert_eq!(
            parse_create_body(br#"{"push-type":"LiveActivity"}"#, true),
            Err(BadRequestParams)
        );
    }

    #[test]
    fn lifecycle() {
        let s = BroadcastSettings::default();
        let mut store = Channels::new();
        let created = run(
            ManageOp::Create,
            &[],
            r#"{"message-storage-policy":1,"push-type":"LiveActivity"}"#,
            &mut store,
            &s,
        )
        .unwrap();
        assert_eq!(created.status, 201);
        assert_eq!(created.body, None);
        let id = created.headers[0].1.clone();
        let read = run(
            ManageOp::Read,
            &[("apns-channel-id", &id)],
            "",
            &mut store,
            &s,
        )
        .unwrap();
        assert_eq!(read.status, 200);
        assert_eq!(
            read.body.unwrap(),
            json!({"message-storage-policy":1,"push-type":"LiveActivity"})
        );
        let list = run(ManageOp::List, &[], "", &mut store, &s).unwrap();
        assert_eq!(list.body.unwrap(), json!({ "channels": [id.clone()] }));
        assert_eq!(
            run(
                ManageOp::Delete,
                &[("apns-channel-id", &id)],
                "",
                &mut store,
                &s
            )
            .unwrap()
            .status,
            204
        );
        assert_eq!(
            run(
                ManageOp::Read,
                &[("apns-channel-id", &id)],
                "",
                &mut store,
                &s
            ),
            Err(ChannelNotRegistered)
        );
        assert_eq!(
            run(
                ManageOp::Delete,
                &[("apns-channel-id", &id)],
                "",
                &mut store,
                &s
            ),
            Err(ChannelNotRegistered)
        );
        assert_eq!(
            run(ManageOp::Read, &[], "", &mut store, &s),
            Err(MissingChannelId)
        );
        assert_eq!(
            run(
                ManageOp::Delete,
                &[("apns-channel-id", "*")],
                "",
                &mut store,
                &s
            ),
            Err(BadChannelId)
        );
    }

    #[test]
    fn limit_is_cannot_create_channel_config() {
        let s = BroadcastSettings {
            max_channels: 1,
            ..BroadcastSettings::default()
        };
        let mut store = Channels::new();
        let body = r#"{"message-storage-policy":0,"push-type":"LiveActivity"}"#;
        run(ManageOp::Create, &[], body, &mut store, &s).unwrap();
        assert_eq!(
            run(ManageOp::Create, &[], body, &mut store, &s),
            Err(CannotCreateChannelConfig)
        );
    }
}
