//! Prometheus counters derived from the journal, so the listeners need no counting code of
//! their own: a follower task reads every event once and counts it by kind and protocol.
//!
//! The follower reads retained events only. It can therefore miss events only when it falls
//! more than the journal's capacity behind (they were evicted first), or when the journal is
//! cleared through the Rust API before it caught up (`DELETE /journal` catches up first).
//! Such losses are counted in `apnsim_metrics_events_missed_total`, never hidden.

use super::{ControlState, KINDS};
use crate::journal::{Event, EventKind, Filter, Journal};
use crate::model::{Environment, Protocol};
use crate::runtime::Shutdown;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

const PROTOCOLS: [Protocol; 3] = [Protocol::Legacy, Protocol::Feedback, Protocol::Http2];

/// Distinct rejection reasons tracked before the rest are folded into `reason="other"`.
const MAX_REASONS: usize = 256;

/// After each wake-up the follower rests this long, so a burst costs one journal scan, not one per event.
const COALESCE: Duration = Duration::from_millis(100);

/// Event counts since the emulator started; the journal itself is bounded and clearable, these are not.
#[derive(Debug, Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// The last sequence number counted.
    seen: u64,
    events: BTreeMap<(&'static str, &'static str), u64>,
    rejected: BTreeMap<(&'static str, String), u64>,
    missed: u64,
}

impl Counts {
    fn absorb(&mut self, events: &[Event]) {
        for e in events {
            if e.seq <= self.seen {
                continue;
            }
            self.missed += e.seq - self.seen - 1;
            self.seen = e.seq;
            *self
                .events
                .entry((e.kind.as_str(), e.protocol.as_str()))
                .or_default() += 1;
            if e.kind == EventKind::Rejected {
                let reason = e.reason.clone().unwrap_or_else(|| "unknown".into());
                let key = (e.protocol.as_str(), reason);
                let key = if self.rejected.contains_key(&key) || self.rejected.len() < MAX_REASONS {
                    key
                } else {
                    (e.protocol.as_str(), "other".to_string())
                };
                *self.rejected.entry(key).or_default() += 1;
            }
        }
    }
}

impl Metrics {
    /// Fresh counters (nothing seen yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts every event recorded so far that was not counted yet; called before each scrape
    /// and before the journal is cleared, so a scrape never lags behind what a test just caused.
    pub fn catch_up(&self, journal: &Journal) {
        let mut c = self.counts.lock();
        let last = journal.last_seq();
        if last <= c.seen {
            return;
        }
        let events = journal.query(&Filter {
            since: Some(c.seen),
            ..Filter::default()
        });
        c.absorb(&events);
        // Whatever up to `last` the query did not return was evicted or cleared.
        if last > c.seen {
            c.missed += last - c.seen;
            c.seen = last;
        }
    }

    /// How many journal events went uncounted (see the module comment).
    pub fn missed(&self) -> u64 {
        self.counts.lock().missed
    }

    /// Follows the journal until the emulator stops.
    pub(crate) async fn follow(self: std::sync::Arc<Self>, journal: Journal, mut stop: Shutdown) {
        loop {
            let seen = self.counts.lock().seen;
            let batch = tokio::select! {
                _ = stop.wait() => return,
                batch = journal.next_after(seen) => batch,
            };
            self.counts.lock().absorb(&batch);
            tokio::select! {
                _ = stop.wait() => return,
                _ = tokio::time::sleep(COALESCE) => {}
            }
        }
    }

    /// The Prometheus text exposition of the counters plus the live gauges passed in.
    fn render(&self, journal: &Journal, gauges: &Gauges) -> String {
        self.catch_up(journal);
        let c = self.counts.lock();
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "apnsim_events_total",
            "counter",
            "Journal events by kind and protocol since start (accepted, rejected, discarded and dropped are the verdicts).",
        );
        for kind in KINDS {
            for protocol in PROTOCOLS {
                let n = c
                    .events
                    .get(&(kind.as_str(), protocol.as_str()))
                    .copied()
                    .unwrap_or(0);
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
        for ((protocol, reason), n) in &c.rejected {
            let _ = writeln!(
                out,
                "apnsim_rejected_total{{protocol=\"{protocol}\",reason=\"{}\"}} {n}",
                escape(reason)
            );
        }
        header(
            &mut out,
            "apnsim_metrics_events_missed_total",
            "counter",
            "Journal events the metrics follower could not count (evicted or cleared before it read them).",
        );
        let _ = writeln!(out, "apnsim_metrics_events_missed_total {}", c.missed);
        drop(c);
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

/// `GET /metrics`.
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
    use crate::journal::NewEvent;

    fn record(j: &Journal, kind: EventKind, protocol: Protocol) {
        let mut e = NewEvent::new(kind, 1, protocol, Environment::Production);
        if kind == EventKind::Rejected {
            e = e.reason("Bad\"Token");
        }
        j.record(e);
    }

    #[test]
    fn counts_by_kind_and_protocol_and_reports_misses() {
        let j = Journal::new(2, Clock::new());
        let m = Metrics::new();
        record(&j, EventKind::Accepted, Protocol::Legacy);
        record(&j, EventKind::Rejected, Protocol::Http2);
        m.catch_up(&j);
        assert_eq!(m.missed(), 0);
        // Three more into a journal of two: the first of them is evicted before it is read.
        for _ in 0..3 {
            record(&j, EventKind::Accepted, Protocol::Http2);
        }
        let gauges = Gauges {
            http2: vec![Environment::Sandbox],
            clock_offset: 5,
        };
        let text = m.render(&j, &gauges);
        assert!(text.contains("apnsim_events_total{kind=\"accepted\",protocol=\"legacy\"} 1\n"));
        assert!(text.contains("apnsim_events_total{kind=\"accepted\",protocol=\"http2\"} 2\n"));
        assert!(text.contains("apnsim_events_total{kind=\"dropped\",protocol=\"feedback\"} 0\n"));
        assert!(
            text.contains("apnsim_rejected_total{protocol=\"http2\",reason=\"Bad\\\"Token\"} 1\n")
        );
        assert!(text.contains("apnsim_metrics_events_missed_total 1\n"));
        assert!(text.contains("apnsim_journal_events 2\n"));
        assert!(text.contains("apnsim_journal_evicted_total 3\n"));
        assert!(text.contains("apnsim_http2_connections{environment=\"sandbox\"} 1\n"));
        assert!(text.contains("apnsim_clock_offset_seconds 5\n"));
        // Cleared before being read: counted as missed, and sequence numbers stay aligned.
        record(&j, EventKind::Accepted, Protocol::Legacy);
        j.clear();
        m.catch_up(&j);
        assert_eq!(m.missed(), 2);
    }

    #[tokio::test]
    async fn follower_counts_live_events() {
        let j = Journal::new(100, Clock::new());
        let m = std::sync::Arc::new(Metrics::new());
        let (tx, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(m.clone().follow(j.clone(), Shutdown(rx)));
        record(&j, EventKind::Accepted, Protocol::Legacy);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while m.counts.lock().seen < 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            m.counts.lock().events.get(&("accepted", "legacy")),
            Some(&1)
        );
        let _ = tx.send(true);
        task.await.unwrap();
    }
}
