//! The development signing secret of the embedded default.
//!
//! With no `JWT_HS256_SECRET` or `JWT_RS256_PUBLIC_KEY` configured, `ticketing serve`
//! verifies tokens with a random secret kept in `.ticketing-dev-secret` in the working
//! directory (created on first use, readable by its owner only), and `ticketing token`
//! signs with the same file. Nothing secret is ever built into the binary.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand::RngCore;
use sha2::{Digest, Sha256};
use ticketing_app::TicketKeys;

/// Where the development secret is kept.
pub const DEV_SECRET_FILE: &str = ".ticketing-dev-secret";

/// The configured HS256 secret, or else the development one (created if missing).
///
/// # Errors
/// When the development secret file cannot be read or written.
pub fn signing_secret(dir: &Path) -> anyhow::Result<(Vec<u8>, bool)> {
    if let Ok(secret) = std::env::var("JWT_HS256_SECRET") {
        if !secret.trim().is_empty() {
            return Ok((secret.into_bytes(), false));
        }
    }
    Ok((development_secret(dir)?, true))
}

/// The ticket signing key of the embedded default (key id `dev`), derived from the
/// development secret in `dir`: codes stay valid across restarts in one directory.
///
/// # Errors
/// When the development secret cannot be read or created.
pub fn development_ticket_keys(dir: &Path) -> anyhow::Result<TicketKeys> {
    let secret = development_secret(dir)?;
    let mut hasher = Sha256::new();
    hasher.update(b"ticketing ticket signing key\n");
    hasher.update(&secret);
    let seed: [u8; 32] = hasher.finalize().into();
    Ok(TicketKeys::from_seeds(&[("dev", seed)])?)
}

/// Reads the development secret in `dir`, creating it first if needed.
///
/// # Errors
/// When the file cannot be read or written.
pub fn development_secret(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = dir.join(DEV_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => anyhow::bail!(
            "{} is too short to be a signing secret; delete it to get a new one",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(secret.into_bytes())
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => development_secret(dir),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}
