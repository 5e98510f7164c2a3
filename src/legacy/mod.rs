//! Apple's legacy binary provider protocol: the gateway (commands 0, 1, 2) and the feedback service.

mod close;
pub mod feedback;
pub mod frame;
pub mod gateway;
mod ready;
pub mod session;
pub use crate::model::wire::status;
