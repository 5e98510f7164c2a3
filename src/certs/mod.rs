//! The private PKI apnsim runs on: a test CA, a server certificate for every Apple host name, provider
//! identities shaped like the ones Apple issues (PROTOCOL.md 1.9), an ES256 token key (PROTOCOL.md 2.8)
//! and PKCS#12 bundles that today's provider runtimes (OpenSSL 3, Java 17, Python) load.

use crate::model::Environment;
use rand::{Rng, RngCore};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

pub(crate) mod der;
mod pkcs12;

use der::topics_extension;

/// Password of every generated `.p12`, fixed so test setups can hard-code it.
pub const P12_PASSWORD: &str = "apnsim";

/// The topic used when the operator names none, so a bare `apnsim certs` still yields usable files.
pub const DEFAULT_TOPIC: &str = "com.example.app";

/// Subject attribute UID that carries the bundle id in Apple's provider certificates (PROTOCOL.md 1.9).
pub const OID_UID: &[u64] = &[0, 9, 2342, 19_200_300, 100, 1, 1];

/// Extension marking a certificate valid for the sandbox service (PROTOCOL.md 1.9).
pub const OID_APNS_SANDBOX: &[u64] = &[1, 2, 840, 113_635, 100, 6, 3, 1];

/// Extension marking a certificate valid for the production service (PROTOCOL.md 1.9).
pub const OID_APNS_PRODUCTION: &[u64] = &[1, 2, 840, 113_635, 100, 6, 3, 2];

/// Extension listing the topics (app, voip, complication) a certificate may push to (PROTOCOL.md 1.9).
pub const OID_APNS_TOPICS: &[u64] = &[1, 2, 840, 113_635, 100, 6, 3, 6];

/// Every host name Apple served APNs on (PROTOCOL.md 1.1, 2.1): clients that pin the name must verify.
pub const APPLE_HOSTS: &[&str] = &[
    "gateway.push.apple.com",
    "gateway.sandbox.push.apple.com",
    "feedback.push.apple.com",
    "feedback.sandbox.push.apple.com",
    "api.push.apple.com",
    "api.sandbox.push.apple.com",
    "api.development.push.apple.com",
    "api-manage-broadcast.push.apple.com",
    "api-manage-broadcast.sandbox.push.apple.com",
];

/// Upper bound on a topic's length, so a hostile CLI argument cannot bloat certificates.
const MAX_TOPIC_LEN: usize = 255;

/// Everything that can stop certificate generation or loading, kept typed so the CLI can explain it.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused the parameters or failed to sign.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file in the certificate directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// manifest.json could not be written or parsed.
    #[error("manifest: {0}")]
    Manifest(#[from] serde_json::Error),
    /// The CA on disk is not one apnsim can issue under (foreign subject or mismatched key).
    #[error("invalid CA: {0}")]
    InvalidCa(String),
    /// A PEM file held no usable certificate or key.
    #[error("invalid PEM: {0}")]
    InvalidPem(String),
    /// The topic is empty, too long or contains characters no bundle id has.
    #[error("invalid topic {0:?}")]
    InvalidTopic(String),
    /// The key-derivation step of PKCS#12 encryption failed.
    #[error("pkcs12: {0}")]
    Pkcs12(String),
}

/// A certificate and its private key in the forms the TLS layer and the file writer each need.
#[derive(Clone)]
pub struct Identity {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PKCS#8 PEM.
    pub key_pem: String,
    /// Certificate, DER.
    pub cert_der: Vec<u8>,
    /// Private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl fmt::Debug for Identity {
    // Keys must not leak into logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("cert_der_len", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Rebuilds an identity from PEM files on disk, e.g. `server.pem`/`server.key` for `serve`.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let cert_der = first_pem_block(cert_pem, "CERTIFICATE")
            .ok_or_else(|| CertError::InvalidPem("no CERTIFICATE block".into()))?;
        let key_der = first_pem_block(key_pem, "PRIVATE KEY")
            .ok_or_else(|| CertError::InvalidPem("no PKCS#8 PRIVATE KEY block".into()))?;
        Ok(Identity {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            cert_der,
            key_der,
        })
    }

    /// Loads `<stem>.pem` and `<stem>.key` from a certificate directory.
    pub fn load(dir: &Path, stem: &str) -> Result<Self, CertError> {
        let cert = read_string(&dir.join(format!("{stem}.pem")))?;
        let key = read_string(&dir.join(format!("{stem}.key")))?;
        Identity::from_pem(&cert, &key)
    }

    /// Certificate then key in one PEM, the form node-apn's `cert`+`key` or PyAPNs' `cert_file` take.
    pub fn combined_pem(&self) -> String {
        let mut s = self.cert_pem.clone();
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&self.key_pem);
        s
    }

    /// PKCS#12 with PBES2/AES-256-CBC and an HMAC-SHA256 MAC: loads without OpenSSL's legacy provider.
    pub fn to_pkcs12(&self, password: &str, ca_der: &[u8]) -> Result<Vec<u8>, CertError> {
        pkcs12::build(&self.key_der, &self.cert_der, &[ca_der], password, "apnsim")
    }
}

