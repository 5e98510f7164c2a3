//! Loading a scenario into a running emulator: its tokens into the registry, its keys into the
//! HTTP/2 key registry, its rules into the engine. Shared by the Rust API and the control API,
//! so both load exactly the same way.

use crate::engine::rules::RuleSet;
use crate::engine::scenario::{KeySpec, Scenario};
use crate::http2::auth::{generate_p8, ProviderKey};
use crate::runtime::Core;
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

/// Loads `scenario` into the running emulator; `.p8` paths resolve only through `key_files`.
pub(crate) fn load(
    core: &Core,
    scenario: &Scenario,
    key_files: &KeyFiles,
) -> Result<LoadedScenario, LoadError> {
    if let Some(s) = &scenario.settings {
        if *s != core.settings {
            let a = serde_json::to_value(s).unwrap_or_default();
            let b = serde_json::to_value(&core.settings).unwrap_or_default();
            let differ: Vec<String> = a
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| b.get(k.as_str()) != Some(*v))
                .map(|(k, _)| k.clone())
                .collect();
            return Err(LoadError::SettingsAtRuntime(differ.join(", ")));
        }
    }
    let mut generated = BTreeMap::new();
    let mut keys = Vec::new();
    for spec in &scenario.keys {
        let (key, pem_generated) = provider_key(spec, key_files)?;
        if let Some(pem) = pem_generated {
            generated.insert(spec.key_id.clone(), pem);
        }
        keys.push(key);
    }
    // Everything checked: now apply, keys and tokens first so the first rule sees them.
    {
        let mut registry = core.http2.keys.write();
        for key in keys {
            registry.insert(key);
        }
    }
    core.http2.cache.clear();
    scenario.register_tokens(core.engine.registry());
    core.engine.set_rules(scenario.rule_set());
    let loaded = LoadedScenario {
        scenario: scenario.clone(),
        generated_keys: generated,
    };
    *core.scenario.lock() = Some(loaded.clone());
    Ok(loaded)
}

/// Removes the scenario's rules, tokens and keys (the default key stays).
pub(crate) fn clear(core: &Core) -> Option<LoadedScenario> {
    let old = core.scenario.lock().take();
    core.engine.set_rules(RuleSet::empty());
    if let Some(old) = &old {
        for t in &old.scenario.tokens {
            core.engine.registry().remove(&t.token);
            core.engine.forget_device(&t.token);
        }
        let mut keys = core.http2.keys.write();
        for k in &old.scenario.keys {
            keys.remove(&k.key_id);
        }
        core.http2.cache.clear();
    }
    old
}

/// The key a spec names; with neither `pem` nor `p8`, a fresh one (its private PEM returned too).
fn provider_key(
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
            let pem = generate_p8().map_err(|e| err(e.to_string()))?;
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
