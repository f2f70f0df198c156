//! Compressed chunks: the series API answers exactly the same before and after compaction, for
//! random series with gaps, jittered timestamps and floats of every magnitude; a re-send after
//! compaction changes nothing (rollups included); late samples for a packed hour land as rows and
//! the next compaction merges them; the incident timeline still sees restarts; retention removes
//! old chunks; `opsdeck metrics compact` runs it.

mod common;

use app::metrics::service::{self, compact, horizon, hour_of, Origin};
use app::metrics::{parse_selector, IngestBatch, Retention, Sample, SeriesResponse};
use app::state::AppState;
use app::timestamp::Timestamp;
use rand::{Rng as _, SeedableRng};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

/// Seeded, so a failure can be replayed.
type Rng = rand::rngs::SmallRng;

fn below(rng: &mut Rng, n: u64) -> u64 {
    rng.random_range(0..n)
}

/// A value of the series' kind: decimals, whole byte counts, tiny and huge magnitudes, signed
/// zeros, arbitrary finite bit patterns.
fn value(rng: &mut Rng, kind: u64, i: i64) -> f64 {
    match kind {
        0 => (below(rng, 10_000) as f64) / 100.0,
        1 => 8.0e9 + (below(rng, 100) * 4096) as f64,
        2 => (i * 1_000 + below(rng, 3) as i64) as f64,
        3 => [0.0, -0.0, 5e-324, -2.2e-308, 1e-300][below(rng, 5) as usize],
        4 => [1e300, -3.5e280, 1.7e15, -1.0, 123_456_789.125][below(rng, 5) as usize],
        _ => loop {
            let v = f64::from_bits(rng.random());
            if v.is_finite() && v.abs() < 1e300 {
                break v;
            }
        },
    }
}

/// Samples from `start` to `end`: mostly every 5 s with µs or ms jitter, with gaps of minutes
/// up to more than an hour.
fn samples(rng: &mut Rng, kind: u64, start: OffsetDateTime, end: OffsetDateTime) -> Vec<Sample> {
    let metric = format!("bench_kind_{kind}");
    let mut out = vec![];
    let mut t = start;
    let mut i = 0;
    while t < end {
        out.push(Sample {
            metric: metric.clone(),
            labels: Default::default(),
            ts: Timestamp(t),
            value: value(rng, kind, i),
        });
        i += 1;
        let step = match below(rng, 100) {
            0 => Duration::minutes(below(rng, 90) as i64 + 1),
            1..=30 => Duration::microseconds(5_000_000 + below(rng, 4_000) as i64 - 2_000),
            31..=50 => Duration::milliseconds(5_000 + below(rng, 9) as i64 - 4),
            _ => Duration::seconds(5),
        };
        t += step;
    }
    out
}

async fn ingest(state: &AppState, host: &str, samples: &[Sample]) -> (usize, usize) {
    let (mut accepted, mut duplicates) = (0, 0);
    for part in samples.chunks(700) {
        let batch = IngestBatch {
            host: host.into(),
            samples: part.to_vec(),
        };
        let out = service::ingest(state, &batch, Origin::Agent).await.unwrap();
        accepted += out.accepted;
        duplicates += out.duplicates;
    }
    (accepted, duplicates)
}