/// What a provider certificate should look like; defaults mirror an Apple-issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    /// The bundle id: goes into UID and the CN (PROTOCOL.md 1.9).
    pub topic: String,
    /// CN override, e.g. the older "Apple Development IOS Push Services: <bundle>" form.
    pub common_name: Option<String>,
    /// Which Apple environment extensions (.3.1 / .3.2) to include; empty yields neither.
    pub environments: Vec<Environment>,
    /// (topic, kind) pairs for the .3.6 extension; empty omits the extension.
    pub topics: Vec<(String, String)>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity; set in the past to exercise expired-certificate handling.
    pub not_after: OffsetDateTime,
    /// Subject OU: Apple puts the team id there.
    pub team_id: String,
}

impl ProviderSpec {
    /// A certificate as Apple issues it today: app, voip and complication topics, valid 10 years.
    pub fn new(topic: &str, environments: &[Environment]) -> Self {
        let now = OffsetDateTime::now_utc();
        ProviderSpec {
            topic: topic.to_string(),
            common_name: None,
            environments: environments.to_vec(),
            topics: standard_topics(topic),
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(3650),
            team_id: "APNSIMTEAM".to_string(),
        }
    }

    /// The same certificate but already expired, for testing how providers react.
    pub fn expired(topic: &str, environments: &[Environment]) -> Self {
        let now = OffsetDateTime::now_utc();
        ProviderSpec {
            not_before: now - Duration::days(30),
            not_after: now - Duration::days(1),
            ..ProviderSpec::new(topic, environments)
        }
    }
}

/// The topic list a universal certificate carries (PROTOCOL.md 1.9, 2.9).
pub fn standard_topics(topic: &str) -> Vec<(String, String)> {
    vec![
        (topic.to_string(), "app".to_string()),
        (format!("{topic}.voip"), "voip".to_string()),
        (format!("{topic}.complication"), "complication".to_string()),
    ]
}

/// An ES256 signing key with the ids Apple hands out with a .p8 file (PROTOCOL.md 2.8).
#[derive(Clone)]
pub struct TokenKey {
    /// 10-character key id (JWT `kid`).
    pub key_id: String,
    /// 10-character team id (JWT `iss`).
    pub team_id: String,
    /// Private key, PKCS#8 PEM: the exact shape of Apple's AuthKey_<kid>.p8.
    pub private_pem: String,
    /// Private key, PKCS#8 DER.
    pub private_der: Vec<u8>,
    /// SubjectPublicKeyInfo PEM, what the emulator verifies signatures with.
    pub public_pem: String,
    /// Uncompressed EC point (0x04 || X || Y), what ring's verifier takes.
    pub public_raw: Vec<u8>,
}

impl fmt::Debug for TokenKey {
    // Keys must not leak into logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

impl TokenKey {
    /// Loads `token-key.p8` with the key id and team id from `manifest.json`.
    pub fn load(dir: &Path) -> Result<Self, CertError> {
        let manifest = Manifest::load(dir)?;
        let pem = read_string(&dir.join("token-key.p8"))?;
        let key = KeyPair::from_pem(&pem)?;
        Ok(TokenKey {
            key_id: manifest.key_id,
            team_id: manifest.team_id,
            private_pem: pem,
            private_der: key.serialize_der(),
            public_pem: key.public_key_pem(),
            public_raw: key.public_key_raw().to_vec(),
        })
    }

