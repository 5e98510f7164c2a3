//! `apnsim send`: a correct reference provider for both protocols, built into the binary. It fires
//! a test push by hand, and it is the conformance suite's gold provider: it follows the driver
//! contract of `fixtures/providers/README.md` (every flag has its `APNSIM_*` twin).
//!
//! Layout: `config` turns options and the certificate directory's manifest into a [`config::Job`],
//! `connect` opens TLS connections, `legacy` (+ `settle`, its pure bookkeeping) and `http2` (+ `jwt`, `token_file`,
//! `retry`) send, and this file prints the contract's report lines.

mod broadcast;
mod config;
pub mod connect;
mod http2;
pub mod jwt;
mod legacy;
pub mod mutant;
mod mutant_wire;
mod retry;
mod settle;
mod token_file;

pub use config::TokenCredentials;

use crate::model::{AuthKind, Environment, Protocol};
use crate::plan::{FeedbackTuple, Outcome, ResultKind};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `apnsim send`.
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// Wire protocol: `legacy` (binary gateway) or `http2`.
    #[arg(long, env = "APNSIM_PROTOCOL", default_value = "http2", value_parser = parse_protocol)]
    pub protocol: Protocol,
    /// HTTP/2 authentication: `certificate` or `token` (legacy always uses the certificate).
    #[arg(long, env = "APNSIM_AUTH", default_value = "certificate", value_parser = parse_auth)]
    pub auth: AuthKind,
    /// Apple environment: `production` or `sandbox`.
    #[arg(long, env = "APNSIM_ENVIRONMENT", default_value = "production", value_parser = parse_environment)]
    pub environment: Environment,
    /// Address to connect to.
    #[arg(long, env = "APNSIM_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Gateway (legacy) or HTTP/2 port [default: 2195/2295 legacy, 2197/2297 http2, as `serve`].
    #[arg(long, env = "APNSIM_PORT")]
    pub port: Option<u16>,
    /// Feedback service port [default: 2196 production, 2296 sandbox].
    #[arg(long, env = "APNSIM_FEEDBACK_PORT")]
    pub feedback_port: Option<u16>,
    /// Apple's host name, sent as SNI and `:authority` and verified in the server certificate
    /// [default: Apple's name for the protocol and environment].
    #[arg(long, env = "APNSIM_APPLE_HOST")]
    pub apple_host: Option<String>,
    /// CA certificate (PEM) the server must chain to [default: from --certs].
    #[arg(long, env = "APNSIM_CA")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) [default: the environment's identity from --certs].
    #[arg(long, env = "APNSIM_CERT")]
    pub cert: Option<PathBuf>,
    /// Client certificate's private key (PKCS#8 PEM) [default: from --certs].
    #[arg(long, env = "APNSIM_KEY")]
    pub key: Option<PathBuf>,
    /// ES256 provider-token key (.p8) [default: from --certs].
    #[arg(long, env = "APNSIM_TOKEN_KEY")]
    pub token_key: Option<PathBuf>,
    /// JWT key id [default: from --certs].
    #[arg(long, env = "APNSIM_KEY_ID")]
    pub key_id: Option<String>,
    /// JWT team id [default: from --certs].
    #[arg(long, env = "APNSIM_TEAM_ID")]
    pub team_id: Option<String>,
    /// `apns-topic` [default: from --certs].
    #[arg(long, env = "APNSIM_TOPIC")]
    pub topic: Option<String>,
    /// Certificate directory written by `apnsim certs` / `apnsim serve`: whatever is not given
    /// explicitly is taken from its manifest.json.
    #[arg(long, env = "APNSIM_CERTS", default_value = "certs")]
    pub certs: PathBuf,
    /// Send this plan (driver contract JSON) instead of one notification.
    #[arg(long, env = "APNSIM_PLAN")]
    pub plan: Option<PathBuf>,
    /// Broadcast to this channel (base64 `apns-channel-id`) of the topic's app instead of
    /// sending to a device (`POST /4/broadcasts/apps/<bundle>`, PROTOCOL.md 2.11); `--expiry`
    /// is sent as given, 0 included (the only value a no-storage channel accepts).
    #[arg(long, env = "APNSIM_CHANNEL", conflicts_with_all = ["plan", "token"])]
    pub channel: Option<String>,
    /// Channel-management port [default: 2198 production, 2298 sandbox, as `serve`].
    #[arg(long, env = "APNSIM_MANAGE_PORT")]
    pub manage_port: Option<u16>,
    /// Device token (hex) of the single notification.
    #[arg(long, env = "APNSIM_DEVICE_TOKEN")]
    pub token: Option<String>,
    /// Payload JSON of the single notification.
    #[arg(long, env = "APNSIM_PAYLOAD", conflicts_with = "alert")]
    pub payload: Option<String>,
    /// Alert text of the single notification (payload `{"aps":{"alert":TEXT}}`).
    #[arg(long, env = "APNSIM_ALERT")]
    pub alert: Option<String>,
    /// Priority of the single notification (10, 5 or 1).
    #[arg(long, env = "APNSIM_PRIORITY", default_value_t = 10)]
    pub priority: u8,
    /// Absolute expiry of the single notification, seconds since the epoch (0 = none).
    #[arg(long, env = "APNSIM_EXPIRY", default_value_t = 0)]
    pub expiry: u32,
    /// `apns-push-type` of the single notification.
    #[arg(long, env = "APNSIM_PUSH_TYPE", default_value = "alert")]
    pub push_type: String,
    /// `apns-collapse-id` of the single notification.
    #[arg(long, env = "APNSIM_COLLAPSE_ID")]
    pub collapse_id: Option<String>,
    /// Read the feedback service after sending.
    #[arg(long, env = "APNSIM_READ_FEEDBACK")]
    pub read_feedback: bool,
    /// Legacy: how long to wait for an error-response after the last write, in ms.
    #[arg(long, env = "APNSIM_QUIET_MS", default_value_t = 1000)]
    pub quiet_ms: u64,
    /// Break one rule on purpose (calibrates the conformance suite; see src/send/mutant.rs).
    #[arg(long, value_enum)]
    pub mutant: Option<mutant::Mutant>,
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    match s.to_ascii_lowercase().as_str() {
        "legacy" => Ok(Protocol::Legacy),
        "http2" => Ok(Protocol::Http2),
        _ => Err(format!("{s:?}: expected legacy or http2")),
    }
}

