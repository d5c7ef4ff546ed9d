//! Quota is a pause, not an exit: when the org's API usage reaches `--max-api-usage`, `sync
//! --watch` stops syncing, says so once (log, `producer status`, `sfsync_paused`), and looks
//! again each interval with the cheapest call there is, `GET /limits` (one API call and a few
//! hundred bytes; the version list costs nothing but does not report usage). Once the usage
//! has fallen below the threshold it goes on by itself.

use crate::salesforce::{SalesforceClient, SfError};

/// What `producer status` and the log say while paused.
pub const PAUSED: &str = "API quota";

/// Whether `error` is the client stopping at `--max-api-usage`.
pub fn is_quota(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| matches!(cause.downcast_ref::<SfError>(), Some(SfError::Quota { .. })))
}

/// Asks the org's usage past the client's own stop; `true` when it is below the threshold.
///
/// # Errors
/// The call failed.
pub async fn usage_fell(sf: &SalesforceClient) -> Result<bool, SfError> {
    // The client refuses every call while the last usage it saw is over the threshold: forget
    // it, so that this one call is made and reports the usage anew.
    sf.usage().forget();
    sf.get(&format!("{}/limits", sf.data_path()), &[]).await?;
    Ok(sf.usage().check().is_ok())
}
