//! Provider authentication on the HTTP/2 API (PROTOCOL.md 2.8, 2.9, Part 3): JWTs in both signature
//! forms, expiry and refresh on the emulator's injected clock, the 20-minute update rule, future
//! `iat`, teams and key scoping, and certificates (environment, topics, invalid certificates).

mod common;

use apnsim::certs::ProviderSpec;
use apnsim::http2::auth::{generate_p8, sign_jwt, ProviderKey, SignatureForm};
use apnsim::http2::frame::{ErrorCode, Frame};
use apnsim::journal::{EventKind, Filter};
use apnsim::model::Environment;
use apnsim::settings::Settings;
use apnsim::{Emulator, ProviderKind};
use common::h2client::*;

const TOPIC: &str = "com.example.app";

fn push() -> Req {
    Req::push().topic(TOPIC)
}

fn reason(r: &Reply) -> String {
    r.json()["reason"].as_str().unwrap_or_default().to_string()
}

async fn token_conn(emu: &Emulator) -> H2 {
    let ca = emu.ca_pem();
    h2_connect(emu.http2_addr(), &ca, None).await
}

/// Registers a fresh key `kid` of `team`, shaped by `f`; returns its private PEM.
fn add_key(
    emu: &Emulator,
    kid: &str,
    team: &str,
    f: impl FnOnce(ProviderKey) -> ProviderKey,
) -> String {
    let pem = generate_p8().unwrap();
    emu.register_key(f(ProviderKey::from_pem(kid, team, &pem).unwrap()));
    pem
}

#[tokio::test]
async fn both_signature_forms_are_accepted_and_observed() {
    let emu = Emulator::builder().start().await.unwrap();
    for (form, name) in [(SignatureForm::Raw, "raw"), (SignatureForm::Der, "der")] {
        let jwt = jwt_now(&emu, form);
        let sig = jwt.rsplit('.').next().unwrap();
        let sig_len = base64_len(sig);
        match form {
            SignatureForm::Raw => assert_eq!(sig_len, 64, "JOSE r||s"),
            SignatureForm::Der => assert!((68..=72).contains(&sig_len), "DER {sig_len}"),
        }
        let mut c = token_conn(&emu).await;
        let r = c.request(push().jwt(&jwt)).await;
        assert_eq!(r.status, 200, "{name}: {}", r.body_text());
        let conns = emu.http2_connections();
        let jwt_obs = serde_json::to_value(&conns.last().unwrap().observations.jwt).unwrap();
        let forms = jwt_obs["signature_forms"]
            .as_array()
            .expect("signature_forms");
        assert_eq!(forms.len(), 1, "{jwt_obs}");
        assert_eq!(forms[0].as_str().unwrap().to_lowercase(), name, "{jwt_obs}");
        drop(c);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    emu.shutdown().await;
}

fn base64_len(s: &str) -> usize {
    // Unpadded base64url: 4 characters carry 3 bytes.
    s.len() * 3 / 4
}

#[tokio::test]
async fn jwt_expires_after_an_hour_of_clock_time_and_a_fresh_one_refreshes() {
    let emu = Emulator::builder().start().await.unwrap();
    let mut c = token_conn(&emu).await;
    let first = jwt_now(&emu, SignatureForm::Raw);
    assert_eq!(c.request(push().jwt(&first)).await.status, 200);
    // 59 minutes later the same token still works.
    emu.clock().advance_secs(59 * 60);
    assert_eq!(c.request(push().jwt(&first)).await.status, 200);
    // Past the hour: 403 ExpiredProviderToken (PROTOCOL.md 2.8).
    emu.clock().advance_secs(2 * 60);
    let r = c.request(push().jwt(&first)).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "ExpiredProviderToken")
    );
    // A token signed with the new iat works on the same connection: the refresh.
    let fresh = jwt_now(&emu, SignatureForm::Der);
    let r = c.request(push().jwt(&fresh)).await;
    assert_eq!(r.status, 200, "{}", r.body_text());
    // And on a new connection the old one is still expired while the fresh one is fine.
    let mut c2 = token_conn(&emu).await;
    assert_eq!(
        reason(&c2.request(push().jwt(&first)).await),
        "ExpiredProviderToken"
    );
    assert_eq!(c2.request(push().jwt(&fresh)).await.status, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_new_token_within_20_minutes_is_too_many_updates() {
    let emu = Emulator::builder().start().await.unwrap();
    let now = emu.clock().now_secs();
    let mut c = token_conn(&emu).await;
    let a = jwt_at(&emu, now, SignatureForm::Raw);
    let b = jwt_at(&emu, now - 5, SignatureForm::Raw);
    assert_eq!(c.request(push().jwt(&a)).await.status, 200);
    let r = c.request(push().jwt(&b)).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (429, "TooManyProviderTokenUpdates")
    );
    // The current token keeps working meanwhile.
    assert_eq!(c.request(push().jwt(&a)).await.status, 200);
    emu.clock().advance_secs(19 * 60);
    assert_eq!(
        reason(&c.request(push().jwt(&b)).await),
        "TooManyProviderTokenUpdates"
    );
    emu.clock().advance_secs(60);
    assert_eq!(
        c.request(push().jwt(&b)).await.status,
        200,
        "20 minutes later"
    );
    // `b` is now the team's current token: a fresh connection may use it at once.
    let mut other = token_conn(&emu).await;
    assert_eq!(other.request(push().jwt(&b)).await.status, 200);
    emu.shutdown().await;
}

