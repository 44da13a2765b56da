//! Tests of the access rules: who is let through for what, what each token reads, rates,
//! reloads, and what is counted.

use super::*;
use crate::config::CollectorConfig;

/// A configuration with a token per entry `(name, token, tenants, can)`.
fn config_with(tokens: &[(&str, &str, &[&str], &str)], extra: &str) -> CollectorConfig {
    let mut text = extra.to_owned();
    for (name, secret, tenants, can) in tokens {
        let tenants: Vec<String> = tenants.iter().map(|tenant| format!("{tenant:?}")).collect();
        let can: Vec<String> = can.split(',').map(|can| format!("{can:?}")).collect();
        text.push_str(&format!(
            "\n[[tokens]]\nname = {name:?}\nsha256 = \"{}\"\ntenants = [{}]\ncan = [{}]\n",
            token::hex(&token::digest(secret)),
            tenants.join(", "),
            can.join(", ")
        ));
    }
    CollectorConfig::parse(&text).expect("valid configuration")
}

fn teams() -> CollectorConfig {
    config_with(
        &[
            ("a-agents", "secret-ingest-a", &["team-a"], "ingest"),
            ("a-readers", "secret-read-a", &["team-a"], "read"),
            (
                "ab-readers",
                "secret-read-ab",
                &["team-a", "team-b"],
                "read",
            ),
            ("operators", "secret-admin", &[], "admin"),
        ],
        "",
    )
}

