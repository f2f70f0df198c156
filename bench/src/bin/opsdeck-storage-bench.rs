//! Metrics storage benchmark (figures only, nothing asserted): a simulated fleet's samples, as
//! the collector records them (60 series a host every 5 s: CPU and memory percentages to 0.01,
//! byte counts, rates in whole bytes/s, connection counts, uptime; timestamps to the
//! millisecond with a few ms of jitter), stored through the real ingest path, then packed into
//! compressed chunks. Prints the on-disk bytes per sample of the raw tier (table + indexes +
//! TOAST) before and after compaction, of the chunks alone by kind of series, and of the rollup
//! tiers; the compaction's rate; a raw series query before and after.
//!
//! Usage: DATABASE_URL=postgres://…/scratch opsdeck-storage-bench [hosts] [hours]
//! (see bench/storage.sh; defaults 100 hosts × 24 hours = 103.7 M samples). Over more than a
//! day, the hours of each simulated day are packed as that day ends, as the compaction job
//! would, so the raw rows on disk stay about a day's.

use app::metrics::service::{self, compact, Origin};
use app::metrics::{parse_selector, IngestBatch, Labels, Retention, Sample};
use app::state::AppState;
use app::timestamp::Timestamp;
use std::time::Instant;
use time::{Duration, OffsetDateTime};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Seeded: every run stores the same fleet.
struct Rng(rand::rngs::SmallRng);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        rand::Rng::random_range(&mut self.0, 0..n)
    }
    /// A step of a random walk: -k..=k.
    fn walk(&mut self, k: i64) -> i64 {
        rand::Rng::random_range(&mut self.0, -k..=k)
    }
}

/// The kinds of series a host records, with how many of each (60 in all).
const KINDS: &[(&str, usize)] = &[
    ("percent", 12), // cpu, 8 cores, memory, swap, disk
    ("bytes", 10),   // totals (constant) and used (4 KiB steps)
    ("rate", 14),    // disk and network bytes/s: often 0, bursty
    ("count", 22),   // tcp connections by state, processes: small integers
    ("counter", 2),  // uptime and a restart counter
];

/// One host's state: the value of each series.
struct Host {
    values: Vec<f64>,
}

impl Host {
    fn new(rng: &mut Rng) -> Self {
        let mut values = vec![];
        for (kind, n) in KINDS {
            for i in 0..*n {
                values.push(match *kind {
                    "percent" => (rng.below(8000) as f64) / 100.0,
                    "bytes" => ((rng.below(1 << 20) + 1) * 4096 * (i as u64 + 1)) as f64,
                    "rate" => 0.0,
                    "count" => rng.below(200) as f64,
                    _ => rng.below(1_000_000) as f64,
                });
            }
        }
        Self { values }
    }

    /// The next sample of every series.
    fn step(&mut self, rng: &mut Rng) {
        let mut s = 0;
        for (kind, n) in KINDS {
            for i in 0..*n {
                let v = &mut self.values[s];
                *v = match *kind {
                    "percent" => {
                        let c = (*v * 100.0).round() as i64 + rng.walk(150);
                        c.clamp(0, 10_000) as f64 / 100.0
                    }
                    // The first half are totals, the rest move by pages now and then.
                    "bytes" if i < n / 2 => *v,
                    "bytes" if rng.below(3) == 0 => (*v + (rng.walk(64) * 4096) as f64).max(0.0),
                    "bytes" => *v,
                    "rate" if rng.below(4) == 0 => 0.0,
                    "rate" => (rng.below(1 << (8 + i % 16)) as f64).round(),
                    "count" if rng.below(4) == 0 => (*v + rng.walk(3) as f64).max(0.0),
                    "count" => *v,
                    _ if i == 0 => *v + 5.0,
                    _ => *v + f64::from(u8::from(rng.below(5000) == 0)),
                };
                s += 1;
            }
        }
    }
}

fn kind_of(series: usize) -> &'static str {
    let mut s = series;
    for (kind, n) in KINDS {
        if s < *n {
            return kind;
        }
        s -= n;
    }
    "?"
}

async fn scalar(pool: &sqlx::PgPool, sql: &str) -> Res<i64> {
    Ok(sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await?)
}

