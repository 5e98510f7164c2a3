//! Runs one case against one provider: a fresh in-process emulator on ephemeral ports with the
//! case's scenario, the driver as a child process with the contract's environment, then the
//! judge over the journal and the driver's report.

use crate::certs::Manifest;
use crate::conformance::case::DRIVER_MARKER;
use crate::conformance::case::{AuthChoice, Case, Finding, Grade, Setup};
use crate::conformance::case::{Exit, Facts};
use crate::conformance::judge;
use crate::conformance::provider::Provider;
use crate::emulator::{CertSource, Emulator};
use crate::journal::{Event, EventKind, Filter, NewEvent};
use crate::model::{AuthKind, Environment, Protocol};
use crate::plan::DriverOutput;
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// What every run shares.
#[derive(Debug, Clone)]
pub struct RunEnv {
    /// Where providers are installed (`{build}` = `tools/<name>`).
    pub tools: PathBuf,
    /// This binary (`{apnsim}`).
    pub apnsim: PathBuf,
    /// Certificates every emulator and driver of the run use.
    pub certs: PathBuf,
    /// Their manifest.
    pub manifest: Manifest,
    /// Per-run artefacts go under `runs/<provider>/<case>/`.
    pub runs: PathBuf,
    /// Multiplies each case's timeout (slow machines).
    pub timeout_scale: f64,
}

/// The outcome of one case for one provider, as the reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Provider name.
    pub provider: String,
    /// Case id.
    pub case: String,
    /// Case title.
    pub title: String,
    /// The grade.
    pub grade: Grade,
    /// One line of why.
    pub summary: String,
    /// Everything the judge noted, with journal seqs.
    pub findings: Vec<Finding>,
    /// Wall time of the driver run.
    pub duration_ms: u64,
    /// Authentication used (absent when not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthKind>,
    /// How the driver ended (absent when not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<Exit>,
    /// Artefacts folder relative to the report directory (plan, journal, stdout, stderr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<String>,
    /// With `--repeat`, the grades of the runs when they differed (`OK 2/3, FAILED 1/3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flaky: Option<String>,
}

/// A result for a cell that did not run.
pub fn not_run(provider: &Provider, case: &str, why: &str) -> CaseResult {
    CaseResult {
        provider: provider.name().to_string(),
        case: case.to_string(),
        title: String::new(),
        grade: Grade::Failed,
        summary: why.to_string(),
        findings: Vec::new(),
        duration_ms: 0,
        auth: None,
        exit: None,
        artifacts: None,
        flaky: None,
    }
}

/// The repeated runs of one cell folded into one: the worst run, marked flaky when the grades
/// differed.
pub fn worst_of(mut runs: Vec<CaseResult>) -> Option<CaseResult> {
    let mut counts: std::collections::BTreeMap<Grade, usize> = std::collections::BTreeMap::new();
    for r in &runs {
        *counts.entry(r.grade).or_default() += 1;
    }
    let n = runs.len();
    runs.sort_by_key(|r| std::cmp::Reverse(r.grade));
    let mut worst = runs.into_iter().next()?;
    if counts.len() > 1 {
        let list: Vec<String> = counts.iter().map(|(g, k)| format!("{g} {k}/{n}")).collect();
        worst.flaky = Some(list.join(", "));
    }
    Some(worst)
}

/// Chooses the auth for `case`, or says why the provider cannot run it.
fn choose_auth(case: &Case, provider: &Provider, setup: &Setup) -> Result<AuthKind, String> {
    if !provider.speaks(case.protocol) {
        return Err(format!(
            "{} declares no {} support",
            provider.name(),
            case.protocol.as_str()
        ));
    }
    if !setup.plan.broadcasts.is_empty() && !provider.spec.broadcast {
        return Err(format!(
            "{} declares no broadcast support (channel management, /4/broadcasts)",
            provider.name()
        ));
    }
    if setup.plan.read_feedback && !provider.spec.feedback {
        return Err(format!(
            "{} cannot read the feedback service",
            provider.name()
        ));
    }
    let want: &[AuthKind] = match case.auth {
        AuthChoice::Certificate => &[AuthKind::Certificate],
        AuthChoice::Token => &[AuthKind::Token],
        AuthChoice::Either => &[AuthKind::Token, AuthKind::Certificate],
    };
    let missing = match case.auth {
        AuthChoice::Certificate => "certificate",
        AuthChoice::Token => "token",
        AuthChoice::Either => "certificate or token",
    };
    want.iter()
        .copied()
        .find(|a| provider.has_auth(*a))
        .ok_or_else(|| format!("{} declares no {missing} authentication", provider.name()))
}

