//! The runbook's analytics of a range (errors, top errors, hourly timelines, response-time
//! percentiles, slow requests, status classes, top paths, IPs and agents, suspicious IPs): from
//! the rolled-up days and hours where they hold the range, from the lines for the rest. With a
//! query, everything is read from the matching lines. Reads go through `Reads` (bounded); a
//! range ending now is shared between requests (`runtime::Answers`).

use super::query::{self, Clause};
use super::rollup::{
    self, Durations, HourAgg, Partial, Ranking, BUCKET_SQL, KEYS_KEPT, SLOWEST_KEPT, SLOW_SECONDS,
};
use super::search::push_scope;
use super::{LogStats, SlowRequest};
use crate::db::Conns;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::timestamp::Timestamp;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::{Date, Duration, OffsetDateTime};

/// Error messages with their variable parts replaced, so that similar errors group: first line
/// only; UUIDs, hex ids, IP addresses, e-mail addresses and numbers become placeholders.
pub const NORMALISED_MESSAGE: &str = "regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
    left(split_part(message, E'\\n', 1), 300),
    '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<uuid>', 'g'),
    '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}', '<email>', 'g'),
    '\\m\\d{1,3}(\\.\\d{1,3}){3}(:\\d+)?\\M', '<ip>', 'g'),
    '\\m(0x)?[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\\M|\\m(0x)?[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\\M', '<hex>', 'g'),
    '\\d+(\\.\\d+)?', '<n>', 'g')";

#[derive(Debug, Clone)]
pub struct StatsParams {
    pub slow_seconds: f64,
    pub suspicious_posts: i64,
    pub top: i64,
    /// Percentiles exact (from the lines) while the range holds at most
    /// `EXACT_PERCENTILES_UP_TO` timed lines; false: always the histogram's (within 0.5 %).
    pub exact_percentiles: bool,
    /// Only the counts, the response-time histogram and the slowest requests are read from the
    /// lines (no status classes, paths, IPs, agents or error messages): what an incident's
    /// comparison of windows shows, at a fraction of the cost.
    pub summary_only: bool,
}

impl Default for StatsParams {
    fn default() -> Self {
        Self {
            slow_seconds: 5.0,
            suspicious_posts: 100,
            top: 10,
            exact_percentiles: true,
            summary_only: false,
        }
    }
}

/// A transaction with enough memory for big sorts and hashes (the analytics), and without JIT:
/// compiling these queries costs more (about 120 ms measured) than it saves.
async fn begin_for_analytics(
    conn: &mut PgConnection,
) -> AppResult<sqlx::Transaction<'_, Postgres>> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    sqlx::query("SET LOCAL work_mem = '64MB'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
    Ok(tx)
}

/// One row of the grouping-sets scan of `raw_partial`.
#[derive(sqlx::FromRow)]
struct GroupRow {
    gmask: i32,
    hr: Option<OffsetDateTime>,
    cls: Option<i32>,
    path: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    bucket: Option<i32>,
    n: i64,
    errors: i64,
    requests: i64,
    api_posts: i64,
    durations: i64,
    slow: i64,
    sum_d: Option<f64>,
    min_d: Option<f64>,
    max_d: Option<f64>,
}

/// The lines an analytics read covers.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub service: Option<&'a str>,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    /// A query's conditions (none: every line).
    pub clauses: &'a [Clause],
    /// See `StatsParams::summary_only`.
    pub summary_only: bool,
}

impl<'a> Scope<'a> {
    pub fn new(service: Option<&'a str>, from: OffsetDateTime, to: OffsetDateTime) -> Self {
        Self {
            service,
            from,
            to,
            clauses: &[],
            summary_only: false,
        }
    }

    fn sql(&self, prefix: &str, suffix: &str) -> QueryBuilder<'a, Postgres> {
        let mut qb = QueryBuilder::new(prefix);
        push_scope(&mut qb, self.from, self.to, self.service, self.clauses);
        qb.push(suffix);
        qb
    }
}

/// Up to this many lines with a duration in a range, its percentiles are computed exactly
/// (sorting them takes up to about 100 ms); above, they come from the rollups' histograms.
pub const EXACT_PERCENTILES_UP_TO: i64 = 20_000;

