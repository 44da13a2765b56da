//! Tests of the exposition-format parser: the rules one by one, snapshots of real pages,
//! and property tests that no input panics it.

use std::fmt::Write as _;

use proptest::prelude::*;

use super::*;

fn fixture(path: &str) -> String {
    let full_path = format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full_path)
        .unwrap_or_else(|error| panic!("cannot read fixture {full_path}: {error}"))
}

const DASK_PAGES: [&str; 4] = [
    "dask/metrics/scheduler-metrics-t1-idle.prom",
    "dask/metrics/scheduler-metrics-t2-load.prom",
    "dask/metrics/worker-1-metrics-t1-idle.prom",
    "dask/metrics/worker-1-metrics-t2-load.prom",
];

const NODE_EXPORTER_PAGE: &str = "node_exporter/metrics.prom";

/// A compact, stable rendering of a page for snapshots: every family with its kind, help
/// and sample count, and its first three samples.
fn render(page: &ParsedPage) -> String {
    let mut out = String::new();
    for family in &page.families {
        let _ = writeln!(
            out,
            "{} {:?} samples={}{}{}",
            family.name,
            family.kind,
            family.samples.len(),
            family
                .unit
                .as_ref()
                .map(|unit| format!(" unit={unit}"))
                .unwrap_or_default(),
            family
                .help
                .as_ref()
                .map(|help| format!(" help={help:?}"))
                .unwrap_or_default(),
        );
        for sample in family.samples.iter().take(3) {
            let labels: Vec<String> = sample
                .labels
                .iter()
                .map(|(name, value)| format!("{name}={value:?}"))
                .collect();
            let _ = writeln!(
                out,
                "    {}{{{}}} {:?}{}",
                sample.name,
                labels.join(","),
                sample.value,
                sample
                    .timestamp_ms
                    .map(|ms| format!(" @{ms}"))
                    .unwrap_or_default(),
            );
        }
    }
    for problem in &page.problems {
        let _ = writeln!(out, "problem: {problem}");
    }
    out
}

fn family<'a>(families: &'a [Family], name: &str) -> &'a Family {
    families
        .iter()
        .find(|family| family.name == name)
        .unwrap_or_else(|| panic!("no family {name} in {families:#?}"))
}

#[test]
fn dask_pages_snapshot() {
    for path in DASK_PAGES {
        let page = parse(&fixture(path), Format::Text004);
        assert!(page.problems.is_empty(), "{path}: {:?}", page.problems);
        let name = path
            .trim_start_matches("dask/metrics/")
            .replace(".prom", "");
        insta::assert_snapshot!(format!("dask_{name}"), render(&page));
    }
}

#[test]
fn node_exporter_page_snapshot() {
    let page = parse(&fixture(NODE_EXPORTER_PAGE), Format::Text004);
    assert!(page.problems.is_empty(), "{:?}", page.problems);
    insta::assert_snapshot!(render(&page));
}

#[test]
fn dask_gauge_and_counter_total_stay_separate_families() -> Result<(), ParseError> {
    // The real lines, from tests/fixtures/dask/metrics/worker-1-metrics-t2-load.prom.
    let text = "\
# HELP dask_worker_transfer_incoming_count Number of open data transfers from other workers
# TYPE dask_worker_transfer_incoming_count gauge
dask_worker_transfer_incoming_count 0.0
# HELP dask_worker_transfer_incoming_count_total Total number of data transfers from other workers since the worker was started
# TYPE dask_worker_transfer_incoming_count_total counter
dask_worker_transfer_incoming_count_total 2.0
";
    assert!(fixture(DASK_PAGES[3]).contains(text));
    let families = parse_strict(text, Format::Text004)?;
    assert_eq!(families.len(), 2);
    let gauge = family(&families, "dask_worker_transfer_incoming_count");
    assert_eq!(gauge.kind, MetricKind::Gauge);
    assert_eq!(gauge.samples.len(), 1);
    assert_eq!(gauge.samples[0].value, 0.0);
    let counter = family(&families, "dask_worker_transfer_incoming_count_total");
    assert_eq!(counter.kind, MetricKind::Counter);
    assert_eq!(counter.samples.len(), 1);
    assert_eq!(counter.samples[0].name, counter.name);
    assert_eq!(counter.samples[0].value, 2.0);
    Ok(())
}

