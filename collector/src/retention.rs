//! Retention (issue 9): the limits of `[retention]`, parsed, and which one applies to a
//! tenant's logs or metrics.
//!
//! The rule a reader must not miss: the first `[[retention.rules]]` entry matching a tenant
//! wins over `logs_max_age`/`metrics_max_age`, which win over `max_age`.

use std::time::Duration;

use serde::Serialize;

/// The limits in force, parsed from `[retention]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionSettings {
    /// Age limit of logs and metrics unless a rule or a per-kind limit applies.
    pub max_age: Option<Duration>,
    /// Age limit of logs unless a rule applies.
    pub logs_max_age: Option<Duration>,
    /// Age limit of metrics unless a rule applies.
    pub metrics_max_age: Option<Duration>,
    /// Most bytes the data directory may take.
    pub max_disk_bytes: Option<u64>,
    /// Time between two runs.
    pub interval: Duration,
    /// Per-tenant age limits; the first that matches wins.
    pub rules: Vec<TenantRule>,
}

/// A `[[retention.rules]]` entry without a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRule {
    /// `None`: every tenant.
    pub tenant: Option<String>,
    pub max_age: Duration,
}

/// The two kinds of data, each in its own partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataKind {
    Logs,
    Metrics,
}

impl RetentionSettings {
    /// The age limit of `tenant`'s data of `kind`: the first matching rule's, else the kind's,
    /// else `max_age`; `None` keeps it for ever (as far as age goes).
    pub fn max_age_for(&self, tenant: &str, kind: DataKind) -> Option<Duration> {
        if let Some(rule) = self
            .rules
            .iter()
            .find(|rule| rule.tenant.as_deref().is_none_or(|name| name == tenant))
        {
            return Some(rule.max_age);
        }
        let per_kind = match kind {
            DataKind::Logs => self.logs_max_age,
            DataKind::Metrics => self.metrics_max_age,
        };
        per_kind.or(self.max_age)
    }

    /// Tells whether no limit is set, so the janitor has nothing to do.
    pub fn keeps_everything(&self) -> bool {
        self.max_age.is_none()
            && self.logs_max_age.is_none()
            && self.metrics_max_age.is_none()
            && self.max_disk_bytes.is_none()
            && self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RetentionConfig;

    const HOUR: Duration = Duration::from_secs(3600);

    fn config(text: &str) -> RetentionConfig {
        crate::CollectorConfig::parse(text)
            .expect("a valid configuration")
            .retention
    }

    #[test]
    fn a_tenant_rule_beats_the_kind_limit_which_beats_max_age() {
        let settings = config(
            "[retention]\nmax_age = \"720h\"\nlogs_max_age = \"336h\"\n[[retention.rules]]\ntenant = \"team-a\"\nmax_age = \"72h\"\n[[retention.rules]]\nmax_age = \"1000h\"\n",
        )
        .settings();
        assert_eq!(
            settings.max_age_for("team-a", DataKind::Logs),
            Some(72 * HOUR)
        );
        assert_eq!(
            settings.max_age_for("team-a", DataKind::Metrics),
            Some(72 * HOUR)
        );
        assert_eq!(
            settings.max_age_for("team-b", DataKind::Logs),
            Some(1000 * HOUR)
        );
        let without_catch_all =
            config("[retention]\nmax_age = \"720h\"\nlogs_max_age = \"336h\"\n").settings();
        assert_eq!(
            without_catch_all.max_age_for("x", DataKind::Logs),
            Some(336 * HOUR)
        );
        assert_eq!(
            without_catch_all.max_age_for("x", DataKind::Metrics),
            Some(720 * HOUR)
        );
        assert!(config("").settings().keeps_everything());
        assert_eq!(config("").settings().max_age_for("x", DataKind::Logs), None);
    }
}
