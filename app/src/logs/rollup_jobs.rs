//! The roll-up jobs: finished hours from their lines, days from their hours, the current hour
//! as it goes, and a self-check that rebuilds what a crash or a missed write left wrong. Every
//! write is one transaction with the marks it takes, so a process killed at any point leaves
//! marks behind for the next round, never a stale roll-up that looks current.

use super::analytics::{minute_partials, raw_partial, Scope};
use super::rollup::{self, Partial, KEYS_KEPT};
use crate::error::AppResult;
use crate::state::AppState;
use crate::timestamp::Timestamp;
use std::collections::BTreeSet;
use time::{Date, Duration, OffsetDateTime};

/// `s(service)`: the services with lines in the partition `name` (a trailing NULL row ends
/// it), found with one index probe per service rather than a pass over the partition.
fn partition_services(name: &str) -> String {
    format!(
        "WITH RECURSIVE s(service) AS (
            (SELECT service FROM {name} ORDER BY service LIMIT 1)
            UNION ALL
            SELECT (SELECT l.service FROM {name} l WHERE l.service > s.service ORDER BY l.service LIMIT 1)
            FROM s WHERE s.service IS NOT NULL
         )"
    )
}

/// What a round of `roll_up` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct RollupReport {
    /// (service, hour) pairs rolled up from the lines.
    pub hours: usize,
    /// Lines they hold.
    pub lines: i64,
    /// (service, day) pairs merged from their hours.
    pub days: usize,
}

/// Rolls up the finished hours, then merges the finished days from them:
/// 1. every hour of a stored day that was never rolled up gets a mark for each service with
///    lines in it (found by index probes, not a pass over the partition);
/// 2. every marked (service, hour) is read from the lines and stored in `log_rollup_hours`
///    (marks come from step 1, from late writes and from retention);
/// 3. every finished day that is new, or had an hour rolled up again, is merged from its hours
///    into `log_rollups`.
pub async fn roll_up(state: &AppState, now: OffsetDateTime) -> AppResult<RollupReport> {
    let partitions = state.runtime.log_partitions.existing(&state.pool).await?;
    mark_due_hours(state, &partitions, now).await?;
    let mut report = RollupReport::default();
    let mut touched: BTreeSet<(Date, String)> = Default::default();
    for (service, hour) in pending_hours(state, now).await? {
        if let Some(lines) = roll_up_hour(state, &service, hour).await? {
            report.hours += 1;
            report.lines += lines;
            touched.insert((hour.to_offset(time::UtcOffset::UTC).date(), service));
        }
    }
    let new_days = unmerged_days(state, &partitions, now, &mut touched).await?;
    for (day, service) in touched {
        if rollup::rollable(rollup::day_start(day), Duration::DAY, now) {
            merge_day(state, day, &service).await?;
            report.days += 1;
        }
    }
    // Only now is a new day whole: every service's row is in.
    if !new_days.is_empty() {
        sqlx::query(
            "INSERT INTO log_rollup_days (day) SELECT unnest($1::date[]) ON CONFLICT DO NOTHING",
        )
        .bind(&new_days)
        .execute(&state.pool)
        .await?;
    }
    Ok(report)
}

