//! What loading a scenario into a running emulator needs and reports: the key files read at start,
//! the provider key each spec names, the loaded scenario and why a load fails. The load itself is
//! `runtime::Core::load_scenario`, shared by the Rust API and the control API, so both load exactly
//! the same way.

use crate::certs::TokenKey;
use crate::engine::scenario::{KeySpec, Scenario};
use crate::http2::auth::ProviderKey;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Why a scenario could not be loaded; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `[settings]` differ from the running emulator's; settings apply only at start.
    #[error("[settings] can only be chosen when the emulator starts (serve --scenario, or the builder); these differ from the running settings in: {0}")]
    SettingsAtRuntime(String),
    /// A key names a `.p8` path where only inline `pem` is accepted (the control API): a
    /// request must not make the server read its own files.
    #[error("keys: {key_id}: `p8` paths are read only from a scenario given on the command line or in the config file; send the key inline as `pem`")]
    KeyPath {
        /// The key id.
        key_id: String,
    },
    /// A key's `.p8` file could not be read.
    #[error("keys: {key_id}: {source}")]
    KeyFile {
        /// The key id.
        key_id: String,
        /// Why.
        #[source]
        source: crate::files::FileError,
    },
    /// A key's PEM could not be parsed.
    #[error("keys: {key_id}: {message}")]
    Key {
        /// The key id.
        key_id: String,
        /// What went wrong.
        message: String,
    },
}

/// The scenario in force, with the private keys apnsim generated for it.
#[derive(Debug, Clone, Serialize)]
pub struct LoadedScenario {
    /// The scenario as loaded.
    pub scenario: Scenario,
    /// key id → PKCS#8 PEM of keys the scenario named without `pem` or `p8` (providers sign with these).
    pub generated_keys: BTreeMap<String, String>,
}

/// The PEM text of the `.p8` files a scenario names, by key id: read ahead (off the runtime) so
/// that [`load`] never touches the file system. Empty for scenarios that came over the network.
pub type KeyFiles = BTreeMap<String, String>;

/// Reads every `.p8` file `scenario` names (relative paths against `base`): regular files only,
/// size-capped. Blocking; only for scenarios named on the command line or in the config file.
pub fn read_key_files(scenario: &Scenario, base: Option<&Path>) -> Result<KeyFiles, LoadError> {
    let mut files = KeyFiles::new();
    for spec in &scenario.keys {
        if let (None, Some(path)) = (&spec.pem, &spec.p8) {
            let path = match base {
                Some(b) if path.is_relative() => b.join(path),
                _ => path.clone(),
            };
            let text = crate::files::read_text(&path).map_err(|source| LoadError::KeyFile {
                key_id: spec.key_id.clone(),
                source,
            })?;
            files.insert(spec.key_id.clone(), text);
        }
    }
    Ok(files)
}

/// The key a spec names; with neither `pem` nor `p8`, a fresh one (its private PEM returned too).
pub(crate) fn provider_key(
    spec: &KeySpec,
    key_files: &KeyFiles,
) -> Result<(ProviderKey, Option<String>), LoadError> {
    let err = |message: String| LoadError::Key {
        key_id: spec.key_id.clone(),
        message,
    };
    let (pem, generated) = match (&spec.pem, &spec.p8) {
        (Some(pem), _) => (pem.clone(), None),
        (None, Some(_)) => match key_files.get(&spec.key_id) {
            Some(text) => (text.clone(), None),
            None => {
                return Err(LoadError::KeyPath {
                    key_id: spec.key_id.clone(),
                })
            }
        },
        (None, None) => {
            let pem = TokenKey::generate()
                .map_err(|e| err(e.to_string()))?
                .private_pem;
            (pem.clone(), Some(pem))
        }
    };
    let mut key =
        ProviderKey::from_pem(&spec.key_id, &spec.team_id, &pem).map_err(|e| err(e.to_string()))?;
    if let Some(env) = spec.environment {
        key = key.scoped_to(env);
    }
    if !spec.topics.is_empty() {
        key = key.for_topics(spec.topics.clone());
    }
    if let Some(related) = &spec.related_key_id {
        key = key.related_to(related.clone());
    }
    Ok((key, generated))
}
