//! What surrounds an incident: its timeline (alerts, checks, process restarts, backups,
//! annotations, sign-ins, notes) and its logs' context (the busiest services against a day and
//! a week before, errors first seen in the window).

use crate::error::{AppError, AppResult};
use crate::incidents::{Context, Incident, LogWindow, NewError, TimelineEvent};
use crate::logs::LogStats;
use crate::state::AppState;
use crate::timestamp::Timestamp;
use sqlx::{PgConnection, PgPool};
use time::{Duration, OffsetDateTime};

/// Everything that happened in `[from, to]` that bears on the incident, oldest first.
pub(super) async fn timeline(
    pool: &PgPool,
    i: &Incident,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<Vec<TimelineEvent>> {
    let rows = sqlx::query!(
        r#"
        SELECT at AS "at!", kind AS "kind!", host, text AS "text!" FROM (
            SELECT e.at, 'alert_' || e.status AS kind, e.host, e.rule_name || CASE WHEN e.summary = '' THEN '' ELSE ': ' || e.summary END AS text
              FROM alert_events e WHERE e.incident_id = $1
            UNION ALL
            SELECT x.at, CASE WHEN x.up THEN 'check_up' ELSE 'check_down' END, NULL,
                   x.name || CASE WHEN x.up THEN ' is up' ELSE ' is down' || coalesce(': ' || x.error, '') END
              FROM (SELECT r.at, r.up, r.error, c.name, lag(r.up) OVER (PARTITION BY r.check_id ORDER BY r.at) AS before
                      FROM health_results r JOIN health_checks c ON c.id = r.check_id
                     WHERE r.at >= $2::timestamptz - interval '15 minutes' AND r.at <= $3) x
             WHERE x.at >= $2 AND x.before IS DISTINCT FROM x.up AND x.before IS NOT NULL

            UNION ALL
            SELECT coalesce(r.finished_at, r.started_at), 'backup', NULL,
                   'backup of ' || t.name || ' (' || r.trigger || ') ' || r.status || coalesce(': ' || r.error, '')
              FROM backup_runs r JOIN backup_targets t ON t.id = r.target_id
             WHERE coalesce(r.finished_at, r.started_at) BETWEEN $2 AND $3
            UNION ALL
            SELECT coalesce(j.finished_at, j.started_at), 'restore', NULL,
                   'restore of ' || t.name || ' into ' || j.database_name || ' (' || j.mode || ') by ' || j.requested_by || ': ' || j.status
              FROM restore_jobs j JOIN backup_targets t ON t.id = j.target_id
             WHERE coalesce(j.finished_at, j.started_at) BETWEEN $2 AND $3
            UNION ALL
            SELECT a.ts, 'annotation', a.host, a.text || CASE WHEN cardinality(a.tags) > 0 THEN ' [' || array_to_string(a.tags, ', ') || ']' ELSE '' END
              FROM annotations a WHERE a.ts BETWEEN $2 AND $3 AND (a.host IS NULL OR a.host = ANY($4))
            UNION ALL
            SELECT l.at, 'sign_in', NULL, l.actor || ' (admin) signed in' || coalesce(' from ' || l.ip, '')
              FROM audit_log l JOIN users u ON u.username = l.actor AND u.role = 'admin'
             WHERE l.action = 'auth.login' AND l.success AND l.at BETWEEN $2 AND $3
        ) t ORDER BY at LIMIT 2000"#,
        i.id,
        from,
        to,
        &i.hosts
    )
    .fetch_all(pool)
    .await?;
    let mut events: Vec<TimelineEvent> = rows
        .into_iter()
        .map(|r| TimelineEvent {
            at: Timestamp(r.at),
            kind: r.kind,
            host: r.host,
            text: r.text,
        })
        .collect();
    events.extend(restarts(pool, &i.hosts, from, to).await?);
    events.sort_by_key(|e| e.at);
    events.truncate(2000);
    Ok(events)
}

/// The restarts of the watched processes on `hosts` in `[from, to]`, from the raw samples
/// (rows and compressed chunks alike) of `process_restarts`.
async fn restarts(
    pool: &PgPool,
    hosts: &[String],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<Vec<TimelineEvent>> {
    let series = sqlx::query!(
        "SELECT id, host, coalesce(labels->>'process', 'a process') AS \"process!\"
           FROM metric_series WHERE metric = 'process_restarts' AND host = ANY($1)
             AND labels = jsonb_build_object('process', labels->>'process')",
        hosts
    )
    .fetch_all(pool)
    .await?;
    let ids: Vec<i32> = series.iter().map(|s| s.id).collect();
    let samples =
        crate::metrics::service::raw_samples(pool, &ids, from, to + Duration::microseconds(1))
            .await?;
    Ok(samples
        .into_iter()
        .filter(|s| s.2 > 0.0)
        .filter_map(|(id, at, _)| {
            let s = series.iter().find(|s| s.id == id)?;
            Some(TimelineEvent {
                at: Timestamp(at),
                kind: "process_restart".into(),
                host: Some(s.host.clone()),
                text: format!("{} restarted", s.process),
            })
        })
        .collect())
}

/// The logs around an incident: the busiest services of the window against the same window a
/// day and a week before, errors first seen in it, and its slowest requests. The analytics of
/// the services run side by side (each takes its turn at the heavy reads' gate) as summaries:
/// counts, the histogram's percentiles (within 0.5 %) and the slowest requests, no rankings.
pub(super) async fn context(
    state: &AppState,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<Context> {
    use crate::logs::analytics::StatsParams;
    let p = StatsParams {
        exact_percentiles: false,
        summary_only: true,
        ..StatsParams::default()
    };
    let services: Vec<String> = crate::logs::store::services(&state.pool)
        .await?
        .into_iter()
        .take(20)
        .collect();
    // Up to 5 services: their window and the same a day and a week before, all at once; more:
    // the window of each first, then the earlier ones of the 5 busiest.
    let few = services.len() <= 5;
    let earlier = |list: Vec<String>, back: Duration| {
        let p = p.clone();
        async move {
            match few || back.is_zero() {
                true => stats_of_each(state, &list, from, to, back, &p).await,
                false => Ok(vec![]),
            }
        }
    };
    let (now, day, week, new_errors) = tokio::try_join!(
        earlier(services.clone(), Duration::ZERO),
        earlier(services.clone(), Duration::days(1)),
        earlier(services.clone(), Duration::weeks(1)),
        async { new_errors(&mut *state.reads.heavy().await?, from, to, None).await },
    )?;
    let mut windows: Vec<ServiceWindows> = services
        .into_iter()
        .zip(now)
        .enumerate()
        .map(|(i, (service, now))| {
            let before = day.get(i).cloned().zip(week.get(i).cloned());
            (service, now, before)
        })
        .filter(|(_, s, _)| s.total > 0)
        .collect();
    windows.sort_by(|a, b| b.1.total.cmp(&a.1.total).then_with(|| a.0.cmp(&b.0)));
    windows.truncate(5);
    if !few {
        let busiest: Vec<String> = windows.iter().map(|w| w.0.clone()).collect();
        let (day, week) = tokio::try_join!(
            stats_of_each(state, &busiest, from, to, Duration::days(1), &p),
            stats_of_each(state, &busiest, from, to, Duration::weeks(1), &p),
        )?;
        for ((w, d), k) in windows.iter_mut().zip(day).zip(week) {
            w.2 = Some((d, k));
        }
    }
    let mut logs = vec![];
    let mut slow = vec![];
    for (service, now, before) in windows {
        let Some((day, week)) = before else { continue };
        let rate = |s: &LogStats| (s.total > 0).then_some(s.error_rate);
        slow.extend(now.slow_requests.iter().cloned());
        logs.push(LogWindow {
            lines: now.total,
            errors: now.errors,
            error_rate: now.error_rate,
            requests: now.requests,
            p95_seconds: now.response_time.p95,
            day_before_lines: day.total,
            day_before_error_rate: rate(&day),
            day_before_p95_seconds: day.response_time.p95,
            week_before_lines: week.total,
            week_before_error_rate: rate(&week),
            week_before_p95_seconds: week.response_time.p95,
            service,
        });
    }
    slow.sort_by(|a, b| b.duration.total_cmp(&a.duration));
    slow.truncate(10);
    Ok(Context {
        from: Timestamp(from),
        to: Timestamp(to),
        logs,
        new_errors,
        slow_requests: slow,
    })
}

/// A service, its analytics over the window, and over the same window a day and a week before.
type ServiceWindows = (String, LogStats, Option<(LogStats, LogStats)>);

/// The analytics of each service over `[from, to)` moved `back` in time, side by side, in the
/// order of `services`.
async fn stats_of_each(
    state: &AppState,
    services: &[String],
    from: OffsetDateTime,
    to: OffsetDateTime,
    back: Duration,
    p: &crate::logs::analytics::StatsParams,
) -> AppResult<Vec<LogStats>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, service) in services.iter().enumerate() {
        let (state, service, p) = (state.clone(), service.clone(), p.clone());
        set.spawn(async move {
            let s = crate::logs::analytics::stats(
                &state,
                "",
                Some(&service),
                from - back,
                to - back,
                &p,
            )
            .await;
            (i, s)
        });
    }
    let mut out: Vec<Option<LogStats>> = vec![None; services.len()];
    while let Some(r) = set.join_next().await {
        let (i, s) = r.map_err(|_| AppError::Internal)?;
        out[i] = Some(s?);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Error messages (normalised) logged in `[from, to)` (by `service`, or any) and not once in
/// the 7 days before: the finished hours from their roll-ups (each keeps its most frequent
/// messages), the lines only of the hours not rolled up (the last, unfinished one at least).
pub async fn new_errors(
    conn: &mut PgConnection,
    from: OffsetDateTime,
    to: OffsetDateTime,
    service: Option<&str>,
) -> AppResult<Vec<NewError>> {
    let norm = crate::logs::analytics::NORMALISED_MESSAGE;
    let sql = format!(
        "WITH w AS (
            SELECT service, {norm} AS message, count(*)::bigint AS count FROM log_lines
             WHERE level >= 4 AND ts >= $1 AND ts < $2 AND ($3::text IS NULL OR service = $3)
             GROUP BY 1, 2
         ), seen AS (
            SELECT h.service, k.message
              FROM log_rollup_hours h CROSS JOIN LATERAL jsonb_object_keys(coalesce(h.data->'errors', '{{}}'::jsonb)) AS k(message)
             WHERE h.hour >= $1::timestamptz - interval '7 days' AND h.hour + interval '1 hour' <= $1
               AND h.hour IN (SELECT hour FROM log_rollup_hours_done)
               AND h.service IN (SELECT service FROM w)
            UNION
            SELECT l.service, {norm_l}
              FROM unnest($4::timestamptz[], $5::timestamptz[]) AS u(s, e)
              CROSS JOIN LATERAL (SELECT service, message FROM log_lines
                                   WHERE level >= 4 AND ts >= u.s AND ts < u.e
                                     AND service IN (SELECT service FROM w)) l
         )
         SELECT w.service, w.message, w.count FROM w
          WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.service = w.service AND s.message = w.message)
          ORDER BY w.count DESC, w.service, w.message LIMIT 20",
        norm_l = norm.replace("left(split_part(message", "left(split_part(l.message"),
    );
    // The hours of the week before that are not rolled up (the one `from` falls in at least),
    // as spans: only their lines are read.
    let undone: Vec<OffsetDateTime> = sqlx::query_scalar(
        "SELECT u.h FROM generate_series(date_bin('1 hour', $1::timestamptz - interval '7 days', '2000-01-01 00:00+00'),
                                         $1::timestamptz, interval '1 hour') AS u(h)
          WHERE NOT EXISTS (SELECT 1 FROM log_rollup_hours_done d
                             WHERE d.hour = u.h AND d.hour + interval '1 hour' <= $1)
          ORDER BY 1",
    )
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    let (starts, ends) = hour_spans(&undone, from - Duration::days(7), from);
    Ok(sqlx::query_as::<_, NewError>(&sql)
        .bind(from)
        .bind(to)
        .bind(service)
        .bind(starts)
        .bind(ends)
        .fetch_all(conn)
        .await?)
}

/// Hour starts (sorted) as spans of consecutive hours, clipped to `[from, to)`. Pure.
fn hour_spans(
    hours: &[OffsetDateTime],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> (Vec<OffsetDateTime>, Vec<OffsetDateTime>) {
    let mut spans: Vec<(OffsetDateTime, OffsetDateTime)> = vec![];
    for &h in hours {
        match spans.last_mut() {
            Some(last) if last.1 == h => last.1 = h + Duration::HOUR,
            _ => spans.push((h, h + Duration::HOUR)),
        }
    }
    spans
        .into_iter()
        .map(|(s, e)| (s.max(from), e.min(to)))
        .filter(|(s, e)| s < e)
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn hours_make_spans() {
        let h = |n: i64| datetime!(2026-12-01 00:00 UTC) + Duration::hours(n);
        let (from, to) = (h(1) + Duration::minutes(30), h(6) + Duration::minutes(10));
        let (s, e) = hour_spans(&[h(0), h(1), h(2), h(4), h(6), h(7)], from, to);
        assert_eq!(s, [from, h(4), h(6)]);
        assert_eq!(e, [h(3), h(5), to]);
        assert_eq!(hour_spans(&[], from, to), (vec![], vec![]));
    }
}
