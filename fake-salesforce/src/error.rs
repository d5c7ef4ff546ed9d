//! Salesforce-shaped error responses: REST errors are a JSON array of
//! `{"message","errorCode"}`; OAuth errors are `{"error","error_description"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::soql::SoqlError;

/// Content type of every REST JSON body, spelled as Salesforce sends it.
pub const JSON: &str = "application/json;charset=UTF-8";

/// A JSON response with Salesforce's content type.
pub fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, JSON)], body).into_response()
}

/// A REST API error: status plus one `{"message","errorCode"}` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    }

    pub fn invalid_session() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    pub fn limit_exceeded() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
    }

    pub fn invalid_locator() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        )
    }

    /// 500 `UNKNOWN_EXCEPTION`: what should not fail did (a blocking task panicked).
    pub fn unknown(error: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            error.to_string(),
        )
    }

    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("HTTP Method '{method}' not allowed. Allowed are GET,HEAD"),
        )
    }
}

impl From<SoqlError> for ApiError {
    fn from(e: SoqlError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!([{"message": self.message, "errorCode": self.code}]);
        let mut response = json_response(self.status, body.to_string());
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        response
    }
}

/// An OAuth token endpoint error: always HTTP 400 and never cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: &'static str,
}

impl OAuthError {
    pub const INVALID_CLIENT: Self = OAuthError {
        error: "invalid_client",
        description: "invalid client credentials",
    };
    pub const AUTHENTICATION_FAILURE: Self = OAuthError {
        error: "invalid_grant",
        description: "authentication failure",
    };
    pub const EXPIRED_TOKEN: Self = OAuthError {
        error: "invalid_grant",
        description: "expired access/refresh token",
    };
    pub const UNSUPPORTED_GRANT: Self = OAuthError {
        error: "unsupported_grant_type",
        description: "grant type not supported",
    };

    pub fn missing(description: &'static str) -> Self {
        OAuthError {
            error: "invalid_request",
            description,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.error, "error_description": self.description});
        (
            StatusCode::BAD_REQUEST,
            [
                (header::CONTENT_TYPE, JSON),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body.to_string(),
        )
            .into_response()
    }
}
