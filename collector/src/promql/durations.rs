//! Durations in a query (`rate(x[300])`, `x[1e3:10]`, `x offset 60`, `x[5m:1ms]`), checked
//! before `promql-parser` reads them. The rule a reader must not miss: the parser (0.11) turns
//! a number into a `std::time::Duration` with `from_secs_f64`, which panics on a negative,
//! infinite, NaN or too large number, so none of those may reach it. Like Prometheus, a
//! duration past 2^63 ns (292 years) is an error, which also keeps the engine's millisecond
//! arithmetic far from `i64`'s limits.

use crate::promql::QueryError;
use crate::promql::depth::after_string;

/// The longest duration Prometheus accepts, in seconds: 2^63 - 1 ns.
const MAX_DURATION_SECONDS: f64 = 9_223_372_036.854_775;
/// The same in whole milliseconds.
const MAX_DURATION_MS: u128 = 9_223_372_036_854;

/// Checks every duration written where the grammar wants one: the parts of a `[…]` range or
/// subquery, and what follows `offset`. Anything that is not a duration is left to the parser.
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
                    check_duration(part.trim())?;
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
                check_duration(token)?;
                at += "offset".len();
            }
            _ => at += 1,
        }
    }
    Ok(())
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

/// Fails if `text` is a number (decimal, float, hex, `Inf`, `NaN`) that is not a duration, or
/// a duration with units (`1y2d`) longer than 292 years.
fn check_duration(text: &str) -> Result<(), QueryError> {
    let lower = text.to_ascii_lowercase();
    let seconds = match lower.strip_prefix("0x") {
        Some(hex) => u128::from_str_radix(hex, 16).ok().map(|value| value as f64),
        None => lower.parse::<f64>().ok(),
    };
    let fits = match seconds {
        Some(seconds) => (0.0..=MAX_DURATION_SECONDS).contains(&seconds),
        None => unit_duration_ms(text).is_none_or(|ms| ms <= MAX_DURATION_MS),
    };
    if fits {
        return Ok(());
    }
    Err(QueryError::Parse(format!(
        "invalid duration {text:?}: out of range (at most 292 years, 9223372036 seconds)"
    )))
}

/// The length of a duration with units (`1h30m`, units `y w d h m s ms`), saturating;
/// `None` when `text` is not one.
fn unit_duration_ms(text: &str) -> Option<u128> {
    let mut rest = text;
    let mut total: u128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let count: u128 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: u128 = match &rest[..unit_len] {
            "y" => 365 * 24 * 3_600_000,
            "w" => 7 * 24 * 3_600_000,
            "d" => 24 * 3_600_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            "ms" => 1,
            _ => return None,
        };
        total = total.saturating_add(count.saturating_mul(unit_ms));
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use crate::promql::parse;

    /// Found by `scripts/fuzz promql`: `promql-parser` panicked ("cannot convert float seconds
    /// to Duration") on a number too large for a duration in a range, a subquery or an offset;
    /// and durations with units past 292 years overflowed the engine's `i64` milliseconds.
    #[test]
    fn fuzz_durations_out_of_range_are_a_parse_error_not_a_panic() {
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
            "x offset -99999999y",
            "rate(x[99999999y])",
            "x[5m:99999999y]",
            "x[293y]",
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
            "x[292y] offset -1w2d",
        ] {
            parse(query).unwrap_or_else(|error| panic!("{query}: {error}"));
        }
    }
}
