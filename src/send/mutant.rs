//! Mutant providers (issue 10): `apnsim send --mutant NAME` breaks exactly one rule of the gold
//! provider, so the conformance suite can be calibrated: a case is trustworthy when the mutant
//! aimed at it fails it and passes the rest (tests/conformance_mutants.rs asserts every cell).
//!
//! The sender asks [`is`] at the few places a rule is kept; the legacy bookkeeping passes its
//! settlement through [`settlement`].

use super::settle::{End, Settlement, Written};
use crate::legacy::status::Status;
use crate::plan::Outcome;
use std::sync::OnceLock;
use std::time::Duration;

/// One broken rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mutant {
    /// Never connects: every notification is reported `error`.
    NeverConnects,
    /// Never connects but reports every notification `sent`.
    LiesSent,
    /// HTTP/2: never opens a new connection after GOAWAY or a reset (what was left is `error`).
    NoReconnect,
    /// HTTP/2: retries 429 and 5xx at once, without backoff.
    RetryAtOnce,
    /// HTTP/2: never signs a new JWT after 403 ExpiredProviderToken.
    NoResign,
    /// HTTP/2: one connection per notification (the JWT is kept, as Apple asks).
    ConnectionPerNotification,
    /// Legacy: after an error-response also resends what preceded the refused notification.
    ResendPreceding,
    /// Legacy: after an error-response does not resend what followed (reports it `sent`).
    NoResendFollowing,
    /// Legacy: ignores the identifier of status 10 and resends everything written.
    IgnoreShutdownIdentifier,
    /// HTTP/2: a PRIORITY frame after every request's HEADERS (APNs ignores PRIORITY).
    SendsPriority,
    /// HTTP/2: `authorization` HPACK-indexed instead of a literal without indexing.
    IndexesAuthorization,
}

static ACTIVE: OnceLock<Mutant> = OnceLock::new();

/// Makes `m` the mutant of this process (once; `apnsim send` is one run).
pub fn set(m: Mutant) {
    let _ = ACTIVE.set(m);
}

/// Whether this process is mutant `m`.
pub fn is(m: Mutant) -> bool {
    ACTIVE.get() == Some(&m)
}

/// The frame rewrite of a wire-level mutant, if this process is one.
pub fn wire() -> Option<super::mutant_wire::Broken> {
    use super::mutant_wire::Broken;
    match ACTIVE.get()? {
        Mutant::SendsPriority => Some(Broken::Priority),
        Mutant::IndexesAuthorization => Some(Broken::IndexAuthorization),
        _ => None,
    }
}

/// The outcomes of a mutant that never connects, or `None` when the mutant sends.
pub fn without_connecting(ids: impl Iterator<Item = u32>) -> Option<Vec<Outcome>> {
    if is(Mutant::NeverConnects) {
        Some(
            ids.map(|id| super::error_outcome(id, "connection refused"))
                .collect(),
        )
    } else if is(Mutant::LiesSent) {
        Some(ids.map(|id| super::sent_outcome(id, None)).collect())
    } else {
        None
    }
}

/// The pause before retrying a temporary error: none for [`Mutant::RetryAtOnce`].
pub fn pause(backoff: Duration) -> Duration {
    if is(Mutant::RetryAtOnce) {
        Duration::ZERO
    } else {
        backoff
    }
}

/// The legacy settlement of a connection, as the mutant gets it wrong.
pub fn settlement(written: &[Written], end: End, mut s: Settlement) -> Settlement {
    let End::ErrorResponse { response, .. } = end else {
        return s;
    };
    let shutdown = response.status == Status::Shutdown.code();
    if is(Mutant::ResendPreceding) && !shutdown && s.failed.is_some() {
        let mut resend: Vec<usize> = std::mem::take(&mut s.sent);
        resend.append(&mut s.resend);
        s.resend = resend;
    } else if is(Mutant::NoResendFollowing) {
        let mut rest = std::mem::take(&mut s.resend);
        s.sent.append(&mut rest);
    } else if is(Mutant::IgnoreShutdownIdentifier) && shutdown {
        s.sent.clear();
        s.resend = written.iter().map(|w| w.index).collect();
    }
    s
}
