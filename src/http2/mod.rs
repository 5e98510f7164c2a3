//! Apple's HTTP/2 provider API, on apnsim's own sans-IO HTTP/2 layer.

pub mod apns;
pub mod auth;
pub mod conn;
pub mod driver;
pub mod frame;
pub mod hpack;
pub use crate::model::wire::reason;
pub mod request;
pub mod server;
pub mod state;
pub mod team_tokens;
