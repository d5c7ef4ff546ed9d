//! Errors from Salesforce, grouped by what the caller does next: retry, refresh the token, or
//! stop with a message the operator can act on.

use std::time::Duration;

/// One element of Salesforce's JSON error array (`[{"message": …, "errorCode": …}]`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ApiErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(rename = "errorCode", default)]
    pub error_code: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SfError {
    /// Salesforce answered with an error body.
    #[error("Salesforce {status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// The token endpoint refused the credentials (never retried: a config problem).
    #[error("Salesforce login at {url} failed: {error}: {description}. {hint}")]
    Login {
        url: String,
        error: String,
        description: String,
        /// What to check or do, for the flow in use.
        hint: String,
    },
    /// No usable answer: network failure, timeout, a 5xx, HTML from a proxy, a truncated body.
    #[error("Salesforce request to {url} failed: {detail}")]
    Transient {
        url: String,
        detail: String,
        retry_after: Option<Duration>,
    },
    /// The answer was 2xx but not what the API documents.
    #[error("Salesforce returned an unexpected response from {url}: {detail}")]
    Protocol { url: String, detail: String },
    /// The org's API usage reached `--max-api-usage`; sfsync stops before exhausting the limit.
    #[error(
        "Salesforce API usage is {used}/{max} ({:.0}% of the org's daily limit), at or past --max-api-usage {limit}%: \
         stopping before the limit other integrations share is used up. Usage is a rolling 24-hour window: run again later, \
         or raise --max-api-usage",
        *used as f64 * 100.0 / *max as f64
    )]
    Quota { used: u64, max: u64, limit: f64 },
    /// Salesforce kept refusing with 403 `REQUEST_LIMIT_EXCEEDED` after every retry.
    #[error(
        "Salesforce 403 REQUEST_LIMIT_EXCEEDED: {message} (still refused after {retries} retries over {:.1}s). \
         The org's API request limit (a rolling 24-hour window) or its concurrent-request limit is used up: \
         run again later; --max-api-usage stops sfsync before the daily limit is reached",
        waited.as_secs_f64()
    )]
    RequestLimit {
        message: String,
        retries: usize,
        waited: Duration,
    },
    /// Settings that cannot work.
    #[error("{0}")]
    Config(String),
}

impl SfError {
    /// Sending a request to `url` or reading its answer failed: [`SfError::Transient`].
    pub fn transport(url: &str, e: &reqwest::Error) -> Self {
        SfError::Transient {
            url: url.to_owned(),
            detail: transport_detail(e),
            retry_after: None,
        }
    }

    /// Worth another try after a pause.
    pub fn is_transient(&self) -> bool {
        matches!(self, SfError::Transient { .. })
    }

    /// 403 `REQUEST_LIMIT_EXCEEDED`: the org's API or concurrent-request limit. Retried, but
    /// fewer times and after longer pauses than a transient failure (see `RetryPolicy`).
    pub fn is_request_limit(&self) -> bool {
        matches!(self, SfError::Api { status: 403, code, .. } if code == "REQUEST_LIMIT_EXCEEDED")
    }

    /// The access token expired or was revoked: get a new one and repeat the same request.
    pub fn is_session_expired(&self) -> bool {
        matches!(self, SfError::Api { status: 401, code, .. } if code == "INVALID_SESSION_ID")
    }

    /// The Salesforce error code, if Salesforce sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            SfError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Builds the error for a non-2xx response from its status and body.
    pub fn from_response(
        url: &str,
        status: u16,
        retry_after: Option<Duration>,
        body: &[u8],
    ) -> Self {
        let parsed: Option<Vec<ApiErrorBody>> = serde_json::from_slice(body).ok();
        match parsed.as_deref() {
            Some([first, ..]) if !first.error_code.is_empty() => {
                // 503 SERVER_UNAVAILABLE and friends carry a body but are still worth a retry.
                if status >= 500 || status == 429 {
                    return SfError::Transient {
                        url: url.to_owned(),
                        detail: format!("{status} {}: {}", first.error_code, first.message),
                        retry_after,
                    };
                }
                SfError::Api {
                    status,
                    code: first.error_code.clone(),
                    message: first.message.clone(),
                }
            }
            _ if status >= 500 || matches!(status, 406 | 420 | 429) => {
                let snippet: String = String::from_utf8_lossy(body).chars().take(120).collect();
                SfError::Transient {
                    url: url.to_owned(),
                    detail: format!("HTTP {status}: {snippet}"),
                    retry_after,
                }
            }
            _ => {
                let snippet: String = String::from_utf8_lossy(body).chars().take(300).collect();
                SfError::Api {
                    status,
                    code: format!("HTTP_{status}"),
                    message: snippet,
                }
            }
        }
    }
}

/// A transport error without the URL's query string (reqwest's Display includes the URL, and a
/// query holds SOQL; both are fine, but keep the line short).
fn transport_detail(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "response body was cut off or unreadable"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut root = String::new();
    while let Some(s) = source {
        root = s.to_string();
        source = s.source();
    }
    if root.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {root}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_salesforce_answers() {
        let e = SfError::from_response(
            "u",
            401,
            None,
            br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
        );
        assert!(e.is_session_expired() && !e.is_transient());
        let e = SfError::from_response("u", 503, None, b"<html>down</html>");
        assert!(e.is_transient());
        let e = SfError::from_response(
            "u",
            503,
            None,
            br#"[{"message":"busy","errorCode":"SERVER_UNAVAILABLE"}]"#,
        );
        assert!(e.is_transient());
        let e = SfError::from_response(
            "u",
            400,
            None,
            br#"[{"message":"No such column 'Foo'","errorCode":"INVALID_FIELD"}]"#,
        );
        assert_eq!(e.code(), Some("INVALID_FIELD"));
        assert_eq!(
            e.to_string(),
            "Salesforce 400 INVALID_FIELD: No such column 'Foo'"
        );
        let e = SfError::from_response("u", 403, None, br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#);
        assert!(!e.is_transient() && e.is_request_limit());
        let e = SfError::from_response(
            "u",
            403,
            None,
            br#"[{"message":"no","errorCode":"INSUFFICIENT_ACCESS"}]"#,
        );
        assert!(!e.is_request_limit());
    }
}
