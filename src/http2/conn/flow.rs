//! Flow-control window arithmetic (RFC 9113 6.9), kept apart so the overflow rules are tested once.

use crate::http2::frame::MAX_WINDOW_SIZE;

/// One flow-control window; signed because a SETTINGS_INITIAL_WINDOW_SIZE decrease can make it negative (6.9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window(i64);

/// The window would exceed 2^31-1, which RFC 9113 6.9.1 makes a FLOW_CONTROL_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowOverflow;

impl Window {
    /// A window of `size` octets.
    pub fn new(size: u32) -> Self {
        Window(i64::from(size))
    }

    /// Octets that may be sent now (0 when the window is empty or negative).
    pub fn available(self) -> u32 {
        u32::try_from(self.0.max(0)).unwrap_or(u32::MAX)
    }

    /// Adds a WINDOW_UPDATE increment.
    pub fn increase(&mut self, n: u32) -> Result<(), WindowOverflow> {
        let v = self.0 + i64::from(n);
        if v > i64::from(MAX_WINDOW_SIZE) {
            return Err(WindowOverflow);
        }
        self.0 = v;
        Ok(())
    }

    /// Applies a change of SETTINGS_INITIAL_WINDOW_SIZE from `old` to `new` (RFC 9113 6.9.2).
    pub fn adjust(&mut self, old: u32, new: u32) -> Result<(), WindowOverflow> {
        let v = self.0 + i64::from(new) - i64::from(old);
        if v > i64::from(MAX_WINDOW_SIZE) {
            return Err(WindowOverflow);
        }
        self.0 = v;
        Ok(())
    }

    /// Takes `n` octets off the window; `false` (and no change) when the peer overran it.
    pub fn consume(&mut self, n: u32) -> bool {
        if i64::from(n) > self.0 {
            return false;
        }
        self.0 -= i64::from(n);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_and_negative() {
        let mut w = Window::new(65_535);
        assert!(w.increase(MAX_WINDOW_SIZE - 65_535).is_ok());
        assert_eq!(w.increase(1), Err(WindowOverflow));
        let mut w = Window::new(3);
        assert!(w.consume(3));
        w.adjust(3, 2).unwrap();
        assert_eq!(w.available(), 0);
        w.increase(2).unwrap();
        assert_eq!(w.available(), 1);
        assert!(!w.consume(2));
        assert!(w.consume(1));
    }
}