/// Two connections of one team: a token signed anew on the second within 20 minutes of the first's
/// is TooManyProviderTokenUpdates by default, since Apple counts per team (PROTOCOL.md 2.8);
/// `token_update_scope = "connection"` gives each connection its own history.
#[tokio::test]
async fn token_updates_are_counted_per_team_across_connections() {
    use apnsim::http2::team_tokens::TokenUpdateScope;
    for scope in [TokenUpdateScope::Team, TokenUpdateScope::Connection] {
        let emu = Emulator::builder()
            .settings(Settings {
                token_update_scope: scope,
                ..Settings::default()
            })
            .start()
            .await
            .unwrap();
        let now = emu.clock().now_secs();
        let a = jwt_at(&emu, now, SignatureForm::Raw);
        let b = jwt_at(&emu, now - 5, SignatureForm::Raw);
        let mut first = token_conn(&emu).await;
        assert_eq!(first.request(push().jwt(&a)).await.status, 200);
        let mut second = token_conn(&emu).await;
        // The same token on a second connection is no update, in either scope.
        assert_eq!(second.request(push().jwt(&a)).await.status, 200);
        let mut third = token_conn(&emu).await;
        let r = third.request(push().jwt(&b)).await;
        match scope {
            TokenUpdateScope::Team => {
                assert_eq!(
                    (r.status, reason(&r).as_str()),
                    (429, "TooManyProviderTokenUpdates")
                );
                emu.clock().advance_secs(20 * 60);
                assert_eq!(third.request(push().jwt(&b)).await.status, 200);
                // Now `a` on the first connection is an update too soon after `b`.
                emu.clock().advance_secs(60);
                assert_eq!(
                    first.request(push().jwt(&a)).await.status,
                    200,
                    "the first connection's own token is unchanged there: no update"
                );
            }
            TokenUpdateScope::Connection => {
                assert_eq!(r.status, 200, "{}", r.body_text());
            }
        }
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn future_iat_is_invalid_beyond_the_tolerance_setting() {
    let emu = Emulator::builder().start().await.unwrap();
    let now = emu.clock().now_secs();
    let r = token_conn(&emu)
        .await
        .request(push().jwt(&jwt_at(&emu, now + 120, SignatureForm::Raw)))
        .await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "InvalidProviderToken")
    );
    let r = token_conn(&emu)
        .await
        .request(push().jwt(&jwt_at(&emu, now + 30, SignatureForm::Raw)))
        .await;
    assert_eq!(r.status, 200, "within the default 60 s: {}", r.body_text());
    emu.shutdown().await;

    let emu = Emulator::builder()
        .settings(Settings {
            jwt_future_tolerance_secs: 300,
            ..Settings::default()
        })
        .start()
        .await
        .unwrap();
    let now = emu.clock().now_secs();
    let r = token_conn(&emu)
        .await
        .request(push().jwt(&jwt_at(&emu, now + 120, SignatureForm::Raw)))
        .await;
    assert_eq!(r.status, 200, "{}", r.body_text());
    emu.shutdown().await;
}

