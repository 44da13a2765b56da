//! A parsed log query and what it means in each tenant: the query language's `tenant:` field,
//! which no document holds. A record's tenant is the partition it lives in, so `tenant:team-b`
//! is answered per partition: in team-b's partitions the clause matches every record, in
//! everyone else's none, and the rest of the query runs as tantivy's parser builds it. Facet
//! filters (`FieldFilter`, the API's `filter=` and `exclude=`) are ANDed to the typed query
//! here, as clauses of their own.
//!
//! The rule a reader must not miss: `tenant:` only narrows. Partitions are picked from the
//! caller's readable tenants before a query is asked about them, so naming another tenant
//! finds nothing rather than opening it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tantivy::query::{AllQuery, Query, QueryParser};
use tantivy::query_grammar::{self, Delimiter, Occur, UserInputAst, UserInputLeaf};
use tantivy::schema::Schema;

use crate::error::{Error, Result};
use crate::index::query_addresses::quote_addresses;
use crate::index::query_fields::{self, check_fields, wildcard_matches};
use crate::index::schema::KEYWORD_FIELDS;

/// The query language's name for the tenant a record belongs to.
pub const TENANT_FIELD: &str = "tenant";

/// A facet filter: the records whose `field` is `value` exactly, or with `exclude` those
/// whose `field` is not. Filters on one field are alternatives (`node` is a or b); filters on
/// different fields all apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldFilter {
    /// `tenant` or a keyword field.
    pub field: String,
    /// A whole value; empty for records without one (a `print()` has no level).
    pub value: String,
    pub exclude: bool,
}

impl FieldFilter {
    /// `field:value`, as the API's `filter` (or with `exclude`, `exclude`) parameter has it;
    /// the value is everything after the first `:`, taken as written.
    pub fn parse(text: &str, exclude: bool) -> std::result::Result<FieldFilter, String> {
        let Some((field, value)) = text.split_once(':') else {
            return Err(format!("{text:?} is not `field:value`"));
        };
        if field != TENANT_FIELD && !KEYWORD_FIELDS.contains(&field) {
            return Err(format!(
                "{field:?} cannot be filtered on (one of {TENANT_FIELD}, {})",
                KEYWORD_FIELDS.join(", ")
            ));
        }
        Ok(FieldFilter {
            field: field.to_owned(),
            value: value.to_owned(),
            exclude,
        })
    }
}

/// A query over the records of some tenants.
pub struct LogQuery {
    kind: Kind,
}

enum Kind {
    /// The query does not name `tenant`: the same in every tenant.
    Same(Arc<dyn Query>),
    /// The query names `tenant`: built per tenant, by what its `tenant:` clauses say there.
    PerTenant(PerTenant),
}

/// A query built for one valuation of the `tenant:` clauses; `None` when no record can match.
type BuiltQuery = Option<Arc<dyn Query>>;

struct PerTenant {
    parser: QueryParser,
    ast: UserInputAst,
    /// Queries built so far, by the truth of each `tenant:` clause (in tree order).
    built: Mutex<HashMap<Vec<bool>, BuiltQuery>>,
}

impl LogQuery {
    /// The query matching every record.
    pub fn everything() -> LogQuery {
        LogQuery {
            kind: Kind::Same(Arc::new(AllQuery)),
        }
    }

    /// Parses `text` with `parser` (over `schema`, `message` by default) and ANDs `filters`
    /// to it. Addresses in the text are searched as phrases (`query_addresses`), wildcards
    /// rewritten (`query_fields`); a query that does not parse, names a field that does not
    /// exist, puts a `*` where it cannot be answered or asks `tenant:` for more than names
    /// is `Error::BadQuery`. Reached through `search::parse_query`, which checks the text's
    /// bounds before anything parses it.
    pub fn parse(
        parser: &QueryParser,
        schema: &Schema,
        text: &str,
        filters: &[FieldFilter],
    ) -> Result<LogQuery> {
        let bad = |error: tantivy::query::QueryParserError| Error::BadQuery(error.to_string());
        let text = text.trim();
        let typed = if text.is_empty() || text == "*" {
            if filters.is_empty() {
                return Ok(LogQuery::everything());
            }
            UserInputAst::from(UserInputLeaf::All)
        } else {
            let text = quote_addresses(text, |name| query_fields::is_field(schema, name));
            let ast = query_grammar::parse_query(&text).map_err(|_| {
                bad(tantivy::query::QueryParserError::SyntaxError(
                    text.clone().into_owned(),
                ))
            })?;
            check_fields(ast, schema)?
        };
        let ast = with_filters(typed, filters);
        let mut clauses = Vec::new();
        tenant_clauses(&ast, &mut clauses)?;
        if clauses.is_empty() {
            return Ok(LogQuery {
                kind: Kind::Same(Arc::from(
                    parser.build_query_from_user_input_ast(ast).map_err(bad)?,
                )),
            });
        }
        // Checked once with every `tenant:` clause true, so that the other fields' errors
        // (and a query of only negations) are reported as for any query.
        let all_true = vec![true; clauses.len()];
        parser
            .build_query_from_user_input_ast(substitute(&ast, &all_true, &mut 0))
            .map_err(bad)?;
        Ok(LogQuery {
            kind: Kind::PerTenant(PerTenant {
                parser: parser.clone(),
                ast,
                built: Mutex::default(),
            }),
        })
    }
    /// Tells whether the query names `tenant`.
    pub fn names_tenants(&self) -> bool {
        matches!(self.kind, Kind::PerTenant(_))
    }

