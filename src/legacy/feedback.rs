//! The feedback service: after the handshake it streams the topic's tuples, then closes
//! (PROTOCOL.md 1.8). The list is taken from the registry, so it is cleared once read.

use crate::engine::ConnState;
use crate::journal::{EventKind, NewEvent};
use crate::legacy::close;
use crate::legacy::frame::FeedbackTuple;
use crate::legacy::session::{transport_effect, CloseHow, Effect};
use crate::model::{Environment, Protocol};
use crate::runtime::{Core, Shutdown};
use bytes::{Bytes, BytesMut};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, info_span, Instrument};

/// Serves one feedback connection.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    core: Arc<Core>,
    listener_env: Environment,
    mut shutdown: Shutdown,
) {
    let id = core.next_connection_id();
    async move {
        let Some((mut tls, hs)) = crate::runtime::handshake(
            &core,
            &core.legacy_tls,
            stream,
            id,
            Protocol::Feedback,
            listener_env,
            peer,
        )
        .await
        else {
            return;
        };
        let env = hs.environment;
        // Scenario rules for the feedback service act before anything is read from the list.
        let mut throttle = None;
        let conn = ConnState { id, protocol: Protocol::Feedback, environment: env, decided: 0 };
        for fired in core.engine.on_connection(&conn) {
            if let Some(delay) = fired.delay {
                tokio::time::sleep(delay).await;
            }
            let rule = fired.journal_detail();
            match transport_effect(&fired, std::time::Instant::now()) {
                Some(Effect::Close { how, .. }) => {
                    // The list is not taken: a dropped feedback connection loses nothing.
                    core.journal.record(
                        NewEvent::new(EventKind::Dropped, id, Protocol::Feedback, env)
                            .detail(json!({ "rule": rule, "reset": how == CloseHow::Reset })),
                    );
                    core.engine.connection_closed(id);
                    let _ = close::finish(&mut tls, None, false, how, Duration::ZERO).await;
                    return;
                }
                Some(Effect::Stall(until)) => {
                    let wait = async {
                        match until {
                            Some(at) => tokio::time::sleep_until(at.into()).await,
                            None => std::future::pending::<()>().await,
                        }
                    };
                    tokio::select! {
                        _ = wait => {}
                        _ = shutdown.wait() => {}
                    }
                }
                Some(Effect::Throttle(bps)) => throttle = Some(bps),
                // Not a transport fault: never fired on feedback (see `Action::protocols`).
                Some(Effect::Journal(_) | Effect::Write(_) | Effect::WakeAt(_)) | None => {}
            }
        }
        core.engine.connection_closed(id);
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
                "tls_version": hs.tls_version,
                "topics": topics,
                "tuples": entries.iter().map(|e| json!({"timestamp": e.timestamp, "token": e.token.to_hex()})).collect::<Vec<_>>(),
            })),
        );
        // Empty list: close right after the handshake (PROTOCOL.md 1.8). The last tuple and
        // close_notify arrive apart, as over a real network (PROTOCOL.md 1.1), unless
        // `feedback_close` picks another ending on purpose.
        let how = core.settings.feedback_close;
        let gap = Duration::from_millis(core.settings.legacy_close_gap_ms);
        let result = async {
            match throttle {
                // `burst`: the tuples leave with close_notify, in one write.
                None if how == CloseHow::Burst => {
                    return close::finish(&mut tls, Some(&out), false, how, gap).await;
                }
                None if !out.is_empty() => {
                    tls.write_all(&out).await?;
                    tls.flush().await?;
                }
                None => {}
                // A `throttle` rule: the tuples trickle out at the rule's rate.
                Some(bps) => {
                    let step = usize::try_from(bps / 10).unwrap_or(1024).clamp(1, 16 * 1024);
                    for chunk in out.chunks(step) {
                        tls.write_all(chunk).await?;
                        tls.flush().await?;
                        tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / bps as f64)).await;
                    }
                }
            }
            close::finish(&mut tls, None, !out.is_empty(), how, gap).await
        }
        .await;
        if let Err(e) = result {
            debug!(error = %e, "feedback write failed");
        }
    }
    .instrument(info_span!("feedback", conn = id, %peer))
    .await
}
