//! What a conformance case is and what it concludes: the vocabulary shared by the catalogue,
//! the judge, the runner and the reports.

use crate::journal::{Event, EventKind};
use crate::model::{Environment, Protocol};
use crate::plan::{DriverOutput, Outcome, Plan, PlanNotification};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// How a provider did on one case, worst last (the order decides a case's overall grade).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Grade {
    /// Did what Apple expects.
    Ok,
    /// Nothing to fault; the case reports what the provider does.
    Informational,
    /// Works, but against Apple's advice (PRIORITY frames, a connection per notification, …).
    NonStrict,
    /// The provider declares it lacks the protocol or auth kind the case needs.
    Unsupported,
    /// A notification lost or duplicated, a hang, a crash, or a wrong report.
    Failed,
}

impl Grade {
    /// The name used in reports and `--expect` files.
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Ok => "OK",
            Grade::Informational => "INFORMATIONAL",
            Grade::NonStrict => "NON-STRICT",
            Grade::Unsupported => "UNSUPPORTED",
            Grade::Failed => "FAILED",
        }
    }

    /// Parses a report/expect name (case-insensitive).
    pub fn parse(s: &str) -> Option<Grade> {
        [
            Grade::Ok,
            Grade::Informational,
            Grade::NonStrict,
            Grade::Unsupported,
            Grade::Failed,
        ]
        .into_iter()
        .find(|g| g.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl std::fmt::Display for Grade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One observation of the judge, with the journal sequence numbers that show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What it costs the provider: OK for a plain fact.
    pub grade: Grade,
    /// One sentence.
    pub text: String,
    /// Journal sequence numbers (the run's `journal.json`) that are the evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seqs: Vec<u64>,
}

impl Finding {
    /// A finding that costs `grade`.
    pub fn new(grade: Grade, text: impl Into<String>, seqs: Vec<u64>) -> Self {
        Finding {
            grade,
            text: text.into(),
            seqs,
        }
    }
}

/// The detail key of the runner's own journal events about the driver (`{"driver": "started"}`,
/// then `{"driver": <how it exited>}`).
pub const DRIVER_MARKER: &str = "driver";

/// Which authentication a case runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthChoice {
    /// Client certificate only.
    Certificate,
    /// Provider token (JWT) only.
    Token,
    /// Token when the provider has it (Apple's recommendation), else certificate.
    Either,
}

/// How a case makes a notification misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Twist {
    /// A token registered for the other environment (legacy status 8, HTTP/2 BadDeviceToken).
    WrongEnvironmentToken,
    /// A token registered as unregistered at [`UNREGISTERED_AT_MS`] (HTTP/2 410).
    Unregistered,
    /// A payload over the protocol's limit.
    OversizedPayload,
}

/// The 410 timestamp cases use: its milliseconds are not zero, so truncation shows.
pub const UNREGISTERED_AT_MS: u64 = 1_508_249_865_488;

/// What the case sets up: the plan, the scenario, and which ids are meant to fail.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The plan given to the driver.
    pub plan: Plan,
    /// Scenario TOML loaded into the emulator (rules, tokens, settings).
    pub scenario: String,
    /// Notifications made to misbehave, by plan id.
    pub twists: Vec<(u32, Twist)>,
    /// The environment the provider is pointed at.
    pub environment: Environment,
    /// Reasons that are temporary here: a notification left undelivered with one of these
    /// reported is NON-STRICT (the caller was told), not lost.
    pub transient: Vec<&'static str>,
    /// A connection-level fault: a notification reported `error` (the caller was told, the
    /// library did not retry) is NON-STRICT rather than lost.
    pub transient_errors: bool,
    /// Broadcast cases: channels with subscribed devices the runner makes before the driver.
    pub channels: Vec<PreChannel>,
    /// Broadcast cases: their real ids, once made (same order).
    pub channel_ids: Vec<String>,
    /// Broadcast cases: what a correct provider reports for each step, by step id.
    pub step_expect: Vec<(u32, StepExpect)>,
    seed: u64,
}

