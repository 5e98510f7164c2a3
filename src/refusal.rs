//! Why a connection was refused, in plain words for the journal's `connection-refused` detail and
//! the serve log: what the client sent first (a ClientHello of which version, plaintext, HTTP/1.1),
//! and what the handshake decided. Sans-IO: the first bytes and the failure come in, words go out.
//! No TLS library's documentation links or enum names reach a user.

use crate::model::{Environment, Protocol};
use crate::tls::HandshakeFailure;
use std::fmt;

/// What the first bytes of a connection on a TLS port were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBytes {
    /// A TLS ClientHello; `version` is its client_version (0x0301 = TLS 1.0) when it was complete
    /// enough to read. TLS 1.3 clients also say 0x0303 here.
    ClientHello {
        /// The highest version the client offered before TLS 1.3's extension.
        version: Option<u16>,
    },
    /// An SSL 2.0-format hello, sent by very old clients.
    Sslv2Hello,
    /// An HTTP/1.x request line.
    Http1,
    /// The HTTP/2 prior-knowledge preface (h2c).
    H2c,
    /// A binary-gateway frame (command 0, 1 or 2) with no TLS around it.
    LegacyFrame,
    /// Anything else, or nothing at all.
    Unknown,
}

/// Reads what the client started with; `first` is whatever was there to peek, possibly short.
pub fn classify(first: &[u8]) -> FirstBytes {
    match first {
        // Record type handshake, major version 3, handshake type client_hello at offset 5.
        [0x16, 0x03, _, _, _, 0x01, _, _, _, major, minor, ..] => FirstBytes::ClientHello {
            version: Some(u16::from_be_bytes([*major, *minor])),
        },
        [0x16, 0x03, ..] => FirstBytes::ClientHello { version: None },
        // SSL 2.0 record header with the high bit set, then MSG-CLIENT-HELLO (1).
        [b, _, 0x01, ..] if b & 0x80 != 0 => FirstBytes::Sslv2Hello,
        [b'P', b'R', b'I', b' ', ..] => FirstBytes::H2c,
        [b'G', b'E', b'T', b' ', ..]
        | [b'P', b'O', b'S', b'T', ..]
        | [b'P', b'U', b'T', b' ', ..]
        | [b'H', b'E', b'A', b'D', ..]
        | [b'O', b'P', b'T', b'I', ..]
        | [b'D', b'E', b'L', b'E', ..]
        | [b'C', b'O', b'N', b'N', ..] => FirstBytes::Http1,
        [0x00..=0x02, ..] => FirstBytes::LegacyFrame,
        _ => FirstBytes::Unknown,
    }
}

/// "TLS 1.0" for 0x0301 and so on.
pub fn version_name(version: u16) -> String {
    match version {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v => format!("version 0x{v:04x}"),
    }
}

/// The listener a refusal happened on, for the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// Which service.
    pub protocol: Protocol,
    /// The environment the connection was for (SNI, else the listener's).
    pub environment: Environment,
    /// The lowest TLS version this listener speaks (0x0303 unless `--legacy-tls-min` lowered it).
    pub tls_min: u16,
    /// Whether it speaks TLS 1.3.
    pub tls13: bool,
}

impl Listener {
    fn service(&self) -> &'static str {
        match self.protocol {
            Protocol::Legacy => "gateway",
            Protocol::Feedback => "feedback service",
            Protocol::Http2 => "HTTP/2 API",
        }
    }

    fn min_name(&self) -> &'static str {
        match self.tls_min {
            0x0301 => "1.0",
            0x0302 => "1.1",
            _ => "1.2",
        }
    }
}

