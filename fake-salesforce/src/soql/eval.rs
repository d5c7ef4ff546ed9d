//! Evaluates a parsed query against a store snapshot: filter, the IsDeleted rule of
//! query vs queryAll, ORDER BY, OFFSET and LIMIT, yielding matching record indices.

use std::cmp::Ordering;
use std::sync::Arc;

use super::{Expr, FieldRef, Op, OrderKey, Query};
use crate::data::{ObjectKind, Schema, Snapshot, Store, TableView, Value};

/// The queried table and every other table of the same snapshot, for child-to-parent paths.
#[derive(Clone)]
pub struct Tables<'a> {
    pub main: TableView<'a>,
    views: Vec<TableView<'a>>,
    schema: Arc<Schema>,
}

impl<'a> Tables<'a> {
    /// The current records of `object` and the objects it references.
    pub fn new(store: &'a Store, object: ObjectKind) -> Self {
        Self::at(store, &store.snapshot(), object)
    }

    /// The records of `object` and the objects it references as of `snapshot`.
    pub fn at(store: &'a Store, snapshot: &Snapshot, object: ObjectKind) -> Self {
        let views: Vec<TableView<'a>> = snapshot
            .schema
            .kinds()
            .map(|k| store.view_in(snapshot, k))
            .collect();
        Tables {
            main: views[object.index()].clone(),
            views,
            schema: Arc::clone(&snapshot.schema),
        }
    }

    /// The schema these tables are read with.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The parent record a reference field of record `index` points at, if it exists and is
    /// of the object the field's relationship resolves to.
    pub fn parent_of(&self, index: u32, via: usize) -> Option<(&TableView<'a>, u32)> {
        let target = self.main.def().fields[via].target?;
        let parent = &self.views[target.index()];
        match self.main.value(index, via) {
            Value::Id(id) => parent.index_of(&id).map(|p| (parent, p)),
            _ => None,
        }
    }

    pub fn value(&self, index: u32, field: FieldRef) -> Value {
        match field {
            FieldRef::Own(f) => self.main.value(index, f),
            FieldRef::Parent { via, field } => self
                .parent_of(index, via)
                .map_or(Value::Null, |(t, p)| t.value(p, field)),
        }
    }
}

/// Indices of the records `query` returns, in result order. `include_deleted` is queryAll.
pub fn run(query: &Query, tables: &Tables<'_>, include_deleted: bool) -> Vec<u32> {
    let mut hits = matching(query, tables, include_deleted);
    order_and_limit(query, tables, &mut hits);
    hits
}

/// Indices of the records `query`'s WHERE selects, in Id order, before ORDER BY, OFFSET and
/// LIMIT: what the database scans (the measure of the timeout faults).
pub fn matching(query: &Query, tables: &Tables<'_>, include_deleted: bool) -> Vec<u32> {
    let deleted_field = tables.main.def().is_deleted_field();
    tables
        .main
        .indices()
        .filter(|&i| {
            include_deleted
                || deleted_field.is_none_or(|f| tables.main.value(i, f) != Value::Bool(true))
        })
        .filter(|&i| query.filter.as_ref().is_none_or(|e| matches(e, tables, i)))
        .collect()
}

/// Applies ORDER BY, OFFSET and LIMIT to the [`matching`] records.
pub fn order_and_limit(query: &Query, tables: &Tables<'_>, hits: &mut Vec<u32>) {
    let keep = query
        .limit
        .map(|limit| limit as usize + query.offset.unwrap_or(0) as usize);
    sort(hits, &query.order, tables, keep);
    let offset = query.offset.unwrap_or(0) as usize;
    if offset > 0 {
        hits.drain(..offset.min(hits.len()));
    }
    if let Some(limit) = query.limit {
        hits.truncate(limit as usize);
    }
}

