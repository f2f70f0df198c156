//! Log analytics of the last 6 hours of a busy service (figures only): a service writing RATE
//! lines/s (default 5,000) in the hour where the ranges start, about 6 hours ago, and in the
//! last 2 minutes, and 50 lines/s in between (whole hours and the current hour up to its live
//! round are each read as one stored row, whatever their lines). Everything is rolled up as the
//! server does; then ranges from a random point of the busy hour to 3 s ago (not shared between
//! requests: a range ending now would be) are answered with the minute tier, and, side by side,
//! without it (the hour's minutes read from the lines, as before the tier). Target: p95 ≤ 200 ms.
//!
//! Usage: DATABASE_URL=postgres://…/scratch opsdeck-log-minutes-bench [rate]
//! (see bench/log-minutes.sh)

use app::logs::analytics::{minute_partials, stats, StatsParams};
use app::logs::rollup::hour_of;
use bench::{percentile, Res};
use rand::{Rng, SeedableRng};
use std::time::Instant;
use time::{Duration, OffsetDateTime};

#[tokio::main]
async fn main() -> Res<()> {
    let rate: i64 = match std::env::args().nth(1) {
        Some(a) => a
            .parse()
            .map_err(|_| format!("rate: `{a}` is not a whole number"))?,
        None => 5_000,
    };
    let (pool, state) = bench::scratch().await?;
    let now = OffsetDateTime::now_utc();
    let busy_hour = hour_of(now - Duration::hours(6));
    let days: Vec<time::Date> = (0..=1).map(|d| (now - Duration::days(d)).date()).collect();
    app::logs::store::ensure_partitions(&state, &days).await?;
    let t = Instant::now();
    let mut lines = 0;
    // The busy hour in steps of 5 minutes (one statement each), the quiet hours, the last 2
    // minutes busy again.
    let mut stretches: Vec<(OffsetDateTime, OffsetDateTime, i64)> = (0..12)
        .map(|i| {
            let a = busy_hour + Duration::minutes(5 * i);
            (a, a + Duration::minutes(5), rate)
        })
        .collect();
    stretches.push((busy_hour + Duration::HOUR, now - Duration::minutes(2), 50));
    stretches.push((now - Duration::minutes(2), now, rate));
    for (a, b, per_second) in stretches {
        let n = ((b - a).as_seconds_f64() * per_second as f64) as i64;
        store(&pool, a, b, n).await?;
        lines += n;
    }
    println!(
        "stored {lines} lines of one service ({rate} lines/s in {busy_hour} and the last 2 minutes, 50 lines/s between) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    sqlx::query("ANALYZE log_lines").execute(&pool).await?;
    let t = Instant::now();
    let minutes = minute_partials(&pool, "web", busy_hour).await?;
    println!(
        "the busy hour's {} minutes read alone: {:.1} s (part of its roll-up)",
        minutes.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    // As the server's job would by now (the seeding takes minutes: the hour before this one
    // may have finished meanwhile).
    let r = app::logs::rollup_jobs::roll_up(&state, OffsetDateTime::now_utc()).await?;
    println!(
        "rolled up {} service-hours ({} lines) with their minutes in {:.1} s",
        r.hours,
        r.lines,
        t.elapsed().as_secs_f64()
    );
    let live = app::logs::rollup_jobs::roll_up_live(&state, OffsetDateTime::now_utc()).await?;
    println!("live round of the current hour: {live:?}");
    for (table, what) in [
        ("log_lines", "lines (table + indexes)"),
        ("log_rollup_hours", "hour rollups"),
        ("log_rollup_minutes", "minute rollups"),
    ] {
        let (bytes, rows): (i64, i64) = sqlx::query_as(&format!(
            "SELECT (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                     WHERE c.oid = '{table}'::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = '{table}'::regclass)),
                    (SELECT count(*) FROM {table})"
        ))
        .fetch_one(&pool)
        .await?;
        println!("{what}: {rows} rows, {:.1} MB", bytes as f64 / 1_048_576.0);
    }

    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let params = StatsParams::default();
    let mut run = |label: &'static str, rounds: usize| {
        let state = state.clone();
        let params = params.clone();
        let offsets: Vec<i64> = (0..rounds)
            .map(|_| rng.random_range(0..3_600_000))
            .collect();
        async move {
            let mut ms = vec![];
            let mut total = 0;
            for (i, off) in offsets.into_iter().enumerate() {
                let from = busy_hour + Duration::milliseconds(off);
                let to = OffsetDateTime::now_utc() - Duration::seconds(3);
                let t = Instant::now();
                let s = stats(&state, "", Some("web"), from, to, &params).await?;
                let took = t.elapsed().as_secs_f64() * 1000.0;
                total = s.total;
                if i > 0 {
                    ms.push(took);
                }
            }
            ms.sort_by(f64::total_cmp);
            println!(
                "{label}: {} ranges (the last one {total} lines): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
                ms.len(),
                percentile(&ms, 0.5),
                percentile(&ms, 0.95),
                ms.last().copied().unwrap_or(f64::NAN)
            );
            Ok::<_, Box<dyn std::error::Error>>(())
        }
    };
    // Without the tier first: the busy hour's minutes out of use, read from the lines.
    sqlx::query("UPDATE log_rollup_hours_done SET minutes = false")
        .execute(&pool)
        .await?;
    run("without the minute tier (the edge from the lines)", 11).await?;
    sqlx::query("UPDATE log_rollup_hours_done SET minutes = true")
        .execute(&pool)
        .await?;
    run("with the minute tier (target p95 ≤ 200 ms)", 51).await?;
    Ok(())
}

/// `n` request lines of service `web` spread evenly over [a, b): one in 50 an error (one of 20
/// messages), status, duration, one of 500 paths, 2,000 IPs and 10 agents.
async fn store(pool: &sqlx::PgPool, a: OffsetDateTime, b: OffsetDateTime, n: i64) -> Res<()> {
    if n <= 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO log_lines (ts, service, level, message, status, duration, path, ip, method, user_agent, source)
         SELECT $1::timestamptz + make_interval(secs => i * ($3 / $4::float8)),
                'web',
                CASE WHEN i % 50 = 0 THEN 4 ELSE 2 END,
                CASE WHEN i % 50 = 0 THEN 'upstream timed out after ' || (i % 997) || ' ms on pool ' || (i % 20)
                     ELSE 'request served' END,
                CASE WHEN i % 50 = 0 THEN 504 WHEN i % 17 = 0 THEN 404 ELSE 200 END,
                (i % 1999) / 1000.0,
                '/api/items/' || (i % 500),
                '10.' || (i % 7) || '.' || (i % 13) || '.' || (i % 2000 % 250),
                CASE WHEN i % 9 = 0 THEN 'POST' ELSE 'GET' END,
                'agent-' || (i % 10),
                'bench'
         FROM generate_series(0, $4 - 1) i",
    )
    .bind(a)
    .bind(b)
    .bind((b - a).as_seconds_f64())
    .bind(n)
    .execute(pool)
    .await?;
    Ok(())
}
