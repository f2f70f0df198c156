//! Forecast benchmark (figures only): 100 hosts × 10 resources (CPU, memory, 8 disks) with 14
//! days of hourly rollups, some trending, some with a daily cycle; then the forecasts of all of
//! them, as `GET /api/v1/forecasts` computes them, timed.
//!
//! Usage: DATABASE_URL=postgres://…/scratch opsdeck-forecast-bench   (see bench/forecast.sh)

use bench::Res;
use std::time::Instant;
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> Res<()> {
    let (pool, _) = bench::scratch().await?;
    let t = Instant::now();
    sqlx::query(
        "INSERT INTO metric_series (host, metric, labels)
         SELECT 'host-' || h, m, CASE WHEN m = 'disk_used_percent' THEN jsonb_build_object('mount', '/d' || d) ELSE '{}' END
         FROM generate_series(1, 100) h,
              (VALUES ('cpu_usage_percent', 0), ('memory_used_percent', 0),
                      ('disk_used_percent', 0), ('disk_used_percent', 1), ('disk_used_percent', 2), ('disk_used_percent', 3),
                      ('disk_used_percent', 4), ('disk_used_percent', 5), ('disk_used_percent', 6), ('disk_used_percent', 7)) AS r(m, d)
         ON CONFLICT DO NOTHING",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO metric_rollup_1h (series_id, bucket, sum, count, min, max, last_ts, last_value)
         SELECT s.id, b, v * 720, 720, v, v, b, v
         FROM metric_series s,
              generate_series(date_trunc('hour', now()) - interval '14 days', date_trunc('hour', now()) - interval '1 hour', interval '1 hour') b,
              LATERAL (SELECT CASE WHEN s.metric = 'cpu_usage_percent'
                                   THEN 40 + 25 * sin(extract(epoch FROM b) / 86400 * 2 * pi()) + (s.id % 7)
                                   ELSE 20 + (s.id % 50) + (s.id % 5) * extract(epoch FROM b - (now() - interval '14 days')) / 86400
                              END AS v) x
         ON CONFLICT DO NOTHING",
    )
    .execute(&pool)
    .await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM metric_rollup_1h")
        .fetch_one(&pool)
        .await?;
    println!(
        "set-up: 1000 series, {rows} hourly rollups in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut ms = vec![];
    let mut n = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let f = app::forecast::service::forecasts(&pool, None, OffsetDateTime::now_utc()).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        n = f.len();
    }
    ms.sort_by(f64::total_cmp);
    let crossing = app::forecast::service::forecasts(&pool, None, OffsetDateTime::now_utc())
        .await?
        .iter()
        .filter(|r| r.eta_80.is_some())
        .count();
    println!(
        "forecasts of {n} resources (100 hosts × 10) from 14 days of hourly rollups: p50 {:.0} ms, max {:.0} ms (7 runs); {crossing} cross 80 % within a year",
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    );
    Ok(())
}