/// Sorts `hits` by `order`, ties in their given (Id) order; only the first `keep` are needed
/// when given (`ORDER BY SystemModstamp LIMIT 1` then picks instead of sorting everything).
fn sort(hits: &mut Vec<u32>, order: &[OrderKey], tables: &Tables<'_>, keep: Option<usize>) {
    // Records are generated in Id order, so ORDER BY Id (or nothing) needs no work.
    let by_id = |k: &OrderKey| k.field == FieldRef::Own(0) && !k.descending;
    if order.first().is_none_or(by_id) {
        return;
    }
    let mut keyed: Vec<(Vec<Value>, u32)> = hits
        .iter()
        .map(|&i| (order.iter().map(|k| tables.value(i, k.field)).collect(), i))
        .collect();
    // Ties keep Id order (the hits' order, which the index breaks ties by), so every run
    // returns the same sequence.
    let by_keys = |(a, i): &(Vec<Value>, u32), (b, j): &(Vec<Value>, u32)| {
        order
            .iter()
            .zip(a.iter().zip(b))
            .map(|(k, (x, y))| compare(k, x, y))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| i.cmp(j))
    };
    if let Some(keep) = keep.filter(|&k| k < keyed.len()) {
        keyed.select_nth_unstable_by(keep, by_keys);
        keyed.truncate(keep);
    }
    keyed.sort_by(by_keys);
    *hits = keyed.into_iter().map(|(_, i)| i).collect();
}

fn compare(key: &OrderKey, a: &Value, b: &Value) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) if key.nulls_last => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, true) if key.nulls_last => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => {
            let o = a.soql_cmp(b).unwrap_or(Ordering::Equal);
            if key.descending { o.reverse() } else { o }
        }
    }
}

fn matches(expr: &Expr, tables: &Tables<'_>, i: u32) -> bool {
    match expr {
        Expr::And(terms) => terms.iter().all(|t| matches(t, tables, i)),
        Expr::Or(terms) => terms.iter().any(|t| matches(t, tables, i)),
        Expr::Not(e) => !matches(e, tables, i),
        Expr::Cmp { field, op, value } => compare_op(&tables.value(i, *field), *op, value),
        Expr::In {
            field,
            values,
            negated,
        } => {
            let v = tables.value(i, *field);
            values.iter().any(|x| compare_op(&v, Op::Eq, x)) != *negated
        }
        Expr::Like { field, pattern } => match tables.value(i, *field) {
            Value::Text(s) => like(&s, pattern),
            _ => false,
        },
    }
}

/// SOQL comparison: `= null` and `!= null` test presence; `!=` against a value also matches
/// nulls; ordering operators never match a null.
fn compare_op(field: &Value, op: Op, literal: &Value) -> bool {
    match (field.is_null(), literal.is_null()) {
        (true, true) => op == Op::Eq,
        (false, true) | (true, false) => op == Op::Ne,
        (false, false) => {
            let Some(o) = field.soql_cmp(literal) else {
                return op == Op::Ne;
            };
            match op {
                Op::Eq => o.is_eq(),
                Op::Ne => o.is_ne(),
                Op::Lt => o.is_lt(),
                Op::Le => o.is_le(),
                Op::Gt => o.is_gt(),
                Op::Ge => o.is_ge(),
            }
        }
    }
}

/// Case-insensitive LIKE: `%` any run, `_` one character, `\%` and `\_` literal.
fn like(text: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Char(char),
    }
    let mut pat = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        pat.push(match c {
            '%' => P::Any,
            '_' => P::One,
            '\\' => P::Char(chars.next().unwrap_or('\\')),
            c => P::Char(c),
        });
    }
    let text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let pat: Vec<P> = pat
        .into_iter()
        .flat_map(|p| match p {
            P::Char(c) => c.to_lowercase().map(P::Char).collect::<Vec<_>>(),
            p => vec![p],
        })
        .collect();
    // Classic wildcard matching with backtracking to the last `%`.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(P::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(P::One) => {
                t += 1;
                p += 1;
            }
            Some(P::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|x| *x == P::Any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like("O'Brien", "o%"));
        assert!(like("Zürich", "z_rich"));
        assert!(like("Acme Foods Inc.", "%foods%"));
        assert!(!like("Acme", "%foods%"));
        assert!(like("100%", "100\\%"));
        assert!(!like("1000", "100\\%"));
    }

    #[test]
    fn null_semantics() {
        let x = Value::Int(1);
        assert!(compare_op(&Value::Null, Op::Eq, &Value::Null));
        assert!(compare_op(&Value::Null, Op::Ne, &x));
        assert!(!compare_op(&Value::Null, Op::Lt, &x));
        assert!(compare_op(&x, Op::Ne, &Value::Null));
        assert!(compare_op(&x, Op::Le, &Value::Number(1.0)));
    }
}
