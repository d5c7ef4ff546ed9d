//! How sfsync logs in to Salesforce: the OAuth token endpoint (JWT bearer, refresh token,
//! client credentials or password grant), or a ready-made access token. The flow follows from
//! which `SF_*` settings are present; secrets stay in [`SecretString`] (the JWT key in
//! [`JwtKey`]) throughout, and none is ever logged.

use std::{path::PathBuf, sync::Arc, time::SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::error::SfError;
use crate::jwt::{self, JwtKey};

/// Where the credentials come from; chosen by which `SF_*` variables are set.
#[derive(Debug, Clone, clap::Args)]
pub struct CredentialArgs {
    /// Salesforce login host, e.g. https://login.salesforce.com, https://test.salesforce.com or
    /// your My Domain (required for client credentials).
    #[arg(long, env = "SF_LOGIN_URL")]
    pub sf_login_url: Option<String>,
    /// Connected app consumer key.
    #[arg(long, env = "SF_CLIENT_ID", value_parser = common::config::parse_secret, hide_env_values = true)]
    pub sf_client_id: Option<SecretString>,
    /// Connected app consumer secret.
    #[arg(long, env = "SF_CLIENT_SECRET", value_parser = common::config::parse_secret, hide_env_values = true)]
    pub sf_client_secret: Option<SecretString>,
    /// Username: the user the JWT bearer flow signs in as (with SF_JWT_KEY_FILE), or the
    /// password grant's (with SF_PASSWORD).
    #[arg(long, env = "SF_USERNAME")]
    pub sf_username: Option<String>,
    /// PEM file with the RSA private key of the certificate uploaded to the connected app:
    /// selects the JWT bearer flow (with SF_CLIENT_ID and SF_USERNAME).
    // Not clap's PathBuf parser, which refuses an empty value: empty means unset (see
    // without_empty_values), as docker-compose.yml passes a variable left empty in .env.
    #[arg(long, env = "SF_JWT_KEY_FILE", value_name = "PEM FILE",
          value_parser = clap::builder::TypedValueParser::map(clap::builder::OsStringValueParser::new(), PathBuf::from))]
    pub sf_jwt_key_file: Option<PathBuf>,
    /// A refresh token from a one-time consent: selects the refresh-token flow (with
    /// SF_CLIENT_ID, and SF_CLIENT_SECRET if the connected app requires it).
    #[arg(long, env = "SF_REFRESH_TOKEN", value_parser = common::config::parse_secret, hide_env_values = true)]
    pub sf_refresh_token: Option<SecretString>,
    /// Password plus security token, for the password grant.
    #[arg(long, env = "SF_PASSWORD", value_parser = common::config::parse_secret, hide_env_values = true)]
    pub sf_password: Option<SecretString>,
    /// Instance URL, with SF_ACCESS_TOKEN, to use a token obtained elsewhere (cannot be refreshed).
    #[arg(long, env = "SF_INSTANCE_URL")]
    pub sf_instance_url: Option<String>,
    /// Access token, with SF_INSTANCE_URL.
    #[arg(long, env = "SF_ACCESS_TOKEN", value_parser = common::config::parse_secret, hide_env_values = true)]
    pub sf_access_token: Option<SecretString>,
    /// REST API version, e.g. 62.0.
    #[arg(long, env = "SF_API_VERSION", default_value = DEFAULT_API_VERSION, value_parser = parse_api_version)]
    pub sf_api_version: String,
}

/// The REST API version used unless SF_API_VERSION names another.
const DEFAULT_API_VERSION: &str = "62.0";

/// An empty SF_API_VERSION (as docker-compose.yml passes one left empty in .env) means the
/// default.
fn parse_api_version(s: &str) -> Result<String, String> {
    let s = s.trim();
    Ok(if s.is_empty() { DEFAULT_API_VERSION } else { s }.to_owned())
}

impl CredentialArgs {
    /// No Salesforce setting at all (the API version aside): a worker without them does not
    /// apply write-back batches.
    pub fn is_empty(&self) -> bool {
        let args = self.without_empty_values();
        args.sf_login_url.is_none()
            && args.sf_client_id.is_none()
            && args.sf_instance_url.is_none()
            && args.sf_access_token.is_none()
    }

