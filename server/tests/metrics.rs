//! Metrics: tokens, ingest validation, idempotent re-sends, rollups against SQL over the raw
//! rows, retention, the series API, `/metrics`, the local collector and the job lock.

mod common;

use app::auth::Role;
use app::metrics::service;
use app::timestamp::Timestamp;
use common::{json, Call, TestApp};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

async fn ingest_token(app: &TestApp, admin: &Client, name: &str) -> String {
    let body = admin
        .post(app.url("/api/v1/tokens"))
        .json(&json!({"name": name, "scope": "ingest"}))
        .expect_json(StatusCode::CREATED)
        .await;
    assert_eq!(body["scope"], "ingest");
    body["token"].as_str().unwrap().to_string()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Whole minutes, an hour back from now, so samples stay inside one raw-retention window.
fn base_time() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc() - Duration::hours(3);
    now.replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap()
}

async fn post_batch(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    Client::new()
        .post(app.url("/api/v1/ingest/metrics"))
        .bearer_auth(token)
        .json(body)
        .call()
        .await
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn tokens_guard_ingest(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("ada", Role::Admin).await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let res = viewer
        .post(app.url("/api/v1/tokens"))
        .json(&json!({"name": "x", "scope": "ingest"}))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let token = ingest_token(&app, &admin, "web-agents").await;
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(stored, token, "only a hash is stored");
    let list = json(admin.get(app.url("/api/v1/tokens")).call().await).await;
    assert!(!list.to_string().contains(&token));

    let body = json!({"host": "web-1", "samples": [{"metric": "cpu_usage_percent", "ts": rfc3339(base_time()), "value": 12.5}]});
    assert_eq!(
        post_batch(&app, &token, &body).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        post_batch(&app, "odk_wrong", &body).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = Client::new()
        .post(app.url("/api/v1/ingest/metrics"))
        .json(&body)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = admin
        .delete(app.url("/api/v1/tokens/web-agents"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        post_batch(&app, &token, &body).await.status(),
        StatusCode::UNAUTHORIZED,
        "revoked"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn bad_batches_store_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("ada", Role::Admin).await;
    let token = ingest_token(&app, &admin, "t").await;
    let ts = rfc3339(base_time());
    let good = json!({"metric": "m", "ts": ts, "value": 1.0});
    let cases = vec![
        (
            json!({"host": "h", "samples": [good, {"metric": "bad name", "ts": ts, "value": 1}]}),
            400,
            "samples[1].metric",
        ),
        (
            json!({"host": "h", "samples": [good, {"metric": "m", "ts": "2001-01-01T00:00:00Z", "value": 1}]}),
            400,
            "samples[1].ts",
        ),
        (json!({"host": "h h", "samples": [good]}), 400, "host"),
        (json!({"host": "h", "samples": []}), 400, "empty"),
        (
            json!({"host": "h", "samples": [{"metric": "m", "ts": ts, "value": "high"}]}),
            422,
            "value",
        ),
        (
            json!({"host": "h", "samples": [{"metric": "m", "ts": "yesterday", "value": 1}]}),
            422,
            "ts",
        ),
        (json!({"host": "h"}), 422, "samples"),
    ];
    for (body, status, mentions) in cases {
        let res = post_batch(&app, &token, &body).await;
        assert_eq!(res.status().as_u16(), status, "{body}");
        let err = json(res).await["error"].as_str().unwrap().to_string();
        assert!(err.contains(mentions), "{body}: {err}");
    }
    let res = Client::new()
        .post(app.url("/api/v1/ingest/metrics"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"host\":\"h\",\"samples\":[{}]}}",
            vec![good.to_string(); 400_000].join(",")
        ))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM metric_samples")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing from a refused batch is stored");
}

/// Samples every 5 s for 3 hours on two series, sent in shuffled overlapping batches.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn rollups_equal_sql_over_raw_and_resends_change_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("ada", Role::Admin).await;
    let token = ingest_token(&app, &admin, "t").await;
    let start = base_time() - Duration::hours(1);
    let mut samples = vec![];
    for i in 0..(3 * 720) {
        let ts = rfc3339(start + Duration::seconds(5 * i));
        let v = ((i * 7919) % 1000) as f64 / 10.0;
        samples.push(
            json!({"metric": "disk_used_percent", "labels": {"mount": "/"}, "ts": ts, "value": v}),
        );
        samples.push(json!({"metric": "cpu_usage_percent", "ts": ts, "value": 100.0 - v}));
    }
    // Out of order, in chunks: the first half of a chunk alone (all new), then the whole chunk
    // (half of it re-sent), then the whole chunk again (all re-sent).
    samples.reverse();
    let mut accepted = 0;
    let mut duplicates = 0;
    let mut expected_duplicates = 0;
    for chunk in samples.chunks(997) {
        let half = &chunk[..chunk.len() / 2];
        for part in [half, chunk, chunk] {
            let res = post_batch(&app, &token, &json!({"host": "db-1", "samples": part})).await;
            assert_eq!(res.status(), StatusCode::OK);
            let body = json(res).await;
            accepted += body["accepted"].as_u64().unwrap();
            duplicates += body["duplicates"].as_u64().unwrap();
        }
        expected_duplicates += half.len() + chunk.len();
    }
    assert_eq!(accepted as usize, samples.len());
    assert_eq!(duplicates as usize, expected_duplicates);
    // The same sample twice in one batch is stored once.
    let twice = json!({"metric": "cpu_usage_percent", "ts": rfc3339(start - Duration::minutes(5)), "value": 1.0});
    let res = post_batch(
        &app,
        &token,
        &json!({"host": "db-1", "samples": [twice, twice]}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = json(res).await;
    assert_eq!(
        (body["accepted"].as_u64(), body["duplicates"].as_u64()),
        (Some(1), Some(1))
    );

    for (table, unit) in [
        ("metric_rollup_1m", "1 minute"),
        ("metric_rollup_5m", "5 minutes"),
        ("metric_rollup_1h", "1 hour"),
    ] {
        let mismatches: i64 = sqlx::query_scalar(&format!(
            "WITH truth AS (
                SELECT series_id, date_bin('{unit}', ts, '2000-01-01 00:00:00+00') AS bucket, sum(value) AS sum, count(*) AS count,
                       min(value) AS min, max(value) AS max, (array_agg(value ORDER BY ts DESC))[1] AS last_value
                FROM metric_samples GROUP BY 1, 2)
             SELECT count(*) FROM truth t FULL JOIN {table} r USING (series_id, bucket)
             WHERE r.series_id IS NULL OR t.series_id IS NULL OR abs(t.sum - r.sum) > 1e-6 OR t.count <> r.count
                OR t.min <> r.min OR t.max <> r.max OR t.last_value <> r.last_value"
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(mismatches, 0, "{table} equals SQL over the raw rows");
    }
    let minutes: i64 = sqlx::query_scalar("SELECT count(*) FROM metric_rollup_1m")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(minutes, 2 * 180 + 1);

    // The series API reads the same figures.
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let q = format!(
        "/api/v1/metrics/series?host=db-1&metric=disk_used_percent%7Bmount%3D%22%2F%22%7D&from={}&to={}&points=1000",
        (start).unix_timestamp(),
        (start + Duration::hours(3)).unix_timestamp()
    );
    let body = viewer.get(app.url(&q)).expect_json(StatusCode::OK).await;
    let series = &body["series"][0];
    assert_eq!(series["labels"]["mount"], "/");
    assert_eq!(series["tier"], "raw", "3 h at 1000 points needs raw data");
    assert_eq!(series["step_seconds"], 15);
    assert_eq!(series["points"].as_array().unwrap().len(), 720);
    let p0 = &series["points"][0];
    let (a, b, c): (f64, f64, f64) = (
        0.0,
        ((7919 % 1000) as f64) / 10.0,
        ((2 * 7919 % 1000) as f64) / 10.0,
    );
    assert_eq!(p0["min"].as_f64().unwrap(), a.min(b).min(c));
    assert_eq!(p0["max"].as_f64().unwrap(), a.max(b).max(c));
    assert!((p0["avg"].as_f64().unwrap() - (a + b + c) / 3.0).abs() < 1e-9);

    let q = format!(
        "/api/v1/metrics/series?host=db-1&metric=disk_used_percent&from={}&to={}&points=100",
        start.unix_timestamp(),
        (start + Duration::hours(3)).unix_timestamp()
    );
    let body = json(viewer.get(app.url(&q)).call().await).await;
    assert_eq!(
        body["series"][0]["tier"], "1m",
        "180 minute points cover 100"
    );
    // 120 s buckets aligned on the clock: 90 of them, or 91 when the range starts mid-bucket.
    let n = body["series"][0]["points"].as_array().unwrap().len();
    assert!(n == 90 || n == 91, "{n} points");
    assert_eq!(body["series"][0]["step_seconds"], 120);
    let all_min = body["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["min"].as_f64().unwrap())
        .fold(f64::MAX, f64::min);
    assert_eq!(all_min, 0.0, "spikes survive downsampling");

    // Fewer points: the 5-minute tier, in buckets of two of its rows.
    let q = format!(
        "/api/v1/metrics/series?host=db-1&metric=disk_used_percent&from={}&to={}&points=30",
        start.unix_timestamp(),
        (start + Duration::hours(3)).unix_timestamp()
    );
    let body = json(viewer.get(app.url(&q)).call().await).await;
    let series = &body["series"][0];
    assert_eq!(series["tier"], "5m", "36 five-minute points cover 30");
    assert_eq!(series["step_seconds"], 600);
    let points = series["points"].as_array().unwrap();
    assert!(points.len() == 18 || points.len() == 19, "{}", points.len());
    let (mut min, mut max) = (f64::MAX, f64::MIN);
    for p in points {
        let (lo, avg, hi) = (
            p["min"].as_f64().unwrap(),
            p["avg"].as_f64().unwrap(),
            p["max"].as_f64().unwrap(),
        );
        assert!(lo <= avg && avg <= hi, "{p}");
        (min, max) = (min.min(lo), max.max(hi));
    }
    assert_eq!(
        (min, max),
        (0.0, 99.9),
        "the 5-minute tier keeps the extremes"
    );
}

/// Without a host, the series API answers for every host (a fleet overview), by host, within a
/// bound on the points of one answer.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn series_api_answers_for_the_fleet(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("ada", Role::Admin).await;
    let token = ingest_token(&app, &admin, "t").await;
    let start = base_time();
    for (host, v) in [("web-2", 20.0), ("db-1", 10.0), ("web-1", 30.0)] {
        let samples: Vec<Value> = (0..60)
            .flat_map(|i| {
                let ts = rfc3339(start + Duration::seconds(5 * i));
                [
                    json!({"metric": "cpu_usage_percent", "ts": ts, "value": v}),
                    json!({"metric": "disk_used_percent", "labels": {"mount": "/"}, "ts": ts, "value": v + 1.0}),
                ]
            })
            .collect();
        let res = post_batch(&app, &token, &json!({"host": host, "samples": samples})).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let range = format!(
        "from={}&to={}",
        start.unix_timestamp(),
        (start + Duration::minutes(5)).unix_timestamp()
    );
    let body = viewer
        .get(app.url(&format!(
            "/api/v1/metrics/series?metric=cpu_usage_percent&{range}&points=5"
        )))
        .expect_json(StatusCode::OK)
        .await;
    let series = body["series"].as_array().unwrap();
    let hosts: Vec<&str> = series.iter().map(|s| s["host"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["db-1", "web-1", "web-2"]);
    for (s, v) in series.iter().zip([10.0, 30.0, 20.0]) {
        assert_eq!(s["metric"], "cpu_usage_percent");
        let points = s["points"].as_array().unwrap();
        assert_eq!(points.len(), 5, "{s}");
        assert!(points.iter().all(|p| p["avg"].as_f64() == Some(v)), "{s}");
    }
    // A label selector across the fleet; one host still works as before.
    let body = viewer
        .get(app.url(&format!(
            "/api/v1/metrics/series?metric=disk_used_percent%7Bmount%3D%22%2F%22%7D&{range}"
        )))
        .expect_json(StatusCode::OK)
        .await;
    assert_eq!(body["series"].as_array().unwrap().len(), 3);
    let body = viewer
        .get(app.url(&format!(
            "/api/v1/metrics/series?host=web-1&metric=cpu_usage_percent&{range}"
        )))
        .expect_json(StatusCode::OK)
        .await;
    assert_eq!(body["series"].as_array().unwrap().len(), 1);
    assert_eq!(body["series"][0]["host"], "web-1");

    // 100 hosts × 11,000 points is over the bound: the error says how many points fit.
    sqlx::query(
        "INSERT INTO metric_series (host, metric, labels)
         SELECT 'h-' || i, 'cpu_usage_percent', '{}' FROM generate_series(1, 100) i",
    )
    .execute(&pool)
    .await
    .unwrap();
    let res = viewer
        .get(app.url(&format!(
            "/api/v1/metrics/series?metric=cpu_usage_percent&{range}&points=11000"
        )))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let err = json(res).await["error"].as_str().unwrap().to_string();
    assert!(err.contains("points") && err.contains("9708"), "{err}");
    let body = viewer
        .get(app.url(&format!(
            "/api/v1/metrics/series?metric=cpu_usage_percent&{range}&points=9708"
        )))
        .expect_json(StatusCode::OK)
        .await;
    assert_eq!(body["series"].as_array().unwrap().len(), 103);
}

/// A fleet read big enough to be read in two halves at once (100 series × 90 days of hours at
/// 2-hour points) answers as the rollups say: every series, by host, each point the average of
/// its bucket, in time order.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_large_fleet_read_answers_every_series_in_order(pool: PgPool) {
    sqlx::query(
        "INSERT INTO metric_series (host, metric, labels)
         SELECT 'h-' || lpad(i::text, 3, '0'), 'cpu_usage_percent', '{}' FROM generate_series(1, 100) i",
    )
    .execute(&pool)
    .await
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let to = now - Duration::seconds(now.unix_timestamp() % 3600);
    let from = to - Duration::days(90);
    // Every 7th hour of each series has a value (so a 2-hour point holds one hour), newest
    // first in the table so that nothing comes out in time order by accident.
    sqlx::query(
        "INSERT INTO metric_rollup_1h (series_id, bucket, sum, count, min, max, last_ts, last_value)
         SELECT s.id, $1::timestamptz - make_interval(hours => k), v * 12, 12, v, v, $1::timestamptz - make_interval(hours => k), v
         FROM metric_series s
         CROSS JOIN generate_series(1, 2160) k
         CROSS JOIN LATERAL (SELECT (s.id * 10000 + k)::float8 AS v) x
         WHERE k % 7 = 0
         ORDER BY k",
    )
    .bind(to)
    .execute(&pool)
    .await
    .unwrap();
    let ids: Vec<(i32, String)> =
        sqlx::query_as("SELECT id, host FROM metric_series ORDER BY host")
            .fetch_all(&pool)
            .await
            .unwrap();
    const {
        assert!(
            100 * 2160 >= service::BIG_READ_ROWS,
            "the read is big enough to be split"
        )
    };
    let reads = common::state(pool.clone()).reads;
    let selector = app::metrics::parse_selector("cpu_usage_percent").unwrap();
    let got = service::series_of(
        &reads,
        None,
        &selector,
        from,
        to,
        1080,
        app::metrics::Retention::default(),
    )
    .await
    .unwrap();
    assert_eq!(got.series.len(), 100);
    for (s, (id, host)) in got.series.iter().zip(&ids) {
        assert_eq!(&s.host, host);
        assert_eq!((s.tier.as_str(), s.step_seconds), ("1h", 7200));
        let want: Vec<(i64, f64)> = (1..=2160i64)
            .rev()
            .filter(|k| k % 7 == 0)
            .map(|k| {
                let hour = (to - Duration::hours(k)).unix_timestamp();
                (hour - hour % 7200, f64::from(*id * 10000) + k as f64)
            })
            .collect();
        let points: Vec<(i64, f64)> = s
            .points
            .iter()
            .map(|p| (p.ts.0.unix_timestamp(), p.avg))
            .collect();
        assert_eq!(points, want, "{host}");
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn series_api_rejects_bad_parameters(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let cases = [
        ("host=h&metric=cpu%7Bmount%3D", "metric"),
        ("host=h&metric=cpu&from=yesterday", "from"),
        ("host=h&metric=cpu&points=0", "points"),
        ("host=h&metric=cpu&points=20000", "points"),
        ("host=h&metric=cpu&from=now&to=now-1h", "after"),
    ];
    for (q, mentions) in cases {
        let res = viewer
            .get(app.url(&format!("/api/v1/metrics/series?{q}")))
            .call()
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{q}");
        let err = json(res).await["error"].as_str().unwrap().to_string();
        assert!(err.contains(mentions), "{q}: {err}");
    }
    let res = viewer
        .get(app.url("/api/v1/metrics/series?host=nobody&metric=cpu"))
        .call()
        .await;
    assert_eq!(json(res).await, json!({"series": []}));
    let res = app
        .client()
        .get(app.url("/api/v1/metrics/series?host=h&metric=cpu"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn retention_drops_old_partitions_and_rollups(pool: PgPool) {
    let mut cfg = common::test_config();
    cfg.retention_raw_days = 14;
    cfg.retention_1m_days = 30;
    cfg.retention_1h_days = 730;
    let state = common::state_with(pool.clone(), cfg);
    let ts = base_time();
    let batch = app::metrics::IngestBatch {
        host: "h".into(),
        samples: vec![app::metrics::Sample {
            metric: "m".into(),
            labels: Default::default(),
            ts: Timestamp(ts),
            value: 1.0,
        }],
    };
    service::ingest(&state, &batch, service::Origin::Agent)
        .await
        .unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    // Nothing is due yet.
    let report = service::enforce_retention(&state, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(report.dropped_partitions.is_empty());
    assert_eq!(count("SELECT count(*) FROM metric_samples").await, 1);
    // Forty days on: raw and minute data are past their retention, hourly data is not.
    let later = OffsetDateTime::now_utc() + Duration::days(40);
    let report = service::enforce_retention(&state, later).await.unwrap();
    assert!(!report.dropped_partitions.is_empty());
    assert_eq!(report.deleted_minute_rows, 1);
    assert_eq!(report.deleted_five_minute_rows, 1);
    assert_eq!(report.deleted_hour_rows, 0);
    assert_eq!(count("SELECT count(*) FROM metric_samples").await, 0);
    assert_eq!(count("SELECT count(*) FROM metric_rollup_1m").await, 0);
    assert_eq!(count("SELECT count(*) FROM metric_rollup_5m").await, 0);
    assert_eq!(count("SELECT count(*) FROM metric_rollup_1h").await, 1);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn hosts_latest_and_prometheus_exposition(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("ada", Role::Admin).await;
    let token = ingest_token(&app, &admin, "t").await;
    let ts = base_time();
    let body = json!({"host": "web-1", "samples": [
        {"metric": "disk_used_percent", "labels": {"mount": "/"}, "ts": rfc3339(ts), "value": 40.0},
        {"metric": "disk_used_percent", "labels": {"mount": "/"}, "ts": rfc3339(ts + Duration::seconds(5)), "value": 41.5},
        {"metric": "disk_used_percent", "labels": {"mount": "/var/lib \"data\""}, "ts": rfc3339(ts), "value": 7.0},
        {"metric": "cpu_usage_percent", "ts": rfc3339(ts), "value": 3.25}
    ]});
    assert_eq!(
        post_batch(&app, &token, &body).await.status(),
        StatusCode::OK
    );

    let hosts = json(admin.get(app.url("/api/v1/hosts")).call().await).await;
    assert_eq!(hosts[0]["name"], "web-1");
    assert_eq!(hosts[0]["source"], "agent");
    assert_eq!(hosts[0]["last_seen"], rfc3339(ts + Duration::seconds(5)));
    let latest = json(
        admin
            .get(app.url("/api/v1/monitoring/metrics"))
            .call()
            .await,
    )
    .await;
    let disk = latest
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["labels"]["mount"] == "/")
        .unwrap();
    assert_eq!(disk["value"], 41.5, "the newest value wins");

    // /metrics needs a token of scope `metrics` by default.
    assert_eq!(
        Client::new().get(app.url("/metrics")).call().await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        Client::new()
            .get(app.url("/metrics"))
            .bearer_auth(&token)
            .call()
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let res = admin
        .post(app.url("/api/v1/tokens"))
        .json(&json!({"name": "prom", "scope": "metrics"}))
        .call()
        .await;
    let scrape = json(res).await["token"].as_str().unwrap().to_string();
    let res = Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(&scrape)
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    assert!(text.contains("# TYPE disk_used_percent gauge"), "{text}");
    assert!(
        text.contains(&format!(
            "disk_used_percent{{host=\"web-1\",mount=\"/\"}} 41.5 {}",
            (ts + Duration::seconds(5)).unix_timestamp() * 1000
        )),
        "{text}"
    );
    assert!(
        text.contains(r#"mount="/var/lib \"data\"""#),
        "label values are escaped: {text}"
    );
    assert!(text.contains("# TYPE opsdeck_http_requests_total counter"));
    assert!(text.contains("opsdeck_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/hosts\",le=\"+Inf\"}"));
    check_with_promtool(&text);
}

/// `promtool check metrics` when it is installed (scripts/test.sh installs it).
fn check_with_promtool(text: &str) {
    use std::io::Write;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var("CI").is_err(),
            "promtool must be installed in CI"
        );
        eprintln!("promtool not installed: skipping its check");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Lint findings about naming conventions are advice; a parse error fails the check.
    assert!(
        !report.contains("error while linting") && !report.contains("text format parsing error"),
        "{report}"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_local_collector_records_this_host(pool: PgPool) {
    let mut cfg = common::test_config();
    cfg.collect_interval = app::config::Interval(1);
    cfg.host_name = "opsdeck-test-host".into();
    let app = TestApp::spawn_with(pool.clone(), cfg.clone()).await;
    let state = app::state::AppState::new(
        server::leptos_options("127.0.0.1:0".parse().unwrap()),
        pool.clone(),
        cfg,
    );
    let task = tokio::spawn(server::metrics::run_local_collector(state));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let viewer = app.signed_in("vic", Role::Viewer).await;
    loop {
        let latest = json(
            viewer
                .get(app.url("/api/v1/monitoring/metrics?host=opsdeck-test-host"))
                .call()
                .await,
        )
        .await;
        let cpu = latest
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["metric"] == "cpu_usage_percent")
            .cloned();
        if let Some(cpu) = cpu {
            let v = cpu["value"].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&v));
            assert!(latest
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["metric"] == "disk_used_percent" && v["labels"]["mount"] == "/"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no local samples within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    task.abort();
    let hosts = json(viewer.get(app.url("/api/v1/hosts")).call().await).await;
    assert_eq!(hosts[0]["source"], "local");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_job_runs_once_however_many_processes_ask(pool: PgPool) {
    use app::locks::{run_once, JobOutcome};
    let state = app::state::AppState::new(
        server::leptos_options("127.0.0.1:0".parse().unwrap()),
        pool.clone(),
        common::test_config(),
    );
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let job = |runs: std::sync::Arc<std::sync::atomic::AtomicUsize>| {
        move |_s| async move {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            Ok(json!({}))
        }
    };
    let every = std::time::Duration::from_secs(3600);
    let (a, b) = tokio::join!(
        run_once(&state, "test", every, job(runs.clone())),
        run_once(&state, "test", every, job(runs.clone()))
    );
    let mut outcomes = vec![a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert!(outcomes.contains(&JobOutcome::Ran), "{outcomes:?}");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        run_once(&state, "test", every, job(runs.clone()))
            .await
            .unwrap(),
        JobOutcome::NotDue
    );
    let finished: Option<OffsetDateTime> =
        sqlx::query_scalar("SELECT last_finish FROM job_runs WHERE name = 'test'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(finished.is_some());
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn host_pages_show_charts_and_cards(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("ada", Role::Admin).await;
    let token = ingest_token(&app, &admin, "t").await;
    let now = OffsetDateTime::now_utc();
    let mut samples = vec![];
    for i in 0..120 {
        let ts = rfc3339(now - Duration::seconds(5 * i));
        samples.push(json!({"metric": "cpu_usage_percent", "ts": ts, "value": 85.0}));
        samples.push(json!({"metric": "memory_used_percent", "ts": ts, "value": 40.0}));
        samples.push(json!({"metric": "disk_used_percent", "labels": {"mount": "/data"}, "ts": ts, "value": 93.0}));
    }
    assert_eq!(
        post_batch(&app, &token, &json!({"host": "web-1", "samples": samples}))
            .await
            .status(),
        StatusCode::OK
    );

    let res = admin
        .get(app.url("/hosts/web-1?range=1h"))
        .header("accept-encoding", "gzip")
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-encoding"],
        "gzip",
        "pages go out compressed"
    );
    let res = admin.get(app.url("/hosts/web-1?range=1h")).call().await;
    let html = res.text().await.unwrap();
    for id in [
        "chart-cpu",
        "chart-memory",
        "chart-disk:/data",
        "chart-network",
        "chart-tcp",
    ] {
        assert!(
            html.contains(&format!("data-testid=\"{id}\"")),
            "{id} missing"
        );
    }
    assert_eq!(
        html.matches("<svg width=\"860\"").count(),
        3,
        "CPU, memory and /data are drawn as server-rendered SVG"
    );
    assert!(
        html.contains("No data in this range"),
        "metrics never reported say so"
    );

    // Without a range the page opens on the last hour.
    let html = admin
        .get(app.url("/hosts/web-1"))
        .call()
        .await
        .text()
        .await
        .unwrap();
    // (Leptos marks the edges of dynamic text with `<!>`.)
    assert!(
        html.replace("<!>", "")
            .contains("showing 1h from the raw tier"),
        "the default range is 1h"
    );

    let res = admin.get(app.url("/hosts/nowhere")).call().await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("no host `nowhere` has reported"));
    let res = admin.get(app.url("/hosts/web-1?range=2y")).call().await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("choose 15m, 1h, 6h, 24h, 7d, 30d, 90d"));

    let html = admin.get(app.url("/")).call().await.text().await.unwrap();
    assert!(
        html.contains("data-testid=\"host-card-web-1\""),
        "no card for web-1 on the Overview; its main part: {}",
        html.split("<main")
            .nth(1)
            .unwrap_or(&html)
            .chars()
            .take(3000)
            .collect::<String>()
    );
    assert!(html.contains("stat-row warn"), "85 % CPU is a warning");
    assert!(html.contains("stat-row crit"), "93 % disk is critical");
    assert!(html.contains("Disk /data"), "the fullest disk is shown");
}

/// The Hosts page's sparklines come from one batched read: the same points, for each card, as
/// the series API gives for the closest match of its selector (the one with the fewest labels).
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn batched_sparklines_equal_the_series_of_each_selector(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.signed_in("ada", Role::Admin).await;
    let token = ingest_token(&app, &admin, "t").await;
    let now = OffsetDateTime::now_utc();
    for (host, k) in [("web-1", 1.0), ("db-1", 2.0)] {
        let mut samples = vec![];
        for i in 0..90 {
            let ts = rfc3339(now - Duration::seconds(40 * i));
            let v = (i as f64 * k) % 100.0;
            samples.push(json!({"metric": "cpu_usage_percent", "ts": ts, "value": v}));
            samples.push(json!({"metric": "cpu_usage_percent", "labels": {"cpu": "0"}, "ts": ts, "value": v / 2.0}));
            samples.push(json!({"metric": "disk_used_percent", "labels": {"mount": "/"}, "ts": ts, "value": 50.0 + k}));
            samples.push(json!({"metric": "disk_used_percent", "labels": {"mount": "/data"}, "ts": ts, "value": v}));
            if host == "web-1" {
                samples
                    .push(json!({"metric": "memory_used_percent", "ts": ts, "value": 100.0 - v}));
            }
        }
        let res = post_batch(&app, &token, &json!({"host": host, "samples": samples})).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let retention = app::metrics::Retention::default();
    let from = now - Duration::hours(1);
    let wanted: Vec<(String, app::metrics::Selector)> = [
        ("web-1", "cpu_usage_percent"),
        ("web-1", "memory_used_percent"),
        ("web-1", "disk_used_percent{mount=\"/data\"}"),
        ("db-1", "cpu_usage_percent{cpu=\"0\"}"),
        ("db-1", "memory_used_percent"),
        ("db-1", "disk_used_percent"),
        ("nowhere", "cpu_usage_percent"),
        ("web-1", "cpu_usage_percent{cpu=\"0\"}"),
    ]
    .iter()
    .map(|(h, s)| (h.to_string(), app::metrics::parse_selector(s).unwrap()))
    .collect();
    let reads = common::state(pool.clone()).reads;
    let batched = service::first_series_points(&reads, &wanted, from, now, 30, retention)
        .await
        .unwrap();
    assert_eq!(batched.len(), wanted.len());
    for ((host, sel), got) in wanted.iter().zip(&batched) {
        let one = service::series(&reads, host, sel, from, now, 30, retention)
            .await
            .unwrap();
        let closest = one.series.iter().min_by_key(|s| s.labels.len());
        let expected = closest.map(|s| s.points.clone()).unwrap_or_default();
        assert_eq!(got, &expected, "{host} {sel}");
    }
    assert!(batched[0].len() >= 20, "an hour of points at 30 per chart");
    assert!(
        batched[4].is_empty() && batched[6].is_empty(),
        "no series, no points"
    );
    assert_ne!(
        batched[0], batched[7],
        "the unlabelled CPU series, not core 0"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_tokens_page_is_for_admins(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = app.signed_in("ada", Role::Admin).await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let res = admin.get(app.url("/admin/tokens")).call().await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("No tokens yet"));
    ingest_token(&app, &admin, "web-agents").await;
    let html = admin
        .get(app.url("/admin/tokens"))
        .call()
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-testid=\"token-web-agents\"") && html.contains("odk_"));
    assert_eq!(
        viewer.get(app.url("/admin/tokens")).call().await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        viewer
            .post(app.url("/sfn/tokens/list"))
            .call()
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_agent_buffers_while_the_server_is_away_and_delivers_once(pool: PgPool) {
    // A port with nothing behind it yet.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let (_, token) = app::auth::tokens::create(&pool, "agents", "ingest", None)
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("opsdeck-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let agent = tokio::spawn(server::agent::run(server::config::AgentArgs {
        server: format!("http://{addr}"),
        token_file: token_file.clone(),
        interval: "1s".into(),
        host: Some("agent-host".into()),
        buffer: "1h".into(),
    }));
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let server_up = OffsetDateTime::now_utc();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let _app = TestApp::spawn_on(listener, pool.clone(), common::test_config()).await;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (n, distinct, earliest): (i64, i64, Option<OffsetDateTime>) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT ts), min(ts) FROM metric_samples s JOIN metric_series m ON m.id = s.series_id
             WHERE m.host = 'agent-host' AND m.metric = 'cpu_usage_percent'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if distinct >= 5 {
            assert_eq!(n, distinct, "one sample per collection, none doubled");
            assert!(
                earliest.unwrap() < server_up,
                "samples taken while the server was away arrived"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "agent delivered {distinct} collections within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    agent.abort();
    std::fs::remove_dir_all(&dir).ok();
}

/// An existing database gets the 5-minute tier filled from the minute rollups it already has.
#[sqlx::test(migrations = false)]
async fn the_five_minute_tier_is_backfilled_from_stored_minutes(pool: PgPool) {
    // The migrations before it, as a directory of their own.
    let dir = std::env::temp_dir().join(format!("opsdeck-mig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<_> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    files.sort();
    let at = files
        .iter()
        .position(|f| f.to_string_lossy().ends_with("_metric_rollup_5m.sql"))
        .expect("the 5-minute tier's migration");
    for f in &files[..at] {
        std::fs::copy(f, dir.join(f.file_name().unwrap())).unwrap();
    }
    let before = sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap();
    before.run(&pool).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    sqlx::query(
        "INSERT INTO metric_rollup_1m (series_id, bucket, sum, count, min, max, last_ts, last_value) VALUES
           (1, '2026-12-01 10:00Z', 10, 2, 4, 6, '2026-12-01 10:00:30Z', 6),
           (1, '2026-12-01 10:04Z', 3, 1, 3, 3, '2026-12-01 10:04:10Z', 3),
           (1, '2026-12-01 10:05Z', 1, 1, 1, 1, '2026-12-01 10:05:00Z', 1),
           (2, '2026-12-01 10:03Z', 7, 1, 7, 7, '2026-12-01 10:03:59Z', 7)",
    )
    .execute(&pool)
    .await
    .unwrap();
    server::MIGRATOR.run(&pool).await.unwrap();
    let rows: Vec<(i32, OffsetDateTime, f64, i32, f64, f64, f64)> = sqlx::query_as(
        "SELECT series_id, bucket, sum, count, min, max, last_value FROM metric_rollup_5m ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let t =
        |s: &str| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(
        rows,
        vec![
            (1, t("2026-12-01T10:00:00Z"), 13.0, 3, 3.0, 6.0, 3.0),
            (1, t("2026-12-01T10:05:00Z"), 1.0, 1, 1.0, 1.0, 1.0),
            (2, t("2026-12-01T10:00:00Z"), 7.0, 1, 7.0, 7.0, 7.0),
        ]
    );
}
