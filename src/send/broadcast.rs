//! The gold provider's broadcast part (PROTOCOL.md 2.11): a plan's channel-management calls on
//! Apple's management host and its broadcasts on the API host, in order, each retried as
//! [`super::retry`] says for `/3/device` (429 and 5xx after a backoff, a new token after
//! ExpiredProviderToken), with the provider token shared through [`super::token_file`].

use super::config::Job;
use super::connect::Connector;
use super::jwt::JwtCache;
use super::retry::{backoff, classify, Verdict, MAX_ATTEMPTS};
use super::{error_outcome, sent_outcome};
use crate::plan::{BroadcastOp, BroadcastStep, Outcome, ResultKind};
use bytes::Bytes;
use h2::client::SendRequest;
use std::collections::HashMap;
use std::time::Duration;

/// How long one exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP answer, read whole.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// Which of the two hosts a step goes to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Host {
    Manage,
    Api,
}

/// Runs the plan's broadcast steps in order; one outcome per step.
pub async fn send(job: &Job) -> Vec<Outcome> {
    let mut run = Run {
        job,
        conns: HashMap::new(),
        jwt: job.token.clone().map(JwtCache::shared),
        serial: 0,
        created: HashMap::new(),
    };
    let mut out = Vec::with_capacity(job.plan.broadcasts.len());
    for step in &job.plan.broadcasts {
        out.push(run.step(step).await);
    }
    out
}

struct Run<'a> {
    job: &'a Job,
    conns: HashMap<Host, SendRequest<Bytes>>,
    jwt: Option<JwtCache>,
    /// The serial of the token last sent (what an ExpiredProviderToken answer refers to).
    serial: u64,
    /// Channel ids the plan's `create` steps got, by step id (for `@<id>` references).
    created: HashMap<u32, String>,
}

