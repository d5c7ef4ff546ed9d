//! SOQL over REST: `query`/`queryAll` for the first page, `queryMore` (a `nextRecordsUrl`) for
//! the next; each body checked to be a query result inside the retries.

use bytes::Bytes;

use super::{SalesforceClient, SfError, page::QueryPage};

impl SalesforceClient {
    /// Runs SOQL through `query` (or `queryAll`, which includes deleted records) and returns
    /// the first page's raw body, checked to be a query result (a garbled one is fetched
    /// again).
    ///
    /// # Errors
    /// Salesforce refused the query, or the call failed after retries.
    pub async fn query(
        &self,
        soql: &str,
        include_deleted: bool,
        batch_size: u32,
    ) -> Result<Bytes, SfError> {
        let resource = if include_deleted { "queryAll" } else { "query" };
        let encoded: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        let path = format!("{}/{resource}?q={encoded}", self.data_path());
        self.get_checked(
            &path,
            &[("Sforce-Query-Options", format!("batchSize={batch_size}"))],
            |body| QueryPage::parse(body, resource).map(drop),
        )
        .await
    }

    /// Fetches the page a `nextRecordsUrl` points at (a path relative to the instance).
    ///
    /// # Errors
    /// The locator is invalid or expired (`INVALID_QUERY_LOCATOR`), or the call failed.
    pub async fn query_more(
        &self,
        next_records_url: &str,
        batch_size: u32,
    ) -> Result<Bytes, SfError> {
        if !next_records_url.starts_with("/services/data/") {
            return Err(SfError::Protocol {
                url: next_records_url.to_owned(),
                detail: "nextRecordsUrl is not a /services/data/ path".into(),
            });
        }
        self.get_checked(
            next_records_url,
            &[("Sforce-Query-Options", format!("batchSize={batch_size}"))],
            |body| QueryPage::parse(body, next_records_url).map(drop),
        )
        .await
    }
}
