//! The OAuth 2.0 JWT bearer assertion sfsync signs to log in without a password or a secret.
//!
//! Salesforce's "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration": a header
//! `{"alg":"RS256"}`, claims `iss` (the connected app's consumer key), `sub` (the username),
//! `aud` (the login server) and `exp` (within 3 minutes), each part base64url-encoded without
//! padding, signed with the private key of the certificate uploaded to the connected app
//! (RSASSA-PKCS1-v1_5 with SHA-256), and posted to `/services/oauth2/token` with
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`.
//!
//! The key is read once at start and kept in memory; neither it nor the file's content ever
//! reaches a log or an error message. Signing uses aws-lc-rs, the crypto library rustls
//! already links, and the PEM is read with rustls-pki-types: no crate is added for it.

use std::{
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{rand::SystemRandom, rsa::KeyPair, signature::RSA_PKCS1_SHA256};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rustls_pki_types::{PrivateKeyDer, pem::PemObject};
use url::Url;

use crate::error::SfError;

/// The grant type of the JWT bearer flow.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How long an assertion is valid: Salesforce accepts at most 3 minutes.
pub const LIFETIME: Duration = Duration::from_secs(170);

/// The RSA private key assertions are signed with.
pub struct JwtKey {
    pair: KeyPair,
}

// Nothing of the key in a log, whatever formats it.
impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "JwtKey(RSA, {} bits)",
            self.pair.public_modulus_len() * 8
        )
    }
}

impl JwtKey {
    /// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, what `openssl req -newkey rsa`
    /// writes) or PKCS#1 (`BEGIN RSA PRIVATE KEY`, what `openssl genrsa` wrote before 3.0).
    ///
    /// # Errors
    /// The file cannot be read, holds no private key, an encrypted or non-RSA one, or an RSA
    /// key aws-lc-rs refuses (shorter than 2048 bits); the message names `SF_JWT_KEY_FILE` and
    /// the path, never the content.
    pub fn from_pem_file(path: &Path) -> Result<Self, SfError> {
        let bad = |problem: String| {
            SfError::Config(format!("SF_JWT_KEY_FILE: {}: {problem}", path.display()))
        };
        let pem = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
        if pem
            .windows(b"ENCRYPTED PRIVATE KEY".len())
            .any(|w| w == b"ENCRYPTED PRIVATE KEY")
        {
            return Err(bad(
                "the key is encrypted; sfsync needs it unencrypted (openssl pkcs8 -in key.pem -nocrypt -topk8 -out plain.pem), kept as a secret".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
            bad("no PEM private key in it (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----); is it the certificate instead of its key?".into())
        })?;
        let pair = match &key {
            PrivateKeyDer::Pkcs8(der) => KeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => KeyPair::from_der(der.secret_pkcs1_der()),
            _ => {
                return Err(bad(
                    "not an RSA key; the JWT bearer flow signs with RS256, which needs an RSA key of 2048 bits or more".into(),
                ));
            }
        }
        .map_err(|e| bad(format!("not a usable RSA private key ({e}); the JWT bearer flow needs RSA, 2048 bits or more")))?;
        Ok(Self { pair })
    }

    /// A signed assertion for `username` of the connected app `client_id`, for `audience`,
    /// valid for [`LIFETIME`] from `now`.
    ///
    /// # Errors
    /// Signing failed (aws-lc-rs refused; not expected with a key it loaded).
    pub fn assertion(
        &self,
        client_id: &str,
        username: &str,
        audience: &str,
        now: SystemTime,
    ) -> Result<String, SfError> {
        let exp = (now + LIFETIME)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": username,
            "aud": audience,
            "exp": exp,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .map_err(|_| SfError::Config("SF_JWT_KEY_FILE: signing the JWT failed".into()))?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The `aud` claim for a login URL. Salesforce wants its login server:
/// `https://login.salesforce.com` for production orgs (also when the token is asked of a My
/// Domain), `https://test.salesforce.com` for sandboxes (`test.salesforce.com`, or a My Domain
/// under `.sandbox.my.salesforce.com`), and an Experience Cloud site's own URL; any other URL
/// (such as a fake org) is its own audience.
pub fn audience(login_url: &Url) -> String {
    let host = login_url
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if host == "test.salesforce.com" || host.ends_with(".sandbox.my.salesforce.com") {
        "https://test.salesforce.com".into()
    } else if host == "login.salesforce.com" || host.ends_with(".my.salesforce.com") {
        "https://login.salesforce.com".into()
    } else {
        login_url.as_str().trim_end_matches('/').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_follows_the_login_url() {
        let aud = |url: &str| audience(&Url::parse(url).unwrap());
        assert_eq!(
            aud("https://login.salesforce.com"),
            "https://login.salesforce.com"
        );
        assert_eq!(
            aud("https://test.salesforce.com/"),
            "https://test.salesforce.com"
        );
        assert_eq!(
            aud("https://acme.my.salesforce.com"),
            "https://login.salesforce.com"
        );
        assert_eq!(
            aud("https://acme--uat.sandbox.my.salesforce.com"),
            "https://test.salesforce.com"
        );
        assert_eq!(
            aud("https://acme.my.site.com/customers"),
            "https://acme.my.site.com/customers"
        );
        assert_eq!(aud("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }

    #[test]
    fn a_missing_or_wrong_key_file_is_named_without_its_content() {
        let dir = std::env::temp_dir().join(format!("sfsync-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = JwtKey::from_pem_file(&dir.join("nope.pem")).unwrap_err();
        assert!(
            missing.to_string().starts_with("SF_JWT_KEY_FILE: ")
                && missing.to_string().contains("cannot be read"),
            "{missing}"
        );
        let cert = dir.join("cert.pem");
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nc2VjcmV0LWJ5dGVz\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = JwtKey::from_pem_file(&cert).unwrap_err().to_string();
        assert!(err.contains("no PEM private key"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
