//! apnsim's answers to the broadcast points PROTOCOL.md 2.11 marks [uncertain], and the
//! broadcast limits: each a setting, so a test can pick the other side.

use serde::{Deserialize, Serialize};

/// Broadcast and channel-management knobs (`[broadcast]` in the settings file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct BroadcastSettings {
    /// Live channels per environment (A-CHAN: 10,000); one more is CannotCreateChannelConfig.
    pub max_channels: usize,
    /// How long a storage-policy-1 channel keeps its most recent message (A-CHAN: 8 hours).
    pub stored_message_secs: u64,
    /// Broadcast payload limit in bytes (PROTOCOL.md 2.5's 4096; A-BERR lists PayloadTooLarge).
    pub max_payload: usize,
    /// On a channel without storage, a missing `apns-expiration` is BadExpirationDate (the
    /// third-party report in PROTOCOL.md 2.11); false treats it as 0.
    pub missing_expiry_rejected: bool,
    /// `apns-topic` on `/4/broadcasts` must be present (A-LA does not list it; default: optional,
    /// but when sent it must be `<bundle>.push-type.liveactivity`).
    pub require_topic: bool,
    /// `apns-push-type` must be exactly `liveactivity` and a create body's `push-type` exactly
    /// `LiveActivity`; false accepts either casing in both places (PROTOCOL.md 2.11 [uncertain];
    /// default false: node-apn 8 sends `liveactivity` in the create body).
    pub push_type_case_sensitive: bool,
    /// Write 503's reason as A-BERR prints it, "Service Unavailable" (default: "ServiceUnavailable",
    /// the spelling every client's `/3/device` table knows).
    pub spaced_service_unavailable: bool,
    /// Apps (bundle ids) for which broadcast is not enabled: every request is FeatureNotEnabled.
    pub disabled_apps: Vec<String>,
}

impl Default for BroadcastSettings {
    fn default() -> Self {
        BroadcastSettings {
            max_channels: 10_000,
            stored_message_secs: 8 * 3600,
            max_payload: 4096,
            missing_expiry_rejected: true,
            require_topic: false,
            push_type_case_sensitive: false,
            spaced_service_unavailable: false,
            disabled_apps: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::Settings;

    #[test]
    fn a_settings_file_sets_them_under_broadcast() {
        let s: Settings = toml::from_str(
            "[broadcast]\nmax-channels = 5\nspaced-service-unavailable = true\ndisabled-apps = [\"com.off\"]\n",
        )
        .unwrap();
        assert_eq!(s.broadcast.max_channels, 5);
        assert!(s.broadcast.spaced_service_unavailable);
        assert_eq!(s.broadcast.disabled_apps, vec!["com.off".to_string()]);
        assert_eq!(s.broadcast.stored_message_secs, 8 * 3600);
        assert!(toml::from_str::<Settings>("[broadcast]\nmax_channels = 5\n").is_err());
    }
}