    /// The query to run over `tenant`'s records; `None` when none of them can match (its
    /// partitions need not be opened).
    pub fn for_tenant(&self, tenant: &str) -> Result<BuiltQuery> {
        let per_tenant = match &self.kind {
            Kind::Same(query) => return Ok(Some(Arc::clone(query))),
            Kind::PerTenant(per_tenant) => per_tenant,
        };
        let mut truths = Vec::new();
        tenant_truths(&per_tenant.ast, tenant, &mut truths);
        let mut built = per_tenant
            .built
            .lock()
            .expect("tenant query lock is not poisoned");
        if let Some(query) = built.get(&truths) {
            return Ok(query.clone());
        }
        let query = if evaluate(&per_tenant.ast, &truths, &mut 0) == Truth::False {
            None
        } else {
            let ast = substitute(&per_tenant.ast, &truths, &mut 0);
            let query = per_tenant
                .parser
                .build_query_from_user_input_ast(ast)
                .map_err(|error| Error::BadQuery(error.to_string()))?;
            Some(Arc::from(query))
        };
        built.insert(truths, query.clone());
        Ok(query)
    }
}

/// `typed` ANDed with `filters`: a set of the included values per field, and each excluded
/// value ruled out.
fn with_filters(typed: UserInputAst, filters: &[FieldFilter]) -> UserInputAst {
    if filters.is_empty() {
        return typed;
    }
    let set = |field: &str, elements: Vec<String>| {
        UserInputAst::from(UserInputLeaf::Set {
            field: Some(field.to_owned()),
            elements,
        })
    };
    let mut clauses = vec![(Some(Occur::Must), typed)];
    let mut included: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for filter in filters {
        if filter.exclude {
            clauses.push((
                Some(Occur::MustNot),
                set(&filter.field, vec![filter.value.clone()]),
            ));
        } else {
            included
                .entry(&filter.field)
                .or_default()
                .push(filter.value.clone());
        }
    }
    for (field, values) in included {
        clauses.push((Some(Occur::Must), set(field, values)));
    }
    UserInputAst::Clause(clauses)
}

/// The field a leaf names, if any.
fn leaf_field(leaf: &UserInputLeaf) -> Option<&str> {
    match leaf {
        UserInputLeaf::Literal(literal) => literal.field_name.as_deref(),
        UserInputLeaf::All => None,
        UserInputLeaf::Range { field, .. }
        | UserInputLeaf::Set { field, .. }
        | UserInputLeaf::Regex { field, .. } => field.as_deref(),
        UserInputLeaf::Exists { field } => Some(field),
    }
}

/// Collects the `tenant:` leaves of `ast` in tree order; one that asks more than names or
/// wildcards on them (`tenant:team-*`), such as a range or a phrase prefix, is an error.
fn tenant_clauses<'a>(ast: &'a UserInputAst, found: &mut Vec<&'a UserInputLeaf>) -> Result<()> {
    match ast {
        UserInputAst::Clause(children) => {
            for (_, child) in children {
                tenant_clauses(child, found)?;
            }
        }
        UserInputAst::Boost(child, _) => tenant_clauses(child, found)?,
        UserInputAst::Leaf(leaf) => {
            if leaf_field(leaf) == Some(TENANT_FIELD) {
                match leaf.as_ref() {
                    UserInputLeaf::Literal(literal) if !literal.prefix => {}
                    UserInputLeaf::Set { .. } | UserInputLeaf::Exists { .. } => {}
                    _ => {
                        return Err(Error::BadQuery(format!(
                            "`{TENANT_FIELD}` matches tenant names: `{TENANT_FIELD}:team-a`, `{TENANT_FIELD}:(team-a OR team-b)` or `{TENANT_FIELD}:team-*`"
                        )));
                    }
                }
                found.push(leaf);
            }
        }
    }
    Ok(())
}

