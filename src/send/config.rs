//! Everything `apnsim send` needs before it connects, resolved once: where to connect, which
//! credentials, and the plan. Options given explicitly win; the rest comes from the certificate
//! directory's manifest.json, so a bare `apnsim send --token … --alert hi` works after `serve`.

use super::SendArgs;
use crate::certs::{CertError, Identity, Manifest};
use crate::model::{AuthKind, Environment, Protocol};
use crate::plan::{BroadcastOp, BroadcastStep, Plan, PlanNotification};
use std::path::{Path, PathBuf};

/// Why `apnsim send` cannot run at all (the driver contract's exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A credential was not given and the certificate directory could not supply it.
    #[error("missing {what}: give {flag} or a certificate directory (--certs) with manifest.json ({why})")]
    Missing {
        /// What is missing.
        what: &'static str,
        /// The flag that supplies it.
        flag: &'static str,
        /// Why the manifest did not help.
        why: String,
    },
    /// A PEM file held no usable certificate or key.
    #[error("{0}")]
    Cert(#[from] CertError),
    /// The plan is not the contract's JSON.
    #[error("plan {path}: {message}")]
    Plan {
        /// The plan file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The options do not describe a notification.
    #[error("{0}")]
    Usage(String),
}

/// Where to connect and what to present there.
#[derive(Debug, Clone)]
pub struct Target {
    /// Legacy or HTTP/2.
    pub protocol: Protocol,
    /// Certificate or token (HTTP/2 only; legacy always uses the certificate).
    pub auth: AuthKind,
    /// Production or sandbox.
    pub environment: Environment,
    /// Address to connect to.
    pub host: String,
    /// Gateway or HTTP/2 port.
    pub port: u16,
    /// Feedback port.
    pub feedback_port: u16,
    /// SNI, `:authority`, and the name the server certificate must carry.
    pub apple_host: String,
    /// Channel-management port (PROTOCOL.md 2.11; `serve` listens on 2198 / 2298).
    pub manage_port: u16,
}

/// The ES256 key a provider signs its JWTs with (PROTOCOL.md 2.8).
#[derive(Clone)]
pub struct TokenCredentials {
    /// The .p8 key, PKCS#8 PEM.
    pub key_pem: String,
    /// JWT `kid`.
    pub key_id: String,
    /// JWT `iss`.
    pub team_id: String,
}

impl std::fmt::Debug for TokenCredentials {
    // Keys must not leak into logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCredentials")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

/// One fully resolved run.
#[derive(Debug, Clone)]
pub struct Job {
    /// Where to connect.
    pub target: Target,
    /// The CA the server must chain to, PEM.
    pub ca_pem: String,
    /// The client identity (legacy, HTTP/2 certificate auth, feedback).
    pub identity: Option<Identity>,
    /// The token key (HTTP/2 token auth).
    pub token: Option<TokenCredentials>,
    /// `apns-topic`, when known.
    pub topic: Option<String>,
    /// What to send.
    pub plan: Plan,
    /// Legacy: how long to wait for an error-response after the last write, in ms.
    pub quiet_ms: u64,
}

/// The ports `apnsim serve` listens on by default: (gateway or HTTP/2, feedback).
fn default_ports(protocol: Protocol, environment: Environment) -> (u16, u16) {
    match (protocol, environment) {
        (Protocol::Http2, Environment::Production) => (2197, 2196),
        (Protocol::Http2, Environment::Sandbox) => (2297, 2296),
        (_, Environment::Production) => (2195, 2196),
        (_, Environment::Sandbox) => (2295, 2296),
    }
}

/// The manifest, loaded only when some credential was not given explicitly.
struct LazyManifest<'a> {
    dir: &'a Path,
    loaded: Option<Result<Manifest, String>>,
}

impl<'a> LazyManifest<'a> {
    fn new(dir: &'a Path) -> Self {
        LazyManifest { dir, loaded: None }
    }

    fn get(&mut self) -> Result<&Manifest, String> {
        let dir = self.dir;
        self.loaded
            .get_or_insert_with(|| Manifest::load(dir).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A file of the certificate directory named by the manifest.
    fn file(&mut self, pick: impl FnOnce(&Manifest) -> Option<String>) -> Result<PathBuf, String> {
        let dir = self.dir;
        let m = self.get()?;
        pick(m)
            .map(|name| dir.join(name))
            .ok_or_else(|| "the manifest names no such file".to_string())
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// An explicit path, else one from the manifest.
fn path_or_manifest(
    given: &Option<PathBuf>,
    manifest: &mut LazyManifest,
    what: &'static str,
    flag: &'static str,
    pick: impl FnOnce(&Manifest) -> Option<String>,
) -> Result<PathBuf, ConfigError> {
    match given {
        Some(p) => Ok(p.clone()),
        None => manifest
            .file(pick)
            .map_err(|why| ConfigError::Missing { what, flag, why }),
    }
}

/// An explicit value, else one from the manifest.
fn value_or_manifest(
    given: &Option<String>,
    manifest: &mut LazyManifest,
    what: &'static str,
    flag: &'static str,
    pick: impl FnOnce(&Manifest) -> String,
) -> Result<String, ConfigError> {
    match given {
        Some(v) => Ok(v.clone()),
        None => manifest
            .get()
            .map(pick)
            .map_err(|why| ConfigError::Missing { what, flag, why }),
    }
}

/// The manifest identity for an environment: the one named after it, else the universal one.
fn identity_for(m: &Manifest, env: Environment) -> Option<(String, String)> {
    let named = |name: &str| m.identities.iter().find(|i| i.name == name);
    named(env.as_str())
        .or_else(|| named("universal"))
        .or_else(|| m.identities.iter().find(|i| i.environments.contains(&env)))
        .map(|i| (i.cert.clone(), i.key.clone()))
}

impl Job {
    /// Resolves options, manifest and plan; any error means the run cannot start.
    pub fn resolve(args: &SendArgs) -> Result<Job, ConfigError> {
        let protocol = args.protocol;
        // Legacy has no token authentication (PROTOCOL.md 1.1).
        let auth = match protocol {
            Protocol::Http2 => args.auth,
            _ => AuthKind::Certificate,
        };
        let environment = args.environment;
        let (port, feedback_port) = default_ports(protocol, environment);
        let target = Target {
            protocol,
            auth,
            environment,
            host: args.host.clone(),
            port: args.port.unwrap_or(port),
            feedback_port: args.feedback_port.unwrap_or(feedback_port),
            apple_host: args
                .apple_host
                .clone()
                .unwrap_or_else(|| environment.apple_host(protocol).to_string()),
            manage_port: args.manage_port.unwrap_or(match environment {
                Environment::Production => 2198,
                Environment::Sandbox => 2298,
            }),
        };
        let mut plan = load_plan(args)?;
        let mut manifest = LazyManifest::new(&args.certs);

        let ca_path = path_or_manifest(&args.ca, &mut manifest, "CA certificate", "--ca", |m| {
            Some(m.ca.clone())
        })?;
        let ca_pem = read(&ca_path)?;

        // The feedback service takes the same client certificate as the gateway (PROTOCOL.md 1.8).
        let needs_identity = auth == AuthKind::Certificate || plan.read_feedback;
        let identity = if needs_identity {
            let cert = path_or_manifest(
                &args.cert,
                &mut manifest,
                "client certificate",
                "--cert",
                |m| identity_for(m, environment).map(|(c, _)| c),
            )?;
            let key = path_or_manifest(&args.key, &mut manifest, "client key", "--key", |m| {
                identity_for(m, environment).map(|(_, k)| k)
            })?;
            Some(Identity::from_pem(&read(&cert)?, &read(&key)?)?)
        } else {
            None
        };

        let token = if auth == AuthKind::Token {
            let key_path = path_or_manifest(
                &args.token_key,
                &mut manifest,
                "token key",
                "--token-key",
                |m| Some(m.token_key.clone()),
            )?;
            let creds = TokenCredentials {
                key_pem: read(&key_path)?,
                key_id: value_or_manifest(
                    &args.key_id,
                    &mut manifest,
                    "key id",
                    "--key-id",
                    |m| m.key_id.clone(),
                )?,
                team_id: value_or_manifest(
                    &args.team_id,
                    &mut manifest,
                    "team id",
                    "--team-id",
                    |m| m.team_id.clone(),
                )?,
            };
            // Fail now, not per request, when the key cannot sign.
            crate::http2::auth::sign_jwt(
                &creds.key_pem,
                &creds.key_id,
                &creds.team_id,
                0,
                crate::http2::auth::SignatureForm::Raw,
            )
            .map_err(|e| ConfigError::Usage(format!("{}: {e}", key_path.display())))?;
            Some(creds)
        } else {
            None
        };

        // Token connections must name the topic (PROTOCOL.md 2.3); certificate ones may leave it
        // to the certificate, so a manifest that cannot be read is only fatal for tokens.
        let topic = match (&args.topic, auth) {
            (Some(t), _) => Some(t.clone()),
            (None, AuthKind::Token) => Some(value_or_manifest(
                &None,
                &mut manifest,
                "topic",
                "--topic",
                |m| m.topic.clone(),
            )?),
            (None, _) => manifest.get().ok().map(|m| m.topic.clone()),
        };

        if plan.bundle_id.is_none() && !plan.broadcasts.is_empty() {
            plan.bundle_id = topic.as_deref().map(|t| bundle_of(t).to_owned());
        }
        Ok(Job {
            target,
            ca_pem,
            identity,
            token,
            topic,
            plan,
            quiet_ms: args.quiet_ms,
        })
    }
}

/// The plan file, or a one-notification plan built from the single-notification options.
fn load_plan(args: &SendArgs) -> Result<Plan, ConfigError> {
    if let Some(path) = &args.plan {
        let text = read(path)?;
        let mut plan: Plan = serde_json::from_str(&text).map_err(|e| ConfigError::Plan {
            path: path.clone(),
            message: e.to_string(),
        })?;
        plan.read_feedback |= args.read_feedback;
        return Ok(plan);
    }
    let payload = match (&args.payload, &args.alert) {
        (Some(p), _) => serde_json::from_str(p)
            .map_err(|e| ConfigError::Usage(format!("--payload is not JSON: {e}")))?,
        (None, Some(alert)) => serde_json::json!({ "aps": { "alert": alert } }),
        (None, None) => serde_json::json!({ "aps": { "alert": "Hello from apnsim" } }),
    };
    // `--channel`: one broadcast to that channel of the topic's app (PROTOCOL.md 2.11).
    if let Some(channel) = &args.channel {
        return Ok(Plan {
            broadcasts: vec![BroadcastStep {
                id: 1,
                op: BroadcastOp::Broadcast,
                channel: Some(channel.clone()),
                storage_policy: None,
                payload: Some(payload),
                expiry: Some(args.expiry),
                priority: Some(args.priority),
            }],
            ..Plan::default()
        });
    }
    let token = args.token.clone().ok_or_else(|| {
        ConfigError::Usage(
            "give --plan FILE, --token HEX for one notification or --channel ID for one broadcast"
                .into(),
        )
    })?;
    Ok(Plan {
        notifications: vec![PlanNotification {
            id: 1,
            token,
            payload,
            expiry: args.expiry,
            priority: args.priority,
            push_type: Some(args.push_type.clone()),
            collapse_id: args.collapse_id.clone(),
        }],
        read_feedback: args.read_feedback,
        ..Plan::default()
    })
}

/// The bare bundle id of a topic: broadcasts name the app, not its Live Activity topic
/// (PROTOCOL.md 2.11: `/4/broadcasts/apps/<bundleId>`).
pub fn bundle_of(topic: &str) -> &str {
    topic
        .strip_suffix(".push-type.liveactivity")
        .unwrap_or(topic)
}
