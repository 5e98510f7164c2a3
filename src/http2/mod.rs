//! Apple's HTTP/2 provider API, on apnsim's own sans-IO HTTP/2 layer.

pub mod auth;
pub mod conn;
pub mod driver;
pub mod frame;
pub mod hpack;
pub mod reason;
pub mod request;
pub mod server;
pub mod team_tokens;
