//! Time parameters of the log API: RFC 3339, Unix seconds or milliseconds (with a fraction),
//! and relative times like `now-1h`. The rule a reader must not miss: a Unix time with up to
//! 12 integer digits is seconds (up to year 33658), one with 13 or more is milliseconds
//! (from 2001 on), so `253402300799` is the last second of year 9999, not a day in 1978.
//! The Prometheus endpoints take seconds only, as Prometheus does (`prom.rs`).

use jiff::{SignedDuration, Timestamp};

/// Parses the optional time parameter `name` (empty counts as absent); a bad one is a 400
/// naming it.
pub(crate) fn time_param(
    name: &str,
    value: Option<String>,
    now: Timestamp,
) -> Result<Option<Timestamp>, crate::api::ApiError> {
    value
        .filter(|text| !text.trim().is_empty())
        .map(|text| {
            parse_time(&text, now)
                .map_err(|error| crate::api::ApiError::bad_request(format!("`{name}`: {error}")))
        })
        .transpose()
}

/// Parses a time parameter; `now` is the time relative expressions count from.
pub fn parse_time(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Some(relative) = text.strip_prefix("now") {
        return parse_relative(relative, now).ok_or_else(|| {
            format!("{text:?} is not a relative time like \"now\", \"now-15m\" or \"now-7d\"")
        });
    }
    if !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b'.')
    {
        return parse_unix(text).ok_or_else(|| {
            format!("{text:?} is not a Unix time before year 10000 (up to 12 integer digits are seconds, 13 or more milliseconds)")
        });
    }
    text.parse::<Timestamp>().map_err(|error| {
        format!("{text:?} is not an RFC 3339 time, a Unix time or a relative time like \"now-1h\": {error}")
    })
}

/// `""`, `-1h`, `+30s`, `-7d`, `-2w`, `-500ms`.
fn parse_relative(text: &str, now: Timestamp) -> Option<Timestamp> {
    if text.is_empty() {
        return Some(now);
    }
    let (sign, amount) = match text.as_bytes()[0] {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => return None,
    };
    let digits_end = amount.find(|c: char| !c.is_ascii_digit())?;
    let count: i64 = amount[..digits_end].parse().ok()?;
    let unit_millis: i64 = match &amount[digits_end..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return None,
    };
    let offset = SignedDuration::from_millis(count.checked_mul(unit_millis)?.checked_mul(sign)?);
    now.checked_add(offset).ok()
}

/// Below 10^12 (12 integer digits or fewer) seconds, else milliseconds; a fraction is allowed.
/// Integer arithmetic keeps every digit exact. `None` from year 10000 on; the last hours of
/// year 9999, which a `Timestamp` does not hold, are its latest time (`253402300799`, the
/// last second of 9999, is a common "no end").
fn parse_unix(text: &str) -> Option<Timestamp> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || whole.len() > 20 || fraction.contains('.') {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let nanos_per_unit: i128 = if whole < LARGEST_UNIX_SECONDS_PLUS_ONE {
        1_000_000_000
    } else {
        1_000_000
    };
    let mut fraction_nanos: i128 = 0;
    let mut scale = nanos_per_unit;
    for digit in fraction.bytes().take(18) {
        scale /= 10;
        fraction_nanos += i128::from(digit - b'0') * scale;
    }
    let nanos = whole * nanos_per_unit + fraction_nanos;
    if nanos >= YEAR_10000_UNIX_NANOS {
        return None;
    }
    Some(Timestamp::from_nanosecond(nanos).unwrap_or(Timestamp::MAX))
}

/// The smallest Unix time read as milliseconds: 13 integer digits.
const LARGEST_UNIX_SECONDS_PLUS_ONE: i128 = 1_000_000_000_000;

/// 10000-01-01T00:00:00Z in Unix nanoseconds.
const YEAR_10000_UNIX_NANOS: i128 = 253_402_300_800 * 1_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> String {
        let now: Timestamp = "2026-11-27T14:00:00Z".parse().expect("valid");
        match parse_time(text, now) {
            Ok(ts) => ts.to_string(),
            Err(error) => format!("error: {error}"),
        }
    }

    #[test]
    fn accepts_every_documented_form() {
        assert_eq!(at("2026-11-27T13:56:53.599Z"), "2026-11-27T13:56:53.599Z");
        assert_eq!(at("2026-11-27T15:56:53+02:00"), "2026-11-27T13:56:53Z");
        assert_eq!(at("1795787813"), "2026-11-27T13:56:53Z");
        assert_eq!(at("1795787813.5"), "2026-11-27T13:56:53.5Z");
        assert_eq!(at("1795787813599"), "2026-11-27T13:56:53.599Z");
        assert_eq!(at("now"), "2026-11-27T14:00:00Z");
        assert_eq!(at("now-1h"), "2026-11-27T13:00:00Z");
        assert_eq!(at("now-7d"), "2026-11-20T14:00:00Z");
        assert_eq!(at("now+30s"), "2026-11-27T14:00:30Z");
    }

    #[test]
    fn twelve_integer_digits_are_seconds_and_thirteen_milliseconds() {
        assert!(
            at("253402300799").starts_with("9999-12-"),
            "{}",
            at("253402300799")
        );
        assert!(at("253402300799999").starts_with("9999-12-"));
        assert!(at("253402300800").starts_with("error: "));
        assert_eq!(at("100000000000"), "5138-11-16T09:46:40Z");
        // Read as milliseconds it would be 2001-09-09; as seconds it is past year 9999.
        let twelve_nines = at("999999999999");
        assert!(
            twelve_nines.starts_with("error: ") && twelve_nines.contains("12 integer digits"),
            "{twelve_nines}"
        );
        assert_eq!(at("1700000000000"), "2023-11-14T22:13:20Z");
        assert_eq!(at("1700000000000.5"), "2023-11-14T22:13:20.0005Z");
        assert_eq!(at("1700000000"), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn names_the_bad_value() {
        for bad in ["yesterday", "now-1y", "now-", "2026-13-01T00:00:00Z", ""] {
            let answer = at(bad);
            assert!(answer.starts_with("error: "), "{bad:?} gave {answer}");
        }
    }
}
