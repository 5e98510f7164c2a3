//! Apple's push types (`apns-push-type`, PROTOCOL.md 2.4): one enum from the request parser to
//! the scenario matcher, the journal and the control API.

use serde::{Deserialize, Serialize};

/// The `apns-push-type` values Apple defines (PROTOCOL.md 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PushType {
    /// A visible notification.
    Alert,
    /// A content-available background update.
    Background,
    /// A PushKit VoIP call.
    Voip,
    /// A watchOS complication update.
    Complication,
    /// A File Provider change signal.
    #[serde(rename = "fileprovider")]
    FileProvider,
    /// A location query.
    Location,
    /// A Live Activity update.
    #[serde(rename = "liveactivity")]
    LiveActivity,
    /// A Push to Talk update.
    #[serde(rename = "pushtotalk")]
    PushToTalk,
    /// A widget reload.
    Widgets,
    /// A controls reload.
    Controls,
    /// An MDM check-in request.
    Mdm,
}

impl PushType {
    /// Every push type, for enumeration in tests and the control API.
    pub const ALL: [PushType; 11] = [
        PushType::Alert,
        PushType::Background,
        PushType::Voip,
        PushType::Complication,
        PushType::FileProvider,
        PushType::Location,
        PushType::LiveActivity,
        PushType::PushToTalk,
        PushType::Widgets,
        PushType::Controls,
        PushType::Mdm,
    ];

    /// The header value, exactly as Apple spells it (PROTOCOL.md 2.4).
    pub fn as_str(self) -> &'static str {
        match self {
            PushType::Alert => "alert",
            PushType::Background => "background",
            PushType::Voip => "voip",
            PushType::Complication => "complication",
            PushType::FileProvider => "fileprovider",
            PushType::Location => "location",
            PushType::LiveActivity => "liveactivity",
            PushType::PushToTalk => "pushtotalk",
            PushType::Widgets => "widgets",
            PushType::Controls => "controls",
            PushType::Mdm => "mdm",
        }
    }

    /// Parses a header value; exact lowercase match, as documented. **[inferred]**
    pub fn from_header(value: &[u8]) -> Option<PushType> {
        PushType::ALL
            .into_iter()
            .find(|p| p.as_str().as_bytes() == value)
    }

    /// The suffix the topic must carry after the bundle id, if any (PROTOCOL.md 2.4).
    pub fn topic_suffix(self) -> Option<&'static str> {
        match self {
            PushType::Voip => Some(".voip"),
            PushType::Complication => Some(".complication"),
            PushType::FileProvider => Some(".pushkit.fileprovider"),
            PushType::Location => Some(".location-query"),
            PushType::LiveActivity => Some(".push-type.liveactivity"),
            PushType::PushToTalk => Some(".voip-ptt"),
            PushType::Widgets => Some(".push-type.widgets"),
            PushType::Controls => Some(".push-type.controls"),
            PushType::Alert | PushType::Background | PushType::Mdm => None,
        }
    }

    /// Push types a certificate connection cannot send (PROTOCOL.md 2.4: token auth only).
    pub fn token_auth_only(self) -> bool {
        matches!(self, PushType::Location | PushType::LiveActivity)
    }

    /// The push type a topic's suffix implies, used when apns-push-type is absent (as PyAPNs2 does).
    pub fn implied_by_topic(topic: &str) -> Option<PushType> {
        PushType::ALL.into_iter().find(|p| {
            p.topic_suffix()
                .is_some_and(|s| topic.len() > s.len() && topic.ends_with(s))
        })
    }
}

/// The bundle id inside a topic: the topic minus a known push-type suffix (PROTOCOL.md 2.4).
pub fn topic_bundle(topic: &str) -> &str {
    PushType::implied_by_topic(topic)
        .and_then(|p| p.topic_suffix())
        .and_then(|s| topic.get(..topic.len() - s.len()))
        .unwrap_or(topic)
}
