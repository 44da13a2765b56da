//! Facet counts and exact totals for a search: how many matching records each value of
//! `cluster`, `node`, `role`, `level` or `logger` has, over the whole query and time range
//! (not one page). Counted per segment on term ordinals of the fast columns, so no stored
//! document is read; ordinals become strings once per segment. `tenant` is counted per
//! partition: a partition holds one tenant's records.
//!
//! The rule a reader must not miss: a field is counted without its own facet filters, as
//! Kibana and Grafana count. With `node:a` kept, the `node` counts still show every node under
//! the query and the other filters (what switching would give), while `level` and the total
//! are counted with `node:a` applied. So each filtered field costs one more pass.

use std::collections::BTreeMap;

use jiff::Timestamp;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use crate::error::Result;
use crate::index::partition::LogStore;
use crate::index::query::{FieldFilter, TENANT_FIELD};
use crate::index::record::ColumnCache;
use crate::index::schema::KEYWORD_FIELDS;
use crate::index::search::parse_filtered_query;

/// Fields that can be faceted: `tenant` and the keyword fields but `source` (one value per
/// file: too many to be useful).
pub const FACET_FIELDS: [&str; 6] = [TENANT_FIELD, "cluster", "node", "role", "level", "logger"];

/// What to count.
#[derive(Debug, Clone)]
pub struct FacetRequest {
    pub tenants: Vec<String>,
    pub query: String,
    /// Facet filters ANDed to `query`, but for the counts of their own field.
    pub filters: Vec<FieldFilter>,
    /// Inclusive.
    pub start: Option<Timestamp>,
    /// Exclusive.
    pub end: Option<Timestamp>,
    /// Names from `FACET_FIELDS`.
    pub fields: Vec<String>,
}

/// Per field, the count of each value; and the total of matching records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FacetCounts {
    pub total: u64,
    pub fields: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Checks facet field names: each must be one of `FACET_FIELDS`, given once.
pub fn facet_fields(names: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields: Vec<String> = Vec::new();
    for name in names
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        if !FACET_FIELDS.contains(&name) {
            return Err(format!(
                "{name:?} cannot be faceted (one of {})",
                FACET_FIELDS.join(", ")
            ));
        }
        if !fields.iter().any(|known| known == name) {
            fields.push(name.to_owned());
        }
    }
    Ok(fields)
}

/// Counts `request` over the partitions of its tenants that overlap its range: the total and
/// the unfiltered fields under every filter, each filtered field under the others' filters.
pub fn facets(store: &LogStore, request: &FacetRequest) -> Result<FacetCounts> {
    debug_assert!(
        request
            .fields
            .iter()
            .all(|name| name == TENANT_FIELD || KEYWORD_FIELDS.contains(&name.as_str()))
    );
    let is_filtered = |name: &String| request.filters.iter().any(|filter| filter.field == *name);
    let (filtered, unfiltered): (Vec<String>, Vec<String>) =
        request.fields.iter().cloned().partition(is_filtered);
    let mut counts = count(store, request, &request.filters, unfiltered)?;
    for name in filtered {
        let others: Vec<FieldFilter> = request
            .filters
            .iter()
            .filter(|filter| filter.field != name)
            .cloned()
            .collect();
        let mut own = count(store, request, &others, vec![name.clone()])?;
        let values = own.fields.remove(&name).unwrap_or_default();
        counts.fields.insert(name, values);
    }
    for name in &request.fields {
        counts.fields.entry(name.clone()).or_default();
    }
    Ok(counts)
}

/// The total of `request`'s query under `filters`, and the counts of `fields`.
fn count(
    store: &LogStore,
    request: &FacetRequest,
    filters: &[FieldFilter],
    fields: Vec<String>,
) -> Result<FacetCounts> {
    let query = parse_filtered_query(store.schema(), &request.query, filters)?;
    let count_tenants = fields.iter().any(|name| name == TENANT_FIELD);
    let collector = FacetCollector {
        columns: store.columns(),
        fields: fields
            .into_iter()
            .filter(|name| name != TENANT_FIELD)
            .collect(),
    };
    let mut counts = FacetCounts::default();
    for (key, mut found) in store.search_partitions(
        &request.tenants,
        (request.start, request.end),
        &query,
        &collector,
    )? {
        if count_tenants && found.total > 0 {
            found
                .fields
                .entry(TENANT_FIELD.to_owned())
                .or_default()
                .insert(key.tenant, found.total);
        }
        add(&mut counts, found);
    }
    Ok(counts)
}