fn parse_auth(s: &str) -> Result<AuthKind, String> {
    match s.to_ascii_lowercase().as_str() {
        "certificate" => Ok(AuthKind::Certificate),
        "token" => Ok(AuthKind::Token),
        _ => Err(format!("{s:?}: expected certificate or token")),
    }
}

fn parse_environment(s: &str) -> Result<Environment, String> {
    match s.to_ascii_lowercase().as_str() {
        "production" => Ok(Environment::Production),
        "sandbox" => Ok(Environment::Sandbox),
        _ => Err(format!("{s:?}: expected production or sandbox")),
    }
}

/// Sends what the options or the plan say and prints the contract's report lines.
pub async fn run(args: SendArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let single = args.plan.is_none();
    // Driver contract: a driver that cannot run (bad plan, missing credentials) exits 2.
    let job = match config::Job::resolve(&args) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("apnsim send: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(m) = args.mutant {
        mutant::set(m);
    }
    let ids = (job.plan.notifications.iter().map(|n| n.id))
        .chain(job.plan.broadcasts.iter().map(|s| s.id));
    if let Some(outcomes) = mutant::without_connecting(ids) {
        print_report(&outcomes, None)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut outcomes = match job.target.protocol {
        _ if job.plan.notifications.is_empty() => Vec::new(),
        Protocol::Http2 => http2::send(&job).await,
        _ => legacy::send(&job).await,
    };
    if !job.plan.broadcasts.is_empty() {
        outcomes.extend(broadcast::send(&job).await);
    }
    let feedback = if job.plan.read_feedback {
        match legacy::read_feedback(&job).await {
            Ok(tuples) => Some(tuples),
            Err(e) => {
                eprintln!("apnsim send: feedback: {e}");
                Some(Vec::new())
            }
        }
    } else {
        None
    };
    print_report(&outcomes, feedback.as_deref())?;
    let all_sent = outcomes.iter().all(|o| o.result == ResultKind::Sent);
    Ok(if single && !all_sent {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints one line per outcome, the feedback line if read, then `{"done":true}` (driver contract).
fn print_report(
    outcomes: &[Outcome],
    feedback: Option<&[FeedbackTuple]>,
) -> Result<(), Box<dyn std::error::Error>> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for o in outcomes {
        writeln!(out, "{}", serde_json::to_string(o)?)?;
    }
    if let Some(tuples) = feedback {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&serde_json::json!({ "feedback": tuples }))?
        )?;
    }
    writeln!(out, "{}", serde_json::json!({ "done": true }))?;
    out.flush()?;
    Ok(())
}

/// An `error` outcome: a failure that is not an APNs answer.
fn error_outcome(id: u32, reason: impl Into<String>) -> Outcome {
    Outcome {
        id,
        result: ResultKind::Error,
        reason: Some(reason.into()),
        status: None,
        timestamp: None,
        apns_id: None,
        channel: None,
    }
}

/// A `sent` outcome.
fn sent_outcome(id: u32, apns_id: Option<String>) -> Outcome {
    Outcome {
        id,
        result: ResultKind::Sent,
        reason: None,
        status: None,
        timestamp: None,
        apns_id,
        channel: None,
    }
}