/// Whether each `tenant:` leaf of `ast` (in tree order) holds for `tenant`'s records.
fn tenant_truths(ast: &UserInputAst, tenant: &str, truths: &mut Vec<bool>) {
    match ast {
        UserInputAst::Clause(children) => {
            for (_, child) in children {
                tenant_truths(child, tenant, truths);
            }
        }
        UserInputAst::Boost(child, _) => tenant_truths(child, tenant, truths),
        UserInputAst::Leaf(leaf) => {
            if leaf_field(leaf) == Some(TENANT_FIELD) {
                truths.push(match leaf.as_ref() {
                    // Unquoted, a `*` is a wildcard, as on the other keyword fields.
                    UserInputLeaf::Literal(literal) if literal.delimiter == Delimiter::None => {
                        wildcard_matches(&literal.phrase, tenant)
                    }
                    UserInputLeaf::Literal(literal) => literal.phrase == tenant,
                    UserInputLeaf::Set { elements, .. } => {
                        elements.iter().any(|element| element == tenant)
                    }
                    // `tenant:*`: every record has a tenant. (Other leaves were refused.)
                    _ => true,
                });
            }
        }
    }
}

/// `ast` with its `tenant:` leaves replaced by match-all (true) or match-nothing (false)
/// leaves, `truths` read from `*next` on.
fn substitute(ast: &UserInputAst, truths: &[bool], next: &mut usize) -> UserInputAst {
    match ast {
        UserInputAst::Clause(children) => UserInputAst::Clause(
            children
                .iter()
                .map(|(occur, child)| (*occur, substitute(child, truths, next)))
                .collect(),
        ),
        UserInputAst::Boost(child, boost) => {
            UserInputAst::Boost(Box::new(substitute(child, truths, next)), *boost)
        }
        UserInputAst::Leaf(leaf) if leaf_field(leaf) == Some(TENANT_FIELD) => {
            let truth = truths.get(*next).copied().unwrap_or(false);
            *next += 1;
            UserInputAst::Leaf(Box::new(if truth {
                UserInputLeaf::All
            } else {
                // A set of no terms: a leaf that matches nothing and that the parser keeps
                // (an empty clause would be trimmed away, i.e. mean "no condition").
                UserInputLeaf::Set {
                    field: Some("stream".to_owned()),
                    elements: Vec::new(),
                }
            }))
        }
        UserInputAst::Leaf(leaf) => UserInputAst::Leaf(leaf.clone()),
    }
}

/// What is known of a (sub)query before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    /// Matches every record.
    True,
    /// Matches no record.
    False,
    /// Depends on the records.
    Unknown,
}

