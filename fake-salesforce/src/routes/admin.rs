//! The unauthenticated test hooks under `/__admin/`: mutating the org, switching the faults in
//! force, changing fields and validation rules. None of them needs a token or counts toward
//! API usage.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::error::{ApiError, json_response};
use crate::faults::Faults;
use crate::org::{FieldsRequest, MutateRequest, Org, ValidationRequest};

/// The JSON body of an admin request; 400 `JSON_PARSER_ERROR` when it does not parse.
fn request<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", e.to_string()))
}

/// `POST /__admin/mutate`: changes the org (see [`Org::mutate`]); no auth, not counted.
pub(super) async fn mutate(State(org): State<Arc<Org>>, body: Bytes) -> Result<Response, ApiError> {
    let request: MutateRequest = request(&body)?;
    if let Err(why) = org.check_mutation(&request) {
        let code = if org.kind_of(&request.object).is_none() {
            "INVALID_TYPE"
        } else {
            "INVALID_OPERATION"
        };
        return Err(ApiError::new(StatusCode::BAD_REQUEST, code, why));
    }
    let response = tokio::task::spawn_blocking(move || org.mutate(request))
        .await
        .map_err(ApiError::unknown)?;
    let body = serde_json::to_string(&response).map_err(ApiError::unknown)?;
    Ok(json_response(StatusCode::OK, body))
}

/// `POST /__admin/fields`: adds, hides or shows fields (see [`Org::change_fields`]); no auth,
/// not counted.
pub(super) async fn fields(State(org): State<Arc<Org>>, body: Bytes) -> Result<Response, ApiError> {
    let request: FieldsRequest = request(&body)?;
    match org.change_fields(&request) {
        Ok(response) => Ok(json_response(StatusCode::OK, json!(response).to_string())),
        Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message)),
    }
}

/// `POST /__admin/validation`: adds a validation rule or lifts an object's rules (see
/// [`Org::change_validation`]); no auth, not counted.
pub(super) async fn validation(
    State(org): State<Arc<Org>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: ValidationRequest = request(&body)?;
    match org.change_validation(&request) {
        Ok(response) => Ok(json_response(StatusCode::OK, json!(response).to_string())),
        Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message)),
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
    let body =
        json!({"faults": org.faults(), "stats": org.fault_stats(), "api_used": org.api_usage()});
    json_response(StatusCode::OK, body.to_string())
}

/// `GET /__admin/faults`: the faults in force and what they did so far.
pub(super) async fn faults(State(org): State<Arc<Org>>) -> Response {
    faults_report(&org)
}

/// `POST /__admin/faults`: replaces the faults in force (see [`Org::set_faults`]).
pub(super) async fn set_faults(
    State(org): State<Arc<Org>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: FaultsRequest = request(&body)?;
    org.set_faults(request.faults);
    if request.expire_tokens {
        org.expire_all_tokens();
    }
    if request.expire_cursors {
        org.expire_all_cursors();
    }
    Ok(faults_report(&org))
}
