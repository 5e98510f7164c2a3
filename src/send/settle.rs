//! Sans-IO bookkeeping of the legacy sender: given what was written on a connection and how the
//! connection ended, which notifications are settled (sent or failed) and which must be resent,
//! pipelined or one at a time (PROTOCOL.md 1.6, 1.7).

use crate::legacy::frame::ErrorResponse;
use crate::legacy::status::Status;

/// One notification written on the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Its index in the plan.
    pub index: usize,
    /// The identifier it carried (item 3), which an error-response echoes (PROTOCOL.md 1.6).
    pub identifier: [u8; 4],
    /// Written in careful mode: alone, followed by a wait for an error-response or close.
    pub careful: bool,
    /// Nothing happened during the wait after it (careful), or the quiet period passed after
    /// its write before the connection ended: the server read and accepted it (PROTOCOL.md 1.7).
    pub survived: bool,
}

/// How a connection ended, from the sender's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The quiet period after the last write passed with nothing from the server.
    Quiet,
    /// An error-response arrived; `right_after_last` when it came in the careful wait after the
    /// last written notification.
    ErrorResponse {
        /// The packet.
        response: ErrorResponse,
        /// It came in the careful wait of the last written notification.
        right_after_last: bool,
    },
    /// EOF, reset or a write error without an error-response; `right_after_last` as above.
    Closed {
        /// It came in the careful wait of the last written notification.
        right_after_last: bool,
    },
}

/// Why one notification failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The status name, or a description of a close.
    pub reason: String,
    /// The status byte, when an error-response named it.
    pub status: Option<u8>,
}

/// What the end of a connection settles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settlement {
    /// Plan indexes reported `sent`: no error can arrive for them any more.
    pub sent: Vec<usize>,
    /// The notification the server refused, never resent.
    pub failed: Option<(usize, Failure)>,
    /// Plan indexes to write again, in order.
    pub resend: Vec<usize>,
    /// Resend the first one alone (careful) before pipelining again: the server closed without
    /// saying what it had read and nothing written was proven, so the next connection must
    /// settle at least that one (PROTOCOL.md 1.7).
    pub resend_careful: bool,
    /// A close was pinned on one notification: the rest may go back to pipelining.
    pub culprit_found: bool,
}

/// The reason reported for a notification pinned as the cause of a silent close.
pub const SILENT_CLOSE_REASON: &str = "connection closed without error-response";

/// The name a status byte is reported by: apnsim's status name, or the number for unknown bytes.
pub fn status_reason(status: u8) -> String {
    Status::from_code(status)
        .map(|s| s.name().to_string())
        .unwrap_or_else(|| format!("status {status}"))
}

/// Decides what the end of a connection means for every notification written on it.
pub fn settle(written: &[Written], end: End) -> Settlement {
    let all = || written.iter().map(|w| w.index).collect::<Vec<_>>();
    match end {
        End::Quiet => Settlement {
            sent: all(),
            ..Settlement::default()
        },
        End::ErrorResponse {
            response,
            right_after_last,
        } => {
            let pos = written
                .iter()
                .position(|w| w.identifier == response.identifier);
            match pos {
                // PROTOCOL.md 1.6: for Shutdown the identifier is the last notification processed;
                // everything after it was discarded and must be resent.
                Some(p) if response.status == Status::Shutdown.code() => Settlement {
                    sent: written[..=p].iter().map(|w| w.index).collect(),
                    resend: written[p + 1..].iter().map(|w| w.index).collect(),
                    ..Settlement::default()
                },
                // PROTOCOL.md 1.7: the named notification is refused, everything after it discarded.
                Some(p) => Settlement {
                    sent: written[..p].iter().map(|w| w.index).collect(),
                    failed: Some((
                        written[p].index,
                        Failure {
                            reason: status_reason(response.status),
                            status: Some(response.status),
                        },
                    )),
                    resend: written[p + 1..].iter().map(|w| w.index).collect(),
                    ..Settlement::default()
                },
                // An identifier we never wrote (e.g. 0 for a frame the server could not parse):
                // in careful mode it can only be about the notification just written.
                None if response.status != Status::Shutdown.code() => {
                    match careful_culprit(written, right_after_last) {
                        Some(last) => Settlement {
                            sent: written[..last].iter().map(|w| w.index).collect(),
                            failed: Some((
                                written[last].index,
                                Failure {
                                    reason: status_reason(response.status),
                                    status: Some(response.status),
                                },
                            )),
                            culprit_found: true,
                            ..Settlement::default()
                        },
                        None => unexplained_close(written),
                    }
                }
                None => unexplained_close(written),
            }
        }
        End::Closed { right_after_last } => match careful_culprit(written, right_after_last) {
            Some(last) => Settlement {
                sent: written[..last].iter().map(|w| w.index).collect(),
                failed: Some((
                    written[last].index,
                    Failure {
                        reason: SILENT_CLOSE_REASON.to_string(),
                        status: None,
                    },
                )),
                culprit_found: true,
                ..Settlement::default()
            },
            None => unexplained_close(written),
        },
    }
}

/// The position of the last written notification when the end came in its careful wait.
fn careful_culprit(written: &[Written], right_after_last: bool) -> Option<usize> {
    let last = written.len().checked_sub(1)?;
    (right_after_last && written[last].careful).then_some(last)
}