/// Bytes of a table with its indexes and TOAST, partitions included.
async fn size(pool: &sqlx::PgPool, table: &str) -> Res<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CASE WHEN c.relkind = 'p'
                THEN (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree(c.oid))
                ELSE pg_total_relation_size(c.oid) END::bigint
         FROM pg_class c WHERE c.oid = $1::regclass",
    )
    .bind(table)
    .fetch_one(pool)
    .await?)
}

/// VACUUM ANALYZE, without the pool's statement timeout.
async fn vacuum(pool: &sqlx::PgPool) -> Res<()> {
    let mut c = pool.acquire().await?;
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut *c)
        .await?;
    sqlx::query("VACUUM ANALYZE").execute(&mut *c).await?;
    Ok(())
}

fn p95(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[(ms.len() * 95 / 100).min(ms.len() - 1)]
}

async fn series_p95(state: &AppState, hosts: usize, to: OffsetDateTime) -> Res<(f64, usize)> {
    let retention = Retention::from(&*state.config);
    let selector = parse_selector("bench_percent_0")?;
    let mut ms = vec![];
    let mut points = 0;
    for i in 0..30 {
        let t = Instant::now();
        let r = service::series(
            &state.reads,
            &format!("host-{}", i % hosts),
            &selector,
            to - Duration::hours(6),
            to,
            1000,
            retention,
        )
        .await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        points = r.series.first().map(|s| s.points.len()).unwrap_or(0);
    }
    Ok((p95(ms), points))
}

