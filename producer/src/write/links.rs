//! A new child and its new parent, created in one go. A Contact the application inserts under
//! an Account it has just inserted cannot carry the Account's Id: Salesforce has not assigned
//! it yet. So each reference column in `write` that points to one object (`accountid` of a
//! Contact) gets a column beside it, `<column>_row` (`accountid_row`), where the application
//! names the parent's row by its local `id`. When the child's create is claimed with the
//! reference column empty and `<column>_row` set, the parent's Id is taken from the parent's
//! row; while the parent has none (its create is pending or in flight), the child waits, as a
//! record's updates wait for its own create. The read-back then writes the Id into the child's
//! reference column.

use std::collections::BTreeMap;

use common::schema::{column_name, qualified, quote_ident};
use sqlx::{AssertSqlSafe, PgPool};

use crate::salesforce::Describe;

/// The column that names a parent's local row beside reference column `column`.
pub fn row_column(column: &str) -> String {
    format!("{column}_row")
}

/// A reference write column whose parent may be a row created here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentLink {
    /// The reference column (`accountid`).
    pub column: String,
    /// Where the application names the parent's local row (`accountid_row`).
    pub row_column: String,
    /// The parent object's table, in schema `salesforce`.
    pub parent_table: String,
}

/// The reference fields among `columns` (write columns) that point to exactly one object: the
/// columns that get a `<column>_row` beside them. (A polymorphic field, such as a Task's
/// WhoId, cannot say which table its parent row is in.)
pub fn reference_columns(describe: &Describe, columns: &[String]) -> Vec<(String, String)> {
    describe
        .fields
        .iter()
        .filter(|f| f.sf_type == "reference" && f.reference_to.len() == 1)
        .map(|f| (column_name(&f.name), f.reference_to[0].clone()))
        .filter(|(column, _)| columns.contains(column))
        .collect()
}

/// Adds `<column>_row` beside each of `columns` (reference write columns) that lacks one.
///
/// # Errors
/// The database refused a statement.
pub async fn install(pool: &PgPool, table: &str, columns: &[String]) -> sqlx::Result<()> {
    for column in columns {
        sqlx::query(AssertSqlSafe(format!(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} bigint",
            qualified(table),
            quote_ident(&row_column(column))
        )))
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// The links of an object as its table has them: each reference field with one target whose
/// `<column>_row` exists among `table_columns`, with the target's table (`table_of`).
pub fn links(
    describe: &Describe,
    table_columns: &[String],
    table_of: impl Fn(&str) -> String,
) -> Vec<ParentLink> {
    let references: BTreeMap<String, String> = describe
        .fields
        .iter()
        .filter(|f| f.sf_type == "reference" && f.reference_to.len() == 1)
        .map(|f| (column_name(&f.name), f.reference_to[0].clone()))
        .collect();
    references
        .into_iter()
        .filter(|(column, _)| table_columns.contains(&row_column(column)))
        .map(|(column, parent)| ParentLink {
            row_column: row_column(&column),
            column,
            parent_table: table_of(&parent),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::DescribeField;

    fn field(name: &str, sf_type: &str, reference_to: &[&str]) -> DescribeField {
        DescribeField {
            name: name.into(),
            sf_type: sf_type.into(),
            calculated: false,
            updateable: true,
            external_id: false,
            reference_to: reference_to.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn only_single_target_references_in_write_get_a_row_column() {
        let describe = Describe {
            name: "Task".into(),
            queryable: true,
            replicateable: true,
            fields: vec![
                field("WhatId", "reference", &["Account"]),
                field("WhoId", "reference", &["Contact", "Lead"]),
                field("OwnerId", "reference", &["User"]),
                field("Subject", "string", &[]),
            ],
        };
        let write: Vec<String> = ["whatid", "whoid", "subject"].map(String::from).to_vec();
        assert_eq!(
            reference_columns(&describe, &write),
            [("whatid".to_owned(), "Account".to_owned())]
        );
        let columns: Vec<String> = ["whatid", "whatid_row", "subject"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            links(&describe, &columns, |o| o.to_lowercase()),
            [ParentLink {
                column: "whatid".into(),
                row_column: "whatid_row".into(),
                parent_table: "account".into(),
            }]
        );
    }
}
