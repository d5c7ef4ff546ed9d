//! The unauthenticated test hooks under `/__admin/`: mutating the org, switching the faults in
//! force and changing fields. None of them needs a token or counts toward API usage.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{ApiError, json_response};
use crate::faults::Faults;
use crate::org::{FieldsRequest, MutateRequest, Org};

/// `POST /__admin/mutate`: changes the org (see [`Org::mutate`]); no auth, not counted.
pub(super) async fn mutate(State(org): State<Arc<Org>>, body: Bytes) -> Response {
    let request: MutateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", e.to_string())
                .into_response();
        }
    };
    if let Err(why) = org.check_mutation(&request) {
        let code = if org.kind_of(&request.object).is_none() {
            "INVALID_TYPE"
        } else {
            "INVALID_OPERATION"
        };
        return ApiError::new(StatusCode::BAD_REQUEST, code, why).into_response();
    }
    let response = tokio::task::spawn_blocking(move || org.mutate(request)).await;
    match response.map(|r| serde_json::to_string(&r)) {
        Ok(Ok(body)) => json_response(StatusCode::OK, body),
        Ok(Err(e)) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            e.to_string(),
        )
        .into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            e.to_string(),
        )
        .into_response(),
    }
}

/// `POST /__admin/fields`: adds, hides or shows fields (see [`Org::change_fields`]); no auth,
/// not counted.
pub(super) async fn fields(State(org): State<Arc<Org>>, body: Bytes) -> Response {
    let request: FieldsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", e.to_string())
                .into_response();
        }
    };
    match org.change_fields(&request) {
        Ok(response) => json_response(StatusCode::OK, json!(response).to_string()),
        Err(e) => ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message).into_response(),
    }
}

/// `POST /__admin/faults`: the faults to put in force, plus one-shot actions.
#[derive(Debug, serde::Deserialize)]
struct FaultsRequest {
    #[serde(flatten)]
    faults: Faults,
    /// Invalidate every access token now.
    #[serde(default)]
    expire_tokens: bool,
    /// Forget every open query cursor now.
    #[serde(default)]
    expire_cursors: bool,
}

fn faults_report(org: &Org) -> Response {
    let body = json!({"faults": org.faults(), "stats": org.fault_stats()});
    json_response(StatusCode::OK, body.to_string())
}

/// `GET /__admin/faults`: the faults in force and what they did so far.
pub(super) async fn faults(State(org): State<Arc<Org>>) -> Response {
    faults_report(&org)
}

/// `POST /__admin/faults`: replaces the faults in force (see [`Org::set_faults`]).
pub(super) async fn set_faults(State(org): State<Arc<Org>>, body: Bytes) -> Response {
    let request: FaultsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", e.to_string())
                .into_response();
        }
    };
    org.set_faults(request.faults);
    if request.expire_tokens {
        org.expire_all_tokens();
    }
    if request.expire_cursors {
        org.expire_all_cursors();
    }
    faults_report(&org)
}
