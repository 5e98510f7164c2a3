//! The append-only record of everything apnsim received and decided: what tests, the control
//! API and the conformance judge read to know what really happened on the wire.

use crate::model::{Environment, Notification, Protocol};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Default bound on retained events (issue: bounded journal, default 100,000).
pub const DEFAULT_CAPACITY: usize = 100_000;

/// What happened; one name per kind everywhere (journal, control API, conformance evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A notification the service took (no error was or will be sent for it).
    Accepted,
    /// A notification refused with a status or reason.
    Rejected,
    /// A notification received after a rejected one on the same legacy connection: thrown away.
    Discarded,
    /// A notification after which the connection was cut with no answer.
    Dropped,
    /// A connection completed its TLS handshake.
    ConnectionOpened,
    /// A connection ended (with why, in `detail`).
    ConnectionClosed,
    /// A TLS handshake or protocol-level failure before any notification.
    ConnectionRefused,
    /// Feedback tuples were served to a provider.
    FeedbackServed,
    /// Something the connection did that conformance may grade (HTTP/2 observations).
    Observation,
    /// The device model kept a notification for an offline registered device.
    Stored,
    /// The device model kept a notification in place of the app's previous stored one (APNs
    /// keeps only the latest per app); `detail.replaced` is the one thrown away.
    Replaced,
    /// The device model threw a notification away: expiry 0 for an offline device, or its
    /// expiry passed before the device came online.
    Expired,
    /// A registered device displayed the notification (see its inbox).
    Delivered,
}

impl EventKind {
    /// A notification's verdict (accepted, rejected, discarded, dropped): these are kept under a
    /// bound of their own, so no flood of other events can push them out of the journal.
    pub fn is_verdict(self) -> bool {
        matches!(
            self,
            EventKind::Accepted | EventKind::Rejected | EventKind::Discarded | EventKind::Dropped
        )
    }

    /// How many kinds there are (sizes the per-kind counters).
    pub const COUNT: usize = 13;

    /// Every kind, in declaration order: metrics print stable zero-valued series from it and
    /// filters list the choices.
    pub const ALL: [EventKind; EventKind::COUNT] = [
        EventKind::Accepted,
        EventKind::Rejected,
        EventKind::Discarded,
        EventKind::Dropped,
        EventKind::ConnectionOpened,
        EventKind::ConnectionClosed,
        EventKind::ConnectionRefused,
        EventKind::FeedbackServed,
        EventKind::Observation,
        EventKind::Stored,
        EventKind::Replaced,
        EventKind::Expired,
        EventKind::Delivered,
    ];

    /// The kebab-case name used in filters and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Accepted => "accepted",
            EventKind::Rejected => "rejected",
            EventKind::Discarded => "discarded",
            EventKind::Dropped => "dropped",
            EventKind::ConnectionOpened => "connection-opened",
            EventKind::ConnectionClosed => "connection-closed",
            EventKind::ConnectionRefused => "connection-refused",
            EventKind::FeedbackServed => "feedback-served",
            EventKind::Observation => "observation",
            EventKind::Stored => "stored",
            EventKind::Replaced => "replaced",
            EventKind::Expired => "expired",
            EventKind::Delivered => "delivered",
        }
    }

    /// Parses the kebab-case name (filters in the control API and tests).
    pub fn parse(s: &str) -> Option<EventKind> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// One journal entry; `seq` is unique and increasing so evidence can cite it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Sequence number, from 1, never reused (not even after `clear`).
    pub seq: u64,
    /// Milliseconds since the UNIX epoch on the emulator's clock.
    pub time_ms: u64,
    /// The connection it happened on (0 for none).
    pub connection: u64,
    /// Which protocol.
    pub protocol: Protocol,
    /// The connection's environment.
    pub environment: Environment,
    /// What happened.
    pub kind: EventKind,
    /// The notification concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
    /// The status of a refusal, in the space `protocol` names: the legacy status byte sent (or
    /// that would have been sent, PROTOCOL.md 1.6), or the HTTP/2 `:status` (PROTOCOL.md 2.6,
    /// 2.7; broadcast-family refusals too). One field on both protocols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// HTTP/2 reason string, or the legacy status name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Free-form detail: close causes, observations, peer address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl Event {
    /// The payload lint of an accepted notification (what the device would show, PROTOCOL.md's
    /// payload keys); `None` for every other event. Computed on demand, so the hot path pays
    /// nothing and every reader (control API, inspector, Rust tests) sees the same result.
    pub fn lint(&self) -> Option<crate::lint::Lint> {
        if self.kind != EventKind::Accepted {
            return None;
        }
        let n = self.notification.as_ref()?;
        Some(crate::lint::lint(
            &n.payload,
            n.push_type.map(crate::model::PushType::as_str),
        ))
    }
}

