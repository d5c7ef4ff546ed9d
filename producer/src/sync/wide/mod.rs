//! Objects too wide for one request line. REST puts the SOQL in the URL, and Salesforce
//! answers `414 URI Too Long` to a request line over 16,384 bytes: about 600 fields. For such
//! an object the REST fetch pages through a *primary* query (Id, the stamp, and as many fields
//! as fit, in stamp order as always), and completes each page with the remaining fields, read
//! by Id through queryAll (so deleted records come too) in requests cut to fit; each record's
//! parts are merged by Id into one record. Reconcile's re-pull by Id reads the same way.
//!
//! Parts are read at different moments, so a record can change in between: each part carries
//! the stamp, and a record whose parts disagree is read whole again (every part) until they
//! agree; after [`WHOLE_READ_TRIES`] reads the run fails, naming the record, rather than
//! publish a record made of two versions. A record missing from a later part was hard-deleted
//! in between and is left out (getDeleted reports it). Without a stamp field the parts cannot
//! be compared; such objects are read whole at every sync, so a mixed record is replaced by the
//! next one.
//!
//! # Layout
//! - this file: the plan of a run's reads ([`Wide`]), completing a primary page, reading
//!   records whole by Id ([`ByIdReader`]).
//! - `cut`: the arithmetic of fitting fields and Ids into request lines.

mod cut;

use std::{collections::HashMap, time::Duration};

use anyhow::Context as _;
use chrono::{TimeZone, Utc};
use serde_json::value::RawValue;

use self::cut::{ByIdCosts, cut, fitting_prefix};
use super::{record, run::Run};
use crate::{
    salesforce::{
        SalesforceClient,
        page::QueryPage,
        query::{REQUEST_LINE_BUDGET, encoded_len},
    },
    soql::{self, Order},
};

/// Reads of a record whose parts keep disagreeing, before the run fails.
const WHOLE_READ_TRIES: u32 = 5;

/// How a run reads an object whose SELECT does not fit in one request line.
pub(super) struct Wide<'a> {
    reader: ByIdReader<'a>,
    /// The primary query's fields: the Id, the stamp, then as many as fit.
    primary: Vec<&'a str>,
    /// The others, read by Id for each page.
    rest: Vec<&'a str>,
    /// Every field of the run.
    all: &'a [&'a str],
}

impl<'a> Wide<'a> {
    /// The plan for `run`, or `None` when its SELECT fits in one request line (the usual
    /// case: the fetch then goes on exactly as for any object).
    ///
    /// # Errors
    /// A name breaks the identifier rules, or the Id and the stamp alone do not fit.
    pub fn for_run(run: &'a Run<'a>) -> anyhow::Result<Option<Self>> {
        let query = run.query();
        // Measured with both window bounds, the longest the primary's WHERE gets.
        let any = Utc.timestamp_opt(0, 0).single();
        let windowed = soql::Query {
            since: any,
            until: any,
            ..query
        };
        let line = |fields: &[&str]| -> anyhow::Result<usize> {
            Ok(run
                .sf
                .query_request_line(&windowed.select(fields, Order::ByStamp)?, true))
        };
        if line(run.fields)? <= REQUEST_LINE_BUDGET {
            return Ok(None);
        }
        let reader = ByIdReader::new(run.sf, query);
        let others: Vec<&str> = run
            .fields
            .iter()
            .copied()
            .filter(|f| !reader.key.contains(f))
            .collect();
        let costs: Vec<usize> = others.iter().map(|f| field_cost(f)).collect();
        let fixed = line(&reader.key)?;
        anyhow::ensure!(
            fixed + costs.iter().copied().min().unwrap_or(0) <= REQUEST_LINE_BUDGET,
            "{}: even a query of its key fields and one more is over the {REQUEST_LINE_BUDGET}-byte request line",
            query.object
        );
        let fit = fitting_prefix(fixed, &costs, REQUEST_LINE_BUDGET);
        let primary = reader.key.iter().chain(&others[..fit]).copied().collect();
        let rest = others[fit..].to_vec();
        tracing::info!(
            object = query.object,
            fields = run.fields.len(),
            primary = fit + reader.key.len(),
            by_id = rest.len(),
            "The object's fields do not fit in one request line; reading the rest of each page by Id."
        );
        Ok(Some(Self {
            reader,
            primary,
            rest,
            all: run.fields,
        }))
    }

    /// The fields of the primary query.
    pub fn primary_fields(&self) -> &[&'a str] {
        &self.primary
    }