/// The cause of a refused connection, each with its plain-words sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The client's highest version is below what the listener speaks.
    OldTls {
        /// The client's highest offered version.
        offered: u16,
        /// The listener.
        listener: Listener,
    },
    /// A TLS 1.3-only client on a listener without TLS 1.3.
    Tls13Only(Listener),
    /// An SSL 2.0-format hello.
    Sslv2,
    /// Not TLS at all.
    NotTls(FirstBytes),
    /// The certificate's Apple environment does not cover the connection's (PROTOCOL.md 1.9).
    WrongEnvironment(Listener),
    /// The certificate does not chain to apnsim's CA.
    UntrustedCertificate,
    /// Expired or not yet valid.
    ExpiredCertificate,
    /// A certificate was required and none came.
    NoCertificate,
    /// ALPN offered, none of it h2.
    NoApplicationProtocol,
    /// The client ended the handshake with an alert (often: it does not trust apnsim's server certificate).
    ClientAlert(String),
    /// The client closed before the handshake finished.
    ClosedEarly,
    /// The handshake took longer than the limit.
    Timeout,
    /// Anything else, already in plain words.
    Other(String),
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::OldTls { offered, listener } => {
                write!(
                    f,
                    "client offered only {} (this listener needs ≥ {}",
                    version_name(*offered),
                    listener.min_name()
                )?;
                if matches!(listener.protocol, Protocol::Legacy | Protocol::Feedback) {
                    write!(f, "; see --legacy-tls-min")?;
                }
                write!(f, ")")
            }
            Cause::Tls13Only(l) => write!(
                f,
                "client offered only TLS 1.3 (this {} speaks TLS 1.2, as Apple's did)",
                l.service()
            ),
            Cause::Sslv2 => write!(f, "client sent an SSL 2.0 hello (no TLS version in common)"),
            Cause::NotTls(FirstBytes::Http1) => write!(f, "plaintext / HTTP/1.1 on a TLS port"),
            Cause::NotTls(FirstBytes::H2c) => {
                write!(f, "plaintext HTTP/2 (h2c prior knowledge) on a TLS port")
            }
            Cause::NotTls(FirstBytes::LegacyFrame) => {
                write!(f, "plaintext binary-gateway frame (no TLS) on a TLS port")
            }
            Cause::NotTls(_) => write!(f, "plaintext (not TLS) on a TLS port"),
            Cause::WrongEnvironment(l) => {
                let other = match l.environment {
                    Environment::Production => Environment::Sandbox,
                    Environment::Sandbox => Environment::Production,
                };
                write!(
                    f,
                    "client certificate is for {other}, this is the {} {}",
                    l.environment,
                    l.service()
                )
            }
            Cause::UntrustedCertificate => {
                write!(
                    f,
                    "client certificate not signed by apnsim's CA (certs/ca.pem)"
                )
            }
            Cause::ExpiredCertificate => write!(f, "client certificate expired or not yet valid"),
            Cause::NoCertificate => write!(f, "no client certificate"),
            Cause::NoApplicationProtocol => {
                write!(f, "client offered ALPN protocols, none of them h2")
            }
            Cause::ClientAlert(alert) if alert == "unknown_ca" || alert == "bad_certificate" => {
                write!(
                    f,
                    "client refused apnsim's server certificate (alert {alert}; give the client certs/ca.pem)"
                )
            }
            Cause::ClientAlert(alert) => write!(f, "client aborted the handshake (alert {alert})"),
            Cause::ClosedEarly => write!(f, "client closed the connection during the handshake"),
            Cause::Timeout => write!(f, "handshake not finished within 10 s"),
            Cause::Other(words) => write!(f, "TLS handshake failed: {words}"),
        }
    }
}

impl Cause {
    /// A short stable name for the cause, for rate-limiting the log and for the journal.
    pub fn code(&self) -> &'static str {
        match self {
            Cause::OldTls { .. } => "old-tls",
            Cause::Tls13Only(_) => "tls13-only",
            Cause::Sslv2 => "sslv2-hello",
            Cause::NotTls(_) => "not-tls",
            Cause::WrongEnvironment(_) => "wrong-environment",
            Cause::UntrustedCertificate => "untrusted-certificate",
            Cause::ExpiredCertificate => "expired-certificate",
            Cause::NoCertificate => "no-certificate",
            Cause::NoApplicationProtocol => "no-application-protocol",
            Cause::ClientAlert(_) => "client-alert",
            Cause::ClosedEarly => "closed-early",
            Cause::Timeout => "timeout",
            Cause::Other(_) => "other",
        }
    }
}