    /// None of the settings, API version 62.0: what a worker without Salesforce has.
    pub fn none() -> Self {
        Self {
            sf_login_url: None,
            sf_client_id: None,
            sf_client_secret: None,
            sf_username: None,
            sf_jwt_key_file: None,
            sf_refresh_token: None,
            sf_password: None,
            sf_instance_url: None,
            sf_access_token: None,
            sf_api_version: DEFAULT_API_VERSION.into(),
        }
    }

    fn without_empty_values(&self) -> Self {
        let text = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let secret =
            |v: &Option<SecretString>| v.clone().filter(|s| !s.expose_secret().trim().is_empty());
        Self {
            sf_login_url: text(&self.sf_login_url),
            sf_client_id: secret(&self.sf_client_id),
            sf_client_secret: secret(&self.sf_client_secret),
            sf_username: text(&self.sf_username),
            sf_jwt_key_file: self
                .sf_jwt_key_file
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
            sf_refresh_token: secret(&self.sf_refresh_token),
            sf_password: secret(&self.sf_password),
            sf_instance_url: text(&self.sf_instance_url),
            sf_access_token: secret(&self.sf_access_token),
            sf_api_version: self.sf_api_version.clone(),
        }
    }
}

/// A way to obtain an access token.
#[derive(Clone)]
pub enum Credentials {
    /// OAuth 2.0 client credentials flow (runs as the app's integration user).
    ClientCredentials {
        login_url: Url,
        client_id: SecretString,
        client_secret: SecretString,
    },
    /// OAuth 2.0 username-password flow.
    Password {
        login_url: Url,
        client_id: SecretString,
        client_secret: SecretString,
        username: String,
        password: SecretString,
    },
    /// OAuth 2.0 JWT bearer flow: an assertion signed with the connected app's certificate key.
    JwtBearer {
        login_url: Url,
        client_id: SecretString,
        username: String,
        key: Arc<JwtKey>,
    },
    /// OAuth 2.0 refresh-token flow, with a token from a one-time consent.
    RefreshToken {
        login_url: Url,
        client_id: SecretString,
        client_secret: Option<SecretString>,
        refresh_token: SecretString,
    },
    /// A token obtained elsewhere; when it expires the run stops with a clear error.
    AccessToken {
        instance_url: Url,
        access_token: SecretString,
    },
}

// Hand-written so that no secret can reach a log through `{:?}`.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::ClientCredentials { login_url, .. } => {
                write!(f, "ClientCredentials({login_url})")
            }
            Credentials::Password {
                login_url,
                username,
                ..
            } => write!(f, "Password({login_url}, {username})"),
            Credentials::JwtBearer {
                login_url,
                username,
                ..
            } => write!(f, "JwtBearer({login_url}, {username})"),
            Credentials::RefreshToken { login_url, .. } => write!(f, "RefreshToken({login_url})"),
            Credentials::AccessToken { instance_url, .. } => {
                write!(f, "AccessToken({instance_url})")
            }
        }
    }
}

/// What each flow needs, for every message about a missing or conflicting setting.
const HOW: &str = "each sign-in needs: JWT bearer: SF_LOGIN_URL, SF_CLIENT_ID, SF_USERNAME, SF_JWT_KEY_FILE; \
refresh token: SF_LOGIN_URL, SF_CLIENT_ID, SF_REFRESH_TOKEN (and SF_CLIENT_SECRET if the connected app requires it); \
client credentials: SF_LOGIN_URL, SF_CLIENT_ID, SF_CLIENT_SECRET; \
username-password: SF_LOGIN_URL, SF_CLIENT_ID, SF_CLIENT_SECRET, SF_USERNAME, SF_PASSWORD; \
a ready token: SF_INSTANCE_URL, SF_ACCESS_TOKEN";

/// A sign-in setting problem, with what each flow needs.
fn refused(problem: &str) -> SfError {
    SfError::Config(format!("Salesforce sign-in: {problem}; {HOW}"))
}

fn http_url(setting: &str, value: &str) -> Result<Url, SfError> {
    // Never echo the value whole: a URL may carry `user:password@`.
    let shown = common::config::redact_url_text(value);
    let url = Url::parse(value.trim_end_matches('/'))
        .map_err(|e| SfError::Config(format!("{setting}: {shown:?} is not a valid URL ({e}); expected e.g. https://login.salesforce.com")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SfError::Config(format!(
            "{setting}: {shown:?} is not an http(s) URL; expected e.g. https://login.salesforce.com"
        )));
    }
    Ok(url)
}

