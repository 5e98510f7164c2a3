//! Routing and header reading shared by the channel-management and broadcast APIs
//! (PROTOCOL.md 2.11): which operation a `:method` + `:path` names, and the request id.

use super::reason::BroadcastReason;
use bytes::Bytes;

/// A channel-management operation (A-CHAN table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManageOp {
    /// POST `/1/apps/<bundleId>/channels`.
    Create,
    /// GET `/1/apps/<bundleId>/channels` with `apns-channel-id`.
    Read,
    /// DELETE `/1/apps/<bundleId>/channels` with `apns-channel-id`.
    Delete,
    /// GET `/1/apps/<bundleId>/all-channels`.
    List,
}

/// What a broadcast-family request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A channel-management call for an app.
    Manage(ManageOp, String),
    /// POST `/4/broadcasts/apps/<bundleId>`.
    Broadcast(String),
}

/// Whether `path` belongs to the broadcast family (`/1/…` management, `/4/…` broadcast): the
/// HTTP/2 listeners hand these to this module and keep `/3/device` for themselves.
pub fn is_broadcast_path(path: &[u8]) -> bool {
    path.starts_with(b"/1/") || path.starts_with(b"/4/")
}

/// Which of Apple's HTTP/2 hosts a request names (`:authority`, else SNI), PROTOCOL.md 2.1, 2.11.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// `api[.sandbox|.development].push.apple.com`: `/3/device` and `/4/broadcasts`.
    Api,
    /// `api-manage-broadcast[.sandbox].push.apple.com`: the channel-management API only.
    Manage,
    /// An address or another name (a library that connects by IP): the path decides.
    Other,
}

impl Host {
    /// The host a request names: `:authority` without its port, else the TLS SNI.
    pub fn of(authority: Option<&str>, sni: Option<&str>) -> Host {
        match authority {
            Some(a) => Host::named(a),
            None => sni.map_or(Host::Other, Host::named),
        }
    }

    /// The host a name (with or without `:port`) is, without allocating (it runs per request).
    pub fn named(name: &str) -> Host {
        let name = match name.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => name,
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("api-manage-broadcast.push.apple.com")
            || is("api-manage-broadcast.sandbox.push.apple.com")
        {
            Host::Manage
        } else if is("api.push.apple.com")
            || is("api.sandbox.push.apple.com")
            || is("api.development.push.apple.com")
        {
            Host::Api
        } else {
            Host::Other
        }
    }

    /// Whether `path` is served on this host: the management host serves only `/1/…`, the API
    /// host everything but `/1/…` **[inferred]**: Apple's hosts are separate services, so a
    /// path of the other one is 404 BadPath (PROTOCOL.md 2.11's reason for an unknown path).
    pub fn serves(self, path: &[u8]) -> bool {
        match self {
            Host::Manage => path.starts_with(b"/1/"),
            Host::Api => !path.starts_with(b"/1/"),
            Host::Other => true,
        }
    }
}

fn bundle(s: &str) -> Option<String> {
    (!s.is_empty() && !s.contains('/') && s.len() <= crate::model::wire::MAX_TOPIC_BYTES)
        .then(|| s.to_owned())
}

/// The route of a broadcast-family request: an unknown path is BadPath, a known path with the
/// wrong method MethodNotAllowed (PROTOCOL.md 2.11 reasons).
pub fn route(method: &str, path: &str) -> Result<Route, BroadcastReason> {
    let path = path.split('?').next().unwrap_or(path);
    if let Some(rest) = path.strip_prefix("/1/apps/") {
        let (b, tail) = rest.rsplit_once('/').ok_or(BroadcastReason::BadPath)?;
        let b = bundle(b).ok_or(BroadcastReason::BadPath)?;
        let op = match (tail, method) {
            ("channels", "POST") => ManageOp::Create,
            ("channels", "GET") => ManageOp::Read,
            ("channels", "DELETE") => ManageOp::Delete,
            ("all-channels", "GET") => ManageOp::List,
            ("channels" | "all-channels", _) => return Err(BroadcastReason::MethodNotAllowed),
            _ => return Err(BroadcastReason::BadPath),
        };
        return Ok(Route::Manage(op, b));
    }
    if let Some(rest) = path.strip_prefix("/4/broadcasts/apps/") {
        let b = bundle(rest).ok_or(BroadcastReason::BadPath)?;
        return match method {
            "POST" => Ok(Route::Broadcast(b)),
            _ => Err(BroadcastReason::MethodNotAllowed),
        };
    }
    Err(BroadcastReason::BadPath)
}

/// A request's header fields as read by the broadcast APIs.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a>(pub &'a [(Bytes, Bytes)]);

impl<'a> Fields<'a> {
    /// The value of `name` (lowercase) as text; a repeated field is BadRequestParams and a
    /// non-UTF-8 one BadRequestParams **[inferred]** (A-BERR has no DuplicateHeaders).
    pub fn get(&self, name: &str) -> Result<Option<&'a str>, BroadcastReason> {
        let mut found = self.0.iter().filter(|(n, _)| &n[..] == name.as_bytes());
        let first = found.next();
        if found.next().is_some() {
            return Err(BroadcastReason::BadRequestParams);
        }
        first
            .map(|(_, v)| std::str::from_utf8(v).map_err(|_| BroadcastReason::BadRequestParams))
            .transpose()
    }

    /// The raw value of `name`, first occurrence.
    pub fn raw(&self, name: &str) -> Option<&'a [u8]> {
        self.0
            .iter()
            .find(|(n, _)| &n[..] == name.as_bytes())
            .map(|(_, v)| &v[..])
    }
}