    /// A fresh key with random ids, for in-process emulators and tests.
    pub fn generate() -> Result<Self, CertError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        Ok(TokenKey {
            key_id: random_apple_id(),
            team_id: random_apple_id(),
            private_pem: key.serialize_pem(),
            private_der: key.serialize_der(),
            public_pem: key.public_key_pem(),
            public_raw: key.public_key_raw().to_vec(),
        })
    }
}

/// The CA that signs apnsim's server and provider certificates; can issue more identities in-process.
pub struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
    ca_pem: String,
}

impl fmt::Debug for Authority {
    // Keys must not leak into logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// A brand-new CA that never touches disk, for emulators started inside tests.
    pub fn new_in_memory() -> Result<Self, CertError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = ca_params().self_signed(&key)?;
        let ca_pem = cert.pem();
        Ok(Authority { cert, key, ca_pem })
    }

    /// Loads `ca.pem` + `ca.key` from a certificate directory written by [`generate`].
    pub fn load(dir: &Path) -> Result<Self, CertError> {
        let ca_pem = read_string(&dir.join("ca.pem"))?;
        let key_pem = read_string(&dir.join("ca.key"))?;
        Authority::from_pem(&ca_pem, &key_pem)
    }

    /// Rebuilds an issuer from an apnsim CA's PEM files; refuses a CA whose subject or key differ.
    pub fn from_pem(ca_pem: &str, ca_key_pem: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(ca_key_pem)?;
        let disk_der = first_pem_block(ca_pem, "CERTIFICATE")
            .ok_or_else(|| CertError::InvalidPem("ca.pem holds no CERTIFICATE".into()))?;
        // rcgen (without its x509-parser feature) cannot import a CA, so re-create the issuer from the
        // same subject and key: children then carry the on-disk CA's subject and key identifier.
        let cert = ca_params().self_signed(&key)?;
        let (_, disk) = x509_parser::parse_x509_certificate(&disk_der)
            .map_err(|e| CertError::InvalidCa(format!("ca.pem does not parse: {e}")))?;
        let (_, rebuilt) = x509_parser::parse_x509_certificate(cert.der())
            .map_err(|e| CertError::InvalidCa(format!("rebuilt CA does not parse: {e}")))?;
        if disk.subject().as_raw() != rebuilt.subject().as_raw() {
            return Err(CertError::InvalidCa(
                "ca.pem was not generated by apnsim (subject differs)".into(),
            ));
        }
        if disk.public_key().raw != rebuilt.public_key().raw {
            return Err(CertError::InvalidCa("ca.key does not match ca.pem".into()));
        }
        Ok(Authority {
            cert,
            key,
            ca_pem: ca_pem.to_string(),
        })
    }

    /// The CA certificate clients must trust, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The CA certificate, DER, for trust stores and PKCS#12 chains.
    pub fn ca_der(&self) -> Vec<u8> {
        first_pem_block(&self.ca_pem, "CERTIFICATE").unwrap_or_else(|| self.cert.der().to_vec())
    }

    /// The CA private key, PKCS#8 PEM, so `generate` can persist it.
    pub fn ca_key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A provider certificate as Apple issues it (PROTOCOL.md 1.9), signed by this CA.
    pub fn issue_provider(&self, spec: &ProviderSpec) -> Result<Identity, CertError> {
        validate_topic(&spec.topic)?;
        for (t, _) in &spec.topics {
            validate_topic(t)?;
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CustomDnType(OID_UID.to_vec()), spec.topic.as_str());
        let cn = spec
            .common_name
            .clone()
            .unwrap_or_else(|| format!("Apple Push Services: {}", spec.topic));
        dn.push(DnType::CommonName, cn);
        dn.push(DnType::OrganizationalUnitName, spec.team_id.as_str());
        dn.push(DnType::OrganizationName, "apnsim");
        dn.push(DnType::CountryName, "US");
        params.distinguished_name = dn;
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.serial_number = Some(random_serial());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        // PROTOCOL.md 1.9: .3.1 sandbox, .3.2 production, both on a universal certificate; DER NULL body.
        let mut envs = spec.environments.clone();
        envs.sort();
        envs.dedup();
        for env in envs {
            let oid = match env {
                Environment::Sandbox => OID_APNS_SANDBOX,
                Environment::Production => OID_APNS_PRODUCTION,
            };
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(oid, der::null()));
        }
        if !spec.topics.is_empty() {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    OID_APNS_TOPICS,
                    topics_extension(&spec.topics),
                ));
        }
        self.sign(params)
    }

    /// The server certificate every listener presents: all Apple host names plus loopback (PROTOCOL.md 1.1, 2.1).
    pub fn issue_server(&self) -> Result<Identity, CertError> {
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "api.push.apple.com");
        dn.push(DnType::OrganizationName, "apnsim");
        params.distinguished_name = dn;
        let mut sans = vec![SanType::DnsName("localhost".try_into()?)];
        for host in APPLE_HOSTS {
            sans.push(SanType::DnsName((*host).try_into()?));
        }
        sans.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        sans.push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        params.subject_alt_names = sans;
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        params.serial_number = Some(random_serial());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Result<Identity, CertError> {
        // ECDSA P-256: accepted by OpenSSL (Node, Python), Java and rustls alike, and fast to generate.
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }
}

