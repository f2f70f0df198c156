//! Logs API: NDJSON ingest (ingest token), search and analytics (viewer).

use super::extract::{ApiBytes, ApiQuery};
use super::ErrorBody;
use app::auth::service::RequestCtx;
use app::auth::{tokens, Role};
use app::error::AppError;
use app::logs::analytics::{self, StatsParams};
use app::logs::parse::{self, Format};
use app::logs::search::time_range;
use app::logs::{search as searching, sources, store, validate_service, LogStats, SearchResponse};
use app::specs::NewLogSource;
use app::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

pub const MAX_LINES: usize = 100_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IngestQuery {
    /// The service the lines belong to (a line's own `service` field wins).
    pub service: String,
    /// json (default), nginx or text.
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogIngestOutcome {
    /// Entries stored.
    pub accepted: usize,
    /// Of those, entries that could not be parsed: stored raw, with a parse-error mark.
    pub unparsed: usize,
    /// True when this answers a batch already stored under the same `Idempotency-Key`:
    /// nothing was stored again.
    pub replayed: bool,
}

/// The `Idempotency-Key` header's bytes as a key: 1–255 visible ASCII characters (a UUID, say).
pub fn check_idempotency_key(key: &[u8]) -> Result<String, String> {
    if key.is_empty() || key.len() > 255 || !key.iter().all(|b| b.is_ascii_graphic()) {
        return Err("Idempotency-Key: 1–255 visible ASCII characters (a UUID, say)".into());
    }
    Ok(String::from_utf8_lossy(key).into_owned())
}

/// The outcome stored under (token, key), if any: a body other than the one stored is refused.
async fn replay(
    db: impl sqlx::PgExecutor<'_>,
    token: &str,
    key: &str,
    sha: &[u8],
) -> Result<Option<LogIngestOutcome>, AppError> {
    let row = sqlx::query!(
        "SELECT body_sha256, accepted, unparsed FROM log_ingest_keys WHERE token = $1 AND key = $2",
        token,
        key
    )
    .fetch_optional(db)
    .await?
    .map(|r| (r.body_sha256, r.accepted, r.unparsed));
    match row {
        None => Ok(None),
        Some((stored, _, _)) if stored != sha => Err(AppError::unprocessable(
            "Idempotency-Key was already used for a different body; use a new key per batch",
        )),
        Some((_, accepted, unparsed)) => Ok(Some(LogIngestOutcome {
            accepted: accepted.max(0) as usize,
            unparsed: unparsed.max(0) as usize,
            replayed: true,
        })),
    }
}

/// Store log lines: one entry per line (NDJSON for `json`; raw lines for `nginx` and `text`, whose
/// continuation lines join their entry). All or nothing; lines that cannot be parsed are stored
/// raw and counted, never dropped. With an `Idempotency-Key`, a batch sent again (after a lost
/// answer) is answered as the first time and not stored twice, for 24 hours.
#[utoipa::path(post, path = "/api/v1/ingest/logs", tag = "logs",
    params(IngestQuery,
        ("Idempotency-Key" = Option<String>, Header,
         description = "1–255 visible ASCII characters, one per batch: a batch sent again with the same key is not stored twice")),
    request_body(content = String, content_type = "application/x-ndjson"),
    security(("ingest_token" = [])),
    responses(
        (status = 200, description = "Stored", body = LogIngestOutcome),
        (status = 400, description = "Bad service, format or encoding; nothing stored", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 422, description = "Idempotency-Key already used for a different body", body = ErrorBody),
    ))]
