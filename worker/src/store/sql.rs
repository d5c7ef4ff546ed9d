//! The text of the statements that store a page: the staging table, the COPYs and the guarded
//! upsert. Table and column names come from the catalog and are quoted; the only values written
//! into the text are a uuid and two integers.

use common::schema::{qualified, quote_ident};
use uuid::Uuid;

use super::plan::PagePlan;

/// Creates the page's staging table: `_n` (the row's position, in Id order) and one text column
/// per planned column. Dropped at commit, so no staging state outlives the page, whatever the
/// table looks like next.
pub(super) fn create_stage(plan: &PagePlan<'_>) -> String {
    let columns: Vec<String> = plan
        .quoted_names()
        .into_iter()
        .map(|name| format!("{name} text"))
        .collect();
    format!(
        "CREATE TEMP TABLE _sfsync_stage (_n integer, {}) ON COMMIT DROP",
        columns.join(", ")
    )
}

/// COPY into the staging table.
pub(super) fn copy_into_stage(plan: &PagePlan<'_>) -> String {
    format!(
        "COPY _sfsync_stage (_n, {}) FROM STDIN",
        plan.quoted_names().join(", ")
    )
}

/// COPY straight into the target table; `_sfsync_synced_at` is left to its default, now(),
/// which is what the upsert writes as well.
pub(super) fn copy_into_table(table: &str, plan: &PagePlan<'_>) -> String {
    format!(
        "COPY {} ({}, _sfsync_run_id) FROM STDIN",
        qualified(table),
        plan.quoted_names().join(", ")
    )
}

/// What the upsert may do besides updating rows under the modstamp guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Insert new rows; update existing ones when the incoming stamp is newer, or equal with
    /// different data.
    Guarded,
    /// As [`Mode::Guarded`], but update whenever the data differs, whatever the stamps (a
    /// reconcile's forced page).
    Forced,
    /// As [`Mode::Guarded`], but never insert: a refresh page carries only some fields.
    ExistingOnly,
}