fn ca_params() -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "apnsim Test CA");
    dn.push(DnType::OrganizationName, "apnsim");
    params.distinguished_name = dn;
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(7300);
    params.serial_number = Some(random_serial());
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn validate_topic(topic: &str) -> Result<(), CertError> {
    let ok = !topic.is_empty()
        && topic.len() <= MAX_TOPIC_LEN
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(CertError::InvalidTopic(topic.chars().take(64).collect()))
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    // Positive and without a leading zero octet, as RFC 5280 wants.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// Ten uppercase alphanumerics, the shape of Apple key ids and team ids (PROTOCOL.md 2.8).
fn random_apple_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    (0..10)
        .map(|_| {
            let i = rng.gen_range(0..ALPHABET.len());
            char::from(ALPHABET.get(i).copied().unwrap_or(b'A'))
        })
        .collect()
}

fn first_pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let mut reader = std::io::BufReader::new(pem.as_bytes());
    for item in rustls_pemfile::read_all(&mut reader) {
        match (item.ok()?, label) {
            (rustls_pemfile::Item::X509Certificate(c), "CERTIFICATE") => return Some(c.to_vec()),
            (rustls_pemfile::Item::Pkcs8Key(k), "PRIVATE KEY") => {
                return Some(k.secret_pkcs8_der().to_vec())
            }
            _ => {}
        }
    }
    None
}

/// One file written by [`generate`] and why it is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// File name inside the directory.
    pub name: String,
    /// What the file is for.
    pub purpose: String,
}

/// One provider identity written by [`generate`], with every form of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestIdentity {
    /// `production`, `sandbox` or `universal`.
    pub name: String,
    /// Environments the certificate is valid for (its .3.1/.3.2 extensions).
    pub environments: Vec<Environment>,
    /// Topics it may push to (.3.6).
    pub topics: Vec<String>,
    /// Certificate PEM file.
    pub cert: String,
    /// Key PEM file.
    pub key: String,
    /// Certificate + key PEM file.
    pub combined: String,
    /// PKCS#12 file.
    pub p12: String,
}

/// The description of a certificate directory, so users and `serve` know what each file is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The bundle id the provider certificates are for.
    pub topic: String,
    /// JWT `kid` of token-key.p8.
    pub key_id: String,
    /// JWT `iss` that goes with token-key.p8.
    pub team_id: String,
    /// Password of every .p12 file.
    pub p12_password: String,
    /// CA certificate file clients must trust.
    pub ca: String,
    /// Server certificate and key files (stem `server`).
    pub server_cert: String,
    /// Server key file.
    pub server_key: String,
    /// Token key (.p8) file.
    pub token_key: String,
    /// The provider identities.
    pub identities: Vec<ManifestIdentity>,
    /// Every file with its purpose.
    pub files: Vec<ManifestFile>,
}

