//! The HTTP/2 APNs session without sockets or sleeps: a request and a time in, a decision out.

use super::*;
use crate::engine::registry::{Registry, TokenRecord};
use crate::engine::rules::{Matcher, Rule, RuleSet, Trigger};
use crate::http2::auth::KeyRegistry;
use crate::http2::hpack::Representation;
use crate::model::DeviceToken;
use crate::settings::Settings;
use std::time::Instant;

const TOPIC: &str = "com.example.app";
const ID: &str = "123e4567-e89b-12d3-a456-426614174000";
const NOW: Now = Now {
    secs: 1_700_000_000,
    ms: 1_700_000_000_123,
};

fn token(b: u8) -> DeviceToken {
    DeviceToken::from_bytes(vec![b; 32])
}

fn hex(b: u8) -> String {
    format!("{b:02x}").repeat(32)
}

struct World {
    engine: Engine,
    registry: Registry,
    http2: Http2State,
}

impl World {
    fn new(settings: Settings, rules: Vec<Rule>) -> Self {
        let registry = Registry::new();
        let engine = Engine::new(settings, registry.clone());
        engine.set_rules(RuleSet::new(rules, 0));
        World {
            engine,
            registry,
            http2: Http2State::new(KeyRegistry::new()),
        }
    }

    fn deps(&self) -> Deps<'_> {
        Deps {
            engine: &self.engine,
            http2: &self.http2,
        }
    }
}

fn certificate(environments: Vec<Environment>) -> ClientIdentity {
    ClientIdentity {
        topics: vec![TOPIC.into()],
        topic_kinds: Vec::new(),
        environments,
        subject: format!("UID={TOPIC}"),
        uid: Some(TOPIC.into()),
        has_topic_list: false,
    }
}

fn config() -> SessionConfig {
    SessionConfig::from_settings(&Settings::default())
}

/// A certificate connection to production (no JWT to forge), or a token connection.
fn session(client: Option<ClientIdentity>) -> Session {
    Session::new(
        7,
        Environment::Production,
        client,
        config(),
        TokenAuth::default(),
        Arc::default(),
    )
}

fn cert_session() -> Session {
    session(Some(certificate(vec![Environment::Production])))
}

fn request(stream_id: u32, fields: &[(&str, &str)], body: &[u8]) -> Request {
    Request {
        stream_id,
        headers: fields
            .iter()
            .map(|(n, v)| HeaderField {
                name: Bytes::copy_from_slice(n.as_bytes()),
                value: Bytes::copy_from_slice(v.as_bytes()),
                representation: Representation::WithoutIndexing,
                name_indexed: false,
                huffman: false,
            })
            .collect(),
        trailers: Vec::new(),
        body: Bytes::copy_from_slice(body),
        body_truncated: false,
        received_at: Instant::now(),
    }
}

/// A valid push to token `b` on stream `stream_id`, with `extra` headers replacing or adding.
fn push(stream_id: u32, b: u8, extra: &[(&str, &str)]) -> Request {
    let path = format!("/3/device/{}", hex(b));
    let mut fields: Vec<(&str, &str)> = vec![
        (":method", "POST"),
        (":path", &path),
        ("apns-topic", TOPIC),
        ("apns-id", ID),
    ];
    for (n, v) in extra {
        fields.retain(|(name, _)| name != n);
        fields.push((n, v));
    }
    request(stream_id, &fields, b"{\"aps\":{}}")
}

fn rules(action: impl Into<Action>) -> Vec<Rule> {
    vec![Rule::new(Matcher::default(), action.into()).named("r")]
}

/// (status, reason) of a responded answer.
fn responded(d: &Decision) -> (u16, Option<Reason>) {
    match &d.answer {
        Answer::Respond { status, reason, .. } => (*status, *reason),
        other => panic!("not a response: {other:?}"),
    }
}

fn then(d: &Decision) -> &[Command] {
    match &d.answer {
        Answer::Respond { then, .. } | Answer::Silent { then } => then,
        Answer::Discarded => &[],
    }
}

