//! The public status page's data: only the checks marked public (by their public names), their
//! daily uptime over 90 UTC days with maintenance excluded, and open incidents that were given
//! a public title.

use super::*;
use crate::alerts::status::{self, StatusCheck, StatusIncident, StatusPage};
use crate::timestamp::Timestamp;

pub async fn status_page(pool: &PgPool, title: &str, now: OffsetDateTime) -> AppResult<StatusPage> {
    let checks = sqlx::query!(
        "SELECT id, coalesce(nullif(public_name, ''), name) AS \"name!\", name AS internal, up
         FROM health_checks WHERE public AND NOT paused ORDER BY 2"
    )
    .fetch_all(pool)
    .await?;
    let today = now.date();
    let days: Vec<time::Date> = (0..status::DAYS as i64)
        .rev()
        .map(|d| today - Duration::days(d))
        .collect();
    let from = days[0].midnight().assume_utc();
    let ids: Vec<i64> = checks.iter().map(|c| c.id).collect();
    let (names, starts, ends) = maintenance_spans(pool, from, now).await?;
    // The recent days from the results (maintenance excluded), older ones from the daily
    // counts kept when their results expired; a day in both is added up.
    let counts = sqlx::query!(
        r#"SELECT r.check_id AS "id!", (r.at AT TIME ZONE 'UTC')::date AS "day!",
                  count(*) FILTER (WHERE r.up) AS "up!", count(*) AS "total!"
           FROM health_results r JOIN health_checks c ON c.id = r.check_id
           WHERE r.check_id = ANY($4) AND r.at >= $5
             AND NOT EXISTS (SELECT 1 FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS m(name, s, e)
                             WHERE m.name = c.name AND r.at >= m.s AND r.at < m.e)
           GROUP BY 1, 2
           UNION ALL
           SELECT check_id, day, up, total FROM health_daily WHERE check_id = ANY($4) AND day >= $6"#,
        &names,
        &starts,
        &ends,
        &ids,
        from,
        days[0]
    )
    .fetch_all(pool)
    .await?;
    let mut by_check: HashMap<i64, Vec<(time::Date, i64, i64)>> = HashMap::new();
    for c in counts {
        by_check
            .entry(c.id)
            .or_default()
            .push((c.day, c.up, c.total));
    }
    let checks: Vec<StatusCheck> = checks
        .into_iter()
        .map(|c| {
            let (cells, uptime) =
                status::cells(&days, by_check.get(&c.id).map(Vec::as_slice).unwrap_or(&[]));
            StatusCheck {
                name: c.name,
                state: Liveness::from_up(c.up),
                uptime_90d: uptime,
                days: cells,
            }
        })
        .collect();
    let incidents = sqlx::query!(
        r#"SELECT public_title AS "title!", started_at, acked_at IS NOT NULL AS "acked!",
                  ended_at IS NOT NULL AS "ended!"
           FROM incidents WHERE closed_at IS NULL AND public_title IS NOT NULL
           ORDER BY started_at DESC LIMIT 20"#
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|i| StatusIncident {
        title: i.title,
        started_at: Timestamp(i.started_at),
        acknowledged: i.acked,
        resolved: i.ended,
    })
    .collect();
    let states: Vec<Liveness> = checks.iter().map(|c| c.state).collect();
    Ok(StatusPage {
        title: title.to_string(),
        overall: status::overall(&states).to_string(),
        updated_at: Timestamp(now),
        checks,
        incidents,
    })
}
