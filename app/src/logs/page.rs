//! What the Logs page shows: the matching lines, their facets and timeline and, on the first
//! page, the analytics of the same lines.

use super::analytics::{answered_range, ends_now, recent_if, span_key, stats, StatsParams};
use super::search::{facets, histogram, search, time_range};
use super::store::services;
use super::LogsPageData;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use time::OffsetDateTime;

/// What the Logs page asks for.
pub struct PageQuery<'a> {
    pub q: &'a str,
    pub service: Option<&'a str>,
    pub range: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub cursor: Option<&'a str>,
}

/// The Logs page: matches, facets, the histogram and, on the first page, the analytics.
pub async fn page_data(state: &AppState, role: Role, p: PageQuery<'_>) -> AppResult<LogsPageData> {
    let now = OffsetDateTime::now_utc();
    // A window (`from`, `to`) is used unless a relative range is chosen: a zoomed-in bar
    // links to a window, and picking "last 6h" afterwards leaves it.
    let custom = p.from.is_some() && matches!(p.range, None | Some("custom"));
    let (from, to) = if custom {
        time_range(p.from, p.to, now).map_err(AppError::BadRequest)?
    } else {
        let secs = crate::metrics::parse_duration_secs(
            p.range.filter(|r| *r != "custom").unwrap_or("24h"),
        )
        .map_err(|e| AppError::bad_request(format!("range: {e}")))?;
        time_range(Some(&format!("now-{secs}s")), None, now).map_err(AppError::BadRequest)?
    };
    // The range as `stats` takes it, so the lines, facets and timeline below cover the same.
    let live = ends_now(to);
    let (asked, span) = ((from, to), span_key(from, to));
    let (from, to) = answered_range(from, to, now);
    let services = services(&state.pool).await?;
    if let Err(e) = super::query::parse(p.q) {
        // Said under the search box; the rest of the page stays.
        return Ok(LogsPageData {
            role,
            services,
            search: super::SearchResponse {
                lines: vec![],
                next_cursor: None,
                from: from.into(),
                to: to.into(),
            },
            stats: None,
            facets: vec![],
            histogram_step: 0,
            histogram: vec![],
            query_error: Some(e),
            newest_before: None,
            new_errors: None,
        });
    }
    let search = search(&state.reads, p.q, p.service, from, to, 100, p.cursor).await?;
    let newest_before = if search.lines.is_empty() && p.cursor.is_none() && p.q.trim().is_empty() {
        newest_before(&state.pool, p.service, from).await?
    } else {
        None
    };
    let params = StatsParams::default();
    let (stats, facets, histogram) = if p.cursor.is_none() {
        // For a range ending now, the facets and the timeline may come from up to
        // `RECENT_SECONDS` before, as the analytics (`stats`) do.
        let (q, service) = (p.q.to_string(), p.service.map(str::to_string));
        let (reads, q2, service2) = (state.reads.clone(), q.clone(), service.clone());
        let facets_now = async move { facets(&reads, &q2, service2.as_deref(), from, to).await };
        let reads = state.reads.clone();
        let histogram_now =
            async move { histogram(&reads, &q, service.as_deref(), from, to).await };
        let (s, f, h) = tokio::try_join!(
            stats(state, p.q, p.service, asked.0, asked.1, &params),
            recent_if(
                live,
                state,
                format!("facets/{}/{:?}/{span}", p.q, p.service),
                to,
                facets_now,
            ),
            recent_if(
                live,
                state,
                format!("histogram/{}/{:?}/{span}", p.q, p.service),
                to,
                histogram_now,
            ),
        )?;
        (Some(s), f, Some(h))
    } else {
        (None, vec![], None)
    };
    // New errors make sense over hours or days, and cost a pass over the errors of the week
    // before: not for longer ranges.
    let new_errors = if p.cursor.is_none() && to - from <= time::Duration::days(7) {
        let mut conn = state.reads.heavy().await?;
        Some(crate::incidents::service::new_errors(&mut conn, from, to, p.service).await?)
    } else {
        None
    };
    Ok(LogsPageData {
        role,
        services,
        query_error: None,
        newest_before,
        new_errors,
        search,
        stats,
        facets,
        histogram_step: histogram.as_ref().map(|h| h.0).unwrap_or(0),
        histogram: histogram.map(|h| h.1).unwrap_or_default(),
    })
}

/// When a range holds nothing: the end of the newest rolled-up hour (or day) with lines before
/// it, so the page can offer a range that shows them. From the roll-ups, which are small, not
/// from the lines.
async fn newest_before(
    pool: &sqlx::PgPool,
    service: Option<&str>,
    from: OffsetDateTime,
) -> AppResult<Option<crate::timestamp::Timestamp>> {
    let at = sqlx::query_scalar!(
        r#"SELECT greatest(
               (SELECT max(hour) + interval '1 hour' FROM log_rollup_hours
                WHERE hour < $1 AND ($2::text IS NULL OR service = $2)),
               (SELECT (max(day) + 1)::timestamp AT TIME ZONE 'UTC' FROM log_rollups
                WHERE day < ($1 AT TIME ZONE 'UTC')::date AND ($2::text IS NULL OR service = $2))
           ) AS "at""#,
        from,
        service
    )
    .fetch_one(pool)
    .await?;
    Ok(at.map(|t| t.min(from).into()))
}
