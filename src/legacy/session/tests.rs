//! The legacy session without sockets or sleeps: bytes and instants in, effects out.

use super::*;
use crate::engine::registry::{Registry, TokenRecord};
use crate::engine::rules::{Matcher, Rule, RuleSet};
use crate::settings::Settings;

const TOKEN: [u8; 32] = [7; 32];

fn engine(settings: Settings, rules: Vec<Rule>) -> Engine {
    let e = Engine::new(settings, Registry::new());
    e.set_rules(RuleSet::new(rules, 0));
    e
}

fn cfg(answer_delay_ms: u64) -> SessionConfig {
    SessionConfig {
        limits: Limits::default(),
        answer_delay: Duration::from_millis(answer_delay_ms),
        read_buffer: 256 * 1024,
        unknown_command: UnknownCommand::ProtocolError,
    }
}

fn session(engine: &Engine, c: SessionConfig) -> Session<'_> {
    Session::new(
        engine,
        Clock::new(),
        c,
        1,
        Environment::Production,
        Some(Arc::from("com.example.app")),
    )
}

/// An enhanced (command 1) frame with identifier `id`.
fn enhanced(id: u8, token: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    frame::encode_enhanced([0, 0, 0, id], 0, token, payload, &mut b).unwrap();
    b.to_vec()
}

fn ok(id: u8) -> Vec<u8> {
    enhanced(id, &TOKEN, b"{}")
}

fn feed(s: &mut Session<'_>, bytes: &[u8], now: Instant) -> Vec<Effect> {
    s.buffer().extend_from_slice(bytes);
    let mut out = Vec::new();
    s.handle_read(now, &mut out);
    out
}

fn kinds(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Journal(e) => format!("{:?}", e.kind),
            Effect::Write(b) => format!("write {:?}", b.as_ref()),
            Effect::Stall(u) => format!("stall {}", u.is_some()),
            Effect::Throttle(r) => format!("throttle {r}"),
            Effect::WakeAt(_) => "wake".into(),
            Effect::Close { how, end } => format!("close {how:?} {}", end.as_str()),
        })
        .collect()
}