/// Why a connection ended, on every protocol: the `cause` of `connection-closed`, spelt by
/// [`ConnectionEnd::as_str`] (kebab-case like every other journal name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The provider closed cleanly between frames (legacy).
    PeerClosed,
    /// The provider vanished with this many bytes of a partial frame buffered (legacy).
    PeerVanishedMidFrame(usize),
    /// An error-response was sent (or the connection closed silently) after a refusal (legacy).
    Refused,
    /// The engine or a rule cut the connection with no answer (legacy).
    Dropped,
    /// Nothing arrived for the idle timeout (legacy; HTTP/2 idles out with a GOAWAY, so `closed`).
    IdleTimeout,
    /// The emulator is shutting down (legacy: status 10 sent).
    Shutdown,
    /// The HTTP/2 protocol finished (GOAWAY, connection error, EOF) and output was flushed.
    Closed,
    /// A `close` rule or command cut the HTTP/2 connection with no GOAWAY.
    Abrupt,
    /// The peer stopped reading for longer than the write-stall timeout (HTTP/2).
    WriteStalled,
    /// A read or write failed (with the error, when known).
    Io(String),
}

impl ConnectionEnd {
    /// The journal spelling.
    pub fn as_str(&self) -> String {
        match self {
            ConnectionEnd::PeerClosed => "peer-closed".into(),
            ConnectionEnd::PeerVanishedMidFrame(n) => {
                format!("peer-vanished-mid-frame ({n} bytes buffered)")
            }
            ConnectionEnd::Refused => "refused".into(),
            ConnectionEnd::Dropped => "dropped".into(),
            ConnectionEnd::IdleTimeout => "idle-timeout".into(),
            ConnectionEnd::Shutdown => "shutdown".into(),
            ConnectionEnd::Closed => "closed".into(),
            ConnectionEnd::Abrupt => "abrupt".into(),
            ConnectionEnd::WriteStalled => "write-stalled".into(),
            ConnectionEnd::Io(e) if e.is_empty() => "io".into(),
            ConnectionEnd::Io(e) => format!("io: {e}"),
        }
    }
}

/// An event before the journal numbers and times it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// See [`Event::connection`].
    pub connection: u64,
    /// See [`Event::protocol`].
    pub protocol: Protocol,
    /// See [`Event::environment`].
    pub environment: Environment,
    /// See [`Event::kind`].
    pub kind: EventKind,
    /// See [`Event::notification`].
    pub notification: Option<Notification>,
    /// See [`Event::status`].
    pub status: Option<u16>,
    /// See [`Event::reason`].
    pub reason: Option<String>,
    /// See [`Event::detail`].
    pub detail: Option<serde_json::Value>,
}

impl NewEvent {
    /// Starts an event of `kind` on a connection; the optional fields are filled with the setters.
    pub fn new(
        kind: EventKind,
        connection: u64,
        protocol: Protocol,
        environment: Environment,
    ) -> Self {
        NewEvent {
            connection,
            protocol,
            environment,
            kind,
            notification: None,
            status: None,
            reason: None,
            detail: None,
        }
    }

    /// Attaches the notification.
    pub fn notification(mut self, n: Notification) -> Self {
        self.notification = Some(n);
        self
    }

    /// Attaches a refusal's status (legacy byte or HTTP/2 `:status`) and its name (the legacy
    /// status name or the HTTP/2 reason), so both protocols fill the same two fields.
    pub fn status(mut self, code: impl Into<u16>, name: &str) -> Self {
        self.status = Some(code.into());
        self.reason = Some(name.to_string());
        self
    }