#[tokio::main]
async fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let hosts: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(100);
    let hours: i64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(24);
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL to an empty scratch database")?;
    let mut cfg = app::config::Config::with_database_url(url);
    cfg.collect_interval = app::config::Interval(0);
    cfg.max_connections = 16;
    // The raw tier keeps the whole simulated span (14 days by default is just too short).
    cfg.retention_raw_days = cfg.retention_raw_days.max(hours / 24 + 2);
    let pool = server::connect(&cfg).await?;
    server::MIGRATOR.run(&pool).await?;
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse()?;
    let state = AppState::new(server::leptos_options(addr), pool.clone(), cfg);

    // The fleet's hours, ending half an hour ago; each host's batches of 10 minutes.
    let per_host = KINDS.iter().map(|k| k.1).sum::<usize>();
    let ticks = hours * 720;
    // Whole seconds: the collector records times to the millisecond.
    let end = OffsetDateTime::now_utc().replace_nanosecond(0)? - Duration::minutes(30);
    let start = end - Duration::hours(hours);
    let names: Vec<String> = (0..per_host)
        .map(|s| format!("bench_{}_{}", kind_of(s), s))
        .collect();
    let mut rng = Rng(rand::SeedableRng::seed_from_u64(0x9e37_79b9_7f4a_7c15));
    let mut fleet: Vec<Host> = (0..hosts).map(|_| Host::new(&mut rng)).collect();
    let t0 = Instant::now();
    let mut total = 0usize;
    let mut tick = 0i64;
    let mut daily = (service::CompactionReport::default(), 0.0f64);
    const DAY: i64 = 17_280;
    while tick < ticks {
        if tick > 0 && tick % DAY == 0 {
            // A simulated day has ended: the compaction job packs its closed hours.
            if tick == DAY {
                let bytes = size(&pool, "metric_samples").await?;
                let rows = scalar(&pool, "SELECT count(*) FROM metric_samples").await?;
                println!(
                    "day 1 as rows, before packing: {:.1} MB = {:.1} bytes a sample",
                    bytes as f64 / 1e6,
                    bytes as f64 / rows.max(1) as f64
                );
            }
            let t = Instant::now();
            let r = compact(&pool, start + Duration::seconds(tick * 5)).await?;
            daily.1 += t.elapsed().as_secs_f64();
            daily.0.chunks += r.chunks;
            daily.0.samples += r.samples;
            println!(
                "day {}: {} samples stored, {} packed so far",
                tick / DAY,
                total,
                daily.0.samples
            );
        }
        let upto = (tick + 120).min(ticks);
        let mut batches = vec![];
        for (h, host) in fleet.iter_mut().enumerate() {
            let mut samples = Vec::with_capacity(per_host * 120);
            for k in tick..upto {
                host.step(&mut rng);
                let jitter = rng.walk(3);
                let ts = start + Duration::milliseconds(k * 5_000 + jitter);
                for (s, v) in host.values.iter().enumerate() {
                    samples.push(Sample {
                        metric: names[s].clone(),
                        labels: Labels::new(),
                        ts: Timestamp(ts),
                        value: *v,
                    });
                }
            }
            total += samples.len();
            batches.push(IngestBatch {
                host: format!("host-{h}"),
                samples,
            });
        }
        // Four at a time, as agents would.
        let mut batches = batches.into_iter().peekable();
        while batches.peek().is_some() {
            let mut set = tokio::task::JoinSet::new();
            for b in batches.by_ref().take(4) {
                let state = state.clone();
                set.spawn(async move { service::ingest(&state, &b, Origin::Agent).await });
            }
            while let Some(r) = set.join_next().await {
                r??;
            }
        }
        tick = upto;
    }
    let ingest_s = t0.elapsed().as_secs_f64() - daily.1;
    println!(
        "stored {total} samples ({hosts} hosts × {per_host} series × {hours} h at 5 s) through the ingest path in {ingest_s:.1} s ({:.0} samples/s)",
        total as f64 / ingest_s
    );
    if daily.0.samples > 0 {
        println!(
            "packed day by day meanwhile: {} samples into {} chunks in {:.1} s ({:.0} samples/s)",
            daily.0.samples,
            daily.0.chunks,
            daily.1,
            daily.0.samples as f64 / daily.1
        );
    }
    vacuum(&pool).await?;
    let per = |bytes: i64| bytes as f64 / total as f64;
    let raw_before = size(&pool, "metric_samples").await?;
    let rows_before = scalar(&pool, "SELECT count(*) FROM metric_samples").await?;
    let (q_before, points) = series_p95(&state, hosts, end).await?;
    if daily.0.samples == 0 {
        println!(
            "before compaction: raw tier {:.1} MB = {:.1} bytes a sample; 6-hour raw series query p95 {q_before:.1} ms ({points} points)",
            raw_before as f64 / 1e6,
            per(raw_before)
        );
    } else {
        // The packed days' partitions keep their files until emptied: no figure a sample here.
        println!(
            "before the last compaction: {rows_before} samples as rows; 6-hour raw series query p95 {q_before:.1} ms ({points} points)"
        );
    }

    // Pack everything: compaction as it would run two hours after the last sample.
    let t = Instant::now();
    let report = compact(&pool, end + Duration::hours(2)).await?;
    let compact_s = t.elapsed().as_secs_f64();
    vacuum(&pool).await?;
    let rows = size(&pool, "metric_samples").await?;
    let chunks = size(&pool, "metric_chunks").await?;
    let (q_after, points) = series_p95(&state, hosts, end).await?;
    println!(
        "compaction: {} samples into {} chunks in {compact_s:.1} s ({:.0} samples/s); {} past days' partitions emptied",
        report.samples,
        report.chunks,
        report.samples as f64 / compact_s,
        report.emptied_partitions
    );
    println!(
        "after compaction: raw tier {:.1} MB = {:.2} bytes a sample (chunks {:.1} MB with indexes and TOAST, rows left {:.1} MB); 6-hour raw series query p95 {q_after:.1} ms ({points} points)",
        (rows + chunks) as f64 / 1e6,
        per(rows + chunks),
        chunks as f64 / 1e6,
        rows as f64 / 1e6,
    );
    let by_kind: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT split_part(s.metric, '_', 2), sum(c.samples)::bigint, sum(octet_length(c.data))::bigint
         FROM metric_chunks c JOIN metric_series s ON s.id = c.series_id GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await?;
    for (kind, n, bytes) in by_kind {
        println!(
            "  chunk data of {kind} series: {:.2} bytes a sample",
            bytes as f64 / n as f64
        );
    }
    for table in [
        "metric_rollup_1m",
        "metric_rollup_5m",
        "metric_rollup_1h",
        "metric_latest",
        "metric_series",
    ] {
        let b = size(&pool, table).await?;
        let n = scalar(&pool, &format!("SELECT count(*) FROM {table}")).await?;
        println!(
            "{table}: {:.1} MB, {n} rows, {:.1} bytes a row, {:.2} bytes a raw sample",
            b as f64 / 1e6,
            b as f64 / n.max(1) as f64,
            per(b)
        );
    }
    Ok(())
}