/// The series API's answers for every kind over several ranges: the whole span at the raw
/// tier's finest, ranges starting and ending mid-hour, and coarser buckets.
async fn answers(
    state: &AppState,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Vec<SeriesResponse> {
    let retention = Retention::from(&*state.config);
    let mut out = vec![];
    for kind in 0..6 {
        let selector = parse_selector(&format!("bench_kind_{kind}")).unwrap();
        for (from, to, points) in [
            (start, end, 2000),
            (
                start + Duration::minutes(37),
                end - Duration::minutes(71),
                2000,
            ),
            (start + Duration::seconds(1), end, 497),
            (
                start + Duration::minutes(61),
                start + Duration::minutes(62),
                60,
            ),
        ] {
            let r = service::series(&state.reads, "h", &selector, from, to, points, retention)
                .await
                .unwrap();
            assert!(
                r.series.iter().all(|s| s.tier == "raw"),
                "raw tier: {from} {to}"
            );
            out.push(r);
        }
    }
    out
}

/// Bit-for-bit comparison (NaN-free, so `==` on the floats would also do, but `-0.0 == 0.0`).
fn same(a: &[SeriesResponse], b: &[SeriesResponse]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.series.len(), y.series.len());
        for (s, t) in x.series.iter().zip(&y.series) {
            assert_eq!(s.points.len(), t.points.len(), "{}", s.metric);
            for (p, q) in s.points.iter().zip(&t.points) {
                assert_eq!(p.ts, q.ts, "{}", s.metric);
                for (u, v) in [(p.avg, q.avg), (p.min, q.min), (p.max, q.max)] {
                    assert_eq!(
                        u.to_bits(),
                        v.to_bits(),
                        "{} at {:?}: {u} vs {v}",
                        s.metric,
                        p.ts
                    );
                }
            }
        }
    }
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn rollups(pool: &PgPool) -> Vec<(String, i32, OffsetDateTime, f64, i32, f64, f64)> {
    sqlx::query_as(
        "SELECT '1m', series_id, bucket, sum, count, min, max FROM metric_rollup_1m
         UNION ALL SELECT '5m', series_id, bucket, sum, count, min, max FROM metric_rollup_5m
         UNION ALL SELECT '1h', series_id, bucket, sum, count, min, max FROM metric_rollup_1h ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn series_answer_the_same_after_compaction(pool: PgPool) {
    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    // Five closed hours and the current one.
    let start = hour_of(now) - Duration::hours(5) + Duration::milliseconds(1_234);
    let end = now - Duration::seconds(30);
    let mut rng = Rng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
    let mut all = vec![];
    for kind in 0..6 {
        all.extend(samples(&mut rng, kind, start, end));
    }
    let (accepted, duplicates) = ingest(&state, "h", &all).await;
    assert_eq!((accepted, duplicates), (all.len(), 0));
    let before = answers(&state, start, end).await;
    let rollups_before = rollups(&pool).await;

    let report = compact(&pool, now).await.unwrap();
    // One chunk for each series and closed hour that has samples (gaps may empty an hour).
    let series_hours: std::collections::HashSet<(&str, OffsetDateTime)> = all
        .iter()
        .filter(|s| s.ts.0 < horizon(now))
        .map(|s| (s.metric.as_str(), hour_of(s.ts.0)))
        .collect();
    assert!(series_hours.len() >= 6 * 3, "the data spans closed hours");
    assert_eq!(report.chunks as usize, series_hours.len(), "{report:?}");
    let packed = count(
        &pool,
        "SELECT coalesce(sum(samples), 0)::bigint FROM metric_chunks",
    )
    .await;
    let rows = count(&pool, "SELECT count(*) FROM metric_samples").await;
    assert_eq!(
        packed + rows,
        all.len() as i64,
        "every sample once, in a chunk or a row"
    );
    assert_eq!(report.samples as i64, packed);
    let old_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM metric_samples WHERE ts < $1")
        .bind(horizon(now))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(old_rows, 0, "closed hours are packed");
    same(&answers(&state, start, end).await, &before);
    // Idempotent: nothing left to do.
    assert_eq!(compact(&pool, now).await.unwrap().chunks, 0);

    // Everything re-sent: every sample a duplicate, rollups and answers unchanged.
    let (accepted, duplicates) = ingest(&state, "h", &all).await;
    assert_eq!((accepted, duplicates), (0, all.len()));
    assert_eq!(rollups(&pool).await, rollups_before);
    same(&answers(&state, start, end).await, &before);

    // Late samples for packed hours land as rows, show at once, and the next compaction merges
    // them into their chunks.
    let late: Vec<Sample> = (0..6)
        .map(|kind| Sample {
            metric: format!("bench_kind_{kind}"),
            labels: Default::default(),
            ts: Timestamp(start + Duration::minutes(70) + Duration::microseconds(333)),
            value: 42.0,
        })
        .collect();
    assert_eq!(ingest(&state, "h", &late).await, (6, 0));
    let with_late = answers(&state, start, end).await;
    let rows_late: i64 = sqlx::query_scalar("SELECT count(*) FROM metric_samples WHERE ts < $1")
        .bind(horizon(now))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows_late, 6);
    let report = compact(&pool, now).await.unwrap();
    assert_eq!((report.chunks, report.samples), (6, 6));
    same(&answers(&state, start, end).await, &with_late);
    assert_eq!(
        ingest(&state, "h", &late).await,
        (0, 6),
        "a late sample re-sent"
    );

    // Retention: forty days on, the chunks are gone too.
    let chunks = count(&pool, "SELECT count(*) FROM metric_chunks").await;
    assert!(chunks >= series_hours.len() as i64);
    let report = service::enforce_retention(&state, now + Duration::days(40))
        .await
        .unwrap();
    assert_eq!(report.deleted_chunks as i64, chunks, "{report:?}");
    assert_eq!(count(&pool, "SELECT count(*) FROM metric_chunks").await, 0);
}

/// A process restart stored in a packed hour still shows on an incident's timeline, once: a
/// scraped series of the same name with more labels (a `target`) is not the process's own.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn restarts_in_chunks_reach_the_incident_timeline(pool: PgPool) {
    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    let at = hour_of(now) - Duration::hours(2) + Duration::minutes(20);
    let series = |labels: &[(&str, &str)], restart_at: i64| -> Vec<Sample> {
        (0..60)
            .map(|i| Sample {
                metric: "process_restarts".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ts: Timestamp(at + Duration::seconds(5 * i)),
                value: if i == restart_at { 1.0 } else { 0.0 },
            })
            .collect()
    };
    let samples = [
        series(&[("process", "api")], 30),
        series(&[("process", "api"), ("target", "exporter")], 10),
    ]
    .concat();
    ingest(&state, "web-1", &samples).await;
    assert!(compact(&pool, now).await.unwrap().chunks >= 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM metric_samples").await, 0);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO incidents (title, severity, hosts, started_at, last_event_at)
         VALUES ('api down', 'critical', ARRAY['web-1'], $1, $1) RETURNING id",
    )
    .bind(at + Duration::minutes(1))
    .fetch_one(&pool)
    .await
    .unwrap();
    let detail = app::incidents::service::detail(&state, id, now)
        .await
        .unwrap();
    let restarts: Vec<_> = detail
        .events
        .iter()
        .filter(|e| e.kind == "process_restart")
        .collect();
    assert_eq!(restarts.len(), 1, "{:?}", detail.events);
    assert_eq!(*restarts[0].at, at + Duration::seconds(150));
    assert_eq!(restarts[0].text, "api restarted");
    assert_eq!(restarts[0].host.as_deref(), Some("web-1"));
}

