//! The tailer against real files: appends, rotation by rename (logrotate `create`) with the
//! writer still appending to the old file, `copytruncate`, a restart with lines written while it
//! was down, partial lines, and text entries with stack traces — every line stored exactly once.

mod common;

use sqlx::PgPool;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

fn append(path: &Path, from: u64, n: u64) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in from..from + n {
        writeln!(f, r#"{{"level":"info","message":"line {i}"}}"#).unwrap();
    }
}

async fn stored(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT message) FROM log_lines WHERE service = 'tail'")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn wait_for(pool: &PgPool, n: i64) {
    for _ in 0..200 {
        let (count, distinct) = stored(pool).await;
        assert_eq!(count, distinct, "a line was stored twice");
        if count >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And nothing more arrives.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(stored(pool).await, (n, n));
}

fn state(pool: &PgPool) -> app::state::AppState {
    common::state(pool.clone())
}

async fn add_source(pool: &PgPool, path: &std::path::Path, format: &str) {
    let source = app::specs::NewLogSource {
        path: path.to_string_lossy().into_owned(),
        format: format.into(),
        service: "tail".into(),
    };
    app::logs::sources::add_checked(&state(pool), &source)
        .await
        .unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn rotation_truncation_and_restarts_lose_and_repeat_nothing(pool: PgPool) {
    let dir = std::env::temp_dir().join(format!("opsdeck-tail-{}-{}", std::process::id(), line!()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("app.log");
    append(&log, 0, 1000);
    add_source(&pool, &log, "json").await;
    let tailer = tokio::spawn(server::logs::tail::run(state(&pool)));
    wait_for(&pool, 1000).await;

    // A partial line waits for its newline.
    {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        write!(f, r#"{{"level":"info","message":"line 1000"#).unwrap();
        f.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(stored(&pool).await.0, 1000);
        writeln!(f, r#""}}"#).unwrap();
    }
    wait_for(&pool, 1001).await;

    // Rotation by rename, the application still writing to the old file for a moment.
    let mut old_writer = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::fs::rename(&log, dir.join("app.log.1")).unwrap();
    for i in 1001..1051 {
        writeln!(old_writer, r#"{{"level":"info","message":"line {i}"}}"#).unwrap();
    }
    drop(old_writer);
    append(&log, 1051, 200);
    wait_for(&pool, 1251).await;

    // copytruncate: copied away, emptied in place, written again.
    std::fs::copy(&log, dir.join("app.log.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, 1251, 100);
    wait_for(&pool, 1351).await;

    // Stopped; lines written meanwhile, then a rotation while it is down; started again.
    tailer.abort();
    let _ = tailer.await;
    // The advisory lock goes with the connection; give PostgreSQL a moment to notice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    append(&log, 1351, 300);
    std::fs::rename(&log, dir.join("app.log.3")).unwrap();
    append(&log, 1651, 49);
    let tailer = tokio::spawn(server::logs::tail::run(state(&pool)));
    wait_for(&pool, 1700).await;

    let sources = app::logs::sources::list_all(&pool).await.unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].lines, 1700);
    assert!(sources[0].position > 0);
    tailer.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

#[sqlx::test(migrations = "../migrations")]
async fn text_entries_keep_their_stack_traces_across_reads(pool: PgPool) {
    let dir = std::env::temp_dir().join(format!("opsdeck-tail-{}-{}", std::process::id(), line!()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("worker-1.log");
    std::fs::write(&log, "").unwrap();
    add_source(&pool, &dir.join("worker-*.log"), "text").await;
    let tailer = tokio::spawn(server::logs::tail::run(state(&pool)));
    let write = |s: &str| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(s.as_bytes()).unwrap();
    };
    write("2026-11-24 10:15:02,123 ERROR Workflow execution failed\nTraceback (most recent call last):\n");
    tokio::time::sleep(Duration::from_millis(500)).await;
    write("  File \"w.py\", line 9\nValueError: boom\n2026-11-24 10:15:03 INFO next\n");
    for _ in 0..100 {
        if stored(&pool).await.0 >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows: Vec<(String, Option<i16>)> =
        sqlx::query_as("SELECT message, level FROM log_lines WHERE service = 'tail' ORDER BY ts")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, "Workflow execution failed\nTraceback (most recent call last):\n  File \"w.py\", line 9\nValueError: boom");
    assert_eq!(rows[0].1, Some(4));
    assert_eq!(rows[1].0, "next");
    // A second file matching the glob is followed too.
    std::fs::write(
        dir.join("worker-2.log"),
        "2026-11-24 10:16:00 WARN from the second worker\n",
    )
    .unwrap();
    for _ in 0..100 {
        if stored(&pool).await.0 >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stored(&pool).await.0, 3);
    tailer.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
