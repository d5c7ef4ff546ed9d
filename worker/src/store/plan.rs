//! Which columns a page writes: the records' field names matched to the target table's
//! columns, in the order the COPY text carries them; and where the `systemmodstamp` column
//! takes its value from on objects without SystemModstamp (the field the page names, or a
//! constant).

use common::{message::Stamp, schema::column_name};

use super::check::Valid;
use crate::{
    decode::RawRecord,
    table::{Column, TableShape},
};

/// The columns a page writes, in COPY order.
pub(super) struct PagePlan<'a> {
    /// (field name as the records have it, its usual position in a record, column).
    pub fields: Vec<(&'a str, usize, Column)>,
}

/// The name a plan gives the `systemmodstamp` column of an object with no stamp at all: no
/// record has a field by this name, so [`super::copy`] writes [`common::message::NO_STAMP`]
/// there.
pub(super) const CONSTANT_STAMP: &str = "";

/// The `systemmodstamp` column, which the upsert's guard reads.
const STAMP_COLUMN: &str = "systemmodstamp";

/// Matches the records' field names to the table's columns; `stamp` is the field that holds the
/// records' stamp ([`common::message::PageMessage::stamp_field`]). Returns the names with no
/// column.
pub(super) fn plan<'a>(
    records: &[Valid<'a>],
    shape: &TableShape,
    stamp: Option<&str>,
) -> (PagePlan<'a>, Vec<&'a str>) {
    // (name, position in the first record that has it)
    let mut names: Vec<(&'a str, usize)> = Vec::new();
    let mut previous: Option<&RawRecord<'a>> = None;
    for record in records {
        // Records of a page nearly always share one field order: only a record whose names
        // differ from the one before it can add a name.
        if previous.is_some_and(|p| p.same_names(&record.fields)) {
            continue;
        }
        previous = Some(&record.fields);
        for (position, key) in record.fields.names().enumerate() {
            if key != "attributes" && !names.iter().any(|(n, _)| *n == key) {
                names.push((key, position));
            }
        }
    }
    let mut fields = Vec::with_capacity(names.len() + 1);
    let mut unmatched = Vec::new();
    for (name, position) in &names {
        match shape.columns.get(&column_name(name)) {
            Some(column) => fields.push((*name, *position, column.clone())),
            None => unmatched.push(*name),
        }
    }
    if stamp != Some(Stamp::SYSTEM_MODSTAMP)
        && let Some(column) = shape.columns.get(STAMP_COLUMN)
    {
        // The stamp field's value goes to its own column and to `systemmodstamp` as well.
        fields.retain(|(_, _, c)| c.name != STAMP_COLUMN);
        let source = match stamp {
            Some(field) => names.iter().find(|(n, _)| *n == field).copied(),
            None => Some((CONSTANT_STAMP, 0)),
        };
        if let Some((name, position)) = source {
            fields.push((name, position, column.clone()));
        }
    }
    (PagePlan { fields }, unmatched)
}

impl PagePlan<'_> {
    /// The columns' quoted names, in COPY order.
    pub fn quoted_names(&self) -> Vec<String> {
        self.fields
            .iter()
            .map(|(_, _, c)| common::schema::quote_ident(&c.name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::table::Column;

    fn shape(columns: &[&str]) -> TableShape {
        TableShape {
            columns: columns
                .iter()
                .map(|c| {
                    let column = Column {
                        name: (*c).into(),
                        base_type: "text".into(),
                    };
                    ((*c).to_owned(), column)
                })
                .collect::<HashMap<_, _>>(),
        }
    }

    /// The plan of a page whose envelope adds `stamp` (e.g. `"stamp":null,`) and holds `record`:
    /// (record field, column) pairs.
    fn planned(stamp: &str, record: &str, columns: &[&str]) -> Vec<(String, String)> {
        let body = format!(
            r#"{{"format":1,"object":"X","run_id":"00000000-0000-0000-0000-000000000000","page":1,{stamp}"records":[{record}]}}"#
        );
        let page = crate::decode::decode(None, body.as_bytes()).unwrap();
        let (valid, _) = super::super::check::check_records(&page);
        let (plan, _) = plan(&valid, &shape(columns), page.stamp_field());
        plan.fields
            .iter()
            .map(|(n, _, c)| ((*n).to_owned(), c.name.clone()))
            .collect()
    }

    #[test]
    fn the_stamp_column_takes_the_field_the_page_names_or_a_constant() {
        let columns = ["sfid", "systemmodstamp", "createddate", "isdeleted"];
        let usual = r#"{"Id":"003000000000001AAA","SystemModstamp":"2024-01-01T00:00:00Z","CreatedDate":"2023-01-01T00:00:00Z"}"#;
        let history = r#"{"Id":"017000000000001AAA","CreatedDate":"2023-01-01T00:00:00Z"}"#;
        let none = r#"{"Id":"0Ya000000000001CAA"}"#;
        /// (record field, column)
        type Planned<'a> = &'a [(&'a str, &'a str)];
        // (the page's stamp field, its record; the fields planned for each column)
        let cases: [(&str, &str, Planned); 3] = [
            (
                "",
                usual,
                &[
                    ("Id", "sfid"),
                    ("SystemModstamp", "systemmodstamp"),
                    ("CreatedDate", "createddate"),
                ],
            ),
            (
                r#""stamp":"CreatedDate","#,
                history,
                &[
                    ("Id", "sfid"),
                    ("CreatedDate", "createddate"),
                    ("CreatedDate", "systemmodstamp"),
                ],
            ),
            (
                r#""stamp":null,"#,
                none,
                &[("Id", "sfid"), (CONSTANT_STAMP, "systemmodstamp")],
            ),
        ];
        for (stamp, record, want) in cases {
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
                .collect();
            assert_eq!(planned(stamp, record, &columns), want, "{stamp}");
        }
    }
}
