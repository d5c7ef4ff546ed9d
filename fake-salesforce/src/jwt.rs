//! The OAuth 2.0 JWT bearer grant, checked as Salesforce checks it: the assertion's issuer
//! must be the connected app's consumer key, its RS256 signature must verify with the
//! certificate uploaded to the app (`--jwt-cert`), its audience must be this login server, it
//! must not have expired, and its subject must be a user the app is pre-authorized for.
//!
//! Each refusal is Salesforce's own answer (HTTP 400): `invalid_client_id` "client identifier
//! invalid" for an unknown issuer; `invalid_grant` with "invalid assertion" (malformed, not
//! RS256, or a signature the certificate does not verify), "audience is invalid", "expired
//! authorization code" (past `exp`), or "user hasn't approved this consumer" (a user the app is
//! not pre-authorized for, or an unknown one).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;

use crate::{OrgConfig, error::OAuthError};

/// The grant type of the JWT bearer flow.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

const INVALID_ASSERTION: OAuthError = OAuthError {
    error: "invalid_grant",
    description: "invalid assertion",
};
const INVALID_AUDIENCE: OAuthError = OAuthError {
    error: "invalid_grant",
    description: "audience is invalid",
};
const EXPIRED: OAuthError = OAuthError {
    error: "invalid_grant",
    description: "expired authorization code",
};
const NOT_APPROVED: OAuthError = OAuthError {
    error: "invalid_grant",
    description: "user hasn't approved this consumer",
};
const INVALID_CLIENT_ID: OAuthError = OAuthError {
    error: "invalid_client_id",
    description: "client identifier invalid",
};

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    exp: f64,
}

/// The public key (PKCS#1 `RSAPublicKey`) of a PEM certificate, for `--jwt-cert`.
///
/// # Errors
/// No PEM certificate, or one whose key is not RSA.
pub fn public_key(pem: &str) -> Result<Vec<u8>, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| format!("no PEM certificate: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let spki = cert.public_key();
    if spki.algorithm.algorithm != x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
        return Err(
            "the certificate's key is not RSA (the JWT bearer flow signs with RS256)".into(),
        );
    }
    Ok(spki.subject_public_key.data.to_vec())
}

/// Checks an assertion; `audience` is this login server's URL (`http://host:port`), which
/// [`OrgConfig::jwt_audience`] replaces when set.
///
/// # Errors
/// Salesforce's refusal, as above.
pub fn check(config: &OrgConfig, assertion: &str, audience: &str) -> Result<(), OAuthError> {
    let mut parts = assertion.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(INVALID_ASSERTION);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part.trim_end_matches('='));
    let header: Header = decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(INVALID_ASSERTION)?;
    let claims: Claims = decode(claims)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(INVALID_ASSERTION)?;
    if claims.iss != config.client_id {
        return Err(INVALID_CLIENT_ID);
    }
    let key = config.jwt_public_key.as_deref().ok_or(INVALID_ASSERTION)?;
    let signature = decode(signature).map_err(|_| INVALID_ASSERTION)?;
    let signed = &assertion[..assertion.rfind('.').unwrap_or(0)];
    if header.alg != "RS256"
        || UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key)
            .verify(signed.as_bytes(), &signature)
            .is_err()
    {
        return Err(INVALID_ASSERTION);
    }
    // One audience, or a list holding it (RFC 7519 allows both).
    let audience = config.jwt_audience.as_deref().unwrap_or(audience);
    let ours = |aud: &serde_json::Value| {
        aud.as_str()
            .is_some_and(|a| a.trim_end_matches('/') == audience.trim_end_matches('/'))
    };
    let audience_ok = match &claims.aud {
        serde_json::Value::Array(list) => list.iter().any(ours),
        single => ours(single),
    };
    if !audience_ok {
        return Err(INVALID_AUDIENCE);
    }
    let now = (SystemTime::now() + config.jwt_clock_ahead)
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if claims.exp <= now {
        return Err(EXPIRED);
    }
    if !config.jwt_preauthorized || !claims.sub.eq_ignore_ascii_case(&config.username) {
        return Err(NOT_APPROVED);
    }
    Ok(())
}
