//! Ticket codes: what a ticket's QR code carries, signed with Ed25519 so that a scanner
//! can check it offline with the public keys alone (`GET /v1/keys`).
//!
//! A code is four parts joined by dots, all URL-safe:
//!
//! ```text
//! T1.<key id>.<claims>.<signature>
//! ```
//!
//! - `T1`: the format;
//! - the key id: which key signed it, so keys can rotate (1-32 of `A-Z a-z 0-9 _ -`);
//! - the claims, base64url without padding, 36 bytes: the ticket id (16), the show id
//!   (16), the code's generation (4, big-endian; one more per transfer);
//! - the Ed25519 signature (64 bytes, base64url without padding) of the ASCII text
//!   `T1.<key id>.<claims>`.
//!
//! Keys come from `TICKET_SIGNING_KEYS` as `kid=<base64url 32-byte seed>` entries,
//! comma separated: the first signs new codes, the others only verify (the codes they
//! signed stay valid until their key is removed: retired).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::Serialize;
use ticketing_domain::{ShowId, TicketId};
use uuid::Uuid;

/// The format tag every code starts with.
pub const FORMAT: &str = "T1";
const CLAIMS_LEN: usize = 36;

/// What a code says about its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketClaims {
    pub ticket_id: TicketId,
    pub show_id: ShowId,
    pub generation: u32,
}

impl TicketClaims {
    fn to_bytes(self) -> [u8; CLAIMS_LEN] {
        let mut bytes = [0u8; CLAIMS_LEN];
        bytes[..16].copy_from_slice(self.ticket_id.0.as_bytes());
        bytes[16..32].copy_from_slice(self.show_id.0.as_bytes());
        bytes[32..].copy_from_slice(&self.generation.to_be_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != CLAIMS_LEN {
            return None;
        }
        let uuid = |range: std::ops::Range<usize>| Uuid::from_slice(&bytes[range]).ok();
        Some(Self {
            ticket_id: TicketId(uuid(0..16)?),
            show_id: ShowId(uuid(16..32)?),
            generation: u32::from_be_bytes(bytes[32..].try_into().ok()?),
        })
    }
}

/// Why a code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("not a ticket code")]
    Malformed,
    /// Signed by a key this deployment does not know (never had, or retired).
    #[error("the code's key {0:?} is unknown or retired")]
    UnknownKey(String),
    #[error("the code's signature does not match")]
    BadSignature,
}

/// Why the configured keys are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid TICKET_SIGNING_KEYS: {0}")]
pub struct InvalidKeys(String);

/// One key: its id, the private half (to sign) and the public one (to verify).
#[derive(Clone)]
struct Key {
    id: String,
    signing: SigningKey,
}

/// The keys that sign and verify ticket codes.
#[derive(Clone)]
pub struct TicketKeys {
    /// The first signs; all verify.
    keys: Vec<Key>,
}

impl fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("TicketKeys").field("key_ids", &ids).finish()
    }
}

/// A public key as a JSON Web Key (RFC 8037, `OKP` / `Ed25519`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicJwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub usage: &'static str,
    pub kid: String,
    /// The public key, base64url without padding.
    pub x: String,
}