fn add(into: &mut FacetCounts, from: FacetCounts) {
    into.total += from.total;
    for (field, values) in from.fields {
        let target = into.fields.entry(field).or_default();
        for (value, count) in values {
            *target.entry(value).or_default() += count;
        }
    }
}

struct FacetCollector<'a> {
    columns: &'a ColumnCache,
    fields: Vec<String>,
}

struct FacetSegmentCollector {
    total: u64,
    /// Per field: its column (absent in a segment without the field) and counts per ordinal.
    columns: Vec<(String, Option<StrColumn>, Vec<u64>)>,
}

impl Collector for FacetCollector<'_> {
    type Fruit = FacetCounts;
    type Child = FacetSegmentCollector;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<FacetSegmentCollector> {
        let segment_columns = self.columns.get(reader)?;
        let mut columns = Vec::with_capacity(self.fields.len());
        for name in &self.fields {
            let column = segment_columns.keyword(name).cloned();
            let values = column
                .as_ref()
                .map_or(0, |column| column.dictionary().num_terms());
            columns.push((name.clone(), column, vec![0; values]));
        }
        Ok(FacetSegmentCollector { total: 0, columns })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<FacetCounts>) -> tantivy::Result<FacetCounts> {
        let mut merged = FacetCounts::default();
        for fruit in fruits {
            add(&mut merged, fruit);
        }
        Ok(merged)
    }
}