/// Runs `case` against `provider` and judges it; never fails (trouble becomes a FAILED grade).
/// `run` numbers the repetition (0 first): later ones keep their artefacts in `<case>-rN`.
pub async fn run_case(env: &RunEnv, provider: &Provider, case: &Case, run: u32) -> CaseResult {
    let mut setup = Setup::new(case.id);
    (case.setup)(&mut setup, case.protocol);
    let mut result = CaseResult {
        provider: provider.name().to_string(),
        case: case.id.to_string(),
        title: case.title.to_string(),
        grade: Grade::Unsupported,
        summary: String::new(),
        findings: Vec::new(),
        duration_ms: 0,
        auth: None,
        exit: None,
        artifacts: None,
        flaky: None,
    };
    let auth = match choose_auth(case, provider, &setup) {
        Ok(a) => a,
        Err(why) => {
            result.summary = why;
            return result;
        }
    };
    result.auth = Some(auth);
    let folder = if run == 0 {
        case.id.to_string()
    } else {
        format!("{}-r{}", case.id, run + 1)
    };
    let dir = env.runs.join(provider.name()).join(&folder);
    match run_driver(env, provider, case, &mut setup, auth, &dir).await {
        Ok((exit, output, events, elapsed)) => {
            let facts = Facts::new(case, &setup, &output, &exit, &events);
            let mut findings = judge::common(&facts);
            findings.extend((case.judge)(&facts));
            judge::cite_window(&facts, &mut findings);
            let grade = judge::grade(case, &findings);
            let delivered = setup
                .plan
                .notifications
                .iter()
                .filter(|n| !facts.attempts(n.id).accepted.is_empty())
                .count();
            result.summary =
                judge::summary(grade, &findings, delivered, setup.plan.notifications.len());
            if setup.plan.notifications.is_empty() && grade == Grade::Ok {
                // A broadcast case: its steps are what was planned.
                result.summary = format!(
                    "all {} broadcast steps answered and reported as meant",
                    setup.plan.broadcasts.len()
                );
            }
            result.grade = grade;
            result.findings = findings;
            result.exit = Some(exit);
            result.duration_ms = elapsed.as_millis() as u64;
        }
        Err(e) => {
            result.grade = Grade::Failed;
            result.summary = format!("the case could not run: {e}");
        }
    }
    let _ = std::fs::write(
        dir.join("result.json"),
        serde_json::to_vec_pretty(&result).unwrap_or_default(),
    );
    result.artifacts = Some(format!("runs/{}/{folder}", provider.name()));
    result
}

type RunOutput = (Exit, DriverOutput, Vec<Event>, Duration);

async fn run_driver(
    env: &RunEnv,
    provider: &Provider,
    case: &Case,
    setup: &mut Setup,
    auth: AuthKind,
    dir: &Path,
) -> Result<RunOutput, Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(dir)?;
    // The artefact is the text the emulator ran, the runner's own settings included, so loading
    // it reproduces the case exactly.
    let text = scenario_text(case, setup, provider.spec.tls_min);
    let scenario =
        crate::engine::scenario::parse_toml(&text).map_err(|e| format!("case scenario: {e}"))?;
    std::fs::write(dir.join("scenario.toml"), &text)?;
    let emu = Emulator::builder()
        .certs(CertSource::Dir(env.certs.clone()))
        .control_port(None)
        .scenario(scenario, None)
        .start()
        .await?;
    // The case's channels and their subscribed devices exist before the driver starts (a
    // device subscribes out of band); the plan names them by their real ids.
    crate::conformance::broadcast::prepare(&emu, setup, &env.manifest.topic)?;
    let plan_path = dir.join("plan.json");
    std::fs::write(&plan_path, serde_json::to_vec(&setup.plan)?)?;
    let journal = emu.journal().clone();
    let vars = driver_env(
        env,
        &emu,
        case.protocol,
        setup.environment,
        auth,
        &plan_path,
    )?;

    let command = provider.command(&env.tools, &env.apnsim);
    let timeout = case.timeout.mul_f64(env.timeout_scale.max(0.1));
    let started = Instant::now();
    journal.record(driver_marker(case, setup, json!("started")));
    let (exit, stdout, stderr) = spawn_and_wait(&command, &provider.dir, &vars, timeout).await;
    let elapsed = started.elapsed();
    settle(&journal).await;
    // After the server journaled the driver's last connection: the window every finding about
    // something that never happened cites (seq of `started` to seq of `exited`).
    journal.record(driver_marker(case, setup, serde_json::to_value(&exit)?));
    emu.shutdown_with(Duration::from_millis(500)).await;
    let events = journal.query(&Filter::default());

    std::fs::write(dir.join("stdout.txt"), &stdout)?;
    std::fs::write(dir.join("stderr.txt"), &stderr)?;
    let mut lines = Vec::with_capacity(events.len() * 200);
    for e in &events {
        serde_json::to_writer(&mut lines, e)?;
        lines.push(b'\n');
    }
    std::fs::write(dir.join("journal.jsonl"), lines)?;
    let output = DriverOutput::parse(&String::from_utf8_lossy(&stdout));
    Ok((exit, output, events, elapsed))
}