fn valid_key_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl TicketKeys {
    /// Keys from 32-byte seeds, the first signing: `(key id, seed)`.
    ///
    /// # Errors
    /// [`InvalidKeys`] when there is none, a key id is not 1-32 of `A-Z a-z 0-9 _ -`,
    /// or two keys share an id.
    pub fn from_seeds(seeds: &[(&str, [u8; 32])]) -> Result<Self, InvalidKeys> {
        if seeds.is_empty() {
            return Err(InvalidKeys("no key".into()));
        }
        let mut keys: Vec<Key> = Vec::with_capacity(seeds.len());
        for (id, seed) in seeds {
            if !valid_key_id(id) {
                return Err(InvalidKeys(format!(
                    "key id {id:?} must be 1-32 of A-Z a-z 0-9 _ -"
                )));
            }
            if keys.iter().any(|k| k.id == *id) {
                return Err(InvalidKeys(format!("key id {id:?} appears twice")));
            }
            keys.push(Key {
                id: (*id).to_owned(),
                signing: SigningKey::from_bytes(seed),
            });
        }
        Ok(Self { keys })
    }

    /// Parses `kid=<base64url seed>[,kid=<seed>...]`, the first signing.
    ///
    /// # Errors
    /// [`InvalidKeys`] naming the entry that is not a key id and a 32-byte seed in
    /// base64url (or standard base64).
    pub fn parse(text: &str) -> Result<Self, InvalidKeys> {
        let mut seeds = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, seed) = entry.split_once('=').ok_or_else(|| {
                InvalidKeys(format!("entry {} is not kid=<seed>", seeds.len() + 1))
            })?;
            let seed = seed.trim().trim_end_matches('=');
            let bytes = URL_SAFE_NO_PAD
                .decode(seed)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(seed))
                .map_err(|_| InvalidKeys(format!("the seed of key {id:?} is not base64")))?;
            let seed: [u8; 32] = bytes
                .try_into()
                .map_err(|_| InvalidKeys(format!("the seed of key {id:?} must be 32 bytes")))?;
            seeds.push((id.trim().to_owned(), seed));
        }
        let seeds: Vec<(&str, [u8; 32])> = seeds.iter().map(|(id, s)| (id.as_str(), *s)).collect();
        Self::from_seeds(&seeds)
    }

    /// A new random seed in the form [`TicketKeys::parse`] reads, for `ticketing keygen`.
    pub fn generate_seed() -> String {
        let seed: [u8; 32] = rand::random();
        URL_SAFE_NO_PAD.encode(seed)
    }

    /// The id of the key that signs new codes.
    pub fn signing_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// The code of a ticket, signed with the first key.
    pub fn sign(&self, claims: TicketClaims) -> String {
        let key = &self.keys[0];
        let signed = format!(
            "{FORMAT}.{}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(claims.to_bytes())
        );
        let signature = key.signing.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// What a code says, once its signature is checked against the key it names.
    ///
    /// # Errors
    /// [`CodeError`]: not a code, an unknown or retired key, a signature that does not
    /// match (a code altered in any byte).
    pub fn verify(&self, code: &str) -> Result<TicketClaims, CodeError> {
        let parsed = ParsedCode::parse(code)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == parsed.key_id)
            .ok_or_else(|| CodeError::UnknownKey(parsed.key_id.to_owned()))?;
        parsed.check(&key.signing.verifying_key())
    }

    /// The public keys, as a JWK set's `keys`: what a scanner verifies codes with.
    pub fn public_keys(&self) -> Vec<PublicJwk> {
        self.keys
            .iter()
            .map(|key| PublicJwk {
                kty: "OKP",
                crv: "Ed25519",
                alg: "EdDSA",
                usage: "sig",
                kid: key.id.clone(),
                x: URL_SAFE_NO_PAD.encode(key.signing.verifying_key().as_bytes()),
            })
            .collect()
    }
}

/// A code split into its parts, its signature not checked yet.
struct ParsedCode<'a> {
    key_id: &'a str,
    signed: &'a str,
    claims: TicketClaims,
    signature: Signature,
}

impl<'a> ParsedCode<'a> {
    fn parse(code: &'a str) -> Result<Self, CodeError> {
        let (signed, signature) = code.trim().rsplit_once('.').ok_or(CodeError::Malformed)?;
        let mut parts = signed.split('.');
        let (Some(FORMAT), Some(key_id), Some(claims), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CodeError::Malformed);
        };
        if !valid_key_id(key_id) {
            return Err(CodeError::Malformed);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or(CodeError::Malformed)?;
        let claims = URL_SAFE_NO_PAD
            .decode(claims)
            .ok()
            .and_then(|bytes| TicketClaims::from_bytes(&bytes))
            .ok_or(CodeError::Malformed)?;
        Ok(Self {
            key_id,
            signed,
            claims,
            signature,
        })
    }

    fn check(self, key: &VerifyingKey) -> Result<TicketClaims, CodeError> {
        key.verify_strict(self.signed.as_bytes(), &self.signature)
            .map_err(|_| CodeError::BadSignature)?;
        Ok(self.claims)
    }
}

