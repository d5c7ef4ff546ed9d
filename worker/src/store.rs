//! Storing one page: COPY the records into a temporary staging table, then one
//! `INSERT … SELECT … ON CONFLICT (sfid) DO UPDATE … WHERE stored.systemmodstamp < incoming`
//! that de-duplicates by Id (newest wins) and takes row locks in Id order, so concurrent
//! workers cannot deadlock each other. The page's row in `sfsync.page_results` is written in
//! the same transaction. COPY then one set-based upsert was the fastest path measured
//! (DESIGN.md).

use bytes::Bytes;
use common::{
    schema::{column_name, qualified_table, quote_ident},
    sfid::SalesforceId,
    sftime::parse_datetime,
};
use futures::SinkExt;

use crate::{
    copy_text::{push_null, push_text, push_value},
    decode::Page,
    error::{ErrorClass, PageError},
    table::{Column, TableShape, TableShapes},
};

/// What storing a page did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub records: u64,
    /// Rows inserted or updated; records older than (or as old as) the stored row change nothing.
    pub rows_written: u64,
}

/// The columns a page writes, in COPY order: (field name as the records have it, column).
struct PagePlan<'a> {
    fields: Vec<(&'a str, Column)>,
}

/// Matches the page's field names to the table's columns. Returns the names with no column.
fn plan<'a>(page: &Page<'a>, shape: &TableShape) -> (PagePlan<'a>, Vec<&'a str>) {
    let mut names: Vec<&'a str> = Vec::new();
    for record in &page.records {
        for key in record.keys() {
            if *key != "attributes" && !names.contains(key) {
                names.push(key);
            }
        }
    }
    let mut fields = Vec::with_capacity(names.len());
    let mut unmatched = Vec::new();
    for name in names {
        match shape.columns.get(&column_name(name)) {
            Some(column) => fields.push((name, column.clone())),
            None => unmatched.push(name),
        }
    }
    (PagePlan { fields }, unmatched)
}