pub async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<ApiQuery<IngestQuery>, AppError>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<LogIngestOutcome>, AppError> {
    let token = tokens::verify(
        &state.pool,
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        "ingest",
    )
    .await?;
    // With a key, the body's SHA-256 tells a batch sent again from another one.
    let keyed = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            use sha2::Digest;
            let k = check_idempotency_key(v.as_bytes()).map_err(AppError::BadRequest)?;
            Some((k, sha2::Sha256::digest(&body).to_vec()))
        }
    };
    if let Some((k, sha)) = &keyed {
        if let Some(done) = replay(&state.pool, &token, k, sha).await? {
            return Ok(Json(done));
        }
    }
    let ApiQuery(q) = q?;
    validate_service(&q.service).map_err(AppError::BadRequest)?;
    let format =
        Format::parse(q.format.as_deref().unwrap_or("json")).map_err(AppError::BadRequest)?;
    let text = std::str::from_utf8(&body).map_err(|e| {
        AppError::bad_request(format!("the body is not UTF-8 (byte {})", e.valid_up_to()))
    })?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > MAX_LINES {
        return Err(AppError::bad_request(format!(
            "{} lines in one request; send at most {MAX_LINES}",
            lines.len()
        )));
    }
    let records = parse::records(format, lines);
    // A line's own `service` field routes it.
    let mut by_service: std::collections::BTreeMap<String, Vec<parse::Record>> = Default::default();
    for mut r in records {
        let svc = match r.fields.get("service").and_then(|v| v.as_str()) {
            Some(s) if validate_service(s).is_ok() => {
                let s = s.to_string();
                r.fields.remove("service");
                s
            }
            _ => q.service.clone(),
        };
        by_service.entry(svc).or_default().push(r);
    }
    let now = OffsetDateTime::now_utc();
    let mut accepted = 0;
    let mut unparsed = 0;
    let mut tx = state.pool.begin().await?;
    for (svc, recs) in &by_service {
        unparsed += recs.iter().filter(|r| r.parse_error.is_some()).count();
        accepted += store::write(&mut tx, &state, svc, "api", recs, now).await? as usize;
    }
    if let Some((k, sha)) = &keyed {
        // A request with the same key that got here first holds the row until it commits;
        // then this one finds it, stores nothing and answers as it did.
        let fresh = sqlx::query(
            "INSERT INTO log_ingest_keys (token, key, body_sha256, accepted, unparsed)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&token)
        .bind(k)
        .bind(sha)
        .bind(accepted as i32)
        .bind(unparsed as i32)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            tx.rollback().await?;
            return replay(&state.pool, &token, k, sha)
                .await?
                .map(Json)
                .ok_or(AppError::Internal);
        }
    }
    tx.commit().await?;
    store::committed(&state);
    for recs in by_service.values() {
        store::roll_up_soon(&state, recs, now);
    }
    Ok(Json(LogIngestOutcome {
        accepted,
        unparsed,
        replayed: false,
    }))
}