    /// Attaches a reason string.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Attaches structured detail.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Which events a query or wait selects; every field left `None` matches everything.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Filter {
    /// Only this kind.
    #[serde(default)]
    pub kind: Option<EventKind>,
    /// Only notifications to this token (hex, any case).
    #[serde(default)]
    pub token: Option<String>,
    /// Only notifications with this topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// Only this protocol.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// Only this connection.
    #[serde(default)]
    pub connection: Option<u64>,
    /// Only events with a sequence number greater than this.
    #[serde(default)]
    pub since: Option<u64>,
    /// Only accepted notifications whose payload lint has this level (`warn`: the device would
    /// not show what the sender meant).
    #[serde(default)]
    pub lint: Option<crate::lint::Level>,
}

impl Filter {
    /// A filter for one kind, the most common test query.
    pub fn kind(kind: EventKind) -> Self {
        Filter {
            kind: Some(kind),
            ..Filter::default()
        }
    }

    /// Whether `e` is selected.
    pub fn matches(&self, e: &Event) -> bool {
        if self.kind.is_some_and(|k| k != e.kind) {
            return false;
        }
        if self.protocol.is_some_and(|p| p != e.protocol) {
            return false;
        }
        if self.connection.is_some_and(|c| c != e.connection) {
            return false;
        }
        if self.since.is_some_and(|s| e.seq <= s) {
            return false;
        }
        if let Some(level) = self.lint {
            if !e.lint().is_some_and(|l| l.level == level) {
                return false;
            }
        }
        if let Some(token) = &self.token {
            match &e.notification {
                Some(n) if n.token.to_hex().eq_ignore_ascii_case(token) => {}
                _ => return false,
            }
        }
        if let Some(topic) = &self.topic {
            match e.notification.as_ref().and_then(|n| n.topic.as_deref()) {
                Some(t) if t == topic => {}
                _ => return false,
            }
        }
        true
    }
}

/// Why a wait ended without enough events.
#[derive(Debug, Clone, thiserror::Error)]
#[error("timed out after {waited:?} with {found} of {wanted} matching events")]
pub struct WaitTimeout {
    /// How many were wanted.
    pub wanted: usize,
    /// How many matched when time ran out.
    pub found: usize,
    /// How long it waited.
    pub waited: Duration,
}

struct Inner {
    /// Notification verdicts ([`EventKind::is_verdict`]), and every other event: each bounded by
    /// `capacity` on its own, oldest evicted first.
    classes: [VecDeque<Event>; 2],
    next_seq: u64,
    capacity: usize,
    evicted: u64,
    /// Per class: every event of the class with a sequence number from this one on is retained
    /// (eviction and `clear` move it forward).
    complete_from: [u64; 2],
    tallies: Tallies,
    /// `--journal-file`: every event also goes to the writer thread.
    file: Option<crate::journal_file::JournalFile<Event>>,
}

/// The class index of a kind in [`Inner::classes`].
fn class(kind: EventKind) -> usize {
    usize::from(!kind.is_verdict())
}

/// How many events of each kind each protocol produced since start, and rejections by reason:
/// counted as events are appended (so metrics never depend on what is still retained) and
/// never reset by [`Journal::clear`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tallies {
    /// Count per (kind, protocol), indexed by `kind as usize` and `protocol as usize`.
    events: [[u64; 3]; EventKind::COUNT],
    /// Rejections per protocol and reason (legacy status name or HTTP/2 reason).
    rejected: BTreeMap<(Protocol, String), u64>,
}

/// Distinct rejection reasons tracked before the rest are folded into `other`.
const MAX_REASONS: usize = 256;

// The counters are sized by COUNT: it must name every kind (the last one's index + 1).
const _: () = assert!(EventKind::Delivered as usize + 1 == EventKind::COUNT);

impl Tallies {
    fn count(&mut self, kind: EventKind, protocol: Protocol, reason: Option<&str>) {
        self.events[kind as usize][protocol as usize] += 1;
        if kind == EventKind::Rejected {
            let reason = reason.unwrap_or("unknown");
            let known = self.rejected.len() < MAX_REASONS
                || self.rejected.contains_key(&(protocol, reason.to_string()));
            let reason = if known { reason } else { "other" };
            *self
                .rejected
                .entry((protocol, reason.to_string()))
                .or_default() += 1;
        }
    }

