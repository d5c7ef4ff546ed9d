//! getDeleted: the records removed from the recycle bin in a time window, which queryAll can no
//! longer show.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{SalesforceClient, SfError};

impl SalesforceClient {
    /// Records deleted in `[start, end)` as getDeleted reports them: (Id, deletion time).
    /// Salesforce keeps them for about 15 days and answers windows of at most 30 days.
    ///
    /// # Errors
    /// The window is refused (INVALID_REPLICATION_DATE) or the call failed.
    pub async fn get_deleted(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, SfError> {
        #[derive(Deserialize)]
        struct Deleted {
            id: String,
            #[serde(rename = "deletedDate")]
            deleted_date: String,
        }
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "deletedRecords", default)]
            deleted_records: Vec<Deleted>,
        }
        let enc = |t: DateTime<Utc>| {
            url::form_urlencoded::byte_serialize(common::sftime::format_soql(t).as_bytes())
                .collect::<String>()
        };
        let path = format!(
            "{}/sobjects/{object}/deleted/?start={}&end={}",
            self.data_path(),
            enc(start),
            enc(end)
        );
        let body = self.get(&path, &[]).await?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| SfError::Protocol {
            url: path,
            detail: format!("getDeleted answer not understood: {e}"),
        })?;
        Ok(answer
            .deleted_records
            .into_iter()
            .map(|d| (d.id, d.deleted_date))
            .collect())
    }
}
