//! apnsim: a fake Apple Push Notification service for testing push providers.
//!
//! Start one in-process for a test:
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let emu = apnsim::Emulator::builder().start().await?;
//! println!("gateway at {}", emu.legacy_addr());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//! Module map (every public module):
//! - `model`: the shared vocabulary (tokens, notifications, environments, protocols);
//! - `settings`: apnsim's answers to what Apple leaves open, and its limits;
//! - `clock`: wall time plus an offset tests can advance;
//! - `engine`: the decisions (registry, devices, fault rules, scenario files);
//! - `legacy`: the binary gateway and the feedback service;
//! - `http2`: the HTTP/2 provider API (frames, HPACK, connection, requests, JWT auth);
//! - `broadcast`: broadcast push, channel management and Live Activities;
//! - `journal`: what happened, one event per observation;
//! - `certs` + `tls`: the private PKI and the handshakes that check provider identities;
//! - `acceptor` (+ `tls_openssl`): which TLS library runs a listener's handshakes (OpenSSL for TLS 1.0/1.1 on legacy ports);
//! - `files`: reading operator-named files safely (regular, size-capped);
//! - `lint`: what a device would make of a payload APNs accepted;
//! - `refusal`: why a connection was refused, in plain words;
//! - `scenario_host`: what loading a scenario into a running emulator needs and reports;
//! - `control`: the local control API (journal, tokens, clock, metrics, scenarios);
//! - `emulator`: the embedding API (start a whole emulator in-process);
//! - `send`: the built-in reference provider (`apnsim send`);
//! - `plan`: the provider-driver contract as types;
//! - `conformance`: the suite that runs real provider libraries against apnsim and grades them.

pub mod acceptor;
pub mod broadcast;
pub mod certs;
pub mod clock;
pub mod conformance;
pub mod control;
pub mod emulator;
pub mod engine;
pub mod files;
pub mod http2;
pub mod journal;
pub mod journal_file;
pub mod legacy;
pub mod lint;
pub mod model;
pub mod plan;
pub mod refusal;
mod runtime;
pub mod scenario_host;
pub mod send;
pub mod settings;
pub mod tls;
#[cfg(feature = "legacy-openssl")]
pub mod tls_openssl;

pub use emulator::{Addrs, CertSource, Emulator, EmulatorBuilder, ProviderKind, StartError};

/// The app topic used when none is given (generated certificates, in-memory emulators).
pub const DEFAULT_TOPIC: &str = "com.example.app";