/// `opsdeck metrics compact` packs the closed hours and says how much.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_cli_compacts(pool: PgPool) {
    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    let start = hour_of(now) - Duration::hours(3);
    let mut rng = Rng::seed_from_u64(7);
    let all = samples(&mut rng, 0, start, start + Duration::hours(1));
    ingest(&state, "h", &all).await;
    let url = common::own_db_url(&pool).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opsdeck"))
        .args(["metrics", "compact"])
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("compacted: {} samples into 1 chunks", all.len())),
        "{stdout}"
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM metric_samples").await, 0);
}

/// A past day's partition left without rows is truncated (its pages and index pages given
/// back); a late sample for that day is stored in it again and merged at the next compaction.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn past_days_emptied_give_their_space_back(pool: PgPool) {
    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    let day = hour_of(now) - Duration::days(3);
    let mut rng = Rng::seed_from_u64(11);
    let all = samples(&mut rng, 1, day, day + Duration::hours(2));
    ingest(&state, "h", &all).await;
    let partition = format!(
        "metric_samples_{:04}{:02}{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    let size = |pool: PgPool, name: String| async move {
        sqlx::query_scalar::<_, i64>("SELECT pg_total_relation_size($1::regclass)")
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert!(size(pool.clone(), partition.clone()).await > 16_384);
    let selector = parse_selector("bench_kind_1").unwrap();
    let retention = Retention::from(&*state.config);
    let read = |state: AppState| {
        let selector = selector.clone();
        async move {
            service::series(
                &state.reads,
                "h",
                &selector,
                day,
                day + Duration::hours(3),
                5000,
                retention,
            )
            .await
            .unwrap()
            .series[0]
                .points
                .len()
        }
    };
    let points = read(state.clone()).await;
    let report = compact(&pool, now).await.unwrap();
    assert!(report.emptied_partitions >= 1, "{report:?}");
    assert!(size(pool.clone(), partition.clone()).await <= 16_384);
    assert_eq!(read(state.clone()).await, points);
    let late = Sample {
        ts: Timestamp(day + Duration::minutes(150)),
        ..all[0].clone()
    };
    assert_eq!(ingest(&state, "h", &[late]).await, (1, 0));
    assert_eq!(read(state.clone()).await, points + 1);
    let report = compact(&pool, now).await.unwrap();
    assert_eq!((report.samples, report.emptied_partitions), (1, 1));
    assert_eq!(read(state.clone()).await, points + 1);
}

