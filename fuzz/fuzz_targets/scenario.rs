//! The scenario parser (TOML and JSON): any text is a scenario or a list of line:column errors,
//! and a parsed scenario's settings are in range.
#![no_main]
use apnsim::engine::scenario::{parse_json, parse_toml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [parse_toml(text), parse_json(text)] {
        match parsed {
            Ok(sc) => {
                if let Some(s) = &sc.settings {
                    s.check().expect("a parsed scenario's settings are in range");
                }
            }
            Err(e) => assert!(!e.errors.is_empty()),
        }
    }
});