impl SegmentCollector for FacetSegmentCollector {
    type Fruit = FacetCounts;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.total += 1;
        for (_, column, counts) in &mut self.columns {
            if let Some(column) = column {
                for ord in column.term_ords(doc) {
                    if let Some(count) = usize::try_from(ord)
                        .ok()
                        .and_then(|ord| counts.get_mut(ord))
                    {
                        *count += 1;
                    }
                }
            }
        }
    }

    fn harvest(self) -> FacetCounts {
        let mut fields = BTreeMap::new();
        for (name, column, counts) in self.columns {
            let mut values = BTreeMap::new();
            if let Some(column) = column {
                for (ord, count) in counts.into_iter().enumerate() {
                    let mut text = String::new();
                    if count > 0 && column.ord_to_str(ord as u64, &mut text).unwrap_or(false) {
                        values.insert(text, count);
                    }
                }
            }
            fields.insert(name, values);
        }
        FacetCounts {
            total: self.total,
            fields,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::DEFAULT_MAX_OPEN_PARTITIONS;
    use crate::index::writer::{LogEntry, LogWriter};

    const DAY_MICROS: i64 = 86_400_000_000;

    fn entry(ts_micros: i64, node: &str, level: &str, seq: u64, message: &str) -> LogEntry {
        // One stream per node: (stream, seq) is a record's identity.
        let stream = node
            .bytes()
            .fold(0, |hash, byte| hash * 31 + u64::from(byte));
        let mut entry = crate::index::writer::tests::entry(ts_micros, node, stream, seq, message);
        entry.cluster = if node == "other" { "c2" } else { "c1" }.to_owned();
        entry.level = level.to_owned();
        entry
    }

    /// Two days of records of tenant `a`, and one of tenant `b`.
    async fn store() -> anyhow::Result<(tempfile::TempDir, Arc<LogStore>)> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(10), None)?;
        let day = 20_000 * DAY_MICROS;
        writer
            .write(
                "a".to_owned(),
                vec![
                    entry(day + 1, "w1", "INFO", 1, "task started"),
                    entry(day + 2, "w1", "ERROR", 2, "task failed"),
                    entry(day + 3, "w2", "ERROR", 1, "task failed again"),
                    entry(day + DAY_MICROS + 4, "w2", "WARNING", 2, "task slow"),
                    entry(day + DAY_MICROS + 5, "other", "INFO", 1, "nothing"),
                ],
            )
            .await?;
        writer
            .write(
                "b".to_owned(),
                vec![entry(day + 1, "w9", "ERROR", 1, "task failed")],
            )
            .await?;
        writer.shutdown().await;
        Ok((dir, store))
    }

    fn request(query: &str, fields: &str) -> FacetRequest {
        FacetRequest {
            tenants: vec!["a".to_owned()],
            query: query.to_owned(),
            filters: Vec::new(),
            start: None,
            end: None,
            fields: facet_fields(fields).expect("known fields"),
        }
    }

    #[tokio::test]
    async fn values_are_counted_over_the_query_across_days_for_the_callers_tenants_only()
    -> anyhow::Result<()> {
        let (_dir, store) = store().await?;
        let counts = facets(&store, &request("task", "level,node,cluster"))?;
        assert_eq!(counts.total, 4);
        let field = |name: &str| -> Vec<(&str, u64)> {
            counts.fields[name]
                .iter()
                .map(|(value, count)| (value.as_str(), *count))
                .collect()
        };
        assert_eq!(field("level"), [("ERROR", 2), ("INFO", 1), ("WARNING", 1)]);
        assert_eq!(field("node"), [("w1", 2), ("w2", 2)]);
        assert_eq!(field("cluster"), [("c1", 4)]);
        Ok(())
    }

    #[tokio::test]
    async fn the_time_range_bounds_the_counts_and_an_empty_match_keeps_its_fields()
    -> anyhow::Result<()> {
        let (_dir, store) = store().await?;
        let day = 20_000 * DAY_MICROS;
        let mut second_day = request("*", "node");
        second_day.start = Some(Timestamp::from_microsecond(day + DAY_MICROS)?);
        let counts = facets(&store, &second_day)?;
        assert_eq!(counts.total, 2);
        assert_eq!(counts.fields["node"].len(), 2);
        let none = facets(&store, &request("absent", "level"))?;
        assert_eq!(none.total, 0);
        assert!(none.fields["level"].is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn tenant_counts_each_readable_tenants_matches() -> anyhow::Result<()> {
        let (_dir, store) = store().await?;
        let mut both = request("failed", "tenant,level");
        both.tenants = vec!["a".to_owned(), "b".to_owned()];
        let counts = facets(&store, &both)?;
        assert_eq!(counts.total, 3);
        let tenants: Vec<(&str, u64)> = counts.fields["tenant"]
            .iter()
            .map(|(tenant, count)| (tenant.as_str(), *count))
            .collect();
        assert_eq!(tenants, [("a", 2), ("b", 1)]);
        assert_eq!(counts.fields["level"]["ERROR"], 3);
        // A tenant clause narrows the counts, and never reaches past the readable tenants.
        both.query = "failed AND tenant:b".to_owned();
        assert_eq!(facets(&store, &both)?.fields["tenant"].len(), 1);
        let only_a = FacetRequest {
            query: "tenant:b".to_owned(),
            ..request("*", "tenant")
        };
        let counts = facets(&store, &only_a)?;
        assert_eq!(counts.total, 0);
        assert!(counts.fields["tenant"].is_empty());
        Ok(())
    }

    /// Each field is counted under the query and the other fields' filters, not its own; the
    /// total under all of them.
    #[tokio::test]
    async fn a_field_is_counted_without_its_own_filters() -> anyhow::Result<()> {
        let (_dir, store) = store().await?;
        let filter = |text: &str, exclude: bool| FieldFilter::parse(text, exclude).expect("filter");
        let mut kept = request("task", "node,level");
        kept.filters = vec![filter("node:w2", false), filter("level:WARNING", true)];
        let counts = facets(&store, &kept)?;
        assert_eq!(counts.total, 1, "w2's task records but its warning");
        let field = |name: &str| -> Vec<(&str, u64)> {
            counts.fields[name]
                .iter()
                .map(|(value, count)| (value.as_str(), *count))
                .collect()
        };
        assert_eq!(
            field("node"),
            [("w1", 2), ("w2", 1)],
            "no warning, any node"
        );
        assert_eq!(
            field("level"),
            [("ERROR", 1), ("WARNING", 1)],
            "w2's, its warning too"
        );
        Ok(())
    }

    #[test]
    fn only_known_fields_can_be_faceted() {
        assert_eq!(
            facet_fields("level, node,level").expect("known"),
            ["level", "node"]
        );
        let error = facet_fields("level,message").expect_err("message is text");
        assert!(error.contains("\"message\" cannot be faceted"), "{error}");
    }
}