#[test]
fn dask_collision_in_openmetrics_keeps_both_families() {
    // How Dask's client writes the same two metrics in OpenMetrics: both families are
    // named `dask_worker_transfer_incoming_count`.
    let text = "\
# HELP dask_worker_transfer_incoming_count Number of open data transfers from other workers
# TYPE dask_worker_transfer_incoming_count gauge
dask_worker_transfer_incoming_count 0.0
# HELP dask_worker_transfer_incoming_count Total number of data transfers from other workers since the worker was started
# TYPE dask_worker_transfer_incoming_count counter
dask_worker_transfer_incoming_count_total 2.0
# EOF
";
    let page = parse(text, Format::OpenMetrics);
    assert_eq!(page.families.len(), 2);
    assert_eq!(page.families[0].kind, MetricKind::Gauge);
    assert_eq!(page.families[0].samples[0].value, 0.0);
    assert_eq!(page.families[1].kind, MetricKind::Counter);
    assert_eq!(
        page.families[1].samples[0].name,
        "dask_worker_transfer_incoming_count_total"
    );
    assert_eq!(page.families[1].samples[0].value, 2.0);
    assert_eq!(
        page.problems,
        vec![ParseError::RepeatedMetadata {
            line_number: 4,
            name: "dask_worker_transfer_incoming_count".to_owned()
        }]
    );
}