impl Credentials {
    /// Picks the flow from the settings that are present: `SF_INSTANCE_URL` with
    /// `SF_ACCESS_TOKEN` is a ready token; otherwise `SF_JWT_KEY_FILE` selects the JWT bearer
    /// flow, `SF_REFRESH_TOKEN` the refresh-token flow, `SF_USERNAME` with `SF_PASSWORD` the
    /// password grant, and `SF_CLIENT_SECRET` alone client credentials. A setting that belongs
    /// to no flow of that set (a key file with a password, say) is refused rather than
    /// ignored, and so is a flow with a setting missing.
    ///
    /// # Errors
    /// A needed setting is missing, two flows are asked for at once, a URL is malformed or the
    /// key file unusable; the message says which, and what each flow needs.
    pub fn from_args(args: &CredentialArgs) -> Result<Self, SfError> {
        // An empty variable (`SF_INSTANCE_URL=` in an .env file) means "not set".
        let args = &args.without_empty_values();
        if let (Some(instance), Some(token)) = (&args.sf_instance_url, &args.sf_access_token) {
            return Ok(Credentials::AccessToken {
                instance_url: http_url("SF_INSTANCE_URL", instance)?,
                access_token: token.clone(),
            });
        }
        let jwt = args.sf_jwt_key_file.as_ref();
        let refresh = args.sf_refresh_token.as_ref();
        if jwt.is_some() && refresh.is_some() {
            return Err(refused(
                "both SF_JWT_KEY_FILE (JWT bearer) and SF_REFRESH_TOKEN (refresh token) are set; keep the one of the flow you use",
            ));
        }
        let Some(login) = &args.sf_login_url else {
            return Err(refused(
                if jwt.is_some() || refresh.is_some() || args.sf_client_id.is_some() {
                    "SF_LOGIN_URL is missing (https://login.salesforce.com, https://test.salesforce.com for a sandbox, or your My Domain)"
                } else {
                    "no Salesforce credentials"
                },
            ));
        };
        let login_url = http_url("SF_LOGIN_URL", login)?;
        let Some(client_id) = args.sf_client_id.clone() else {
            return Err(refused(
                "SF_LOGIN_URL is set but SF_CLIENT_ID (the connected app's consumer key) is missing",
            ));
        };
        if let Some(key_file) = jwt {
            if args.sf_password.is_some() || args.sf_client_secret.is_some() {
                return Err(refused(
                    "SF_JWT_KEY_FILE selects the JWT bearer flow, which uses neither SF_PASSWORD nor SF_CLIENT_SECRET; unset them",
                ));
            }
            let Some(username) = args.sf_username.clone() else {
                return Err(refused(
                    "SF_JWT_KEY_FILE is set but SF_USERNAME (the user to sign in as) is missing",
                ));
            };
            return Ok(Credentials::JwtBearer {
                login_url,
                client_id,
                username,
                key: Arc::new(JwtKey::from_pem_file(key_file)?),
            });
        }
        if let Some(refresh_token) = refresh {
            if args.sf_username.is_some() || args.sf_password.is_some() {
                return Err(refused(
                    "SF_REFRESH_TOKEN selects the refresh-token flow, which uses neither SF_USERNAME nor SF_PASSWORD; unset them",
                ));
            }
            return Ok(Credentials::RefreshToken {
                login_url,
                client_id,
                client_secret: args.sf_client_secret.clone(),
                refresh_token: refresh_token.clone(),
            });
        }
        let Some(client_secret) = args.sf_client_secret.clone() else {
            return Err(refused(
                "SF_LOGIN_URL and SF_CLIENT_ID are set but no flow is complete: SF_CLIENT_SECRET, SF_JWT_KEY_FILE or SF_REFRESH_TOKEN is missing",
            ));
        };
        match (&args.sf_username, &args.sf_password) {
            (Some(username), Some(password)) => Ok(Credentials::Password {
                login_url,
                client_id,
                client_secret,
                username: username.clone(),
                password: password.clone(),
            }),
            (None, None) => Ok(Credentials::ClientCredentials {
                login_url,
                client_id,
                client_secret,
            }),
            _ => Err(refused(
                "SF_USERNAME and SF_PASSWORD go together: set both for the password grant, or neither for client credentials",
            )),
        }
    }