/// The analytics of a scope read from the lines themselves: one grouping-sets scan for the
/// hours, status classes, key counts and the response-time histogram, one for the error
/// messages, one for the slowest requests. `db` says where the connections come from (requests
/// read through `Reads`, bounded; roll-up jobs through the pool).
pub async fn raw_partial<C: Conns>(db: &C, scope: Scope<'_>) -> AppResult<Partial> {
    // GROUPING bits, hr..bucket from high to low: 31 = hr, 47 = cls, 55 = path, 59 = ip,
    // 61 = user_agent, 62 = bucket. A summary groups by the hour and the bucket only, and
    // names its two sets with the same numbers.
    let (gmask, keys, sets) = match scope.summary_only {
        true => (
            "CASE GROUPING(hr, bucket) WHEN 1 THEN 31 ELSE 62 END",
            "NULL::int AS cls, NULL::text AS path, NULL::text AS ip, NULL::text AS user_agent",
            "(hr), (bucket)",
        ),
        false => (
            "GROUPING(hr, cls, path, ip, user_agent, bucket)",
            "cls, path, ip, user_agent",
            "(hr), (cls), (path), (ip), (user_agent), (bucket)",
        ),
    };
    let groups_prefix = format!(
        "SELECT gmask, hr, cls, path, ip, user_agent, bucket, n, errors, requests, api_posts, durations, slow, sum_d, min_d, max_d FROM (
            SELECT {gmask} AS gmask, hr, {keys}, bucket,
                   count(*) AS n, count(*) FILTER (WHERE level >= 4) AS errors,
                   count(*) FILTER (WHERE status IS NOT NULL OR path IS NOT NULL) AS requests,
                   count(*) FILTER (WHERE method = 'POST' AND path LIKE '/api/%') AS api_posts,
                   count(duration) AS durations, count(*) FILTER (WHERE duration > {SLOW_SECONDS}) AS slow,
                   sum(duration) AS sum_d, min(duration) AS min_d, max(duration) AS max_d,
                   row_number() OVER (PARTITION BY {gmask} ORDER BY count(*) DESC) AS rank
            FROM (SELECT date_trunc('hour', ts, 'UTC') AS hr, (status / 100)::int AS cls, path, ip, user_agent,
                         CASE WHEN duration IS NOT NULL THEN {BUCKET_SQL} END AS bucket,
                         level, status, method, duration
                  FROM log_lines"
    );
    let groups_suffix = format!(
        ") s
            GROUP BY GROUPING SETS ({sets})
         ) g
         WHERE gmask IN (31, 47, 62) OR rank <= {KEYS_KEPT}"
    );
    let errors_prefix = format!("SELECT {NORMALISED_MESSAGE} AS m, count(*) FROM log_lines");
    let errors_suffix = format!(" AND level >= 4 GROUP BY 1 ORDER BY 2 DESC LIMIT {KEYS_KEPT}");
    let slowest_suffix =
        format!(" AND duration IS NOT NULL ORDER BY 2 DESC, ts DESC LIMIT {SLOWEST_KEPT}");
    let groups = async {
        let mut conn = db.conn().await?;
        let mut tx = begin_for_analytics(&mut conn).await?;
        let rows: Vec<GroupRow> = scope
            .sql(&groups_prefix, &groups_suffix)
            .build_query_as()
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, AppError>(rows)
    };
    let errors = async {
        if scope.summary_only {
            return Ok(vec![]);
        }
        let mut conn = db.conn().await?;
        let rows: Vec<(String, i64)> = scope
            .sql(&errors_prefix, &errors_suffix)
            .build_query_as()
            .fetch_all(&mut *conn)
            .await?;
        Ok::<_, AppError>(rows)
    };
    let slowest = async {
        let mut conn = db.conn().await?;
        let rows: Vec<(OffsetDateTime, f64, Option<String>, String)> = scope
            .sql(
                "SELECT ts, duration, coalesce(path, fields->>'url'), service FROM log_lines",
                &slowest_suffix,
            )
            .build_query_as()
            .fetch_all(&mut *conn)
            .await?;
        Ok::<_, AppError>(rows)
    };
    let (groups, errors, slowest) = tokio::try_join!(groups, errors, slowest)?;
    let mut p = Partial {
        errors: errors.into_iter().collect(),
        slowest: slowest
            .into_iter()
            .map(|(ts, duration, url, service)| SlowRequest {
                ts: Timestamp(ts),
                duration,
                url,
                service,
            })
            .collect(),
        ..Partial::default()
    };
    for g in groups {
        let n = g.n;
        match g.gmask {
            31 => {
                if let Some(h) = g.hr {
                    p.hours.insert(
                        h.unix_timestamp(),
                        HourAgg {
                            total: n,
                            errors: g.errors,
                            requests: g.requests,
                        },
                    );
                    p.durations.merge(&Durations {
                        count: g.durations,
                        sum: g.sum_d.unwrap_or(0.0),
                        min: g.min_d,
                        max: g.max_d,
                        slow: g.slow,
                    });
                }
            }
            47 => {
                if let Some(c) = g.cls {
                    p.classes.insert(c, n);
                }
            }
            55 => {
                if let Some(path) = g.path {
                    p.paths.insert(path, n);
                }
            }
            59 => {
                if let Some(ip) = g.ip {
                    p.ips.insert(ip, (n, g.api_posts));
                }
            }
            61 => {
                if let Some(ua) = g.user_agent {
                    p.agents.insert(ua, n);
                }
            }
            62 => {
                if let Some(b) = g.bucket {
                    p.histogram.insert(b, n);
                }
            }
            _ => {}
        }
    }
    Ok(p)
}

