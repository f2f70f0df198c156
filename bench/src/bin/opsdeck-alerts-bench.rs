//! Alert evaluation benchmark (figures only): 100 hosts × 10 series (CPU, memory, 8 disks)
//! with fresh values, 20 health checks, 100,000 log lines in the last 5 minutes across 5
//! services, 5 backup targets; 1,000 rules over them (940 metric rules on one host
//! each or on `*`, 20 health, 30 log, 10 backup); then evaluation rounds as the server runs
//! them every 15 s, timed.
//!
//! Usage: DATABASE_URL=postgres://…/scratch opsdeck-alerts-bench   (see bench/alerts.sh)

use app::alerts::service::{evaluate, upsert_rule_by as upsert_rule};
use app::alerts::RuleSpec;
use app::auth::service::Actor;
use std::time::Instant;
use time::OffsetDateTime;

use bench::Res;

fn spec(v: serde_json::Value) -> Res<RuleSpec> {
    Ok(serde_json::from_value(v)?)
}

#[tokio::main]
async fn main() -> Res<()> {
    let (pool, state) = bench::scratch().await?;
    let t = Instant::now();
    sqlx::query(
        "INSERT INTO metric_series (host, metric, labels)
         SELECT 'host-' || h, m, CASE WHEN m = 'disk_used_percent' THEN jsonb_build_object('mount', '/d' || d) ELSE '{}' END
         FROM generate_series(0, 99) h,
              (VALUES ('cpu_usage_percent', 0), ('memory_used_percent', 0),
                      ('disk_used_percent', 0), ('disk_used_percent', 1), ('disk_used_percent', 2), ('disk_used_percent', 3),
                      ('disk_used_percent', 4), ('disk_used_percent', 5), ('disk_used_percent', 6), ('disk_used_percent', 7)) AS r(m, d)",
    )
    .execute(&pool)
    .await?;
    // Values 0–99: about a fifth of the series are above 80.
    sqlx::query(
        "INSERT INTO metric_latest (series_id, ts, value)
         SELECT id, now(), (id * 37 % 100)::float8 FROM metric_series",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO health_checks (name, url, interval_seconds, timeout_seconds, up, state_since, last_checked_at, last_latency_ms)
         SELECT 'check-' || i, 'http://127.0.0.1:9/' || i, 30, 5, i % 7 <> 0, now(), now(), 12 FROM generate_series(0, 19) i",
    )
    .execute(&pool)
    .await?;
    let now = OffsetDateTime::now_utc();
    let mut lines = vec![];
    for i in 0..20_000 {
        lines.push(app::logs::parse::parse_line(
            app::logs::parse::Format::Json,
            &format!(
                r#"{{"level":"{}","message":"request {i}","context":{{"execution_time":{}}}}}"#,
                if i % 17 == 0 { "ERROR" } else { "INFO" },
                (i % 50) as f64 / 10.0
            ),
        ));
    }
    for s in 0..5 {
        app::logs::store::insert(
            &state,
            &format!("svc-{s}"),
            "bench",
            &lines,
            now - time::Duration::seconds(60),
        )
        .await?;
    }
    sqlx::query(
        "INSERT INTO backup_targets (name, database_url, created_at)
         SELECT 'db-' || i, 'postgres://x@127.0.0.1/db' || i, now() - interval '3 days' FROM generate_series(0, 4) i",
    )
    .execute(&pool)
    .await?;
    let metrics = [
        "cpu_usage_percent",
        "memory_used_percent",
        "disk_used_percent",
    ];
    let mut n = 0;
    for i in 0..940 {
        let host = if i % 47 == 0 {
            "*".to_string()
        } else {
            format!("host-{}", i % 100)
        };
        upsert_rule(
            &pool,
            &spec(serde_json::json!({
                "name": format!("metric {i}"), "kind": "metric", "host": host,
                "metric": metrics[i % 3], "threshold": 80, "clear_threshold": 75, "for_seconds": 60
            }))?,
            &Actor::system("bench"),
        )
        .await?;
        n += 1;
    }
    for i in 0..20 {
        upsert_rule(&pool, &spec(serde_json::json!({"name": format!("health {i}"), "kind": "health", "check": format!("check-{i}")}))?, &Actor::system("bench")).await?;
        n += 1;
    }
    for i in 0..30 {
        let cond = ["error_rate", "avg_response_time", "query_count"][i % 3];
        let mut v = serde_json::json!({"name": format!("log {i}"), "kind": "log", "condition": cond,
            "threshold": 5, "service": format!("svc-{}", i % 5), "window_seconds": 300});
        if cond == "query_count" {
            v["query"] = "level:error \"request 1\"".into();
        }
        upsert_rule(&pool, &spec(v)?, &Actor::system("bench")).await?;
        n += 1;
    }
    for i in 0..10 {
        upsert_rule(&pool, &spec(serde_json::json!({"name": format!("backup {i}"), "kind": "backup", "hours": 26, "target": format!("db-{}", i % 5)}))?, &Actor::system("bench")).await?;
        n += 1;
    }
    println!(
        "set-up: {n} rules, 1000 series, 20 checks, 100000 log lines, 5 backup targets in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut ms = vec![];
    let mut last = None;
    for round in 0..40 {
        let t = Instant::now();
        let r = evaluate(&pool, OffsetDateTime::now_utc()).await?;
        let elapsed = t.elapsed().as_secs_f64() * 1000.0;
        if round > 0 {
            ms.push(elapsed);
        } else {
            println!(
                "first round (every instance new): {elapsed:.0} ms, {} instances, {} pending, {} firing",
                r.instances, r.pending, r.firing
            );
        }
        last = Some(r);
    }
    ms.sort_by(f64::total_cmp);
    let r = last.unwrap_or_default();
    println!(
        "one evaluation round over {} rules ({} instances, {} firing, {} pending): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms ({} rounds)",
        r.rules,
        r.instances,
        r.firing,
        r.pending,
        ms[ms.len() / 2],
        ms[ms.len() * 95 / 100],
        ms[ms.len() - 1],
        ms.len()
    );
    Ok(())
}