/// Decides the cause from what the client sent first and how the handshake failed. The first bytes
/// win where they explain the failure: a TLS 1.0 ClientHello fails in rustls for a missing extension,
/// but the user needs to hear about the version.
pub fn cause(
    first: FirstBytes,
    failure: Option<HandshakeFailure>,
    alert: Option<String>,
    listener: Listener,
) -> Cause {
    match first {
        FirstBytes::ClientHello {
            version: Some(v), ..
        } if v < listener.tls_min => {
            return Cause::OldTls {
                offered: v,
                listener,
            }
        }
        FirstBytes::Sslv2Hello => return Cause::Sslv2,
        FirstBytes::Http1 | FirstBytes::H2c | FirstBytes::LegacyFrame => {
            return Cause::NotTls(first)
        }
        _ => {}
    }
    match failure {
        Some(HandshakeFailure::WrongEnvironment) => Cause::WrongEnvironment(listener),
        Some(HandshakeFailure::UntrustedCertificate) => Cause::UntrustedCertificate,
        Some(HandshakeFailure::ExpiredCertificate) => Cause::ExpiredCertificate,
        Some(HandshakeFailure::NoCertificate) => Cause::NoCertificate,
        Some(HandshakeFailure::ProtocolVersion) if !listener.tls13 => Cause::Tls13Only(listener),
        Some(HandshakeFailure::ProtocolVersion) => Cause::Other("no TLS version in common".into()),
        Some(HandshakeFailure::NoApplicationProtocol) => Cause::NoApplicationProtocol,
        _ if first == FirstBytes::Unknown => Cause::NotTls(first),
        _ => match alert {
            Some(a) => Cause::ClientAlert(a),
            None => Cause::ClosedEarly,
        },
    }
}

/// An I/O error in plain words: no TLS library documentation links, the common ends named.
pub fn plain_io(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            "peer closed the connection without TLS close_notify".into()
        }
        std::io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        std::io::ErrorKind::BrokenPipe => "broken pipe (peer gone)".into(),
        _ => strip_links(&err.to_string()),
    }
}

