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
//! Module map: `model` (shared vocabulary), `legacy` (binary gateway + feedback),
//! `engine` (decisions), `journal` (what happened), `certs` + `tls` (identities), `emulator`
//! (the embedding API).

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

pub use emulator::{Addrs, CertSource, Emulator, EmulatorBuilder, ProviderKind, StartError};

/// The app topic used when none is given (generated certificates, in-memory emulators).
pub const DEFAULT_TOPIC: &str = "com.example.app";
