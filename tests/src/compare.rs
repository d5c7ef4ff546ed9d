//! Field-by-field comparison of a table against the org: every record present, every value
//! equal in meaning (a `+0000` datetime equals the stored timestamptz, `9.9213206E7` equals
//! the stored numeric, a text with NUL characters equals the stored text without them, which
//! PostgreSQL cannot hold). Compound values (an address, a location) are not stored as such:
//! their components are, and those are compared.

use std::collections::HashMap;

use serde_json::{Map, Value};
use sqlx::PgPool;

/// Rows of `salesforce.<table>` as JSON objects keyed by sfid.
pub async fn table_rows(
    pool: &PgPool,
    table: &str,
) -> anyhow::Result<HashMap<String, Map<String, Value>>> {
    let rows: Vec<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT to_jsonb(t) FROM salesforce.{table} t"
    )))
    .fetch_all(pool)
    .await?;
    let mut by_id = HashMap::new();
    for row in rows {
        if let Value::Object(map) = row {
            let id = map["sfid"].as_str().unwrap_or_default().to_owned();
            anyhow::ensure!(
                by_id.insert(id.clone(), map).is_none(),
                "sfid {id} stored twice"
            );
        }
    }
    Ok(by_id)
}

/// Whether a value from the org and one from the database mean the same.
pub fn same_value(org: &Value, db: &Value) -> bool {
    match (org, db) {
        (Value::Null, Value::Null) => true,
        (Value::String(a), Value::String(b)) if a == b => true,
        (Value::String(a), Value::String(b)) if a.contains('\0') => a.replace('\0', "") == *b,
        (Value::String(a), Value::String(b)) => match (
            common::sftime::parse_datetime(a),
            common::sftime::parse_datetime(b),
        ) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        },
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Bool(a), Value::Bool(b)) => a == b,
        _ => false,
    }
}

/// Compares org records with table rows; returns one line per difference (empty when equal).
pub fn differences(
    org_records: impl IntoIterator<Item = Map<String, Value>>,
    rows: &HashMap<String, Map<String, Value>>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut seen = 0usize;
    for record in org_records {
        seen += 1;
        let id = record["Id"].as_str().unwrap_or_default();
        let Some(row) = rows.get(id) else {
            diffs.push(format!("{id}: missing from the table"));
            continue;
        };
        for (field, value) in &record {
            if field == "attributes" || value.is_object() {
                continue;
            }
            let column = common::schema::column_name(field);
            let stored = row.get(&column).unwrap_or(&Value::Null);
            if !same_value(value, stored) {
                diffs.push(format!("{id}.{field}: org {value} != table {stored}"));
            }
        }
    }
    if rows.len() != seen {
        diffs.push(format!(
            "table has {} rows, org has {seen} records",
            rows.len()
        ));
    }
    diffs
}

/// Panics, naming the count and the first differences, unless the rows equal the org records.
pub fn assert_no_differences(
    org_records: impl IntoIterator<Item = Map<String, Value>>,
    rows: &HashMap<String, Map<String, Value>>,
) {
    assert_none(&differences(org_records, rows));
}

/// Panics unless `salesforce.<table>` holds exactly the org records, field by field.
pub async fn assert_table_matches(
    pool: &sqlx::PgPool,
    table: &str,
    org_records: impl IntoIterator<Item = Map<String, Value>>,
) {
    let diffs = table_differences(pool, table, org_records, Others::AreDifferences)
        .await
        .unwrap();
    assert_none(&diffs);
}

/// Panics unless every org record equals its row and every other row of `table` (a record
/// gone from the org without a trace) is marked deleted.
pub async fn assert_live_rows_match(
    pool: &sqlx::PgPool,
    table: &str,
    org_records: impl IntoIterator<Item = Map<String, Value>>,
) {
    let diffs = table_differences(pool, table, org_records, Others::MustBeMarkedDeleted)
        .await
        .unwrap();
    assert_none(&diffs);
}

/// What rows without a record in the org are.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Others {
    AreDifferences,
    MustBeMarkedDeleted,
    /// Not looked at: the caller compares only some of the org's records.
    AreIgnored,
}

/// Org records compared with their rows a few thousand at a time, so that a 300,000-record
/// object of 250 fields is compared in bounded memory; then the rows with no record in the org.
pub async fn table_differences(
    pool: &sqlx::PgPool,
    table: &str,
    org_records: impl IntoIterator<Item = Map<String, Value>>,
    others: Others,
) -> anyhow::Result<Vec<String>> {
    const CHUNK: usize = 2_000;
    let mut diffs = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let mut records = org_records.into_iter().peekable();
    while records.peek().is_some() {
        let chunk: Vec<_> = records.by_ref().take(CHUNK).collect();
        let chunk_ids: Vec<String> = chunk
            .iter()
            .map(|r| r["Id"].as_str().unwrap_or_default().to_owned())
            .collect();
        let rows: Vec<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT to_jsonb(t) FROM salesforce.{table} t WHERE sfid = ANY($1)"
        )))
        .bind(&chunk_ids)
        .fetch_all(pool)
        .await?;
        let rows = rows
            .into_iter()
            .filter_map(|row| match row {
                Value::Object(map) => Some((map["sfid"].as_str()?.to_owned(), map)),
                _ => None,
            })
            .collect::<HashMap<_, _>>();
        diffs.extend(
            differences(chunk, &rows)
                .into_iter()
                .filter(|d| !d.starts_with("table has")),
        );
        ids.extend(chunk_ids);
    }
    let all: Vec<(String, Option<bool>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT sfid, (to_jsonb(t)->>'isdeleted')::boolean FROM salesforce.{table} t"
    )))
    .fetch_all(pool)
    .await?;
    let unexpected = all
        .iter()
        .filter(|(id, deleted)| {
            !ids.contains(id) && (others == Others::AreDifferences || *deleted != Some(true))
        })
        .count();
    if others == Others::AreIgnored {
        return Ok(diffs);
    }
    if all.len() != ids.len() && others == Others::AreDifferences {
        diffs.push(format!(
            "table has {} rows, org has {} records",
            all.len(),
            ids.len()
        ));
    } else if unexpected > 0 {
        diffs.push(format!(
            "{unexpected} rows have no record in the org and are not marked deleted"
        ));
    }
    Ok(diffs)
}

/// Panics, naming the count and the first differences, unless there are none.
fn assert_none(diffs: &[String]) {
    assert!(
        diffs.is_empty(),
        "{} differences, first: {:?}",
        diffs.len(),
        &diffs[..diffs.len().min(5)]
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_compare_by_meaning() {
        assert!(same_value(
            &json!("2013-05-20T20:49:32.000+0000"),
            &json!("2013-05-20T20:49:32+00:00")
        ));
        assert!(!same_value(
            &json!("2013-05-20T20:49:33.000+0000"),
            &json!("2013-05-20T20:49:32+00:00")
        ));
        assert!(same_value(
            &serde_json::from_str::<Value>("9.9213206E7").unwrap(),
            &json!(99213206)
        ));
        assert!(!same_value(&json!("a"), &json!("b")));
        assert!(!same_value(&json!(null), &json!("")));
    }
}
