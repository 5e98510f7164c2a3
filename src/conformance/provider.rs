//! A provider under test: its folder, its `provider.toml`, and the command line that runs its
//! driver (fixtures/providers/README.md).

use crate::model::{AuthKind, Protocol};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a provider folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The folder or its provider.toml cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// provider.toml is not what the contract says.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// `provider.toml`, as the driver contract defines it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Short name (the folder's).
    pub name: String,
    /// Language of the driver.
    pub language: String,
    /// The library graded.
    pub library: String,
    /// Its pinned version.
    pub version: String,
    /// Protocols it supports.
    pub protocols: Vec<Protocol>,
    /// Authentication kinds it supports.
    pub auth: Vec<AuthKind>,
    /// The driver's command line, with `{venv}`, `{node_modules}`, `{build}`, `{apnsim}`.
    pub command: Vec<String>,
    /// How it is installed.
    #[serde(default)]
    pub install: Option<String>,
    /// One line about it.
    #[serde(default)]
    pub notes: Option<String>,
    /// Whether the library can read the feedback service (legacy).
    #[serde(default = "yes")]
    pub feedback: bool,
    /// Whether the library has the broadcast APIs (channel management and `/4/broadcasts`,
    /// PROTOCOL.md 2.11); the broadcast cases are UNSUPPORTED without it.
    #[serde(default)]
    pub broadcast: bool,
    /// The lowest TLS version the library speaks on the legacy ports ("1.0" for providers that
    /// hard-code TLS 1.0); the runner starts its emulators with that `legacy_tls_min`.
    #[serde(default)]
    pub tls_min: Option<crate::settings::LegacyTlsMin>,
}

fn yes() -> bool {
    true
}

/// A provider folder, loaded.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The folder (the driver's working directory).
    pub dir: PathBuf,
    /// Its provider.toml.
    pub spec: ProviderSpec,
}

impl Provider {
    /// Reads `dir/provider.toml`.
    pub fn load(dir: &Path) -> Result<Self, ProviderError> {
        let path = dir.join("provider.toml");
        let text = std::fs::read_to_string(&path).map_err(|source| ProviderError::Read {
            path: path.clone(),
            source,
        })?;
        let spec: ProviderSpec = toml::from_str(&text).map_err(|e| ProviderError::Invalid {
            path: path.clone(),
            message: e.message().to_string(),
        })?;
        if spec.command.is_empty() {
            return Err(ProviderError::Invalid {
                path,
                message: "command is empty".into(),
            });
        }
        let dir = dir.canonicalize().map_err(|source| ProviderError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Provider { dir, spec })
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether it declares `protocol`.
    pub fn speaks(&self, protocol: Protocol) -> bool {
        self.spec.protocols.contains(&protocol)
    }

    /// Whether it declares `auth`.
    pub fn has_auth(&self, auth: AuthKind) -> bool {
        self.spec.auth.contains(&auth)
    }

    /// The command line with placeholders filled: `{build}` is `tools/<name>`, `{venv}` and
    /// `{node_modules}` live in it, `{apnsim}` is this binary.
    pub fn command(&self, tools: &Path, apnsim: &Path) -> Vec<String> {
        let build = tools.join(&self.spec.name);
        let fill = [
            ("{venv}", build.join("venv")),
            ("{node_modules}", build.join("node_modules")),
            ("{build}", build.clone()),
            ("{apnsim}", apnsim.to_path_buf()),
        ];
        self.spec
            .command
            .iter()
            .map(|part| {
                fill.iter().fold(part.clone(), |acc, (k, v)| {
                    acc.replace(k, &v.to_string_lossy())
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_provider_loads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers");
        let mut n = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let dir = entry.unwrap().path();
            if dir.join("provider.toml").exists() {
                let p = Provider::load(&dir).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(p.dir.file_name().unwrap().to_str().unwrap(), p.name());
                n += 1;
            }
        }
        assert!(n >= 9, "found {n} providers");
    }

    #[test]
    fn tls_min_is_read_from_provider_toml() {
        let base = r#"name = "p"
language = "python"
library = "l"
version = "1"
protocols = ["legacy"]
auth = ["certificate"]
command = ["d"]"#;
        let spec: ProviderSpec = toml::from_str(base).unwrap();
        assert_eq!(spec.tls_min, None);
        let spec: ProviderSpec = toml::from_str(&format!("{base}\ntls_min = \"1.0\"")).unwrap();
        assert_eq!(spec.tls_min, Some(crate::settings::LegacyTlsMin::Tls1_0));
        assert!(toml::from_str::<ProviderSpec>(&format!("{base}\ntls_min = \"1.3\"")).is_err());
    }

    #[test]
    fn placeholders_are_filled() {
        let p = Provider {
            dir: PathBuf::from("/x"),
            spec: toml::from_str(
                r#"name = "p"
language = "python"
library = "l"
version = "1"
protocols = ["legacy"]
auth = ["certificate"]
command = ["{venv}/bin/python", "d.py", "{node_modules}", "{apnsim}"]"#,
            )
            .unwrap(),
        };
        let c = p.command(Path::new("/t"), Path::new("/bin/apnsim"));
        assert_eq!(
            c,
            [
                "/t/p/venv/bin/python",
                "d.py",
                "/t/p/node_modules",
                "/bin/apnsim"
            ]
        );
    }
}