fn describe(cmds: &[Command]) -> Vec<String> {
    cmds.iter()
        .map(|c| match c {
            Command::GoAway {
                code,
                last_stream_id,
                debug,
            } => format!(
                "goaway {} {:?} {}",
                code.0,
                last_stream_id,
                String::from_utf8_lossy(debug)
            ),
            Command::GoAwayBeforeSettings { code, .. } => format!("goaway-first {}", code.0),
            Command::Reset { stream_id, code } => format!("rst {stream_id} {}", code.0),
            Command::Settings(s) => format!("settings {:?}", s.max_concurrent_streams),
            Command::IgnorePing(b) => format!("ignore-ping {b}"),
            Command::CloseAbruptly => "close".into(),
            Command::Ping(_) | Command::Respond { .. } => "other".into(),
        })
        .collect()
}

#[test]
fn a_valid_push_is_accepted_echoing_its_id_and_journaled_once() {
    let w = World::new(Settings::default(), vec![]);
    let s = cert_session();
    let d = s.decide(w.deps(), &push(1, 1, &[]), NOW);
    assert_eq!(responded(&d), (200, None));
    assert!(d.journal.is_empty() && d.rule.is_none() && d.delay.is_none());
    let done = s.finish(&w.engine, d, NOW.ms);
    assert_eq!(done.journal.len(), 1);
    let e = &done.journal[0];
    assert_eq!(e.kind, EventKind::Accepted);
    let n = e.notification.as_ref().unwrap();
    assert_eq!(
        (n.token.clone(), n.apns_id.as_deref()),
        (token(1), Some(ID))
    );
    let r = done.response.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.headers, vec![("apns-id".into(), ID.to_string())]);
    assert!(r.body.is_none() && done.commands.is_empty());
}

#[test]
fn a_push_without_an_id_gets_a_generated_one_in_the_configured_case() {
    let w = World::new(Settings::default(), vec![]);
    let mut c = config();
    c.uppercase_apns_id = true;
    let s = Session::new(
        1,
        Environment::Production,
        Some(certificate(vec![Environment::Production])),
        c,
        TokenAuth::default(),
        Arc::default(),
    );
    let d = s.decide(w.deps(), &push(1, 1, &[("apns-id", "")]), NOW);
    // An empty apns-id is malformed: BadMessageId, with a generated id.
    assert_eq!(responded(&d), (400, Some(Reason::BadMessageId)));
    let req = push(3, 1, &[]);
    let mut req = req;
    req.headers.retain(|f| &f.name[..] != b"apns-id");
    let d = s.decide(w.deps(), &req, NOW);
    match &d.answer {
        Answer::Respond { apns_id, .. } => {
            assert!(request::valid_apns_id(apns_id.as_bytes()), "{apns_id}");
            assert_eq!(apns_id, &apns_id.to_uppercase());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_validation_reason_is_answered_with_its_status_and_the_partial_notification() {
    // PROTOCOL.md 2.3–2.5, 2.7: one request per reason the request stage decides.
    let big = "x".repeat(5000);
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a [u8], u16, Reason);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![("apns-priority", "7")],
            b"{}",
            400,
            Reason::BadPriority,
        ),
        (
            vec![("apns-expiration", "soon")],
            b"{}",
            400,
            Reason::BadExpirationDate,
        ),
        (
            vec![("apns-collapse-id", &big[..65])],
            b"{}",
            400,
            Reason::BadCollapseId,
        ),
        (
            vec![("apns-topic", "com.other")],
            b"{}",
            400,
            Reason::BadTopic,
        ),
        (
            vec![("apns-push-type", "nope")],
            b"{}",
            400,
            Reason::InvalidPushType,
        ),
        (
            vec![("apns-push-type", "voip")],
            b"{}",
            400,
            Reason::TopicDisallowed,
        ),
        (
            vec![(":path", "/3/device/abc")],
            b"{}",
            400,
            Reason::BadDeviceToken,
        ),
        (
            vec![(":path", "/3/device/")],
            b"{}",
            400,
            Reason::MissingDeviceToken,
        ),
        (vec![(":path", "/2/device/x")], b"{}", 404, Reason::BadPath),
        (
            vec![(":method", "GET")],
            b"{}",
            405,
            Reason::MethodNotAllowed,
        ),
        (vec![], b"", 400, Reason::PayloadEmpty),
        (vec![], big.as_bytes(), 413, Reason::PayloadTooLarge),
    ];
    let w = World::new(Settings::default(), vec![]);
    for (extra, body, status, reason) in cases {
        let s = cert_session();
        let mut req = push(1, 1, &extra);
        req.body = Bytes::copy_from_slice(body);
        let d = s.decide(w.deps(), &req, NOW);
        assert_eq!(responded(&d), (status, Some(reason)), "{extra:?}");
        let done = s.finish(&w.engine, d, NOW.ms);
        let e = &done.journal[0];
        assert_eq!(e.kind, EventKind::Rejected);
        assert_eq!(e.reason.as_deref(), Some(reason.as_str()));
        assert_eq!(e.status, Some(status));
        // The token is readable from a well-formed path: the refusal is filterable by it.
        if !extra.iter().any(|(n, _)| *n == ":path") {
            assert_eq!(
                e.notification.as_ref().unwrap().token,
                token(1),
                "{extra:?}"
            );
        }
        let r = done.response.unwrap();
        assert_eq!(r.status, status);
        assert_eq!(
            r.body.unwrap(),
            Bytes::from(reason::body(reason, None)),
            "{reason:?}"
        );
        // The request's own valid id is echoed (PROTOCOL.md 2.6).
        assert!(r.headers.contains(&("apns-id".into(), ID.into())));
    }
}

