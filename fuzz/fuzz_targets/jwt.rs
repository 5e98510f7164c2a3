//! JWT parse/verify: any `authorization` value and any token is refused or verified against a
//! registry holding one real key, never a panic.
#![no_main]
use apnsim::http2::auth::{generate_p8, parse_authorization, KeyRegistry, ProviderKey, VerifyCache};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn registry() -> &'static KeyRegistry {
    static R: OnceLock<KeyRegistry> = OnceLock::new();
    R.get_or_init(|| {
        let mut r = KeyRegistry::new();
        let pem = generate_p8().expect("key");
        r.insert(ProviderKey::from_pem("ABC123DEFG", "TEAM123456", &pem).expect("key"));
        r
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_authorization(Some(data));
    if let Ok(text) = std::str::from_utf8(data) {
        let cache = VerifyCache::new();
        let _ = cache.verify(text, registry());
        let _ = cache.verify(text, registry());
    }
});
