//! Who is calling: a bearer JWT with a subject and a role.
//!
//! Two sources, chosen per request:
//! - behind API Gateway, the HTTP API's JWT authorizer has already verified the token,
//!   and its claims arrive in the Lambda request context: they are used as they are;
//! - anywhere else (the local server, tests), the `Authorization: Bearer` token is
//!   verified here with the configured HS256 secret or RS256 public key. Only that one
//!   algorithm is accepted (so `alg: none` and algorithm confusion are refused), and
//!   `exp` is required.
//!
//! The request context is an extension that only the Lambda runtime adapter can set:
//! a plain HTTP client cannot forge it.

use std::collections::HashMap;
use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use serde::{Deserialize, Serialize};
use ticketing_domain::{CustomerId, OrganizerId};

use crate::{ApiError, ApiState};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Creates and manages its own shows.
    Organizer,
    /// Buys tickets; sees and pays its own reservations.
    Customer,
    /// Everything.
    Admin,
    /// Checks tickets in at the doors of one organizer's shows (named by the token's
    /// `org` claim).
    Scanner,
}

impl Role {
    fn parse(value: &str) -> Option<Role> {
        match value.trim().to_ascii_lowercase().as_str() {
            "organizer" => Some(Role::Organizer),
            "customer" => Some(Role::Customer),
            "admin" => Some(Role::Admin),
            "scanner" => Some(Role::Scanner),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub subject: String,
    pub roles: Vec<Role>,
    /// The organizer a scanner works for: the token's `org` claim.
    pub organization: Option<String>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// # Errors
    /// 403 unless the caller has one of `roles` (admins always pass).
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.is_admin() || roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the role {}",
                describe(roles)
            )))
        }
    }

    /// The caller as a customer id.
    ///
    /// # Errors
    /// 401 when the subject is not a valid id.
    pub fn customer_id(&self) -> Result<CustomerId, ApiError> {
        CustomerId::parse(&self.subject).map_err(|e| ApiError::unauthorized(e.to_string()))
    }

    /// The caller as an organizer id.
    ///
    /// # Errors
    /// 401 when the subject is not a valid id.
    pub fn organizer_id(&self) -> Result<OrganizerId, ApiError> {
        OrganizerId::parse(&self.subject).map_err(|e| ApiError::unauthorized(e.to_string()))
    }
}

fn describe(roles: &[Role]) -> String {
    let names: Vec<_> = roles
        .iter()
        .map(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect();
    names.join(" or ")
}

/// The claims this service reads and, for development tokens, writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Seconds since the epoch.
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<serde_json::Value>,
    /// For a scanner: the organizer whose shows it checks tickets in for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// The key that verifies tokens locally.
#[derive(Clone)]
pub enum VerificationKey {
    /// A shared secret (HS256).
    Hs256Secret(Vec<u8>),
    /// An RSA public key in PEM (RS256).
    Rs256PublicKeyPem(String),
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hs256Secret(_) => f.write_str("Hs256Secret(***)"),
            Self::Rs256PublicKeyPem(_) => f.write_str("Rs256PublicKeyPem(..)"),
        }
    }
}

/// How tokens are verified.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// `None`: only claims from API Gateway's authorizer are accepted.
    pub key: Option<VerificationKey>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// Verifies callers. Built once at start-up.
pub struct Authenticator {
    verifier: Option<(DecodingKey, Validation)>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("local_verification", &self.verifier.is_some())
            .finish()
    }
}

/// Why the authentication configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[error("invalid JWT verification key: {0}")]
pub struct InvalidKey(String);

impl Authenticator {
    /// # Errors
    /// [`InvalidKey`] when the RS256 key is not a PEM RSA public key, or the secret is
    /// shorter than 32 bytes.
    pub fn new(config: &AuthConfig) -> Result<Self, InvalidKey> {
        let verifier = match &config.key {
            None => None,
            Some(key) => {
                let (decoding, algorithm) = match key {
                    VerificationKey::Hs256Secret(secret) if secret.len() < 32 => {
                        return Err(InvalidKey("an HS256 secret needs at least 32 bytes".into()))
                    }
                    VerificationKey::Hs256Secret(secret) => {
                        (DecodingKey::from_secret(secret), Algorithm::HS256)
                    }
                    VerificationKey::Rs256PublicKeyPem(pem) => (
                        DecodingKey::from_rsa_pem(pem.as_bytes())
                            .map_err(|e| InvalidKey(e.to_string()))?,
                        Algorithm::RS256,
                    ),
                };
                let mut validation = Validation::new(algorithm);
                // A configured issuer or audience must be present, not only match when
                // present.
                let mut required = vec!["exp", "sub"];
                required.extend(config.issuer.as_ref().map(|_| "iss"));
                required.extend(config.audience.as_ref().map(|_| "aud"));
                validation.set_required_spec_claims(&required);
                validation.leeway = 30;
                match &config.issuer {
                    Some(issuer) => validation.set_issuer(&[issuer]),
                    None => validation.iss = None,
                }
                match &config.audience {
                    Some(audience) => validation.set_audience(&[audience]),
                    None => validation.validate_aud = false,
                }
                Some((decoding, validation))
            }
        };
        Ok(Self { verifier })
    }