#[test]
fn a_repeated_header_is_refused() {
    let w = World::new(Settings::default(), vec![]);
    let s = cert_session();
    let path = format!("/3/device/{}", hex(1));
    let req = request(
        1,
        &[
            (":method", "POST"),
            (":path", &path),
            ("apns-topic", TOPIC),
            ("apns-topic", TOPIC),
        ],
        b"{}",
    );
    assert_eq!(
        responded(&s.decide(w.deps(), &req, NOW)),
        (400, Some(Reason::DuplicateHeaders))
    );
}

#[test]
fn token_connections_without_a_jwt_get_403() {
    // PROTOCOL.md 2.8: no authorization header on a token connection.
    let w = World::new(Settings::default(), vec![]);
    let s = session(None);
    let d = s.decide(w.deps(), &push(1, 1, &[]), NOW);
    assert_eq!(responded(&d), (403, Some(Reason::MissingProviderToken)));
    let d = s.decide(w.deps(), &push(3, 1, &[("authorization", "bearer x")]), NOW);
    assert_eq!(responded(&d), (403, Some(Reason::InvalidProviderToken)));
}

#[test]
fn a_certificate_of_the_other_environment_gets_403_then_goaway() {
    // PROTOCOL.md 2.9.
    let w = World::new(Settings::default(), vec![]);
    let s = session(Some(certificate(vec![Environment::Sandbox])));
    let d = s.decide(w.deps(), &push(1, 1, &[]), NOW);
    assert_eq!(
        responded(&d),
        (403, Some(Reason::BadCertificateEnvironment))
    );
    assert_eq!(
        describe(then(&d)),
        ["goaway 0 None {\"reason\":\"BadCertificateEnvironment\"}"]
    );
    assert!(d.notification.is_some());
}

#[test]
fn the_registry_decides_400_and_410() {
    // PROTOCOL.md Part 3 and 2.6.
    let w = World::new(
        Settings {
            strict_tokens: true,
            ..Settings::default()
        },
        vec![],
    );
    w.registry.register(TokenRecord {
        topic: Some("com.other".into()),
        ..TokenRecord::new(token(2), None)
    });
    w.registry.register(TokenRecord {
        unregistered_at: Some(42_000),
        ..TokenRecord::new(token(3), None)
    });
    w.registry
        .register(TokenRecord::new(token(4), Some(Environment::Sandbox)));
    let s = cert_session();
    let d = |b: u8| s.decide(w.deps(), &push(1, b, &[]), NOW);
    assert_eq!(responded(&d(1)), (400, Some(Reason::BadDeviceToken)));
    assert_eq!(
        responded(&d(2)),
        (400, Some(Reason::DeviceTokenNotForTopic))
    );
    assert_eq!(responded(&d(4)), (400, Some(Reason::BadDeviceToken)));
    let gone = d(3);
    assert_eq!(responded(&gone), (410, Some(Reason::Unregistered)));
    let r = s.finish(&w.engine, gone, NOW.ms).response.unwrap();
    assert_eq!(
        r.body.unwrap(),
        Bytes::from(reason::body(Reason::Unregistered, Some(42_000)))
    );
}