    /// Events of `kind` on `protocol` since start.
    pub fn events(&self, kind: EventKind, protocol: Protocol) -> u64 {
        self.events[kind as usize][protocol as usize]
    }

    /// Rejections by (protocol, reason) since start.
    pub fn rejected(&self) -> &BTreeMap<(Protocol, String), u64> {
        &self.rejected
    }
}

/// The shared journal handle; cloning shares the same record.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
    clock: crate::clock::Clock,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("len", &self.len()).finish()
    }
}

impl Journal {
    /// A journal keeping at most `capacity` notification verdicts and `capacity` other events
    /// (oldest evicted first, each under its own bound).
    pub fn new(capacity: usize, clock: crate::clock::Clock) -> Self {
        Journal {
            inner: Arc::new(Mutex::new(Inner {
                classes: [VecDeque::new(), VecDeque::new()],
                next_seq: 1,
                capacity: capacity.max(1),
                evicted: 0,
                complete_from: [1, 1],
                tallies: Tallies::default(),
                file: None,
            })),
            notify: Arc::new(Notify::new()),
            clock,
        }
    }

    /// Appends an event and wakes waiters; returns its sequence number.
    pub fn record(&self, e: NewEvent) -> u64 {
        self.record_batch(std::iter::once(e))
    }

    /// Appends events in order under one lock and one clock reading (the gateway's hot path:
    /// everything decided from one read is journaled before the next read or answer).
    /// Returns the sequence number of the last one (or the current last if `events` is empty).
    pub fn record_batch(&self, events: impl IntoIterator<Item = NewEvent>) -> u64 {
        let time_ms = self.clock.now_ms();
        let seq = {
            let mut inner = self.inner.lock();
            for e in events {
                let seq = inner.next_seq;
                inner.next_seq += 1;
                inner.tallies.count(e.kind, e.protocol, e.reason.as_deref());
                let c = class(e.kind);
                if inner.classes[c].len() >= inner.capacity {
                    if let Some(old) = inner.classes[c].pop_front() {
                        inner.complete_from[c] = old.seq + 1;
                    }
                    inner.evicted += 1;
                }
                let event = Event {
                    seq,
                    time_ms,
                    connection: e.connection,
                    protocol: e.protocol,
                    environment: e.environment,
                    kind: e.kind,
                    notification: e.notification,
                    status: e.status,
                    reason: e.reason,
                    detail: e.detail,
                };
                if let Some(file) = &inner.file {
                    file.send(&event);
                }
                inner.classes[c].push_back(event);
            }
            inner.next_seq - 1
        };
        self.notify.notify_waiters();
        seq
    }

    /// Counts since start, by kind and protocol, and rejections by reason (what `/metrics` shows).
    pub fn tallies(&self) -> Tallies {
        self.inner.lock().tallies.clone()
    }

    /// The retained events that match, oldest first.
    pub fn query(&self, filter: &Filter) -> Vec<Event> {
        let inner = self.inner.lock();
        candidates(&inner, filter)
            .filter(|e| filter.matches(e))
            .cloned()
            .collect()
    }

    /// How many retained events match (without cloning them).
    pub fn count(&self, filter: &Filter) -> usize {
        let inner = self.inner.lock();
        candidates(&inner, filter)
            .filter(|e| filter.matches(e))
            .count()
    }

