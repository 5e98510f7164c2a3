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

/// Whether any byte of `s` is `bad`, by a fold with no early exit (no branch per byte): every
/// request's header fields and path pass through such checks, and a byte-at-a-time `any` took
/// twice the instructions.
#[inline]
pub(crate) fn any_byte(s: &[u8], bad: impl Fn(u8) -> bool) -> bool {
    s.iter().fold(false, |found, &c| found | bad(c))
}
