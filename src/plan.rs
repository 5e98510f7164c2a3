//! The driver contract of `fixtures/providers/README.md` as types: the plan a provider driver is
//! given, and the JSON lines it prints back. Shared by the conformance runner (which writes plans
//! and reads reports) and `apnsim send` (which is a driver itself).

use serde::{Deserialize, Serialize};

/// What a driver must send, in order, through one client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The notifications, in sending order.
    pub notifications: Vec<PlanNotification>,
    /// Read the feedback service after sending (legacy only).
    #[serde(default)]
    pub read_feedback: bool,
    /// Pause between sends, in ms.
    #[serde(default)]
    pub pace_ms: u64,
    /// The app (bare bundle id) the broadcast steps are for (PROTOCOL.md 2.11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
    /// Channel-management calls and broadcasts, in order, after the notifications: only for a
    /// provider whose provider.toml says `broadcast = true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broadcasts: Vec<BroadcastStep>,
}

/// A channel-management call or a broadcast (PROTOCOL.md 2.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BroadcastOp {
    /// POST `/1/apps/<bundle>/channels`: the report carries the new `channel`.
    Create,
    /// GET `/1/apps/<bundle>/channels`.
    Read,
    /// DELETE `/1/apps/<bundle>/channels`.
    Delete,
    /// GET `/1/apps/<bundle>/all-channels`.
    List,
    /// POST `/4/broadcasts/apps/<bundle>`.
    Broadcast,
}

/// One step of a plan's broadcast part; `id` names it in the report (ids are shared with the
/// notifications, never reused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastStep {
    /// Identifier in the report.
    pub id: u32,
    /// The call.
    pub op: BroadcastOp,
    /// `apns-channel-id`: a literal base64 id, or `@<id>` for the channel created by the
    /// `create` step with that id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// create: `message-storage-policy` (0 or 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_policy: Option<u8>,
    /// broadcast: the Live Activity payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// broadcast: `apns-expiration` as given (0 included); absent = no header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<u32>,
    /// broadcast: `apns-priority` (5 or 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
}

impl BroadcastStep {
    /// The step id a `@<id>` channel reference names, if it is one.
    pub fn channel_ref(&self) -> Option<u32> {
        self.channel.as_deref()?.strip_prefix('@')?.parse().ok()
    }
}

/// One notification of a plan; `id` is how the driver's report names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanNotification {
    /// Identifier in the report (and the legacy frame identifier where the library takes one).
    pub id: u32,
    /// Device token, hex.
    pub token: String,
    /// The JSON payload.
    pub payload: serde_json::Value,
    /// Absolute expiry in seconds since the epoch; 0 = none.
    #[serde(default)]
    pub expiry: u32,
    /// 10, 5 or 1.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// `apns-push-type`.
    #[serde(default)]
    pub push_type: Option<String>,
    /// `apns-collapse-id`.
    #[serde(default)]
    pub collapse_id: Option<String>,
}

fn default_priority() -> u8 {
    10
}

/// What the library said about one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultKind {
    /// The library reports success.
    Sent,
    /// The library reports an APNs rejection.
    Failed,
    /// HTTP/2 410: the token is no longer valid.
    TokenInvalid,
    /// A failure that is not an APNs answer (connection, timeout, exception).
    Error,
    /// The library never said.
    Unknown,
}

/// One report line about one notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The plan id.
    pub id: u32,
    /// What the library said.
    pub result: ResultKind,
    /// Apple's reason or the library's name for the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// HTTP status, or the legacy status byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// 410 timestamp in ms, as the library reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// The apns-id the library was given, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apns_id: Option<String>,
    /// A broadcast `create` step: the `apns-channel-id` the library was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// One tuple read from the feedback service (timestamp in seconds, as on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackTuple {
    /// Device token, hex.
    pub token: String,
    /// Seconds since the epoch.
    pub timestamp: u64,
}

/// Everything a driver printed, parsed; lines that are not the contract's are kept as garbage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DriverOutput {
    /// One per report line, in printed order.
    pub outcomes: Vec<Outcome>,
    /// The feedback line, if printed.
    pub feedback: Option<Vec<FeedbackTuple>>,
    /// Whether `{"done":true}` was printed.
    pub done: bool,
    /// Lines that were not contract JSON (first few).
    pub garbage: Vec<String>,
}

/// The most garbage lines kept (a chatty library must not bloat reports).
const MAX_GARBAGE: usize = 20;

impl DriverOutput {
    /// Parses a driver's stdout line by line; never fails, unknown lines become garbage.
    pub fn parse(stdout: &str) -> Self {
        let mut out = DriverOutput::default();
        for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let value: serde_json::Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(_) => {
                    out.keep_garbage(line);
                    continue;
                }
            };
            if value.get("id").is_some() {
                match serde_json::from_value::<Outcome>(value) {
                    Ok(o) => out.outcomes.push(o),
                    Err(_) => out.keep_garbage(line),
                }
            } else if let Some(fb) = value.get("feedback") {
                match serde_json::from_value::<Vec<FeedbackTuple>>(fb.clone()) {
                    Ok(f) => out.feedback = Some(f),
                    Err(_) => out.keep_garbage(line),
                }
            } else if value.get("done").and_then(|d| d.as_bool()) == Some(true) {
                out.done = true;
            } else {
                out.keep_garbage(line);
            }
        }
        out
    }

    fn keep_garbage(&mut self, line: &str) {
        if self.garbage.len() < MAX_GARBAGE {
            self.garbage.push(line.chars().take(300).collect());
        }
    }

    /// The outcomes reported for plan id `id` (a driver should print one; some print more).
    pub fn for_id(&self, id: u32) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(move |o| o.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_lines_and_keeps_the_rest() {
        let out = DriverOutput::parse(
            "{\"id\":1,\"result\":\"sent\"}\n\
             {\"id\":3,\"result\":\"token-invalid\",\"reason\":\"Unregistered\",\"status\":410,\"timestamp\":1508249865488}\n\
             warning: something\n\
             {\"feedback\":[{\"token\":\"ab\",\"timestamp\":5}]}\n\
             {\"done\":true}\n",
        );
        assert_eq!(out.outcomes.len(), 2);
        assert_eq!(out.outcomes[1].result, ResultKind::TokenInvalid);
        assert_eq!(out.outcomes[1].timestamp, Some(1508249865488));
        assert_eq!(out.feedback.as_ref().unwrap()[0].timestamp, 5);
        assert!(out.done);
        assert_eq!(out.garbage, vec!["warning: something".to_string()]);
    }

    #[test]
    fn a_plan_takes_defaults() {
        let p: Plan = serde_json::from_str(
            r#"{"notifications":[{"id":1,"token":"aa","payload":{"aps":{}}}]}"#,
        )
        .unwrap();
        assert_eq!(p.notifications[0].priority, 10);
        assert!(!p.read_feedback);
    }
}