/// The minutes of `service`'s `hour` that have lines, each with its partial (keeping
/// `MINUTE_KEYS_KEPT` keys of each kind), for `log_rollup_minutes`: one count per minute, then
/// one read of each minute with lines (the `(service, ts)` index takes it straight there).
pub async fn minute_partials(
    pool: &sqlx::PgPool,
    service: &str,
    hour: OffsetDateTime,
) -> AppResult<Vec<(OffsetDateTime, Partial)>> {
    let minutes: Vec<OffsetDateTime> = sqlx::query_scalar(
        "SELECT DISTINCT date_trunc('minute', ts, 'UTC') FROM log_lines
         WHERE service = $1 AND ts >= $2 AND ts < $3 ORDER BY 1",
    )
    .bind(service)
    .bind(hour)
    .bind(hour + rollup::HOUR)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(minutes.len());
    for minute in minutes {
        let scope = Scope::new(Some(service), minute, minute + Duration::MINUTE);
        let mut part = raw_partial(pool, scope).await?;
        part.trim(rollup::MINUTE_KEYS_KEPT);
        out.push((minute, part));
    }
    Ok(out)
}

/// Of `hours`, those rolled up for `service` (or every service) and not written to since; with
/// `with_minutes`, only those whose minutes are stored too (hours rolled up since they are).
async fn settled_hours(
    pool: &sqlx::PgPool,
    hours: &[OffsetDateTime],
    service: &Option<String>,
    with_minutes: bool,
) -> AppResult<Vec<OffsetDateTime>> {
    if hours.is_empty() {
        return Ok(vec![]);
    }
    Ok(sqlx::query_scalar(
        "SELECT h.hour FROM log_rollup_hours_done h WHERE h.hour = ANY($1) AND (h.minutes OR NOT $3)
         AND NOT EXISTS (SELECT 1 FROM log_rollup_pending p
                         WHERE p.hour = h.hour AND ($2::text IS NULL OR p.service = $2))",
    )
    .bind(hours)
    .bind(service)
    .bind(with_minutes)
    .fetch_all(pool)
    .await?)
}

/// The runbook's analytics for [from, to), of the lines matching `q` (empty: all): without a
/// query, the whole days and hours already rolled up (and not written to since) come from
/// `log_rollups` and `log_rollup_hours`, the rest from the lines; with one, everything comes
/// from the matching lines. Percentiles are exact up to `EXACT_PERCENTILES_UP_TO` timed lines,
/// else from the histogram (within 0.5 %). A range ending now may be answered from up to
/// `RECENT_SECONDS` before (`Answers::fresh_or_recent`): a dashboard asks many times a second.
pub async fn stats(
    state: &AppState,
    q: &str,
    service: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    p: &StatsParams,
) -> AppResult<LogStats> {
    let clauses = query::parse(q).map_err(AppError::BadRequest)?;
    let key = format!("stats/{q}/{service:?}/{}/{p:?}", span_key(from, to));
    let (from, to) = answered_range(from, to, OffsetDateTime::now_utc());
    let (s, service, p) = (state.clone(), service.map(str::to_string), p.clone());
    // (Boxed: the analytics' future is large.)
    let compute =
        Box::pin(async move { stats_of(&s, service.as_deref(), from, to, &clauses, &p).await });
    recent_if(ends_now(to), state, key, to, compute).await
}

