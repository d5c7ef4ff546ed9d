//! OAuth 2.0 token endpoint (client_credentials, password, refresh_token grants) and the
//! bearer-token check every data call goes through.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::base64;
use crate::data::generate::{BASE62, mix};
use crate::error::{JSON, OAuthError};
use crate::org::Org;

/// Access tokens this org has issued and not yet expired, with when each was issued.
#[derive(Debug)]
pub struct Tokens {
    issued: Mutex<HashMap<String, Instant>>,
    /// Every token ever issued, in order, expired ones too: tests search logs for them.
    ever: Mutex<Vec<String>>,
    serial: AtomicU64,
    salt: u64,
}

impl Tokens {
    pub fn new(seed: u64) -> Self {
        Tokens {
            issued: Mutex::new(HashMap::new()),
            ever: Mutex::new(Vec::new()),
            serial: AtomicU64::new(1),
            salt: mix(seed ^ 0x70CE),
        }
    }

    /// Mints a new token `<org id>!<opaque>`, unique per call.
    pub fn issue(&self, org_id: &str) -> String {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut token = format!("{}!AQ", &org_id[..15]);
        let mut state = mix(self.salt ^ nanos) ^ serial;
        for _ in 0..48 {
            state = mix(state);
            token.push(char::from(BASE62[(state % 62) as usize]));
        }
        // The serial suffix guarantees uniqueness whatever the clock does.
        token.push('.');
        token.push_str(&serial.to_string());
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone(), Instant::now());
        self.ever
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(token.clone());
        token
    }

    /// Whether `token` was issued, not expired with [`Self::expire_all`], and (with a `ttl`)
    /// issued less than `ttl` ago.
    pub fn is_valid(&self, token: &str, ttl: Option<Duration>) -> bool {
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .is_some_and(|at| ttl.is_none_or(|ttl| at.elapsed() < ttl))
    }

    /// Every token issued so far, oldest first.
    pub fn ever_issued(&self) -> Vec<String> {
        self.ever
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn expire_all(&self) {
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// The token in `Authorization: Bearer <token>` (or the older `OAuth <token>`).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("Bearer") || scheme.eq_ignore_ascii_case("OAuth"))
        .then(|| token.trim())
}

/// `POST /services/oauth2/token`.
pub async fn token(State(org): State<Arc<Org>>, headers: HeaderMap, body: Bytes) -> Response {
    match grant(&org, &headers, &body) {
        Ok(()) => {
            let instance = org.config().instance_url.clone().unwrap_or_else(|| {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("localhost");
                format!("http://{host}")
            });
            let instance = instance.trim_end_matches('/');
            let issued_at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                .to_string();
            let id = format!("{instance}/id/{}/{}", org.org_id(), org.user_id());
            let signature =
                base64::encode(&mix(org.config().seed ^ issued_at.len() as u64).to_be_bytes());
            let body = serde_json::json!({
                "access_token": org.tokens().issue(org.org_id()),
                "instance_url": instance,
                "id": id,
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": signature,
                "scope": "api",
            });
            tracing::debug!(instance, "Issued an access token.");
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, JSON),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body.to_string(),
            )
                .into_response()
        }
        Err(e) => {
            tracing::debug!(
                error = e.error,
                description = e.description,
                "Refused a token request."
            );
            e.into_response()
        }
    }
}

/// Checks the grant against the org's configured credentials.
fn grant(org: &Org, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let param = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let basic = basic_credentials(headers);
    let client_id = param("client_id").or(basic.as_ref().map(|b| b.0.as_str()));
    let client_secret = param("client_secret").or(basic.as_ref().map(|b| b.1.as_str()));
    let config = org.config();
    let check_client = |secret_required: bool| -> Result<(), OAuthError> {
        let id = client_id.ok_or(OAuthError::missing("client identifier required"))?;
        if id != config.client_id {
            return Err(OAuthError::INVALID_CLIENT);
        }
        match client_secret {
            Some(s) if s != config.client_secret => Err(OAuthError::INVALID_CLIENT),
            None if secret_required => Err(OAuthError::missing("client secret required")),
            _ => Ok(()),
        }
    };
    match param("grant_type") {
        Some("client_credentials") => check_client(true),
        Some("password") => {
            check_client(true)?;
            let user = param("username").ok_or(OAuthError::missing("username required"))?;
            let password = param("password").ok_or(OAuthError::missing("password required"))?;
            if user.eq_ignore_ascii_case(&config.username) && password == config.password {
                Ok(())
            } else {
                Err(OAuthError::AUTHENTICATION_FAILURE)
            }
        }
        Some(crate::jwt::GRANT_TYPE) => {
            let assertion = param("assertion").ok_or(OAuthError::missing("assertion required"))?;
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            crate::jwt::check(config, assertion, &format!("http://{host}"))
        }
        Some("refresh_token") => {
            check_client(false)?;
            let token =
                param("refresh_token").ok_or(OAuthError::missing("refresh token required"))?;
            if token == config.refresh_token {
                Ok(())
            } else {
                Err(OAuthError::EXPIRED_TOKEN)
            }
        }
        _ => Err(OAuthError::UNSUPPORTED_GRANT),
    }
}

/// `Authorization: Basic base64(client_id:client_secret)`, each part form-urlencoded as
/// RFC 6749 §2.3.1 asks.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return None;
    }
    let decoded = String::from_utf8(base64::decode(encoded.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}