/// Step 1: every hour of a stored day that was never rolled up, and is over, gets a mark for
/// each service with lines in it (found by index probes, not a pass over the partition).
async fn mark_due_hours(
    state: &AppState,
    partitions: &[(String, Date)],
    now: OffsetDateTime,
) -> AppResult<()> {
    let pool = &state.pool;
    let done: std::collections::HashSet<OffsetDateTime> =
        sqlx::query_scalar("SELECT hour FROM log_rollup_hours_done")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    for (name, day) in partitions {
        let start = rollup::day_start(*day);
        let due: Vec<OffsetDateTime> = (0..24)
            .map(|h| start + Duration::hours(h))
            .filter(|h| !done.contains(h) && rollup::rollable(*h, rollup::HOUR, now))
            .collect();
        if due.is_empty() {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::query(&format!(
            "{}
             INSERT INTO log_rollup_pending (service, day, hour)
             SELECT s.service, $1::date, h FROM s, unnest($2::timestamptz[]) h
             WHERE s.service IS NOT NULL AND EXISTS (
                SELECT 1 FROM {name} l WHERE l.service = s.service AND l.ts >= h AND l.ts < h + interval '1 hour')",
            partition_services(name)
        ))
        .bind(day)
        .bind(&due)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO log_rollup_hours_done (hour) SELECT unnest($1::timestamptz[]) ON CONFLICT DO NOTHING")
            .bind(&due)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// The marked (service, hour) pairs that are over long enough to be rolled up.
async fn pending_hours(
    state: &AppState,
    now: OffsetDateTime,
) -> AppResult<Vec<(String, OffsetDateTime)>> {
    let todo = sqlx::query!(
        "SELECT DISTINCT service, hour FROM log_rollup_pending WHERE hour <= $1 ORDER BY hour, service",
        now - rollup::HOUR
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(todo
        .into_iter()
        .filter(|r| rollup::rollable(r.hour, rollup::HOUR, now))
        .map(|r| (r.service, r.hour))
        .collect())
}

/// Step 2, for one marked (service, hour): read from the lines and stored in
/// `log_rollup_hours`, with the marks taken and the day taken out of use, in one transaction.
/// Until the day is merged again (by this round, or the next if this process dies first),
/// ranges read the day's hours instead of a day row that no longer holds what its hours say.
/// None when another process took the marks first.
pub async fn roll_up_hour(
    state: &AppState,
    service: &str,
    hour: OffsetDateTime,
) -> AppResult<Option<i64>> {
    let pool = &state.pool;
    let mut tx = pool.begin().await?;
    // Only marks of committed writes are visible here, so every line they stand for is read
    // below; marks of writes still running stay for the next round.
    let taken = sqlx::query("DELETE FROM log_rollup_pending WHERE service = $1 AND hour = $2")
        .bind(service)
        .bind(hour)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if taken == 0 {
        return Ok(None);
    }
    // The day's row no longer holds what this hour will say: out of use until merged again.
    sqlx::query("DELETE FROM log_rollup_days WHERE day = $1")
        .bind(hour.to_offset(time::UtcOffset::UTC).date())
        .execute(&mut *tx)
        .await?;
    let part = raw_partial(pool, Scope::new(Some(service), hour, hour + rollup::HOUR)).await?;
    let lines = part.lines();
    // Its minutes, for ranges that start or end inside it.
    let minutes = minute_partials(pool, service, hour).await?;
    sqlx::query(
        "DELETE FROM log_rollup_minutes WHERE service = $1 AND minute >= $2 AND minute < $3",
    )
    .bind(service)
    .bind(hour)
    .bind(hour + rollup::HOUR)
    .execute(&mut *tx)
    .await?;
    if !minutes.is_empty() {
        let (at, parts): (Vec<OffsetDateTime>, Vec<&Partial>) =
            minutes.iter().map(|(m, p)| (*m, p)).unzip();
        sqlx::query(
            "INSERT INTO log_rollup_minutes (service, minute, lines, data)
             SELECT $1, m, n, d FROM UNNEST($2::timestamptz[], $3::bigint[], $4::jsonb[]) AS u(m, n, d)",
        )
        .bind(service)
        .bind(&at)
        .bind(parts.iter().map(|p| p.lines()).collect::<Vec<_>>())
        .bind(parts.iter().map(sqlx::types::Json).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    if lines == 0 {
        sqlx::query("DELETE FROM log_rollup_hours WHERE service = $1 AND hour = $2")
            .bind(service)
            .bind(hour)
            .execute(&mut *tx)
            .await?;
    } else {
        sqlx::query(
            "INSERT INTO log_rollup_hours (service, hour, lines, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (service, hour) DO UPDATE SET lines = excluded.lines, data = excluded.data, computed_at = now()",
        )
        .bind(service)
        .bind(hour)
        .bind(lines)
        .bind(sqlx::types::Json(&part))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Some(lines))
}

/// Step 3's list: finished days not (or no longer) whole in `log_rollup_days`, whose every
/// service (with hours, or with a day row left from before) joins `touched`.
async fn unmerged_days(
    state: &AppState,
    partitions: &[(String, Date)],
    now: OffsetDateTime,
    touched: &mut BTreeSet<(Date, String)>,
) -> AppResult<Vec<Date>> {
    let pool = &state.pool;
    let days_done: std::collections::HashSet<Date> =
        sqlx::query_scalar("SELECT day FROM log_rollup_days")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let new_days: Vec<Date> = partitions
        .iter()
        .map(|(_, d)| *d)
        .filter(|d| {
            !days_done.contains(d) && rollup::rollable(rollup::day_start(*d), Duration::DAY, now)
        })
        .collect();
    for day in &new_days {
        let (a, b) = rollup::day_span(*day);
        let services: Vec<String> = sqlx::query_scalar(
            "SELECT service FROM log_rollup_hours WHERE hour >= $1 AND hour < $2
             UNION SELECT service FROM log_rollups WHERE day = $3",
        )
        .bind(a)
        .bind(b)
        .bind(day)
        .fetch_all(pool)
        .await?;
        touched.extend(services.into_iter().map(|s| (*day, s)));
    }
    Ok(new_days)
}

/// Step 3, for one (day, service): its hours merged into `log_rollups` (the row removed when the
/// day has no hours left).
pub async fn merge_day(state: &AppState, day: Date, service: &str) -> AppResult<()> {
    let pool = &state.pool;
    let (a, b) = rollup::day_span(day);
    let hours = sqlx::query_scalar::<_, sqlx::types::Json<Partial>>(
        "SELECT data FROM log_rollup_hours WHERE service = $1 AND hour >= $2 AND hour < $3",
    )
    .bind(service)
    .bind(a)
    .bind(b)
    .fetch_all(pool)
    .await?;
    let mut part = Partial::default();
    for h in &hours {
        part.merge(&h.0);
    }
    part.trim(KEYS_KEPT as usize);
    if hours.is_empty() {
        sqlx::query("DELETE FROM log_rollups WHERE service = $1 AND day = $2")
            .bind(service)
            .bind(day)
            .execute(pool)
            .await?;
    } else {
        sqlx::query(
            "INSERT INTO log_rollups (service, day, lines, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (service, day) DO UPDATE SET lines = excluded.lines, data = excluded.data, computed_at = now()",
        )
        .bind(service)
        .bind(day)
        .bind(part.lines())
        .bind(sqlx::types::Json(&part))
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// What a round of `roll_up_live` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct LiveReport {
    /// Services brought up to `upto`.
    pub services: usize,
    /// Of which rebuilt from the start of the hour (late lines had arrived).
    pub rebuilt: usize,
    pub upto: Option<Timestamp>,
}

/// Brings the current hour's live rollup of every service up to `now - LIVE_LAG`: each
/// service's partial grows by the lines since the last round, or is rebuilt from the hour's
/// start when late lines marked the hour. One transaction, so that readers see every service at
/// the same `upto` or none at the new one.
pub async fn roll_up_live(state: &AppState, now: OffsetDateTime) -> AppResult<LiveReport> {
    let pool = &state.pool;
    let upto = now - rollup::LIVE_LAG;
    let hour = rollup::hour_of(upto);
    let mut report = LiveReport::default();
    let day = hour.to_offset(time::UtcOffset::UTC).date();
    let Some((name, _)) = state
        .runtime
        .log_partitions
        .existing(pool)
        .await?
        .into_iter()
        .find(|(_, d)| *d == day)
    else {
        return Ok(report);
    };
    let services: Vec<String> = sqlx::query_scalar(&format!(
        "{}
         SELECT s.service FROM s WHERE s.service IS NOT NULL AND EXISTS (
            SELECT 1 FROM {name} l WHERE l.service = s.service AND l.ts >= $1 AND l.ts < $2)",
        partition_services(&name)
    ))
    .bind(hour)
    .bind(upto)
    .fetch_all(pool)
    .await?;
    let mut tx = pool.begin().await?;
    for service in &services {
        // Marks of committed late writes: their lines are read below (as in `roll_up`).
        let late =
            sqlx::query("DELETE FROM log_rollup_pending WHERE service = $1 AND hour = $2 AND live")
                .bind(service)
                .bind(hour)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let prev = sqlx::query!(
            r#"SELECT upto, data AS "data: sqlx::types::Json<Partial>"
               FROM log_rollup_live WHERE service = $1 AND hour = $2"#,
            service,
            hour
        )
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| (r.upto, r.data));
        let part = match prev {
            Some((since, data)) if late == 0 && since <= upto => {
                let mut p = data.0;
                p.merge(&raw_partial(pool, Scope::new(Some(service), since, upto)).await?);
                p.trim(KEYS_KEPT as usize);
                p
            }
            _ => {
                report.rebuilt += 1;
                raw_partial(pool, Scope::new(Some(service), hour, upto)).await?
            }
        };
        sqlx::query(
            "INSERT INTO log_rollup_live (service, hour, upto, lines, data) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (service, hour) DO UPDATE SET upto = excluded.upto, lines = excluded.lines, data = excluded.data",
        )
        .bind(service)
        .bind(hour)
        .bind(upto)
        .bind(part.lines())
        .bind(sqlx::types::Json(&part))
        .execute(&mut *tx)
        .await?;
        report.services += 1;
    }
    sqlx::query(
        "INSERT INTO log_rollup_live_rounds (hour, upto) VALUES ($1, $2)
         ON CONFLICT (hour) DO UPDATE SET upto = excluded.upto",
    )
    .bind(hour)
    .bind(upto)
    .execute(&mut *tx)
    .await?;
    // Hours long over are in log_rollup_hours by now.
    for table in ["log_rollup_live", "log_rollup_live_rounds"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE hour < $1"))
            .bind(hour - Duration::hours(2))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    report.upto = Some(Timestamp(upto));
    Ok(report)
}

/// What a self-check found.
#[derive(Debug, Default, serde::Serialize)]
pub struct SelfCheckReport {
    /// (service, hour) roll-ups compared with their lines.
    pub checked: usize,
    /// Of those, how many differed and were marked to be rebuilt.
    pub repaired: usize,
}

/// Compares the roll-ups of the hours since `since` (finished hours and the current hour's live
/// round) with their lines, service by service: one whose line count differs, and that no mark
/// already covers, is marked to be rolled up again (its day merged again), and counted in
/// `opsdeck_log_rollup_repairs_total`. A safety net: the rounds themselves keep roll-ups equal
/// to their lines; this catches what they could not (a write committed too late to be seen, a
/// row edited by hand).
pub async fn self_check(
    state: &AppState,
    since: OffsetDateTime,
    now: OffsetDateTime,
) -> AppResult<SelfCheckReport> {
    let pool = &state.pool;
    let since = rollup::hour_of(since);
    // Finished hours: stored counts against the lines, for every service with either.
    let finished: Vec<(String, OffsetDateTime, i64, i64)> = sqlx::query!(
        r#"WITH done AS (SELECT hour FROM log_rollup_hours_done WHERE hour >= $1 AND hour + interval '1 hour' <= $2),
              stored AS (SELECT h.service, h.hour, h.lines FROM log_rollup_hours h JOIN done USING (hour)),
              actual AS (SELECT l.service, date_trunc('hour', l.ts, 'UTC') AS hour, count(*) AS n
                         FROM log_lines l WHERE l.ts >= $1 AND l.ts < $2
                           AND date_trunc('hour', l.ts, 'UTC') IN (SELECT hour FROM done)
                         GROUP BY 1, 2)
         SELECT coalesce(s.service, a.service) AS "service!", coalesce(s.hour, a.hour) AS "hour!",
                coalesce(s.lines, 0) AS "stored!", coalesce(a.n, 0) AS "actual!"
         FROM stored s FULL JOIN actual a ON a.service = s.service AND a.hour = s.hour
         WHERE NOT EXISTS (SELECT 1 FROM log_rollup_pending p
                           WHERE p.service = coalesce(s.service, a.service) AND p.hour = coalesce(s.hour, a.hour))"#,
        since,
        rollup::hour_of(now)
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.service, r.hour, r.stored, r.actual))
    .collect();
    // The live round: each service's row against its lines up to the round.
    let live: Vec<(String, OffsetDateTime, i64, i64)> = sqlx::query!(
        r#"WITH r AS (SELECT hour, upto FROM log_rollup_live_rounds WHERE hour >= $1),
              stored AS (SELECT l.service, l.hour, l.lines FROM log_rollup_live l JOIN r ON r.hour = l.hour AND r.upto = l.upto),
              actual AS (SELECT l.service, r.hour, count(*) AS n FROM r
                         JOIN log_lines l ON l.ts >= r.hour AND l.ts < r.upto GROUP BY 1, 2)
         SELECT coalesce(s.service, a.service) AS "service!", coalesce(s.hour, a.hour) AS "hour!",
                coalesce(s.lines, 0) AS "stored!", coalesce(a.n, 0) AS "actual!"
         FROM stored s FULL JOIN actual a ON a.service = s.service AND a.hour = s.hour
         WHERE NOT EXISTS (SELECT 1 FROM log_rollup_pending p
                           WHERE p.service = coalesce(s.service, a.service) AND p.hour = coalesce(s.hour, a.hour))"#,
        since
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.service, r.hour, r.stored, r.actual))
    .collect();
    let mut report = SelfCheckReport {
        checked: finished.len() + live.len(),
        ..Default::default()
    };
    let wrong = |rows: &[(String, OffsetDateTime, i64, i64)]| -> Vec<(String, OffsetDateTime)> {
        rows.iter()
            .filter(|(_, _, stored, actual)| stored != actual)
            .map(|(s, h, _, _)| (s.clone(), *h))
            .collect()
    };
    for (rows, is_live) in [(wrong(&finished), false), (wrong(&live), true)] {
        if rows.is_empty() {
            continue;
        }
        for (service, hour) in &rows {
            tracing::warn!(%service, %hour, live = is_live, "log roll-up differs from its lines; rebuilding it");
        }
        let (services, hours): (Vec<String>, Vec<OffsetDateTime>) = rows.iter().cloned().unzip();
        sqlx::query(
            "INSERT INTO log_rollup_pending (service, day, hour, live)
             SELECT s, (h AT TIME ZONE 'UTC')::date, h, $3 FROM unnest($1::text[], $2::timestamptz[]) AS u(s, h)",
        )
        .bind(&services)
        .bind(&hours)
        .bind(is_live)
        .execute(pool)
        .await?;
        report.repaired += rows.len();
    }
    state.runtime.telemetry.repaired(report.repaired as u64);
    Ok(report)
}
