//! The provider token shared between runs of apnsim's own clients (`apnsim send`, `apnsim
//! channels`): a long-lived provider keeps one token for many requests, and Apple counts a new
//! token within 20 minutes of the team's last one as TooManyProviderTokenUpdates (PROTOCOL.md
//! 2.8), so two commands typed a second apart must not sign two tokens.
//!
//! A stored token is reused only while it is younger than [`SHARE_SECS`] (30 minutes): the run
//! that picks it up refreshes it at 50 minutes (`jwt::REUSE_SECS`), so even a server that first
//! saw it at the end of that window has held it for 20 minutes by then. The file is a cache:
//! any failure to read or write it only means a fresh signature.

use super::config::TokenCredentials;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How long a stored token may be picked up by a later run (PROTOCOL.md 2.8: 50 − 20 minutes).
pub const SHARE_SECS: u64 = 30 * 60;

/// What one file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    /// JWT `iss`: the team.
    pub iss: String,
    /// JWT `kid`: the key.
    pub kid: String,
    /// JWT `iat`.
    pub iat: u64,
    /// The signed token.
    pub jwt: String,
}

impl StoredToken {
    /// Whether a run with `creds` may send this token at `now` (UNIX seconds).
    pub fn usable(&self, creds: &TokenCredentials, now: u64) -> bool {
        self.iss == creds.team_id
            && self.kid == creds.key_id
            && self.iat <= now.saturating_add(60)
            && now.saturating_sub(self.iat) < SHARE_SECS
    }
}

/// Where tokens signed with `creds` are kept: a per-user directory under the system's temporary
/// directory, one file per key, named by a digest (the key itself is never written).
pub fn path_for(creds: &TokenCredentials) -> Option<PathBuf> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("apnsim-{uid}"));
    private_dir(&dir, uid)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [&creds.key_pem, &creds.key_id, &creds.team_id] {
        ctx.update(part.as_bytes());
        ctx.update(&[0]);
    }
    let digest = hex::encode(&ctx.finish().as_ref()[..16]);
    Some(dir.join(format!("jwt-{digest}.json")))
}

/// Creates `dir` for this user only, or accepts it if it already is: a directory others can
/// write to could hand us a token of theirs.
fn private_dir(dir: &Path, uid: u32) -> Option<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    let meta = std::fs::symlink_metadata(dir).ok()?;
    (meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0).then_some(())
}

/// The token stored at `path`, if any can be read.
pub fn load(path: &Path) -> Option<StoredToken> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Stores `token` at `path` for later runs: written whole to a temporary file, then renamed, so
/// a run reading at the same time sees the old token or the new one.
pub fn store(path: &Path, token: &StoredToken) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(serde_json::to_string(token)?.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> TokenCredentials {
        TokenCredentials {
            key_pem: "k".into(),
            key_id: "KID".into(),
            team_id: "TEAM".into(),
        }
    }

    fn stored(iat: u64) -> StoredToken {
        StoredToken {
            iss: "TEAM".into(),
            kid: "KID".into(),
            iat,
            jwt: "a.b.c".into(),
        }
    }

    #[test]
    fn usable_only_for_its_key_and_within_the_sharing_window() {
        let c = creds();
        assert!(stored(1_000).usable(&c, 1_000));
        assert!(stored(1_000).usable(&c, 1_000 + SHARE_SECS - 1));
        assert!(!stored(1_000).usable(&c, 1_000 + SHARE_SECS));
        assert!(!stored(2_000).usable(&c, 1_000), "issued in the future");
        let mut other = stored(1_000);
        other.kid = "OTHER".into();
        assert!(!other.usable(&c, 1_000));
    }

    #[test]
    fn stores_and_loads_through_a_private_file() {
        let mut c = creds();
        c.key_pem = format!("test-{}", std::process::id());
        let path = path_for(&c).expect("a private directory");
        store(&path, &stored(42)).unwrap();
        assert_eq!(load(&path), Some(stored(42)));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only the user can read a bearer token");
        std::fs::remove_file(&path).unwrap();
    }
}
