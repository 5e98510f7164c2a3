//! `request::validate` over arbitrary header lists and bodies, on certificate and token
//! connections: every input gets a verdict, never a panic.
#![no_main]
use apnsim::http2::auth::{KeyRegistry, TokenAuth, VerifyCache};
use apnsim::http2::request::{validate, ConnAuth, RequestContext, RequestSettings};
use apnsim::model::Environment;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Input: lines "name: value", a blank line, then the body.
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &b""[..]),
    };
    let headers: Vec<(Bytes, Bytes)> = head
        .split(|&b| b == b'\n')
        .map(|line| match line.iter().position(|&b| b == b' ') {
            Some(i) => (
                Bytes::copy_from_slice(&line[..i]),
                Bytes::copy_from_slice(&line[i + 1..]),
            ),
            None => (Bytes::copy_from_slice(line), Bytes::new()),
        })
        .collect();
    let settings = RequestSettings::default();
    let cert = ConnAuth::Certificate {
        topics: vec!["com.example.app".into(), "com.example.app.voip".into()],
        environments: vec![Environment::Production],
    };
    let registry = KeyRegistry::new();
    let cache = VerifyCache::new();
    for auth in [&cert, &ConnAuth::Token] {
        let ctx = RequestContext {
            environment: Environment::Production,
            auth,
            settings: &settings,
        };
        let mut token_auth = TokenAuth::new();
        let _ = validate(
            &headers,
            Bytes::copy_from_slice(body),
            &ctx,
            &mut token_auth,
            &registry,
            &cache,
            1_700_000_000,
        );
    }
});
