//! Prometheus text for `/metrics`: counters the journal keeps as it appends (by kind and
//! protocol, rejections by reason; never reset by clearing the journal) plus live gauges.

use super::ControlState;
use crate::journal::{EventKind, Journal};
use crate::model::{Environment, Protocol};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use std::fmt::Write;

const PROTOCOLS: [Protocol; 3] = [Protocol::Legacy, Protocol::Feedback, Protocol::Http2];

/// The metrics renderer (stateless: the journal holds the counts).
#[derive(Debug, Default)]
pub struct Metrics;

impl Metrics {
    /// A renderer.
    pub fn new() -> Self {
        Metrics
    }

    /// The Prometheus text exposition of the counters plus the live gauges passed in.
    fn render(&self, journal: &Journal, gauges: &Gauges) -> String {
        let c = journal.tallies();
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "apnsim_events_total",
            "counter",
            "Journal events by kind and protocol since start (accepted, rejected, discarded and dropped are the verdicts).",
        );
        for kind in EventKind::ALL {
            for protocol in PROTOCOLS {
                let n = c.events(kind, protocol);
                let _ = writeln!(
                    out,
                    "apnsim_events_total{{kind=\"{}\",protocol=\"{}\"}} {n}",
                    kind.as_str(),
                    protocol.as_str()
                );
            }
        }
        header(
            &mut out,
            "apnsim_rejected_total",
            "counter",
            "Rejected notifications by protocol and reason (legacy status name or HTTP/2 reason).",
        );
        for ((protocol, reason), n) in c.rejected() {
            let _ = writeln!(
                out,
                "apnsim_rejected_total{{protocol=\"{}\",reason=\"{}\"}} {n}",
                protocol.as_str(),
                escape(reason)
            );
        }
        header(
            &mut out,
            "apnsim_journal_events",
            "gauge",
            "Events currently retained in the journal.",
        );
        let _ = writeln!(out, "apnsim_journal_events {}", journal.len());
        header(
            &mut out,
            "apnsim_journal_evicted_total",
            "counter",
            "Events pushed out of the journal by its capacity bound.",
        );
        let _ = writeln!(out, "apnsim_journal_evicted_total {}", journal.evicted());
        header(
            &mut out,
            "apnsim_journal_last_seq",
            "gauge",
            "Sequence number of the newest journal event.",
        );
        let _ = writeln!(out, "apnsim_journal_last_seq {}", journal.last_seq());
        header(
            &mut out,
            "apnsim_http2_connections",
            "gauge",
            "Open HTTP/2 connections by environment.",
        );
        for env in [Environment::Sandbox, Environment::Production] {
            let n = gauges.http2.iter().filter(|e| **e == env).count();
            let _ = writeln!(
                out,
                "apnsim_http2_connections{{environment=\"{}\"}} {n}",
                env.as_str()
            );
        }
        header(
            &mut out,
            "apnsim_clock_offset_seconds",
            "gauge",
            "How far the emulator's clock has been moved from wall time.",
        );
        let _ = writeln!(out, "apnsim_clock_offset_seconds {}", gauges.clock_offset);
        out
    }
}

/// Values read live at scrape time rather than counted.
struct Gauges {
    http2: Vec<Environment>,
    clock_offset: i64,
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Label values escape backslash, double quote and newline (Prometheus text format).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`: Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "status",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
pub(super) async fn render(State(s): State<ControlState>) -> impl IntoResponse {
    let gauges = Gauges {
        http2: s
            .core
            .http2
            .connections()
            .iter()
            .map(|c| c.environment)
            .collect(),
        clock_offset: s.core.clock.offset_secs(),
    };
    let body = s.metrics.render(&s.core.journal, &gauges);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::journal::{EventKind, NewEvent};

    fn record(j: &Journal, kind: EventKind, protocol: Protocol) {
        let mut e = NewEvent::new(kind, 1, protocol, Environment::Production);
        if kind == EventKind::Rejected {
            e = e.reason("Bad\"Token");
        }
        j.record(e);
    }

    #[test]
    fn counts_every_event_even_evicted_or_cleared() {
        let j = Journal::new(2, Clock::new());
        let m = Metrics::new();
        record(&j, EventKind::Accepted, Protocol::Legacy);
        record(&j, EventKind::Rejected, Protocol::Http2);
        // Three more into a journal of two: evicted events still count.
        for _ in 0..3 {
            record(&j, EventKind::Accepted, Protocol::Http2);
        }
        let gauges = Gauges {
            http2: vec![Environment::Sandbox],
            clock_offset: 5,
        };
        let text = m.render(&j, &gauges);
        assert!(text.contains("apnsim_events_total{kind=\"accepted\",protocol=\"legacy\"} 1\n"));
        assert!(text.contains("apnsim_events_total{kind=\"accepted\",protocol=\"http2\"} 3\n"));
        assert!(text.contains("apnsim_events_total{kind=\"dropped\",protocol=\"feedback\"} 0\n"));
        assert!(
            text.contains("apnsim_rejected_total{protocol=\"http2\",reason=\"Bad\\\"Token\"} 1\n")
        );
        assert!(text.contains("apnsim_journal_events 2\n"));
        assert!(text.contains("apnsim_journal_evicted_total 3\n"));
        assert!(text.contains("apnsim_http2_connections{environment=\"sandbox\"} 1\n"));
        assert!(text.contains("apnsim_clock_offset_seconds 5\n"));
        record(&j, EventKind::Accepted, Protocol::Legacy);
        j.clear();
        let text = m.render(&j, &gauges);
        assert!(text.contains("apnsim_events_total{kind=\"accepted\",protocol=\"legacy\"} 2\n"));
    }
}