async fn stats_of(
    state: &AppState,
    service: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    clauses: &[Clause],
    p: &StatsParams,
) -> AppResult<LogStats> {
    let svc = service.map(str::to_string);
    let scope = Scope {
        service,
        from,
        to,
        clauses,
        summary_only: p.summary_only,
    };
    let all = if clauses.is_empty() {
        merged_partial(state, scope).await?
    } else {
        raw_partial(&state.reads, scope).await?
    };
    let threshold = p.slow_seconds;
    // Exact percentiles (and the exact slow count for another threshold than the stored one)
    // while the range holds few enough timed lines to sort them quickly; beyond that the
    // histogram's (within 0.5 %).
    let exact = if p.exact_percentiles
        && (1..=EXACT_PERCENTILES_UP_TO).contains(&all.durations.count)
    {
        let mut conn = state.reads.heavy().await?;
        let mut tx = begin_for_analytics(&mut conn).await?;
        let mut qb = QueryBuilder::new(
            "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration), \
             count(*) FILTER (WHERE duration > ",
        );
        qb.push_bind(threshold);
        qb.push(") FROM log_lines");
        push_scope(&mut qb, from, to, service, clauses);
        qb.push(" AND duration IS NOT NULL");
        let (v, slow): (Option<Vec<f64>>, i64) = qb.build_query_as().fetch_one(&mut *tx).await?;
        tx.commit().await?;
        v.and_then(|v| <[f64; 3]>::try_from(v).ok())
            .map(|v| (v, slow))
    } else {
        None
    };
    let ranking = Ranking {
        top: p.top.clamp(0, 1000) as usize,
        slow_seconds: threshold,
        suspicious_posts: p.suspicious_posts,
    };
    Ok(rollup::finish(&all, &ranking, exact, from, to, svc))
}

