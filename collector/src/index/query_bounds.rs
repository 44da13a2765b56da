//! Bounds on a log query's text, checked before tantivy's query parser reads it. The rule a
//! reader must not miss: the parser, the query tree it builds, and dropping that tree each
//! recurse once per level of `(…)` and of `NOT`, on a worker thread's 2 MiB stack, so
//! `((((…task…))))` 350 deep or `NOT ` 1,500 times overflowed it and aborted the whole
//! collector, ingest included. The depth is measured on the text, before any tree exists,
//! and counts exactly what the grammar nests: an open group adds one level plus the `NOT`s
//! just before it, and a run of `NOT`s before a term adds one level each. Strings and
//! escaped characters do not count. Real queries stay far below the bound.

use crate::error::{Error, Result};

/// The most levels of groups and `NOT`s a log query may nest. A debug build parses and runs a
/// query this deep on a 2 MiB stack with room to spare (the tests below).
pub const MAX_LOG_QUERY_DEPTH: usize = 64;

/// The longest log query, in bytes: hundreds of terms, far more than a person types or a
/// link carries.
pub const MAX_LOG_QUERY_BYTES: usize = 16 * 1024;

/// Fails with `BadQuery` when `query` is longer than `MAX_LOG_QUERY_BYTES` or nests deeper
/// than `MAX_LOG_QUERY_DEPTH`.
pub fn check_log_query(query: &str) -> Result<()> {
    if query.len() > MAX_LOG_QUERY_BYTES {
        return Err(Error::BadQuery(format!(
            "the query is {} bytes long, at most {MAX_LOG_QUERY_BYTES}",
            query.len()
        )));
    }
    let depth = log_query_depth(query);
    if depth > MAX_LOG_QUERY_DEPTH {
        return Err(Error::BadQuery(format!(
            "the query nests {depth} levels of parentheses and NOT, at most {MAX_LOG_QUERY_DEPTH}"
        )));
    }
    Ok(())
}

/// How deeply tantivy's grammar would nest `query`: the most levels open at any point.
pub fn log_query_depth(query: &str) -> usize {
    let bytes = query.as_bytes();
    // The levels each open group added (itself and the `NOT`s before it).
    let mut groups: Vec<usize> = Vec::new();
    let mut open_levels = 0usize;
    let mut pending_nots = 0usize;
    let mut deepest = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' | b'\'' => {
                at = after_quoted(bytes, at);
                pending_nots = 0;
                continue;
            }
            b'\\' => {
                at += 2;
                pending_nots = 0;
                continue;
            }
            b'(' => {
                let levels = 1 + pending_nots;
                pending_nots = 0;
                groups.push(levels);
                open_levels += levels;
                deepest = deepest.max(open_levels);
            }
            b')' => {
                open_levels -= groups.pop().unwrap_or(0);
                pending_nots = 0;
            }
            byte if byte.is_ascii_whitespace() => {}
            _ => {
                let word_end = bytes[at..]
                    .iter()
                    .position(|byte| {
                        byte.is_ascii_whitespace() || matches!(byte, b'(' | b')' | b'"' | b'\\')
                    })
                    .map_or(bytes.len(), |end| at + end);
                if &bytes[at..word_end] == b"NOT" {
                    pending_nots += 1;
                    deepest = deepest.max(open_levels + pending_nots);
                } else if !matches!(&bytes[at..word_end], b"-" | b"+") {
                    pending_nots = 0;
                }
                at = word_end;
                continue;
            }
        }
        at += 1;
    }
    deepest
}

/// The index just past the quoted string that opens at `start` (or the end of the query).
pub(crate) fn after_quoted(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            byte if byte == quote => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_what_the_grammar_nests() {
        for (query, depth) in [
            ("", 0),
            ("level:ERROR AND \"KilledWorker\" -node:w-3", 0),
            ("(a OR b) AND (c OR d)", 1),
            ("((a))", 2),
            ("NOT a", 1),
            ("NOT NOT a", 2),
            ("NOT (a OR NOT b)", 3),
            ("-(a) -(b) -(c)", 1),
            ("logger:(a OR (b))", 2),
            ("NOT a AND NOT b AND NOT c", 1),
            // Inside strings and after escapes nothing nests.
            ("\"(((NOT NOT\" 'NOT ((('", 0),
            ("\\(\\(\\( a", 0),
            // A stray closing parenthesis does not go below zero.
            (")) (a)", 1),
        ] {
            assert_eq!(log_query_depth(query), depth, "{query:?}");
        }
    }

    #[test]
    fn a_query_past_a_bound_is_refused_naming_it() {
        let deep = format!("{}a{}", "(".repeat(65), ")".repeat(65));
        let Err(Error::BadQuery(message)) = check_log_query(&deep) else {
            panic!("65 levels are refused");
        };
        assert!(
            message.contains("65 levels") && message.contains("at most 64"),
            "{message}"
        );
        let long = "a ".repeat(MAX_LOG_QUERY_BYTES);
        let Err(Error::BadQuery(message)) = check_log_query(&long) else {
            panic!("a query over the length bound is refused");
        };
        assert!(message.contains("at most 16384"), "{message}");
        assert!(check_log_query(&format!("{}a{}", "(".repeat(64), ")".repeat(64))).is_ok());
    }
}
