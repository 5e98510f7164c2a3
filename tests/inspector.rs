//! The inspector's server side over real sockets: the page and its assets, the payload lint on
//! journal events and device inboxes (`GET /journal?lint=warn`), `strict_payload` turning a
//! lint warning into a rejection on both protocols, the editor's scenario check, and the
//! cross-origin guard on state-changing routes. The page itself is driven in Chromium by
//! tests/browser (scripts/browser.sh).

mod common;

use apnsim::settings::Settings;
use apnsim::{Emulator, ProviderKind};
use common::frames::framed_full;
use common::h2client::{h2_connect, Req, TOKEN};
use common::{connect, read_to_close, send, ClientOpts};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn base(emu: &Emulator) -> String {
    format!("http://{}", emu.control_addr().expect("control port"))
}

async fn get(emu: &Emulator, path: &str) -> (StatusCode, Value) {
    let r = reqwest::get(format!("{}{path}", base(emu))).await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn push(emu: &Emulator, payload: &str, push_type: &str) -> u16 {
    let ca = emu.ca_pem();
    let mut h2 = h2_connect(
        emu.http2_addr(),
        &ca,
        Some(emu.identity(ProviderKind::Production)),
    )
    .await;
    h2.request(
        Req::push()
            .topic(emu.topic())
            .header("apns-push-type", push_type)
            .body(payload.as_bytes().to_vec()),
    )
    .await
    .status
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let emu = Emulator::builder()
        .control_token(Some("t".into()))
        .start()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for (path, kind) in [
        ("/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let r = http
            .get(format!("{}{path}", base(&emu)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        assert!(r.headers().contains_key("content-security-policy"));
        let text = r.text().await.unwrap();
        for remote in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            "fetch(\"http",
        ] {
            assert!(
                !text.contains(remote),
                "{path} must not load anything remote"
            );
        }
    }
    // The data routes still need the token.
    let r = http
        .get(format!("{}/journal", base(&emu)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn accepted_events_carry_their_lint_and_the_journal_filters_on_it() {
    let emu = Emulator::builder().start().await.unwrap();
    assert_eq!(
        push(&emu, r#"{"aps":{"alert":"fine"}}"#, "alert").await,
        200
    );
    assert_eq!(
        push(&emu, r#"{"aps":{"alert":"hi","badge":"3"}}"#, "alert").await,
        200,
        "APNs accepts it; only the lint says the badge is wrong"
    );
    assert_eq!(
        push(&emu, r#"{"aps":{"content-available":true}}"#, "background").await,
        200
    );
    let (status, all) = get(&emu, "/journal?kind=accepted").await;
    assert_eq!(status, StatusCode::OK);
    let events = all["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["lint"]["level"], "ok");
    assert_eq!(events[1]["lint"]["findings"][0]["rule"], "badge-type");
    assert!(events[1]["lint"]["findings"][0]["doc"]
        .as_str()
        .unwrap()
        .starts_with("https://developer.apple.com/"));
    let (_, warn) = get(&emu, "/journal?lint=warn").await;
    let seqs: Vec<&Value> = warn["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["seq"])
        .collect();
    assert_eq!(seqs, vec![&events[1]["seq"], &events[2]["seq"]]);
    let (_, ok) = get(&emu, "/journal?lint=ok").await;
    assert_eq!(ok["events"].as_array().unwrap().len(), 1);
    let (status, bad) = get(&emu, "/journal?lint=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    // The same filter waits (control API) and reads (Rust API).
    let (status, waited) = get(&emu, "/journal/wait?lint=warn&n=2&timeout_ms=2000").await;
    assert_eq!(status, StatusCode::OK, "{waited}");
    assert_eq!(waited["events"].as_array().unwrap().len(), 2);
    let (status, short) = get(&emu, "/journal/wait?lint=ok&n=2&timeout_ms=100").await;
    assert_eq!(
        status,
        StatusCode::REQUEST_TIMEOUT,
        "only one is ok: {short}"
    );
    let warned = emu.journal().query(&apnsim::journal::Filter {
        lint: Some(apnsim::lint::Level::Warn),
        ..Default::default()
    });
    assert_eq!(warned.len(), 2);
    assert!(warned
        .iter()
        .all(|e| e.lint().is_some_and(|l| !l.findings.is_empty())));
}

#[tokio::test]
async fn the_inbox_shows_what_the_lock_screen_would() {
    let emu = Emulator::builder().start().await.unwrap();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/tokens", base(&emu)))
        .json(&json!({ "token": TOKEN, "topic": emu.topic() }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let title = r#"{"aps":{"alert":{"title":"T","loc-key":"MSG","loc-args":["x"]},"badge":2}}"#;
    assert_eq!(push(&emu, title, "alert").await, 200);
    assert_eq!(push(&emu, r#"{"aps":{"alert":42}}"#, "alert").await, 200);
    let (_, view) = get(&emu, &format!("/devices/{TOKEN}/inbox")).await;
    let inbox = view["inbox"].as_array().unwrap();
    assert_eq!(inbox.len(), 2, "{view}");
    assert_eq!(inbox[0]["display"]["shown"], true);
    assert_eq!(inbox[0]["display"]["title"], "T");
    assert_eq!(inbox[0]["display"]["body"], "MSG(x)");
    assert_eq!(inbox[0]["display"]["badge"], 2);
    assert_eq!(inbox[1]["display"]["shown"], false);
    assert_eq!(inbox[1]["lint"]["findings"][0]["rule"], "alert-type");
}

#[tokio::test]
async fn strict_payload_refuses_what_the_lint_warns_about_on_both_protocols() {
    let emu = Emulator::builder()
        .settings(Settings {
            strict_payload: true,
            ..Settings::default()
        })
        .start()
        .await
        .unwrap();
    assert_eq!(
        push(&emu, r#"{"aps":{"alert":"fine"}}"#, "alert").await,
        200
    );
    assert_eq!(
        push(&emu, r#"{"aps":{"alert":"x","badge":"3"}}"#, "alert").await,
        400
    );
    let (_, rejected) = get(&emu, "/journal?kind=rejected").await;
    assert_eq!(rejected["events"][0]["reason"], "BadRequestPayload");

    // Legacy: an error-response with status 255 naming the frame, then close.
    let ca = emu.ca_pem();
    let ident = emu.identity(ProviderKind::Production);
    let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(ident)))
        .await
        .unwrap();
    send(
        &mut tls,
        &framed_full(7, 0, &[0xab; 32], br#"{"aps":{"alert":42}}"#),
    )
    .await;
    let reply = read_to_close(&mut tls).await.unwrap();
    assert_eq!(reply, vec![8, 255, 0, 0, 0, 7]);
}

#[tokio::test]
async fn the_editor_checks_a_scenario_without_loading_it() {
    let emu = Emulator::builder().start().await.unwrap();
    let http = reqwest::Client::new();
    let check = |body: &'static str| {
        http.post(format!("{}/scenario/check", base(&emu)))
            .header("content-type", "application/toml")
            .body(body)
            .send()
    };
    let r = check("[[rules]]\nwhen = { nth = 1 }\nthen = { action = \"explode\" }\n")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["line"], 3, "{body}");
    let r = check("[[rules]]\nwhen = { nth = 1 }\nthen = { action = \"drop\" }\n")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = get(&emu, "/scenario").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "checking loads nothing");
    let (_, ready) = get(&emu, "/ui/scenarios").await;
    assert!(ready["flaky-network"].is_string());
}

#[tokio::test]
async fn state_changing_routes_refuse_cross_origin_requests() {
    let emu = Emulator::builder().start().await.unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", base(&emu));
    let host = emu.control_addr().unwrap().to_string();
    let token = json!({ "token": TOKEN }).to_string();
    // Another site's page: refused by Origin, by Sec-Fetch-Site, and for a form content type.
    let r = http
        .post(url("/tokens"))
        .header("origin", "http://evil.example")
        .header("content-type", "application/json")
        .body(token.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .delete(url("/journal"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .post(url("/tokens"))
        .header("content-type", "text/plain")
        .body(token.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, tokens) = get(&emu, "/tokens").await;
    assert_eq!(tokens["tokens"], json!([]), "nothing refused was applied");
    // Reads stay open to any origin; the page's own writes pass.
    let r = http
        .get(url("/journal"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .post(url("/tokens"))
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/json")
        .body(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}
