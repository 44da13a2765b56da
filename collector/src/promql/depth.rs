//! A bound on how deeply a query may nest, checked before `promql-parser` reads it. The rule
//! a reader must not miss: parsing, evaluating and dropping an expression all recurse once
//! per level, so `up+1+1…` or `abs(abs(…))` some thousands deep overflowed the stack and
//! aborted the whole collector (found by `scripts/fuzz promql` inputs). The bound is on the
//! text, before any tree exists: every operator, keyword operator, `(` and `[` outside
//! strings, comments and label matchers counts as a level, an upper bound of the tree's
//! depth. Real queries stay far below it.

use crate::promql::QueryError;

/// The most nesting levels a query may have.
pub(crate) const MAX_QUERY_DEPTH: usize = 256;

/// Fails if `query` may nest deeper than `MAX_QUERY_DEPTH`.
pub(crate) fn check_query_depth(query: &str) -> Result<(), QueryError> {
    let bytes = query.as_bytes();
    let mut levels = 0usize;
    let mut in_braces = false;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        match byte {
            b'"' | b'\'' | b'`' => {
                at = after_string(bytes, at, byte);
                continue;
            }
            b'#' => {
                at = bytes[at..]
                    .iter()
                    .position(|&byte| byte == b'\n')
                    .map_or(bytes.len(), |newline| at + newline);
                continue;
            }
            b'{' => in_braces = true,
            b'}' => in_braces = false,
            _ if in_braces => {}
            b'(' | b'[' | b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'=' | b'!' | b'<' | b'>' => {
                levels += 1;
            }
            _ if byte.is_ascii_alphabetic() => {
                let word_end = bytes[at..]
                    .iter()
                    .position(|byte| !(byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b':')))
                    .map_or(bytes.len(), |end| at + end);
                let word = &bytes[at..word_end];
                if [&b"and"[..], b"or", b"unless", b"atan2"]
                    .iter()
                    .any(|keyword| word.eq_ignore_ascii_case(keyword))
                {
                    levels += 1;
                }
                at = word_end;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    if levels > MAX_QUERY_DEPTH {
        return Err(QueryError::BadQuery(format!(
            "the query nests too deeply: {levels} operators, parentheses and brackets, at most {MAX_QUERY_DEPTH}"
        )));
    }
    Ok(())
}

/// The index just past the string literal that opens at `start` (or the end of the query).
pub(crate) fn after_string(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' if quote != b'`' => at += 2,
            byte if byte == quote => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::MAX_QUERY_DEPTH;
    use crate::promql::tests::MemorySource;
    use crate::promql::{QueryOptions, instant_query, parse};

    /// Found by `scripts/fuzz promql` inputs: 10,000 `+1` (20 KB) overflowed the 8 MB stack
    /// of the evaluator; on the collector's 2 MB blocking threads far fewer did, and a stack
    /// overflow aborts the process.
    #[test]
    fn fuzz_deeply_nested_queries_are_refused_before_parsing() {
        let deep = [
            format!("up{}", "+1".repeat(10_000)),
            format!("{}up{}", "abs(".repeat(10_000), ")".repeat(10_000)),
            format!("{}up", "-".repeat(100_000)),
            format!("up{}", " or up".repeat(10_000)),
        ];
        for query in &deep {
            let error = parse(query).expect_err("too deep").to_string();
            assert!(error.contains("nests too deeply"), "{error}");
        }
    }

    #[test]
    fn ordinary_nesting_and_matchers_are_not_counted_against_a_query() {
        let wide_matchers = format!(
            "up{{{}}}",
            (0..400)
                .map(|i| format!("l{i}!~\"a-b+c\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let at_the_limit = format!("up{}", "+1".repeat(MAX_QUERY_DEPTH));
        for query in [
            "histogram_quantile(0.99, sum by (le) (rate(x_bucket{job=\"a-b\"}[5m])))",
            "up # ((((((((((((((((((((((((((((((((((((((((((((((((((((((((",
            "label_replace(up, \"dst\", \"((((((((((((((((((((((((\", \"src\", \"(.*)\")",
            wide_matchers.as_str(),
            at_the_limit.as_str(),
        ] {
            parse(query).unwrap_or_else(|error| panic!("{query}: {error}"));
        }
        let over_the_limit = format!("up{}", "+1".repeat(MAX_QUERY_DEPTH + 1));
        assert!(parse(&over_the_limit).is_err());
    }

    /// The deepest accepted queries evaluate within a 2 MB test thread's stack, even in a
    /// debug build (the collector's blocking threads have 2 MB too).
    #[test]
    fn the_deepest_accepted_queries_evaluate_without_overflowing_the_stack() {
        let source = MemorySource::default();
        let half = MAX_QUERY_DEPTH / 2;
        for query in [
            format!("vector(1){}", "+1".repeat(MAX_QUERY_DEPTH - 1)),
            format!("{}vector(1){}", "abs(".repeat(half), ")".repeat(half)),
            format!("{}vector(1){}", "sum(".repeat(half), ")".repeat(half)),
            format!("{}vector(1)", "-".repeat(MAX_QUERY_DEPTH - 1)),
        ] {
            instant_query(&source, &query, 0, &QueryOptions::default())
                .unwrap_or_else(|error| panic!("{query}: {error}"));
        }
    }
}