impl Manifest {
    /// Reads `manifest.json` from a certificate directory.
    pub fn load(dir: &Path) -> Result<Self, CertError> {
        let text = read_string(&dir.join("manifest.json"))?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// Writes a fresh CA, server certificate, provider identities and token key into `dir`, overwriting.
pub fn generate(dir: &Path, topic: &str) -> Result<Manifest, CertError> {
    validate_topic(topic)?;
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let ca = Authority::new_in_memory()?;
    let server = ca.issue_server()?;
    let token = TokenKey::generate()?;
    let ca_der = ca.ca_der();

    let mut files = Vec::new();
    let mut put = |name: &str, bytes: &[u8], private: bool, purpose: &str| {
        write_file(&dir.join(name), bytes, private)?;
        files.push(ManifestFile {
            name: name.to_string(),
            purpose: purpose.to_string(),
        });
        Ok::<(), CertError>(())
    };
    put(
        "ca.pem",
        ca.ca_pem().as_bytes(),
        false,
        "CA certificate: add to the provider's trust store",
    )?;
    put(
        "ca.key",
        ca.ca_key_pem().as_bytes(),
        true,
        "CA private key: lets apnsim issue more identities",
    )?;
    put(
        "server.pem",
        server.cert_pem.as_bytes(),
        false,
        "server certificate for localhost, 127.0.0.1, ::1 and every APNs host name",
    )?;
    put(
        "server.key",
        server.key_pem.as_bytes(),
        true,
        "server private key",
    )?;

    let kinds: [(&str, &[Environment]); 3] = [
        ("production", &[Environment::Production]),
        ("sandbox", &[Environment::Sandbox]),
        (
            "universal",
            &[Environment::Sandbox, Environment::Production],
        ),
    ];
    let mut identities = Vec::new();
    for (name, envs) in kinds {
        let spec = ProviderSpec {
            team_id: token.team_id.clone(),
            ..ProviderSpec::new(topic, envs)
        };
        let id = ca.issue_provider(&spec)?;
        let stem = format!("provider-{name}");
        let what = format!("{name} provider certificate for {topic}");
        put(&format!("{stem}.pem"), id.cert_pem.as_bytes(), false, &what)?;
        put(
            &format!("{stem}.key"),
            id.key_pem.as_bytes(),
            true,
            &format!("{name} provider private key"),
        )?;
        put(
            &format!("{stem}-combined.pem"),
            id.combined_pem().as_bytes(),
            true,
            &format!("{name} provider certificate + key in one PEM"),
        )?;
        put(
            &format!("{stem}.p12"),
            &id.to_pkcs12(P12_PASSWORD, &ca_der)?,
            true,
            &format!("{name} provider identity as PKCS#12 (password {P12_PASSWORD}, CA included)"),
        )?;
        identities.push(ManifestIdentity {
            name: name.to_string(),
            environments: envs.to_vec(),
            topics: spec.topics.iter().map(|(t, _)| t.clone()).collect(),
            cert: format!("{stem}.pem"),
            key: format!("{stem}.key"),
            combined: format!("{stem}-combined.pem"),
            p12: format!("{stem}.p12"),
        });
    }
    put(
        "token-key.p8",
        token.private_pem.as_bytes(),
        true,
        "ES256 provider-token signing key (Apple .p8 format)",
    )?;
    put(
        "token-key.pub.pem",
        token.public_pem.as_bytes(),
        false,
        "public half of token-key.p8",
    )?;

    let mut manifest = Manifest {
        topic: topic.to_string(),
        key_id: token.key_id.clone(),
        team_id: token.team_id.clone(),
        p12_password: P12_PASSWORD.to_string(),
        ca: "ca.pem".into(),
        server_cert: "server.pem".into(),
        server_key: "server.key".into(),
        token_key: "token-key.p8".into(),
        identities,
        files,
    };
    manifest.files.push(ManifestFile {
        name: "manifest.json".into(),
        purpose: "this description".into(),
    });
    let json = serde_json::to_vec_pretty(&manifest)?;
    write_file(&dir.join("manifest.json"), &json, false)?;
    Ok(manifest)
}

/// First-run helper for `serve`: keeps an existing directory (even for another topic), else generates.
pub fn ensure(dir: &Path, topic: &str) -> Result<(Manifest, bool), CertError> {
    let needed = [
        "ca.pem",
        "ca.key",
        "server.pem",
        "server.key",
        "manifest.json",
    ];
    if needed.iter().all(|f| dir.join(f).is_file()) {
        return Ok((Manifest::load(dir)?, false));
    }
    Ok((generate(dir, topic)?, true))
}

fn io_err(path: &Path, source: std::io::Error) -> CertError {
    CertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_string(path: &Path) -> Result<String, CertError> {
    crate::files::read_text(path).map_err(|e| match e {
        crate::files::FileError::Io { source, .. } => io_err(path, source),
        other => io_err(path, std::io::Error::other(other.to_string())),
    })
}

fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), CertError> {
    std::fs::write(path, bytes).map_err(|e| io_err(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if private { 0o600 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_err(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "apnsim-certs-{}-{}-{}",
            name,
            std::process::id(),
            rand::thread_rng().next_u32()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Runs an external tool; `None` (with a notice) when it is not installed.
    fn tool(program: &str, args: &[&str]) -> Option<std::process::Output> {
        match Command::new(program).args(args).output() {
            Ok(out) => Some(out),
            Err(e) => {
                eprintln!("skipping {program} check: {e}");
                None
            }
        }
    }

    fn text(out: &std::process::Output) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    #[test]
    fn generate_writes_every_file_and_a_matching_manifest() {
        let dir = temp_dir("gen");
        let m = generate(&dir, "com.example.app").unwrap();
        for f in &m.files {
            assert!(dir.join(&f.name).is_file(), "{} missing", f.name);
        }
        for name in [
            "ca.pem",
            "ca.key",
            "server.pem",
            "server.key",
            "token-key.p8",
            "token-key.pub.pem",
            "manifest.json",
        ] {
            assert!(m.files.iter().any(|f| f.name == name), "{name} not listed");
        }
        for id in &m.identities {
            for f in [&id.cert, &id.key, &id.combined, &id.p12] {
                assert!(dir.join(f).is_file(), "{f} missing");
            }
        }
        assert_eq!(Manifest::load(&dir).unwrap(), m);
        for id in [&m.key_id, &m.team_id] {
            assert_eq!(id.len(), 10);
            assert!(id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        }
        let envs: Vec<_> = m
            .identities
            .iter()
            .map(|i| (i.name.as_str(), i.environments.clone()))
            .collect();
        assert_eq!(
            envs,
            vec![
                ("production", vec![Environment::Production]),
                ("sandbox", vec![Environment::Sandbox]),
                (
                    "universal",
                    vec![Environment::Sandbox, Environment::Production]
                ),
            ]
        );
        let p8 = std::fs::read_to_string(dir.join("token-key.p8")).unwrap();
        assert!(p8.starts_with("-----BEGIN PRIVATE KEY-----"));
        let combined = std::fs::read_to_string(dir.join("provider-sandbox-combined.pem")).unwrap();
        assert!(combined.contains("BEGIN CERTIFICATE") && combined.contains("BEGIN PRIVATE KEY"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn generate_rejects_bad_topics() {
        let dir = temp_dir("badtopic");
        for t in ["", "has space", "semi;colon", &"a".repeat(300)] {
            assert!(matches!(generate(&dir, t), Err(CertError::InvalidTopic(_))));
        }
        assert!(!dir.exists());
    }

    #[test]
    fn ensure_generates_once_then_keeps() {
        let dir = temp_dir("ensure");
        let (m1, generated1) = ensure(&dir, "com.example.app").unwrap();
        let (m2, generated2) = ensure(&dir, "com.other.app").unwrap();
        assert!(generated1);
        assert!(!generated2);
        assert_eq!(m1, m2);
        std::fs::remove_file(dir.join("server.key")).unwrap();
        let (m3, generated3) = ensure(&dir, "com.other.app").unwrap();
        assert!(generated3);
        assert_eq!(m3.topic, "com.other.app");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn loaded_authority_issues_certs_that_chain_to_the_ca_on_disk() {
        let dir = temp_dir("load");
        generate(&dir, "com.example.app").unwrap();
        let ca = Authority::load(&dir).unwrap();
        assert_eq!(
            ca.ca_pem(),
            std::fs::read_to_string(dir.join("ca.pem")).unwrap()
        );
        let id = ca
            .issue_provider(&ProviderSpec::new(
                "com.second.app",
                &[Environment::Sandbox],
            ))
            .unwrap();
        std::fs::write(dir.join("second.pem"), &id.cert_pem).unwrap();
        let Some(out) = tool(
            "openssl",
            &[
                "verify",
                "-purpose",
                "sslclient",
                "-CAfile",
                dir.join("ca.pem").to_str().unwrap(),
                dir.join("second.pem").to_str().unwrap(),
            ],
        ) else {
            return;
        };
        assert!(out.status.success(), "{}", text(&out));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn authority_refuses_a_key_that_does_not_match_the_ca() {
        let a = Authority::new_in_memory().unwrap();
        let b = Authority::new_in_memory().unwrap();
        assert!(Authority::from_pem(&a.ca_pem(), &a.ca_key_pem()).is_ok());
        assert!(matches!(
            Authority::from_pem(&a.ca_pem(), &b.ca_key_pem()),
            Err(CertError::InvalidCa(_))
        ));
    }

    #[test]
    fn openssl_sees_apple_extensions_sans_and_valid_chains() {
        let dir = temp_dir("openssl");
        generate(&dir, "com.example.app").unwrap();
        let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
        let Some(out) = tool(
            "openssl",
            &[
                "x509",
                "-in",
                &p("provider-universal.pem"),
                "-noout",
                "-text",
            ],
        ) else {
            return;
        };
        let t = text(&out);
        assert!(out.status.success(), "{t}");
        for needle in [
            "1.2.840.113635.100.6.3.1",
            "1.2.840.113635.100.6.3.2",
            "1.2.840.113635.100.6.3.6",
            "UID = com.example.app",
            "CN = Apple Push Services: com.example.app",
            "TLS Web Client Authentication",
            "prime256v1",
        ] {
            assert!(t.contains(needle), "missing {needle} in\n{t}");
        }
        let out = tool(
            "openssl",
            &[
                "x509",
                "-in",
                &p("provider-production.pem"),
                "-noout",
                "-text",
            ],
        )
        .unwrap();
        let t = text(&out);
        assert!(t.contains("1.2.840.113635.100.6.3.2") && !t.contains("1.2.840.113635.100.6.3.1"));
        let out = tool(
            "openssl",
            &["x509", "-in", &p("provider-sandbox.pem"), "-noout", "-text"],
        )
        .unwrap();
        let t = text(&out);
        assert!(t.contains("1.2.840.113635.100.6.3.1") && !t.contains("1.2.840.113635.100.6.3.2"));

        let out = tool(
            "openssl",
            &["x509", "-in", &p("server.pem"), "-noout", "-text"],
        )
        .unwrap();
        let t = text(&out);
        for host in APPLE_HOSTS.iter().chain(&["localhost"]) {
            assert!(t.contains(&format!("DNS:{host}")), "server lacks {host}");
        }
        assert!(t.contains("IP Address:127.0.0.1") && t.contains("IP Address:0:0:0:0:0:0:0:1"));
        assert!(t.contains("TLS Web Server Authentication"));

        let out = tool(
            "openssl",
            &[
                "verify",
                "-purpose",
                "sslserver",
                "-CAfile",
                &p("ca.pem"),
                &p("server.pem"),
            ],
        )
        .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        for env in ["production", "sandbox", "universal"] {
            let out = tool(
                "openssl",
                &[
                    "verify",
                    "-purpose",
                    "sslclient",
                    "-CAfile",
                    &p("ca.pem"),
                    &p(&format!("provider-{env}.pem")),
                ],
            )
            .unwrap();
            assert!(out.status.success(), "{}", text(&out));
        }
        let out = tool(
            "openssl",
            &["pkey", "-in", &p("token-key.p8"), "-noout", "-text"],
        )
        .unwrap();
        assert!(text(&out).contains("prime256v1"), "{}", text(&out));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pkcs12_opens_in_openssl_with_modern_algorithms_only() {
        let dir = temp_dir("p12");
        generate(&dir, "com.example.app").unwrap();
        let p12 = dir.join("provider-universal.p12");
        let p12 = p12.to_str().unwrap();
        let Some(out) = tool(
            "openssl",
            &[
                "pkcs12",
                "-info",
                "-in",
                p12,
                "-passin",
                "pass:apnsim",
                "-noout",
            ],
        ) else {
            return;
        };
        let t = text(&out);
        assert!(out.status.success(), "{t}");
        assert!(t.contains("MAC: sha256"), "{t}");
        assert!(t.contains("PBES2, PBKDF2, AES-256-CBC"), "{t}");
        assert!(!t.contains("RC2") && !t.contains("3DES"), "{t}");
        let out = tool(
            "openssl",
            &[
                "pkcs12",
                "-info",
                "-in",
                p12,
                "-passin",
                "pass:wrong",
                "-noout",
            ],
        )
        .unwrap();
        assert!(!out.status.success());
        // Key and both certificates come back out.
        let out = tool(
            "openssl",
            &["pkcs12", "-in", p12, "-passin", "pass:apnsim", "-nodes"],
        )
        .unwrap();
        let t = text(&out);
        assert!(out.status.success(), "{t}");
        assert_eq!(t.matches("BEGIN CERTIFICATE").count(), 2, "{t}");
        assert!(t.contains("BEGIN PRIVATE KEY"));
        assert!(t.contains("friendlyName: apnsim"));
        let id = Identity::load(&dir, "provider-universal").unwrap();
        let key_line = id.key_pem.lines().nth(1).unwrap();
        assert!(t.contains(key_line), "extracted key differs");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pkcs12_loads_in_node_java_and_python() {
        let dir = temp_dir("p12rt");
        generate(&dir, "com.example.app").unwrap();
        let p12 = dir.join("provider-sandbox.p12");
        let p12 = p12.to_str().unwrap();
        let node = |pass: &str| {
            tool(
                "node",
                &[
                    "-e",
                    &format!(
                        "require('tls').createSecureContext({{pfx: require('fs').readFileSync('{p12}'), passphrase:'{pass}'}})"
                    ),
                ],
            )
        };
        if let Some(out) = node("apnsim") {
            assert!(out.status.success(), "node: {}", text(&out));
            assert!(!node("wrong").unwrap().status.success());
        }
        if let Some(out) = tool(
            "keytool",
            &[
                "-list",
                "-keystore",
                p12,
                "-storetype",
                "PKCS12",
                "-storepass",
                "apnsim",
            ],
        ) {
            let t = text(&out);
            assert!(out.status.success(), "keytool: {t}");
            assert!(t.contains("PrivateKeyEntry"), "keytool: {t}");
        }
        let script = format!(
            "from cryptography.hazmat.primitives.serialization import pkcs12\n\
             k, c, extra = pkcs12.load_key_and_certificates(open('{p12}','rb').read(), b'apnsim')\n\
             print(c.subject.rfc4514_string(), len(extra), k.curve.name)"
        );
        if let Some(out) = tool("python3", &["-c", &script]) {
            let t = text(&out);
            if t.contains("No module named") {
                eprintln!("skipping python check: cryptography not installed");
            } else {
                assert!(out.status.success(), "python: {t}");
                assert!(t.contains("UID=com.example.app"), "python: {t}");
                assert!(t.contains(" 1 secp256r1"), "python: {t}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn token_key_signs_and_verifies_es256() {
        use ring::signature::{self, KeyPair as _};
        let key = TokenKey::generate().unwrap();
        let rng = ring::rand::SystemRandom::new();
        let pair = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.private_der,
            &rng,
        )
        .unwrap();
        assert_eq!(pair.public_key().as_ref(), key.public_raw.as_slice());
        let sig = pair.sign(&rng, b"header.claims").unwrap();
        let public =
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &key.public_raw);
        assert!(public.verify(b"header.claims", sig.as_ref()).is_ok());
        assert!(public.verify(b"header.claimz", sig.as_ref()).is_err());
        assert!(key.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    #[test]
    fn aes256_cbc_matches_nist_sp800_38a() {
        let key: [u8; 32] =
            hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .unwrap()
                .try_into()
                .unwrap();
        let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
            .unwrap()
            .try_into()
            .unwrap();
        let plain = hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
            .unwrap();
        let out = pkcs12::aes256_cbc_encrypt(&key, &iv, &plain);
        assert_eq!(out.len(), 48, "a full padding block follows aligned input");
        assert_eq!(
            hex::encode(&out[..32]),
            "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
        );
    }

    #[test]
    fn der_encodes_oids_integers_and_long_lengths() {
        assert_eq!(
            hex::encode(der::oid(&[2, 16, 840, 1, 101, 3, 4, 2, 1])),
            "0609608648016503040201"
        );
        assert_eq!(hex::encode(der::uint(3)), "020103");
        assert_eq!(hex::encode(der::uint(2048)), "02020800");
        assert_eq!(hex::encode(der::uint(128)), "02020080");
        assert_eq!(hex::encode(der::uint(0)), "020100");
        let long = der::octets(&[0u8; 300]);
        assert_eq!(hex::encode(&long[..4]), "0482012c");
        assert_eq!(
            hex::encode(topics_extension(&[("a".into(), "app".into())])),
            "300a0c01613005 0c03617070".replace(' ', "")
        );
    }
}