impl Setup {
    /// An empty setup for the case `id` (tokens derive from the id, so runs are reproducible).
    pub fn new(id: &str) -> Self {
        let seed = id.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
            h.rotate_left(7) ^ u64::from(b)
        });
        Setup {
            plan: Plan::default(),
            scenario: String::new(),
            twists: Vec::new(),
            environment: Environment::Production,
            transient: Vec::new(),
            transient_errors: false,
            channels: Vec::new(),
            channel_ids: Vec::new(),
            step_expect: Vec::new(),
            seed,
        }
    }

    /// The device token of plan id `id`: unique per notification, so the journal names the id.
    pub fn token(&self, id: u32) -> String {
        let mut state = self.seed ^ (u64::from(id) << 17) ^ u64::from(id);
        let mut out = String::with_capacity(64);
        for _ in 0..4 {
            out.push_str(&format!("{:016x}", splitmix(&mut state)));
        }
        out
    }

    /// Adds notifications `1..=n` to the plan, each to its own token.
    pub fn batch(&mut self, n: u32, protocol: Protocol) -> &mut Self {
        let start = self.plan.notifications.len() as u32;
        for id in start + 1..=start + n {
            self.plan.notifications.push(PlanNotification {
                id,
                token: self.token(id),
                // One payload for all: libraries batch equal messages (pushjack sends one per
                // distinct message); the token alone names the notification.
                payload: serde_json::json!({"aps": {"alert": "apnsim conformance"}}),
                expiry: 0,
                priority: 10,
                push_type: (protocol == Protocol::Http2).then(|| "alert".to_string()),
                collapse_id: None,
            });
        }
        self
    }

    /// Makes plan id `id` misbehave in the way `twist` says (scenario tokens or payload).
    pub fn twist(&mut self, id: u32, twist: Twist, protocol: Protocol) -> &mut Self {
        let token = self.token(id);
        match twist {
            Twist::WrongEnvironmentToken => {
                let other = match self.environment {
                    Environment::Production => "sandbox",
                    Environment::Sandbox => "production",
                };
                self.scenario.push_str(&format!(
                    "\n[[tokens]]\ntoken = \"{token}\"\nenvironment = \"{other}\"\n"
                ));
            }
            Twist::Unregistered => {
                self.scenario.push_str(&format!(
                    "\n[[tokens]]\ntoken = \"{token}\"\nunregistered_at = {UNREGISTERED_AT_MS}\n"
                ));
            }
            Twist::OversizedPayload => {
                // PROTOCOL.md Part 3 / 2.5: 2048 bytes legacy, 4096 HTTP/2.
                let limit = match protocol {
                    Protocol::Legacy | Protocol::Feedback => 2048,
                    Protocol::Http2 => 4096,
                };
                if let Some(n) = self.plan.notifications.iter_mut().find(|n| n.id == id) {
                    n.payload = serde_json::json!({"aps": {"alert": "x".repeat(limit + 64)}});
                }
            }
        }
        self.twists.push((id, twist));
        self
    }

    /// Appends scenario TOML (rules, settings).
    pub fn scenario(&mut self, toml: &str) -> &mut Self {
        self.scenario.push('\n');
        self.scenario.push_str(toml);
        self.scenario.push('\n');
        self
    }

    /// The twist applied to plan id `id`, if any.
    pub fn twist_of(&self, id: u32) -> Option<Twist> {
        self.twists.iter().find(|(i, _)| *i == id).map(|(_, t)| *t)
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One conformance case of the catalogue.
pub struct Case {
    /// `L…` legacy, `H…` HTTP/2.
    pub id: &'static str,
    /// A short title.
    pub title: &'static str,
    /// What a correct provider does, and the PROTOCOL.md fact it follows.
    pub expectation: &'static str,
    /// The protocol the provider is driven with.
    pub protocol: Protocol,
    /// The authentication it runs with.
    pub auth: AuthChoice,
    /// A case whose failure means a lost notification: the naive provider must fail exactly these.
    pub loss: bool,
    /// Most the driver may take.
    pub timeout: Duration,
    /// Builds the plan and scenario.
    pub setup: fn(&mut Setup, Protocol),
    /// Case-specific findings, after the common delivery checks.
    pub judge: fn(&Facts) -> Vec<Finding>,
    /// Whether duplicates are unavoidable here (legacy has no acknowledgement; a connection
    /// cut before its answers leaves the provider no way to know): counted, not failed.
    pub duplicates_tolerated: bool,
    /// A case that reports rather than grades: OK becomes INFORMATIONAL.
    pub informational: bool,
}

impl Case {
    /// Whether the emulator counts provider-token updates per team in this case (the case that
    /// targets that rule, PROTOCOL.md 2.8). Elsewhere they are counted per connection, so a
    /// library that signs a new token when it reconnects after a fault is graded on the fault
    /// alone, never on whether its reconnect fell in a new second (`iat`).
    pub fn counts_token_updates_per_team(&self) -> bool {
        self.id == "H5.3"
    }

    /// Whether `pattern` selects this case: `*` matches any run of characters (`L2.*`),
    /// several patterns separated by commas.
    pub fn selected_by(&self, pattern: &str) -> bool {
        pattern
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .any(|p| glob(p.as_bytes(), self.id.as_bytes()))
    }
}

/// How the driver process ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "how", rename_all = "kebab-case")]
pub enum Exit {
    /// It exited with this code.
    Code {
        /// The exit code.
        code: i32,
    },
    /// It was killed by a signal (a crash).
    Signal,
    /// It did not finish in time and was killed.
    Timeout {
        /// The limit, in seconds.
        secs: u64,
        /// When it was killed, in ms since the UNIX epoch (the emulator's clock is the system
        /// clock): how long before it the last notification arrived tells a hang from a slow run.
        #[serde(default)]
        killed_at_ms: u64,
    },
    /// It could not be started.
    Spawn {
        /// Why.
        error: String,
    },
}

/// Every journal event that concerns one plan notification, by kind.
#[derive(Debug, Clone, Default)]
pub struct Attempts {
    /// `accepted` events.
    pub accepted: Vec<u64>,
    /// `rejected` events with their reason.
    pub rejected: Vec<(u64, String)>,
    /// `dropped` and `discarded` events (received, thrown away).
    pub lost: Vec<u64>,
}

impl Attempts {
    /// Every event seq of this notification, in order.
    pub fn all_seqs(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .accepted
            .iter()
            .chain(self.rejected.iter().map(|(s, _)| s))
            .chain(self.lost.iter())
            .copied()
            .collect();
        v.sort_unstable();
        v
    }

    /// How many times the provider sent it (every event is one copy received).
    pub fn sent(&self) -> usize {
        self.accepted.len() + self.rejected.len() + self.lost.len()
    }
}

/// What one run left behind, indexed for the judge.
pub struct Facts<'a> {
    /// The case.
    pub case: &'a Case,
    /// What it set up.
    pub setup: &'a Setup,
    /// What the driver printed.
    pub output: &'a DriverOutput,
    /// How it ended.
    pub exit: &'a Exit,
    /// The whole journal of the run.
    pub events: &'a [Event],
    attempts: HashMap<u32, Attempts>,
    by_seq: HashMap<u64, usize>,
}