#[tokio::test]
async fn missing_and_invalid_provider_tokens() {
    let emu = Emulator::builder().start().await.unwrap();
    let key = emu.token_key().clone();
    let now = emu.clock().now_secs();
    let good = jwt_now(&emu, SignatureForm::Raw);
    let other_pem = generate_p8().unwrap();
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "MissingProviderToken"),
        (Some(String::new()), "MissingProviderToken"),
        (Some("bearer".into()), "MissingProviderToken"),
        (Some(format!("Basic {good}")), "MissingProviderToken"),
        (Some("bearer not.a.jwt".into()), "InvalidProviderToken"),
        // Signed by a key the emulator does not know under that kid.
        (
            Some(bearer(
                &sign_jwt(
                    &other_pem,
                    &key.key_id,
                    &key.team_id,
                    now,
                    SignatureForm::Raw,
                )
                .unwrap(),
            )),
            "InvalidProviderToken",
        ),
        // Unknown kid.
        (
            Some(bearer(
                &sign_jwt(
                    &other_pem,
                    "NOSUCHKEY1",
                    &key.team_id,
                    now,
                    SignatureForm::Raw,
                )
                .unwrap(),
            )),
            "InvalidProviderToken",
        ),
        // iss is not the key's team.
        (
            Some(bearer(
                &sign_jwt(
                    &key.private_pem,
                    &key.key_id,
                    "OTHERTEAM1",
                    now,
                    SignatureForm::Raw,
                )
                .unwrap(),
            )),
            "InvalidProviderToken",
        ),
    ];
    for (auth, want) in cases {
        let mut r = push();
        if let Some(a) = &auth {
            r = r.header("authorization", a);
        }
        let reply = token_conn(&emu).await.request(r).await;
        assert_eq!(
            (reply.status, reason(&reply).as_str()),
            (403, want),
            "{auth:?}"
        );
    }
    // PROTOCOL.md Part 3: the scheme is case-insensitive.
    let r = token_conn(&emu)
        .await
        .request(push().header("authorization", &format!("Bearer {good}")))
        .await;
    assert_eq!(r.status, 200, "{}", r.body_text());
    emu.shutdown().await;
}

#[tokio::test]
async fn one_team_per_connection() {
    let emu = Emulator::builder().start().await.unwrap();
    let now = emu.clock().now_secs();
    let pem = add_key(&emu, "TEAMBKEY01", "TEAMBBBBBB", |k| k);
    let team_b = sign_jwt(&pem, "TEAMBKEY01", "TEAMBBBBBB", now, SignatureForm::Raw).unwrap();
    let mut c = token_conn(&emu).await;
    assert_eq!(
        c.request(push().jwt(&jwt_now(&emu, SignatureForm::Raw)))
            .await
            .status,
        200
    );
    let r = c.request(push().jwt(&team_b)).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "InvalidProviderToken")
    );
    // Team B alone on its own connection is fine.
    assert_eq!(
        token_conn(&emu)
            .await
            .request(push().jwt(&team_b))
            .await
            .status,
        200
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn key_scoping_environment_and_related_keys() {
    let emu = Emulator::builder().start().await.unwrap();
    let team = emu.token_key().team_id.clone();
    let first_kid = emu.token_key().key_id.clone();
    let ca = emu.ca_pem();
    let now = emu.clock().now_secs();

    // A sandbox-scoped key: BadEnvironmentKeyIdInToken on production, fine on sandbox.
    let sb = add_key(&emu, "SANDBOXKEY", &team, |k| {
        k.scoped_to(Environment::Sandbox)
    });
    let sb_jwt = sign_jwt(&sb, "SANDBOXKEY", &team, now, SignatureForm::Raw).unwrap();
    let r = token_conn(&emu).await.request(push().jwt(&sb_jwt)).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "BadEnvironmentKeyIdInToken")
    );
    let mut sandbox = h2_connect(emu.addr("sandbox_http2").unwrap(), &ca, None).await;
    assert_eq!(sandbox.request(push().jwt(&sb_jwt)).await.status, 200);

    // A related key may follow the first key on one connection (after the 20-minute rule);
    // an unrelated one may not, whenever it comes.
    let rel = add_key(&emu, "RELATEDKEY", &team, |k| {
        k.related_to(first_kid.clone())
    });
    let unrel = add_key(&emu, "UNRELATED1", &team, |k| k);
    let mut c = token_conn(&emu).await;
    assert_eq!(
        c.request(push().jwt(&jwt_now(&emu, SignatureForm::Raw)))
            .await
            .status,
        200
    );
    let r = c
        .request(
            push().jwt(&sign_jwt(&unrel, "UNRELATED1", &team, now, SignatureForm::Raw).unwrap()),
        )
        .await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "UnrelatedKeyIdInToken")
    );
    emu.clock().advance_secs(21 * 60);
    let later = emu.clock().now_secs();
    let r = c
        .request(
            push().jwt(&sign_jwt(&rel, "RELATEDKEY", &team, later, SignatureForm::Raw).unwrap()),
        )
        .await;
    assert_eq!(r.status, 200, "related key: {}", r.body_text());
    let r = c
        .request(
            push().jwt(&sign_jwt(&unrel, "UNRELATED1", &team, later, SignatureForm::Raw).unwrap()),
        )
        .await;
    assert_eq!(reason(&r), "UnrelatedKeyIdInToken");
    emu.shutdown().await;
}

