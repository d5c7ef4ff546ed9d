//! How sfsync logs in to Salesforce: the OAuth token endpoint (client credentials or password
//! grant), or a ready-made access token. Secrets stay in [`SecretString`] throughout.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::error::SfError;

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
    /// Username, for the password grant (with SF_PASSWORD).
    #[arg(long, env = "SF_USERNAME")]
    pub sf_username: Option<String>,
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
    #[arg(long, env = "SF_API_VERSION", default_value = "62.0")]
    pub sf_api_version: String,
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
            sf_password: None,
            sf_instance_url: None,
            sf_access_token: None,
            sf_api_version: "62.0".into(),
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
            Credentials::AccessToken { instance_url, .. } => {
                write!(f, "AccessToken({instance_url})")
            }
        }
    }
}

const HOW: &str = "set SF_LOGIN_URL with SF_CLIENT_ID and SF_CLIENT_SECRET (client credentials), plus SF_USERNAME and SF_PASSWORD (password grant), or SF_INSTANCE_URL with SF_ACCESS_TOKEN";

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
    /// Picks the flow from the settings that are present.
    ///
    /// # Errors
    /// A needed setting is missing or a URL is malformed; the message says which.
    pub fn from_args(args: &CredentialArgs) -> Result<Self, SfError> {
        // An empty variable (`SF_INSTANCE_URL=` in an .env file) means "not set".
        let args = &args.without_empty_values();
        if let (Some(instance), Some(token)) = (&args.sf_instance_url, &args.sf_access_token) {
            return Ok(Credentials::AccessToken {
                instance_url: http_url("SF_INSTANCE_URL", instance)?,
                access_token: token.clone(),
            });
        }
        let Some(login) = &args.sf_login_url else {
            return Err(SfError::Config(format!("no Salesforce credentials: {HOW}")));
        };
        let login_url = http_url("SF_LOGIN_URL", login)?;
        let (Some(client_id), Some(client_secret)) = (&args.sf_client_id, &args.sf_client_secret)
        else {
            return Err(SfError::Config(format!(
                "SF_LOGIN_URL is set but SF_CLIENT_ID or SF_CLIENT_SECRET is missing: {HOW}"
            )));
        };
        match (&args.sf_username, &args.sf_password) {
            (Some(username), Some(password)) => Ok(Credentials::Password {
                login_url,
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                username: username.clone(),
                password: password.clone(),
            }),
            (None, None) => Ok(Credentials::ClientCredentials { login_url, client_id: client_id.clone(), client_secret: client_secret.clone() }),
            _ => Err(SfError::Config("SF_USERNAME and SF_PASSWORD go together: set both for the password grant, or neither for client credentials".into())),
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
    let (login_url, form): (&Url, Vec<(&str, &str)>) = match credentials {
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
                ("grant_type", "client_credentials"),
                ("client_id", client_id.expose_secret()),
                ("client_secret", client_secret.expose_secret()),
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
                ("grant_type", "password"),
                ("client_id", client_id.expose_secret()),
                ("client_secret", client_secret.expose_secret()),
                ("username", username),
                ("password", password.expose_secret()),
            ],
        ),
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
        return Err(SfError::Login {
            url: token_url,
            error: err.error,
            description: err.error_description,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CredentialArgs {
        CredentialArgs {
            sf_login_url: Some("https://login.example.com".into()),
            sf_client_id: Some("id".into()),
            sf_client_secret: Some("secret".into()),
            sf_username: Some(String::new()),
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