/// The upsert of staged rows `_n` in `[lo, hi)` into the target table.
pub(super) fn upsert(
    table: &str,
    plan: &PagePlan<'_>,
    run_id: Uuid,
    lo: usize,
    hi: usize,
    mode: Mode,
) -> String {
    let table = qualified(table);
    let names = plan.quoted_names();
    let casts: Vec<String> = plan
        .fields
        .iter()
        .map(|(_, _, c)| format!("s.{}::{}", quote_ident(&c.name), c.base_type))
        .collect();
    let data: Vec<&String> = plan
        .fields
        .iter()
        .zip(&names)
        .filter(|((_, _, c), _)| c.name != "sfid")
        .map(|(_, n)| n)
        .collect();
    let updates: Vec<String> = data.iter().map(|n| format!("{n} = EXCLUDED.{n}")).collect();
    let stored: Vec<String> = data.iter().map(|n| format!("t.{n}")).collect();
    let incoming: Vec<String> = data.iter().map(|n| format!("EXCLUDED.{n}")).collect();
    // The guard: a newer SystemModstamp wins. An equal one wins only if the data differs:
    // Salesforce stamps to the second, so two saves within one second share a stamp, and an
    // identical re-read must not rewrite the row. A forced page (reconcile) wins whenever the
    // data differs, even over a stored stamp that claims to be newer.
    let changed = format!(
        "({}) IS DISTINCT FROM ({})",
        stored.join(", "),
        incoming.join(", ")
    );
    let guard = if mode == Mode::Forced {
        changed
    } else {
        format!(
            "t.systemmodstamp < EXCLUDED.systemmodstamp OR (t.systemmodstamp = EXCLUDED.systemmodstamp AND {changed})"
        )
    };
    let existing_only = if mode == Mode::ExistingOnly {
        format!(" AND EXISTS (SELECT 1 FROM {table} e WHERE e.sfid = s.sfid)")
    } else {
        String::new()
    };
    format!(
        "INSERT INTO {table} AS t ({cols}, _sfsync_run_id, _sfsync_synced_at)
         SELECT DISTINCT ON (s.sfid COLLATE \"C\") {casts}, '{run_id}'::uuid, now()
           FROM _sfsync_stage s
          WHERE s._n >= {lo} AND s._n < {hi}{existing_only}
          ORDER BY s.sfid COLLATE \"C\", s.systemmodstamp::timestamptz DESC
         ON CONFLICT (sfid) DO UPDATE SET {updates}, _sfsync_run_id = EXCLUDED._sfsync_run_id, _sfsync_synced_at = EXCLUDED._sfsync_synced_at
          WHERE {guard}",
        cols = names.join(", "),
        casts = casts.join(", "),
        updates = updates.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Column;

    #[test]
    fn upsert_dedupes_sorts_and_guards_on_modstamp() {
        let fields = [
            ("Id", "sfid", "character varying"),
            (
                "SystemModstamp",
                "systemmodstamp",
                "timestamp with time zone",
            ),
            ("LastName", "lastname", "text"),
        ];
        let plan = PagePlan {
            fields: fields
                .iter()
                .enumerate()
                .map(|(i, (f, c, t))| {
                    (
                        *f,
                        i,
                        Column {
                            name: (*c).into(),
                            base_type: (*t).into(),
                        },
                    )
                })
                .collect(),
        };
        let sql = upsert("contact", &plan, Uuid::nil(), 10, 20, Mode::Guarded);
        assert!(sql.contains(r#"DISTINCT ON (s.sfid COLLATE "C")"#), "{sql}");
        assert!(
            sql.contains(r#"ORDER BY s.sfid COLLATE "C", s.systemmodstamp::timestamptz DESC"#),
            "{sql}"
        );
        assert!(sql.contains(r#"s."lastname"::text"#), "{sql}");
        assert!(sql.contains("WHERE s._n >= 10 AND s._n < 20"), "{sql}");
        assert!(
            sql.contains("'00000000-0000-0000-0000-000000000000'::uuid"),
            "{sql}"
        );
        assert!(
            sql.contains("WHERE t.systemmodstamp < EXCLUDED.systemmodstamp"),
            "{sql}"
        );
        assert!(
            sql.contains(r#"OR (t.systemmodstamp = EXCLUDED.systemmodstamp AND (t."systemmodstamp", t."lastname") IS DISTINCT FROM (EXCLUDED."systemmodstamp", EXCLUDED."lastname"))"#),
            "{sql}"
        );
        assert!(
            !sql.contains(r#""sfid" = EXCLUDED"#),
            "the key is never updated: {sql}"
        );
        assert!(!sql.contains("EXISTS"), "a records page inserts: {sql}");
        let refresh = upsert("contact", &plan, Uuid::nil(), 0, 1, Mode::ExistingOnly);
        assert!(
            refresh.contains(
                r#"AND EXISTS (SELECT 1 FROM "salesforce"."contact" e WHERE e.sfid = s.sfid)"#
            ),
            "{refresh}"
        );
        assert!(
            refresh.contains("WHERE t.systemmodstamp < EXCLUDED.systemmodstamp"),
            "a refresh keeps the guard: {refresh}"
        );
        let forced = upsert("contact", &plan, Uuid::nil(), 0, 1, Mode::Forced);
        assert!(
            !forced.contains("t.systemmodstamp < EXCLUDED.systemmodstamp"),
            "a forced page ignores the stamps: {forced}"
        );
        assert!(forced.contains("IS DISTINCT FROM"), "{forced}");
        assert_eq!(
            create_stage(&plan),
            r#"CREATE TEMP TABLE _sfsync_stage (_n integer, "sfid" text, "systemmodstamp" text, "lastname" text) ON COMMIT DROP"#
        );
        assert_eq!(
            copy_into_table("contact", &plan),
            r#"COPY "salesforce"."contact" ("sfid", "systemmodstamp", "lastname", _sfsync_run_id) FROM STDIN"#
        );
    }
}