#[test]
fn strict_payload_refuses_a_linted_payload() {
    let w = World::new(
        Settings {
            strict_payload: true,
            ..Settings::default()
        },
        vec![],
    );
    let s = cert_session();
    let mut req = push(1, 1, &[]);
    req.body = Bytes::from_static(b"{\"nope\":1}");
    assert_eq!(
        responded(&s.decide(w.deps(), &req, NOW)),
        (400, Some(Reason::BadRequestPayload))
    );
}

#[test]
fn forced_answers_cover_429_500_503_and_410_now() {
    let w = World::new(Settings::default(), vec![]);
    let s = cert_session();
    for (reason, status) in [
        (Reason::TooManyRequests, 429),
        (Reason::InternalServerError, 500),
        (Reason::ServiceUnavailable, 503),
        (Reason::Shutdown, 503),
        (Reason::Unregistered, 410),
    ] {
        *w.http2.forced.write() = Some(reason);
        let d = s.decide(w.deps(), &push(1, 1, &[]), NOW);
        assert_eq!(responded(&d), (status, Some(reason)));
        if let Answer::Respond { timestamp_ms, .. } = &d.answer {
            assert_eq!(*timestamp_ms, (status == 410).then_some(NOW.ms));
        }
        assert!(d.notification.is_some());
    }
}

#[test]
fn a_reject_rule_answers_its_reason_status_and_settings() {
    let w = World::new(
        Settings::default(),
        rules(Http2Action::Reject {
            reason: Reason::TooManyRequests,
            status: Some(503),
            timestamp_ms: None,
            max_concurrent_streams: Some(1),
        }),
    );
    let s = cert_session();
    let d = s.decide(w.deps(), &push(1, 1, &[]), NOW);
    assert_eq!(responded(&d), (503, Some(Reason::TooManyRequests)));
    assert_eq!(describe(then(&d)), ["settings Some(1)"]);
    assert_eq!(d.rule.as_ref().unwrap()["action"], "reject");
    let done = s.finish(&w.engine, d, NOW.ms);
    let detail = done.journal[0].detail.clone().unwrap();
    assert_eq!(detail["rule"]["name"], "r");
    assert_eq!(done.journal[0].status, Some(503));
    assert_eq!(done.response.unwrap().then.len(), 1);
}

#[test]
fn a_goaway_rule_announces_the_stream_before_and_cuts_later_ones() {
    let w = World::new(
        Settings::default(),
        vec![Rule::new(
            Matcher {
                nth: Some(2),
                ..Matcher::default()
            },
            Http2Action::Goaway {
                reason: Some(Reason::Shutdown),
                code: ErrorCode::NO_ERROR,
                last_stream_id: LastStreamId::Auto,
                before_settings: false,
            }
            .into(),
        )],
    );
    let s = cert_session();
    assert_eq!(
        responded(&s.decide(w.deps(), &push(1, 1, &[]), NOW)),
        (200, None)
    );
    let d = s.decide(w.deps(), &push(3, 1, &[]), NOW);
    assert!(matches!(d.answer, Answer::Silent { .. }));
    assert_eq!(
        describe(then(&d)),
        ["goaway 0 Some(1) {\"reason\":\"Shutdown\"}"]
    );
    let done = s.finish(&w.engine, d, NOW.ms);
    assert_eq!(done.journal[0].kind, EventKind::Dropped);
    assert!(done.response.is_none());
    assert_eq!(describe(&done.commands).len(), 1);
    // A stream above the announced last one is discarded, journaled at once, never answered.
    let d = s.decide(w.deps(), &push(5, 1, &[]), NOW);
    assert!(matches!(d.answer, Answer::Discarded));
    assert_eq!(d.journal.len(), 1);
    assert_eq!(d.journal[0].kind, EventKind::Discarded);
    assert_eq!(d.journal[0].notification.as_ref().unwrap().token, token(1));
    let done = s.finish(&w.engine, d, NOW.ms);
    assert!(done.journal.is_empty() && done.response.is_none());
}

