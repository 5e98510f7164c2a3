//! Scenario helpers shared by the fault tests: fixtures by name, inline TOML, an emulator with one.

use apnsim::engine::scenario::{parse_toml, Scenario};
use apnsim::Emulator;

/// A ready-made scenario from `fixtures/scenarios`.
pub fn fixture(name: &str) -> Scenario {
    let path = format!("{}/fixtures/scenarios/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture");
    parse_toml(&text).unwrap_or_else(|e| panic!("{}", e.with_file(path)))
}

/// An inline scenario (must be valid).
pub fn scenario(toml: &str) -> Scenario {
    parse_toml(toml).unwrap_or_else(|e| panic!("{e}"))
}

/// An in-process emulator that starts with `s` loaded.
pub async fn emulator_with(s: Scenario) -> Emulator {
    Emulator::builder()
        .scenario(s, None)
        .start()
        .await
        .expect("start")
}