/// Removes `: https://…` and ` (https://…)` references from a message.
fn strip_links(s: &str) -> String {
    match s.find("http") {
        Some(i) if s[i..].starts_with("https://") || s[i..].starts_with("http://") => {
            let head = s[..i].trim_end_matches([' ', ':', '(', ';']);
            let rest = s[i..]
                .find(char::is_whitespace)
                .map(|j| strip_links(s[i + j..].trim_start_matches([')', ' '])))
                .unwrap_or_default();
            if rest.is_empty() {
                head.to_string()
            } else {
                format!("{head} {rest}")
            }
        }
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::alert_name;

    const LEGACY: Listener = Listener {
        protocol: Protocol::Legacy,
        environment: Environment::Production,
        tls_min: 0x0303,
        tls13: false,
    };

    #[test]
    fn first_bytes_are_classified() {
        let hello10 = [
            0x16, 0x03, 0x01, 0x00, 0x50, 0x01, 0x00, 0x00, 0x4c, 0x03, 0x01, 0xaa,
        ];
        assert_eq!(
            classify(&hello10),
            FirstBytes::ClientHello {
                version: Some(0x0301)
            }
        );
        assert_eq!(
            classify(&[0x16, 0x03, 0x01]),
            FirstBytes::ClientHello { version: None }
        );
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), FirstBytes::Http1);
        assert_eq!(classify(b"PRI * HTTP/2.0\r\n"), FirstBytes::H2c);
        assert_eq!(classify(&[0x80, 0x2e, 0x01, 0x03]), FirstBytes::Sslv2Hello);
        assert_eq!(classify(&[0x02, 0, 0, 0, 10]), FirstBytes::LegacyFrame);
        assert_eq!(classify(b""), FirstBytes::Unknown);
    }

    #[test]
    fn the_words_of_each_cause() {
        let hello = |v| FirstBytes::ClientHello { version: Some(v) };
        assert_eq!(
            cause(hello(0x0301), Some(HandshakeFailure::Other), None, LEGACY).to_string(),
            "client offered only TLS 1.0 (this listener needs ≥ 1.2; see --legacy-tls-min)"
        );
        let lowered = Listener {
            tls_min: 0x0301,
            ..LEGACY
        };
        assert_eq!(
            cause(
                hello(0x0301),
                Some(HandshakeFailure::NoCertificate),
                None,
                lowered
            )
            .to_string(),
            "no client certificate"
        );
        assert_eq!(
            cause(
                hello(0x0303),
                Some(HandshakeFailure::WrongEnvironment),
                None,
                LEGACY
            )
            .to_string(),
            "client certificate is for sandbox, this is the production gateway"
        );
        assert_eq!(
            cause(
                hello(0x0303),
                Some(HandshakeFailure::UntrustedCertificate),
                None,
                LEGACY
            )
            .to_string(),
            "client certificate not signed by apnsim's CA (certs/ca.pem)"
        );
        assert_eq!(
            cause(
                FirstBytes::Http1,
                Some(HandshakeFailure::Other),
                None,
                LEGACY
            )
            .to_string(),
            "plaintext / HTTP/1.1 on a TLS port"
        );
        assert_eq!(
            cause(
                hello(0x0303),
                Some(HandshakeFailure::Other),
                Some(alert_name("UnknownCA")),
                LEGACY
            )
            .code(),
            "client-alert"
        );
    }

    #[test]
    fn alert_names_follow_the_specification() {
        assert_eq!(alert_name("UnknownCA"), "unknown_ca");
        assert_eq!(alert_name("HandshakeFailure"), "handshake_failure");
        assert_eq!(alert_name("BadCertificate"), "bad_certificate");
    }

    #[test]
    fn io_errors_lose_their_links() {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "peer sent junk: https://docs.rs/rustls/latest/x.html#y",
        );
        assert_eq!(plain_io(&e), "peer sent junk");
        let eof = std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify: https://docs.rs/x",
        );
        assert!(!plain_io(&eof).contains("http"));
    }
}

/// Remembers when each distinct refusal was last logged, so the serve log says each cause at WARN
/// once per minute however many clients repeat it.
#[derive(Debug, Default)]
pub struct RefusalLog {
    last: parking_lot::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// How often one cause may be logged.
pub const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Bound on causes remembered.
const MAX_CAUSES: usize = 256;

impl RefusalLog {
    /// True when `words` was not logged within the last minute before `now` (and notes it as logged).
    pub fn should_log(&self, words: &str, now: std::time::Instant) -> bool {
        let mut last = self.last.lock();
        if let Some(at) = last.get(words) {
            if now.saturating_duration_since(*at) < LOG_EVERY {
                return false;
            }
        }
        if last.len() >= MAX_CAUSES {
            last.retain(|_, at| now.saturating_duration_since(*at) < LOG_EVERY);
        }
        last.insert(words.to_string(), now);
        true
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn each_cause_is_logged_once_a_minute() {
        let log = RefusalLog::default();
        let t0 = std::time::Instant::now();
        assert!(log.should_log("no client certificate", t0));
        assert!(!log.should_log(
            "no client certificate",
            t0 + std::time::Duration::from_secs(59)
        ));
        assert!(log.should_log("plaintext / HTTP/1.1 on a TLS port", t0));
        assert!(log.should_log("no client certificate", t0 + LOG_EVERY));
    }
}
