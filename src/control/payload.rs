//! The payload lint as the control API shows it: a `lint` field on every accepted event and a
//! `display` beside every inbox entry, computed from the stored payload when the JSON is built,
//! so the protocol hot paths pay nothing for it (the lint is a pure function of the payload and
//! push type, so every view of an event shows the same result).

use super::bodies::{Inbox, JournalEvent, Linted};
use crate::engine::devices::DeviceView;
use crate::journal::Event;
use crate::lint;
use crate::model::Notification;

/// An event as the control API shows it: with its `lint` when it is an accepted notification.
pub(super) fn journal_event(e: &Event) -> JournalEvent {
    JournalEvent {
        lint: e.lint(),
        event: e.clone(),
    }
}

/// Every event as the control API shows it (see [`journal_event`]).
pub(super) fn journal_events(events: &[Event]) -> Vec<JournalEvent> {
    events.iter().map(journal_event).collect()
}

/// A notification on a device with its `display` (what the lock screen shows, or why nothing)
/// and `lint`.
fn linted<T>(item: &T, n: &Notification) -> Linted<T>
where
    T: Clone,
{
    let push_type = n.push_type.map(crate::model::PushType::as_str);
    Linted {
        item: item.clone(),
        display: lint::display(&n.payload, push_type),
        lint: lint::lint(&n.payload, push_type),
    }
}

/// A device view with `display` and `lint` on every displayed and stored notification.
pub(super) fn inbox(view: &DeviceView) -> Inbox {
    Inbox {
        token: view.token.clone(),
        online: view.online,
        stored: view
            .stored
            .iter()
            .map(|s| linted(s, &s.notification))
            .collect(),
        inbox: view
            .inbox
            .iter()
            .map(|d| linted(d, &d.notification))
            .collect(),
    }
}
