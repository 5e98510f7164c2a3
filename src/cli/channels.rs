//! `apnsim channels create|list|read|delete|broadcast`: the channel-management API and
//! `/4/broadcasts` (PROTOCOL.md 2.11) from the command line, as a correct provider calls them:
//! token auth with the certificate directory's key, Apple's host names as SNI and `:authority`.

use apnsim::certs::Manifest;
use apnsim::model::Environment;
use apnsim::send::connect::Connector;
use apnsim::send::jwt::JwtCache;
use apnsim::send::TokenCredentials;
use bytes::Bytes;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Options of `channels`.
#[derive(Debug, Args)]
pub struct ChannelsArgs {
    #[command(subcommand)]
    op: Op,
    /// Certificate directory (CA, token key and ids from manifest.json).
    #[arg(long, default_value = "certs", env = "APNSIM_CERTS")]
    certs: PathBuf,
    /// `production` or `sandbox`.
    #[arg(long, default_value = "production")]
    environment: String,
    /// Address of apnsim.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port [default: 2198 / 2298 for management, 2197 / 2297 for broadcast].
    #[arg(long)]
    port: Option<u16>,
    /// App bundle id [default: the manifest's topic].
    #[arg(long)]
    bundle: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Op {
    /// Create a channel (prints its apns-channel-id).
    Create {
        /// 0 = no storage, 1 = most recent message kept for offline devices.
        #[arg(long, default_value_t = 1)]
        storage_policy: u8,
    },
    /// List the app's channel ids.
    List,
    /// Read one channel's settings.
    Read {
        /// The base64 channel id.
        id: String,
    },
    /// Delete a channel.
    Delete {
        /// The base64 channel id.
        id: String,
    },
    /// Broadcast a Live Activity update to a channel (`POST /4/broadcasts/apps/<bundle>`).
    Broadcast {
        /// The base64 channel id.
        id: String,
        /// The JSON payload.
        #[arg(long)]
        payload: String,
        /// apns-expiration (0 is the only value a no-storage channel accepts).
        #[arg(long)]
        expiry: Option<u32>,
        /// apns-priority, 5 or 10.
        #[arg(long)]
        priority: Option<u8>,
    },
}

/// Runs one call; prints `status`, the apns-* response headers and the body; exit 0 on 2xx.
pub async fn run(args: ChannelsArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let env = match args.environment.as_str() {
        "production" => Environment::Production,
        "sandbox" => Environment::Sandbox,
        other => return Err(format!("--environment {other:?}: production or sandbox").into()),
    };
    let manifest = Manifest::load(&args.certs)?;
    let ca = std::fs::read_to_string(args.certs.join(&manifest.ca))?;
    let key = std::fs::read_to_string(args.certs.join(&manifest.token_key))?;
    let bundle = args.bundle.clone().unwrap_or(manifest.topic.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    // One token for every call within the sharing window, as a provider keeps one (PROTOCOL.md 2.8).
    let jwt = JwtCache::shared(TokenCredentials {
        key_pem: key,
        key_id: manifest.key_id.clone(),
        team_id: manifest.team_id.clone(),
    })
    .token(now)?
    .jwt;
    let broadcast = matches!(args.op, Op::Broadcast { .. });
    // PROTOCOL.md 2.11: management on api-manage-broadcast[.sandbox], broadcasts on api[.sandbox].
    let (host, port) = match (broadcast, env) {
        (false, Environment::Production) => ("api-manage-broadcast.push.apple.com", 2198),
        (false, Environment::Sandbox) => ("api-manage-broadcast.sandbox.push.apple.com", 2298),
        (true, Environment::Production) => ("api.push.apple.com", 2197),
        (true, Environment::Sandbox) => ("api.sandbox.push.apple.com", 2297),
    };
    let port = args.port.unwrap_or(port);
    let base = format!("/1/apps/{bundle}");
    let mut headers = vec![("authorization".to_string(), format!("bearer {jwt}"))];
    let (method, path, body) = match &args.op {
        Op::Create { storage_policy } => (
            "POST",
            format!("{base}/channels"),
            format!(r#"{{"message-storage-policy":{storage_policy},"push-type":"LiveActivity"}}"#),
        ),
        Op::List => ("GET", format!("{base}/all-channels"), String::new()),
        Op::Read { id } | Op::Delete { id } => {
            headers.push(("apns-channel-id".into(), id.clone()));
            let m = if matches!(args.op, Op::Read { .. }) {
                "GET"
            } else {
                "DELETE"
            };
            (m, format!("{base}/channels"), String::new())
        }
        Op::Broadcast {
            id,
            payload,
            expiry,
            priority,
        } => {
            headers.push(("apns-channel-id".into(), id.clone()));
            headers.push(("apns-push-type".into(), "liveactivity".into()));
            if let Some(e) = expiry {
                headers.push(("apns-expiration".into(), e.to_string()));
            }
            if let Some(p) = priority {
                headers.push(("apns-priority".into(), p.to_string()));
            }
            (
                "POST",
                format!("/4/broadcasts/apps/{bundle}"),
                payload.clone(),
            )
        }
    };
    let connector = Connector::new(&ca, None, &args.host, port, host, true)?;
    let tls = connector.connect().await?;
    let (send, conn) = h2::client::handshake(tls).await?;
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("https://{host}{path}"));
    for (n, v) in &headers {
        req = req.header(n.as_str(), v.as_str());
    }
    let exchange = async {
        let mut send = send.ready().await?;
        let (resp, mut stream) = send.send_request(req.body(())?, body.is_empty())?;
        if !body.is_empty() {
            stream.send_data(Bytes::from(body), true)?;
        }
        let resp = resp.await?;
        let status = resp.status().as_u16();
        let apns: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter(|(n, _)| n.as_str().starts_with("apns-"))
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let mut rb = resp.into_body();
        let mut data = Vec::new();
        while let Some(chunk) = rb.data().await {
            let chunk = chunk?;
            let _ = rb.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        Ok::<_, Box<dyn std::error::Error>>((status, apns, data))
    };
    let (status, apns, data) = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "no answer in time")??;
    println!("status: {status}");
    for (n, v) in apns {
        println!("{n}: {v}");
    }
    if !data.is_empty() {
        println!("{}", String::from_utf8_lossy(&data));
    }
    Ok(if (200..300).contains(&status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