/// A close that names nobody: the provider cannot know what the server read, so everything not
/// proven (by a careful wait, or by the quiet period passing after its write) is resent; when
/// nothing was proven, the first goes alone so the next connection makes progress (PROTOCOL.md 1.7).
fn unexplained_close(written: &[Written]) -> Settlement {
    let (survived, unsure): (Vec<&Written>, Vec<&Written>) =
        written.iter().partition(|w| w.survived);
    Settlement {
        sent: survived.iter().map(|w| w.index).collect(),
        resend_careful: survived.is_empty() && !unsure.is_empty(),
        resend: unsure.iter().map(|w| w.index).collect(),
        ..Settlement::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(index: usize, careful: bool, survived: bool) -> Written {
        Written {
            index,
            identifier: (index as u32 + 100).to_be_bytes(),
            careful,
            survived,
        }
    }

    fn pipelined(n: usize) -> Vec<Written> {
        (0..n).map(|i| w(i, false, false)).collect()
    }

    fn error(status: u8, index: usize) -> End {
        End::ErrorResponse {
            response: ErrorResponse {
                status,
                identifier: (index as u32 + 100).to_be_bytes(),
            },
            right_after_last: false,
        }
    }

    #[test]
    fn quiet_settles_everything_as_sent() {
        let s = settle(&pipelined(3), End::Quiet);
        assert_eq!(s.sent, vec![0, 1, 2]);
        assert!(s.resend.is_empty() && s.failed.is_none());
    }

    #[test]
    fn an_error_fails_the_named_one_and_resends_the_rest_pipelined() {
        let s = settle(&pipelined(6), error(8, 2));
        assert_eq!(s.sent, vec![0, 1]);
        let (i, f) = s.failed.unwrap();
        assert_eq!(i, 2);
        assert_eq!(f.reason, "invalid_token");
        assert_eq!(f.status, Some(8));
        assert_eq!(s.resend, vec![3, 4, 5]);
        assert!(!s.resend_careful);
    }

    #[test]
    fn shutdown_names_the_last_processed_one() {
        let s = settle(&pipelined(5), error(10, 2));
        assert_eq!(s.sent, vec![0, 1, 2]);
        assert!(s.failed.is_none());
        assert_eq!(s.resend, vec![3, 4]);
    }

    #[test]
    fn a_silent_close_resends_the_unproven_pipelined_after_progress() {
        let mut written = vec![w(0, true, true), w(1, false, true)];
        written.extend((2..5).map(|i| w(i, false, false)));
        let s = settle(
            &written,
            End::Closed {
                right_after_last: false,
            },
        );
        assert_eq!(s.sent, vec![0, 1]);
        assert_eq!(s.resend, vec![2, 3, 4]);
        assert!(!s.resend_careful && !s.culprit_found);
    }

    #[test]
    fn a_silent_close_that_proved_nothing_resends_the_first_carefully() {
        let s = settle(
            &pipelined(4),
            End::Closed {
                right_after_last: false,
            },
        );
        assert!(s.sent.is_empty());
        assert_eq!(s.resend, vec![0, 1, 2, 3]);
        assert!(s.resend_careful && !s.culprit_found);
    }

    #[test]
    fn a_close_right_after_a_careful_write_pins_the_culprit() {
        let written = vec![w(0, true, true), w(1, true, false)];
        let s = settle(
            &written,
            End::Closed {
                right_after_last: true,
            },
        );
        assert_eq!(s.sent, vec![0]);
        let (i, f) = s.failed.unwrap();
        assert_eq!(
            (i, f.reason.as_str(), f.status),
            (1, SILENT_CLOSE_REASON, None)
        );
        assert!(s.resend.is_empty() && s.culprit_found);
    }

    #[test]
    fn an_unknown_identifier_in_careful_mode_blames_the_last_write() {
        let written = vec![w(0, true, true), w(1, true, false)];
        let end = End::ErrorResponse {
            response: ErrorResponse {
                status: 128,
                identifier: [0; 4],
            },
            right_after_last: true,
        };
        let s = settle(&written, end);
        assert_eq!(
            s.failed.unwrap(),
            (
                1,
                Failure {
                    reason: "protocol_error".into(),
                    status: Some(128)
                }
            )
        );
        // Pipelined, it names nobody.
        let s = settle(
            &pipelined(2),
            End::ErrorResponse {
                response: ErrorResponse {
                    status: 128,
                    identifier: [0; 4],
                },
                right_after_last: true,
            },
        );
        assert!(s.failed.is_none() && s.resend_careful);
        assert_eq!(s.resend, vec![0, 1]);
    }

    #[test]
    fn unknown_status_bytes_keep_their_number() {
        assert_eq!(status_reason(42), "status 42");
        assert_eq!(status_reason(10), "shutdown");
    }

    proptest! {
        /// Every written notification ends up in exactly one place, whatever the end.
        #[test]
        fn settlement_partitions_the_written(
            flags in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..12),
            kind in 0u8..4, status in any::<u8>(), at in 0usize..14, right in any::<bool>(),
        ) {
            let written: Vec<Written> = flags.iter().enumerate()
                .map(|(i, &(c, s))| w(i, c, s)).collect();
            let end = match kind {
                0 => End::Quiet,
                1 => End::Closed { right_after_last: right },
                _ => End::ErrorResponse {
                    response: ErrorResponse { status, identifier: (at as u32 + 100).to_be_bytes() },
                    right_after_last: right,
                },
            };
            let s = settle(&written, end);
            let mut seen: Vec<usize> = s.sent.iter().chain(s.resend.iter()).copied()
                .chain(s.failed.iter().map(|(i, _)| *i)).collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..written.len()).collect::<Vec<_>>());
        }
    }
}
