//! Capacity forecasts from real hourly rollups: a disk growing in a straight line crosses 80 %
//! when the line says, a flat memory never does, a young series has "not enough data".

mod common;

use app::auth::Role;
use app::metrics::{IngestBatch, Labels, Sample};
use app::timestamp::Timestamp;
use common::{Call, TestApp};
use reqwest::StatusCode;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

#[sqlx::test(migrations = "../migrations")]
async fn forecasts_cross_when_the_history_says(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let viewer = app.signed_in("vic", Role::Viewer).await;
    let now = OffsetDateTime::now_utc();
    // The last full hour, and 72 hours before it.
    let last =
        OffsetDateTime::from_unix_timestamp(now.unix_timestamp() / 3600 * 3600 - 3600).unwrap();
    let mut samples = vec![];
    for i in 0..72i64 {
        let ts = last - Duration::hours(71 - i);
        samples.push(Sample {
            metric: "disk_used_percent".into(),
            labels: Labels::from([("mount".to_string(), "/data".to_string())]),
            ts: Timestamp(ts),
            value: 20.0 + 0.5 * i as f64,
        });
        samples.push(Sample {
            metric: "memory_used_percent".into(),
            labels: Labels::new(),
            ts: Timestamp(ts),
            value: 40.0,
        });
        if i >= 62 {
            samples.push(Sample {
                metric: "cpu_usage_percent".into(),
                labels: Labels::new(),
                ts: Timestamp(ts),
                value: 10.0,
            });
        }
    }
    app::metrics::service::ingest(
        &common::state(pool.clone()),
        &IngestBatch {
            host: "db-1".into(),
            samples,
        },
        app::metrics::service::Origin::Agent,
    )
    .await
    .unwrap();
    // Another host's disk is over 80 % already: the page counts it apart.
    app::metrics::service::ingest(
        &common::state(pool.clone()),
        &IngestBatch {
            host: "db-2".into(),
            samples: (0..30i64)
                .map(|i| Sample {
                    metric: "disk_used_percent".into(),
                    labels: Labels::from([("mount".to_string(), "/".to_string())]),
                    ts: Timestamp(last - Duration::hours(29 - i)),
                    value: 90.0,
                })
                .collect(),
        },
        app::metrics::service::Origin::Agent,
    )
    .await
    .unwrap();

    let rows = viewer
        .get(app.url("/api/v1/forecasts?host=db-1"))
        .expect_json(StatusCode::OK)
        .await;
    let by = |metric: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["metric"] == metric)
            .unwrap()
            .clone()
    };
    // 55.5 % at the last hour, +0.5 %/h: 80 % 49 hours later, 100 % 89 hours later.
    let disk = by("disk_used_percent");
    assert_eq!(disk["model"], "linear");
    assert_eq!(disk["labels"]["mount"], "/data");
    let eta = |v: &serde_json::Value| {
        OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    for (field, hours) in [
        ("eta_80", 49),
        ("eta_80_low", 49),
        ("eta_80_high", 49),
        ("eta_100", 89),
    ] {
        let got = eta(&disk[field]);
        assert!(
            (got - (last + Duration::hours(hours))).abs() < Duration::minutes(1),
            "{field}: {got}"
        );
    }
    assert!((disk["in_7d"].as_f64().unwrap() - (55.5 + 0.5 * 168.0)).abs() < 1e-6);
    let memory = by("memory_used_percent");
    assert!(memory["eta_80"].is_null());
    assert!(memory["reason"].as_str().unwrap().contains("within a year"));
    let cpu = by("cpu_usage_percent");
    assert!(cpu["model"].is_null() && cpu["eta_80"].is_null());
    assert!(cpu["reason"]
        .as_str()
        .unwrap()
        .starts_with("not enough data"));
    // A young series already above 80 % says so, with the crossing now.
    let full = app::forecast::service::forecast_one(&(
        "h".to_string(),
        "disk_used_percent".to_string(),
        Labels::new(),
        vec![(1000, 85.0), (1001, 91.0)],
    ))
    .0;
    assert!(full.eta_80.is_some() && full.model.is_none());
    assert!(full
        .reason
        .unwrap()
        .starts_with("already above 80 %; not enough data"));
    // Soonest first.
    assert_eq!(rows[0]["metric"], "disk_used_percent");

    let html = viewer
        .get(app.url("/capacity"))
        .call()
        .await
        .text()
        .await
        .unwrap();
    // The runbook's warning stands out: 80 % within 7 days.
    assert!(
        html.contains("Disk /data") && html.contains("capacity-warning"),
        "capacity page"
    );
    assert!(
        html.contains("1 resource(s) above 80 % now, and 1 more may exceed it within 7 days."),
        "the warning counts db-2's full disk apart from db-1's growing one"
    );
    let res = viewer
        .get(app.url("/api/v1/forecasts?host=a/b"))
        .call()
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = app.client().get(app.url("/api/v1/forecasts")).call().await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
