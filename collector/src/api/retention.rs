//! `GET /api/v1/retention`: the `[retention]` settings in force and, per tenant the caller may
//! read, the oldest day kept and the bytes used by logs and by metrics. A caller who is not an
//! admin sees only the rules for its tenants and for every tenant, and not the size of the
//! whole data directory.
//!
//! The rule a reader must not miss: the numbers are measured when asked (a walk of the
//! partition directories, on a blocking thread), so they already reflect the janitor's last run.

use axum::Json;
use axum::extract::State;

use crate::api::access::Reader;
use crate::api::{ApiError, AppState};
use crate::retention::RetentionStatus;

/// `GET /api/v1/retention`.
pub async fn status(
    State(state): State<AppState>,
    reader: Reader,
) -> Result<Json<RetentionStatus>, ApiError> {
    let janitor = state
        .retention
        .clone()
        .ok_or_else(|| ApiError::not_found("retention is not running in this collector"))?;
    let whole_collector = reader.is_admin();
    let tenants = reader.tenants;
    let status = tokio::task::spawn_blocking(move || janitor.status(&tenants, whole_collector))
        .await
        .map_err(|_| ApiError::internal("measuring the data directory failed unexpectedly"))?;
    Ok(Json(status))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::StatusCode;
    use jiff::Timestamp;

    use crate::api::test_support::{get, state_reading};
    use crate::retention::Janitor;
    use crate::retention::tests::Stores;

    #[tokio::test]
    async fn retention_shows_the_settings_and_each_readable_tenants_data() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let stores = Stores::open(dir.path())?;
        stores.write_logs("default", &[3, 4]).await?;
        stores.write_logs("other-team", &[1]).await?;
        stores.write_metrics("default", &[2, 4], Timestamp::now())?;
        let config = crate::CollectorConfig::parse(
            "[retention]\nmax_age = \"720h\"\nmax_disk = \"50GiB\"\nlogs_max_age = \"336h\"\n[[retention.rules]]\ntenant = \"team-a\"\nmax_age = \"72h\"\n",
        )
        .expect("valid")
        .retention;
        let mut state = state_reading(Arc::clone(&stores.logs), &["default"]);
        state.retention = Some(Arc::new(Janitor::new(
            dir.path().to_owned(),
            Arc::clone(&stores.logs),
            Arc::clone(&stores.series),
            config,
            Arc::default(),
        )));
        let (status, json) = get(&state, "/api/v1/retention").await;
        assert_eq!(status, StatusCode::OK, "{json}");
        for kind in ["logs", "metrics"] {
            let bytes = json["tenants"]["default"][kind]["bytes"].as_u64();
            assert!(bytes.is_some_and(|bytes| bytes > 0), "{json}");
        }
        assert!(
            json["data_dir_bytes"]
                .as_u64()
                .is_some_and(|bytes| bytes > 0)
        );
        insta::assert_json_snapshot!(json, {
            ".data_dir_bytes" => "[bytes]",
            ".tenants.*.*.bytes" => "[bytes]",
        });
        Ok(())
    }

    /// `GET /api/v1/retention` with `token`: the status and the body as JSON.
    async fn get_with_token(
        state: &crate::api::AppState,
        token: &str,
    ) -> anyhow::Result<(StatusCode, serde_json::Value)> {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let response = crate::api::router(state.clone())
            .oneshot(
                axum::http::Request::get("/api/v1/retention")
                    .header("authorization", format!("Bearer {token}"))
                    .body(axum::body::Body::empty())?,
            )
            .await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, serde_json::from_slice(&body)?))
    }

    #[tokio::test]
    async fn a_reader_sees_its_own_and_global_rules_and_no_other_tenants() -> anyhow::Result<()> {
        use crate::auth::token::{digest, hex};
        let dir = tempfile::tempdir()?;
        let stores = Stores::open(dir.path())?;
        stores.write_logs("team-a", &[3]).await?;
        stores.write_logs("team-b", &[2, 3]).await?;
        let config = crate::CollectorConfig::parse(&format!(
            "[retention]\nmax_disk = \"50GiB\"\n\
             [[retention.rules]]\ntenant = \"team-b\"\ncluster = \"acquisition-*\"\nmax_age = \"24h\"\n\
             [[retention.rules]]\ntenant = \"team-a\"\nmax_age = \"72h\"\n\
             [[retention.rules]]\ncluster = \"ci-*\"\nmax_age = \"48h\"\n\
             [[tokens]]\nname = \"a-readers\"\nsha256 = \"{}\"\ntenants = [\"team-a\"]\ncan = [\"read\"]\n\
             [[tokens]]\nname = \"operators\"\nsha256 = \"{}\"\ncan = [\"admin\"]\n",
            hex(&digest("secret-a")),
            hex(&digest("secret-admin")),
        ))
        .map_err(|problems| anyhow::anyhow!("{problems:?}"))?;
        let mut state = state_reading(Arc::clone(&stores.logs), &[]);
        state.access = Arc::new(crate::auth::Access::new(&config, Arc::default()));
        state.retention = Some(Arc::new(Janitor::new(
            dir.path().to_owned(),
            Arc::clone(&stores.logs),
            Arc::clone(&stores.series),
            config.retention,
            Arc::default(),
        )));

        let (status, team_a) = get_with_token(&state, "secret-a").await?;
        assert_eq!(status, StatusCode::OK, "{team_a}");
        let text = team_a.to_string();
        for hidden in ["team-b", "acquisition-"] {
            assert!(!text.contains(hidden), "{hidden:?} shown to team-a: {text}");
        }
        assert_eq!(
            team_a["settings"]["rules"],
            serde_json::json!([
                { "tenant": "team-a", "cluster": null, "max_age": "72h" },
                { "tenant": null, "cluster": "ci-*", "max_age": "48h" },
            ])
        );
        assert_eq!(team_a["data_dir_bytes"], serde_json::Value::Null, "{text}");
        assert_eq!(team_a["max_disk_bytes"], 50_u64 << 30);
        assert!(team_a["tenants"]["team-a"]["logs"]["bytes"].as_u64() > Some(0));

        let (status, admin) = get_with_token(&state, "secret-admin").await?;
        assert_eq!(status, StatusCode::OK, "{admin}");
        assert_eq!(
            admin["settings"]["rules"].as_array().map(Vec::len),
            Some(3),
            "{admin}"
        );
        assert!(admin["data_dir_bytes"].as_u64() > Some(0), "{admin}");
        assert_eq!(admin["tenants"]["team-b"]["logs"]["partitions"], 2);
        Ok(())
    }

    #[tokio::test]
    async fn retention_is_not_found_where_no_janitor_runs() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let stores = Stores::open(dir.path())?;
        let state = state_reading(Arc::clone(&stores.logs), &["default"]);
        let (status, _) = get(&state, "/api/v1/retention").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        Ok(())
    }
}