/// Writes the records as COPY text rows, checking each record's Id and SystemModstamp.
fn copy_rows(page: &Page<'_>, plan: &PagePlan<'_>) -> Result<Vec<u8>, PageError> {
    let mut out = Vec::with_capacity(page.records.len() * 512);
    for (index, record) in page.records.iter().enumerate() {
        let id_raw = record.get("Id").map(|v| v.get()).unwrap_or("null");
        let id: Result<SalesforceId, String> = serde_json::from_str::<String>(id_raw)
            .map_err(|_| format!("Id {id_raw} is not a string"))
            .and_then(|s| SalesforceId::parse(&s).map_err(|e| e.to_string()));
        let id = id.map_err(|e| {
            PageError::permanent(
                ErrorClass::Mapping,
                format!("record {index} of page {}: {e}", page.page),
            )
        })?;
        let stamp_raw = record
            .get("SystemModstamp")
            .map(|v| v.get())
            .unwrap_or("null");
        let stamp_ok = serde_json::from_str::<String>(stamp_raw)
            .ok()
            .is_some_and(|s| parse_datetime(&s).is_ok());
        if !stamp_ok {
            return Err(PageError::permanent(
                ErrorClass::Mapping,
                format!("record {id}: SystemModstamp {stamp_raw} is not a Salesforce datetime"),
            ));
        }
        for (i, (name, column)) in plan.fields.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            if column.name == "sfid" {
                // Stored in its 18-character form, whatever length Salesforce sent.
                push_text(&mut out, id.as_str())
                    .map_err(|e| PageError::permanent(ErrorClass::Mapping, e.to_string()))?;
                continue;
            }
            match record.get(name) {
                Some(raw) => push_value(&mut out, raw).map_err(|e| {
                    PageError::permanent(
                        ErrorClass::Mapping,
                        format!("record {id}: field {name} {e}"),
                    )
                })?,
                None => push_null(&mut out),
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// The upsert from the staging table into the target table.
fn upsert_sql(object: &str, plan: &PagePlan<'_>, guard: &str) -> String {
    let table = qualified_table(object);
    let columns: Vec<String> = plan
        .fields
        .iter()
        .map(|(_, c)| quote_ident(&c.name))
        .collect();
    let casts: Vec<String> = plan
        .fields
        .iter()
        .map(|(_, c)| format!("s.{}::{}", quote_ident(&c.name), c.base_type))
        .collect();
    let updates: Vec<String> = plan
        .fields
        .iter()
        .filter(|(_, c)| c.name != "sfid")
        .map(|(_, c)| format!("{0} = EXCLUDED.{0}", quote_ident(&c.name)))
        .collect();
    format!(
        "INSERT INTO {table} AS t ({cols}, _sfsync_run_id, _sfsync_synced_at)
         SELECT DISTINCT ON (s.sfid) {casts}, $1::uuid, now()
           FROM _sfsync_stage s
          ORDER BY s.sfid, s.systemmodstamp::timestamptz DESC
         ON CONFLICT (sfid) DO UPDATE SET {updates}, _sfsync_run_id = EXCLUDED._sfsync_run_id, _sfsync_synced_at = EXCLUDED._sfsync_synced_at
          WHERE t.systemmodstamp {guard} EXCLUDED.systemmodstamp",
        cols = columns.join(", "),
        casts = casts.join(", "),
        updates = updates.join(", "),
    )
}

/// Stores one page in one transaction.
///
/// # Errors
/// [`PageError::Transient`] for connection trouble, deadlocks and the like (the caller
/// retries); [`PageError::Permanent`] when the data or the table cannot take the page.
pub async fn store_page(
    pool: &deadpool_postgres::Pool,
    shapes: &TableShapes,
    page: &Page<'_>,
) -> Result<Stored, PageError> {
    let mut client = pool.get().await?;
    let mut shape = shapes.get(&client, &page.object).await?;
    let (mut page_plan, mut unmatched) = plan(page, &shape);
    if !unmatched.is_empty() {
        // The producer may have added columns since the shape was cached.
        shape = shapes.reload(&client, &page.object).await?;
        (page_plan, unmatched) = plan(page, &shape);
        if !unmatched.is_empty() {
            tracing::debug!(object = %page.object, fields = ?unmatched, "Fields without a column are not stored.");
        }
    }
    for required in ["sfid", "systemmodstamp"] {
        if !page_plan.fields.iter().any(|(_, c)| c.name == required) {
            return Err(PageError::permanent(
                ErrorClass::Schema,
                format!(
                    "page {} of {} has no {required} value or its table has no {required} column",
                    page.page, page.object
                ),
            ));
        }
    }
    let rows = copy_rows(page, &page_plan)?;

    let stage_columns: Vec<String> = page_plan
        .fields
        .iter()
        .map(|(_, c)| format!("{} text", quote_ident(&c.name)))
        .collect();
    let stage_names: Vec<String> = page_plan
        .fields
        .iter()
        .map(|(_, c)| quote_ident(&c.name))
        .collect();
    let tx = client.transaction().await?;
    // Dropped at commit: no staging state outlives the page, whatever the table looks like next.
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE _sfsync_stage ({}) ON COMMIT DROP",
        stage_columns.join(", ")
    ))
    .await?;
    let sink = tx
        .copy_in(&format!(
            "COPY _sfsync_stage ({}) FROM STDIN",
            stage_names.join(", ")
        ))
        .await?;
    futures::pin_mut!(sink);
    sink.send(Bytes::from(rows)).await?;
    sink.finish().await?;
    let rows_written = tx
        .execute(&upsert_sql(&page.object, &page_plan, "<"), &[&page.run_id])
        .await?;
    let records = page.records.len() as i64;
    tx.execute(
        "INSERT INTO sfsync.page_results (run_id, page, object, records, records_stored, records_dead)
         VALUES ($1, $2, $3, $4, $4, 0)
         ON CONFLICT (run_id, page) DO UPDATE
            SET records = EXCLUDED.records, records_stored = EXCLUDED.records_stored,
                records_dead = EXCLUDED.records_dead, processed_at = now()",
        &[&page.run_id, &(page.page as i64), &page.object, &records],
    )
    .await?;
    tx.commit().await?;
    Ok(Stored {
        records: records as u64,
        rows_written,
    })
}

/// Lets tests and tools see the SQL a page would run.
pub fn describe_upsert(object: &str, fields: &[(&str, &str, &str)]) -> String {
    let plan = PagePlan {
        fields: fields
            .iter()
            .map(|(f, c, t)| {
                (
                    *f,
                    Column {
                        name: (*c).into(),
                        base_type: (*t).into(),
                    },
                )
            })
            .collect(),
    };
    upsert_sql(object, &plan, "<")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_dedupes_sorts_and_guards_on_modstamp() {
        let sql = describe_upsert(
            "Contact",
            &[
                ("Id", "sfid", "character varying"),
                (
                    "SystemModstamp",
                    "systemmodstamp",
                    "timestamp with time zone",
                ),
                ("LastName", "lastname", "text"),
            ],
        );
        assert!(sql.contains("DISTINCT ON (s.sfid)"), "{sql}");
        assert!(
            sql.contains("ORDER BY s.sfid, s.systemmodstamp::timestamptz DESC"),
            "{sql}"
        );
        assert!(sql.contains(r#"s."lastname"::text"#), "{sql}");
        assert!(
            sql.contains("WHERE t.systemmodstamp < EXCLUDED.systemmodstamp"),
            "{sql}"
        );
        assert!(
            !sql.contains(r#""sfid" = EXCLUDED"#),
            "the key is never updated: {sql}"
        );
    }
}