impl<'a> Facts<'a> {
    /// Indexes the journal by plan id (each notification has its own token).
    pub fn new(
        case: &'a Case,
        setup: &'a Setup,
        output: &'a DriverOutput,
        exit: &'a Exit,
        events: &'a [Event],
    ) -> Self {
        let ids: HashMap<String, u32> = setup
            .plan
            .notifications
            .iter()
            .map(|n| (n.token.to_ascii_lowercase(), n.id))
            .collect();
        let mut attempts: HashMap<u32, Attempts> = HashMap::new();
        for e in events {
            let Some(n) = &e.notification else { continue };
            let Some(&id) = ids.get(&n.token.to_hex()) else {
                continue;
            };
            let a = attempts.entry(id).or_default();
            match e.kind {
                EventKind::Accepted => a.accepted.push(e.seq),
                EventKind::Rejected => a
                    .rejected
                    .push((e.seq, e.reason.clone().unwrap_or_default())),
                EventKind::Dropped | EventKind::Discarded => a.lost.push(e.seq),
                _ => {}
            }
        }
        let by_seq = events.iter().enumerate().map(|(i, e)| (e.seq, i)).collect();
        Facts {
            case,
            setup,
            output,
            exit,
            events,
            attempts,
            by_seq,
        }
    }

    /// The journal's record of plan id `id`.
    pub fn attempts(&self, id: u32) -> Attempts {
        self.attempts.get(&id).cloned().unwrap_or_default()
    }

