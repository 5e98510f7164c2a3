//! `apnsim serve`: flags, environment twins and the TOML config merged into one emulator start,
//! ready lines and the ready file, and graceful shutdown on Ctrl-C / SIGTERM.

use apnsim::settings::Settings;
use apnsim::{CertSource, Emulator};
use clap::{Args, ValueEnum};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// A listener port: a number (0 = ephemeral), `ADDR:PORT` for a listener of its own address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// Listen on this port, on `--bind` or on the address given with it.
    On(Option<IpAddr>, u16),
    /// Do not open this listener.
    Off,
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u16),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(p) => Ok(Port::On(None, p)),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl std::str::FromStr for Port {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Port::Off);
        }
        if let Ok(addr) = s.parse::<std::net::SocketAddr>() {
            return Ok(Port::On(Some(addr.ip()), addr.port()));
        }
        s.parse()
            .map(|p| Port::On(None, p))
            .map_err(|_| format!("{s:?} is not a port number, ADDR:PORT or \"off\""))
    }
}

impl Port {
    fn get(self) -> Option<u16> {
        match self {
            Port::On(_, p) => Some(p),
            Port::Off => None,
        }
    }

    fn ip(self) -> Option<IpAddr> {
        match self {
            Port::On(ip, _) => ip,
            Port::Off => None,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Options of `serve`. Precedence: flag, then `APNSIM_*` variable, then `--config`, then default.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file with any of the options below (same names, with underscores) and a [settings] table.
    #[arg(long, env = "APNSIM_CONFIG")]
    config: Option<PathBuf>,
    /// Address every listener binds [default: 127.0.0.1].
    #[arg(long, env = "APNSIM_BIND")]
    bind: Option<IpAddr>,
    /// Production legacy gateway port, 0 = ephemeral, off = closed; every port also takes ADDR:PORT
    /// (e.g. 127.0.0.2:2195) to bind its own address [default: 2195].
    #[arg(long, env = "APNSIM_LEGACY_PORT")]
    legacy_port: Option<Port>,
    /// Production feedback port [default: 2196].
    #[arg(long, env = "APNSIM_FEEDBACK_PORT")]
    feedback_port: Option<Port>,
    /// Sandbox legacy gateway port [default: 2295].
    #[arg(long, env = "APNSIM_SANDBOX_LEGACY_PORT")]
    sandbox_legacy_port: Option<Port>,
    /// Sandbox feedback port [default: 2296].
    #[arg(long, env = "APNSIM_SANDBOX_FEEDBACK_PORT")]
    sandbox_feedback_port: Option<Port>,
    /// Production HTTP/2 API port [default: 2197].
    #[arg(long, env = "APNSIM_HTTP2_PORT")]
    http2_port: Option<Port>,
    /// Sandbox HTTP/2 API port [default: 2297].
    #[arg(long, env = "APNSIM_SANDBOX_HTTP2_PORT")]
    sandbox_http2_port: Option<Port>,
    /// Production broadcast channel-management port (Apple: 2196, taken by feedback) [default: 2198].
    #[arg(long, env = "APNSIM_MANAGE_BROADCAST_PORT")]
    manage_broadcast_port: Option<Port>,
    /// Sandbox broadcast channel-management port (Apple: 2195) [default: 2298].
    #[arg(long, env = "APNSIM_SANDBOX_MANAGE_BROADCAST_PORT")]
    sandbox_manage_broadcast_port: Option<Port>,
    /// Control API port (HTTP; bound to --bind unless given as ADDR:PORT) [default: 2199].
    #[arg(long, env = "APNSIM_CONTROL_PORT")]
    control_port: Option<Port>,
    /// Bearer token the control API requires (except /livez and /readyz) [default: none].
    #[arg(long, env = "APNSIM_CONTROL_TOKEN", hide_env_values = true)]
    control_token: Option<String>,
    /// Serve the control API beyond loopback with no --control-token (refused otherwise).
    #[arg(long, env = "APNSIM_CONTROL_INSECURE")]
    control_insecure: bool,
    /// Certificate directory; generated on first run [default: certs].
    #[arg(long, env = "APNSIM_CERTS")]
    certs: Option<PathBuf>,
    /// App topic of generated provider certificates [default: com.example.app].
    #[arg(long, env = "APNSIM_TOPIC")]
    topic: Option<String>,
    /// Write a JSON object of listener addresses here once every listener is bound.
    #[arg(long, env = "APNSIM_READY_FILE")]
    ready_file: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, env = "APNSIM_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Refuse unregistered tokens (status 8).
    #[arg(long, env = "APNSIM_STRICT_TOKENS")]
    strict_tokens: Option<bool>,
    /// Refuse payloads the payload lint warns about (HTTP/2 400 BadRequestPayload, legacy status 255).
    #[arg(long, env = "APNSIM_STRICT_PAYLOAD")]
    strict_payload: Option<bool>,
    /// Allow TLS 1.3 on the legacy and feedback ports (default: TLS 1.2 only).
    #[arg(long, env = "APNSIM_LEGACY_TLS13")]
    legacy_tls13: Option<bool>,
    /// How long a legacy verdict that ends the connection (error-response, command-0 close, drop,
    /// reset) takes to arrive, in milliseconds, reading and discarding meanwhile [default: 200].
    #[arg(
        long,
        alias = "legacy-error-delay-ms",
        env = "APNSIM_LEGACY_ANSWER_DELAY_MS"
    )]
    legacy_answer_delay_ms: Option<u64>,
    /// Gap between the last data and close_notify on the legacy ports, in milliseconds [default: 20].
    #[arg(long, env = "APNSIM_LEGACY_CLOSE_GAP_MS")]
    legacy_close_gap_ms: Option<u64>,
    /// Lowest TLS version on the legacy and feedback ports: 1.0, 1.1 (OpenSSL, for providers that
    /// hard-code it) or 1.2 [default: 1.2].
    #[arg(long, env = "APNSIM_LEGACY_TLS_MIN")]
    legacy_tls_min: Option<apnsim::settings::LegacyTlsMin>,
    /// Journal capacity in events [default: 100000].
    #[arg(long, env = "APNSIM_JOURNAL_CAPACITY")]
    journal_capacity: Option<usize>,
    /// Stream every journal event to this file as JSON lines (nothing lost to the journal's bound).
    #[arg(long, env = "APNSIM_JOURNAL_FILE")]
    journal_file: Option<PathBuf>,
    /// Scenario file (TOML, or JSON by extension) loaded at start; its [settings] replace the defaults.
    #[arg(long, env = "APNSIM_SCENARIO")]
    scenario: Option<PathBuf>,
    /// Runtime worker threads, at least 1 [default: the number of cores].
    #[arg(long, env = "APNSIM_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    bind: Option<IpAddr>,
    legacy_port: Option<Port>,
    feedback_port: Option<Port>,
    sandbox_legacy_port: Option<Port>,
    sandbox_feedback_port: Option<Port>,
    http2_port: Option<Port>,
    sandbox_http2_port: Option<Port>,
    manage_broadcast_port: Option<Port>,
    sandbox_manage_broadcast_port: Option<Port>,
    control_port: Option<Port>,
    control_token: Option<String>,
    control_insecure: Option<bool>,
    journal_file: Option<PathBuf>,
    certs: Option<PathBuf>,
    topic: Option<String>,
    ready_file: Option<PathBuf>,
    log_format: Option<LogFormat>,
    settings: Option<Settings>,
    scenario: Option<PathBuf>,
    threads: Option<u16>,
}

