//! The provider token a correct HTTP/2 client keeps: signed once, reused for 50 minutes, replaced
//! only when it is too old or the server says it expired (PROTOCOL.md 2.8). Sans-IO: the time is
//! passed in. A cache made with [`JwtCache::shared`] also picks up and leaves the token for the
//! next run of apnsim's own clients (`token_file`), so two commands in a row sign once.

use super::config::TokenCredentials;
use super::token_file::{self, StoredToken};
use crate::http2::auth::{sign_jwt, KeyError, SignatureForm};
use std::sync::Arc;

/// How long one JWT is reused: Apple wants a refresh at least every 60 minutes and no more often
/// than every 20 (PROTOCOL.md 2.8); 50 is what apns2 uses.
pub const REUSE_SECS: u64 = 50 * 60;

/// One signed token and when it was issued.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The JWT.
    pub jwt: Arc<str>,
    /// Its `iat`.
    pub iat: u64,
    /// Increases with every signature, so a stale "expired" answer cannot force a second one.
    pub serial: u64,
}

/// The current token, re-signed only when needed.
#[derive(Debug)]
pub struct JwtCache {
    creds: TokenCredentials,
    current: Option<Signed>,
    serial: u64,
    /// Where the token is shared with other runs, if it is.
    file: Option<std::path::PathBuf>,
}

impl JwtCache {
    /// A cache that signs on first use.
    pub fn new(creds: TokenCredentials) -> Self {
        JwtCache {
            creds,
            current: None,
            serial: 0,
            file: None,
        }
    }

    /// A cache that first looks for a token an earlier run left (younger than
    /// `token_file::SHARE_SECS`) and leaves each token it signs for the next run.
    pub fn shared(creds: TokenCredentials) -> Self {
        let file = token_file::path_for(&creds);
        JwtCache {
            file,
            ..JwtCache::new(creds)
        }
    }

    /// The token to send at `now` (seconds): the current one while younger than [`REUSE_SECS`].
    pub fn token(&mut self, now: u64) -> Result<Signed, KeyError> {
        if let Some(s) = &self.current {
            if now.saturating_sub(s.iat) < REUSE_SECS && s.iat <= now.saturating_add(60) {
                return Ok(s.clone());
            }
        }
        // Only the run's first token may come from the file: after ExpiredProviderToken the
        // stored token is the one just refused, and a new one must be signed.
        if self.current.is_none() && self.serial == 0 {
            if let Some(stored) = self.file.as_deref().and_then(token_file::load) {
                if stored.usable(&self.creds, now) {
                    return Ok(self.adopt(Arc::from(stored.jwt), stored.iat));
                }
            }
        }
        let jwt = sign_jwt(
            &self.creds.key_pem,
            &self.creds.key_id,
            &self.creds.team_id,
            now,
            SignatureForm::Raw,
        )?;
        if let Some(path) = &self.file {
            let stored = StoredToken {
                iss: self.creds.team_id.clone(),
                kid: self.creds.key_id.clone(),
                iat: now,
                jwt: jwt.clone(),
            };
            if let Err(e) = token_file::store(path, &stored) {
                tracing::debug!(path = %path.display(), error = %e, "provider token not shared");
            }
        }
        Ok(self.adopt(Arc::from(jwt), now))
    }

    /// Makes `jwt` the current token under a new serial.
    fn adopt(&mut self, jwt: Arc<str>, iat: u64) -> Signed {
        self.serial = self.serial.saturating_add(1);
        let s = Signed {
            jwt,
            iat,
            serial: self.serial,
        };
        self.current = Some(s.clone());
        s
    }

    /// The server answered ExpiredProviderToken to the token with `serial`: drop it, unless a
    /// newer one was already signed (PROTOCOL.md 2.8).
    pub fn expired(&mut self, serial: u64) {
        if self.current.as_ref().is_some_and(|s| s.serial == serial) {
            self.current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::TokenKey;

    fn cache() -> JwtCache {
        let k = TokenKey::generate().unwrap();
        JwtCache::new(TokenCredentials {
            key_pem: k.private_pem,
            key_id: k.key_id,
            team_id: k.team_id,
        })
    }

    #[test]
    fn reuses_for_fifty_minutes_then_signs_again() {
        let mut c = cache();
        let a = c.token(1_000).unwrap();
        let b = c.token(1_000 + REUSE_SECS - 1).unwrap();
        assert_eq!(a.jwt, b.jwt);
        let d = c.token(1_000 + REUSE_SECS).unwrap();
        assert_ne!(a.jwt, d.jwt);
        assert_eq!(d.iat, 1_000 + REUSE_SECS);
        assert!(d.serial > a.serial);
    }

    #[test]
    fn expired_signs_once_for_many_stale_answers() {
        let mut c = cache();
        let a = c.token(5_000).unwrap();
        c.expired(a.serial);
        let b = c.token(5_001).unwrap();
        assert_ne!(a.serial, b.serial);
        // A second answer about the old token does not drop the new one.
        c.expired(a.serial);
        assert_eq!(c.token(5_002).unwrap().serial, b.serial);
    }
}
