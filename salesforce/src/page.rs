//! One page of a REST query result, decoded only as far as paging needs: the records stay raw
//! JSON so they reach the message exactly as Salesforce sent them.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::SfError;

/// A page borrowed from its response body.
#[derive(Debug, Deserialize)]
pub struct QueryPage<'a> {
    #[serde(rename = "totalSize")]
    pub total_size: u64,
    pub done: bool,
    #[serde(rename = "nextRecordsUrl")]
    pub next_records_url: Option<String>,
    #[serde(borrow)]
    pub records: Vec<&'a RawValue>,
}

impl<'a> QueryPage<'a> {
    /// Decodes a page and checks its paging fields agree.
    ///
    /// # Errors
    /// The body is not a query result, or claims more pages without saying where they are.
    pub fn parse(body: &'a [u8], url: &str) -> Result<Self, SfError> {
        let page: QueryPage<'a> = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                // Valid JSON of another shape: asking again gets the same answer.
                SfError::Protocol {
                    url: url.to_owned(),
                    detail: format!("query result not understood ({e})"),
                }
            } else {
                // A cut-off or garbled body is what a dropped connection or a proxy produces:
                // fetching the same page again is safe, so it is retried.
                SfError::Transient {
                    url: url.to_owned(),
                    detail: format!("query result is not valid JSON ({e})"),
                    retry_after: None,
                }
            }
        })?;
        if !page.done && page.next_records_url.is_none() {
            return Err(SfError::Protocol {
                url: url.to_owned(),
                detail: "page says done=false but has no nextRecordsUrl".into(),
            });
        }
        Ok(page)
    }

    /// The next page's path, if there is one.
    pub fn next(&self) -> Option<&str> {
        if self.done {
            None
        } else {
            self.next_records_url.as_deref()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pages_and_keeps_records_raw() {
        let body = br#"{"totalSize":3,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01gX-2","records":[{"Id":"a","N":9.9213206E7},{"Id":"b"}]}"#;
        let page = QueryPage::parse(body, "u").unwrap();
        assert_eq!(page.total_size, 3);
        assert_eq!(page.next(), Some("/services/data/v62.0/query/01gX-2"));
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.records[0].get(), r#"{"Id":"a","N":9.9213206E7}"#);
        let last = br#"{"totalSize":3,"done":true,"records":[{"Id":"c"}]}"#;
        assert_eq!(QueryPage::parse(last, "u").unwrap().next(), None);
    }

    #[test]
    fn refuses_inconsistent_or_cut_pages() {
        assert!(matches!(
            QueryPage::parse(br#"{"totalSize":3,"done":false,"records":[]}"#, "u"),
            Err(SfError::Protocol { .. })
        ));
        assert!(
            QueryPage::parse(br#"{"totalSize":3,"done":false,"reco"#, "u")
                .unwrap_err()
                .is_transient()
        );
        assert!(
            QueryPage::parse(b"{\"totalSize\":3,\"done\":tr\0e,\"records\":[]}", "u")
                .unwrap_err()
                .is_transient()
        );
        assert!(matches!(
            QueryPage::parse(br#"{"totalSize":"three","done":true,"records":[]}"#, "u"),
            Err(SfError::Protocol { .. })
        ));
    }
}
