//! `GET /api/v1/retention`: the `[retention]` settings in force and, per tenant the caller may
//! read, the oldest day kept and the bytes used by logs and by metrics.
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
    let tenants = reader.tenants;
    let status = tokio::task::spawn_blocking(move || janitor.status(&tenants))
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