#[test]
fn an_auto_goaway_after_a_higher_stream_covers_both_and_answers_this_one() {
    // RFC 9113 6.8: requests complete out of order; announce what was processed.
    let w = World::new(
        Settings::default(),
        vec![Rule::new(
            Matcher {
                nth: Some(2),
                ..Matcher::default()
            },
            Http2Action::Goaway {
                reason: None,
                code: ErrorCode::NO_ERROR,
                last_stream_id: LastStreamId::Auto,
                before_settings: false,
            }
            .into(),
        )],
    );
    let s = cert_session();
    s.decide(w.deps(), &push(5, 1, &[]), NOW);
    let d = s.decide(w.deps(), &push(3, 1, &[]), NOW);
    assert_eq!(responded(&d), (200, None));
    assert_eq!(describe(then(&d)), ["goaway 0 Some(5) "]);
    assert!(matches!(
        s.decide(w.deps(), &push(7, 1, &[]), NOW).answer,
        Answer::Discarded
    ));
}

#[test]
fn a_goaway_rule_with_an_explicit_last_stream_id() {
    let w = World::new(
        Settings::default(),
        rules(Http2Action::Goaway {
            reason: None,
            code: ErrorCode(2),
            last_stream_id: LastStreamId::Id(99),
            before_settings: false,
        }),
    );
    let s = cert_session();
    let d = s.decide(w.deps(), &push(1, 1, &[]), NOW);
    assert_eq!(describe(then(&d)), ["goaway 2 Some(99) "]);
}

#[test]
fn rst_stream_close_and_drop_are_silent() {
    let w = World::new(
        Settings::default(),
        rules(Http2Action::RstStream {
            code: ErrorCode::CANCEL,
        }),
    );
    let s = cert_session();
    let d = s.decide(w.deps(), &push(3, 1, &[]), NOW);
    assert_eq!(describe(then(&d)), ["rst 3 8"]);
    assert!(!s.wants_reset());

    let w = World::new(
        Settings::default(),
        rules(Http2Action::Close { reset: true }),
    );
    let s = cert_session();
    let d = s.decide(w.deps(), &push(3, 1, &[]), NOW);
    assert_eq!(describe(then(&d)), ["close"]);
    assert!(s.wants_reset());
    let done = s.finish(&w.engine, d, NOW.ms);
    assert_eq!(done.journal[0].kind, EventKind::Dropped);
    assert_eq!(
        done.journal[0].detail.as_ref().unwrap()["rule"]["action"],
        "close"
    );
    assert_eq!(describe(&done.commands), ["close"]);
    // Streams after the closing one are not processed.
    assert!(matches!(
        s.decide(w.deps(), &push(5, 1, &[]), NOW).answer,
        Answer::Discarded
    ));
}

#[test]
fn delay_settings_and_ignore_ping_answer_as_usual() {
    let w = World::new(Settings::default(), rules(Http2Action::Delay { ms: 250 }));
    let s = cert_session();
    let d = s.decide(w.deps(), &push(1, 1, &[]), NOW);
    assert_eq!(responded(&d), (200, None));
    assert_eq!(d.delay, Some(Duration::from_millis(250)));

    // A rule's own delay adds to a delay action's.
    let w = World::new(
        Settings::default(),
        vec![Rule::new(Matcher::default(), Http2Action::Delay { ms: 250 }.into()).delay_ms(50)],
    );
    let d = cert_session().decide(w.deps(), &push(1, 1, &[]), NOW);
    assert_eq!(d.delay, Some(Duration::from_millis(300)));

    let w = World::new(
        Settings::default(),
        rules(Http2Action::Settings(SettingsUpdate {
            max_concurrent_streams: Some(3),
            ..SettingsUpdate::default()
        })),
    );
    let d = cert_session().decide(w.deps(), &push(1, 1, &[]), NOW);
    assert_eq!(responded(&d), (200, None));
    assert_eq!(describe(then(&d)), ["settings Some(3)"]);

    let w = World::new(
        Settings::default(),
        vec![Rule::new(
            Matcher {
                on: Some(Trigger::Notification),
                ..Matcher::default()
            },
            Http2Action::IgnorePing.into(),
        )],
    );
    let d = cert_session().decide(w.deps(), &push(1, 1, &[]), NOW);
    assert_eq!(describe(then(&d)), ["ignore-ping true"]);
}

