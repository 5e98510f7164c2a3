//! The feedback service: after the handshake it streams the topic's tuples, then closes
//! (PROTOCOL.md 1.8). The list is taken from the registry, so it is cleared once read.

use crate::journal::{EventKind, NewEvent};
use crate::legacy::frame::FeedbackTuple;
use crate::model::{Environment, Protocol};
use crate::runtime::Core;
use bytes::{Bytes, BytesMut};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, info_span, Instrument};

/// Serves one feedback connection.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    core: Arc<Core>,
    listener_env: Environment,
) {
    let id = core.next_connection_id();
    async move {
        let (mut tls, hs) = match crate::tls::accept(stream, &core.legacy_tls, listener_env).await {
            Ok(ok) => ok,
            Err(e) => {
                debug!(error = %e, "handshake failed");
                core.journal.record(
                    NewEvent::new(EventKind::ConnectionRefused, id, Protocol::Feedback, listener_env)
                        .detail(json!({ "peer": peer.to_string(), "error": e.to_string() })),
                );
                return;
            }
        };
        let env = hs.environment;
        // PROTOCOL.md 1.8: one list per push topic; the certificate names the topic(s).
        let topics = hs.client.as_ref().map(|c| c.topics.clone()).unwrap_or_default();
        let entries = core.engine.registry().take_feedback(env, &topics);
        let mut out = BytesMut::with_capacity(entries.len() * 38);
        for e in &entries {
            // Registry tokens come from frames or hex paths, so they always fit a u16 length.
            let tuple = FeedbackTuple { timestamp: e.timestamp, token: Bytes::copy_from_slice(e.token.as_bytes()) };
            if let Err(err) = tuple.encode(&mut out) {
                debug!(error = %err, "feedback tuple skipped");
            }
        }
        core.journal.record(
            NewEvent::new(EventKind::FeedbackServed, id, Protocol::Feedback, env).detail(json!({
                "peer": peer.to_string(),
                "topics": topics,
                "tuples": entries.iter().map(|e| json!({"timestamp": e.timestamp, "token": e.token.to_hex()})).collect::<Vec<_>>(),
            })),
        );
        // Empty list: close right after the handshake (PROTOCOL.md 1.8).
        let result = async {
            if !out.is_empty() {
                tls.write_all(&out).await?;
                tls.flush().await?;
            }
            tls.shutdown().await
        }
        .await;
        if let Err(e) = result {
            debug!(error = %e, "feedback write failed");
        }
    }
    .instrument(info_span!("feedback", conn = id, %peer))
    .await
}