/// Checks a code against a public key alone, as an offline scanner does: the
/// signature over `T1.<kid>.<claims>` with the JWK's `x`.
///
/// # Errors
/// [`CodeError`] as [`TicketKeys::verify`].
pub fn verify_with_public_key(code: &str, jwk: &PublicJwk) -> Result<TicketClaims, CodeError> {
    let parsed = ParsedCode::parse(code)?;
    if parsed.key_id != jwk.kid {
        return Err(CodeError::UnknownKey(parsed.key_id.to_owned()));
    }
    let public: [u8; 32] = URL_SAFE_NO_PAD
        .decode(&jwk.x)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(CodeError::Malformed)?;
    let key = VerifyingKey::from_bytes(&public).map_err(|_| CodeError::Malformed)?;
    parsed.check(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ids: &[(&str, u8)]) -> TicketKeys {
        let seeds: Vec<(&str, [u8; 32])> = ids.iter().map(|(id, b)| (*id, [*b; 32])).collect();
        TicketKeys::from_seeds(&seeds).unwrap()
    }

    fn claims() -> TicketClaims {
        TicketClaims {
            ticket_id: TicketId::new(),
            show_id: ShowId::new(),
            generation: 2,
        }
    }

    #[test]
    fn a_signed_code_verifies_to_its_claims() {
        let keys = keys(&[("k1", 1)]);
        let claims = claims();
        let code = keys.sign(claims);
        assert!(code.starts_with("T1.k1."), "{code}");
        assert_eq!(keys.verify(&code), Ok(claims));
        // Deterministic: the same ticket shows the same code every time.
        assert_eq!(keys.sign(claims), code);
    }

    #[test]
    fn a_code_altered_in_any_byte_is_refused() {
        let keys = keys(&[("k1", 1)]);
        let code = keys.sign(claims());
        for index in 0..code.len() {
            let mut bytes = code.clone().into_bytes();
            bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered == code {
                continue;
            }
            assert!(keys.verify(&altered).is_err(), "byte {index} of {altered}");
        }
    }

    #[test]
    fn a_code_signed_by_an_unknown_key_is_refused() {
        let ours = keys(&[("k1", 1)]);
        let theirs = keys(&[("k1", 9)]);
        assert_eq!(
            ours.verify(&theirs.sign(claims())),
            Err(CodeError::BadSignature)
        );
        let other_id = keys(&[("k9", 1)]);
        assert_eq!(
            ours.verify(&other_id.sign(claims())),
            Err(CodeError::UnknownKey("k9".into()))
        );
    }

    #[test]
    fn rotation_keeps_old_codes_valid_until_their_key_is_retired() {
        let before = keys(&[("k1", 1)]);
        let old_code = before.sign(claims());
        let rotated = keys(&[("k2", 2), ("k1", 1)]);
        assert_eq!(rotated.signing_key_id(), "k2");
        assert!(rotated.verify(&old_code).is_ok());
        assert!(rotated.sign(claims()).starts_with("T1.k2."));
        let retired = keys(&[("k2", 2)]);
        assert_eq!(
            retired.verify(&old_code),
            Err(CodeError::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn an_offline_scanner_verifies_with_the_public_key_alone() {
        let keys = keys(&[("k1", 1)]);
        let claims = claims();
        let code = keys.sign(claims);
        let jwk = &keys.public_keys()[0];
        assert_eq!(
            serde_json::to_value(jwk).unwrap()["use"],
            serde_json::json!("sig")
        );
        assert_eq!(verify_with_public_key(&code, jwk), Ok(claims));
        let forged = code.replace("T1.k1.", "T1.k1.A");
        assert!(verify_with_public_key(&forged, jwk).is_err());
    }

    #[test]
    fn configuration_is_parsed_and_checked() {
        let seed = TicketKeys::generate_seed();
        let keys = TicketKeys::parse(&format!("new={seed}, old={seed}")).unwrap();
        assert_eq!(keys.signing_key_id(), "new");
        assert_eq!(keys.public_keys().len(), 2);
        for bad in [
            "",
            "k1",
            "k1=notbase64!!",
            "k1=AAAA",
            &format!("bad id={seed}"),
            &format!("k1={seed},k1={seed}"),
        ] {
            assert!(TicketKeys::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let keys = keys(&[("k1", 1)]);
        for garbage in [
            "",
            ".",
            "T1...",
            "T1.k1.AAAA.BBBB",
            "x.y.z.w",
            "T1.k1.#.#",
            "🎟️",
        ] {
            assert!(keys.verify(garbage).is_err(), "{garbage:?}");
        }
    }
}