    /// Waits until at least `n` retained events match, or the timeout passes.
    pub async fn wait_for(
        &self,
        filter: &Filter,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Event>, WaitTimeout> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let found = self.query(filter);
            if found.len() >= n {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let found = self.count(filter);
                if found >= n {
                    return Ok(self.query(filter));
                }
                return Err(WaitTimeout {
                    wanted: n,
                    found,
                    waited: timeout,
                });
            }
        }
    }

    /// Waits for the next event after `after` (any kind); the building block of live streams.
    pub async fn next_after(&self, after: u64) -> Vec<Event> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let found = self.query(&Filter {
                since: Some(after),
                ..Filter::default()
            });
            if !found.is_empty() {
                return found;
            }
            notified.await;
        }
    }

    /// Forgets every retained event; sequence numbers keep counting.
    pub fn clear(&self) {
        let mut inner = self.inner.lock();
        let next = inner.next_seq;
        inner.complete_from = [next, next];
        for c in &mut inner.classes {
            c.clear();
        }
    }

    /// Number of retained events.
    pub fn len(&self) -> usize {
        let inner = self.inner.lock();
        inner.classes[0].len() + inner.classes[1].len()
    }

    /// Every event `filter` could match with a sequence number from this one on is still
    /// retained: an older one that is missing may have been evicted or cleared ("gone", not
    /// "never happened").
    pub fn first_seq(&self, filter: &Filter) -> u64 {
        let inner = self.inner.lock();
        match filter.kind {
            Some(kind) => inner.complete_from[class(kind)],
            None => inner.complete_from[0].max(inner.complete_from[1]),
        }
    }

    /// Streams every event from now on to `file` as JSON lines (see [`crate::journal_file`]).
    pub fn stream_to(&self, file: crate::journal_file::JournalFile<Event>) {
        self.inner.lock().file = Some(file);
    }

    /// Stops streaming to the journal file; the returned handle finishes once every event sent
    /// is written and flushed.
    pub fn close_file(&self) -> Option<crate::journal_file::JournalFile<Event>> {
        self.inner.lock().file.take()
    }

    /// True when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many events were pushed out by the capacity bound.
    pub fn evicted(&self) -> u64 {
        self.inner.lock().evicted
    }

    /// The sequence number of the newest event (0 if none yet).
    pub fn last_seq(&self) -> u64 {
        self.inner.lock().next_seq - 1
    }
}

/// The retained events a filter can match, oldest first: only the kind's class when the filter
/// names a kind, else both classes merged by sequence number. With `since`, a binary search skips
/// the older ones (sequence numbers only increase), so followers of the journal (metrics, live
/// events, waits) do not rescan the whole bounded journal under its lock on every new event.
fn candidates<'a>(inner: &'a Inner, filter: &Filter) -> impl Iterator<Item = &'a Event> {
    let from = |events: &'a VecDeque<Event>| {
        let start = match filter.since {
            Some(since) => events.partition_point(|e| e.seq <= since),
            None => 0,
        };
        events.range(start..)
    };
    let (a, b) = match filter.kind {
        Some(kind) => {
            let c = class(kind);
            (from(&inner.classes[c]), inner.classes[1 - c].range(0..0))
        }
        None => (from(&inner.classes[0]), from(&inner.classes[1])),
    };
    MergeBySeq {
        a: a.peekable(),
        b: b.peekable(),
    }
}

