//! Who may do what: the configured `[[tokens]]`, checked for every HTTP
//! request and every ingest stream and batch. A check gives a [`Grant`], the only source of the
//! tenants a caller reads or writes; failures are logged (never with the token) and counted.
//!
//! With no tokens configured every caller is anonymous: it writes into and reads tenant
//! `default`, unlimited (the collector then listens on loopback only, `config.rs`).

pub mod rate;
pub mod token;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::{Capability, CollectorConfig};
use crate::ingest::DEFAULT_TENANT;
use crate::telemetry::{AuthFailure, CollectorMetrics};
use rate::RateLimiter;
use token::Sha256Digest;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any configured token (`/api/v1/whoami`).
    Known,
    /// To read its tenants' data.
    Read,
    /// To send records and samples.
    Ingest,
    /// The collector's own state (`/metrics`).
    Admin,
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Need::Known => "be used",
            Need::Read => "read (`can` has no \"read\")",
            Need::Ingest => "ingest (`can` has no \"ingest\")",
            Need::Admin => "administer (`can` has no \"admin\")",
        })
    }
}

/// The tenants a grant reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// These tenants.
    Tenants(Vec<String>),
    /// Every tenant the collector has, now and later (`admin`).
    Every,
}

/// What one caller may do: its token's entry, or the anonymous caller's.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The token's name; `None` for the anonymous caller of a collector without tokens.
    pub name: Option<String>,
    /// The tenants named in its entry.
    pub tenants: Vec<String>,
    pub can: Vec<Capability>,
    /// The tenants it reads (none without `read` or `admin`).
    pub reads: Reads,
    /// Requests per second it may make; `None`: unlimited.
    per_second: Option<f64>,
}

impl Grant {
    fn anonymous() -> Grant {
        Grant {
            name: None,
            tenants: vec![DEFAULT_TENANT.to_owned()],
            can: vec![Capability::Ingest, Capability::Read, Capability::Admin],
            reads: Reads::Tenants(vec![DEFAULT_TENANT.to_owned()]),
            per_second: None,
        }
    }

    fn of_token(entry: &crate::config::TokenConfig, default_per_second: f64) -> Grant {
        let reads = if entry.can.contains(&Capability::Admin) {
            Reads::Every
        } else if entry.can.contains(&Capability::Read) {
            Reads::Tenants(entry.tenants.clone())
        } else {
            Reads::Tenants(Vec::new())
        };
        Grant {
            name: Some(entry.name.clone()),
            tenants: entry.tenants.clone(),
            can: entry.can.clone(),
            reads,
            per_second: Some(entry.requests_per_second.unwrap_or(default_per_second)),
        }
    }

    /// Tells whether it grants `need`. `admin` implies `read`.
    pub fn may(&self, need: Need) -> bool {
        let has = |can: Capability| self.can.contains(&can);
        match need {
            Need::Known => true,
            Need::Read => has(Capability::Read) || has(Capability::Admin),
            Need::Ingest => has(Capability::Ingest),
            Need::Admin => has(Capability::Admin),
        }
    }

    /// The tenant everything it sends is stored under (config validation leaves an ingest
    /// token exactly one).
    pub fn ingest_tenant(&self) -> &str {
        self.tenants.first().map_or(DEFAULT_TENANT, String::as_str)
    }

    /// The name to log: the token's, or `anonymous`.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("anonymous")
    }
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Denied {
    #[error("no bearer token was given (`Authorization: Bearer <token>`)")]
    Missing,
    #[error("the bearer token is not one of the collector's tokens")]
    Unknown,
    #[error("the token {name:?} may not {need}")]
    Forbidden { name: String, need: Need },
    #[error(
        "the token {name:?} made more than its {per_second} requests per second; retry in {} ms",
        retry_after.as_millis()
    )]
    RateLimited {
        name: String,
        per_second: f64,
        retry_after: Duration,
    },
}

impl Denied {
    /// Why, in one word: `missing`, `unknown`, `forbidden` or `rate_limited`.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Missing => "missing",
            Denied::Unknown => "unknown",
            Denied::Forbidden { .. } => "forbidden",
            Denied::RateLimited { .. } => "rate_limited",
        }
    }
}

/// The configured tokens, as checked.
#[derive(Debug, Default)]
struct Table {
    digests: Vec<Sha256Digest>,
    /// `grants[i]` belongs to `digests[i]`.
    grants: Vec<Arc<Grant>>,
}

impl Table {
    fn new(config: &CollectorConfig) -> Table {
        let default_per_second = config.limits.requests_per_second_per_token;
        let mut table = Table::default();
        for entry in &config.tokens {
            // A validated configuration has only well-formed digests.
            if let Some(digest) = token::parse_sha256(&entry.sha256) {
                table.digests.push(digest);
                table
                    .grants
                    .push(Arc::new(Grant::of_token(entry, default_per_second)));
            }
        }
        table
    }
}