/// The partials of a range without a query, merged: stored days, hours, the live round and the
/// minutes of rolled-up hours at the edges where they hold it, the lines for the rest (the
/// seconds at the edges, those since the live round, hours not rolled up yet).
async fn merged_partial(state: &AppState, scope: Scope<'_>) -> AppResult<Partial> {
    let (service, from, to) = (scope.service, scope.from, scope.to);
    let svc = service.map(str::to_string);
    let pool = state.reads.pool();
    let now_ending = ends_now(to);
    let days = rollup::whole_days(from, to);
    let rolled_days: Vec<Date> = if days.is_empty() {
        vec![]
    } else {
        sqlx::query_scalar(
            "SELECT d.day FROM log_rollup_days d WHERE d.day = ANY($1)
             AND NOT EXISTS (SELECT 1 FROM log_rollup_pending p
                             WHERE p.day = d.day AND ($2::text IS NULL OR p.service = $2))
             ORDER BY 1",
        )
        .bind(&days)
        .bind(&svc)
        .fetch_all(pool)
        .await?
    };
    let mut stored: std::collections::BTreeSet<(OffsetDateTime, OffsetDateTime)> =
        rolled_days.iter().map(|d| rollup::day_span(*d)).collect();
    // The whole hours of what the days leave (the edges, today, days not rolled up yet).
    let hours: Vec<OffsetDateTime> = rollup::raw_stretches(from, to, &stored)
        .into_iter()
        .flat_map(|(a, b)| rollup::whole_hours(a, b))
        .collect();
    let rolled_hours = settled_hours(pool, &hours, &svc, false).await?;
    stored.extend(rolled_hours.iter().map(|h| rollup::hour_span(*h)));
    // The current hour (and the one before, until it is rolled up) up to the live round.
    let live: Vec<(OffsetDateTime, OffsetDateTime)> = sqlx::query_as::<_, (OffsetDateTime, OffsetDateTime)>(
        "SELECT r.hour, r.upto FROM log_rollup_live_rounds r
         WHERE r.hour >= $1 AND r.upto <= $2
           AND NOT EXISTS (SELECT 1 FROM log_rollup_pending p
                           WHERE p.hour = r.hour AND p.live AND ($3::text IS NULL OR p.service = $3))
         ORDER BY 1",
    )
    .bind(from)
    .bind(to)
    .bind(&svc)
    .fetch_all(pool)
    .await?
    .into_iter()
    .filter(|(h, _)| !stored.iter().any(|(a, b)| a < &(*h + rollup::HOUR) && *h < *b))
    .collect();
    stored.extend(live.iter().copied());
    // The edges left inside rolled-up hours (a range starting mid-hour): their whole minutes.
    let edges = rollup::raw_stretches(from, to, &stored);
    let touched: Vec<OffsetDateTime> = edges
        .iter()
        .flat_map(|(a, b)| rollup::hours_touched(*a, *b))
        .collect();
    let with_minutes = settled_hours(pool, &touched, &svc, true).await?;
    let minutes: Vec<OffsetDateTime> = edges
        .iter()
        .flat_map(|(a, b)| rollup::whole_minutes(*a, *b))
        .filter(|m| with_minutes.contains(&rollup::hour_of(*m)))
        .collect();
    stored.extend(minutes.iter().map(|m| (*m, *m + Duration::MINUTE)));
    let (live_hours, live_upto): (Vec<OffsetDateTime>, Vec<OffsetDateTime>) =
        live.iter().copied().unzip();
    let partials = async {
        if stored.is_empty() {
            return Ok(vec![]);
        }
        Ok::<_, AppError>(
            sqlx::query_scalar::<_, sqlx::types::Json<Partial>>(
                "SELECT data FROM log_rollups WHERE day = ANY($1) AND ($3::text IS NULL OR service = $3)
                 UNION ALL
                 SELECT data FROM log_rollup_hours WHERE hour = ANY($2) AND ($3::text IS NULL OR service = $3)
                 UNION ALL
                 SELECT l.data FROM log_rollup_live l
                 JOIN UNNEST($4::timestamptz[], $5::timestamptz[]) AS r(hour, upto) ON l.hour = r.hour AND l.upto = r.upto
                 WHERE ($3::text IS NULL OR l.service = $3)
                 UNION ALL
                 SELECT data FROM log_rollup_minutes WHERE minute = ANY($6) AND ($3::text IS NULL OR service = $3)",
            )
            .bind(&rolled_days)
            .bind(&rolled_hours)
            .bind(&svc)
            .bind(&live_hours)
            .bind(&live_upto)
            .bind(&minutes)
            .fetch_all(pool)
            .await?,
        )
    };
    // Usually two short edges and the seconds since the live round.
    let raw = async {
        let mut out = vec![];
        for (a, b) in rollup::raw_stretches(from, to, &stored) {
            let key = format!("raw/{service:?}/{a}/{b}/{}", scope.summary_only);
            let read = raw_partial(
                &state.reads,
                Scope {
                    summary_only: scope.summary_only,
                    ..Scope::new(service, a, b)
                },
            );
            out.push(shared_if(now_ending, state, key, read).await?);
        }
        Ok::<_, AppError>(out)
    };
    let (partials, raw) = tokio::try_join!(partials, raw)?;
    let mut all = Partial::default();
    for part in partials.iter().map(|j| &j.0).chain(raw.iter()) {
        all.merge(part);
    }
    Ok(all)
}

/// The range the analytics answer for [from, to), and the Logs page shows: whole seconds (one
/// ending now to the end of this second, so the requests of one second share their reads). A
/// range of an hour or more also starts at the start of its minute, and one ending in a
/// finished hour ends at the end of its minute: its edges then come from the minute tier, not
/// from up to a minute of a busy service's lines. The answer's `from` and `to` say so. Pure.
pub fn answered_range(
    from: OffsetDateTime,
    to: OffsetDateTime,
    now: OffsetDateTime,
) -> (OffsetDateTime, OffsetDateTime) {
    let (from, to) = (whole_second(from), second_end(to));
    if to - from < rollup::HOUR {
        return (from, to);
    }
    let end = rollup::minute_of(to);
    let to = if end < to && end + Duration::MINUTE <= rollup::hour_of(now) {
        end + Duration::MINUTE
    } else {
        to
    };
    (rollup::minute_of(from), to)
}

/// A range's length as the answers shared between requests name it (asked, not answered: an
/// `answered_range` of "the last 6 hours" is 6 hours and up to a minute long, depending on the
/// second it is asked), in whole seconds.
pub(crate) fn span_key(from: OffsetDateTime, to: OffsetDateTime) -> i64 {
    (second_end(to) - whole_second(from)).whole_seconds()
}