    /// The flow, for the one log line that says how sfsync signs in (no secret in it).
    pub fn flow(&self) -> &'static str {
        match self {
            Credentials::ClientCredentials { .. } => "client credentials",
            Credentials::Password { .. } => "username-password",
            Credentials::JwtBearer { .. } => "JWT bearer",
            Credentials::RefreshToken { .. } => "refresh token",
            Credentials::AccessToken { .. } => "a ready access token",
        }
    }

    /// Where the flow signs in (the login URL, or the instance for a ready token), and as whom
    /// when the settings name a user.
    pub fn sign_in(&self) -> (&Url, Option<&str>) {
        match self {
            Credentials::ClientCredentials { login_url, .. }
            | Credentials::RefreshToken { login_url, .. } => (login_url, None),
            Credentials::Password {
                login_url,
                username,
                ..
            }
            | Credentials::JwtBearer {
                login_url,
                username,
                ..
            } => (login_url, Some(username)),
            Credentials::AccessToken { instance_url, .. } => (instance_url, None),
        }
    }

    /// Whether a new token can be had when the current one expires.
    pub fn can_refresh(&self) -> bool {
        !matches!(self, Credentials::AccessToken { .. })
    }
}

/// A logged-in session: where the org lives and the token to show it.
pub struct Session {
    pub instance_url: Url,
    pub access_token: SecretString,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: String,
}

#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Obtains a session for the credentials.
///
/// # Errors
/// [`SfError::Login`] when Salesforce refuses the credentials (not retried), [`SfError::Transient`]
/// for network failures and 5xx answers.
pub async fn login(http: &reqwest::Client, credentials: &Credentials) -> Result<Session, SfError> {
    let secret = |s: &SecretString| s.expose_secret().to_owned();
    let (login_url, form): (&Url, Vec<(&str, String)>) = match credentials {
        Credentials::AccessToken {
            instance_url,
            access_token,
        } => {
            return Ok(Session {
                instance_url: instance_url.clone(),
                access_token: access_token.clone(),
            });
        }
        Credentials::ClientCredentials {
            login_url,
            client_id,
            client_secret,
        } => (
            login_url,
            vec![
                ("grant_type", "client_credentials".into()),
                ("client_id", secret(client_id)),
                ("client_secret", secret(client_secret)),
            ],
        ),
        Credentials::Password {
            login_url,
            client_id,
            client_secret,
            username,
            password,
        } => (
            login_url,
            vec![
                ("grant_type", "password".into()),
                ("client_id", secret(client_id)),
                ("client_secret", secret(client_secret)),
                ("username", username.clone()),
                ("password", secret(password)),
            ],
        ),
        Credentials::JwtBearer {
            login_url,
            client_id,
            username,
            key,
        } => {
            // A fresh assertion for every login: each is valid for under 3 minutes.
            let assertion = key.assertion(
                client_id.expose_secret(),
                username,
                &jwt::audience(login_url),
                SystemTime::now(),
            )?;
            (
                login_url,
                vec![
                    ("grant_type", jwt::GRANT_TYPE.into()),
                    ("assertion", assertion),
                ],
            )
        }
        Credentials::RefreshToken {
            login_url,
            client_id,
            client_secret,
            refresh_token,
        } => {
            let mut form = vec![
                ("grant_type", "refresh_token".into()),
                ("client_id", secret(client_id)),
                ("refresh_token", secret(refresh_token)),
            ];
            if let Some(client_secret) = client_secret {
                form.push(("client_secret", secret(client_secret)));
            }
            (login_url, form)
        }
    };
    let token_url = format!(
        "{}/services/oauth2/token",
        login_url.as_str().trim_end_matches('/')
    );
    let response = http
        .post(&token_url)
        .form(&form)
        .send()
        .await
        .map_err(|e| SfError::transport(&token_url, &e))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| SfError::transport(&token_url, &e))?;
    if status >= 500 {
        return Err(SfError::Transient {
            url: token_url,
            detail: format!("HTTP {status}"),
            retry_after: None,
        });
    }
    if status != 200 {
        let err: TokenError = serde_json::from_slice(&body).unwrap_or(TokenError {
            error: format!("HTTP {status}"),
            error_description: String::from_utf8_lossy(&body).chars().take(200).collect(),
        });
        let hint = login_hint(credentials, &err.error, &err.error_description);
        return Err(SfError::Login {
            url: token_url,
            error: err.error,
            description: err.error_description,
            hint,
        });
    }
    let token: TokenResponse = serde_json::from_slice(&body).map_err(|e| SfError::Protocol {
        url: token_url.clone(),
        detail: format!("token response without access_token/instance_url: {e}"),
    })?;
    let instance_url = http_url("instance_url from the token response", &token.instance_url)?;
    Ok(Session {
        instance_url,
        access_token: SecretString::from(token.access_token),
    })
}

