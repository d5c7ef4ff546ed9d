//! Which columns a page writes: the records' field names matched to the target table's
//! columns, in the order the COPY text carries them.

use common::schema::column_name;

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

/// Matches the records' field names to the table's columns. Returns the names with no column.
pub(super) fn plan<'a>(records: &[Valid<'a>], shape: &TableShape) -> (PagePlan<'a>, Vec<&'a str>) {
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
    let mut fields = Vec::with_capacity(names.len());
    let mut unmatched = Vec::new();
    for (name, position) in names {
        match shape.columns.get(&column_name(name)) {
            Some(column) => fields.push((name, position, column.clone())),
            None => unmatched.push(name),
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
