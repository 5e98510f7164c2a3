//! The wire vocabulary the engine may name: Apple's reasons and statuses, HTTP/2 error codes and
//! SETTINGS, push types. It lives under `model` so the engine names them without importing a
//! listener (`http2`, `legacy` re-export them from where they were).

mod error_code;
pub mod legacy_limits;
mod push_type;
pub mod reason;
mod settings;
pub mod status;

pub use error_code::ErrorCode;
pub use push_type::{topic_bundle, PushType};
pub use reason::Reason;
pub use settings::SettingsUpdate;
pub use status::Status;

/// Longest apns-collapse-id in bytes (PROTOCOL.md 2.3), on `/3/device` and `/4/broadcasts`.
pub const MAX_COLLAPSE_ID_BYTES: usize = 64;
/// Longest apns-topic (or bundle id) we accept; bundle ids are far shorter. **[inferred]**
pub const MAX_TOPIC_BYTES: usize = 255;
