//! Bearer tokens: the ones given on the command line, or HS256 tokens minted the way
//! `ticketing token` mints them, with `JWT_HS256_SECRET` or else the development
//! secret that `ticketing serve` keeps in `.ticketing-dev-secret` in its working
//! directory.

use std::path::Path;

use anyhow::{bail, Context};
use ticketing_api::auth::mint_hs256;
use ticketing_api::Role;

/// Where `ticketing serve` keeps its development secret (see `ticketing_cli::dev_secret`).
pub const DEV_SECRET_FILE: &str = ".ticketing-dev-secret";

/// How long minted tokens stay valid: longer than the longest run (an hour) and its
/// set-up and checks.
const TOKEN_LIFETIME_HOURS: i64 = 2;

/// The subject of the minted organizer token.
pub const ORGANIZER_SUBJECT: &str = "loadtest-organizer";

/// The secret the server verifies tokens with, as `ticketing token` finds it. Unlike
/// `ticketing token`, never creates the file: a secret the server does not know would
/// only earn 401s.
///
/// # Errors
/// When neither `JWT_HS256_SECRET` nor a readable development secret is there.
pub fn signing_secret(dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(secret) = std::env::var("JWT_HS256_SECRET") {
        if !secret.trim().is_empty() {
            return Ok(secret.into_bytes());
        }
    }
    let path = dir.join(DEV_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => bail!("{} is too short to be a signing secret", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no token to send: pass --organizer-token/--customer-token, set JWT_HS256_SECRET, \
             or run from the directory where `ticketing serve` keeps {DEV_SECRET_FILE}"
        ),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Mints a token for `subject` with `role`.
///
/// # Errors
/// When signing fails (it does not for a byte secret).
pub fn mint(secret: &[u8], subject: &str, role: Role) -> anyhow::Result<String> {
    mint_hs256(
        secret,
        subject,
        role,
        chrono::TimeDelta::hours(TOKEN_LIFETIME_HOURS),
    )
    .context("signing a token")
}

/// The subject of buyer `index`'s minted customer token.
pub fn buyer_subject(index: u32) -> String {
    format!("loadtest-buyer-{index}")
}
