//! `GET /limits`: the org's daily API counter and Bulk job count, with fixed headroom for the
//! limits the fake does not track.

use serde_json::json;

use crate::org::Org;

/// `GET /limits`: the daily API counter plus fixed headroom for the rest.
pub(super) fn limits(org: &Org) -> serde_json::Value {
    let max = org.config().api_limit;
    let remaining = max.saturating_sub(org.api_usage());
    let fixed = |m: u64| json!({"Max": m, "Remaining": m});
    json!({
        "DailyApiRequests": {"Max": max, "Remaining": remaining},
        "DailyBulkApiBatches": fixed(15_000),
        "DailyBulkV2QueryFileStorageMB": fixed(976_562),
        "DailyBulkV2QueryJobs": {
            "Max": 10_000,
            "Remaining": 10_000u64.saturating_sub(org.jobs().created()),
        },
        "DataStorageMB": fixed(1_024),
        "FileStorageMB": fixed(1_024),
    })
}
