//! A record's pending changes, coalesced into the one operation that brings Salesforce to the
//! row's present state: insert then updates is one create; anything then a delete is one
//! delete (or nothing, if Salesforce never had the record); updates are one update of every
//! column any of them changed. The values sent are the row's values at dispatch, not those of
//! each change, so that rapid updates end with the last one, never an older one.

/// One captured change of a record, as `sfsync.outbox` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub op: Op,
    /// The record's sfid when the change was made.
    pub sfid: Option<String>,
    pub columns: Vec<String>,
}

/// What the application did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    /// The outbox's `op` text.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "insert" => Some(Self::Insert),
            "update" => Some(Self::Update),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// What to ask of Salesforce for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// A record Salesforce does not have yet: an upsert on the external Id the outbox assigns,
    /// so that a retry after a lost answer cannot create it twice.
    Create {
        columns: Vec<String>,
    },
    Update {
        sfid: String,
        columns: Vec<String>,
    },
    Delete {
        sfid: String,
    },
    /// The changes cancel out (a row inserted and deleted before either was sent).
    Nothing,
    /// Changes to a record whose create was already sent and has not brought its Id back:
    /// they stay pending until it has.
    Wait,
}

/// The operation for a record's pending changes, oldest first; `sfid` is the record's sfid
/// now (the row's, or for a deleted row the last one its changes knew).
pub fn coalesce(changes: &[Change], sfid: Option<&str>) -> Operation {
    let known = sfid
        .map(str::to_owned)
        .or_else(|| changes.iter().rev().find_map(|c| c.sfid.clone()));
    let deleted = changes.last().is_some_and(|c| c.op == Op::Delete);
    let created_here = changes.first().is_some_and(|c| c.op == Op::Insert) && known.is_none();
    let mut columns: Vec<String> = Vec::new();
    for change in changes {
        for column in &change.columns {
            if !columns.contains(column) {
                columns.push(column.clone());
            }
        }
    }
    match (deleted, known) {
        (true, Some(sfid)) => Operation::Delete { sfid },
        (true, None) => Operation::Nothing,
        (false, None) if created_here => Operation::Create { columns },
        (false, None) => Operation::Wait,
        (false, Some(_)) if columns.is_empty() => Operation::Nothing,
        (false, Some(sfid)) => Operation::Update { sfid, columns },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(op: Op, sfid: Option<&str>, columns: &[&str]) -> Change {
        Change {
            op,
            sfid: sfid.map(str::to_owned),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    const ID: &str = "003000000000001AAA";

    #[test]
    fn an_insert_and_its_updates_are_one_create_of_every_column() {
        let changes = [
            change(Op::Insert, None, &["email", "score"]),
            change(Op::Update, None, &["score"]),
            change(Op::Update, None, &["title"]),
        ];
        assert_eq!(
            coalesce(&changes, None),
            Operation::Create {
                columns: vec!["email".into(), "score".into(), "title".into()]
            }
        );
    }

    #[test]
    fn updates_are_one_update_of_the_columns_any_changed() {
        let changes = [
            change(Op::Update, Some(ID), &["score"]),
            change(Op::Update, Some(ID), &["email", "score"]),
        ];
        assert_eq!(
            coalesce(&changes, Some(ID)),
            Operation::Update {
                sfid: ID.into(),
                columns: vec!["score".into(), "email".into()]
            }
        );
    }

    #[test]
    fn anything_then_a_delete_is_a_delete_or_nothing() {
        let updated_then_deleted = [
            change(Op::Update, Some(ID), &["score"]),
            change(Op::Delete, Some(ID), &[]),
        ];
        assert_eq!(
            coalesce(&updated_then_deleted, None),
            Operation::Delete { sfid: ID.into() },
            "a deleted row's sfid comes from its changes"
        );
        let inserted_then_deleted = [
            change(Op::Insert, None, &["email"]),
            change(Op::Delete, None, &[]),
        ];
        assert_eq!(coalesce(&inserted_then_deleted, None), Operation::Nothing);
    }

    #[test]
    fn a_row_inserted_with_an_sfid_is_an_update_of_that_record() {
        let changes = [change(Op::Insert, Some(ID), &["email"])];
        assert_eq!(
            coalesce(&changes, Some(ID)),
            Operation::Update {
                sfid: ID.into(),
                columns: vec!["email".into()]
            }
        );
    }

    #[test]
    fn updates_of_a_record_whose_create_is_in_flight_wait_for_its_id() {
        let changes = [change(Op::Update, None, &["score"])];
        assert_eq!(coalesce(&changes, None), Operation::Wait);
    }
}
