//! Incident context benchmark (figures only): 5 M log lines of 3 services stored over 8 days
//! (rolled up by the hour as the server does), 5 hosts with 10 series each at 5 s for the last
//! 3 hours, an incident over them whose window is 2 hours; then its page's data built again
//! and again as the page builds it: the detail (timeline, each busy service's logs against a
//! day and a week before, new errors, slowest requests) and the 5 hosts' CPU, memory and disk
//! charts. The target: p95 ≤ 300 ms.
//!
//! Usage: DATABASE_URL=postgres://…/scratch opsdeck-incident-bench   (see bench/incidents.sh)

use bench::{percentile, Res};
use std::time::Instant;
use time::{Duration, OffsetDateTime};

const LINES: i64 = 5_000_000;
const HOSTS: usize = 5;

#[tokio::main]
async fn main() -> Res<()> {
    let (pool, state) = bench::scratch().await?;
    let now = OffsetDateTime::now_utc();
    let hosts: Vec<String> = (0..HOSTS).map(|h| format!("web-{h}")).collect();
    // A database seeded by an earlier run is used again (the incident keeps its window).
    let seeded: Option<i64> = sqlx::query_scalar("SELECT id FROM incidents WHERE title = 'bench'")
        .fetch_optional(&pool)
        .await?;
    let id = match seeded {
        Some(id) => {
            println!("using the data of an earlier run (incident {id})");
            id
        }
        None => seed(&pool, &state, &hosts, now).await?,
    };
    let (start, end): (OffsetDateTime, OffsetDateTime) =
        sqlx::query_as("SELECT started_at, ended_at FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await?;
    measure(&state, id, &hosts, start, end).await
}

async fn seed(
    pool: &sqlx::PgPool,
    state: &app::state::AppState,
    hosts: &[String],
    now: OffsetDateTime,
) -> Res<i64> {
    let t = Instant::now();
    let days: Vec<time::Date> = (0..=9).map(|d| (now - Duration::days(d)).date()).collect();
    app::logs::store::ensure_partitions(state, &days).await?;
    // 5 M lines over 8 days: a request line with status, duration, path and IP, one in 40 an
    // error (one of 30 messages), one in 5,000 a message of its own.
    sqlx::query(
        "INSERT INTO log_lines (ts, service, level, message, status, duration, path, ip, method, source)
         SELECT $1::timestamptz - make_interval(secs => i * (8 * 86400.0 / $2)),
                'svc-' || (i % 3),
                CASE WHEN i % 40 = 0 THEN 4 ELSE 2 END,
                CASE WHEN i % 5000 = 0 THEN 'rare failure ' || md5(i::text)
                     WHEN i % 40 = 0 THEN 'db timeout on query ' || (i % 30)
                     ELSE 'request served' END,
                CASE WHEN i % 40 = 0 THEN 500 ELSE 200 END,
                (i % 997) / 400.0,
                '/api/items/' || (i % 50),
                '10.0.' || (i % 7) || '.' || (i % 200),
                'GET', 'bench'
         FROM generate_series(1, $2) i",
    )
    .bind(now)
    .bind(LINES)
    .execute(pool)
    .await?;
    println!(
        "stored {LINES} log lines (3 services, 8 days) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let r = app::logs::rollup_jobs::roll_up(state, now).await?;
    println!(
        "rolled up {} service-hours in {:.1} s",
        r.hours,
        t.elapsed().as_secs_f64()
    );
    // 5 hosts × 10 series every 5 s over the last 3 hours.
    let t = Instant::now();
    for host in hosts {
        let mut samples = vec![];
        for step in 0..(3 * 720) {
            let ts = app::timestamp::Timestamp(now - Duration::seconds(5 * step));
            for (metric, labels, v) in [
                ("cpu_usage_percent", vec![], 40.0 + (step % 60) as f64),
                ("memory_used_percent", vec![], 60.0 + (step % 20) as f64),
                ("load_average_1m", vec![], 1.0 + (step % 5) as f64),
                ("disk_used_percent", vec![("mount", "/")], 70.0),
                ("disk_used_percent", vec![("mount", "/var")], 50.0),
                ("disk_read_bytes_per_second", vec![("device", "vda")], 1e6),
                ("disk_write_bytes_per_second", vec![("device", "vda")], 2e6),
                (
                    "network_receive_bytes_per_second",
                    vec![("interface", "eth0")],
                    3e5,
                ),
                (
                    "network_transmit_bytes_per_second",
                    vec![("interface", "eth0")],
                    4e5,
                ),
                ("tcp_connections", vec![("state", "established")], 120.0),
            ] {
                samples.push(app::metrics::Sample {
                    metric: metric.into(),
                    labels: labels
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ts,
                    value: v,
                });
            }
        }
        for chunk in samples.chunks(5000) {
            app::metrics::service::ingest(
                state,
                &app::metrics::IngestBatch {
                    host: host.clone(),
                    samples: chunk.to_vec(),
                },
                app::metrics::service::Origin::Agent,
            )
            .await?;
        }
    }
    println!(
        "stored {} samples ({HOSTS} hosts × 10 series × 3 h at 5 s) in {:.1} s",
        HOSTS * 10 * 3 * 720,
        t.elapsed().as_secs_f64()
    );
    // The incident: started 61 minutes ago, ended a minute ago (a window of 2 hours, not
    // ending now: nothing of it is served from the answers of this second).
    let (start, end) = (now - Duration::minutes(61), now - Duration::minutes(1));
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO incidents (title, severity, hosts, started_at, last_event_at, ended_at)
         VALUES ('bench', 'critical', $1, $2, $3, $3) RETURNING id",
    )
    .bind(hosts)
    .bind(start)
    .bind(end)
    .fetch_one(pool)
    .await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(id)
}

/// Builds the incident page's data 31 times (the first apart), then times its parts.
async fn measure(
    state: &app::state::AppState,
    id: i64,
    hosts: &[String],
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Res<()> {
    let (from, to) = (
        (start - Duration::hours(1)).unix_timestamp().to_string(),
        end.unix_timestamp().to_string(),
    );
    let mut ms = vec![];
    let mut detail_ms = vec![];
    for round in 0..31 {
        let t = Instant::now();
        let d = app::incidents::service::detail(state, id, OffsetDateTime::now_utc()).await?;
        let detail = t.elapsed().as_secs_f64() * 1000.0;
        let mut charts = 0;
        for host in hosts {
            let c = app::metrics::service::host_charts_of(
                state,
                host,
                (None, Some(&from), Some(&to)),
                true,
            )
            .await?;
            charts += c.charts.len();
        }
        let all = t.elapsed().as_secs_f64() * 1000.0;
        if round == 0 {
            println!(
                "first build: {all:.0} ms ({} services compared, {} new errors, {} slow requests, {charts} charts)",
                d.context.logs.len(),
                d.context.new_errors.len(),
                d.context.slow_requests.len()
            );
        } else {
            ms.push(all);
            detail_ms.push(detail);
        }
    }
    for v in [&mut ms, &mut detail_ms] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "incident page data (detail + {HOSTS} hosts' charts), 30 builds: p50 {:.0} ms, p95 {:.0} ms (target p95 ≤ 300 ms)",
        percentile(&ms, 0.5),
        percentile(&ms, 0.95)
    );
    println!(
        "  of which the detail (timeline, logs against a day and a week before, new errors): p50 {:.0} ms, p95 {:.0} ms",
        percentile(&detail_ms, 0.5),
        percentile(&detail_ms, 0.95)
    );
    // Its parts, each 10 times: one service's analytics over the window, the new errors.
    let (from, to) = (start - Duration::hours(1), end);
    let p = app::logs::analytics::StatsParams::default();
    let mut parts = vec![];
    for _ in 0..10 {
        let t = Instant::now();
        app::logs::analytics::stats(state, "", Some("svc-0"), from, to, &p).await?;
        let stats = t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        let mut conn = state.pool.acquire().await?;
        app::incidents::service::new_errors(&mut conn, from, to, None).await?;
        parts.push((stats, t.elapsed().as_secs_f64() * 1000.0));
    }
    let mut a: Vec<f64> = parts.iter().map(|p| p.0).collect();
    let mut n: Vec<f64> = parts.iter().map(|p| p.1).collect();
    a.sort_by(f64::total_cmp);
    n.sort_by(f64::total_cmp);
    println!(
        "  parts, p50 of 10: one service's analytics over the window {:.0} ms; new errors {:.0} ms",
        percentile(&a, 0.5),
        percentile(&n, 0.5)
    );
    Ok(())
}
