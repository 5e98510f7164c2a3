//! The provider-token update limit kept per team across connections, as Apple counts it
//! (PROTOCOL.md 2.8: TooManyProviderTokenUpdates is about a team refreshing too often, not a
//! connection; sandbox and production are separate services, so each counts its own). One table per emulator, shared by every HTTP/2 connection. A team's token is
//! known by its `iat`: connections of one pool that sign the same second refresh once, not many times.

use crate::model::Environment;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

pub use crate::settings::TokenUpdateScope;

/// Bound on teams remembered; past it the oldest entries are forgotten (bounded, like everything else).
const MAX_TEAMS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct TeamToken {
    /// The `iat` of the team's current token.
    issued_at: u64,
    /// When that token became current (UNIX seconds); 0 after ExpiredProviderToken.
    since: u64,
}

/// Each team's current token and when it became current.
#[derive(Debug, Default)]
pub struct TeamTokenUpdates {
    teams: Mutex<HashMap<(Environment, Arc<str>), TeamToken>>,
}

/// A token update refused because the team's current token is younger than the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSoon;

impl TeamTokenUpdates {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Judges a connection bringing a token issued at `issued_at` for `team` at `now`: the team's
    /// current token, or its first, or one after `min_interval` is accepted and becomes current.
    pub fn update(
        &self,
        environment: Environment,
        team: &Arc<str>,
        issued_at: u64,
        now: u64,
        min_interval: u64,
    ) -> Result<(), TooSoon> {
        let mut teams = self.teams.lock();
        let key = (environment, Arc::clone(team));
        if let Some(current) = teams.get_mut(&key) {
            if current.issued_at == issued_at {
                return Ok(());
            }
            if now < current.since.saturating_add(min_interval) {
                return Err(TooSoon);
            }
            *current = TeamToken {
                issued_at,
                since: now,
            };
            return Ok(());
        }
        if teams.len() >= MAX_TEAMS {
            if let Some(oldest) = teams
                .iter()
                .min_by_key(|(_, t)| t.since)
                .map(|(k, _)| k.clone())
            {
                teams.remove(&oldest);
            }
        }
        teams.insert(
            key,
            TeamToken {
                issued_at,
                since: now,
            },
        );
        Ok(())
    }

    /// After ExpiredProviderToken the team must sign anew: its next token is not "too often".
    pub fn expired(&self, environment: Environment, team: &Arc<str>) {
        if let Some(t) = self.teams.lock().get_mut(&(environment, Arc::clone(team))) {
            t.since = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_token_of_a_team_within_the_interval_is_too_soon() {
        let teams = TeamTokenUpdates::new();
        let t: Arc<str> = Arc::from("TEAM");
        let p = Environment::Production;
        assert_eq!(teams.update(p, &t, 1, 1000, 1200), Ok(()));
        // The same token from another connection is no update.
        assert_eq!(teams.update(p, &t, 1, 1001, 1200), Ok(()));
        assert_eq!(teams.update(p, &t, 2, 1100, 1200), Err(TooSoon));
        // Another team, or the other environment, is counted apart.
        assert_eq!(teams.update(p, &Arc::from("OTHER"), 3, 1100, 1200), Ok(()));
        assert_eq!(
            teams.update(Environment::Sandbox, &t, 3, 1100, 1200),
            Ok(())
        );
        assert_eq!(teams.update(p, &t, 2, 2200, 1200), Ok(()));
        // ... and after an expiry the next token is welcome at once.
        teams.expired(p, &t);
        assert_eq!(teams.update(p, &t, 4, 2201, 1200), Ok(()));
    }
}
