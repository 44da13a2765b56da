//! Network addresses typed into a log query, quoted before tantivy's grammar reads them. Dask
//! logs name workers by address (`tcp://127.0.0.1:34667`, `scheduler:8786`), and the grammar
//! reads `name:` as a field: unquoted, a URL is a syntax error and `host:port` an unknown field.
//!
//! The rule a reader must not miss: only two shapes are quoted, and a query that already
//! parses keeps its meaning. A word holding `://` becomes a phrase (after its `field:`, when
//! it starts with one), and `host:port` becomes one when its port is all digits and `host` is
//! not a field. Any other `name:value` is left to the grammar, so an unknown field stays an
//! error that names it. Quoted strings, ranges (`[…]`, `{…}`) and words with escapes are left
//! as written.

use std::borrow::Cow;

use crate::index::query_bounds::after_quoted;

/// `query` with its addresses in double quotes; `is_field` tells the query language's field
/// names. Borrowed unchanged when nothing is quoted.
pub fn quote_addresses<'a>(query: &'a str, is_field: impl Fn(&str) -> bool) -> Cow<'a, str> {
    let bytes = query.as_bytes();
    let mut quoted = String::new();
    // `query[copied..]` is not yet in `quoted`.
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' | b'\'' => at = after_quoted(bytes, at),
            b'[' | b'{' => {
                at = bytes[at..]
                    .iter()
                    .position(|byte| matches!(byte, b']' | b'}'))
                    .map_or(bytes.len(), |end| at + end + 1);
            }
            byte if ends_word(byte) => at += 1,
            _ => {
                let end = word_end(bytes, at);
                // An operator (`-`, `+`) before the word is not part of what is quoted.
                let start = if matches!(bytes[at], b'-' | b'+') {
                    at + 1
                } else {
                    at
                };
                if let Some(replacement) = quote_word(&query[start..end], &is_field) {
                    quoted.push_str(&query[copied..start]);
                    quoted.push_str(&replacement);
                    copied = end;
                }
                at = end;
            }
        }
    }
    if copied == 0 {
        return Cow::Borrowed(query);
    }
    quoted.push_str(&query[copied..]);
    Cow::Owned(quoted)
}

/// What `word` becomes, when it is an address to quote.
fn quote_word(word: &str, is_field: &impl Fn(&str) -> bool) -> Option<String> {
    if word.contains('\\') {
        return None;
    }
    let (name, value) = word.split_once(':')?;
    if word.contains("://") {
        if value.starts_with("//") {
            // `tcp://…`: the scheme is not a field.
            return Some(format!("\"{word}\""));
        }
        // `message:tcp://…`, or `nosuch:tcp://…` (then refused as an unknown field).
        return Some(format!("{name}:\"{value}\""));
    }
    let is_port = !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit());
    (!name.is_empty() && is_port && !is_field(name)).then(|| format!("\"{word}\""))
}

/// Whether `byte` separates words: space, a group's parenthesis, or the start of a string
/// or a range.
fn ends_word(byte: u8) -> bool {
    byte.is_ascii_whitespace() || matches!(byte, b'(' | b')' | b'"' | b'\'' | b'[' | b'{')
}

/// The index just past the word that starts at `start`; an escape keeps the next byte in it.
fn word_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start;
    while at < bytes.len() && !ends_word(bytes[at]) {
        at += if bytes[at] == b'\\' { 2 } else { 1 };
    }
    at.min(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(query: &str) -> String {
        quote_addresses(query, |name| ["node", "message", "level"].contains(&name)).into_owned()
    }

    #[test]
    fn urls_and_host_ports_become_phrases() {
        for (query, expected) in [
            ("tcp://127.0.0.1:34667", "\"tcp://127.0.0.1:34667\""),
            ("127.0.0.1:34667", "\"127.0.0.1:34667\""),
            ("scheduler:8786", "\"scheduler:8786\""),
            (
                "\"Remove worker\" AND tcp://10.0.0.5:40123",
                "\"Remove worker\" AND \"tcp://10.0.0.5:40123\"",
            ),
            ("-scheduler:8786", "-\"scheduler:8786\""),
            (
                "(tcp://a:1 OR tcp://b:2)",
                "(\"tcp://a:1\" OR \"tcp://b:2\")",
            ),
            ("message:tcp://a:1", "message:\"tcp://a:1\""),
            ("nosuch:tcp://a:1", "nosuch:\"tcp://a:1\""),
            ("inproc://10.0.0.1/7/1", "\"inproc://10.0.0.1/7/1\""),
        ] {
            assert_eq!(quoted(query), expected, "{query}");
        }
    }

    #[test]
    fn what_already_parses_is_left_as_written() {
        for query in [
            "level:ERROR AND node:w-1",
            // A field's value stays the field's, digits or not.
            "node:8786",
            // Not all digits: left to fail as an unknown field.
            "scheduler:abc",
            "scheduler:",
            ":8786",
            "\"tcp://127.0.0.1:34667\"",
            "'scheduler:8786'",
            "seq:[1 TO 10:20]",
            "tcp\\://a:1",
            "",
        ] {
            assert!(
                matches!(
                    quote_addresses(query, |name| name == "node"),
                    Cow::Borrowed(_)
                ),
                "{query}"
            );
        }
    }
}
