//! Numeric durations in a query (`rate(x[300])`, `x[1e3:10]`, `x offset 60`), checked before
//! `promql-parser` reads them. The rule a reader must not miss: the parser (0.11) turns such a
//! number into a `std::time::Duration` with `from_secs_f64`, which panics on a negative,
//! infinite, NaN or too large number, so none of those may reach it. Like Prometheus, a
//! duration past 2^63 ns (292 years) is an error.

use crate::promql::QueryError;

/// The longest duration Prometheus accepts, in seconds: 2^63 - 1 ns.
const MAX_DURATION_SECONDS: f64 = 9_223_372_036.854_775;

/// Checks every number written where the grammar wants a duration: the parts of a `[…]`
/// range or subquery, and what follows `offset`. Durations with units (`5m`) and anything
/// that is not a number are left to the parser.
pub(crate) fn check_numeric_durations(query: &str) -> Result<(), QueryError> {
    let bytes = query.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            quote @ (b'"' | b'\'' | b'`') => at = after_string(bytes, at, quote),
            b'#' => {
                at = bytes[at..]
                    .iter()
                    .position(|&byte| byte == b'\n')
                    .map_or(bytes.len(), |newline| at + newline);
            }
            b'[' => {
                let end = bytes[at..]
                    .iter()
                    .position(|&byte| matches!(byte, b']' | b'"' | b'\'' | b'`'))
                    .map_or(bytes.len(), |found| at + found);
                for part in query[at + 1..end].split(':') {
                    check_number(part.trim())?;
                }
                at = end;
            }
            b'o' | b'O' if is_offset_keyword(bytes, at) => {
                let rest = query[at + "offset".len()..].trim_start();
                let rest = rest.strip_prefix(['+', '-']).map_or(rest, str::trim_start);
                let token = rest
                    .split(|c: char| c.is_whitespace() || "()[]{},#".contains(c))
                    .next()
                    .unwrap_or_default();
                check_number(token)?;
                at += "offset".len();
            }
            _ => at += 1,
        }
    }
    Ok(())
}

/// The index just past the string literal that opens at `start` (or the end of the query).
fn after_string(bytes: &[u8], start: usize, quote: u8) -> usize {
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

fn is_offset_keyword(bytes: &[u8], at: usize) -> bool {
    let is_identifier = |byte: &u8| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b':');
    bytes
        .get(at..at + "offset".len())
        .is_some_and(|word| word.eq_ignore_ascii_case(b"offset"))
        && !at
            .checked_sub(1)
            .and_then(|before| bytes.get(before))
            .is_some_and(is_identifier)
        && !bytes.get(at + "offset".len()).is_some_and(is_identifier)
}

/// Fails if `text` is a number (decimal, float, hex, `Inf`, `NaN`) that is not a duration.
fn check_number(text: &str) -> Result<(), QueryError> {
    let lower = text.to_ascii_lowercase();
    let seconds = match lower.strip_prefix("0x") {
        Some(hex) => u128::from_str_radix(hex, 16).ok().map(|value| value as f64),
        None => lower.parse::<f64>().ok(),
    };
    match seconds {
        Some(seconds) if !(0.0..=MAX_DURATION_SECONDS).contains(&seconds) => {
            Err(QueryError::Parse(format!(
                "invalid duration {text:?}: a number of seconds must be from 0 to 9223372036 (292 years)"
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::promql::parse;

    /// Found by `scripts/fuzz promql`: `promql-parser` panicked ("cannot convert float seconds
    /// to Duration") on a number too large for a duration in a range, a subquery or an offset.
    #[test]
    fn fuzz_numbers_that_are_no_duration_are_a_parse_error_not_a_panic() {
        for query in [
            "rate(tric[1333333e33333333333:20s])",
            "x[1e999]",
            "x[5m:1e999]",
            "x[Inf]",
            "x[NaN]",
            "x[0x10000000000000000]",
            "x offset 1e999",
            "x OFFSET -1e999",
            "sum(x[300] offset 1e30)",
            "x[9223372037]",
        ] {
            let error = parse(query).expect_err(query).to_string();
            assert!(error.contains("invalid duration"), "{query}: {error}");
        }
    }

    #[test]
    fn numeric_durations_in_range_and_look_alikes_still_parse() {
        for query in [
            "rate(x[300])",
            "x[1e3:10]",
            "x offset 60",
            "x offset -5m",
            "my_offset_total[5m] offset 1h",
            r#"x{offset="1e999", le="[1e999]"}"#,
            "x # offset 1e999",
            "x[9223372036]",
        ] {
            parse(query).unwrap_or_else(|error| panic!("{query}: {error}"));
        }
    }
}