/// Whether a range ends now (a dashboard's "last hour"): such ranges are taken to whole
/// seconds, and the requests of one second share their reads (`shared_for_a_second`).
pub(crate) fn ends_now(to: OffsetDateTime) -> bool {
    to > OffsetDateTime::now_utc() - Duration::seconds(2)
}

pub(crate) fn whole_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// The end of the second `t` is in (so a range ending now holds every line stored by now).
pub(crate) fn second_end(t: OffsetDateTime) -> OffsetDateTime {
    let start = whole_second(t);
    if start == t {
        t
    } else {
        start + Duration::seconds(1)
    }
}

/// `compute`, shared within the second by `key` when `shared` (a range ending now), else as is.
pub(crate) async fn shared_if<T, F>(
    shared: bool,
    state: &AppState,
    key: String,
    compute: F,
) -> AppResult<T>
where
    T: Clone + Send + Sync + 'static,
    F: std::future::Future<Output = AppResult<T>>,
{
    if shared {
        state
            .runtime
            .answers
            .shared_for_a_second(&key, compute)
            .await
    } else {
        compute.await
    }
}

/// `compute` for the range ending at `to` (a range ending now, when `live`) from up to
/// `RECENT_SECONDS` before (`Answers::fresh_or_recent`; `key` names the question without its
/// time), else as is.
pub(crate) async fn recent_if<T, F>(
    live: bool,
    state: &AppState,
    key: String,
    to: OffsetDateTime,
    compute: F,
) -> AppResult<T>
where
    T: Clone + Send + Sync + 'static,
    F: std::future::Future<Output = AppResult<T>> + Send + 'static,
{
    if live {
        state
            .runtime
            .answers
            .fresh_or_recent(&key, to.unix_timestamp(), compute)
            .await
    } else {
        compute.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn long_ranges_are_answered_in_whole_minutes() {
        let now = datetime!(2026-12-01 21:40:12.5 UTC);
        let t = |h: u8, m: u8, s: u8, ms: u16| {
            datetime!(2026-12-01 00:00 UTC)
                + Duration::hours(h.into())
                + Duration::minutes(m.into())
                + Duration::seconds(s.into())
                + Duration::milliseconds(ms.into())
        };
        // (from, to) asked → answered
        let table = [
            // Under an hour: whole seconds only.
            (
                (t(20, 15, 30, 250), t(20, 45, 10, 0)),
                (t(20, 15, 30, 0), t(20, 45, 10, 0)),
            ),
            ((t(21, 0, 0, 0), now), (t(21, 0, 0, 0), t(21, 40, 13, 0))),
            // The last 6 hours: from the start of its minute, to the end of this second.
            (
                (now - Duration::hours(6), now),
                (t(15, 40, 0, 0), t(21, 40, 13, 0)),
            ),
            // Ending in a finished hour: to the end of that minute.
            (
                (t(10, 20, 30, 0), t(18, 5, 1, 0)),
                (t(10, 20, 0, 0), t(18, 6, 0, 0)),
            ),
            (
                (t(10, 20, 0, 0), t(18, 5, 0, 0)),
                (t(10, 20, 0, 0), t(18, 5, 0, 0)),
            ),
            // Ending in the current hour (the live round's): to the second.
            (
                (t(10, 20, 30, 0), t(21, 5, 1, 0)),
                (t(10, 20, 0, 0), t(21, 5, 1, 0)),
            ),
            // Ending in the last minute of the hour before: that minute ends with the hour.
            (
                (t(10, 0, 0, 0), t(20, 59, 30, 0)),
                (t(10, 0, 0, 0), t(21, 0, 0, 0)),
            ),
        ];
        for ((from, to), want) in table {
            let got = answered_range(from, to, now);
            assert_eq!(got, want, "{from} – {to}");
            assert!(got.0 <= from && got.1 >= second_end(to) - Duration::SECOND);
            assert_eq!(answered_range(got.0, got.1, now), got, "taken once");
        }
        // The key of "the last 6 hours" stays the same from one second to the next.
        let keys: std::collections::BTreeSet<i64> = (0..120)
            .map(|s| {
                let now = now + Duration::seconds(s);
                let (a, b) = (now - Duration::hours(6), now);
                assert!(answered_range(a, b, now).0 <= a);
                span_key(a, b)
            })
            .collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
    }
}
