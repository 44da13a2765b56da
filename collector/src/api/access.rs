//! The HTTP side of access (`auth/`): the middleware that checks every API request's bearer
//! token before its handler runs, the [`Reader`] extractor that is a handler's only way to
//! learn which tenants it may read, how refusals are answered (401, 403, 429), and
//! `GET /api/v1/whoami`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::{ApiError, AppState};
use crate::auth::{Access, Denied, Grant, Need, Reads};

/// Middleware (state: the access rules and what the routes need): lets the request through
/// to its handler if its token grants `need`, with the grant in its extensions for
/// [`Reader`]; otherwise answers why not.
pub(crate) async fn require(
    State((access, need)): State<(Arc<Access>, Need)>,
    mut request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match access.check(authorization, need, "http") {
        Ok(grant) => {
            request.extensions_mut().insert(grant);
            next.run(request).await
        }
        Err(denied) => refusal(&denied),
    }
}

/// The answer to a refused request: 401 (with `WWW-Authenticate`) for a missing or unknown
/// token, 403 for a token without the right, 429 (with `Retry-After`) over its rate.
fn refusal(denied: &Denied) -> Response {
    let status = match denied {
        Denied::Missing | Denied::Unknown => StatusCode::UNAUTHORIZED,
        Denied::Forbidden { .. } => StatusCode::FORBIDDEN,
        Denied::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
    };
    let mut response = ApiError {
        status,
        message: denied.to_string(),
    }
    .into_response();
    let headers = response.headers_mut();
    match denied {
        Denied::Missing | Denied::Unknown => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"afterglow\""),
            );
        }
        Denied::RateLimited { retry_after, .. } => {
            // Whole seconds, rounded up: a client waiting that long finds room.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        Denied::Forbidden { .. } => {}
    }
    response
}

/// The tenants the caller may read, from the grant the middleware checked. Every handler that
/// touches stored data takes one and passes its tenants to the store, which selects only
/// their partitions and series.
#[derive(Debug, Clone)]
pub struct Reader {
    pub tenants: Vec<String>,
    /// Whether it reads every tenant (`admin`), those that appear later too.
    pub every_tenant: bool,
    /// The grant it comes from, and the request's `Authorization` value, to check again
    /// after a reload (`still_granted`).
    grant: Arc<Grant>,
    authorization: Option<Vec<u8>>,
}

impl Reader {
    /// Tells whether its token still grants what it did when the request came, after the
    /// tokens were reloaded (a long-lived request, a live tail, asks now and then).
    pub fn still_granted(&self, access: &Access) -> bool {
        access
            .verify(self.authorization.as_deref(), Need::Read)
            .is_ok_and(|grant| *grant == *self.grant)
    }

    /// Tells whether it reads more than one tenant (an admin, or a token naming several):
    /// answers then say which tenant each record and series is from.
    pub fn spans_tenants(&self) -> bool {
        self.every_tenant || self.tenants.len() > 1
    }

    /// Tells whether its token may see the whole collector (`admin`; the anonymous caller of a
    /// collector without tokens too), not only its tenants' share.
    pub fn is_admin(&self) -> bool {
        self.grant.may(Need::Admin)
    }

    /// Tells whether it reads `tenant`.
    pub fn reads(&self, tenant: &str) -> bool {
        self.every_tenant || self.tenants.iter().any(|readable| readable == tenant)
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Reader, ApiError> {
        // Only a route behind `require_read` has a grant; one without is refused, not opened.
        let grant = parts
            .extensions
            .get::<Arc<Grant>>()
            .filter(|grant| grant.may(Need::Read))
            .ok_or_else(|| ApiError::internal("this route does not check access"))?;
        let (tenants, every_tenant) = match &grant.reads {
            Reads::Tenants(tenants) => (tenants.clone(), false),
            Reads::Every => ((state.all_tenants)(), true),
        };
        Ok(Reader {
            tenants,
            every_tenant,
            grant: Arc::clone(grant),
            authorization: parts
                .headers
                .get(header::AUTHORIZATION)
                .map(|value| value.as_bytes().to_vec()),
        })
    }
}

/// `GET /api/v1/whoami`: the caller's token name, tenants and rights (for the UI).
#[derive(Debug, Serialize)]
pub struct WhoAmI {
    /// The token's name; `null` when the collector has no tokens.
    name: Option<String>,
    /// Whether the collector asks for tokens at all.
    tokens_required: bool,
    /// The tenants in the token's entry.
    tenants: Vec<String>,
    can: Vec<&'static str>,
    /// Whether it reads every tenant (`admin`).
    reads_every_tenant: bool,
}

/// `GET /api/v1/whoami`
pub async fn whoami(
    State(state): State<AppState>,
    axum::Extension(grant): axum::Extension<Arc<Grant>>,
) -> Json<WhoAmI> {
    Json(WhoAmI {
        name: grant.name.clone(),
        tokens_required: state.access.has_tokens(),
        tenants: grant.tenants.clone(),
        can: grant.can.iter().map(|can| can.as_str()).collect(),
        reads_every_tenant: grant.reads == Reads::Every,
    })
}