/// The scenario text a case runs: the case's own, plus the settings the runner sets (per
/// connection token-update counting outside the case that targets it, see
/// [`Case::counts_token_updates_per_team`]).
pub fn scenario_text(
    case: &Case,
    setup: &Setup,
    tls_min: Option<crate::settings::LegacyTlsMin>,
) -> String {
    let mut text = setup.scenario.clone();
    let mut lines = String::new();
    if !case.counts_token_updates_per_team() {
        lines.push_str("token_update_scope = \"connection\"\n");
    }
    // A provider that hard-codes TLS 1.0/1.1 gets a gateway that speaks it (provider.toml `tls_min`).
    if let Some(min) = tls_min {
        lines.push_str(&format!("legacy_tls_min = \"{}\"\n", min.as_str()));
    }
    if !lines.is_empty() {
        match text.find("[settings]\n") {
            Some(at) => text.insert_str(at + "[settings]\n".len(), &lines),
            None => {
                text.push_str("\n[settings]\n");
                text.push_str(&lines);
            }
        }
    }
    text
}

/// A journal event of the runner's own: the driver started, or how it ended (connection 0).
fn driver_marker(case: &Case, setup: &Setup, what: serde_json::Value) -> NewEvent {
    NewEvent::new(EventKind::Observation, 0, case.protocol, setup.environment)
        .detail(json!({ DRIVER_MARKER: what }))
}

/// Most the runner waits for the server to journal the end of the driver's connections.
const SETTLE_MAX: Duration = Duration::from_secs(3);