impl Run<'_> {
    async fn step(&mut self, step: &BroadcastStep) -> Outcome {
        let Some(bundle) = self.job.plan.bundle_id.clone() else {
            return error_outcome(step.id, "the plan names no bundle_id");
        };
        let channel = match step.channel_ref() {
            Some(r) => match self.created.get(&r) {
                Some(c) => Some(c.clone()),
                None => return error_outcome(step.id, format!("step {r} created no channel")),
            },
            None => step.channel.clone(),
        };
        let (host, method, path, body) = match step.op {
            BroadcastOp::Create => (
                Host::Manage,
                "POST",
                format!("/1/apps/{bundle}/channels"),
                format!(
                    r#"{{"message-storage-policy":{},"push-type":"LiveActivity"}}"#,
                    step.storage_policy.unwrap_or(1)
                ),
            ),
            BroadcastOp::Read => (
                Host::Manage,
                "GET",
                format!("/1/apps/{bundle}/channels"),
                String::new(),
            ),
            BroadcastOp::Delete => (
                Host::Manage,
                "DELETE",
                format!("/1/apps/{bundle}/channels"),
                String::new(),
            ),
            BroadcastOp::List => (
                Host::Manage,
                "GET",
                format!("/1/apps/{bundle}/all-channels"),
                String::new(),
            ),
            BroadcastOp::Broadcast => (
                Host::Api,
                "POST",
                format!("/4/broadcasts/apps/{bundle}"),
                step.payload
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            ),
        };
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let Some(c) = &channel {
            if step.op != BroadcastOp::Create && step.op != BroadcastOp::List {
                headers.push(("apns-channel-id", c.clone()));
            }
        }
        if step.op == BroadcastOp::Broadcast {
            headers.push(("apns-push-type", "liveactivity".into()));
            if let Some(e) = step.expiry {
                headers.push(("apns-expiration", e.to_string()));
            }
            if let Some(p) = step.priority {
                headers.push(("apns-priority", p.to_string()));
            }
        }
        let mut new_token = false;
        let mut last = error_outcome(step.id, "never sent");
        for attempt in 1..=MAX_ATTEMPTS {
            let answer = self
                .exchange(host, method, &path, &headers, &body, new_token)
                .await;
            new_token = false;
            let a = match answer {
                Ok(a) => a,
                Err(e) => {
                    // The connection is gone: the next attempt opens a new one.
                    self.conns.remove(&host);
                    last = error_outcome(step.id, e);
                    if attempt < MAX_ATTEMPTS {
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    continue;
                }
            };
            let reason = serde_json::from_slice::<serde_json::Value>(&a.body)
                .ok()
                .and_then(|v| v["reason"].as_str().map(str::to_owned));
            // A-CHAN: 201 create, 200 read and list, 204 delete; 200 broadcast.
            let verdict = match a.status {
                200..=299 => Verdict::Sent,
                s => classify(s, reason.as_deref()),
            };
            // What this attempt reports if it is the last one (retries end, or none is due).
            let failed = Outcome {
                id: step.id,
                result: ResultKind::Failed,
                reason,
                status: Some(a.status),
                timestamp: None,
                apns_id: None,
                channel: channel.clone(),
            };
            match verdict {
                Verdict::Sent => {
                    let mut o = sent_outcome(
                        step.id,
                        a.headers
                            .get("apns-id")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                    );
                    if step.op == BroadcastOp::Create {
                        o.channel = a
                            .headers
                            .get("apns-channel-id")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        if let Some(c) = &o.channel {
                            self.created.insert(step.id, c.clone());
                        }
                    } else {
                        o.channel = channel.clone();
                    }
                    return o;
                }
                Verdict::RetryWithNewToken if attempt < MAX_ATTEMPTS => new_token = true,
                Verdict::RetryOnNewConnection if attempt < MAX_ATTEMPTS => {
                    self.conns.remove(&host);
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Verdict::RetryLater if attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                _ => return failed,
            }
            last = failed;
        }
        last
    }

    /// One request on the host's connection (opened on first use).
    async fn exchange(
        &mut self,
        host: Host,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
        new_token: bool,
    ) -> Result<Answer, String> {
        let target = &self.job.target;
        let name = match host {
            Host::Manage => target.environment.manage_host(),
            Host::Api => target.apple_host.as_str(),
        };
        let send = match self.conns.get(&host) {
            Some(s) => s.clone(),
            None => {
                let port = match host {
                    Host::Manage => target.manage_port,
                    Host::Api => target.port,
                };
                let identity = match self.jwt {
                    Some(_) => None,
                    None => self.job.identity.as_ref(),
                };
                let connector =
                    Connector::new(&self.job.ca_pem, identity, &target.host, port, name, true)
                        .map_err(|e| e.to_string())?;
                let tls = connector.connect().await.map_err(|e| e.to_string())?;
                let (send, conn) = h2::client::handshake(tls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                self.conns.insert(host, send.clone());
                send
            }
        };
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("https://{name}{path}"));
        if let Some(jwt) = &mut self.jwt {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if new_token {
                jwt.expired(self.serial);
            }
            let t = jwt.token(now).map_err(|e| e.to_string())?;
            self.serial = t.serial;
            req = req.header("authorization", format!("bearer {}", t.jwt));
        }
        for (n, v) in headers {
            req = req.header(*n, v.as_str());
        }
        let req = req.body(()).map_err(|e| e.to_string())?;
        let body = Bytes::copy_from_slice(body.as_bytes());
        let exchange = async move {
            let mut send = send.ready().await?;
            let (resp, mut stream) = send.send_request(req, body.is_empty())?;
            if !body.is_empty() {
                stream.send_data(body, true)?;
            }
            let resp = resp.await?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let mut rb = resp.into_body();
            let mut data = Vec::new();
            while let Some(chunk) = rb.data().await {
                let chunk = chunk?;
                let _ = rb.flow_control().release_capacity(chunk.len());
                data.extend_from_slice(&chunk);
            }
            Ok::<_, h2::Error>(Answer {
                status,
                headers,
                body: data,
            })
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| "no answer in time".to_string())?
            .map_err(|e| e.to_string())
    }
}