fn bearer_header(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

#[test]
fn without_tokens_everyone_is_the_anonymous_default_tenant() {
    let access = Access::new(&CollectorConfig::embedded_default(), Arc::default());
    assert!(!access.has_tokens());
    for need in [Need::Read, Need::Ingest, Need::Admin] {
        for header in [None, Some(&b"Bearer anything"[..])] {
            let grant = access.check(header, need, "http").expect("let through");
            assert_eq!(grant.name, None);
            assert_eq!(grant.ingest_tenant(), "default");
            assert_eq!(grant.reads, Reads::Tenants(vec!["default".to_owned()]));
        }
    }
}

#[test]
fn each_token_gets_what_its_entry_grants_and_nothing_more() {
    let access = Access::new(&teams(), Arc::default());
    let check = |token: &str, need| access.check(Some(&bearer_header(token)), need, "http");

    let ingest = check("secret-ingest-a", Need::Ingest).expect("ingest token ingests");
    assert_eq!(ingest.ingest_tenant(), "team-a");
    assert_eq!(
        check("secret-ingest-a", Need::Read),
        Err(Denied::Forbidden {
            name: "a-agents".to_owned(),
            need: Need::Read
        })
    );

    let read_a = check("secret-read-a", Need::Read).expect("read token reads");
    assert_eq!(read_a.reads, Reads::Tenants(vec!["team-a".to_owned()]));
    assert!(matches!(
        check("secret-read-a", Need::Ingest),
        Err(Denied::Forbidden { .. })
    ));
    assert!(matches!(
        check("secret-read-a", Need::Admin),
        Err(Denied::Forbidden { .. })
    ));

    let read_ab = check("secret-read-ab", Need::Read).expect("reads");
    assert_eq!(
        read_ab.reads,
        Reads::Tenants(vec!["team-a".to_owned(), "team-b".to_owned()])
    );

    let admin = check("secret-admin", Need::Admin).expect("admin administers");
    assert_eq!(admin.reads, Reads::Every);
    assert!(check("secret-admin", Need::Read).is_ok(), "admin reads");
    assert!(matches!(
        check("secret-admin", Need::Ingest),
        Err(Denied::Forbidden { .. })
    ));
    for token in [
        "secret-ingest-a",
        "secret-read-a",
        "secret-read-ab",
        "secret-admin",
    ] {
        assert!(check(token, Need::Known).is_ok(), "{token} is known");
    }
}

#[test]
fn missing_malformed_and_unknown_tokens_are_refused_and_counted() {
    let metrics = Arc::new(CollectorMetrics::new());
    let access = Access::new(&teams(), Arc::clone(&metrics));
    let refused = |header: Option<&[u8]>| access.check(header, Need::Known, "grpc");
    assert_eq!(refused(None), Err(Denied::Missing));
    assert_eq!(refused(Some(b"")), Err(Denied::Missing));
    assert_eq!(
        refused(Some(b"secret-read-a")),
        Err(Denied::Missing),
        "no scheme"
    );
    assert_eq!(refused(Some(b"Basic secret-read-a")), Err(Denied::Missing));
    assert_eq!(refused(Some(b"Bearer ")), Err(Denied::Missing));
    assert_eq!(refused(Some(b"Bearer \xff\xfe")), Err(Denied::Missing));
    assert_eq!(refused(Some(b"Bearer secret-read-")), Err(Denied::Unknown));
    assert_eq!(
        refused(Some(b"Bearer secret-read-aa")),
        Err(Denied::Unknown)
    );
    // The hash is of the token, not of a prefix or the header.
    assert_eq!(
        refused(Some(token::hex(&token::digest("secret-read-a")).as_bytes())),
        Err(Denied::Missing)
    );
    assert!(
        refused(Some(b"bearer  secret-read-a ")).is_ok(),
        "scheme in any case"
    );
    let text = metrics.encode();
    assert!(
        text.contains(
            r#"afterglow_collector_auth_failures_total{protocol="grpc",reason="missing"} 7"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"afterglow_collector_auth_failures_total{protocol="grpc",reason="unknown"} 2"#
        ),
        "{text}"
    );
}

#[test]
fn a_token_over_its_rate_is_told_when_to_retry_and_others_are_not_slowed() {
    let metrics = Arc::new(CollectorMetrics::new());
    let config = config_with(
        &[
            ("slow", "secret-slow", &["team-a"], "read"),
            ("other", "secret-other", &["team-a"], "read"),
        ],
        "[limits]\nrequests_per_second_per_token = 0.5\n",
    );
    let access = Access::new(&config, Arc::clone(&metrics));
    let check = |token: &str| access.check(Some(&bearer_header(token)), Need::Read, "http");
    // A burst of two seconds' worth, at least one request.
    assert!(check("secret-slow").is_ok());
    match check("secret-slow") {
        Err(Denied::RateLimited {
            name, retry_after, ..
        }) => {
            assert_eq!(name, "slow");
            assert!(retry_after > Duration::from_millis(1500), "{retry_after:?}");
        }
        other => panic!("expected a rate refusal, got {other:?}"),
    }
    assert!(
        check("secret-other").is_ok(),
        "another token has its own rate"
    );
    assert!(metrics.encode().contains(
        r#"afterglow_collector_auth_failures_total{protocol="http",reason="rate_limited"} 1"#
    ));
}

#[test]
fn a_reload_replaces_the_tokens_at_once() {
    let access = Access::new(&teams(), Arc::default());
    let header = bearer_header("secret-new");
    assert_eq!(
        access.check(Some(&header), Need::Read, "http"),
        Err(Denied::Unknown)
    );
    access.reload(&config_with(
        &[("newcomer", "secret-new", &["team-c"], "read")],
        "",
    ));
    let grant = access
        .check(Some(&header), Need::Read, "http")
        .expect("the new token is let in");
    assert_eq!(grant.reads, Reads::Tenants(vec!["team-c".to_owned()]));
    assert_eq!(
        access.check(Some(&bearer_header("secret-read-a")), Need::Read, "http"),
        Err(Denied::Unknown),
        "a removed token is refused"
    );
}

#[test]
fn token_entries_are_validated() {
    let problems = |text: &str| {
        CollectorConfig::parse(text)
            .expect_err("invalid")
            .join("\n")
    };
    let digest = token::hex(&token::digest("x"));
    let entry = |body: &str| format!("[[tokens]]\nname = \"t\"\nsha256 = \"{digest}\"\n{body}");
    assert!(
        problems("[[tokens]]\nname = \"t\"\nsha256 = \"abc\"\ntenants = [\"a\"]\ncan = [\"read\"]")
            .contains("64 hex digits")
    );
    assert!(problems(&entry("tenants = [\"a\"]\ncan = []")).contains("`can` must list"));
    assert!(problems(&entry("tenants = [\"a\"]\ncan = [\"write\"]")).contains("unknown variant"));
    assert!(problems(&entry("can = [\"read\"]")).contains("`tenants` must name"));
    assert!(
        problems(&entry("tenants = [\"a\", \"b\"]\ncan = [\"ingest\"]"))
            .contains("exactly one tenant")
    );
    assert!(
        problems(&entry("tenants = [\"../etc\"]\ncan = [\"read\"]")).contains("tenant \"../etc\"")
    );
    assert!(
        problems(&entry(
            "tenants = [\"a\"]\ncan = [\"read\"]\nrequests_per_second = 0"
        ))
        .contains("requests_per_second")
    );
    assert!(
        problems(&entry(
            "tenants = [\"a\"]\ncan = [\"read\"]\ntoken = \"plain\""
        ))
        .contains("unknown field")
    );
    let twice = format!(
        "{}\n{}",
        entry("tenants = [\"a\"]\ncan = [\"read\"]"),
        entry("tenants = [\"b\"]\ncan = [\"read\"]")
    );
    let twice = problems(&twice);
    assert!(
        twice.contains("used twice") && twice.contains("same `sha256`"),
        "{twice}"
    );
    // With tokens, a non-loopback address needs no `allow_unauthenticated`.
    let listening = format!(
        "[listen]\nhttp = \"0.0.0.0:7700\"\n{}",
        entry("tenants = [\"a\"]\ncan = [\"read\"]")
    );
    assert!(CollectorConfig::parse(&listening).is_ok());
}
