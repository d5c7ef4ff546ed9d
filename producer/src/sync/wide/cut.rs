//! The arithmetic of fitting reads into request lines: how many fields the primary query can
//! carry, and how a read by Id is cut into field chunks and Id batches with the fewest
//! requests. URL-encoding is additive (see [`crate::salesforce::query::encoded_len`]), so a
//! request's size is the size of its fixed part plus the size of each field and Id it carries.

use std::ops::Range;

/// What the parts of a `WHERE Id IN (…)` request cost, in bytes of request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ByIdCosts {
    /// The request without optional fields and without Ids (the fields every request carries
    /// included).
    pub fixed: usize,
    /// Each optional field, with its separator.
    pub fields: Vec<usize>,
    /// Each Id, with its quotes and separator (the longest Id's).
    pub per_id: usize,
}

/// How a read by Id is cut into requests: each field chunk is read for each batch of Ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cut {
    /// Ranges of [`ByIdCosts::fields`], one per request of an Id batch; at least one (which
    /// may be empty when there is no optional field).
    pub chunks: Vec<Range<usize>>,
    pub ids_per_request: usize,
}

impl Cut {
    /// Requests reading `ids` Ids.
    pub fn requests(&self, ids: usize) -> usize {
        self.chunks.len() * ids.div_ceil(self.ids_per_request)
    }
}

/// How many of `fields` (each field's cost, in order) fit after `fixed` within `budget`.
pub(crate) fn fitting_prefix(fixed: usize, fields: &[usize], budget: usize) -> usize {
    let mut used = fixed;
    fields
        .iter()
        .take_while(|&&cost| {
            used += cost;
            used <= budget
        })
        .count()
}

/// The cut reading `ids` Ids (at least one) with the fewest requests, each within `budget`;
/// `None` when not even the widest field with one Id fits.
///
/// Fewer Ids per request leave room for more fields per request and the other way round: every
/// number of Id batches is tried, from one up, until the batches alone would cost more
/// requests than the best cut found.
pub(crate) fn cut(costs: &ByIdCosts, ids: usize, budget: usize) -> Option<Cut> {
    let ids = ids.max(1);
    let widest = costs.fields.iter().copied().max().unwrap_or(0);
    let mut best: Option<Cut> = None;
    let mut last_per = 0;
    for batches in 1..=ids {
        if best.as_ref().is_some_and(|b| batches >= b.requests(ids)) {
            break;
        }
        let per = ids.div_ceil(batches);
        if per == last_per {
            continue; // the same Id batches as the previous count
        }
        last_per = per;
        let Some(room) = budget.checked_sub(costs.fixed + per * costs.per_id) else {
            continue;
        };
        if room < widest {
            continue;
        }
        let cut = Cut {
            chunks: pack(&costs.fields, room),
            ids_per_request: per,
        };
        if best
            .as_ref()
            .is_none_or(|b| cut.requests(ids) < b.requests(ids))
        {
            best = Some(cut);
        }
    }
    best
}

/// `fields` in order, cut into runs each costing at most `room` (every field fits alone).
fn pack(fields: &[usize], room: usize) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, &cost) in fields.iter().enumerate() {
        if used + cost > room {
            chunks.push(start..i);
            (start, used) = (i, 0);
        }
        used += cost;
    }
    chunks.push(start..fields.len());
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn costs(fields: usize, each: usize) -> ByIdCosts {
        ByIdCosts {
            fixed: 150,
            fields: vec![each; fields],
            per_id: 27,
        }
    }

    /// Bytes of the largest request of `cut` for `ids` Ids.
    fn largest(costs: &ByIdCosts, cut: &Cut) -> usize {
        let widest_chunk = cut
            .chunks
            .iter()
            .map(|r| costs.fields[r.clone()].iter().sum::<usize>())
            .max()
            .unwrap();
        costs.fixed + cut.ids_per_request * costs.per_id + widest_chunk
    }

    #[test]
    fn the_primary_takes_the_fields_that_fit() {
        assert_eq!(fitting_prefix(100, &[10, 10, 10], 125), 2);
        assert_eq!(fitting_prefix(100, &[10, 10, 10], 130), 3);
        assert_eq!(fitting_prefix(100, &[30, 1], 125), 0);
    }

    #[test]
    fn a_page_of_2000_ids_and_145_fields_fits_in_few_requests() {
        let costs = costs(145, 27);
        let cut = cut(&costs, 2000, 15_872).unwrap();
        assert!(largest(&costs, &cut) <= 15_872);
        // 2000 Ids take 54,000 bytes: at least 4 batches, and the fields fit beside ~460 Ids.
        assert_eq!(cut.chunks.len(), 1, "one chunk of all 145 fields");
        assert_eq!(cut.requests(2000), 5);
        let covered: usize = cut.chunks.iter().map(|r| r.len()).sum();
        assert_eq!(covered, 145);
    }

    #[test]
    fn every_field_of_a_735_field_object_by_id_is_cut_both_ways() {
        let costs = costs(733, 27);
        for ids in [1, 7, 200, 450, 2000] {
            let cut = cut(&costs, ids, 15_872).unwrap();
            assert!(largest(&costs, &cut) <= 15_872, "{ids} Ids: {cut:?}");
            assert!(cut.chunks.len() >= 2, "733 fields never fit one request");
            let mut next = 0;
            for chunk in &cut.chunks {
                assert_eq!(chunk.start, next, "chunks are contiguous");
                next = chunk.end;
            }
            assert_eq!(next, 733);
            assert_eq!(
                cut.requests(ids),
                fewest(&costs, ids, 15_872),
                "{ids}: {cut:?}"
            );
        }
        // Fewer than with 200 Ids a request (10 batches of 2 chunks).
        assert!(cut(&costs, 2000, 15_872).unwrap().requests(2000) < 20);
    }

    /// The fewest requests over every number of Id batches, by brute force.
    fn fewest(costs: &ByIdCosts, ids: usize, budget: usize) -> usize {
        (1..=ids)
            .filter_map(|batches| {
                let per = ids.div_ceil(batches);
                let room = budget.checked_sub(costs.fixed + per * costs.per_id)?;
                let chunks = pack(&costs.fields, room);
                (room >= 27).then(|| chunks.len() * ids.div_ceil(per))
            })
            .min()
            .unwrap()
    }

    #[test]
    fn nothing_fits_when_one_field_and_one_id_do_not() {
        let costs = ByIdCosts {
            fixed: 100,
            fields: vec![10, 50],
            per_id: 27,
        };
        assert_eq!(cut(&costs, 10, 150), None);
        assert_eq!(
            cut(&costs, 1, 177),
            Some(Cut {
                chunks: vec![0..1, 1..2],
                ids_per_request: 1
            })
        );
        // No optional field: one request per batch of Ids, with only the fixed fields.
        let bare = ByIdCosts {
            fields: vec![],
            ..costs
        };
        let only_ids = cut(&bare, 10, 154).unwrap();
        assert_eq!(only_ids.chunks.len(), 1);
        assert!(only_ids.chunks[0].is_empty());
        assert_eq!(only_ids.ids_per_request, 2);
    }
}