/// Whether a value is the canonical 8-4-4-4-12 UUID that Apple accepts as an id (PROTOCOL.md 2.3).
pub fn is_uuid(v: &str) -> bool {
    v.len() == 36 && uuid::Uuid::try_parse(v).is_ok()
}

/// The request's `apns-request-id` to echo, or `None` to generate one; a malformed one is
/// BadMessageId (A-CHAN: optional UUID, echoed or generated).
pub fn request_id(f: &Fields<'_>) -> Result<Option<String>, BroadcastReason> {
    match f.get("apns-request-id") {
        Ok(Some(v)) if is_uuid(v) => Ok(Some(v.to_owned())),
        Ok(None) => Ok(None),
        _ => Err(BroadcastReason::BadMessageId),
    }
}

/// `apns-channel-id`: missing → MissingChannelId, not base64 → BadChannelId.
pub fn channel_id<'a>(f: &Fields<'a>) -> Result<&'a str, BroadcastReason> {
    match f.get("apns-channel-id")? {
        None => Err(BroadcastReason::MissingChannelId),
        Some(v) if super::channels::is_well_formed(v) => Ok(v),
        Some(_) => Err(BroadcastReason::BadChannelId),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BroadcastReason::*;

    #[test]
    fn routes() {
        let ok = |m, p| route(m, p).unwrap();
        assert_eq!(
            ok("POST", "/1/apps/com.x/channels"),
            Route::Manage(ManageOp::Create, "com.x".into())
        );
        assert_eq!(
            ok("GET", "/1/apps/com.x/channels"),
            Route::Manage(ManageOp::Read, "com.x".into())
        );
        assert_eq!(
            ok("DELETE", "/1/apps/com.x/channels"),
            Route::Manage(ManageOp::Delete, "com.x".into())
        );
        assert_eq!(
            ok("GET", "/1/apps/com.x/all-channels"),
            Route::Manage(ManageOp::List, "com.x".into())
        );
        assert_eq!(
            ok("POST", "/4/broadcasts/apps/com.x"),
            Route::Broadcast("com.x".into())
        );
        assert_eq!(
            route("PUT", "/1/apps/com.x/channels"),
            Err(MethodNotAllowed)
        );
        assert_eq!(
            route("POST", "/1/apps/com.x/all-channels"),
            Err(MethodNotAllowed)
        );
        assert_eq!(
            route("GET", "/4/broadcasts/apps/com.x"),
            Err(MethodNotAllowed)
        );
        for p in [
            "/1/apps//channels",
            "/1/apps/com.x/other",
            "/1/apps/com.x",
            "/4/broadcasts/apps/",
            "/4/broadcasts/apps/a/b",
            "/4/x",
        ] {
            assert_eq!(route("POST", p), Err(BadPath), "{p}");
        }
        assert!(is_broadcast_path(b"/4/broadcasts/apps/x"));
        let manage = Host::of(Some("api-manage-broadcast.push.apple.com:443"), None);
        assert_eq!(manage, Host::Manage);
        assert!(manage.serves(b"/1/apps/x/channels") && !manage.serves(b"/3/device/ab"));
        let api = Host::of(None, Some("api.sandbox.push.apple.com"));
        assert_eq!(api, Host::Api);
        assert!(!api.serves(b"/1/apps/x/channels") && api.serves(b"/4/broadcasts/apps/x"));
        assert_eq!(
            Host::of(Some("127.0.0.1:2197"), Some("api.push.apple.com")),
            Host::Other
        );
        assert!(Host::Other.serves(b"/1/apps/x/channels"));
        assert!(!is_broadcast_path(b"/3/device/ab"));
    }

    #[test]
    fn fields() {
        let h = |v: &[(&str, &str)]| -> Vec<(Bytes, Bytes)> {
            v.iter()
                .map(|(a, b)| {
                    (
                        Bytes::copy_from_slice(a.as_bytes()),
                        Bytes::copy_from_slice(b.as_bytes()),
                    )
                })
                .collect()
        };
        let id = "123e4567-e89b-12d3-a456-426614174000";
        assert_eq!(
            request_id(&Fields(&h(&[("apns-request-id", id)]))),
            Ok(Some(id.to_owned()))
        );
        assert_eq!(request_id(&Fields(&h(&[]))), Ok(None));
        assert_eq!(
            request_id(&Fields(&h(&[("apns-request-id", "x")]))),
            Err(BadMessageId)
        );
        assert_eq!(channel_id(&Fields(&h(&[]))), Err(MissingChannelId));
        assert_eq!(
            channel_id(&Fields(&h(&[("apns-channel-id", "%%")]))),
            Err(BadChannelId)
        );
        assert_eq!(
            channel_id(&Fields(&h(&[
                ("apns-channel-id", "a"),
                ("apns-channel-id", "b")
            ]))),
            Err(BadRequestParams)
        );
    }
}