/// Two seq-ordered iterators merged into one seq-ordered iterator.
struct MergeBySeq<A: Iterator, B: Iterator> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<'a, A, B> Iterator for MergeBySeq<A, B>
where
    A: Iterator<Item = &'a Event>,
    B: Iterator<Item = &'a Event>,
{
    type Item = &'a Event;

    fn next(&mut self) -> Option<&'a Event> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) if y.seq < x.seq => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::model::DeviceToken;

    fn accepted(j: &Journal, token: u8) -> u64 {
        let n = Notification {
            token: DeviceToken::from_bytes(vec![token; 32]),
            payload: bytes::Bytes::from_static(b"{}"),
            identifier: None,
            expiry: None,
            priority: 10,
            topic: Some("com.example".into()),
            push_type: None,
            collapse_id: None,
            apns_id: None,
            command: Some(2),
        };
        j.record(
            NewEvent::new(
                EventKind::Accepted,
                1,
                Protocol::Legacy,
                Environment::Production,
            )
            .notification(n),
        )
    }

    #[test]
    fn bounded_and_sequenced() {
        let j = Journal::new(3, Clock::new());
        for i in 0..5 {
            assert_eq!(accepted(&j, i), u64::from(i) + 1);
        }
        let all = j.query(&Filter::default());
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(j.evicted(), 2);
        j.clear();
        assert!(j.is_empty());
        assert_eq!(accepted(&j, 9), 6);
    }

    fn observation(j: &Journal) -> u64 {
        j.record(NewEvent::new(
            EventKind::Observation,
            1,
            Protocol::Http2,
            Environment::Production,
        ))
    }

    #[test]
    fn a_flood_of_other_events_never_evicts_verdicts_and_eviction_is_reported() {
        let j = Journal::new(3, Clock::new());
        let a = accepted(&j, 1);
        for _ in 0..100 {
            observation(&j);
        }
        let b = accepted(&j, 2);
        let kept = j.query(&Filter::kind(EventKind::Accepted));
        assert_eq!(kept.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![a, b]);
        assert_eq!(j.evicted(), 97);
        // Verdicts are complete from the start; observations only from the oldest kept.
        assert_eq!(j.first_seq(&Filter::kind(EventKind::Accepted)), 1);
        let obs = j.query(&Filter::kind(EventKind::Observation));
        assert_eq!(
            j.first_seq(&Filter::kind(EventKind::Observation)),
            obs[0].seq
        );
        assert_eq!(j.first_seq(&Filter::default()), obs[0].seq);
        // Merged listing stays in sequence order.
        let all: Vec<u64> = j.query(&Filter::default()).iter().map(|e| e.seq).collect();
        assert_eq!(all, vec![a, obs[0].seq, obs[1].seq, obs[2].seq, b]);
        let since: Vec<u64> = j
            .query(&Filter {
                since: Some(obs[1].seq),
                ..Filter::default()
            })
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(since, vec![obs[2].seq, b]);
        j.clear();
        assert_eq!(j.first_seq(&Filter::default()), b + 1);
    }

    #[test]
    fn the_journal_file_gets_every_event_despite_eviction() {
        let path = std::env::temp_dir().join(format!("apnsim-jf-{}.jsonl", std::process::id()));
        let j = Journal::new(2, Clock::new());
        j.stream_to(crate::journal_file::JournalFile::create(&path).unwrap());
        for i in 0..10 {
            accepted(&j, i);
        }
        j.close_file().unwrap().finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| serde_json::from_str::<Event>(l).unwrap().seq)
            .collect();
        assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    }

    #[test]
    fn tallies_count_every_event_despite_eviction_and_clear() {
        let j = Journal::new(2, Clock::new());
        for i in 0..5 {
            accepted(&j, i);
        }
        j.record(
            NewEvent::new(
                EventKind::Rejected,
                1,
                Protocol::Http2,
                Environment::Sandbox,
            )
            .reason("BadDeviceToken"),
        );
        j.clear();
        let t = j.tallies();
        assert_eq!(t.events(EventKind::Accepted, Protocol::Legacy), 5);
        assert_eq!(t.events(EventKind::Accepted, Protocol::Http2), 0);
        assert_eq!(
            t.rejected()
                .get(&(Protocol::Http2, "BadDeviceToken".to_string())),
            Some(&1)
        );
    }

    #[test]
    fn since_skips_older_events_exactly() {
        let j = Journal::new(5, Clock::new());
        for i in 0..8 {
            accepted(&j, i);
        }
        let since = |s| Filter {
            since: Some(s),
            ..Filter::default()
        };
        assert_eq!(j.query(&since(0)).len(), 5);
        assert_eq!(
            j.query(&since(6)).iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![7, 8]
        );
        assert_eq!(j.count(&since(8)), 0);
    }

    #[test]
    fn filters_by_token_and_kind() {
        let j = Journal::new(10, Clock::new());
        accepted(&j, 1);
        accepted(&j, 2);
        let f = Filter {
            token: Some(hex::encode([2u8; 32]).to_uppercase()),
            ..Filter::kind(EventKind::Accepted)
        };
        assert_eq!(j.query(&f).len(), 1);
        assert_eq!(j.count(&Filter::kind(EventKind::Rejected)), 0);
    }

    #[tokio::test]
    async fn wait_for_wakes_and_times_out() {
        let j = Journal::new(10, Clock::new());
        let j2 = j.clone();
        let h = tokio::spawn(async move {
            j2.wait_for(
                &Filter::kind(EventKind::Accepted),
                2,
                Duration::from_secs(5),
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        accepted(&j, 1);
        accepted(&j, 2);
        assert_eq!(h.await.unwrap().unwrap().len(), 2);
        let err = j
            .wait_for(
                &Filter::kind(EventKind::Accepted),
                3,
                Duration::from_millis(50),
            )
            .await
            .unwrap_err();
        assert_eq!(err.found, 2);
    }
}