    /// Who sent the request.
    ///
    /// # Errors
    /// 401 when there are no claims from the gateway and no valid bearer token.
    pub fn authenticate(&self, parts: &Parts) -> Result<Principal, ApiError> {
        if let Some(claims) = gateway_claims(parts) {
            return principal_from(
                claims.get("sub").cloned(),
                claims.get("role").cloned(),
                claims
                    .get("roles")
                    .map(|r| serde_json::Value::String(r.clone())),
                claims.get("org").cloned(),
            );
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("send a bearer token in the Authorization header")
            })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        let (key, validation) = self.verifier.as_ref().ok_or_else(|| {
            ApiError::unauthorized(
                "this deployment accepts only tokens verified by its API gateway",
            )
        })?;
        let data = decode::<Claims>(token, key, validation).map_err(|e| {
            tracing::debug!(error = %e, "token refused");
            ApiError::unauthorized(format!("invalid token: {e}"))
        })?;
        principal_from(
            Some(data.claims.sub),
            data.claims.role,
            data.claims.roles,
            data.claims.org,
        )
    }
}

/// The claims that API Gateway's JWT authorizer verified, if this request came that way.
fn gateway_claims(parts: &Parts) -> Option<&HashMap<String, String>> {
    match parts.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => {
            Some(&context.authorizer.as_ref()?.jwt.as_ref()?.claims)
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Roles from a `role` claim and/or a `roles` claim, which may be an array, or a
/// string as API Gateway flattens arrays (`"[organizer admin]"`, `"organizer,admin"`).
fn principal_from(
    subject: Option<String>,
    role: Option<String>,
    roles: Option<serde_json::Value>,
    organization: Option<String>,
) -> Result<Principal, ApiError> {
    let subject = subject
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::unauthorized("the token has no subject"))?;
    let mut names: Vec<String> = role.into_iter().collect();
    match roles {
        Some(serde_json::Value::Array(items)) => {
            names.extend(
                items
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_owned)),
            );
        }
        Some(serde_json::Value::String(text)) => names.extend(
            text.trim_matches(|c| c == '[' || c == ']')
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_matches('"').to_owned()),
        ),
        _ => {}
    }
    let mut roles: Vec<Role> = names.iter().filter_map(|n| Role::parse(n)).collect();
    roles.sort_by_key(|r| *r as u8);
    roles.dedup();
    if roles.is_empty() {
        return Err(ApiError::unauthorized(
            "the token grants no known role (organizer, customer, admin, scanner)",
        ));
    }
    Ok(Principal {
        subject,
        roles,
        organization: organization.filter(|o| !o.is_empty()),
    })
}

impl FromRequestParts<ApiState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        state.authenticator.authenticate(parts)
    }
}

/// The caller, found to be an organizer (or an admin). Extracted with the request's
/// head, before its body: a caller without the role is answered 403 whatever it sent.
#[derive(Debug, Clone)]
pub struct AsOrganizer(pub Principal);

/// The caller, found to be a customer (or an admin), before the body is read; see
/// [`AsOrganizer`].
#[derive(Debug, Clone)]
pub struct AsCustomer(pub Principal);

macro_rules! role_extractor {
    ($extractor:ident, $role:expr) => {
        impl FromRequestParts<ApiState> for $extractor {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &ApiState,
            ) -> Result<Self, Self::Rejection> {
                let principal = state.authenticator.authenticate(parts)?;
                principal.require(&[$role])?;
                Ok(Self(principal))
            }
        }
    };
}

role_extractor!(AsOrganizer, Role::Organizer);
role_extractor!(AsCustomer, Role::Customer);

/// Signs a development token (HS256): what `ticketing token` prints.
///
/// # Errors
/// When the secret cannot sign (it always can for a byte secret).
pub fn mint_hs256(
    secret: &[u8],
    subject: &str,
    role: Role,
    valid_for: chrono::TimeDelta,
) -> Result<String, jsonwebtoken::errors::Error> {
    mint(secret, subject, role, None, valid_for)
}

/// Signs a development token (HS256) for a scanner of `organization`'s shows.
///
/// # Errors
/// As [`mint_hs256`].
pub fn mint_scanner_hs256(
    secret: &[u8],
    subject: &str,
    organization: &str,
    valid_for: chrono::TimeDelta,
) -> Result<String, jsonwebtoken::errors::Error> {
    mint(
        secret,
        subject,
        Role::Scanner,
        Some(organization),
        valid_for,
    )
}

fn mint(
    secret: &[u8],
    subject: &str,
    role: Role,
    organization: Option<&str>,
    valid_for: chrono::TimeDelta,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = Claims {
        sub: subject.to_owned(),
        exp: (chrono::Utc::now() + valid_for).timestamp(),
        role: serde_json::to_value(role)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned)),
        roles: None,
        org: organization.map(str::to_owned),
        iss: None,
        aud: None,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
}