/// What to check when the token endpoint refuses: the settings of the flow in use, and for
/// the errors Salesforce documents for the JWT bearer and refresh-token flows, the fix.
fn login_hint(credentials: &Credentials, error: &str, description: &str) -> String {
    let description = description.to_ascii_lowercase();
    match credentials {
        Credentials::JwtBearer { login_url, .. } => match description.as_str() {
            "invalid assertion" => "The assertion's signature does not match the certificate uploaded to the connected app (\"Use digital signatures\"): check that SF_JWT_KEY_FILE is that certificate's private key, and SF_CLIENT_ID that app's consumer key".into(),
            "audience is invalid" => format!("The JWT's aud ({}, from SF_LOGIN_URL) is not this org's login server: SF_LOGIN_URL=https://login.salesforce.com for a production org, https://test.salesforce.com for a sandbox, or the Experience Cloud site's URL", jwt::audience(login_url)),
            "expired authorization code" => "The assertion had expired when Salesforce read it (sfsync makes it valid for under 3 minutes): is this machine's clock right?".into(),
            "user hasn't approved this consumer" => "SF_USERNAME's profile or permission set is not pre-authorized for the connected app: in its policies set \"Admin approved users are pre-authorized\" and add the profile or permission set".into(),
            _ if error == "invalid_client_id" => "SF_CLIENT_ID is not the consumer key of a connected app of this org".into(),
            _ => "Check SF_CLIENT_ID, SF_USERNAME and SF_JWT_KEY_FILE (the JWT bearer flow)".into(),
        },
        Credentials::RefreshToken { .. } => match description.as_str() {
            "expired access/refresh token" => "SF_REFRESH_TOKEN has expired or was revoked (the connected app's refresh token policy): consent again to get a new one".into(),
            _ => "Check SF_CLIENT_ID, SF_REFRESH_TOKEN and SF_CLIENT_SECRET (the refresh-token flow)".into(),
        },
        Credentials::Password { .. } => {
            "Check SF_CLIENT_ID, SF_CLIENT_SECRET, SF_USERNAME and SF_PASSWORD (the password grant)".into()
        }
        Credentials::ClientCredentials { .. } | Credentials::AccessToken { .. } => {
            "Check SF_CLIENT_ID and SF_CLIENT_SECRET (client credentials)".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CredentialArgs {
        CredentialArgs {
            sf_login_url: Some("https://login.example.com".into()),
            sf_client_id: Some("id".into()),
            sf_client_secret: Some("secret".into()),
            sf_username: Some(String::new()),
            sf_jwt_key_file: None,
            sf_refresh_token: None,
            sf_password: Some("".into()),
            sf_instance_url: Some(String::new()),
            sf_access_token: Some(" ".into()),
            sf_api_version: "62.0".into(),
        }
    }

    #[test]
    fn empty_settings_count_as_unset() {
        assert!(matches!(
            Credentials::from_args(&args()),
            Ok(Credentials::ClientCredentials { .. })
        ));
    }

    #[test]
    fn an_empty_key_file_or_api_version_counts_as_unset() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            sf: CredentialArgs,
        }
        let cli = Cli::try_parse_from([
            "sfsync",
            "--sf-login-url",
            "https://login.example.com",
            "--sf-client-id",
            "id",
            "--sf-client-secret",
            "secret",
            "--sf-jwt-key-file",
            "",
            "--sf-api-version",
            "",
        ])
        .unwrap();
        assert_eq!(cli.sf.sf_api_version, "62.0");
        assert!(matches!(
            Credentials::from_args(&cli.sf),
            Ok(Credentials::ClientCredentials { .. })
        ));
    }

    #[test]
    fn bad_urls_are_named_without_their_password() {
        let mut a = args();
        a.sf_login_url = Some("ftp://me:hunter2@login.example.com".into());
        let err = Credentials::from_args(&a).unwrap_err().to_string();
        assert!(
            err.starts_with("SF_LOGIN_URL: ") && !err.contains("hunter2"),
            "{err}"
        );
    }
}