#[test]
fn a_fault_that_answers_as_usual_keeps_the_default_refusal() {
    // The default verdict, not the rules again: a registered-elsewhere token stays refused.
    let w = World::new(Settings::default(), rules(Http2Action::Delay { ms: 5 }));
    w.registry
        .register(TokenRecord::new(token(4), Some(Environment::Sandbox)));
    let d = cert_session().decide(w.deps(), &push(1, 4, &[]), NOW);
    assert_eq!(responded(&d), (400, Some(Reason::BadDeviceToken)));
    assert_eq!(d.delay, Some(Duration::from_millis(5)));
    assert_eq!(d.rule.unwrap()["action"], "delay");
}

#[test]
fn an_accept_rule_overrides_a_refusal_and_may_hold() {
    let w = World::new(
        Settings::default(),
        vec![Rule::new(Matcher::default(), Action::Accept).delay_ms(10)],
    );
    w.registry
        .register(TokenRecord::new(token(4), Some(Environment::Sandbox)));
    let d = cert_session().decide(w.deps(), &push(1, 4, &[]), NOW);
    assert_eq!(responded(&d), (200, None));
    assert_eq!(d.delay, Some(Duration::from_millis(10)));
}

#[test]
fn connect_rules_become_commands_and_observations() {
    let connect = |a: Http2Action| {
        Rule::new(
            Matcher {
                on: Some(Trigger::Connect),
                ..Matcher::default()
            },
            a.into(),
        )
    };
    let w = World::new(
        Settings::default(),
        vec![
            connect(Http2Action::Goaway {
                reason: None,
                code: ErrorCode::NO_ERROR,
                last_stream_id: LastStreamId::Auto,
                before_settings: true,
            }),
            connect(Http2Action::Goaway {
                reason: None,
                code: ErrorCode(11),
                last_stream_id: LastStreamId::Auto,
                before_settings: false,
            }),
            connect(Http2Action::Settings(SettingsUpdate {
                max_concurrent_streams: Some(2),
                ..SettingsUpdate::default()
            })),
            connect(Http2Action::IgnorePing),
            connect(Http2Action::Close { reset: false }),
        ],
    );
    let s = cert_session();
    let opened = s.open(&w.engine);
    assert_eq!(
        describe(&opened.commands),
        [
            "goaway-first 0",
            "goaway 11 Some(0) ",
            "settings Some(2)",
            "ignore-ping true",
            "close"
        ]
    );
    assert_eq!(opened.journal.len(), 5);
    assert_eq!(
        opened.journal[0].detail.as_ref().unwrap()["rule"]["on"],
        "connect"
    );
    assert!(!s.wants_reset());
}

#[test]
fn observations_are_counted_and_only_the_first_few_journaled() {
    let s = cert_session();
    for i in 0..(state::MAX_OBSERVATIONS + 5) {
        let e = s.observe_event(&Event::Ping {
            ack: false,
            data: [0; 8],
        });
        assert_eq!(e.is_some(), i < state::MAX_OBSERVATIONS);
    }
    s.observe_request(&push(1, 1, &[]));
    let o = s.observations.lock();
    assert_eq!(o.pings, state::MAX_OBSERVATIONS as u64 + 5);
    assert_eq!(o.requests, 1);
    assert_eq!(o.hpack[":path"], ["without_indexing"]);
}
