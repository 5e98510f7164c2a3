//! The emulator's clock: wall time plus an offset tests can advance, so JWT expiry and
//! token-update rules can be exercised without waiting an hour.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A shareable clock; every component that needs "now" asks it, never `SystemTime` directly.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// A clock that reads the system time with no offset.
    pub fn new() -> Self {
        Self::default()
    }

    /// Milliseconds since the UNIX epoch, offset applied (journal times, HTTP/2 410 timestamps).
    pub fn now_ms(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        (wall + self.offset_ms.load(Ordering::Relaxed)).max(0) as u64
    }

    /// Seconds since the UNIX epoch (JWT `iat` comparisons, legacy expiry, feedback timestamps).
    pub fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// Moves the clock forward (or back, with a negative value) for every holder at once.
    pub fn advance_secs(&self, secs: i64) {
        self.offset_ms
            .fetch_add(secs.saturating_mul(1000), Ordering::Relaxed);
    }

    /// The current offset from wall time, shown by the control API.
    pub fn offset_secs(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed) / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let a = Clock::new();
        let b = a.clone();
        let before = b.now_secs();
        a.advance_secs(3600);
        let after = b.now_secs();
        assert!(after >= before + 3600 && after <= before + 3602);
        assert_eq!(b.offset_secs(), 3600);
    }
}
