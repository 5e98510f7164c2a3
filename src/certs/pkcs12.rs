//! PKCS#12 (RFC 7292) writer limited to the modern profile OpenSSL 3 writes by default:
//! PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for both bags and an HMAC-SHA256 MAC.

use super::{der, CertError};
use rand::RngCore;
use std::num::NonZeroU32;

const ITERATIONS: u32 = 2048;
const OID_DATA: &[u64] = &[1, 2, 840, 113_549, 1, 7, 1];
const OID_ENCRYPTED_DATA: &[u64] = &[1, 2, 840, 113_549, 1, 7, 6];
const OID_SHROUDED_KEY_BAG: &[u64] = &[1, 2, 840, 113_549, 1, 12, 10, 1, 2];
const OID_CERT_BAG: &[u64] = &[1, 2, 840, 113_549, 1, 12, 10, 1, 3];
const OID_X509_CERT: &[u64] = &[1, 2, 840, 113_549, 1, 9, 22, 1];
const OID_FRIENDLY_NAME: &[u64] = &[1, 2, 840, 113_549, 1, 9, 20];
const OID_LOCAL_KEY_ID: &[u64] = &[1, 2, 840, 113_549, 1, 9, 21];
const OID_PBES2: &[u64] = &[1, 2, 840, 113_549, 1, 5, 13];
const OID_PBKDF2: &[u64] = &[1, 2, 840, 113_549, 1, 5, 12];
const OID_HMAC_SHA256: &[u64] = &[1, 2, 840, 113_549, 2, 9];
const OID_AES256_CBC: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 1, 42];
const OID_SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];

/// A PFX holding one key, its certificate (with friendlyName and localKeyId) and the chain.
pub(super) fn build(
    key_pkcs8: &[u8],
    cert: &[u8],
    chain: &[&[u8]],
    password: &str,
    friendly_name: &str,
) -> Result<Vec<u8>, CertError> {
    let local_key_id = ring::digest::digest(&ring::digest::SHA256, cert);
    let attrs = der::set_of(vec![
        der::seq(
            &[
                der::oid(OID_FRIENDLY_NAME),
                der::set_of(vec![der::bmp(friendly_name)]),
            ]
            .concat(),
        ),
        der::seq(
            &[
                der::oid(OID_LOCAL_KEY_ID),
                der::set_of(vec![der::octets(local_key_id.as_ref())]),
            ]
            .concat(),
        ),
    ]);

    let mut cert_bags = cert_bag(cert, Some(&attrs));
    for c in chain {
        cert_bags.extend(cert_bag(c, None));
    }
    let (alg, ciphertext) = pbes2_encrypt(&der::seq(&cert_bags), password)?;
    let encrypted_data = der::seq(
        &[
            der::uint(0),
            der::seq(
                &[
                    der::oid(OID_DATA),
                    alg,
                    der::implicit_primitive(0, &ciphertext),
                ]
                .concat(),
            ),
        ]
        .concat(),
    );
    let certs_ci = der::seq(
        &[
            der::oid(OID_ENCRYPTED_DATA),
            der::explicit(0, &encrypted_data),
        ]
        .concat(),
    );

    let (alg, ciphertext) = pbes2_encrypt(key_pkcs8, password)?;
    let epki = der::seq(&[alg, der::octets(&ciphertext)].concat());
    let key_bag = der::seq(
        &[
            der::oid(OID_SHROUDED_KEY_BAG),
            der::explicit(0, &epki),
            attrs,
        ]
        .concat(),
    );
    let key_ci = der::seq(
        &[
            der::oid(OID_DATA),
            der::explicit(0, &der::octets(&der::seq(&key_bag))),
        ]
        .concat(),
    );

    let auth_safe = der::seq(&[certs_ci, key_ci].concat());

    let mut mac_salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut mac_salt);
    let mac_key = pkcs12_kdf_sha256(password, &mac_salt, 3, ITERATIONS);
    let hkey = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &mac_key);
    let mac = ring::hmac::sign(&hkey, &auth_safe);
    let mac_data = der::seq(
        &[
            der::seq(
                &[
                    der::seq(&[der::oid(OID_SHA256), der::null()].concat()),
                    der::octets(mac.as_ref()),
                ]
                .concat(),
            ),
            der::octets(&mac_salt),
            der::uint(u64::from(ITERATIONS)),
        ]
        .concat(),
    );

    Ok(der::seq(
        &[
            der::uint(3),
            der::seq(
                &[
                    der::oid(OID_DATA),
                    der::explicit(0, &der::octets(&auth_safe)),
                ]
                .concat(),
            ),
            mac_data,
        ]
        .concat(),
    ))
}

fn cert_bag(cert: &[u8], attrs: Option<&[u8]>) -> Vec<u8> {
    let bag_value = der::seq(
        &[
            der::oid(OID_X509_CERT),
            der::explicit(0, &der::octets(cert)),
        ]
        .concat(),
    );
    let mut content = [der::oid(OID_CERT_BAG), der::explicit(0, &bag_value)].concat();
    if let Some(a) = attrs {
        content.extend_from_slice(a);
    }
    der::seq(&content)
}

/// Encrypts with PBES2; returns (AlgorithmIdentifier DER, ciphertext).
pub(super) fn pbes2_encrypt(plain: &[u8], password: &str) -> Result<(Vec<u8>, Vec<u8>), CertError> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    rand::thread_rng().fill_bytes(&mut iv);
    let iterations =
        NonZeroU32::new(ITERATIONS).ok_or_else(|| CertError::Pkcs12("iterations".into()))?;
    let mut key = [0u8; 32];
    // PKCS#5 PBES2 takes the password as raw (UTF-8) octets, unlike the PKCS#12 KDF below.
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut key,
    );
    let ciphertext = aes256_cbc_encrypt(&key, &iv, plain);
    let kdf = der::seq(
        &[
            der::oid(OID_PBKDF2),
            der::seq(
                &[
                    der::octets(&salt),
                    der::uint(u64::from(ITERATIONS)),
                    der::seq(&[der::oid(OID_HMAC_SHA256), der::null()].concat()),
                ]
                .concat(),
            ),
        ]
        .concat(),
    );
    let scheme = der::seq(&[der::oid(OID_AES256_CBC), der::octets(&iv)].concat());
    let alg = der::seq(&[der::oid(OID_PBES2), der::seq(&[kdf, scheme].concat())].concat());
    Ok((alg, ciphertext))
}

/// AES-256-CBC with PKCS#7 padding (RustCrypto `cbc`, not a hand-rolled mode).
pub(super) fn aes256_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
    cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plain)
}

/// RFC 7292 appendix B key derivation with SHA-256 (u = 32, v = 64), producing one 32-byte block.
pub(super) fn pkcs12_kdf_sha256(password: &str, salt: &[u8], id: u8, iterations: u32) -> [u8; 32] {
    const V: usize = 64;
    // BMPString password with a terminating NUL, as RFC 7292 B.1 requires.
    let mut pw: Vec<u8> = password
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    pw.extend([0, 0]);
    let stretch = |src: &[u8]| -> Vec<u8> {
        if src.is_empty() {
            return Vec::new();
        }
        let len = src.len().div_ceil(V) * V;
        src.iter().cycle().take(len).copied().collect()
    };
    let mut input = vec![id; V];
    input.extend(stretch(salt));
    input.extend(stretch(&pw));
    let mut a = ring::digest::digest(&ring::digest::SHA256, &input);
    for _ in 1..iterations {
        a = ring::digest::digest(&ring::digest::SHA256, a.as_ref());
    }
    a.as_ref().try_into().unwrap_or([0u8; 32])
}