/// A backlog of several days (the job stopped for a while) is packed day by day, and finding
/// a day's rows is not cut short by the statement timeout requests run under: here a read of
/// the oldest day waits 3 s for a lock, with the timeout at 1 s.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_backlog_of_days_is_packed_past_the_statement_timeout(pool: PgPool) {
    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    let first = hour_of(now) - Duration::days(4);
    let mut rng = Rng::seed_from_u64(17);
    let mut all = vec![];
    for d in 0..3 {
        let day = first + Duration::days(d);
        all.extend(samples(&mut rng, 1, day, day + Duration::hours(1)));
    }
    let (accepted, _) = ingest(&state, "h", &all).await;
    let partition = format!(
        "metric_samples_{:04}{:02}{:02}",
        first.year(),
        u8::from(first.month()),
        first.day()
    );
    let opts = pool
        .connect_options()
        .as_ref()
        .clone()
        .options([("statement_timeout", "1s")]);
    let short = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .unwrap();
    // Another session holds the oldest day's partition for 3 s.
    let mut holder = pool.begin().await.unwrap();
    sqlx::query(&format!("LOCK TABLE {partition} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut *holder)
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        holder.commit().await.unwrap();
    });
    let report = compact(&short, now).await.unwrap();
    release.await.unwrap();
    assert_eq!(report.samples as usize, accepted, "{report:?}");
    assert_eq!(count(&pool, "SELECT count(*) FROM metric_samples").await, 0);
    assert_eq!(
        count(&pool, "SELECT sum(samples)::bigint FROM metric_chunks").await as usize,
        accepted
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn an_interrupted_index_rebuild_is_cleaned_up(pool: PgPool) {
    let state = common::state(pool.clone());
    let now = OffsetDateTime::now_utc();
    let mut rng = Rng::seed_from_u64(23);
    let samples = samples(&mut rng, 1, hour_of(now), now);
    ingest(&state, "h", &samples).await;
    let partition = format!(
        "metric_samples_{:04}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    // A rebuild stopped half-way, as a restart or a cancel stops it: REINDEX CONCURRENTLY waits
    // for a transaction that holds an older snapshot, and its statement timeout ends it there.
    let mut reader = pool.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *reader)
        .await
        .unwrap();
    sqlx::query("SELECT count(*) FROM metric_chunks")
        .execute(&mut *reader)
        .await
        .unwrap();
    let mut c = pool.acquire().await.unwrap();
    sqlx::query("SET statement_timeout = '500ms'")
        .execute(&mut *c)
        .await
        .unwrap();
    let r = sqlx::query(&format!("REINDEX TABLE CONCURRENTLY {partition}"))
        .execute(&mut *c)
        .await;
    assert!(r.is_err(), "the rebuild was meant to be cut short");
    reader.rollback().await.unwrap();
    let invalid = "SELECT count(*) FROM pg_index x JOIN pg_inherits h ON h.inhrelid = x.indrelid
                   WHERE h.inhparent = 'metric_samples'::regclass AND NOT x.indisvalid";
    assert_eq!(count(&pool, invalid).await, 1, "the rebuild left its index");

    let report = compact(&pool, now).await.unwrap();
    assert_eq!(report.dropped_invalid_indexes, 1, "{report:?}");
    assert_eq!(count(&pool, invalid).await, 0);
    // The partition keeps its own index, valid, and ingest goes on.
    let valid = format!(
        "SELECT count(*) FROM pg_index x WHERE x.indrelid = '{partition}'::regclass AND x.indisvalid"
    );
    assert_eq!(count(&pool, &valid).await, 1);
    let report = compact(&pool, now).await.unwrap();
    assert_eq!(report.dropped_invalid_indexes, 0, "{report:?}");
}