    /// The whole records of a page of the primary query, in its order: each completed with
    /// the fields read by Id, or read whole again when it changed in between; left out when it
    /// was hard-deleted in between.
    ///
    /// # Errors
    /// A read failed, or a record kept changing (see the module docs).
    pub async fn complete(&self, primary: &[&RawValue]) -> anyhow::Result<Vec<Box<RawValue>>> {
        let ids: Vec<String> = primary
            .iter()
            .map(|r| record::id(r))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let parts = self.reader.read(&self.rest, &id_refs).await?;
        let mut whole: Vec<Option<Box<RawValue>>> = Vec::with_capacity(primary.len());
        let mut changed = Vec::new();
        for (i, (base, id)) in primary.iter().zip(&ids).enumerate() {
            let record = match self
                .reader
                .assemble(base, parts.iter().map(|p| p.get(id)))?
            {
                Assembled::Whole(record) => Some(record),
                Assembled::Gone => None,
                Assembled::Changed => {
                    changed.push(i);
                    None
                }
            };
            whole.push(record);
        }
        if !changed.is_empty() {
            tracing::debug!(
                object = self.reader.query.object,
                records = changed.len(),
                "Records changed between the reads of their parts; reading them whole again."
            );
            let again: Vec<&str> = changed.iter().map(|&i| id_refs[i]).collect();
            let mut read = self.reader.read_whole(self.all, &again).await?;
            for i in changed {
                whole[i] = read.remove(&ids[i]);
            }
        }
        Ok(whole.into_iter().flatten().collect())
    }
}

/// What a record's parts make.
#[derive(Debug)]
enum Assembled {
    Whole(Box<RawValue>),
    /// A part is missing: hard-deleted between the reads.
    Gone,
    /// The parts' stamps differ: changed between the reads.
    Changed,
}

/// Reads fields of records by Id (`WHERE Id IN (…)` through queryAll), in requests cut to fit
/// the request line, and merges each record's parts.
pub(crate) struct ByIdReader<'a> {
    sf: &'a SalesforceClient,
    /// The object, its stamp field and its filter (the window is not used).
    query: soql::Query<'a>,
    /// The fields every request carries: the Id, and the stamp when there is one.
    key: Vec<&'a str>,
}

impl<'a> ByIdReader<'a> {
    pub fn new(sf: &'a SalesforceClient, query: soql::Query<'a>) -> Self {
        let key = std::iter::once("Id").chain(query.stamp).collect();
        Self { sf, query, key }
    }

    /// `fields` (the key fields among them or not) of the records `ids`, each record whole;
    /// records that no longer exist are absent. A record whose parts disagree is read again,
    /// up to [`WHOLE_READ_TRIES`] times.
    ///
    /// # Errors
    /// A read failed, or a record kept changing.
    pub async fn read_whole(
        &self,
        fields: &[&str],
        ids: &[&str],
    ) -> anyhow::Result<HashMap<String, Box<RawValue>>> {
        let rest: Vec<&str> = fields
            .iter()
            .copied()
            .filter(|f| !self.key.contains(f))
            .collect();
        let mut records = HashMap::with_capacity(ids.len());
        let mut todo = ids.to_vec();
        for attempt in 1..=WHOLE_READ_TRIES {
            let parts = self.read(&rest, &todo).await?;
            let (first, others) = parts.split_first().context("a read by Id had no part")?;
            let mut changed = Vec::new();
            for id in todo {
                let Some(base) = first.get(id) else {
                    continue; // gone
                };
                match self.assemble(base, others.iter().map(|p| p.get(id)))? {
                    Assembled::Whole(record) => {
                        records.insert(id.to_owned(), record);
                    }
                    Assembled::Gone => {}
                    Assembled::Changed => changed.push(id),
                }
            }
            if changed.is_empty() {
                return Ok(records);
            }
            tracing::debug!(
                object = self.query.object,
                records = changed.len(),
                attempt,
                "Records changed again while they were read whole; reading them whole once more."
            );
            todo = changed;
            if attempt < WHOLE_READ_TRIES {
                // A record being saved again and again: give the saves a moment to settle.
                tokio::time::sleep(Duration::from_millis(100) * 2u32.pow(attempt)).await;
            }
        }
        anyhow::bail!(
            "{} record {} changed each of the {WHOLE_READ_TRIES} times its {} fields were read (in several \
             requests, as they do not fit in one request line); it is being changed continuously: run the sync again",
            self.query.object,
            todo.first().copied().unwrap_or_default(),
            fields.len(),
        )
    }

    /// `fields` of the records `ids`: for each field chunk of the cut, the records by Id (each
    /// with the key fields too). At least one chunk, even for no field.
    async fn read(
        &self,
        fields: &[&str],
        ids: &[&str],
    ) -> anyhow::Result<Vec<HashMap<String, Box<RawValue>>>> {
        let fixed = self
            .sf
            .query_request_line(&self.query.select_ids(&self.key, &[])?, true);
        let costs = ByIdCosts {
            fixed,
            fields: fields.iter().map(|f| field_cost(f)).collect(),
            per_id: encoded_len(",''") + ids.iter().map(|id| encoded_len(id)).max().unwrap_or(18),
        };
        let cut = cut(&costs, ids.len(), REQUEST_LINE_BUDGET).with_context(|| {
            format!(
                "{}: a read by Id of its widest field does not fit in a {REQUEST_LINE_BUDGET}-byte request line",
                self.query.object
            )
        })?;
        let mut parts = Vec::with_capacity(cut.chunks.len());
        for chunk in cut.chunks {
            let select: Vec<&str> = self.key.iter().chain(&fields[chunk]).copied().collect();
            let mut by_id = HashMap::with_capacity(ids.len());
            for batch in ids.chunks(cut.ids_per_request) {
                let soql = self.query.select_ids(&select, batch)?;
                self.read_into(&soql, &mut by_id).await?;
            }
            parts.push(by_id);
        }
        Ok(parts)
    }