/// The collector's access rules, shared by its HTTP and gRPC sides.
#[derive(Debug)]
pub struct Access {
    table: RwLock<Arc<Table>>,
    /// How many times the tokens were reloaded: who holds a grant across a reload (a live
    /// tail) checks it again when this changes.
    generation: AtomicU64,
    anonymous: Arc<Grant>,
    limiter: RateLimiter,
    metrics: Arc<CollectorMetrics>,
}

impl Access {
    /// The rules of `config`'s `[[tokens]]`.
    pub fn new(config: &CollectorConfig, metrics: Arc<CollectorMetrics>) -> Access {
        Access {
            table: RwLock::new(Arc::new(Table::new(config))),
            generation: AtomicU64::new(0),
            anonymous: Arc::new(Grant::anonymous()),
            limiter: RateLimiter::default(),
            metrics,
        }
    }

    /// No tokens, with an anonymous caller reading `tenants` (tests of the handlers).
    pub fn anonymous_reading(tenants: &[&str]) -> Access {
        let mut anonymous = Grant::anonymous();
        anonymous.reads = Reads::Tenants(tenants.iter().map(|&tenant| tenant.to_owned()).collect());
        Access {
            table: RwLock::default(),
            generation: AtomicU64::new(0),
            anonymous: Arc::new(anonymous),
            limiter: RateLimiter::default(),
            metrics: Arc::default(),
        }
    }

    /// Takes the `[[tokens]]` of a reloaded configuration; requests from now on are checked
    /// against them.
    pub fn reload(&self, config: &CollectorConfig) {
        let table = Table::new(config);
        let names: Vec<&str> = (table.grants.iter())
            .filter_map(|grant| grant.name.as_deref())
            .collect();
        self.limiter.retain(&names);
        tracing::info!(tokens = table.grants.len(), "access tokens loaded");
        *self
            .table
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(table);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Changes with every reload of the tokens.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The grant `authorization` has now for `need`, neither charged to its rate nor counted
    /// when refused: for checking again a request already let in.
    pub fn verify(&self, authorization: Option<&[u8]>, need: Need) -> Result<Arc<Grant>, Denied> {
        self.grant_for(authorization, need)
    }

    /// Tells whether tokens are configured (without, every caller is anonymous).
    pub fn has_tokens(&self) -> bool {
        !self.current().grants.is_empty()
    }

    fn current(&self) -> Arc<Table> {
        Arc::clone(
            &self
                .table
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Checks a request over `protocol` (`http` or `grpc`) whose `Authorization` header (or
    /// metadata) is `authorization`, for `need`, and takes one request from the token's rate.
    pub fn check(
        &self,
        authorization: Option<&[u8]>,
        need: Need,
        protocol: &'static str,
    ) -> Result<Arc<Grant>, Denied> {
        let checked = self.grant_for(authorization, need).and_then(|grant| {
            self.charge(&grant)?;
            Ok(grant)
        });
        if let Err(denied) = &checked {
            self.count(denied, protocol);
        }
        checked
    }

    fn grant_for(&self, authorization: Option<&[u8]>, need: Need) -> Result<Arc<Grant>, Denied> {
        let table = self.current();
        if table.grants.is_empty() {
            return Ok(Arc::clone(&self.anonymous));
        }
        let presented = authorization
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(bearer)
            .ok_or(Denied::Missing)?;
        let at = token::find(&table.digests, presented).ok_or(Denied::Unknown)?;
        let grant = Arc::clone(&table.grants[at]);
        if grant.may(need) {
            Ok(grant)
        } else {
            Err(Denied::Forbidden {
                name: grant.display_name().to_owned(),
                need,
            })
        }
    }

    fn charge(&self, grant: &Grant) -> Result<(), Denied> {
        let (Some(name), Some(per_second)) = (&grant.name, grant.per_second) else {
            return Ok(());
        };
        self.limiter
            .take(name, per_second)
            .map_err(|retry_after| Denied::RateLimited {
                name: name.clone(),
                per_second,
                retry_after,
            })
    }

    fn count(&self, denied: &Denied, protocol: &'static str) {
        match denied {
            Denied::RateLimited { name, .. } => {
                tracing::debug!(protocol, token = %name, "request over the token's rate refused");
            }
            // Never the token itself: only why it failed, and the token's name when known.
            other => tracing::warn!(protocol, reason = other.reason(), "refused: {other}"),
        }
        self.metrics
            .auth_failures
            .get_or_create(&AuthFailure {
                protocol: protocol.to_owned(),
                reason: denied.reason().to_owned(),
            })
            .inc();
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests;
