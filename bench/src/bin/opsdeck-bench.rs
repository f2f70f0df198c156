//! Metrics benchmarks, printed as figures (nothing is asserted): ingest through the real HTTP
//! path against PostgreSQL `COPY` of the same rows in the same run, a 30-day series query from
//! 5-second data, and the server render of a host page with all charts for 24 h.
//!
//! Usage: DATABASE_URL=postgres://…/scratch opsdeck-bench [samples]   (see bench/metrics.sh)

use app::auth::{service::insert_user, tokens, Role};
use app::state::AppState;
use serde_json::json;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn timed<F, Fut>(runs: usize, mut f: F) -> Res<Vec<f64>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Res<()>>,
{
    f().await?; // warm-up
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

fn report(name: &str, ms: &[f64]) {
    println!(
        "{name}: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} runs)",
        percentile(ms, 0.5),
        percentile(ms, 0.95),
        ms.last().copied().unwrap_or(f64::NAN),
        ms.len()
    );
}

/// Fills `days` of 5-second data for some series of `host` straight in SQL (older than the
/// ingest API accepts), with rollups computed from it.
async fn fill_history(
    pool: &sqlx::PgPool,
    state: &AppState,
    host: &str,
    metrics: &[(&str, &str)],
    days: i64,
) -> Res<()> {
    let now = OffsetDateTime::now_utc();
    let start = now - time::Duration::days(days);
    let dates: Vec<time::Date> = (0..=days + 1)
        .filter_map(|d| start.date().checked_add(time::Duration::days(d)))
        .collect();
    app::metrics::service::ensure_partitions(state, &dates).await?;
    sqlx::query("INSERT INTO hosts (name, source, last_seen) VALUES ($1, 'agent', now()) ON CONFLICT (name) DO UPDATE SET last_seen = now()")
        .bind(host)
        .execute(pool)
        .await?;
    for (metric, labels) in metrics {
        let id: i32 = sqlx::query_scalar(
            "INSERT INTO metric_series (host, metric, labels) VALUES ($1, $2, $3::jsonb)
             ON CONFLICT (host, metric, labels) DO UPDATE SET metric = excluded.metric RETURNING id",
        )
        .bind(host)
        .bind(metric)
        .bind(labels)
        .fetch_one(pool)
        .await?;
        sqlx::query(
            "INSERT INTO metric_samples (series_id, ts, value)
             SELECT $1, t, 50 + 30 * sin(extract(epoch FROM t) / 3600) + random() * 10
             FROM generate_series($2::timestamptz, $3::timestamptz, interval '5 s') AS t
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(start)
        .bind(now)
        .execute(pool)
        .await?;
        for (table, unit) in [("metric_rollup_1m", "minute"), ("metric_rollup_1h", "hour")] {
            sqlx::query(&format!(
                "INSERT INTO {table} (series_id, bucket, sum, count, min, max, last_ts, last_value)
                 SELECT series_id, date_trunc('{unit}', ts, 'UTC'), sum(value), count(*), min(value), max(value), max(ts),
                        (array_agg(value ORDER BY ts DESC))[1]
                 FROM metric_samples WHERE series_id = $1 GROUP BY 1, 2
                 ON CONFLICT DO NOTHING"
            ))
            .bind(id)
            .execute(pool)
            .await?;
        }
        sqlx::query(
            "INSERT INTO metric_latest (series_id, ts, value)
             SELECT series_id, ts, value FROM metric_samples WHERE series_id = $1 ORDER BY ts DESC LIMIT 1
             ON CONFLICT (series_id) DO NOTHING",
        )
        .bind(id)
        .execute(pool)
        .await?;
    }
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Res<()> {
    let total: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL to an empty scratch database")?;
    let mut cfg = app::config::Config::with_database_url(url.clone());
    cfg.collect_interval = app::config::Interval(0);
    cfg.max_connections = 16;
    let pool = server::connect(&cfg).await?;
    server::MIGRATOR.run(&pool).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = AppState::new(server::leptos_options(addr), pool.clone(), cfg);
    tokio::spawn(server::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    // ---- ingest through POST /api/v1/ingest/metrics vs COPY ----
    let (_, token) = tokens::create(
        &pool,
        &format!("bench-{}", std::process::id()),
        "ingest",
        None,
    )
    .await?;
    let hosts = 50usize;
    let series_per_host = 20usize;
    let per_batch_ts = 500usize;
    let timestamps = total / (hosts * series_per_host);
    let start = OffsetDateTime::now_utc() - time::Duration::seconds(5 * timestamps as i64 + 60);
    let mut bodies = Vec::new();
    for h in 0..hosts {
        for chunk in (0..timestamps).collect::<Vec<_>>().chunks(per_batch_ts) {
            let mut samples = Vec::with_capacity(chunk.len() * series_per_host);
            for &t in chunk {
                let ts = (start + time::Duration::seconds(5 * t as i64))
                    .format(&time::format_description::well_known::Rfc3339)?;
                for s in 0..series_per_host {
                    samples.push(json!({"metric": format!("bench_metric_{s}"), "labels": {"disk": "sda"}, "ts": ts, "value": (t * s) as f64 % 97.0}));
                }
            }
            bodies.push(serde_json::to_vec(
                &json!({"host": format!("bench-{h}"), "samples": samples}),
            )?);
        }
    }
    let n_samples = hosts * series_per_host * timestamps;
    println!(
        "ingest: {n_samples} samples in {} batches of {} samples, 4 concurrent clients",
        bodies.len(),
        per_batch_ts * series_per_host
    );
    let t = Instant::now();
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(bodies));
    let mut workers = vec![];
    for _ in 0..4 {
        let queue = queue.clone();
        let http = http.clone();
        let url = format!("{base}/api/v1/ingest/metrics");
        let token = token.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let Some(body) = queue.lock().await.pop() else {
                    return Ok::<_, String>(());
                };
                let res = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !res.status().is_success() {
                    return Err(format!(
                        "{}: {}",
                        res.status(),
                        res.text().await.unwrap_or_default()
                    ));
                }
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    let ingest_secs = t.elapsed().as_secs_f64();
    let ingest_rate = n_samples as f64 / ingest_secs;
    println!("ingest through HTTP (samples + 1m, 5m and 1h rollups + latest): {ingest_rate:.0} samples/s ({ingest_secs:.2} s)");

    sqlx::query("DROP TABLE IF EXISTS bench_copy")
        .execute(&pool)
        .await?;
    sqlx::query("CREATE TABLE bench_copy (series_id integer NOT NULL, ts timestamptz NOT NULL, value double precision NOT NULL, PRIMARY KEY (series_id, ts))")
        .execute(&pool)
        .await?;
    let mut text = String::with_capacity(n_samples * 48);
    for s in 0..(hosts * series_per_host) {
        for t in 0..timestamps {
            let ts = (start + time::Duration::seconds(5 * t as i64))
                .format(&time::format_description::well_known::Rfc3339)?;
            use std::fmt::Write;
            let _ = writeln!(text, "{s}\t{ts}\t{}", (t * s) as f64 % 97.0);
        }
    }
    let t = Instant::now();
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw("COPY bench_copy (series_id, ts, value) FROM STDIN")
        .await?;
    for chunk in text.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    let copy_secs = t.elapsed().as_secs_f64();
    let copy_rate = n_samples as f64 / copy_secs;
    println!("COPY of the same rows into a table with the same key: {copy_rate:.0} rows/s ({copy_secs:.2} s)");
    println!("ingest / COPY: {:.0} %", ingest_rate / copy_rate * 100.0);
    sqlx::query("DROP TABLE bench_copy").execute(&pool).await?;
    drop(conn);

    // ---- 30-day series query from 5-second data ----
    fill_history(
        &pool,
        &state,
        "bench-30d",
        &[("cpu_usage_percent", "{}")],
        30,
    )
    .await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM metric_samples s JOIN metric_series m ON m.id = s.series_id WHERE m.host = 'bench-30d'")
        .fetch_one(&pool)
        .await?;
    println!("series query: 30 days of 5 s data for one host and metric ({rows} raw samples)");
    let admin_pw = "bench-password-123";
    insert_user(&pool, "bench", Role::Admin, admin_pw)
        .await
        .ok();
    let session = reqwest::Client::builder().cookie_store(true).build()?;
    session
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "bench", "password": admin_pw}))
        .send()
        .await?
        .error_for_status()?;
    let url = format!("{base}/api/v1/metrics/series?host=bench-30d&metric=cpu_usage_percent&from=now-30d&points=1000");
    let ms = timed(50, || {
        let session = session.clone();
        let url = url.clone();
        async move {
            session
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            Ok(())
        }
    })
    .await?;
    report("GET /api/v1/metrics/series, 30 days, 1000 points", &ms);

    // ---- a fleet overview: one metric of 1,000 hosts over 24 h ----
    let t = Instant::now();
    sqlx::query(
        "INSERT INTO metric_series (host, metric, labels)
         SELECT 'fleet-' || lpad(i::text, 4, '0'), 'cpu_usage_percent', '{}' FROM generate_series(1, 1000) i
         ON CONFLICT DO NOTHING",
    )
    .execute(&pool)
    .await?;
    for (table, secs) in app::metrics::service::ROLLUP_TIERS {
        let per = secs / 5;
        sqlx::query(&format!(
            "INSERT INTO {table} (series_id, bucket, sum, count, min, max, last_ts, last_value)
             SELECT s.id, b, {per} * x.v, {per}, x.v - 5, x.v + 5, b, x.v
             FROM metric_series s
             CROSS JOIN generate_series(date_bin(interval '{secs} seconds', now() - interval '25 hours', timestamptz '2000-01-01 00:00:00+00'),
                                        now(), interval '{secs} seconds') b
             CROSS JOIN LATERAL (SELECT 50 + 30 * sin(extract(epoch FROM b) / 3600 + s.id) AS v) x
             WHERE s.host LIKE 'fleet-%'
             ON CONFLICT DO NOTHING"
        ))
        .execute(&pool)
        .await?;
    }
    sqlx::query("ANALYZE").execute(&pool).await?;
    println!(
        "fleet overview: 1000 hosts' cpu_usage_percent, 25 h of 1-minute, 5-minute and 1-hour rollups ({:.1} s to store)",
        t.elapsed().as_secs_f64()
    );
    let url =
        format!("{base}/api/v1/metrics/series?metric=cpu_usage_percent&from=now-24h&points=200");
    let ms = timed(30, || {
        let session = session.clone();
        let url = url.clone();
        async move {
            let body: serde_json::Value = session
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let n = body["series"].as_array().map_or(0, Vec::len);
            if n < 1000 {
                return Err(format!("{n} series, not 1000").into());
            }
            Ok(())
        }
    })
    .await?;
    report(
        "GET /api/v1/metrics/series without a host: 1000 series over 24 h, 200 points each (target p95 ≤ 500 ms)",
        &ms,
    );
    let body = session.get(&url).send().await?.bytes().await?;
    let answer: serde_json::Value = serde_json::from_slice(&body)?;
    let first = &answer["series"][0];
    println!(
        "  each answer: {:.1} MB of JSON, {} points a series from the {} tier ({} s buckets)",
        body.len() as f64 / 1e6,
        first["points"].as_array().map_or(0, Vec::len),
        first["tier"].as_str().unwrap_or("?"),
        first["step_seconds"]
    );

    // ---- host page render, all charts, 24 h ----
    let metrics = [
        ("cpu_usage_percent", "{}"),
        ("load_average_1m", "{}"),
        ("load_average_5m", "{}"),
        ("load_average_15m", "{}"),
        ("memory_used_percent", "{}"),
        ("swap_used_percent", "{}"),
        ("disk_used_percent", r#"{"mount": "/"}"#),
        ("disk_used_percent", r#"{"mount": "/var"}"#),
        ("disk_read_bytes_per_second", r#"{"device": "sda"}"#),
        ("disk_write_bytes_per_second", r#"{"device": "sda"}"#),
        (
            "network_receive_bytes_per_second",
            r#"{"interface": "all"}"#,
        ),
        (
            "network_transmit_bytes_per_second",
            r#"{"interface": "all"}"#,
        ),
        ("tcp_connections", r#"{"state": "established"}"#),
        ("tcp_connections", r#"{"state": "listen"}"#),
        ("tcp_connections", r#"{"state": "time_wait"}"#),
    ];
    fill_history(&pool, &state, "bench-page", &metrics, 1).await?;
    let url = format!("{base}/hosts/bench-page?range=24h");
    let ms = timed(30, || {
        let session = session.clone();
        let url = url.clone();
        async move {
            let html = session
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .text()
                .await?;
            if html.matches("<svg width=\"860\"").count() < 9 {
                return Err("host page rendered without its charts".into());
            }
            Ok(())
        }
    })
    .await?;
    report(
        "GET /hosts/{name}?range=24h (server render, 9 charts, 15 series)",
        &ms,
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