    /// Every page of `soql` into `by_id`.
    async fn read_into(
        &self,
        soql: &str,
        by_id: &mut HashMap<String, Box<RawValue>>,
    ) -> anyhow::Result<()> {
        let mut body = self.sf.query(soql, true, 2000).await?;
        loop {
            let page = QueryPage::parse(&body, "queryAll")?;
            for r in &page.records {
                by_id.insert(record::id(r).map_err(anyhow::Error::msg)?, (*r).to_owned());
            }
            let Some(next) = page.next().map(str::to_owned) else {
                return Ok(());
            };
            drop(page);
            body = self.sf.query_more(&next, 2000).await?;
        }
    }

    /// `base` with its `parts` (one per chunk; `None` where the record was missing).
    fn assemble<'p>(
        &self,
        base: &RawValue,
        parts: impl Iterator<Item = Option<&'p Box<RawValue>>>,
    ) -> anyhow::Result<Assembled> {
        let parts: Option<Vec<&RawValue>> = parts.map(|p| p.map(AsRef::as_ref)).collect();
        assemble(self.query.stamp, &self.key, base, parts.as_deref())
    }
}

/// `base` merged with `parts` (`None` when one is missing), unless the parts' `stamp`s
/// disagree with the base's; the `key` fields and `attributes` each part repeats are left out.
fn assemble(
    stamp: Option<&str>,
    key: &[&str],
    base: &RawValue,
    parts: Option<&[&RawValue]>,
) -> anyhow::Result<Assembled> {
    let Some(parts) = parts else {
        return Ok(Assembled::Gone);
    };
    if let Some(stamp) = stamp {
        let stamp_of = |r: &RawValue| -> anyhow::Result<Option<String>> {
            Ok(record::values(r, &[stamp])?
                .pop()
                .flatten()
                .map(|v| v.get().to_owned()))
        };
        let base_stamp = stamp_of(base)?;
        for part in parts {
            if stamp_of(part)? != base_stamp {
                return Ok(Assembled::Changed);
            }
        }
    }
    let mut skip = vec!["attributes"];
    skip.extend(key);
    Ok(Assembled::Whole(
        record::merge(base, parts, &skip).map_err(anyhow::Error::msg)?,
    ))
}

/// Bytes a field adds to a SELECT's request line: `, Name`, encoded.
fn field_cost(field: &str) -> usize {
    encoded_len(", ") + encoded_len(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    const KEY: [&str; 2] = ["Id", "SystemModstamp"];

    fn part(stamp: &str, field: &str) -> Box<RawValue> {
        raw(&format!(
            r#"{{"attributes":{{"type":"Wide__c"}},"Id":"a0W000000000001AAA","SystemModstamp":"{stamp}",{field}}}"#
        ))
    }

    #[test]
    fn parts_that_agree_make_one_record() {
        let base = part("2024-01-15T10:20:30.000+0000", r#""A__c":1"#);
        let (b, c) = (
            part("2024-01-15T10:20:30.000+0000", r#""B__c":2.50"#),
            part("2024-01-15T10:20:30.000+0000", r#""C__c":null"#),
        );
        let whole = assemble(Some("SystemModstamp"), &KEY, &base, Some(&[&b, &c])).unwrap();
        let Assembled::Whole(record) = whole else {
            panic!("{whole:?}")
        };
        assert_eq!(
            record.get(),
            r#"{"attributes":{"type":"Wide__c"},"Id":"a0W000000000001AAA","SystemModstamp":"2024-01-15T10:20:30.000+0000","A__c":1,"B__c":2.50,"C__c":null}"#
        );
    }

    #[test]
    fn a_part_of_another_version_or_a_missing_part_is_not_merged() {
        let base = part("2024-01-15T10:20:30.000+0000", r#""A__c":1"#);
        let newer = part("2024-01-15T10:20:31.000+0000", r#""B__c":3"#);
        assert!(matches!(
            assemble(Some("SystemModstamp"), &KEY, &base, Some(&[&newer])).unwrap(),
            Assembled::Changed
        ));
        assert!(matches!(
            assemble(Some("SystemModstamp"), &KEY, &base, None).unwrap(),
            Assembled::Gone
        ));
        // Without a stamp field there is nothing to compare: the parts are merged.
        assert!(matches!(
            assemble(None, &["Id"], &base, Some(&[&newer])).unwrap(),
            Assembled::Whole(_)
        ));
    }
}
