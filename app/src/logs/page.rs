//! What the Logs page shows: the matching lines, their facets and timeline and, on the first
//! page, the analytics of the same lines.

use super::analytics::{ends_now, recent_if, second_end, stats, whole_second, StatsParams};
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
    let (from, to) = if p.from.is_some() {
        time_range(p.from, p.to, now).map_err(AppError::BadRequest)?
    } else {
        let secs = crate::metrics::parse_duration_secs(p.range.unwrap_or("24h"))
            .map_err(|e| AppError::bad_request(format!("range: {e}")))?;
        time_range(Some(&format!("now-{secs}s")), None, now).map_err(AppError::BadRequest)?
    };
    // A range ending now: whole seconds, as `stats` takes it, so the facets and timeline below
    // cover the same range.
    let live = ends_now(to);
    let (from, to) = if live {
        (whole_second(from), second_end(to))
    } else {
        (from, to)
    };
    let search = search(&state.reads, p.q, p.service, from, to, 100, p.cursor).await?;
    let params = StatsParams::default();
    let (stats, facets, histogram) = if p.cursor.is_none() {
        // For a range ending now, the facets and the timeline may come from up to
        // `RECENT_SECONDS` before, as the analytics (`stats`) do.
        let span = (to - from).whole_seconds();
        let (q, service) = (p.q.to_string(), p.service.map(str::to_string));
        let (reads, q2, service2) = (state.reads.clone(), q.clone(), service.clone());
        let facets_now = async move { facets(&reads, &q2, service2.as_deref(), from, to).await };
        let reads = state.reads.clone();
        let histogram_now =
            async move { histogram(&reads, &q, service.as_deref(), from, to).await };
        let (s, f, h) = tokio::try_join!(
            stats(state, p.q, p.service, from, to, &params),
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
    Ok(LogsPageData {
        role,
        services: services(&state.pool).await?,
        search,
        stats,
        facets,
        histogram_step: histogram.as_ref().map(|h| h.0).unwrap_or(0),
        histogram: histogram.map(|h| h.1).unwrap_or_default(),
    })
}