/// Waits until every connection the driver opened is journaled closed (the server journals
/// the last frames and the close just after the driver exits), then one poll more with nothing
/// new. Decided by the journal, not by a quiet period: a slow machine only waits longer. Bounded
/// by [`SETTLE_MAX`] for a connection a driver's stray child keeps open.
async fn settle(journal: &crate::journal::Journal) {
    let deadline = Instant::now() + SETTLE_MAX;
    let mut last = u64::MAX;
    loop {
        let now = journal.last_seq();
        if (now == last && open_connections(journal) == 0) || Instant::now() > deadline {
            return;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Connections journaled opened and not yet closed.
fn open_connections(journal: &crate::journal::Journal) -> usize {
    let ids = |kind| -> std::collections::BTreeSet<u64> {
        journal
            .query(&Filter::kind(kind))
            .iter()
            .map(|e| e.connection)
            .collect()
    };
    let closed = ids(EventKind::ConnectionClosed);
    ids(EventKind::ConnectionOpened).difference(&closed).count()
}

fn driver_env(
    env: &RunEnv,
    emu: &Emulator,
    protocol: Protocol,
    environment: Environment,
    auth: AuthKind,
    plan: &Path,
) -> Result<Vec<(String, String)>, String> {
    let sandbox = environment == Environment::Sandbox;
    let prefix = if sandbox { "sandbox_" } else { "" };
    let port_key = match protocol {
        Protocol::Http2 => format!("{prefix}http2"),
        _ => format!("{prefix}legacy"),
    };
    let port = emu
        .addr(&port_key)
        .ok_or_else(|| format!("no {port_key} listener"))?;
    let feedback = emu
        .addr(&format!("{prefix}feedback"))
        .ok_or("no feedback listener")?;
    let manage = emu
        .addr(&format!("{prefix}manage_broadcast"))
        .ok_or("no channel-management listener")?;
    let m = &env.manifest;
    let ident = m
        .identities
        .iter()
        .find(|i| i.name == environment.as_str())
        .ok_or_else(|| format!("no {} identity in the manifest", environment.as_str()))?;
    let file = |name: &str| env.certs.join(name).to_string_lossy().into_owned();
    let auth = match auth {
        AuthKind::Token => "token",
        _ => "certificate",
    };
    Ok(vec![
        ("APNSIM_PROTOCOL".into(), protocol.as_str().into()),
        ("APNSIM_AUTH".into(), auth.into()),
        ("APNSIM_ENVIRONMENT".into(), environment.as_str().into()),
        ("APNSIM_HOST".into(), port.ip().to_string()),
        ("APNSIM_PORT".into(), port.port().to_string()),
        ("APNSIM_FEEDBACK_PORT".into(), feedback.port().to_string()),
        (
            "APNSIM_APPLE_HOST".into(),
            environment.apple_host(protocol).into(),
        ),
        ("APNSIM_CA".into(), file(&m.ca)),
        ("APNSIM_CERT".into(), file(&ident.cert)),
        ("APNSIM_KEY".into(), file(&ident.key)),
        ("APNSIM_CERT_COMBINED".into(), file(&ident.combined)),
        ("APNSIM_P12".into(), file(&ident.p12)),
        ("APNSIM_P12_PASSWORD".into(), m.p12_password.clone()),
        ("APNSIM_TOKEN_KEY".into(), file(&m.token_key)),
        ("APNSIM_KEY_ID".into(), m.key_id.clone()),
        ("APNSIM_TEAM_ID".into(), m.team_id.clone()),
        ("APNSIM_TOPIC".into(), m.topic.clone()),
        ("APNSIM_PLAN".into(), plan.to_string_lossy().into_owned()),
        // PROTOCOL.md 2.11: the channel-management API's port and Apple's host name for it.
        ("APNSIM_MANAGE_PORT".into(), manage.port().to_string()),
        (
            "APNSIM_MANAGE_HOST".into(),
            environment.manage_host().into(),
        ),
        (
            "APNSIM_CERTS".into(),
            env.certs.to_string_lossy().into_owned(),
        ),
    ])
}

/// Most driver output kept (a library that logs without end must not exhaust memory).
const MAX_OUTPUT: u64 = 16 << 20;

async fn spawn_and_wait(
    command: &[String],
    cwd: &Path,
    vars: &[(String, String)],
    timeout: Duration,
) -> (Exit, Vec<u8>, Vec<u8>) {
    let mut cmd = tokio::process::Command::new(&command[0]);
    cmd.args(&command[1..])
        .current_dir(cwd)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                Exit::Spawn {
                    error: format!("{}: {e}", command[0]),
                },
                Vec::new(),
                Vec::new(),
            )
        }
    };
    let read = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(MAX_OUTPUT).read_to_end(&mut buf).await;
            }
            buf
        })
    };
    let out = read(child.stdout.take().map(|p| Box::new(p) as _));
    let err = read(child.stderr.take().map(|p| Box::new(p) as _));
    let exit = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => match status.code() {
            Some(code) => Exit::Code { code },
            None => Exit::Signal,
        },
        Ok(Err(e)) => Exit::Spawn {
            error: e.to_string(),
        },
        Err(_) => {
            let _ = child.kill().await;
            Exit::Timeout {
                secs: timeout.as_secs(),
                killed_at_ms: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
            }
        }
    };
    // The driver's own children (a shell's curl) may hold the pipes open: bound the wait.
    let grab = |h: tokio::task::JoinHandle<Vec<u8>>| async move {
        match tokio::time::timeout(Duration::from_secs(5), h).await {
            Ok(Ok(v)) => v,
            _ => Vec::new(),
        }
    };
    let stdout = grab(out).await;
    let stderr = grab(err).await;
    (exit, stdout, stderr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::catalogue::catalogue;
    use crate::http2::team_tokens::TokenUpdateScope;

    fn scenario_of(id: &str) -> (String, crate::settings::Settings) {
        let case = catalogue().into_iter().find(|c| c.id == id).unwrap();
        let mut setup = Setup::new(case.id);
        (case.setup)(&mut setup, case.protocol);
        let text = scenario_text(&case, &setup, None);
        let settings = crate::engine::scenario::parse_toml(&text)
            .unwrap_or_else(|e| panic!("{id}: {e}\n{text}"))
            .effective_settings();
        (text, settings)
    }

    #[test]
    fn the_scenario_artefact_holds_the_settings_the_runner_sets() {
        let (text, s) = scenario_of("H1.1");
        assert!(
            text.contains("token_update_scope = \"connection\""),
            "{text}"
        );
        assert_eq!(s.token_update_scope, TokenUpdateScope::Connection);
        // A case with its own [settings] keeps them, the runner's added to the same table.
        let (_, s) = scenario_of("H5.2");
        assert_eq!(s.token_update_scope, TokenUpdateScope::Connection);
        assert_eq!(s.jwt_max_age_secs, 3);
        let (text, s) = scenario_of("H5.3");
        assert!(!text.contains("token_update_scope"), "{text}");
        assert_eq!(s.token_update_scope, TokenUpdateScope::Team);
    }
}