    /// The event with sequence number `seq`.
    pub fn event(&self, seq: u64) -> Option<&Event> {
        self.by_seq.get(&seq).map(|&i| &self.events[i])
    }

    /// The driver's (last) report about plan id `id`.
    pub fn report(&self, id: u32) -> Option<&Outcome> {
        self.output.for_id(id).last()
    }

    /// Events of one kind.
    pub fn of_kind(&self, kind: EventKind) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.kind == kind)
    }

    /// Connections the provider opened on the case's protocol (feedback reads excluded).
    pub fn connections(&self) -> Vec<&Event> {
        self.of_kind(EventKind::ConnectionOpened)
            .filter(|e| e.protocol == self.case.protocol)
            .collect()
    }

    /// `observation` events carrying `key` in their detail, with the value.
    pub fn observations(&self, key: &str) -> Vec<(&Event, &serde_json::Value)> {
        self.of_kind(EventKind::Observation)
            .filter_map(|e| Some((e, e.detail.as_ref()?.get(key)?)))
            .collect()
    }

    /// The event the case's scenario rule (its fault) fired on, if it fired: the evidence an
    /// `error` report is excused by.
    pub fn fault(&self) -> Option<&Event> {
        self.events
            .iter()
            .find(|e| e.detail.as_ref().and_then(|d| d.get("rule")).is_some())
    }

    /// The runner's journal events around the driver (its start, then how it ended): the
    /// window a finding about something that never happened cites. Empty when absent.
    pub fn driver_window(&self) -> Vec<u64> {
        self.observations(DRIVER_MARKER)
            .into_iter()
            .map(|(e, _)| e.seq)
            .collect()
    }

    /// The evidence of how the driver ended: the last event the server journaled before it
    /// (what the provider had done by then) and the runner's record of the exit.
    pub fn exit_evidence(&self) -> Vec<u64> {
        let markers = self.driver_window();
        let exited = markers.get(1).copied();
        let mut seqs: Vec<u64> = self
            .events
            .iter()
            .filter(|e| !markers.contains(&e.seq) && exited.map_or(true, |x| e.seq < x))
            .map(|e| e.seq)
            .next_back()
            .into_iter()
            .collect();
        seqs.extend(exited);
        seqs
    }

    /// What each closed HTTP/2 connection reported about itself (ALPN, PRIORITY, HPACK…).
    pub fn closed_observations(&self) -> Vec<(&Event, &serde_json::Value)> {
        self.of_kind(EventKind::ConnectionClosed)
            .filter_map(|e| Some((e, e.detail.as_ref()?.get("observations")?)))
            .collect()
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_hex_and_reproducible() {
        let s = Setup::new("L2.1");
        let t: std::collections::HashSet<_> = (1..=5000).map(|i| s.token(i)).collect();
        assert_eq!(t.len(), 5000);
        assert!(t.iter().all(|t| t.len() == 64 && hex::decode(t).is_ok()));
        assert_eq!(Setup::new("L2.1").token(7), s.token(7));
        assert_ne!(Setup::new("L2.2").token(7), s.token(7));
    }

    #[test]
    fn grades_order_and_parse() {
        assert!(Grade::Failed > Grade::NonStrict && Grade::NonStrict > Grade::Ok);
        assert_eq!(Grade::parse("non-strict"), Some(Grade::NonStrict));
        assert_eq!(Grade::parse("nope"), None);
    }

    #[test]
    fn globs_select_cases() {
        assert!(glob(b"L2.*", b"L2.10"));
        assert!(glob(b"*", b"H1.1"));
        assert!(!glob(b"L2.*", b"L3.1"));
        assert!(glob(b"h1.1", b"H1.1"));
    }
}

/// A channel the runner creates before the driver starts, with its subscribed devices.
#[derive(Debug, Clone)]
pub struct PreChannel {
    /// Its storage policy.
    pub policy: crate::broadcast::StoragePolicy,
    /// Subscribed devices: (token hex, online).
    pub devices: Vec<(String, bool)>,
}

/// What a correct provider reports for one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepExpect {
    /// Apple's success (201, 200 or 204); the library reports it sent.
    Sent,
    /// Apple refuses with this reason; the library reports it failed with it, unretried.
    Failed(&'static str),
}
