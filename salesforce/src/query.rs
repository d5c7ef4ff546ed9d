//! SOQL over REST: `query`/`queryAll` for the first page, `queryMore` (a `nextRecordsUrl`) for
//! the next; each body checked to be a query result inside the retries. The SOQL travels in the
//! URL, so this is also where the size of a query's request line is measured.

use bytes::Bytes;

use super::{SalesforceClient, SfError, page::QueryPage};

/// Salesforce answers `414 URI Too Long` to a request line (method, target and HTTP version)
/// longer than this many bytes.
pub const MAX_REQUEST_LINE: usize = 16_384;

/// The longest request line sfsync sends: Salesforce's limit less a margin for what may be
/// added on the way (a proxy that sends the absolute URL with scheme and host, a longer API
/// version). About 19 fields fewer per request than the limit would allow.
pub const REQUEST_LINE_BUDGET: usize = MAX_REQUEST_LINE - 512;

/// Bytes `s` takes in a URL query string once encoded as `url::form_urlencoded` encodes it:
/// letters, digits and `*-._` stay, a space becomes `+`, every other byte `%XX`. Additive
/// (`encoded_len(a + b) == encoded_len(a) + encoded_len(b)`), so a request's size can be summed
/// from its parts.
pub fn encoded_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' | b' ' => 1,
            _ => 3,
        })
        .sum()
}

/// The request line of a query: `GET <data_path>/<resource>?q=<soql> HTTP/1.1`, in bytes.
pub fn query_request_line(data_path: &str, include_deleted: bool, soql: &str) -> usize {
    let resource = if include_deleted { "queryAll" } else { "query" };
    "GET ".len()
        + data_path.len()
        + 1
        + resource.len()
        + "?q=".len()
        + encoded_len(soql)
        + " HTTP/1.1".len()
}

impl<M: crate::ApiMetrics> SalesforceClient<M> {
    /// Runs SOQL through `query` (or `queryAll`, which includes deleted records) and returns
    /// the first page's raw body, checked to be a query result (a garbled one is fetched
    /// again).
    ///
    /// # Errors
    /// Salesforce refused the query, or the call failed after retries; a query whose request
    /// line would be over [`MAX_REQUEST_LINE`] is refused here, with its size, rather than sent
    /// for a `414`.
    pub async fn query(
        &self,
        soql: &str,
        include_deleted: bool,
        batch_size: u32,
    ) -> Result<Bytes, SfError> {
        let resource = if include_deleted { "queryAll" } else { "query" };
        let line = self.query_request_line(soql, include_deleted);
        if line > MAX_REQUEST_LINE {
            return Err(SfError::Config(format!(
                "a {resource} request line of {line} bytes is over Salesforce's {MAX_REQUEST_LINE} (it answers 414 URI Too Long); \
                 the SOQL starts {:?}",
                soql.chars().take(120).collect::<String>()
            )));
        }
        let encoded: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        let path = format!("{}/{resource}?q={encoded}", self.data_path());
        self.get_checked(
            &path,
            &[("Sforce-Query-Options", format!("batchSize={batch_size}"))],
            |body| QueryPage::parse(body, resource).map(drop),
        )
        .await
    }

    /// The bytes of the request line [`SalesforceClient::query`] would send for `soql`.
    pub fn query_request_line(&self, soql: &str, include_deleted: bool) -> usize {
        query_request_line(&self.data_path(), include_deleted, soql)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_what_the_encoder_writes() {
        for soql in [
            "SELECT Id, Name FROM Contact WHERE SystemModstamp >= 2024-01-15T10:20:30Z",
            "SELECT Id FROM Wide__c WHERE Id IN ('a0W000000000001AAA','a0W000000000002AAA')",
            "x*-._~!é\u{1F600}(),'=+&%",
        ] {
            let encoded: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
            assert_eq!(encoded_len(soql), encoded.len(), "{soql}");
        }
        // About 27 bytes a field, as measured on real orgs.
        assert_eq!(encoded_len(", Custom_Field_12__c"), 4 + 18);
        assert_eq!(encoded_len(",'a0W000000000001AAA'"), 27);
    }

    #[test]
    fn the_request_line_counts_method_path_query_and_version() {
        let soql = "SELECT Id FROM Contact";
        assert_eq!(
            query_request_line("/services/data/v62.0", true, soql),
            "GET /services/data/v62.0/queryAll?q=SELECT+Id+FROM+Contact HTTP/1.1".len()
        );
        assert_eq!(
            query_request_line("/services/data/v62.0", false, soql),
            "GET /services/data/v62.0/query?q=SELECT+Id+FROM+Contact HTTP/1.1".len()
        );
    }
}