/// What `ast` matches when its `tenant:` leaves are valued by `truths` from `*next` on, as
/// tantivy's boolean queries match: every `Must`, no `MustNot`, and one `Should` when there
/// is no `Must`. Conservative: `Unknown` whenever unsure (the query then runs and decides).
fn evaluate(ast: &UserInputAst, truths: &[bool], next: &mut usize) -> Truth {
    match ast {
        UserInputAst::Boost(child, _) => evaluate(child, truths, next),
        UserInputAst::Leaf(leaf) if leaf_field(leaf) == Some(TENANT_FIELD) => {
            let truth = truths.get(*next).copied().unwrap_or(false);
            *next += 1;
            if truth { Truth::True } else { Truth::False }
        }
        UserInputAst::Leaf(leaf) if matches!(leaf.as_ref(), UserInputLeaf::All) => Truth::True,
        UserInputAst::Leaf(_) => Truth::Unknown,
        UserInputAst::Clause(children) => {
            let (mut musts, mut shoulds, mut must_nots) = (Vec::new(), Vec::new(), Vec::new());
            for (occur, child) in children {
                let value = evaluate(child, truths, next);
                match occur.unwrap_or(Occur::Must) {
                    Occur::Must => musts.push(value),
                    Occur::Should => shoulds.push(value),
                    Occur::MustNot => must_nots.push(value),
                }
            }
            if musts.contains(&Truth::False) || must_nots.contains(&Truth::True) {
                return Truth::False;
            }
            let excludes_none = must_nots.iter().all(|value| *value == Truth::False);
            let required = if !musts.is_empty() {
                if musts.iter().all(|value| *value == Truth::True) {
                    Truth::True
                } else {
                    Truth::Unknown
                }
            } else if shoulds.is_empty() {
                // Only negations: left to the parser, which completes them.
                return Truth::Unknown;
            } else if shoulds.contains(&Truth::True) {
                Truth::True
            } else if shoulds.iter().all(|value| *value == Truth::False) {
                return Truth::False;
            } else {
                Truth::Unknown
            };
            if required == Truth::True && excludes_none {
                Truth::True
            } else {
                Truth::Unknown
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tantivy::tokenizer::TokenizerManager;

    use super::*;
    use crate::index::schema::LogSchema;

    fn parser() -> QueryParser {
        let schema = LogSchema::new();
        let mut parser = QueryParser::new(
            schema.schema.clone(),
            vec![schema.message],
            TokenizerManager::default(),
        );
        parser.set_conjunction_by_default();
        parser
    }

    fn parse(text: &str) -> Result<LogQuery> {
        LogQuery::parse(&parser(), &LogSchema::new().schema, text, &[])
    }

    /// Whether `text` may match records of `tenant` (false: its partitions are skipped).
    fn may_match(text: &str, tenant: &str) -> bool {
        parse(text)
            .expect("parses")
            .for_tenant(tenant)
            .expect("builds")
            .is_some()
    }

    #[test]
    fn tenant_clauses_pick_tenants() {
        assert!(may_match("tenant:team-b", "team-b"));
        assert!(!may_match("tenant:team-b", "team-a"));
        assert!(!may_match("tenant:team-b AND level:ERROR", "team-a"));
        assert!(may_match("tenant:team-b OR level:ERROR", "team-a"));
        assert!(may_match("tenant:(team-a OR team-b)", "team-a"));
        assert!(!may_match("tenant:(team-a OR team-b)", "team-c"));
        assert!(!may_match("* -tenant:team-a", "team-a"));
        assert!(may_match("* -tenant:team-a", "team-b"));
        assert!(may_match("level:ERROR", "anyone"));
        // Like the other keyword fields, a `*` is a wildcard; quoted, a character.
        assert!(may_match("tenant:team*", "team-a"));
        assert!(!may_match("tenant:team*", "other"));
        assert!(!may_match("tenant:\"team*\"", "team-a"));
        assert!(!parse("level:ERROR").expect("parses").names_tenants());
    }

    #[test]
    fn filters_are_field_and_whole_value() {
        assert_eq!(
            FieldFilter::parse("logger:distributed.worker:x", true),
            Ok(FieldFilter {
                field: "logger".to_owned(),
                value: "distributed.worker:x".to_owned(),
                exclude: true,
            })
        );
        assert_eq!(
            FieldFilter::parse("level:", false).map(|filter| filter.value),
            Ok(String::new())
        );
        for bad in ["node", "message:x", "nosuch:x", ":x"] {
            assert!(FieldFilter::parse(bad, false).is_err(), "{bad}");
        }
    }

    /// Tenant filters pick partitions as `tenant:` clauses do.
    #[test]
    fn tenant_filters_pick_tenants() {
        let filtered = |filters: &[(&str, bool)], tenant: &str| {
            let filters: Vec<FieldFilter> = filters
                .iter()
                .map(|(text, exclude)| FieldFilter::parse(text, *exclude).expect("a filter"))
                .collect();
            LogQuery::parse(&parser(), &LogSchema::new().schema, "", &filters)
                .expect("parses")
                .for_tenant(tenant)
                .expect("builds")
                .is_some()
        };
        assert!(filtered(&[("tenant:a", false)], "a"));
        assert!(!filtered(&[("tenant:a", false)], "b"));
        assert!(filtered(&[("tenant:a", false), ("tenant:b", false)], "b"));
        assert!(!filtered(&[("tenant:a", true)], "a"));
        assert!(filtered(&[("tenant:a", true), ("node:x", false)], "b"));
    }

    #[test]
    fn tenant_clauses_ask_whole_names_and_keep_the_parsers_errors() {
        for text in [
            "tenant:\"team\"*",
            "tenant:[a TO b]",
            "-tenant:team-a",
            "tenant:x AND nosuch:y",
        ] {
            let error = parse(text).err();
            assert!(
                matches!(error, Some(Error::BadQuery(_))),
                "{text}: {error:?}"
            );
        }
    }
}
