//! A page's rows as COPY text, and sending that text to the connection.

use bytes::Bytes;
use futures::SinkExt;

use super::{
    check::Valid,
    plan::{CONSTANT_STAMP, PagePlan},
};
use crate::copy_text::{push_null, push_text, push_value};

/// Values from which NUL characters were removed while a page's rows were written: how many,
/// by field (in the order first seen).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sanitized(pub Vec<(String, u64)>);

impl Sanitized {
    fn count(&mut self, field: &str) {
        match self.0.iter_mut().find(|(f, _)| f == field) {
            Some((_, n)) => *n += 1,
            None => self.0.push((field.to_owned(), 1)),
        }
    }
}

/// Writes one record's fields as COPY text, tab-separated, in the plan's column order (no row
/// end); a value whose NUL characters had to be left out is counted in `sanitized`.
///
/// # Errors
/// A value that cannot be written as COPY text (the message names the field).
pub(super) fn copy_fields(
    out: &mut Vec<u8>,
    record: &Valid<'_>,
    plan: &PagePlan<'_>,
    sanitized: &mut Sanitized,
) -> Result<(), String> {
    for (i, (name, hint, column)) in plan.fields.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        if column.name == "sfid" {
            // Stored in its 18-character form, whatever length Salesforce sent.
            push_text(out, record.id.as_str());
            continue;
        }
        match record.fields.get_at(*hint, name) {
            Some(raw) => {
                if push_value(out, raw).map_err(|e| format!("field {name} {e}"))? > 0 {
                    sanitized.count(name);
                }
            }
            // The `systemmodstamp` of an object without a stamp field (see `plan`).
            None if *name == CONSTANT_STAMP => {
                push_text(out, common::message::NO_STAMP);
            }
            None => push_null(out),
        }
    }
    Ok(())
}

/// The size of the pieces a page's COPY text is handed to the connection in.
const COPY_PIECE: usize = 128 * 1024;

/// Runs `COPY … FROM STDIN` on `tx` with `rows` as its data; returns the rows copied.
///
/// The text goes in pieces of [`COPY_PIECE`] bytes (slices of one buffer, not copies):
/// tokio-postgres copies each piece into the connection's write buffer, which it writes out
/// before taking the next; a page sent whole grew that buffer to the page's size (2 MB) in
/// every pooled connection.
///
/// # Errors
/// The statement or the connection failed.
pub(super) async fn copy_in(
    tx: &deadpool_postgres::Transaction<'_>,
    statement: &str,
    rows: Vec<u8>,
) -> Result<u64, tokio_postgres::Error> {
    let sink = tx.copy_in(statement).await?;
    futures::pin_mut!(sink);
    let rows = Bytes::from(rows);
    let mut start = 0;
    while start < rows.len() {
        let end = rows.len().min(start + COPY_PIECE);
        sink.as_mut().feed(rows.slice(start..end)).await?;
        start = end;
    }
    sink.finish().await
}