#[test]
fn exact_family_name_wins_over_suffix_match() -> Result<(), ParseError> {
    let text = "\
# TYPE rpc histogram
rpc_bucket{le=\"+Inf\"} 3
rpc_count 3
rpc_sum 1.5
# TYPE rpc_count_total counter
rpc_count_total 7
# TYPE requests counter
requests_total 9
requests_created 1700000000
";
    let families = parse_strict(text, Format::Text004)?;
    let names: Vec<(&str, usize)> = families
        .iter()
        .map(|family| (family.name.as_str(), family.samples.len()))
        .collect();
    assert_eq!(
        names,
        vec![("rpc", 3), ("rpc_count_total", 1), ("requests", 2)]
    );
    Ok(())
}

#[test]
fn suffix_only_joins_a_family_whose_kind_allows_it() -> Result<(), ParseError> {
    // A gauge has no `_total` samples: `temperature_total` is its own untyped family.
    let text = "# TYPE temperature gauge\ntemperature 3\ntemperature_total 4\n";
    let families = parse_strict(text, Format::Text004)?;
    assert_eq!(families.len(), 2);
    assert_eq!(families[1].name, "temperature_total");
    assert_eq!(families[1].kind, MetricKind::Untyped);
    Ok(())
}

#[test]
fn samples_without_type_become_untyped_families_of_their_own_name() -> Result<(), ParseError> {
    let text = "loose_metric{a=\"1\"} 1\nloose_metric{a=\"2\"} 2\nother_total 3\n";
    let families = parse_strict(text, Format::Text004)?;
    assert_eq!(families.len(), 2);
    assert_eq!(families[0].name, "loose_metric");
    assert_eq!(families[0].kind, MetricKind::Untyped);
    assert_eq!(families[0].samples.len(), 2);
    assert_eq!(families[1].name, "other_total");
    let page = parse("loose 1\n# EOF\n", Format::OpenMetrics);
    assert_eq!(page.families[0].kind, MetricKind::Unknown);
    Ok(())
}

#[test]
fn label_value_escapes_are_undone() -> Result<(), ParseError> {
    let text = r#"m{path="C:\\dir",quote="say \"hi\"",multi="a\nb",other="\x2d",empty=""} 1
"#;
    let families = parse_strict(text, Format::Text004)?;
    let sample = &families[0].samples[0];
    assert_eq!(sample.label("path"), Some(r"C:\dir"));
    assert_eq!(sample.label("quote"), Some(r#"say "hi""#));
    assert_eq!(sample.label("multi"), Some("a\nb"));
    assert_eq!(sample.label("other"), Some(r"\x2d"));
    assert_eq!(sample.label("empty"), Some(""));
    let names: Vec<&str> = sample
        .labels
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(names, ["path", "quote", "multi", "other", "empty"]);
    Ok(())
}

#[test]
fn label_sets_allow_blanks_trailing_comma_and_unicode() -> Result<(), ParseError> {
    let text = "m { a = \"x,}\" , b=\"ünï\",} 1\nn{} 2\n";
    let families = parse_strict(text, Format::Text004)?;
    assert_eq!(
        families[0].samples[0].labels,
        vec![
            ("a".to_owned(), "x,}".to_owned()),
            ("b".to_owned(), "ünï".to_owned())
        ]
    );
    assert!(families[1].samples[0].labels.is_empty());
    Ok(())
}

#[test]
fn bad_label_sets_are_problems() {
    for (text, reason) in [
        ("m{a=\"1} 1", "unterminated label value"),
        ("m{a=\"1\\", "unterminated label value"),
        ("m{1a=\"1\"} 1", "bad label name"),
        ("m{a 1", "no = after a label name"),
        ("m{a=1} 1", "no quote before a label value"),
        ("m{a=\"1\" b=\"2\"} 1", "no , or } after a label value"),
        ("m{a=\"1\",a=\"2\"} 1", "a label given twice"),
    ] {
        let page = parse(text, Format::Text004);
        assert!(page.families.is_empty(), "{text}");
        assert!(
            matches!(&page.problems[..], [ParseError::Labels { line_number: 1, reason: got, .. }] if *got == reason),
            "{text}: {:?}",
            page.problems
        );
    }
}

#[test]
fn special_values_parse() -> Result<(), ParseError> {
    let text = "a +Inf\nb -Inf\nc NaN\nd 1.5e-3\ne -0\nf 12345678901234567890\n";
    let families = parse_strict(text, Format::Text004)?;
    let values: Vec<f64> = families
        .iter()
        .map(|family| family.samples[0].value)
        .collect();
    assert_eq!(values[0], f64::INFINITY);
    assert_eq!(values[1], f64::NEG_INFINITY);
    assert!(values[2].is_nan());
    assert_eq!(values[3], 0.0015);
    assert_eq!(values[4], 0.0);
    assert_eq!(values[5], 1.2345678901234567e19);
    Ok(())
}

#[test]
fn bad_values_are_problems_and_the_page_goes_on() {
    let page = parse("a one\nb 1\nc\nd 2 3 4\n", Format::Text004);
    assert_eq!(page.families.len(), 1);
    assert_eq!(page.families[0].name, "b");
    assert_eq!(
        page.problems,
        vec![
            ParseError::Value {
                line_number: 1,
                value: "one".to_owned()
            },
            ParseError::Value {
                line_number: 3,
                value: String::new()
            },
            ParseError::TrailingText {
                line_number: 4,
                line: "d 2 3 4".to_owned()
            },
        ]
    );
}

#[test]
fn text_004_timestamps_are_milliseconds() -> Result<(), ParseError> {
    let text = "a 1 1700000000123\nb 2\nc 3 -5\n";
    let families = parse_strict(text, Format::Text004)?;
    assert_eq!(families[0].samples[0].timestamp_ms, Some(1_700_000_000_123));
    assert_eq!(families[1].samples[0].timestamp_ms, None);
    assert_eq!(families[2].samples[0].timestamp_ms, Some(-5));
    let page = parse("a 1 1.5\n", Format::Text004);
    assert!(matches!(
        page.problems[..],
        [ParseError::Timestamp { line_number: 1, .. }]
    ));
    Ok(())
}

#[test]
fn openmetrics_timestamps_are_seconds_with_a_fraction() -> Result<(), ParseError> {
    let text =
        "a 1 1520879607.789\nb 1 1520879607\nc 1 1520879607.7895\nd 1 1.5e9\ne 1 -1.25\n# EOF\n";
    let families = parse_strict(text, Format::OpenMetrics)?;
    let timestamps: Vec<Option<i64>> = families
        .iter()
        .map(|family| family.samples[0].timestamp_ms)
        .collect();
    assert_eq!(
        timestamps,
        vec![
            Some(1_520_879_607_789),
            Some(1_520_879_607_000),
            Some(1_520_879_607_790),
            Some(1_500_000_000_000),
            Some(-1_250),
        ]
    );
    for bad in ["a 1 NaN", "a 1 1e30", "a 1 99999999999999999999", "a 1 ."] {
        let page = parse(&format!("{bad}\n# EOF\n"), Format::OpenMetrics);
        assert!(
            matches!(page.problems[..], [ParseError::Timestamp { .. }]),
            "{bad}: {:?}",
            page.problems
        );
    }
    Ok(())
}

#[test]
fn openmetrics_exemplars_are_skipped() -> Result<(), ParseError> {
    let text = "\
# TYPE latency histogram
latency_bucket{le=\"0.1\"} 8 # {trace_id=\"abc\"} 0.05 1520879607.7
latency_bucket{le=\"+Inf\"} 9 1520879608 # {trace_id=\"def\"} 3.2
latency_count 9
latency_sum 4.5
# EOF
";
    let families = parse_strict(text, Format::OpenMetrics)?;
    let samples = &families[0].samples;
    assert_eq!(samples.len(), 4);
    assert_eq!(samples[0].timestamp_ms, None);
    assert_eq!(samples[1].label("le"), Some("+Inf"));
    assert_eq!(samples[1].timestamp_ms, Some(1_520_879_608_000));
    // In 0.0.4 a `#` after the value is not an exemplar.
    let page = parse("a 1 # {x=\"y\"} 1\n", Format::Text004);
    assert_eq!(page.problems.len(), 1);
    Ok(())
}

#[test]
fn histogram_and_summary_samples_join_their_family() -> Result<(), ParseError> {
    let text = "\
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le=\"0.05\"} 24054
http_request_duration_seconds_bucket{le=\"0.1\"} 33444
http_request_duration_seconds_bucket{le=\"+Inf\"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile=\"0.01\"} 3102
rpc_duration_seconds{quantile=\"0.5\"} 4773
rpc_duration_seconds{quantile=\"0.99\"} NaN
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
";
    let families = parse_strict(text, Format::Text004)?;
    assert_eq!(families.len(), 2);
    assert_eq!(families[0].kind, MetricKind::Histogram);
    assert_eq!(families[0].samples.len(), 5);
    assert_eq!(families[0].samples[2].value, 144320.0);
    assert_eq!(families[1].kind, MetricKind::Summary);
    assert_eq!(families[1].samples.len(), 5);
    assert!(families[1].samples[2].value.is_nan());
    Ok(())
}

#[test]
fn openmetrics_kinds_and_units() -> Result<(), ParseError> {
    let text = "\
# TYPE build info
build_info{version=\"1.2\"} 1
# TYPE door stateset
door{door=\"open\"} 1
door{door=\"closed\"} 0
# TYPE queue gaugehistogram
queue_bucket{le=\"+Inf\"} 4
queue_gcount 4
queue_gsum 2.5
# TYPE request_seconds counter
# UNIT request_seconds seconds
# HELP request_seconds Time \"spent\" \\ serving.
request_seconds_total 5
request_seconds_created 1520430000.123
# TYPE thing unknown
thing 1
# EOF
";
    let families = parse_strict(text, Format::OpenMetrics)?;
    let kinds: Vec<(&str, MetricKind, usize)> = families
        .iter()
        .map(|family| (family.name.as_str(), family.kind, family.samples.len()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("build", MetricKind::Info, 1),
            ("door", MetricKind::StateSet, 2),
            ("queue", MetricKind::GaugeHistogram, 3),
            ("request_seconds", MetricKind::Counter, 2),
            ("thing", MetricKind::Unknown, 1),
        ]
    );
    let counter = family(&families, "request_seconds");
    assert_eq!(counter.unit.as_deref(), Some("seconds"));
    assert_eq!(counter.help.as_deref(), Some(r#"Time "spent" \ serving."#));
    // `untyped` is 0.0.4's word, `unknown` OpenMetrics'.
    let page = parse("# TYPE a untyped\n# EOF\n", Format::OpenMetrics);
    assert!(matches!(page.problems[..], [ParseError::Metadata { .. }]));
    let page = parse("# TYPE a unknown\n", Format::Text004);
    assert!(matches!(page.problems[..], [ParseError::Metadata { .. }]));
    Ok(())
}

#[test]
fn help_escapes_are_undone() -> Result<(), ParseError> {
    let text =
        "# HELP a First line\\nsecond \\\\ line \\\"kept\\\" \\t\n# HELP b\n# TYPE b gauge\n";
    let families = parse_strict(text, Format::Text004)?;
    assert_eq!(
        families[0].help.as_deref(),
        Some("First line\nsecond \\ line \\\"kept\\\" \\t")
    );
    assert_eq!(families[1].help.as_deref(), Some(""));
    // The real Dask HELP with `\n`.
    let families = parse_strict(&fixture(DASK_PAGES[1]), Format::Text004)?;
    let help = family(&families, "dask_semaphore_max_leases").help.clone();
    assert_eq!(
        help.as_deref(),
        Some(
            "Maximum leases allowed per semaphore\nNote: This will be constant for each semaphore during its lifetime."
        )
    );
    Ok(())
}

#[test]
fn families_with_no_samples_are_kept() -> Result<(), ParseError> {
    // The Dask scheduler announces its semaphore families before any semaphore exists.
    let families = parse_strict(&fixture(DASK_PAGES[1]), Format::Text004)?;
    let semaphore = family(&families, "dask_semaphore_acquire_total");
    assert_eq!(semaphore.kind, MetricKind::Counter);
    assert!(semaphore.samples.is_empty());
    assert!(semaphore.help.is_some());
    Ok(())
}

#[test]
fn metadata_after_samples_opens_a_new_family() {
    let page = parse("a 1\n# TYPE a gauge\na 2\n", Format::Text004);
    assert_eq!(page.families.len(), 2);
    assert_eq!(page.families[0].kind, MetricKind::Untyped);
    assert_eq!(page.families[1].kind, MetricKind::Gauge);
    assert_eq!(page.families[1].samples[0].value, 2.0);
    assert_eq!(
        page.problems,
        vec![ParseError::RepeatedMetadata {
            line_number: 2,
            name: "a".to_owned()
        }]
    );
}

#[test]
fn comments_blank_lines_and_crlf_are_ignored() -> Result<(), ParseError> {
    let text = "# just a comment\r\n#HELP not metadata\n\n   \n\t# TYPE a gauge\r\na 1\r\n";
    let families = parse_strict(text, Format::Text004)?;
    assert_eq!(families.len(), 1);
    assert_eq!(families[0].kind, MetricKind::Gauge);
    assert_eq!(families[0].samples[0].value, 1.0);
    Ok(())
}

#[test]
fn openmetrics_needs_eof_and_nothing_after_it() {
    let page = parse("a 1\n", Format::OpenMetrics);
    assert_eq!(page.families.len(), 1);
    assert_eq!(page.problems, vec![ParseError::MissingEof]);
    let page = parse("a 1\n# EOF", Format::OpenMetrics);
    assert!(page.problems.is_empty());
    let page = parse("a 1\n# EOF\nb 2\n", Format::OpenMetrics);
    assert_eq!(page.families.len(), 1);
    assert_eq!(page.problems, vec![ParseError::AfterEof { line_number: 3 }]);
    assert_eq!(
        parse_strict("", Format::OpenMetrics),
        Err(ParseError::MissingEof)
    );
    // In 0.0.4 `# EOF` is a comment.
    let page = parse("a 1\n# EOF\nb 2\n", Format::Text004);
    assert_eq!(page.families.len(), 2);
    assert!(page.problems.is_empty());
}

#[test]
fn format_comes_from_the_content_type() {
    for (content_type, format) in [
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::OpenMetrics,
        ),
        ("Application/OpenMetrics-Text", Format::OpenMetrics),
        ("text/plain; version=0.0.4; charset=utf-8", Format::Text004),
        ("text/plain", Format::Text004),
        ("", Format::Text004),
    ] {
        assert_eq!(Format::from_content_type(content_type), format);
    }
}

#[test]
fn bad_metric_names_and_metadata_are_problems() {
    let page = parse(
        "1abc 1\nfoo-bar 1\n# TYPE 1x gauge\n# HELP\n# TYPE a\n",
        Format::Text004,
    );
    assert!(page.families.is_empty(), "{:?}", page.families);
    assert!(matches!(
        page.problems[..],
        [
            ParseError::MetricName { line_number: 1, .. },
            ParseError::MetricName { line_number: 2, .. },
            ParseError::Metadata { line_number: 3, .. },
            ParseError::Metadata { line_number: 4, .. },
            ParseError::Metadata { line_number: 5, .. },
        ]
    ));
}

#[test]
fn long_bad_lines_are_quoted_short() {
    let long_line = format!("{}{{", "é".repeat(1000));
    let page = parse(&long_line, Format::Text004);
    let [ParseError::MetricName { line, .. }] = &page.problems[..] else {
        panic!("{:?}", page.problems);
    };
    assert_eq!(line.chars().count(), QUOTED_LINE_MAX_CHARS + 1);
}

/// Characters that matter to the grammar, to mutate pages with.
const GRAMMAR_CHARS: &[char] = &[
    '{', '}', '"', ',', '=', '\\', '\n', ' ', '\t', '#', '.', '-', '+', 'e', 'n', '_', 'é', '0',
    '9',
];

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*", openmetrics in any::<bool>()) {
        let format = if openmetrics { Format::OpenMetrics } else { Format::Text004 };
        let _ = parse(&text, format);
    }

    #[test]
    fn arbitrary_grammar_soup_never_panics(
        chars in prop::collection::vec(prop::sample::select(GRAMMAR_CHARS), 0..200),
        openmetrics in any::<bool>(),
    ) {
        let text: String = chars.into_iter().collect();
        let format = if openmetrics { Format::OpenMetrics } else { Format::Text004 };
        let _ = parse(&text, format);
    }

    #[test]
    fn mutated_fixture_pages_never_panic(
        page_index in 0..5_usize,
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), 0..3_u8, prop::sample::select(GRAMMAR_CHARS)),
            1..20,
        ),
        openmetrics in any::<bool>(),
    ) {
        let path = DASK_PAGES.get(page_index).copied().unwrap_or(NODE_EXPORTER_PAGE);
        let mut chars: Vec<char> = fixture(path).chars().collect();
        for (position, operation, c) in edits {
            let at = position.index(chars.len() + 1);
            match operation {
                0 => chars.insert(at, c),
                1 if at < chars.len() => { chars.remove(at); }
                _ if at < chars.len() => chars[at] = c,
                _ => chars.push(c),
            }
        }
        let text: String = chars.into_iter().collect();
        let format = if openmetrics { Format::OpenMetrics } else { Format::Text004 };
        let page = parse(&text, format);
        // Every sample line either became a sample or a problem.
        let samples: usize = page.families.iter().map(|family| family.samples.len()).sum();
        prop_assert!(samples + page.problems.len() <= text.split('\n').count() + 1);
    }
}