fn journal(effects: &[Effect]) -> Vec<&NewEvent> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Journal(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn rule(action: impl Into<Action>) -> Vec<Rule> {
    vec![Rule::new(
        Matcher {
            nth: Some(2),
            ..Matcher::default()
        },
        action.into(),
    )]
}

#[test]
fn valid_frames_are_accepted_in_order_and_partial_ones_wait() {
    let e = engine(Settings::default(), vec![]);
    let mut s = session(&e, cfg(0));
    let mut bytes = [ok(1), ok(2)].concat();
    let third = ok(3);
    bytes.extend_from_slice(&third[..10]);
    let out = feed(&mut s, &bytes, Instant::now());
    assert_eq!(kinds(&out), ["Accepted", "Accepted"]);
    let ids: Vec<_> = journal(&out)
        .iter()
        .map(|e| e.notification.as_ref().unwrap().identifier)
        .collect();
    assert_eq!(
        ids,
        [
            Some(Identifier([0, 0, 0, 1])),
            Some(Identifier([0, 0, 0, 2]))
        ]
    );
    let out = feed(&mut s, &third[10..], Instant::now());
    assert_eq!(kinds(&out), ["Accepted"]);
    assert_eq!(s.decided(), 3);
    let mut out = Vec::new();
    s.handle_eof(Instant::now(), &mut out);
    assert_eq!(kinds(&out), ["close Graceful peer-closed"]);
}

#[test]
fn every_codec_status_is_answered_with_the_identifier_then_close() {
    // PROTOCOL.md 1.6: each malformed part has its status, naming the refused frame.
    let cases: [(&[u8], &[u8], Status); 4] = [
        (&[], b"{}", Status::MissingDeviceToken),
        (&[1; 31], b"{}", Status::InvalidTokenSize),
        (&TOKEN, b"", Status::MissingPayload),
        (&TOKEN, &[b'x'; 5000], Status::InvalidPayloadSize),
    ];
    for (token, payload, status) in cases {
        let e = engine(Settings::default(), vec![]);
        let mut s = session(&e, cfg(0));
        let bytes = [ok(1), enhanced(9, token, payload), ok(3)].concat();
        let out = feed(&mut s, &bytes, Instant::now());
        let resp = ErrorResponse::new(status, [0, 0, 0, 9]).encode();
        assert_eq!(
            kinds(&out),
            [
                "Accepted".to_string(),
                "Rejected".into(),
                "Discarded".into(),
                format!("write {:?}", &resp[..]),
                "close Graceful refused".into(),
            ],
            "{status:?}"
        );
        assert_eq!(journal(&out)[1].status, Some(status.code().into()));
        assert!(s.is_closed());
    }
}

#[test]
fn strict_tokens_refuse_unknown_tokens_with_status_8() {
    let settings = Settings {
        strict_tokens: true,
        ..Settings::default()
    };
    let e = engine(settings, vec![]);
    let mut s = session(&e, cfg(0));
    let out = feed(&mut s, &ok(4), Instant::now());
    let resp = ErrorResponse::new(Status::InvalidToken, [0, 0, 0, 4]).encode();
    assert_eq!(
        kinds(&out),
        [
            "Rejected".to_string(),
            format!("write {:?}", &resp[..]),
            "close Graceful refused".into()
        ]
    );
}

#[test]
fn a_token_of_the_other_environment_gets_status_8() {
    let e = engine(Settings::default(), vec![]);
    e.registry().register(TokenRecord::new(
        DeviceToken::from_bytes(Bytes::copy_from_slice(&TOKEN)),
        Some(Environment::Sandbox),
    ));
    let mut s = session(&e, cfg(0));
    let out = feed(&mut s, &ok(4), Instant::now());
    assert_eq!(
        journal(&out)[0].status,
        Some(Status::InvalidToken.code().into())
    );
}

/// The discard reasons of the events in `effects`.
fn reasons(effects: &[Effect]) -> Vec<String> {
    journal(effects)
        .iter()
        .filter(|e| e.kind == EventKind::Discarded)
        .map(|e| e.reason.clone().unwrap_or_default())
        .collect()
}

#[test]
fn the_answer_delay_reads_on_journals_each_frame_as_discarded_then_answers_and_closes() {
    // PROTOCOL.md 1.7: the answer came late; what arrived meanwhile was read and thrown away.
    let e = engine(Settings::default(), vec![]);
    let mut s = session(&e, cfg(300));
    let t0 = Instant::now();
    let out = feed(&mut s, &[enhanced(9, &[], b"{}"), ok(3)].concat(), t0);
    assert_eq!(kinds(&out), ["Rejected", "Discarded", "wake"]);
    assert_eq!(reasons(&out), ["after status 2 for #9"]);
    assert_eq!(out[2], Effect::WakeAt(t0 + Duration::from_millis(300)));
    assert!(s.wants_read());
    // Each frame is journaled as it arrives; a partial one waits for its rest.
    let four = ok(4);
    let out = feed(&mut s, &four[..10], t0 + Duration::from_millis(100));
    assert!(out.is_empty());
    let out = feed(&mut s, &four[10..], t0 + Duration::from_millis(150));
    assert_eq!(kinds(&out), ["Discarded"]);
    assert_eq!(
        journal(&out)[0].notification.as_ref().unwrap().identifier,
        Some(Identifier([0, 0, 0, 4]))
    );
    let mut out = Vec::new();
    s.handle_timeout(t0 + Duration::from_millis(299), &mut out);
    assert!(out.is_empty(), "not before the delay");
    s.handle_timeout(t0 + Duration::from_millis(300), &mut out);
    let resp = ErrorResponse::new(Status::MissingDeviceToken, [0, 0, 0, 9]).encode();
    assert_eq!(
        kinds(&out),
        [
            format!("write {:?}", &resp[..]),
            "close Graceful refused".into()
        ]
    );
}

#[test]
fn every_verdict_that_ends_the_connection_waits_the_answer_delay_reading() {
    // PROTOCOL.md 1.7: error-response, command-0 close, drop, reset and status 10 all arrive
    // late, and what was read meanwhile is journaled with the verdict it followed.
    let mut simple = BytesMut::new();
    frame::encode_simple(&TOKEN, b"", &mut simple).unwrap();
    let status = |status| {
        rule(LegacyAction::Error {
            status,
            close: true,
        })
    };
    let cases: [(Vec<Rule>, Vec<u8>, &str, &str); 5] = [
        (
            status(Status::InvalidToken),
            [ok(1), ok(2)].concat(),
            "after status 8 for #2",
            "close Graceful refused",
        ),
        (
            vec![],
            simple.to_vec(),
            "after status 4 for a command-0 notification",
            "close Graceful refused",
        ),
        (
            rule(LegacyAction::Drop { reset: false }),
            [ok(1), ok(2)].concat(),
            "after drop at #2",
            "close Fin dropped",
        ),
        (
            rule(LegacyAction::Drop { reset: true }),
            [ok(1), ok(2)].concat(),
            "after reset at #2",
            "close Reset dropped",
        ),
        (
            status(Status::Shutdown),
            [ok(1), ok(2)].concat(),
            "after status 10 for #2",
            "close Graceful refused",
        ),
    ];
    for (rules, first, reason, closed) in cases {
        let e = engine(Settings::default(), rules);
        let mut s = session(&e, cfg(200));
        let t0 = Instant::now();
        let out = feed(&mut s, &first, t0);
        assert_eq!(
            out.last(),
            Some(&Effect::WakeAt(t0 + Duration::from_millis(200)))
        );
        let out = feed(
            &mut s,
            &[ok(3), ok(4)].concat(),
            t0 + Duration::from_millis(50),
        );
        assert_eq!(reasons(&out), [reason, reason], "{reason}");
        let mut out = Vec::new();
        s.handle_timeout(t0 + Duration::from_millis(200), &mut out);
        assert_eq!(kinds(&out).last().map(String::as_str), Some(closed));
        assert!(s.is_closed());
    }
}

#[test]
fn a_rule_close_overrides_how_the_connection_ends() {
    for how in CloseHow::ALL {
        let e = engine(
            Settings::default(),
            vec![Rule::new(
                Matcher {
                    nth: Some(1),
                    ..Matcher::default()
                },
                LegacyAction::Error {
                    status: Status::InvalidToken,
                    close: true,
                }
                .into(),
            )
            .close(how)],
        );
        let mut s = session(&e, cfg(0));
        let out = feed(&mut s, &ok(1), Instant::now());
        assert_eq!(
            out.last(),
            Some(&Effect::Close {
                how,
                end: ConnectionEnd::Refused
            })
        );
        assert!(matches!(out[out.len() - 2], Effect::Write(_)), "{how:?}");
    }
}

#[test]
fn the_answer_delay_stops_reading_at_the_buffer_bound_and_on_eof() {
    // After an unparseable frame nothing can be split into frames, so it piles up to the bound.
    let e = engine(Settings::default(), vec![]);
    let mut c = cfg(300);
    c.read_buffer = 90;
    let mut s = session(&e, c);
    let t0 = Instant::now();
    feed(&mut s, &[9, 0, 0, 0, 0, 0, 0, 0], t0);
    assert!(s.wants_read());
    feed(&mut s, &[ok(1), ok(2)].concat(), t0);
    assert!(!s.wants_read(), "past the read buffer bound");
    let mut out = Vec::new();
    s.handle_eof(t0, &mut out);
    assert_eq!(out, [Effect::Stall(Some(t0 + Duration::from_millis(300)))]);
}

#[test]
fn command_0_is_refused_silently() {
    // PROTOCOL.md 1.7: the simple format has no error-response.
    let e = engine(Settings::default(), vec![]);
    let mut s = session(&e, cfg(300));
    let mut b = BytesMut::new();
    frame::encode_simple(&TOKEN, b"", &mut b).unwrap();
    b.extend_from_slice(&ok(2));
    let out = feed(&mut s, &b, Instant::now());
    assert_eq!(kinds(&out), ["Rejected", "Discarded", "wake"]);
    assert_eq!(
        journal(&out)[0].detail,
        Some(json!({ "error_response_sent": false }))
    );
    let mut out = Vec::new();
    s.handle_timeout(Instant::now() + Duration::from_millis(300), &mut out);
    assert_eq!(kinds(&out), ["close Graceful refused"], "no error-response");
}

#[test]
fn an_unknown_command_is_status_128_or_a_silent_close() {
    for (setting, want) in [
        (
            UnknownCommand::ProtocolError,
            vec![
                "Rejected".to_string(),
                format!(
                    "write {:?}",
                    &ErrorResponse::new(Status::ProtocolError, [0; 4]).encode()[..]
                ),
                "close Graceful refused".into(),
            ],
        ),
        (
            UnknownCommand::SilentClose,
            vec!["Rejected".to_string(), "close Graceful refused".into()],
        ),
    ] {
        let e = engine(Settings::default(), vec![]);
        let mut c = cfg(0);
        c.unknown_command = setting;
        let mut s = session(&e, c);
        let out = feed(&mut s, &[9, 0, 0, 0, 0, 0, 0, 0], Instant::now());
        assert_eq!(kinds(&out), want, "{setting:?}");
        assert_eq!(journal(&out)[0].status, Some(128));
    }
}

#[test]
fn error_rule_answers_its_status_and_closes() {
    let e = engine(
        Settings::default(),
        rule(LegacyAction::Error {
            status: Status::ProcessingError,
            close: true,
        }),
    );
    let mut s = session(&e, cfg(0));
    let out = feed(&mut s, &[ok(1), ok(2), ok(3)].concat(), Instant::now());
    let resp = ErrorResponse::new(Status::ProcessingError, [0, 0, 0, 2]).encode();
    assert_eq!(
        kinds(&out),
        [
            "Accepted".to_string(),
            "Rejected".into(),
            "Discarded".into(),
            format!("write {:?}", &resp[..]),
            "close Graceful refused".into()
        ]
    );
    assert_eq!(
        journal(&out)[1].detail.as_ref().unwrap()["rule"]["action"],
        "error"
    );
}

#[test]
fn error_rule_without_close_answers_and_goes_on() {
    let e = engine(
        Settings::default(),
        rule(LegacyAction::Error {
            status: Status::ProcessingError,
            close: false,
        }),
    );
    let mut s = session(&e, cfg(0));
    let out = feed(&mut s, &[ok(1), ok(2), ok(3)].concat(), Instant::now());
    let resp = ErrorResponse::new(Status::ProcessingError, [0, 0, 0, 2]).encode();
    assert_eq!(
        kinds(&out),
        [
            "Accepted".to_string(),
            "Rejected".into(),
            format!("write {:?}", &resp[..]),
            "Accepted".into()
        ]
    );
}

#[test]
fn status_10_names_the_last_accepted_notification() {
    // PROTOCOL.md 1.6: shutdown's identifier is the last one processed, not the refused one.
    let e = engine(
        Settings::default(),
        rule(LegacyAction::Error {
            status: Status::Shutdown,
            close: true,
        }),
    );
    let mut s = session(&e, cfg(0));
    let out = feed(&mut s, &[ok(1), ok(2)].concat(), Instant::now());
    let resp = ErrorResponse::new(Status::Shutdown, [0, 0, 0, 1]).encode();
    assert!(out.contains(&Effect::Write(Bytes::copy_from_slice(&resp))));
}

#[test]
fn emulator_shutdown_sends_status_10_with_the_last_accepted() {
    let e = engine(Settings::default(), vec![]);
    let mut s = session(&e, cfg(0));
    feed(&mut s, &[ok(1), ok(5)].concat(), Instant::now());
    let mut out = Vec::new();
    s.handle_shutdown(Instant::now(), &mut out);
    let resp = ErrorResponse::new(Status::Shutdown, [0, 0, 0, 5]).encode();
    assert_eq!(
        out,
        [
            Effect::Write(Bytes::copy_from_slice(&resp)),
            Effect::Close {
                how: CloseHow::Graceful,
                end: ConnectionEnd::Shutdown
            }
        ]
    );
}

#[test]
fn emulator_shutdown_answers_after_the_answer_delay_discarding_what_arrives_meanwhile() {
    // PROTOCOL.md 1.7: status 10 arrives a round trip later, like every answer that ends a
    // connection; the frames written meanwhile are read and journaled as discarded.
    let e = engine(Settings::default(), vec![]);
    let mut s = session(&e, cfg(200));
    let t0 = Instant::now();
    feed(&mut s, &ok(7), t0);
    let mut out = Vec::new();
    s.handle_shutdown(t0, &mut out);
    assert_eq!(
        kinds(&out),
        ["wake"],
        "nothing is answered before the delay"
    );
    assert!(s.wants_read(), "the session reads on during the delay");
    let out = feed(&mut s, &ok(8), t0 + Duration::from_millis(50));
    assert_eq!(kinds(&out), ["Discarded"]);
    assert_eq!(
        reasons(&out),
        ["after status 10 (the emulator is stopping)"]
    );
    let mut out = Vec::new();
    s.handle_timeout(t0 + Duration::from_millis(200), &mut out);
    let resp = ErrorResponse::new(Status::Shutdown, [0, 0, 0, 7]).encode();
    assert_eq!(
        kinds(&out),
        [
            format!("write {:?}", &resp[..]),
            "close Graceful shutdown".into()
        ]
    );
}

#[test]
fn drop_rule_cuts_without_answer_and_discards_the_rest() {
    for (reset, how) in [(false, CloseHow::Fin), (true, CloseHow::Reset)] {
        let e = engine(Settings::default(), rule(LegacyAction::Drop { reset }));
        let mut s = session(&e, cfg(0));
        let out = feed(&mut s, &[ok(1), ok(2), ok(3)].concat(), Instant::now());
        assert_eq!(
            kinds(&out),
            [
                "Accepted".to_string(),
                "Dropped".into(),
                "Discarded".into(),
                format!("close {how:?} dropped")
            ]
        );
        assert_eq!(
            journal(&out)[1].detail.as_ref().unwrap()["reset"],
            json!(reset)
        );
    }
}

#[test]
fn stall_rule_accepts_then_stops_reading_until_its_end() {
    let e = engine(
        Settings::default(),
        rule(LegacyAction::Stall { for_ms: Some(500) }),
    );
    let mut s = session(&e, cfg(0));
    let t0 = Instant::now();
    let out = feed(&mut s, &[ok(1), ok(2), ok(3)].concat(), t0);
    assert_eq!(kinds(&out), ["Accepted", "Accepted", "stall true"]);
    assert_eq!(out[2], Effect::Stall(Some(t0 + Duration::from_millis(500))));
    assert!(!s.wants_read());
    let mut out = Vec::new();
    s.handle_timeout(t0 + Duration::from_millis(500), &mut out);
    assert_eq!(
        kinds(&out),
        ["Accepted"],
        "the buffered frame is decided after the stall"
    );
    assert!(s.wants_read());
}

#[test]
fn stall_forever_ends_with_shutdown() {
    let e = engine(
        Settings::default(),
        rule(LegacyAction::Stall { for_ms: None }),
    );
    let mut s = session(&e, cfg(0));
    let out = feed(&mut s, &[ok(1), ok(2), ok(3)].concat(), Instant::now());
    assert_eq!(out.last(), Some(&Effect::Stall(None)));
    let mut out = Vec::new();
    s.handle_shutdown(Instant::now(), &mut out);
    let resp = ErrorResponse::new(Status::Shutdown, [0, 0, 0, 3]).encode();
    assert_eq!(
        kinds(&out),
        [
            "Accepted".to_string(),
            format!("write {:?}", &resp[..]),
            "close Graceful shutdown".into()
        ]
    );
}

#[test]
fn throttle_rule_accepts_and_asks_for_a_rate() {
    let e = engine(
        Settings::default(),
        rule(LegacyAction::Throttle { bytes_per_sec: 64 }),
    );
    let mut s = session(&e, cfg(0));
    let out = feed(&mut s, &[ok(1), ok(2), ok(3)].concat(), Instant::now());
    assert_eq!(
        kinds(&out),
        ["Accepted", "Accepted", "throttle 64", "Accepted"]
    );
}

#[test]
fn a_rule_delay_before_a_drop_reads_and_journals_meanwhile() {
    // The verdict is journaled at once; the rule's delay adds to the answer delay, and what
    // arrives during both is read and discarded, never left unjournaled in TCP buffers.
    let e = engine(
        Settings::default(),
        vec![Rule::new(
            Matcher {
                nth: Some(1),
                ..Matcher::default()
            },
            LegacyAction::Drop { reset: false }.into(),
        )
        .delay_ms(250)],
    );
    let mut s = session(&e, cfg(50));
    let t0 = Instant::now();
    let out = feed(&mut s, &[ok(1), ok(2)].concat(), t0);
    assert_eq!(kinds(&out), ["Dropped", "Discarded", "wake"]);
    assert_eq!(out[2], Effect::WakeAt(t0 + Duration::from_millis(300)));
    assert!(s.wants_read());
    let out = feed(&mut s, &ok(3), t0 + Duration::from_millis(100));
    assert_eq!(reasons(&out), ["after drop at #1"]);
    let mut out = Vec::new();
    s.handle_timeout(t0 + Duration::from_millis(250), &mut out);
    assert!(out.is_empty());
    s.handle_timeout(t0 + Duration::from_millis(300), &mut out);
    assert_eq!(kinds(&out), ["close Fin dropped"]);
}

#[test]
fn a_rule_delay_before_an_action_that_goes_on_reads_and_decides_after_it() {
    let e = engine(
        Settings::default(),
        vec![Rule::new(
            Matcher {
                nth: Some(1),
                ..Matcher::default()
            },
            LegacyAction::Error {
                status: Status::ProcessingError,
                close: false,
            }
            .into(),
        )
        .delay_ms(100)],
    );
    let mut s = session(&e, cfg(0));
    let t0 = Instant::now();
    let out = feed(&mut s, &ok(1), t0);
    assert_eq!(out, [Effect::WakeAt(t0 + Duration::from_millis(100))]);
    assert!(s.wants_read(), "reading on during the rule's delay");
    let out = feed(&mut s, &ok(2), t0 + Duration::from_millis(10));
    assert!(out.is_empty(), "decided after the delay, in order");
    let mut out = Vec::new();
    s.handle_timeout(t0 + Duration::from_millis(100), &mut out);
    let resp = ErrorResponse::new(Status::ProcessingError, [0, 0, 0, 1]).encode();
    assert_eq!(
        kinds(&out),
        [
            "Rejected".to_string(),
            format!("write {:?}", &resp[..]),
            "Accepted".into()
        ]
    );
    // EOF during the delay stops reading until it is over.
    let e2 = engine(
        Settings::default(),
        vec![Rule::new(Matcher::default(), Action::Accept).delay_ms(10)],
    );
    let mut s = session(&e2, cfg(0));
    feed(&mut s, &ok(1), t0);
    let mut out = Vec::new();
    s.handle_eof(t0, &mut out);
    assert_eq!(out, [Effect::Stall(Some(t0 + Duration::from_millis(10)))]);
}

#[test]
fn accept_rule_with_a_delay_accepts_after_it() {
    let e = engine(
        Settings::default(),
        vec![Rule::new(Matcher::default(), Action::Accept).delay_ms(10)],
    );
    let mut s = session(&e, cfg(0));
    let t0 = Instant::now();
    let out = feed(&mut s, &ok(1), t0);
    assert_eq!(kinds(&out), ["wake"]);
    let mut out = Vec::new();
    s.handle_timeout(t0 + Duration::from_millis(10), &mut out);
    assert_eq!(kinds(&out), ["Accepted"]);
}

#[test]
fn connect_rules_drop_stall_and_throttle_before_the_first_byte() {
    let on_connect = |action: LegacyAction| {
        vec![Rule::new(
            Matcher {
                on: Some(crate::engine::rules::Trigger::Connect),
                ..Matcher::default()
            },
            action.into(),
        )]
    };
    let t0 = Instant::now();
    let e = engine(
        Settings::default(),
        on_connect(LegacyAction::Drop { reset: true }),
    );
    let mut s = session(&e, cfg(0));
    let mut out = Vec::new();
    s.handle_connect(t0, &mut out);
    assert_eq!(kinds(&out), ["Dropped", "close Reset dropped"]);
    // The same rule object as every other fired rule, on either protocol.
    assert_eq!(
        journal(&out)[0].detail,
        Some(json!({ "rule": { "rule": 0, "name": null, "action": "drop", "on": "connect" } }))
    );

    let e = engine(
        Settings::default(),
        on_connect(LegacyAction::Stall { for_ms: Some(40) }),
    );
    let mut s = session(&e, cfg(0));
    let mut out = Vec::new();
    s.handle_connect(t0, &mut out);
    assert_eq!(out, [Effect::Stall(Some(t0 + Duration::from_millis(40)))]);
    assert!(!s.wants_read());
    out.clear();
    s.handle_timeout(t0 + Duration::from_millis(40), &mut out);
    assert!(out.is_empty() && s.wants_read());

    let e = engine(
        Settings::default(),
        on_connect(LegacyAction::Throttle { bytes_per_sec: 0 }),
    );
    let mut s = session(&e, cfg(0));
    let mut out = Vec::new();
    s.handle_connect(t0, &mut out);
    assert_eq!(out, [Effect::Throttle(1)]);
}

#[test]
fn a_connect_rule_reads_during_its_delay_and_journals_what_it_cut() {
    let e = engine(
        Settings::default(),
        vec![Rule {
            delay_ms: Some(100),
            ..Rule::new(
                Matcher {
                    on: Some(crate::engine::rules::Trigger::Connect),
                    ..Matcher::default()
                },
                LegacyAction::Drop { reset: false }.into(),
            )
        }],
    );
    let mut s = session(&e, cfg(0));
    let t0 = Instant::now();
    let mut out = Vec::new();
    s.handle_connect(t0, &mut out);
    assert_eq!(kinds(&out), ["wake"]);
    assert!(s.wants_read(), "the delay reads on");
    let out = feed(
        &mut s,
        &[ok(1), ok(2)].concat(),
        t0 + Duration::from_millis(10),
    );
    assert!(out.is_empty(), "nothing is decided during the delay");
    let mut out = Vec::new();
    s.handle_timeout(t0 + Duration::from_millis(100), &mut out);
    assert_eq!(
        kinds(&out),
        ["Dropped", "Discarded", "Discarded", "close Fin dropped"]
    );
    assert_eq!(
        reasons(&out),
        ["after drop on connect", "after drop on connect"]
    );
}

#[test]
fn eof_mid_frame_read_errors_and_idle_end_the_session() {
    let e = engine(Settings::default(), vec![]);
    let mut s = session(&e, cfg(0));
    feed(&mut s, &ok(1)[..5], Instant::now());
    let mut out = Vec::new();
    s.handle_eof(Instant::now(), &mut out);
    assert_eq!(
        out,
        [Effect::Close {
            how: CloseHow::Fin,
            end: ConnectionEnd::PeerVanishedMidFrame(5)
        }]
    );
    let mut s = session(&e, cfg(0));
    let mut out = Vec::new();
    s.handle_read_error("boom".into(), Instant::now(), &mut out);
    assert_eq!(kinds(&out), ["close Fin io: boom"]);
    let mut s = session(&e, cfg(0));
    let mut out = Vec::new();
    s.handle_idle(Instant::now(), &mut out);
    assert_eq!(kinds(&out), ["close Graceful idle-timeout"]);
}

/// A run long enough to be sliced out of the read buffer (no copy), with a rule stopping it in the
/// middle: the frames after the stop are still decided (or discarded) with their own bytes.
#[test]
fn a_long_run_stopped_in_the_middle_keeps_the_frames_after_it() {
    let frames: Vec<Vec<u8>> = (0..200u8)
        .map(|i| {
            enhanced(
                i,
                &TOKEN,
                format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(150)).as_bytes(),
            )
        })
        .collect();
    let bytes = frames.concat();
    assert!(
        bytes.len() >= 2 * ZERO_COPY_RUN,
        "the run takes the no-copy path"
    );
    let nth = |action: LegacyAction| {
        vec![Rule::new(
            Matcher {
                nth: Some(100),
                ..Matcher::default()
            },
            action.into(),
        )]
    };
    let payload_n = |e: &NewEvent| {
        let n = e.notification.as_ref().unwrap();
        assert_eq!(n.token.as_bytes(), &TOKEN[..]);
        serde_json::from_slice::<serde_json::Value>(&n.payload).unwrap()["n"].clone()
    };
    // An error that goes on: every frame is decided, in order, each with its own payload.
    let e = engine(
        Settings::default(),
        nth(LegacyAction::Error {
            status: Status::ProcessingError,
            close: false,
        }),
    );
    let mut s = session(&e, cfg(0));
    let out = feed(&mut s, &bytes, Instant::now());
    let events = journal(&out);
    assert_eq!(events.len(), 200);
    for (i, ev) in events.iter().enumerate() {
        let kind = if i == 99 {
            EventKind::Rejected
        } else {
            EventKind::Accepted
        };
        assert_eq!(ev.kind, kind, "frame {i}");
        assert_eq!(payload_n(ev), json!(i), "frame {i}");
    }
    // A drop: the frames after it are journaled as discarded, each with its own bytes.
    let e = engine(
        Settings::default(),
        nth(LegacyAction::Drop { reset: false }),
    );
    let mut s = session(&e, cfg(0));
    let out = feed(&mut s, &bytes, Instant::now());
    let events = journal(&out);
    assert_eq!(events.len(), 200);
    for (i, ev) in events.iter().enumerate() {
        let kind = match i {
            0..=98 => EventKind::Accepted,
            99 => EventKind::Dropped,
            _ => EventKind::Discarded,
        };
        assert_eq!(ev.kind, kind, "frame {i}");
        assert_eq!(payload_n(ev), json!(i), "frame {i}");
    }
}
