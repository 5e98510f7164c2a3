//! The wire vocabulary the engine may name: Apple's reasons and statuses, HTTP/2 error codes and
//! SETTINGS, push types. It lives under `model` so the engine names them without importing a
//! listener (`http2`, `legacy` re-export them from where they were).

mod error_code;
pub mod reason;
mod settings;
pub mod status;

pub use error_code::ErrorCode;
pub use reason::Reason;
pub use settings::SettingsUpdate;
pub use status::Status;
