//! Prints one APNs provider token (ES256 JWT, issued now) signed with the `token-key.p8` of a
//! certificate directory, so load generators that cannot sign can send `authorization: bearer …`.
//!
//! `cargo run --release --example sign-jwt -- [--der] certs/`
//!
//! `--der` signs the way Apple's openssl recipe does (`openssl dgst -sha256 -sign`: an ASN.1 DER
//! signature, not JOSE's r‖s): Pushy's MockApnsServer verifies only that form; apnsim takes both.

use apnsim::certs::TokenKey;
use apnsim::http2::auth::{sign_jwt, SignatureForm};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let der = args.iter().any(|a| a == "--der");
    args.retain(|a| a != "--der");
    let form = if der {
        SignatureForm::Der
    } else {
        SignatureForm::Raw
    };
    let dir = PathBuf::from(args.first().cloned().unwrap_or_else(|| "certs".into()));
    let key = match TokenKey::load(&dir) {
        Ok(k) => k,
        Err(e) => {
            eprintln!(
                "sign-jwt: cannot load the token key from {}: {e}",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match sign_jwt(&key.private_pem, &key.key_id, &key.team_id, iat, form) {
        Ok(jwt) => {
            println!("{jwt}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sign-jwt: {e}");
            ExitCode::FAILURE
        }
    }
}
