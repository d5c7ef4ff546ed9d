//! What Salesforce refuses for some objects, and what a sync does instead: an object the Bulk
//! API does not support is read through REST (remembered for the life of the process, logged
//! once), and a query of an object Salesforce queries only with a filter fails with an error
//! that names the `where` setting.
//!
//! Both are recognised by Salesforce's error code and the start of its message: the codes alone
//! are also used for other problems (INVALIDENTITY for an unknown entity, MALFORMED_QUERY for
//! any SOQL syntax error), and what sfsync does here only fits these two.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use crate::salesforce::SfError;

/// Objects the Bulk API refused, for the life of the process: a `--watch` daemon asks once.
#[derive(Debug, Default, Clone)]
pub struct BulkRefusals(Arc<Mutex<BTreeSet<String>>>);

impl BulkRefusals {
    /// Whether the Bulk API refused `object` before.
    pub fn refused(&self, object: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(object)
    }

    /// Remembers that the Bulk API refused `object`, and logs it the first time.
    pub fn remember(&self, object: &str, error: &anyhow::Error) {
        let new = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(object.to_owned());
        if new {
            tracing::info!(
                object,
                error = format!("{error:#}"),
                "The Bulk API does not support this object; reading it through REST from now on."
            );
        }
    }
}

/// The Salesforce error in `error`'s chain, if any.
fn salesforce_error(error: &anyhow::Error) -> Option<&SfError> {
    error.chain().find_map(|e| e.downcast_ref::<SfError>())
}

/// Whether `error` is the Bulk API refusing the object when the job is created: 400
/// `INVALIDENTITY` "Entity 'CaseStatus' is not supported by the Bulk API.".
pub(crate) fn is_bulk_refusal(error: &anyhow::Error) -> bool {
    matches!(
        salesforce_error(error),
        Some(SfError::Api { code, message, .. })
            if code == "INVALIDENTITY" && message.contains("not supported by the Bulk API")
    )
}

/// A query Salesforce answers only with a filter on certain fields, without one that fits.
#[derive(Debug, thiserror::Error)]
#[error("{object}: Salesforce queries this object only with a filter ({code}: {message}); {fix}")]
pub struct NeedsFilter {
    object: String,
    code: String,
    message: String,
    /// What to change in `sfsync.toml`.
    fix: String,
}

/// `error` as a [`NeedsFilter`] when it is Salesforce refusing a query of `object` for want of
/// a filter (400 `MALFORMED_QUERY` "Implementation restriction: ContentDocumentLink requires a
/// filter by …"); `filter` is the object's `where` setting, if it has one.
pub(super) fn needs_filter(
    object: &str,
    filter: Option<&str>,
    error: &anyhow::Error,
) -> Option<NeedsFilter> {
    let Some(SfError::Api { code, message, .. }) = salesforce_error(error) else {
        return None;
    };
    let restriction = code == "MALFORMED_QUERY"
        && message.starts_with("Implementation restriction")
        && message.to_ascii_lowercase().contains("filter");
    restriction.then(|| NeedsFilter {
        object: object.to_owned(),
        code: code.clone(),
        message: message.trim().to_owned(),
        fix: match filter {
            None => format!(
                "set where = \"…\" under [objects.{object}] in sfsync.toml to the condition it asks for"
            ),
            Some(filter) => format!(
                "the where setting under [objects.{object}] in sfsync.toml ({filter}) is not the condition it asks for; change it"
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str, message: &str) -> anyhow::Error {
        anyhow::Error::new(SfError::Api {
            status: 400,
            code: code.into(),
            message: message.into(),
        })
        .context("counting the records to read")
    }

    const RESTRICTION: &str = "Implementation restriction: ContentDocumentLink requires a filter by a single Id on ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's using the IN operator.";

    #[test]
    fn a_query_that_needs_a_filter_names_the_setting() {
        let error = needs_filter(
            "ContentDocumentLink",
            None,
            &api("MALFORMED_QUERY", RESTRICTION),
        )
        .unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "ContentDocumentLink: Salesforce queries this object only with a filter (MALFORMED_QUERY: {RESTRICTION}); set where = \"…\" under [objects.ContentDocumentLink] in sfsync.toml to the condition it asks for"
            )
        );
        let wrong = needs_filter(
            "ContentDocumentLink",
            Some("ShareType = 'V'"),
            &api("MALFORMED_QUERY", RESTRICTION),
        )
        .unwrap();
        assert!(
            wrong.to_string().ends_with("the where setting under [objects.ContentDocumentLink] in sfsync.toml (ShareType = 'V') is not the condition it asks for; change it"),
            "{wrong}"
        );
        // Other malformed queries are left as they are.
        assert!(
            needs_filter(
                "Contact",
                None,
                &api("MALFORMED_QUERY", "unexpected token: 'FROM'")
            )
            .is_none()
        );
    }

    #[test]
    fn only_an_unsupported_entity_is_a_bulk_refusal() {
        assert!(is_bulk_refusal(&api(
            "INVALIDENTITY",
            "Entity 'CaseStatus' is not supported by the Bulk API."
        )));
        assert!(!is_bulk_refusal(&api(
            "INVALIDENTITY",
            "Entity 'Nope__c' is not found."
        )));
        assert!(!is_bulk_refusal(&anyhow::anyhow!("connection reset")));
        let refusals = BulkRefusals::default();
        assert!(!refusals.refused("CaseStatus"));
        refusals.remember("CaseStatus", &anyhow::anyhow!("refused"));
        assert!(refusals.clone().refused("CaseStatus"));
    }
}
