//! The payload lint as the control API shows it: a `lint` field on every accepted event and a
//! `display` beside every inbox entry, computed from the stored payload when the JSON is built,
//! so the protocol hot paths pay nothing for it (the lint is a pure function of the payload and
//! push type, so every view of an event shows the same result).

use super::error::ApiError;
use super::query::Params;
use crate::engine::devices::DeviceView;
use crate::journal::{Event, EventKind};
use crate::lint::{self, Level, Lint};
use serde_json::{json, Value};

/// The lint of an accepted notification; `None` for every other event.
pub(super) fn of(e: &Event) -> Option<Lint> {
    if e.kind != EventKind::Accepted {
        return None;
    }
    let n = e.notification.as_ref()?;
    Some(lint::lint(
        &n.payload,
        n.push_type.map(crate::model::PushType::as_str),
    ))
}

/// An event's journal JSON plus its `lint` when it is an accepted notification.
pub(super) fn event_json(e: &Event) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    if let (Some(l), Value::Object(o)) = (of(e), &mut v) {
        o.insert("lint".into(), json!(l));
    }
    v
}

/// Every event's JSON (see [`event_json`]).
pub(super) fn events_json(events: &[Event]) -> Vec<Value> {
    events.iter().map(event_json).collect()
}

/// The `lint=ok|warn` query option: only accepted notifications whose lint has that level.
pub(super) fn level_param(params: &Params) -> Result<Option<Level>, ApiError> {
    match params.text("lint") {
        None => Ok(None),
        Some(v) => Level::parse(v)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("lint must be ok or warn, got {v:?}"))),
    }
}

/// Whether `e` passes the `lint=` option.
pub(super) fn matches(e: &Event, level: Option<Level>) -> bool {
    match level {
        None => true,
        Some(want) => of(e).is_some_and(|l| l.level == want),
    }
}

/// A device view with `display` (what the lock screen shows, or why nothing) and `lint` on
/// every displayed and stored notification.
pub(super) fn inbox_json(view: &DeviceView) -> Value {
    let mut v = serde_json::to_value(view).unwrap_or(Value::Null);
    for list in ["inbox", "stored"] {
        if let Some(items) = v.get_mut(list).and_then(Value::as_array_mut) {
            let notes = match list {
                "inbox" => view
                    .inbox
                    .iter()
                    .map(|d| &d.notification)
                    .collect::<Vec<_>>(),
                _ => view.stored.iter().map(|s| &s.notification).collect(),
            };
            for (item, n) in items.iter_mut().zip(notes) {
                let push_type = n.push_type.map(crate::model::PushType::as_str);
                item["display"] = json!(lint::display(&n.payload, push_type));
                item["lint"] = json!(lint::lint(&n.payload, push_type));
            }
        }
    }
    v
}