impl ServeArgs {
    /// The runtime's worker threads (flag, variable, then the `--config` file's `threads`; `None`
    /// = one per core): read before the runtime starts, since it sizes the runtime.
    pub fn threads(&self) -> Result<Option<usize>, String> {
        if let Some(n) = self.threads {
            return Ok(Some(n.into()));
        }
        let Some(path) = &self.config else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: ConfigFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        match file.threads {
            Some(0) => Err(format!("{}: threads must be at least 1", path.display())),
            n => Ok(n.map(usize::from)),
        }
    }
}

/// Runs the emulator until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let file: ConfigFile = match &args.config {
        Some(path) => {
            let text = apnsim::files::read_text_async(path.clone()).await?;
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => ConfigFile::default(),
    };
    let log_format = args.log_format.or(file.log_format).unwrap_or_default();
    init_logging(log_format);
    raise_fd_limit();

    let mut settings = file.settings.unwrap_or_default();
    if let Some(v) = args.strict_tokens {
        settings.strict_tokens = v;
    }
    if let Some(v) = args.strict_payload {
        settings.strict_payload = v;
    }
    if let Some(v) = args.legacy_tls13 {
        settings.legacy_tls13 = v;
    }
    // The variable's old name still counts (the flag's old name is a clap alias).
    let old_env = std::env::var("APNSIM_LEGACY_ERROR_DELAY_MS")
        .ok()
        .map(|v| v.parse::<u64>())
        .transpose()
        .map_err(|e| format!("APNSIM_LEGACY_ERROR_DELAY_MS: {e}"))?;
    if let Some(v) = args.legacy_answer_delay_ms.or(old_env) {
        settings.legacy_answer_delay_ms = v;
    }
    if let Some(v) = args.legacy_close_gap_ms {
        settings.legacy_close_gap_ms = v;
    }
    if let Some(v) = args.legacy_tls_min {
        settings.legacy_tls_min = v;
    }
    if let Some(v) = args.journal_capacity {
        settings.journal_capacity = v;
    }
    // Listeners given as ADDR:PORT bind their own address (one port number, two environments).
    let ips = std::cell::RefCell::new(Vec::new());
    let port = |listener: &'static str, flag: Option<Port>, conf: Option<Port>, default: u16| {
        let chosen = flag.or(conf).unwrap_or(Port::On(None, default));
        if let Some(ip) = chosen.ip() {
            ips.borrow_mut().push((listener, ip));
        }
        chosen.get()
    };
    let certs = args
        .certs
        .or(file.certs)
        .unwrap_or_else(|| PathBuf::from("certs"));
    let topic = args
        .topic
        .or(file.topic)
        .unwrap_or_else(|| apnsim::DEFAULT_TOPIC.to_string());
    let ready_file = args.ready_file.or(file.ready_file);
    let bind = args
        .bind
        .or(file.bind)
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let control_token = args.control_token.or(file.control_token);

    let mut scenario_arg = None;
    if let Some(path) = args.scenario.or(file.scenario) {
        let text = apnsim::files::read_text_async(path.clone()).await?;
        let scenario =
            apnsim::engine::scenario::parse_named(&path, &text).map_err(|e| e.to_string())?;
        let base = path.parent().map(std::path::Path::to_path_buf);
        scenario_arg = Some((scenario, base));
    }
    let mut builder = Emulator::builder()
        .bind(bind)
        .legacy_port(port("legacy", args.legacy_port, file.legacy_port, 2195))
        .feedback_port(port(
            "feedback",
            args.feedback_port,
            file.feedback_port,
            2196,
        ))
        .sandbox_legacy_port(port(
            "sandbox_legacy",
            args.sandbox_legacy_port,
            file.sandbox_legacy_port,
            2295,
        ))
        .sandbox_feedback_port(port(
            "sandbox_feedback",
            args.sandbox_feedback_port,
            file.sandbox_feedback_port,
            2296,
        ))
        .http2_port(port("http2", args.http2_port, file.http2_port, 2197))
        .sandbox_http2_port(port(
            "sandbox_http2",
            args.sandbox_http2_port,
            file.sandbox_http2_port,
            2297,
        ))
        .manage_broadcast_port(port(
            "manage_broadcast",
            args.manage_broadcast_port,
            file.manage_broadcast_port,
            2198,
        ))
        .sandbox_manage_broadcast_port(port(
            "sandbox_manage_broadcast",
            args.sandbox_manage_broadcast_port,
            file.sandbox_manage_broadcast_port,
            2298,
        ))
        .control_port(port(
            "control",
            args.control_port,
            file.control_port,
            apnsim::control::DEFAULT_PORT,
        ))
        .control_token(control_token.clone())
        .control_insecure(args.control_insecure || file.control_insecure.unwrap_or(false))
        .journal_file(args.journal_file.or(file.journal_file))
        .certs(CertSource::Dir(certs.clone()))
        .topic(topic)
        .settings(settings);
    for (listener, ip) in ips.take() {
        builder = builder.listener_ip(listener, ip);
    }
    if let Some((scenario, base)) = scenario_arg {
        // After .settings(): the scenario's [settings], when present, win.
        builder = builder.scenario(scenario, base);
    }
    let emu = builder.start().await?;

    let names = [
        ("legacy", "legacy gateway (production)"),
        ("feedback", "feedback service (production)"),
        ("sandbox_legacy", "legacy gateway (sandbox)"),
        ("sandbox_feedback", "feedback service (sandbox)"),
        ("http2", "HTTP/2 API (production)"),
        ("sandbox_http2", "HTTP/2 API (sandbox)"),
        (
            "manage_broadcast",
            "broadcast channel management (production)",
        ),
        (
            "sandbox_manage_broadcast",
            "broadcast channel management (sandbox)",
        ),
    ];
    for (key, name) in names {
        if let Some(addr) = emu.addr(key) {
            println!("apnsim {name} ready on {addr}");
        }
    }
    if let Some(addr) = emu.addr("control") {
        println!("apnsim control API ready on http://{addr}");
        if control_token.is_none() && !bind.is_loopback() {
            println!("apnsim warning: the control API is reachable beyond loopback with no --control-token");
        }
    }
    println!(
        "apnsim certificates in {} (CA: ca.pem, provider identities: provider-*.pem/.p12)",
        certs.display()
    );
    // `--threads` (default: one per core), so a figure can be read against it.
    println!(
        "apnsim runtime: {} worker threads",
        tokio::runtime::Handle::current().metrics().num_workers()
    );
    if let Some(path) = &ready_file {
        let json: serde_json::Map<String, serde_json::Value> = emu
            .addrs()
            .0
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.to_string())))
            .collect();
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, serde_json::to_vec(&json)?).await?;
        tokio::fs::rename(&tmp, path).await?;
    }
    wait_for_signal().await;
    println!("apnsim shutting down");
    emu.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Raises the open-file limit to its hard limit: every connection is a descriptor, and the soft
/// default (often 1024) would let a few thousand idle clients lock out the rest.
fn raise_fd_limit() {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                let wanted = libc::rlimit {
                    rlim_cur: lim.rlim_max,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
                    tracing::warn!(soft = lim.rlim_cur, "could not raise the open-file limit");
                }
            }
        }
        tracing::debug!(limit = lim.rlim_max, "open-file limit");
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