#[tokio::test]
async fn certificate_connections_ignore_authorization_and_check_topics() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let mut c = h2_connect(
        emu.http2_addr(),
        &ca,
        Some(emu.identity(ProviderKind::Production)),
    )
    .await;
    // PROTOCOL.md 2.9: any authorization header is ignored on a certificate connection.
    let r = c
        .request(push().header("authorization", "bearer garbage"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body_text());
    let voip = Req::push()
        .topic("com.example.app.voip")
        .header("apns-push-type", "voip");
    assert_eq!(c.request(voip).await.status, 200);
    let r = c
        .request(
            Req::push()
                .topic("com.example.app.location-query")
                .header("apns-push-type", "location"),
        )
        .await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (400, "TopicDisallowed"),
        "token-auth only"
    );
    let r = c.request(Req::push().topic("com.other.app")).await;
    assert_eq!(reason(&r), "BadTopic");

    // A single-topic certificate (no .3.6 list): an omitted topic defaults to its subject.
    let single = emu
        .authority()
        .issue_provider(&ProviderSpec {
            topics: Vec::new(),
            ..ProviderSpec::new(TOPIC, &[Environment::Production])
        })
        .unwrap();
    let mut s = h2_connect(emu.http2_addr(), &ca, Some(&single)).await;
    let r = s.request(Req::push()).await;
    assert_eq!(r.status, 200, "{}", r.body_text());
    let accepted = emu.journal().query(&Filter::kind(EventKind::Accepted));
    let n = accepted.last().unwrap().notification.as_ref().unwrap();
    assert_eq!(n.topic.as_deref(), Some(TOPIC));
    emu.shutdown().await;
}

#[tokio::test]
async fn wrong_environment_certificate_gets_403_then_goaway_then_close() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let cases = [
        (ProviderKind::Sandbox, emu.http2_addr()),
        (ProviderKind::Production, emu.addr("sandbox_http2").unwrap()),
    ];
    for (kind, addr) in cases {
        let mut raw = Raw::connect(addr, &h2_opts(&ca, Some(emu.identity(kind)))).await;
        let s = raw.push(&[("apns-topic", TOPIC, INC)], PAYLOAD).await;
        let r = raw.response(s).await;
        assert_eq!(r.status(), 403, "{kind:?}");
        assert_eq!(r.body, br#"{"reason":"BadCertificateEnvironment"}"#);
        let rest = raw.read_to_close().await;
        let goaway = raw
            .goaways
            .first()
            .unwrap_or_else(|| panic!("GOAWAY after 403: {rest:?}"));
        match goaway {
            Frame::GoAway {
                debug,
                code,
                last_stream_id,
            } => {
                assert_eq!(&debug[..], br#"{"reason":"BadCertificateEnvironment"}"#);
                assert_eq!(*code, ErrorCode::NO_ERROR);
                assert_eq!(*last_stream_id, s);
            }
            _ => unreachable!(),
        }
        // The close was the server's: read_to_close returned at EOF.
    }
    emu.shutdown().await;
}

/// BadCertificate: a certificate that is expired or does not chain to apnsim's CA never reaches
/// HTTP: the TLS handshake refuses it (as rustls does for any invalid client certificate), the
/// journal records `connection-refused`, and no 403 is ever written. The reason itself is only
/// produced by `force_http2_reason` (see http2_api.rs).
#[tokio::test]
async fn invalid_certificates_are_refused_in_the_handshake() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let expired = emu
        .authority()
        .issue_provider(&ProviderSpec::expired(TOPIC, &[Environment::Production]))
        .unwrap();
    let stranger = apnsim::certs::Authority::new_in_memory()
        .unwrap()
        .issue_provider(&ProviderSpec::new(TOPIC, &[Environment::Production]))
        .unwrap();
    for (name, id) in [("expired", &expired), ("untrusted", &stranger)] {
        let opts = h2_opts(&ca, Some(id));
        // With TLS 1.3 the client learns of the refusal on its first read.
        let outcome = match common::connect(emu.http2_addr(), &opts).await {
            Err(e) => format!("handshake: {e}"),
            Ok(tls) => match tokio::time::timeout(WAIT, h2::client::handshake(tls)).await {
                Ok(Ok((send, conn))) => {
                    let task = tokio::spawn(conn);
                    let mut h2c = H2 { send, task };
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_millis(500),
                        h2c.send.clone().ready(),
                    )
                    .await;
                    match tokio::time::timeout(WAIT, &mut h2c.task).await {
                        Ok(Ok(Err(e))) => format!("connection: {e}"),
                        other => panic!("{name}: the connection survived: {other:?}"),
                    }
                }
                Ok(Err(e)) => format!("h2: {e}"),
                Err(_) => panic!("{name}: no answer"),
            },
        };
        assert!(!outcome.is_empty());
        let refused = emu
            .journal()
            .wait_for(&Filter::kind(EventKind::ConnectionRefused), 1, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{name}: not journaled as refused ({outcome}): {e:?}"));
        let error = refused[0].detail.as_ref().unwrap()["reason"].to_string();
        eprintln!("{name}: client saw {outcome}; journal: {error}");
        emu.journal().clear();
    }
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Rejected)), 0);
    emu.shutdown().await;
}