/// `from`/`to` as search and stats read them, ending now by default.
fn range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(OffsetDateTime, OffsetDateTime), AppError> {
    time_range(from, to, OffsetDateTime::now_utc()).map_err(AppError::BadRequest)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The query: words, "phrases", `level:error`, `status:>=500`, `path:/api/*`, `ip:…`,
    /// `service:…`, `-word`.
    pub q: Option<String>,
    /// RFC 3339, Unix seconds, `now` or `now-6h` (default: 24 hours before `to`).
    pub from: Option<String>,
    /// Default: now.
    pub to: Option<String>,
    pub service: Option<String>,
    /// Lines per page, 1–1000 (default 100).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Search log lines, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/logs/search", tag = "logs", params(SearchQuery), responses(
    (status = 200, description = "Matching lines", body = SearchResponse),
    (status = 400, description = "Bad query, range or cursor (the message says which)", body = ErrorBody),
))]
pub async fn search(
    ctx: RequestCtx,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<SearchResponse>, AppError> {
    ctx.require(Role::Viewer).await?;
    let (from, to) = range(q.from.as_deref(), q.to.as_deref())?;
    Ok(Json(
        searching::search(
            &ctx.state.reads,
            q.q.as_deref().unwrap_or(""),
            q.service.as_deref().filter(|s| !s.is_empty()),
            from,
            to,
            q.limit.unwrap_or(100),
            q.cursor.as_deref().filter(|s| !s.is_empty()),
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Only the lines matching this query, in the language of search (default: every line).
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub service: Option<String>,
    /// Requests slower than this many seconds are listed (default 5).
    pub slow: Option<f64>,
    /// More POSTs to /api/ than this mark an IP as suspicious (default 100).
    pub suspicious_posts: Option<i64>,
    /// Entries in each top list (default 10, at most 100).
    pub top: Option<i64>,
}

/// The runbook's log analytics for a range and service.
#[utoipa::path(get, path = "/api/v1/logs/stats", tag = "logs", params(StatsQuery), responses(
    (status = 200, description = "Analytics", body = LogStats),
    (status = 400, description = "Bad range or parameter", body = ErrorBody),
))]
pub async fn stats(
    ctx: RequestCtx,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Json<LogStats>, AppError> {
    ctx.require(Role::Viewer).await?;
    let (from, to) = range(q.from.as_deref(), q.to.as_deref())?;
    let mut p = StatsParams::default();
    if let Some(s) = q.slow {
        if !(s.is_finite() && s >= 0.0) {
            return Err(AppError::bad_request(
                "slow must be a number of seconds ≥ 0",
            ));
        }
        p.slow_seconds = s;
    }
    if let Some(n) = q.suspicious_posts {
        if n < 0 {
            return Err(AppError::bad_request("suspicious_posts must be ≥ 0"));
        }
        p.suspicious_posts = n;
    }
    if let Some(t) = q.top {
        if !(1..=100).contains(&t) {
            return Err(AppError::bad_request("top must be between 1 and 100"));
        }
        p.top = t;
    }
    Ok(Json(
        analytics::stats(
            &ctx.state,
            q.q.as_deref().unwrap_or(""),
            q.service.as_deref().filter(|s| !s.is_empty()),
            from,
            to,
            &p,
        )
        .await?,
    ))
}

api_list!(
    /// Log sources with their tailer's state (position, lines/s, last error).
    list_sources: "/api/v1/logs/sources", "logs", Admin, Vec<app::logs::SourceRow>,
    |ctx| sources::list(&ctx).await?
);

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSource {
    pub id: i64,
}

api_create!(
    /// Follow a file (or files) inside `log_source_dirs`: stored lines start from the file's
    /// beginning.
    add_source: "/api/v1/logs/sources", "logs", NewLogSource -> CreatedSource,
    [(status = 422, description = "Bad format or service, or a path outside log_source_dirs", body = ErrorBody)],
    |ctx, new| CreatedSource { id: sources::add(&ctx, &new).await? }
);

api_delete!(
    /// Stop following a source (stored lines stay).
    delete_source: "/api/v1/logs/sources/{id}", "logs", "id": i64, "Source id", "Removed",
    |ctx, id| sources::delete(&ctx, id).await?
);

api_patch!(
    /// Change a source's path, format or service, or `{"paused": true}` (not followed until
    /// resumed, then taken up where it stopped).
    patch_source: "/api/v1/logs/sources/{id}", "logs", "id": i64, "Source id",
    |ctx, id, change| sources::patch(&ctx, id, change).await?
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys() {
        for (key, ok) in [
            ("0b7f6c8e-1d2a-4c4e-9f1a-3e5d7c9b1a2f", true),
            ("batch-42", true),
            ("x", true),
            ("", false),
            ("has space", false),
            ("tab\there", false),
            ("é", false),
        ] {
            assert_eq!(check_idempotency_key(key.as_bytes()).is_ok(), ok, "{key:?}");
        }
        assert!(check_idempotency_key("k".repeat(255).as_bytes()).is_ok());
        assert!(check_idempotency_key("k".repeat(256).as_bytes()).is_err());
    }
}
