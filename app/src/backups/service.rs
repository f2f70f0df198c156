//! Backups on the server: targets, runs (`pg_dump -Fc` through a temporary file, fsync, rename),
//! verification, test restores, restores, retention and the database-health figures.
//!
//! Concurrency across processes: a run holds the session-level advisory lock
//! `opsdeck.backup.<target id>` on a connection of its own for its whole life (a killed process
//! drops the connection and so the lock); restores hold `opsdeck.restore.<target id>`. Running
//! runs and restores beat a heartbeat; one whose heartbeat stops is marked failed by any process.

use super::{
    conn, cron, retention, BackupRun, BackupsOverview, DbHealth, IndexHealth, ManifestEntry,
    RestoreJob, RunDetail, TableHealth, TargetCard, TargetInfo, VerifyOutcome,
};
use crate::auth::service::{audit, verify_password, RequestCtx};
use crate::auth::{CurrentUser, Role};
use crate::error::{AppError, AppResult};
use crate::locks::HeldLock;
use crate::state::AppState;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// A running job writes its heartbeat this often; one silent for `STALE_SECS` was cut off.
const HEARTBEAT_SECS: u64 = 3;
pub const STALE_SECS: i64 = 60;
const STDERR_TAIL: usize = 4000;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TargetRow {
    pub id: i64,
    pub name: String,
    pub database_url: Option<String>,
    pub schedule: Option<String>,
    pub timezone: String,
    pub keep_days: i32,
    pub keep_min: i32,
    pub verify_every_hours: i32,
    pub next_run_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl TargetRow {
    /// The full connection URL, password included: for connections and child processes only.
    fn url(&self, state: &AppState) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| state.config.database_url.expose().to_string())
    }

    fn own(&self) -> bool {
        self.database_url.is_none()
    }
}

const TARGET_COLUMNS: &str = "id, name, database_url, schedule, timezone, keep_days, keep_min, verify_every_hours, next_run_at, created_at";

pub async fn target_by_name(pool: &PgPool, name: &str) -> AppResult<TargetRow> {
    sqlx::query_as(&format!(
        "SELECT {TARGET_COLUMNS} FROM backup_targets WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::not_found(format!("no backup target named `{name}`")))
}

async fn target_by_id(pool: &PgPool, id: i64) -> AppResult<TargetRow> {
    sqlx::query_as(&format!(
        "SELECT {TARGET_COLUMNS} FROM backup_targets WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::not_found("no such backup target"))
}

/// Opsdeck's own database is a target from the first start (nightly at 02:00 UTC).
pub async fn ensure_own_target(pool: &PgPool) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO backup_targets (name, database_url, schedule, timezone)
         SELECT 'opsdeck', NULL, '0 2 * * *', 'UTC'
         WHERE NOT EXISTS (SELECT 1 FROM backup_targets WHERE database_url IS NULL)
         ON CONFLICT (name) DO NOTHING",
    )
    .execute(pool)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- targets

#[derive(Debug, Clone)]
pub struct NewTarget {
    pub name: String,
    pub database_url: String,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub keep_days: Option<i32>,
    pub keep_min: Option<i32>,
    pub verify_every_hours: Option<i32>,
}

fn next_run(schedule: &Option<String>, tz: &str, after: OffsetDateTime) -> Option<OffsetDateTime> {
    let s = cron::parse(schedule.as_deref()?).ok()?;
    let tz = cron::parse_timezone(tz).ok()?;
    let after = chrono::DateTime::from_timestamp(after.unix_timestamp(), 0)?;
    let next = s.next_after(after, tz)?;
    OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
}

pub async fn create_target(pool: &PgPool, new: NewTarget) -> AppResult<TargetInfo> {
    super::validate_target_name(&new.name).map_err(AppError::Unprocessable)?;
    conn::split(&new.database_url).map_err(AppError::Unprocessable)?;
    let tz = new.timezone.clone().unwrap_or_else(|| "UTC".into());
    cron::parse_timezone(&tz).map_err(AppError::Unprocessable)?;
    if let Some(s) = &new.schedule {
        cron::parse(s).map_err(|e| AppError::unprocessable(format!("schedule: {e}")))?;
    }
    for (name, v, max) in [
        ("keep_days", new.keep_days, 36_500),
        ("keep_min", new.keep_min, 10_000),
        ("verify_every_hours", new.verify_every_hours, 87_600),
    ] {
        if let Some(v) = v {
            if !(0..=max).contains(&v) {
                return Err(AppError::unprocessable(format!(
                    "{name} must be between 0 and {max}"
                )));
            }
        }
    }
    let next = next_run(&new.schedule, &tz, OffsetDateTime::now_utc());
    let inserted = sqlx::query(
        "INSERT INTO backup_targets (name, database_url, schedule, timezone, keep_days, keep_min, verify_every_hours, next_run_at)
         VALUES ($1, $2, $3, $4, coalesce($5, 30), coalesce($6, 7), coalesce($7, 168), $8)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&new.name)
    .bind(new.database_url.trim())
    .bind(&new.schedule)
    .bind(&tz)
    .bind(new.keep_days)
    .bind(new.keep_min)
    .bind(new.verify_every_hours)
    .bind(next)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(AppError::conflict(format!(
            "a backup target named `{}` exists",
            new.name
        )));
    }
    let row = target_by_name(pool, &new.name).await?;
    target_info(pool, &row, "", OffsetDateTime::now_utc()).await
}

pub async fn create_target_audited(
    ctx: &RequestCtx,
    admin: &CurrentUser,
    new: NewTarget,
) -> AppResult<TargetInfo> {
    let name = new.name.clone();
    let result = create_target(&ctx.state.pool, new).await;
    audit(
        &ctx.state.pool,
        Some(&admin.username),
        "backup.target.create",
        Some(&name),
        result.is_ok(),
        ctx.ip.as_deref(),
        serde_json::json!({}),
    )
    .await?;
    result
}

async fn target_info(
    pool: &PgPool,
    t: &TargetRow,
    own_url: &str,
    now: OffsetDateTime,
) -> AppResult<TargetInfo> {
    let (last_success_at, last_verified_at, running): (
        Option<OffsetDateTime>,
        Option<OffsetDateTime>,
        Option<i64>,
    ) = sqlx::query_as(
        "SELECT (SELECT max(finished_at) FROM backup_runs WHERE target_id = $1 AND status = 'succeeded'),
                (SELECT max(test_restored_at) FROM backup_runs WHERE target_id = $1 AND test_restore_ok),
                (SELECT max(id) FROM backup_runs WHERE target_id = $1 AND status = 'running')",
    )
    .bind(t.id)
    .fetch_one(pool)
    .await?;
    let url = t
        .database_url
        .clone()
        .unwrap_or_else(|| own_url.to_string());
    let (public, database) = match conn::split(&url) {
        Ok(p) => (crate::redact::url(&p.public_url), p.database),
        Err(_) if t.own() => ("(Opsdeck's own database)".into(), "opsdeck".into()),
        Err(e) => (format!("invalid: {e}"), String::new()),
    };
    let overdue = t.schedule.as_deref().and_then(|s| {
        let s = cron::parse(s).ok()?;
        let tz = cron::parse_timezone(&t.timezone).ok()?;
        let from = chrono::DateTime::from_timestamp(now.unix_timestamp(), 0)?;
        let gap = s.longest_gap_secs(from, tz)?;
        let since = last_success_at.unwrap_or(t.created_at);
        Some((now - since).whole_seconds() > 2 * gap)
    });
    Ok(TargetInfo {
        name: t.name.clone(),
        own: t.own(),
        database,
        database_url: public,
        schedule: t.schedule.clone(),
        timezone: t.timezone.clone(),
        keep_days: t.keep_days,
        keep_min: t.keep_min,
        verify_every_hours: t.verify_every_hours,
        next_run_at: t.next_run_at,
        last_success_at,
        last_verified_at,
        overdue: overdue.unwrap_or(false),
        running,
    })
}

pub async fn list_targets(state: &AppState) -> AppResult<Vec<TargetInfo>> {
    let rows: Vec<TargetRow> = sqlx::query_as(&format!(
        "SELECT {TARGET_COLUMNS} FROM backup_targets ORDER BY name"
    ))
    .fetch_all(&state.pool)
    .await?;
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(target_info(&state.pool, r, state.config.database_url.expose(), now).await?);
    }
    Ok(out)
}

// ---------------------------------------------------------------- runs: reading

#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    target: String,
    trigger: String,
    requested_by: Option<String>,
    status: String,
    started_at: OffsetDateTime,
    finished_at: Option<OffsetDateTime>,
    bytes_written: i64,
    size: Option<i64>,
    sha256: Option<String>,
    verify_ok: Option<bool>,
    verify_detail: Option<String>,
    test_restored_at: Option<OffsetDateTime>,
    test_restore_ok: Option<bool>,
    test_restore_detail: Option<String>,
    expired_at: Option<OffsetDateTime>,
    pg_dump_version: Option<String>,
    server_version: Option<String>,
    path: Option<String>,
    error: Option<String>,
    stderr_tail: String,
    manifest: sqlx::types::Json<Vec<ManifestEntry>>,
}

const RUN_SELECT: &str = "SELECT r.id, t.name AS target, r.trigger, r.requested_by, r.status, r.started_at,
    r.finished_at, r.bytes_written, r.size, r.sha256, r.verify_ok, r.verify_detail, r.test_restored_at,
    r.test_restore_ok, r.test_restore_detail, r.expired_at, r.pg_dump_version, r.server_version, r.path,
    r.error, r.stderr_tail, r.manifest
    FROM backup_runs r JOIN backup_targets t ON t.id = r.target_id";

impl From<RunRow> for BackupRun {
    fn from(r: RunRow) -> Self {
        BackupRun {
            id: r.id,
            target: r.target,
            trigger: r.trigger,
            requested_by: r.requested_by,
            status: r.status,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_seconds: r.finished_at.map(|f| (f - r.started_at).as_seconds_f64()),
            bytes_written: r.bytes_written,
            size: r.size,
            sha256: r.sha256,
            verified: r.verify_ok == Some(true),
            verify_detail: r.verify_detail,
            test_restored_at: r.test_restored_at,
            test_restore_ok: r.test_restore_ok,
            test_restore_detail: r.test_restore_detail,
            expired_at: r.expired_at,
            pg_dump_version: r.pg_dump_version,
            server_version: r.server_version,
            file: r.path.as_deref().and_then(|p| {
                Path::new(p)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
            }),
            error: r.error,
            stderr_tail: r.stderr_tail,
            manifest: r.manifest.0,
        }
    }
}

pub async fn list_runs(
    pool: &PgPool,
    target: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> AppResult<Vec<BackupRun>> {
    if let Some(s) = status {
        if !["running", "succeeded", "failed", "expired"].contains(&s) {
            return Err(AppError::bad_request(format!(
                "status `{s}`: use running, succeeded, failed or expired"
            )));
        }
    }
    let rows: Vec<RunRow> = sqlx::query_as(&format!(
        "{RUN_SELECT}
         WHERE ($1::text IS NULL OR t.name = $1)
           AND ($2::text IS NULL
                OR ($2 = 'expired' AND r.expired_at IS NOT NULL)
                OR ($2 <> 'expired' AND r.status = $2 AND r.expired_at IS NULL))
         ORDER BY r.started_at DESC, r.id DESC LIMIT $3"
    ))
    .bind(target)
    .bind(status)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn get_run(pool: &PgPool, id: i64) -> AppResult<BackupRun> {
    let row: Option<RunRow> = sqlx::query_as(&format!("{RUN_SELECT} WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(Into::into)
        .ok_or_else(|| AppError::not_found(format!("no backup with id {id}")))
}

pub async fn overview(
    state: &AppState,
    role: Role,
    target: Option<&str>,
    status: Option<&str>,
) -> AppResult<BackupsOverview> {
    let targets = list_targets(state).await?;
    let mut cards = Vec::with_capacity(targets.len());
    for mut t in targets {
        // Where a target lives is for admins (who manage targets) only.
        if role < Role::Admin {
            t.database_url = String::new();
        }
        let sizes: Vec<(OffsetDateTime, i64)> = sqlx::query_as(
            "SELECT r.finished_at, r.size FROM backup_runs r JOIN backup_targets t ON t.id = r.target_id
             WHERE t.name = $1 AND r.status = 'succeeded' AND r.size IS NOT NULL
             ORDER BY r.finished_at DESC LIMIT 90",
        )
        .bind(&t.name)
        .fetch_all(&state.pool)
        .await?;
        let size_chart = (!sizes.is_empty()).then(|| size_chart(&t.name, &sizes));
        cards.push(TargetCard {
            target: t,
            size_chart,
        });
    }
    let target = target.filter(|s| !s.is_empty());
    let status = status.filter(|s| !s.is_empty());
    let runs = list_runs(&state.pool, target, status, 100).await?;
    Ok(BackupsOverview { role, cards, runs })
}

fn size_chart(name: &str, sizes: &[(OffsetDateTime, i64)]) -> crate::metrics::Chart {
    use crate::metrics::{charts, SeriesPoint, Unit};
    let mut points: Vec<SeriesPoint> = sizes
        .iter()
        .map(|(ts, size)| SeriesPoint {
            ts: *ts,
            avg: *size as f64,
            min: *size as f64,
            max: *size as f64,
        })
        .collect();
    points.sort_by_key(|p| p.ts);
    let from = points.first().map(|p| p.ts.unix_timestamp()).unwrap_or(0);
    let to = points.last().map(|p| p.ts.unix_timestamp()).unwrap_or(0);
    let span = (to - from).max(3600);
    charts::render(
        &format!("backup-size-{name}"),
        "Backup size",
        Unit::Bytes,
        from - span / 20,
        to + span / 20,
        // Backups are hours or days apart: never split the line.
        span,
        &[charts::LineInput {
            label: "size".into(),
            points: &points,
            band: false,
        }],
    )
}

pub async fn run_detail(state: &AppState, role: Role, id: i64) -> AppResult<RunDetail> {
    let run = get_run(&state.pool, id).await?;
    let t = target_by_name(&state.pool, &run.target).await?;
    let database = conn::split(&t.url(state))
        .map(|p| p.database)
        .unwrap_or_default();
    Ok(RunDetail {
        role,
        run,
        database,
        own: t.own(),
    })
}

// ---------------------------------------------------------------- locks and heartbeats

/// What beats: a backup run (with its bytes written so far) or a restore job.
enum Beat {
    Run(Arc<AtomicI64>),
    Restore,
}

/// Beats the job's `heartbeat_at` (and a run's `bytes_written`) until dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(pool: PgPool, id: i64, beat: Beat) -> Self {
        Heartbeat(tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(HEARTBEAT_SECS));
            loop {
                tick.tick().await;
                let q = match &beat {
                    Beat::Run(bytes) => sqlx::query(
                        "UPDATE backup_runs SET heartbeat_at = now(), bytes_written = greatest(bytes_written, $2) WHERE id = $1 AND status = 'running'",
                    )
                    .bind(id)
                    .bind(bytes.load(Ordering::Relaxed)),
                    Beat::Restore => sqlx::query(
                        "UPDATE restore_jobs SET heartbeat_at = now() WHERE id = $1 AND status = 'running'",
                    )
                    .bind(id),
                };
                if let Err(e) = q.execute(&pool).await {
                    tracing::warn!(error = %e, id, "heartbeat failed");
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Marks runs and restores whose heartbeat stopped (their process was killed) as failed, and
/// removes the partial files of such runs. Safe to call from every process at any time.
pub async fn fail_stale(state: &AppState) -> AppResult<usize> {
    let runs: Vec<(i64, String)> = sqlx::query_as(
        "UPDATE backup_runs r SET status = 'failed', finished_at = now(),
            error = 'Opsdeck stopped while this backup ran (last heartbeat ' || to_char(r.heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC); the partial file was discarded and never counted as a backup'
         FROM backup_targets t
         WHERE t.id = r.target_id AND r.status = 'running' AND r.heartbeat_at < now() - make_interval(secs => $1)
         RETURNING r.id, t.name",
    )
    .bind(STALE_SECS as f64)
    .fetch_all(&state.pool)
    .await?;
    for (id, target) in &runs {
        let partial = partial_path(&state.config.data_dir, target, *id);
        if partial.exists() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        tracing::warn!(run = id, target, "backup run had stopped; marked failed");
    }
    let restores = sqlx::query(
        "UPDATE restore_jobs SET status = 'failed', finished_at = now(),
            detail = CASE mode
              WHEN 'in_place' THEN 'Opsdeck stopped during this restore. pg_restore runs in one transaction, so the database is as it was before.'
              ELSE 'Opsdeck stopped during this restore. pg_restore runs in one transaction: the new database ' || database_name || ' holds nothing from this backup; drop it or restore again.' END
         WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => $1)",
    )
    .bind(STALE_SECS as f64)
    .execute(&state.pool)
    .await?
    .rows_affected();
    Ok(runs.len() + restores as usize)
}

// ---------------------------------------------------------------- runs: doing

fn target_dir(data_dir: &Path, target: &str) -> PathBuf {
    data_dir.join("backups").join(target)
}

fn partial_path(data_dir: &Path, target: &str, id: i64) -> PathBuf {
    target_dir(data_dir, target).join(format!(".run-{id}.partial"))
}

/// A libpq service file of mode 0600 holding a connection's parameters, deleted when dropped:
/// how pg_dump and pg_restore get a database's password and TLS secrets, which never go on
/// their command lines (visible to every user of the host) nor in the environment.
pub struct ServiceFile(PathBuf);

impl ServiceFile {
    pub fn write(url: &str) -> Result<ServiceFile, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = conn::service_file(url)?;
        let path = std::env::temp_dir().join(format!("opsdeck-pgservice-{}", random_suffix()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot write a connection file in {}: {e}", path.display()))?;
        let file = ServiceFile(path);
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| format!("cannot write a connection file: {e}"))?;
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ServiceFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A child process that dies with Opsdeck (so no orphaned pg_restore carries on alone) and, with
/// a service file, connects through it (`--dbname=service=opsdeck`).
fn command(program: &str, service: Option<&ServiceFile>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(s) = service {
        cmd.env("PGSERVICEFILE", s.path())
            .arg("--dbname")
            .arg(format!("service={}", conn::SERVICE));
    }
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches only this (forked) process.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// Keeps the last `STDERR_TAIL` bytes of a child's stderr; calls `on_line` for every line.
async fn collect_stderr(
    stderr: tokio::process::ChildStderr,
    mut on_line: impl FnMut(&str),
) -> String {
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut tail = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        on_line(&line);
        tail.push_str(&line);
        tail.push('\n');
        if tail.len() > 2 * STDERR_TAIL {
            let mut cut = tail.len() - STDERR_TAIL;
            while !tail.is_char_boundary(cut) {
                cut += 1;
            }
            tail.drain(..cut);
        }
    }
    if tail.len() > STDERR_TAIL {
        let mut cut = tail.len() - STDERR_TAIL;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail.drain(..cut);
    }
    tail
}

async fn tool_version(program: &str) -> Option<String> {
    let out = tokio::process::Command::new(program)
        .arg("--version")
        .output()
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Ordinary tables whose data pg_dump writes (not system, temporary or extension-owned ones).
const USER_TABLES_SQL: &str = "SELECT n.nspname::text, c.relname::text FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND c.relpersistence <> 't'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1, 2";

async fn count_rows(
    c: &mut PgConnection,
    tables: &[(String, String)],
) -> Result<Vec<ManifestEntry>, sqlx::Error> {
    let mut out = Vec::with_capacity(tables.len());
    for (schema, table) in tables {
        let rows: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM ONLY {}.{}",
            quote_ident(schema),
            quote_ident(table)
        ))
        .fetch_one(&mut *c)
        .await?;
        out.push(ManifestEntry {
            schema: schema.clone(),
            table: table.clone(),
            rows,
        });
    }
    Ok(out)
}

/// What a finished dump looks like.
struct Dumped {
    path: PathBuf,
    size: i64,
    sha256: String,
    manifest: Vec<ManifestEntry>,
    server_version: String,
    stderr_tail: String,
}

/// Starts a backup of `target`: 409 while one runs (in any process). Returns the run id at once;
/// the run goes on in the background.
/// The target and its run lock: 409 while a run of it holds the lock (in any process).
async fn take_run_lock(state: &AppState, target: &str) -> AppResult<(TargetRow, HeldLock)> {
    let t = target_by_name(&state.pool, target).await?;
    match HeldLock::try_take(state, &format!("opsdeck.backup.{}", t.id)).await? {
        Some(lock) => Ok((t, lock)),
        None => Err(AppError::conflict(format!(
            "a backup of `{}` is already running",
            t.name
        ))),
    }
}

pub async fn start_run(
    state: &AppState,
    target: &str,
    trigger: &str,
    requested_by: Option<&str>,
) -> AppResult<i64> {
    let (t, lock) = take_run_lock(state, target).await?;
    let id = insert_run(&state.pool, t.id, trigger, requested_by).await?;
    let state = state.clone();
    tokio::spawn(async move {
        execute_run(&state, &t, id).await;
        lock.release().await;
    });
    Ok(id)
}

/// Runs a backup in the foreground (the CLI), 409 while one runs.
pub async fn run_now(state: &AppState, target: &str, trigger: &str) -> AppResult<BackupRun> {
    let (t, lock) = take_run_lock(state, target).await?;
    let id = insert_run(&state.pool, t.id, trigger, None).await?;
    execute_run(state, &t, id).await;
    lock.release().await;
    get_run(&state.pool, id).await
}

async fn insert_run(
    pool: &PgPool,
    target_id: i64,
    trigger: &str,
    requested_by: Option<&str>,
) -> AppResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO backup_runs (target_id, trigger, requested_by, status) VALUES ($1, $2, $3, 'running') RETURNING id",
    )
    .bind(target_id)
    .bind(trigger)
    .bind(requested_by)
    .fetch_one(pool)
    .await?)
}

pub async fn start_run_audited(
    ctx: &RequestCtx,
    user: &CurrentUser,
    target: &str,
) -> AppResult<i64> {
    let result = start_run(&ctx.state, target, "manual", Some(&user.username)).await;
    audit(
        &ctx.state.pool,
        Some(&user.username),
        "backup.run",
        Some(target),
        result.is_ok(),
        ctx.ip.as_deref(),
        serde_json::json!({ "run": result.as_ref().ok() }),
    )
    .await?;
    result
}

/// The whole run: dump, record, verify, apply retention. Never returns an error: the outcome is
/// in the run's row. The caller holds the target's lock.
async fn execute_run(state: &AppState, t: &TargetRow, id: i64) -> bool {
    let bytes = Arc::new(AtomicI64::new(0));
    let heartbeat = Heartbeat::start(state.pool.clone(), id, Beat::Run(bytes.clone()));
    let started = std::time::Instant::now();
    let result = dump(state, t, id, bytes.clone()).await;
    drop(heartbeat);
    let ok = match result {
        Ok(d) => {
            let recorded = sqlx::query(
                "UPDATE backup_runs SET status = 'succeeded', finished_at = now(), path = $2, size = $3,
                    bytes_written = $3, sha256 = $4, manifest = $5, pg_dump_version = $6, server_version = $7,
                    stderr_tail = $8
                 WHERE id = $1",
            )
            .bind(id)
            .bind(d.path.to_string_lossy().as_ref())
            .bind(d.size)
            .bind(&d.sha256)
            .bind(sqlx::types::Json(&d.manifest))
            .bind(tool_version("pg_dump").await)
            .bind(&d.server_version)
            .bind(&d.stderr_tail)
            .execute(&state.pool)
            .await;
            match recorded {
                Ok(_) => {
                    tracing::info!(run = id, target = %t.name, size = d.size, secs = started.elapsed().as_secs_f64(), "backup succeeded");
                    // Checksum and catalogue check at once; test restores on their schedule.
                    if let Err(e) = verify(state, id, false).await {
                        tracing::warn!(run = id, error = %e, "verification after the run failed");
                    }
                    if let Err(e) = apply_retention(state, t, OffsetDateTime::now_utc()).await {
                        tracing::warn!(target = %t.name, error = %e, "retention failed");
                    }
                    true
                }
                Err(e) => {
                    // The file is complete but unrecorded: remove it rather than leave a stray.
                    tracing::error!(run = id, error = %e, "could not record a finished backup");
                    let _ = tokio::fs::remove_file(&d.path).await;
                    false
                }
            }
        }
        Err((msg, tail)) => {
            tracing::warn!(run = id, target = %t.name, error = %msg, "backup failed");
            let _ = sqlx::query(
                "UPDATE backup_runs SET status = 'failed', finished_at = now(), error = $2, stderr_tail = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(&msg)
            .bind(&tail)
            .execute(&state.pool)
            .await;
            false
        }
    };
    ok
}

/// pg_dump into `.run-<id>.partial`, counted and hashed on the way, then fsync and rename.
async fn dump(
    state: &AppState,
    t: &TargetRow,
    id: i64,
    bytes: Arc<AtomicI64>,
) -> Result<Dumped, (String, String)> {
    let fail = |m: String| (m, String::new());
    let url = t.url(state);
    conn::split(&url).map_err(fail)?;
    let dir = target_dir(&state.config.data_dir, &t.name);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;

    // One snapshot for pg_dump and for the row counts of the manifest.
    let mut snap_conn = PgConnection::connect(&url)
        .await
        .map_err(|e| fail(format!("cannot connect to the database: {e}")))?;
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut snap_conn)
        .await
        .map_err(|e| fail(e.to_string()))?;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut snap_conn)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut snap_conn)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let tables: Vec<(String, String)> = sqlx::query_as(USER_TABLES_SQL)
        .fetch_all(&mut snap_conn)
        .await
        .map_err(|e| fail(e.to_string()))?;

    let partial = partial_path(&state.config.data_dir, &t.name, id);
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| fail(format!("cannot create {}: {e}", partial.display())))?;
    let service = ServiceFile::write(&url).map_err(fail)?;
    let mut child = command("pg_dump", Some(&service))
        .arg("--format=custom")
        .arg("--no-password")
        .arg(format!("--snapshot={snapshot}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start pg_dump: {e}")))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(fail("pg_dump started without pipes".into()));
    };
    let stderr_task = tokio::spawn(collect_stderr(stderr, |_| {}));

    let copy = async {
        // Owned here, so the pipe closes when copying stops (a full disk): pg_dump then stops
        // too instead of waiting forever to write.
        let mut stdout = stdout;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total: i64 = 0;
        loop {
            let n = stdout.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).await?;
            total += n as i64;
            bytes.store(total, Ordering::Relaxed);
        }
        file.flush().await?;
        file.sync_all().await?;
        Ok::<_, std::io::Error>((total, hex::encode(hasher.finalize())))
    };
    let (copied, counted) = tokio::join!(copy, count_rows(&mut snap_conn, &tables));
    if copied.is_err() {
        let _ = child.start_kill();
    }
    let status = child.wait().await;
    let tail = stderr_task.await.unwrap_or_default();
    let _ = sqlx::query("COMMIT").execute(&mut snap_conn).await;
    let _ = snap_conn.close().await;
    drop(file);

    let cleanup = |msg: String, tail: String| async {
        let _ = tokio::fs::remove_file(&partial).await;
        Err((msg, tail))
    };
    // A write that failed says more than the pg_dump it stopped.
    if let Err(e) = &copied {
        let msg = if e.kind() == std::io::ErrorKind::StorageFull {
            format!(
                "the backup disk is full ({e}) in {}; the partial file was removed and older backups are untouched",
                dir.display()
            )
        } else {
            format!("writing the backup file failed: {e}")
        };
        return cleanup(msg, tail).await;
    }
    let status = match status {
        Ok(s) => s,
        Err(e) => return cleanup(format!("pg_dump: {e}"), tail).await,
    };
    if !status.success() {
        let last = tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        return cleanup(format!("pg_dump failed ({status}): {last}"), tail).await;
    }
    let (size, sha256) = match copied {
        Ok(v) => v,
        Err(e) => return cleanup(format!("writing the backup file failed: {e}"), tail).await,
    };
    let manifest = match counted {
        Ok(m) => m,
        Err(e) => {
            return cleanup(format!("counting rows for the manifest failed: {e}"), tail).await
        }
    };
    if size == 0 {
        return cleanup("pg_dump wrote nothing".into(), tail).await;
    }
    let stamp = OffsetDateTime::now_utc();
    let name = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{id}.dump",
        stamp.year(),
        u8::from(stamp.month()),
        stamp.day(),
        stamp.hour(),
        stamp.minute(),
        stamp.second()
    );
    let path = dir.join(name);
    if let Err(e) = tokio::fs::rename(&partial, &path).await {
        return cleanup(
            format!("cannot move the finished file into place: {e}"),
            tail,
        )
        .await;
    }
    // The rename itself must survive a crash.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(Dumped {
        path,
        size,
        sha256,
        manifest,
        server_version,
        stderr_tail: tail,
    })
}

// ---------------------------------------------------------------- verification

async fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// `(schema, table)` of every TABLE DATA entry in `pg_restore --list` output.
pub fn listed_table_data(listing: &str) -> Vec<(String, String)> {
    listing
        .lines()
        .filter(|l| !l.trim_start().starts_with(';'))
        .filter_map(|l| {
            let toks: Vec<&str> = l.split_whitespace().collect();
            let i = toks.windows(2).position(|w| w == ["TABLE", "DATA"])?;
            Some((toks.get(i + 2)?.to_string(), toks.get(i + 3)?.to_string()))
        })
        .collect()
}

struct RunFile {
    path: PathBuf,
    sha256: String,
    manifest: Vec<ManifestEntry>,
}

#[allow(clippy::type_complexity)]
async fn run_file(pool: &PgPool, id: i64) -> AppResult<RunFile> {
    let row: Option<(
        String,
        Option<String>,
        Option<String>,
        Option<OffsetDateTime>,
        sqlx::types::Json<Vec<ManifestEntry>>,
    )> = sqlx::query_as(
        "SELECT status, path, sha256, expired_at, manifest FROM backup_runs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some((status, path, sha, expired, manifest)) = row else {
        return Err(AppError::not_found(format!("no backup with id {id}")));
    };
    if status != "succeeded" {
        return Err(AppError::conflict(format!(
            "backup {id} is {status}: there is no file to use"
        )));
    }
    if expired.is_some() {
        return Err(AppError::conflict(format!(
            "backup {id} has expired: its file was deleted"
        )));
    }
    match (path, sha) {
        (Some(p), Some(s)) => Ok(RunFile {
            path: PathBuf::from(p),
            sha256: s,
            manifest: manifest.0,
        }),
        _ => Err(AppError::conflict(format!("backup {id} has no file"))),
    }
}

/// Checksum, then `pg_restore --list` against the manifest.
async fn check_file(f: &RunFile) -> VerifyOutcome {
    match file_sha256(&f.path).await {
        Err(e) => {
            return VerifyOutcome {
                ok: false,
                detail: format!("cannot read {}: {e}", f.path.display()),
            }
        }
        Ok(sha) if sha != f.sha256 => {
            return VerifyOutcome {
                ok: false,
                detail: format!("checksum mismatch: the file's SHA-256 is {sha}, the run recorded {}; the file was changed or damaged", f.sha256),
            }
        }
        Ok(_) => {}
    }
    let out = command("pg_restore", None)
        .arg("--list")
        .arg(&f.path)
        .output()
        .await;
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            return VerifyOutcome {
                ok: false,
                detail: format!("cannot run pg_restore: {e}"),
            }
        }
    };
    if !out.status.success() {
        return VerifyOutcome {
            ok: false,
            detail: format!(
                "pg_restore --list failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        };
    }
    let listed = listed_table_data(&String::from_utf8_lossy(&out.stdout));
    let missing: Vec<String> = f
        .manifest
        .iter()
        .filter(|m| !listed.iter().any(|(s, t)| *s == m.schema && *t == m.table))
        .map(|m| format!("{}.{}", m.schema, m.table))
        .collect();
    if !missing.is_empty() {
        return VerifyOutcome {
            ok: false,
            detail: format!("the archive lacks data for {}", missing.join(", ")),
        };
    }
    VerifyOutcome {
        ok: true,
        detail: format!(
            "checksum matches; the archive lists data for all {} tables",
            f.manifest.len()
        ),
    }
}

/// Row counts in `url`'s database against the manifest.
async fn compare_with_manifest(url: &str, manifest: &[ManifestEntry]) -> VerifyOutcome {
    let mut c = match PgConnection::connect(url).await {
        Ok(c) => c,
        Err(e) => {
            return VerifyOutcome {
                ok: false,
                detail: format!("cannot connect to the restored database: {e}"),
            }
        }
    };
    let tables: Vec<(String, String)> = manifest
        .iter()
        .map(|m| (m.schema.clone(), m.table.clone()))
        .collect();
    let outcome = match count_rows(&mut c, &tables).await {
        Err(e) => VerifyOutcome {
            ok: false,
            detail: format!("counting rows in the restored database failed: {e}"),
        },
        Ok(counted) => {
            let diffs: Vec<String> = manifest
                .iter()
                .zip(&counted)
                .filter(|(m, c)| m.rows != c.rows)
                .map(|(m, c)| {
                    format!(
                        "{}.{}: {} rows, the manifest says {}",
                        m.schema, m.table, c.rows, m.rows
                    )
                })
                .collect();
            if diffs.is_empty() {
                VerifyOutcome {
                    ok: true,
                    detail: format!(
                        "{} tables and {} rows, equal to the manifest",
                        manifest.len(),
                        manifest.iter().map(|m| m.rows).sum::<i64>()
                    ),
                }
            } else {
                VerifyOutcome {
                    ok: false,
                    detail: diffs.join("; "),
                }
            }
        }
    };
    let _ = c.close().await;
    outcome
}

fn random_suffix() -> String {
    let mut b = [0u8; 4];
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// pg_restore into `database` on the server of `url`; `on_table` sees each table as it is loaded.
async fn pg_restore(
    url: &str,
    database: &str,
    file: &Path,
    extra: &[&str],
    mut on_table: impl FnMut(usize) + Send + 'static,
) -> Result<String, (String, String)> {
    let target_url = conn::with_database(url, database).map_err(|e| (e, String::new()))?;
    let service = ServiceFile::write(&target_url).map_err(|e| (e, String::new()))?;
    let mut child = command("pg_restore", Some(&service))
        .arg("--exit-on-error")
        .arg("--verbose")
        .arg("--no-password")
        .args(extra)
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| (format!("cannot start pg_restore: {e}"), String::new()))?;
    let stderr = child.stderr.take().ok_or_else(|| {
        (
            "pg_restore started without a pipe".to_string(),
            String::new(),
        )
    })?;
    let mut n = 0;
    let tail = collect_stderr(stderr, move |line| {
        if line.contains("processing data for table") {
            n += 1;
            on_table(n);
        }
    })
    .await;
    // pg_restore --verbose is chatty: keep the errors and the end.
    match child.wait().await {
        Ok(s) if s.success() => Ok(tail),
        Ok(s) => {
            let err = tail
                .lines()
                .rfind(|l| l.contains("error") || l.contains("ERROR"))
                .unwrap_or("no message")
                .to_string();
            Err((format!("pg_restore failed ({s}): {err}"), tail))
        }
        Err(e) => Err((format!("pg_restore: {e}"), tail)),
    }
}

/// A test restore's scratch database: `opsdeck_verify_<database>_<run>_<random>`, the database's
/// name cut to 19 characters that are letters, digits or `_`, so that it stays within
/// PostgreSQL's 63 and says what it verifies.
fn scratch_name(database: &str, run: i64, suffix: &str) -> String {
    let db: String = database
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(19)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("opsdeck_verify_{db}_{run}_{suffix}")
}

/// The lock a test restore holds on its scratch database while it lives.
fn scratch_lock(name: &str) -> String {
    format!("opsdeck.backup.scratch.{name}")
}

/// Drops the scratch databases that test restores of a process killed midway left on the
/// target's server: a live test restore holds its scratch database's lock and is connected to
/// it; a left-over one has neither.
async fn drop_left_over_scratch(state: &AppState, admin: &mut PgConnection) {
    let names: Vec<String> = match sqlx::query_scalar(
        "SELECT d.datname FROM pg_database d
         WHERE d.datname LIKE 'opsdeck\\_verify\\_%'
           AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
    )
    .fetch_all(&mut *admin)
    .await
    {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not list left-over scratch databases");
            return;
        }
    };
    for name in names {
        let Ok(Some(lock)) = HeldLock::try_take(state, &scratch_lock(&name)).await else {
            continue;
        };
        match sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&name)
        ))
        .execute(&mut *admin)
        .await
        {
            Ok(_) => {
                tracing::info!(database = %name, "dropped the scratch database of an interrupted test restore")
            }
            Err(e) => {
                tracing::warn!(database = %name, error = %e, "could not drop a left-over scratch database")
            }
        }
        lock.release().await;
    }
}

/// Creates a scratch database, restores into it, compares with the manifest, drops it (and any
/// scratch database an interrupted test restore left behind).
async fn test_restore(state: &AppState, t: &TargetRow, id: i64, f: &RunFile) -> VerifyOutcome {
    let url = t.url(state);
    let database = conn::split(&url).map(|p| p.database).unwrap_or_default();
    let scratch = scratch_name(&database, id, &random_suffix());
    let mut admin = match PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) => {
            return VerifyOutcome {
                ok: false,
                detail: format!("cannot connect to the target's server: {e}"),
            }
        }
    };
    drop_left_over_scratch(state, &mut admin).await;
    // Held until the scratch database is dropped, so that no other process takes it for a
    // left-over one.
    let lock = match HeldLock::try_take(state, &scratch_lock(&scratch)).await {
        Ok(Some(l)) => l,
        Ok(None) | Err(_) => {
            let _ = admin.close().await;
            return VerifyOutcome {
                ok: false,
                detail: "could not take the scratch database's lock; try again".into(),
            };
        }
    };
    if let Err(e) = sqlx::query(&format!("CREATE DATABASE {}", quote_ident(&scratch)))
        .execute(&mut admin)
        .await
    {
        let _ = admin.close().await;
        lock.release().await;
        return VerifyOutcome {
            ok: false,
            detail: format!(
                "cannot create a scratch database (the target's role needs CREATEDB): {e}"
            ),
        };
    }
    let restored = pg_restore(
        &url,
        &scratch,
        &f.path,
        &["--no-owner", "--no-privileges", "--single-transaction"],
        |_| {},
    )
    .await;
    let outcome = match restored {
        Err((msg, _)) => VerifyOutcome {
            ok: false,
            detail: msg,
        },
        Ok(_) => match conn::with_database(&url, &scratch) {
            Ok(u) => compare_with_manifest(&u, &f.manifest).await,
            Err(e) => VerifyOutcome {
                ok: false,
                detail: e,
            },
        },
    };
    if let Err(e) = sqlx::query(&format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(&scratch)
    ))
    .execute(&mut admin)
    .await
    {
        tracing::warn!(database = %scratch, error = %e, "could not drop the scratch database");
    }
    let _ = admin.close().await;
    lock.release().await;
    let detail = if outcome.ok {
        format!("test restore: {}", outcome.detail)
    } else {
        format!("test restore failed: {}", outcome.detail)
    };
    VerifyOutcome {
        ok: outcome.ok,
        detail,
    }
}

/// Verifies a backup (checksum and catalogue; with `test_restore` also a scratch restore) and
/// records the outcome on the run.
pub async fn verify(state: &AppState, id: i64, test: bool) -> AppResult<VerifyOutcome> {
    let f = run_file(&state.pool, id).await?;
    let checked = check_file(&f).await;
    sqlx::query("UPDATE backup_runs SET verified_at = now(), verify_ok = $2, verify_detail = $3 WHERE id = $1")
        .bind(id)
        .bind(checked.ok)
        .bind(&checked.detail)
        .execute(&state.pool)
        .await?;
    if !checked.ok || !test {
        return Ok(checked);
    }
    let target_id: i64 = sqlx::query_scalar("SELECT target_id FROM backup_runs WHERE id = $1")
        .bind(id)
        .fetch_one(&state.pool)
        .await?;
    let t = target_by_id(&state.pool, target_id).await?;
    let outcome = test_restore(state, &t, id, &f).await;
    sqlx::query("UPDATE backup_runs SET test_restored_at = now(), test_restore_ok = $2, test_restore_detail = $3 WHERE id = $1")
        .bind(id)
        .bind(outcome.ok)
        .bind(&outcome.detail)
        .execute(&state.pool)
        .await?;
    Ok(VerifyOutcome {
        ok: outcome.ok,
        detail: format!("{}; {}", checked.detail, outcome.detail),
    })
}

/// Verifies (and with `test`, test-restores) a backup for a request, audited. The work runs
/// in its own task: if the request goes away (the client leaves, the request times out), the
/// test restore still finishes, cleans up its scratch database and is recorded.
pub async fn verify_audited(
    ctx: &RequestCtx,
    user: &CurrentUser,
    id: i64,
    test: bool,
) -> AppResult<VerifyOutcome> {
    let (state, username, ip) = (ctx.state.clone(), user.username.clone(), ctx.ip.clone());
    tokio::spawn(async move {
        let result = verify(&state, id, test).await;
        audit(
            &state.pool,
            Some(&username),
            if test { "backup.test_restore" } else { "backup.verify" },
            Some(&format!("backup {id}")),
            result.as_ref().is_ok_and(|o| o.ok),
            ip.as_deref(),
            serde_json::json!({ "detail": result.as_ref().map(|o| o.detail.clone()).unwrap_or_else(|e| e.to_string()) }),
        )
        .await?;
        result
    })
    .await
    .map_err(|_| AppError::Internal)?
}

/// The newest successful backup of each target whose last test restore is older than its
/// period: the scheduler's weekly proof that backups restore.
pub async fn due_test_restores(pool: &PgPool) -> AppResult<Vec<i64>> {
    Ok(sqlx::query_scalar::<_, Option<i64>>(
        "SELECT (SELECT r.id FROM backup_runs r WHERE r.target_id = t.id AND r.status = 'succeeded' AND r.expired_at IS NULL
                 ORDER BY r.finished_at DESC LIMIT 1)
         FROM backup_targets t
         WHERE t.verify_every_hours > 0
           AND EXISTS (SELECT 1 FROM backup_runs r WHERE r.target_id = t.id AND r.status = 'succeeded' AND r.expired_at IS NULL)
           AND coalesce((SELECT max(test_restored_at) FROM backup_runs r WHERE r.target_id = t.id), '-infinity')
               < now() - make_interval(hours => t.verify_every_hours)",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .flatten()
    .collect())
}

// ---------------------------------------------------------------- retention

#[allow(clippy::type_complexity)]
pub async fn apply_retention(
    state: &AppState,
    t: &TargetRow,
    now: OffsetDateTime,
) -> AppResult<Vec<i64>> {
    let rows: Vec<(i64, Option<OffsetDateTime>, String, Option<bool>, Option<OffsetDateTime>)> = sqlx::query_as(
        "SELECT id, finished_at, status, test_restore_ok, expired_at FROM backup_runs WHERE target_id = $1 AND status <> 'running'",
    )
    .bind(t.id)
    .fetch_all(&state.pool)
    .await?;
    let facts: Vec<retention::RunFacts> = rows
        .into_iter()
        .filter_map(|(id, fin, status, tr, exp)| {
            Some(retention::RunFacts {
                id,
                finished_at: fin?,
                succeeded: status == "succeeded",
                verified: tr == Some(true),
                expired: exp.is_some(),
            })
        })
        .collect();
    let policy = retention::Policy {
        keep_days: t.keep_days.into(),
        keep_min: t.keep_min.max(0) as usize,
    };
    let expire = retention::to_expire(&facts, policy, now);
    for id in &expire {
        let path: Option<String> = sqlx::query_scalar(
            "UPDATE backup_runs SET expired_at = now() WHERE id = $1 AND expired_at IS NULL RETURNING path",
        )
        .bind(id)
        .fetch_optional(&state.pool)
        .await?
        .flatten();
        if let Some(p) = path {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %p, error = %e, "could not delete an expired backup")
                }
            }
        }
        tracing::info!(run = id, target = %t.name, "backup expired");
    }
    Ok(expire)
}

pub async fn apply_all_retention(state: &AppState) -> AppResult<usize> {
    let rows: Vec<TargetRow> =
        sqlx::query_as(&format!("SELECT {TARGET_COLUMNS} FROM backup_targets"))
            .fetch_all(&state.pool)
            .await?;
    let mut n = 0;
    for t in &rows {
        n += apply_retention(state, t, OffsetDateTime::now_utc())
            .await?
            .len();
    }
    Ok(n)
}

// ---------------------------------------------------------------- scheduling

/// Starts the runs that are due. Each due time is claimed with one UPDATE, so however many
/// processes look, one of them starts the run.
pub async fn start_due_runs(state: &AppState, now: OffsetDateTime) -> AppResult<Vec<i64>> {
    let rows: Vec<TargetRow> = sqlx::query_as(&format!(
        "SELECT {TARGET_COLUMNS} FROM backup_targets WHERE schedule IS NOT NULL AND (next_run_at IS NULL OR next_run_at <= $1)"
    ))
    .bind(now)
    .fetch_all(&state.pool)
    .await?;
    let mut started = vec![];
    for t in rows {
        let next = next_run(&t.schedule, &t.timezone, now);
        let claimed = sqlx::query(
            "UPDATE backup_targets SET next_run_at = $2 WHERE id = $1 AND next_run_at IS NOT DISTINCT FROM $3",
        )
        .bind(t.id)
        .bind(next)
        .bind(t.next_run_at)
        .execute(&state.pool)
        .await?
        .rows_affected()
            == 1;
        // A target without a next time yet only gets one; it is not due.
        if !claimed || t.next_run_at.is_none() {
            continue;
        }
        match start_run(state, &t.name, "schedule", None).await {
            Ok(id) => started.push(id),
            Err(AppError::Conflict(m)) => {
                tracing::info!(target = %t.name, "{m}; skipping this scheduled run")
            }
            Err(e) => {
                tracing::warn!(target = %t.name, error = %e, "scheduled backup did not start")
            }
        }
    }
    Ok(started)
}

// ---------------------------------------------------------------- restores

#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub password: String,
    pub confirm: String,
    pub mode: String,
    pub new_database: Option<String>,
}

async fn refuse(ctx: &RequestCtx, user: &CurrentUser, id: i64, why: AppError) -> AppResult<i64> {
    audit(
        &ctx.state.pool,
        Some(&user.username),
        "backup.restore.refused",
        Some(&format!("backup {id}")),
        false,
        ctx.ip.as_deref(),
        serde_json::json!({ "reason": why.to_string() }),
    )
    .await?;
    Err(why)
}

/// Checks everything that can be checked before anything is touched, then starts the job.
pub async fn start_restore(
    ctx: &RequestCtx,
    user: &CurrentUser,
    id: i64,
    req: RestoreRequest,
) -> AppResult<i64> {
    let state = &ctx.state;
    if user.role != Role::Admin {
        return Err(AppError::forbidden("restores are for admins"));
    }
    let stored: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = $1 AND NOT disabled")
            .bind(&user.username)
            .fetch_optional(&state.pool)
            .await?;
    if !verify_password(stored, req.password.clone()).await {
        return refuse(
            ctx,
            user,
            id,
            AppError::forbidden("the password is wrong; nothing was restored"),
        )
        .await;
    }
    let run = get_run(&state.pool, id).await?;
    let f = match run_file(&state.pool, id).await {
        Ok(f) => f,
        Err(e) => return refuse(ctx, user, id, e).await,
    };
    let t = target_by_name(&state.pool, &run.target).await?;
    let url = t.url(state);
    let parts = conn::split(&url).map_err(AppError::Unprocessable)?;
    if req.confirm.trim() != parts.database {
        return refuse(
            ctx,
            user,
            id,
            AppError::unprocessable(format!(
                "type the database name `{}` to confirm",
                parts.database
            )),
        )
        .await;
    }
    let database = match req.mode.as_str() {
        "new_database" => {
            let stamp = OffsetDateTime::now_utc();
            let name = req.new_database.clone().unwrap_or_else(|| {
                format!(
                    "{}_restored_{:04}{:02}{:02}{:02}{:02}",
                    parts.database,
                    stamp.year(),
                    u8::from(stamp.month()),
                    stamp.day(),
                    stamp.hour(),
                    stamp.minute()
                )
            });
            if let Err(e) = conn::valid_database_name(&name) {
                return refuse(ctx, user, id, AppError::Unprocessable(e)).await;
            }
            name
        }
        "in_place" if t.own() => {
            return refuse(
                ctx,
                user,
                id,
                AppError::unprocessable(
                    "Opsdeck cannot restore its own database in place while it runs on it; restore into a new database and point Opsdeck at it",
                ),
            )
            .await
        }
        "in_place" => parts.database.clone(),
        other => {
            return refuse(ctx, user, id, AppError::unprocessable(format!("mode `{other}`: use new_database or in_place"))).await
        }
    };
    if req.mode == "new_database" {
        let mut c = PgConnection::connect(&url).await.map_err(|e| {
            AppError::TargetUnreachable(format!("cannot connect to the target's server: {e}"))
        })?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&database)
                .fetch_one(&mut c)
                .await?;
        let _ = c.close().await;
        if exists {
            return refuse(
                ctx,
                user,
                id,
                AppError::conflict(format!(
                    "a database named `{database}` exists; choose another name"
                )),
            )
            .await;
        }
    }
    let Some(lock) = HeldLock::try_take(state, &format!("opsdeck.restore.{}", t.id)).await? else {
        return refuse(
            ctx,
            user,
            id,
            AppError::conflict(format!("a restore of `{}` is already running", t.name)),
        )
        .await;
    };
    let job: i64 = sqlx::query_scalar(
        "INSERT INTO restore_jobs (backup_id, target_id, mode, database_name, requested_by, status, step)
         VALUES ($1, $2, $3, $4, $5, 'running', 'starting') RETURNING id",
    )
    .bind(id)
    .bind(t.id)
    .bind(&req.mode)
    .bind(&database)
    .bind(&user.username)
    .fetch_one(&state.pool)
    .await?;
    audit(
        &state.pool,
        Some(&user.username),
        "backup.restore.start",
        Some(&format!("backup {id}")),
        true,
        ctx.ip.as_deref(),
        serde_json::json!({ "job": job, "target": t.name, "mode": req.mode, "database": database }),
    )
    .await?;
    let state = state.clone();
    let who = user.username.clone();
    tokio::spawn(async move {
        let heartbeat = Heartbeat::start(state.pool.clone(), job, Beat::Restore);
        let outcome = restore_job_body(&state, &t, job, id, &f, &req.mode, &database, &who).await;
        drop(heartbeat);
        let (ok, detail, tail) = match outcome {
            Ok((detail, tail)) => (true, detail, tail),
            Err((detail, tail)) => (false, detail, tail),
        };
        let _ = sqlx::query(
            "UPDATE restore_jobs SET status = $2, finished_at = now(), step = 'done', detail = $3, stderr_tail = $4 WHERE id = $1",
        )
        .bind(job)
        .bind(if ok { "succeeded" } else { "failed" })
        .bind(&detail)
        .bind(&tail)
        .execute(&state.pool)
        .await;
        let _ = audit(
            &state.pool,
            Some(&who),
            "backup.restore.finish",
            Some(&format!("backup {id}")),
            ok,
            None,
            serde_json::json!({ "job": job, "target": t.name, "database": database, "detail": detail }),
        )
        .await;
        lock.release().await;
    });
    Ok(job)
}

async fn set_step(pool: &PgPool, job: i64, step: &str) {
    let _ = sqlx::query("UPDATE restore_jobs SET step = $2, heartbeat_at = now() WHERE id = $1")
        .bind(job)
        .bind(step)
        .execute(pool)
        .await;
}

type StepResult = Result<(String, String), (String, String)>;

#[allow(clippy::too_many_arguments)]
async fn restore_job_body(
    state: &AppState,
    t: &TargetRow,
    job: i64,
    backup: i64,
    f: &RunFile,
    mode: &str,
    database: &str,
    who: &str,
) -> StepResult {
    let pool = &state.pool;
    // Each step that matters lands in the audit log as it happens.
    let step_audit = |action: &'static str, ok: bool, detail: serde_json::Value| async move {
        let _ = audit(
            pool,
            Some(who),
            action,
            Some(&format!("backup {backup}")),
            ok,
            None,
            serde_json::json!({ "job": job, "target": t.name, "database": database, "detail": detail }),
        )
        .await;
    };
    set_step(pool, job, "verifying the checksum").await;
    match file_sha256(&f.path).await {
        Ok(sha) if sha == f.sha256 => {
            step_audit("backup.restore.checksum", true, serde_json::json!(sha)).await;
        }
        Ok(sha) => {
            step_audit("backup.restore.checksum", false, serde_json::json!(sha)).await;
            return Err((
                format!(
                "checksum mismatch (file {sha}, recorded {}): restore refused; nothing was changed",
                f.sha256
            ),
                String::new(),
            ));
        }
        Err(e) => {
            return Err((
                format!("cannot read the backup file: {e}; nothing was changed"),
                String::new(),
            ))
        }
    }
    let url = t.url(state);
    let total = f.manifest.len();
    let progress = {
        let pool = pool.clone();
        move |n: usize| {
            let pool = pool.clone();
            tokio::spawn(async move {
                set_step(
                    &pool,
                    job,
                    &format!("restoring data: {n} of {total} tables"),
                )
                .await
            });
        }
    };
    if mode == "new_database" {
        set_step(pool, job, &format!("creating database {database}")).await;
        let mut admin = PgConnection::connect(&url).await.map_err(|e| {
            (
                format!("cannot connect to the target's server: {e}"),
                String::new(),
            )
        })?;
        sqlx::query(&format!("CREATE DATABASE {}", quote_ident(database)))
            .execute(&mut admin)
            .await
            .map_err(|e| {
                (
                    format!("cannot create database {database}: {e}; nothing was changed"),
                    String::new(),
                )
            })?;
        set_step(pool, job, "restoring").await;
        let restored = pg_restore(
            &url,
            database,
            &f.path,
            &["--no-owner", "--no-privileges", "--single-transaction"],
            progress,
        )
        .await;
        if let Err((msg, tail)) = restored {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(database)
            ))
            .execute(&mut admin)
            .await;
            let _ = admin.close().await;
            return Err((
                format!("{msg}; the new database {database} was removed, nothing else was touched"),
                tail,
            ));
        }
        let _ = admin.close().await;
        set_step(pool, job, "checking row counts").await;
        let check = match conn::with_database(&url, database) {
            Ok(u) => compare_with_manifest(&u, &f.manifest).await,
            Err(e) => VerifyOutcome {
                ok: false,
                detail: e,
            },
        };
        return if check.ok {
            Ok((
                format!(
                    "restored backup {backup} into the new database {database}: {}",
                    check.detail
                ),
                String::new(),
            ))
        } else {
            Err((
                format!(
                    "restored into {database}, but the contents differ from the manifest: {}",
                    check.detail
                ),
                String::new(),
            ))
        };
    }

    // In place: first a fresh backup of what is there now, so even a wrong choice can be undone.
    set_step(pool, job, "pre-restore backup").await;
    let Some(lock) = HeldLock::try_take(state, &format!("opsdeck.backup.{}", t.id))
        .await
        .map_err(|e| (e.to_string(), String::new()))?
    else {
        return Err(("a backup of this target is running; the restore was not started (try again when it ends)".into(), String::new()));
    };
    let pre = insert_run(pool, t.id, "pre_restore", None)
        .await
        .map_err(|e| (e.to_string(), String::new()))?;
    let _ = sqlx::query("UPDATE restore_jobs SET pre_restore_backup_id = $2 WHERE id = $1")
        .bind(job)
        .bind(pre)
        .execute(pool)
        .await;
    let pre_ok = execute_run(state, t, pre).await;
    lock.release().await;
    step_audit(
        "backup.restore.pre_backup",
        pre_ok,
        serde_json::json!({ "run": pre }),
    )
    .await;
    if !pre_ok {
        return Err((format!("the pre-restore backup (run {pre}) failed, so the restore was not started; the database is untouched"), String::new()));
    }
    set_step(pool, job, "restoring in place").await;
    let restored = pg_restore(
        &url,
        database,
        &f.path,
        &["--clean", "--if-exists", "--single-transaction"],
        progress,
    )
    .await;
    if let Err((msg, tail)) = restored {
        return Err((
            format!("{msg}; pg_restore ran in one transaction, which was rolled back: the database is as it was (pre-restore backup: run {pre})"),
            tail,
        ));
    }
    set_step(pool, job, "checking row counts").await;
    let check = compare_with_manifest(&url, &f.manifest).await;
    if check.ok {
        Ok((
            format!(
                "restored backup {backup} in place: {} (pre-restore backup: run {pre})",
                check.detail
            ),
            String::new(),
        ))
    } else {
        Err((format!("restored in place, but the contents differ from the manifest: {} (pre-restore backup: run {pre})", check.detail), String::new()))
    }
}

pub async fn restore_job(pool: &PgPool, id: i64) -> AppResult<RestoreJob> {
    #[allow(clippy::type_complexity)]
    let row: Option<(i64, i64, String, String, String, String, String, String, OffsetDateTime, Option<OffsetDateTime>, Option<i64>, Option<String>, String)> =
        sqlx::query_as(
            "SELECT j.id, j.backup_id, t.name, j.mode, j.database_name, j.requested_by, j.status, j.step,
                    j.started_at, j.finished_at, j.pre_restore_backup_id, j.detail, j.stderr_tail
             FROM restore_jobs j JOIN backup_targets t ON t.id = j.target_id WHERE j.id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let r = row.ok_or_else(|| AppError::not_found(format!("no restore with id {id}")))?;
    Ok(RestoreJob {
        id: r.0,
        backup_id: r.1,
        target: r.2,
        mode: r.3,
        database: r.4,
        requested_by: r.5,
        status: r.6,
        step: r.7,
        started_at: r.8,
        finished_at: r.9,
        pre_restore_backup_id: r.10,
        detail: r.11,
        stderr_tail: r.12,
    })
}

/// The file of a backup, for download (the caller checks the role and audits).
pub async fn backup_file(pool: &PgPool, id: i64) -> AppResult<(PathBuf, String)> {
    let f = run_file(pool, id).await?;
    let name = f
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("backup-{id}.dump"));
    Ok((f.path, name))
}

// ---------------------------------------------------------------- database health

pub async fn db_health(state: &AppState, target: &str) -> AppResult<DbHealth> {
    let t = target_by_name(&state.pool, target).await?;
    let url = t.url(state);
    let database = conn::split(&url).map(|p| p.database).unwrap_or_default();
    let mut c = PgConnection::connect(&url)
        .await
        .map_err(|e| AppError::TargetUnreachable(format!("cannot connect to `{target}`: {e}")))?;
    let (size_bytes, connections, max_connections): (i64, i64, i64) = sqlx::query_as(
        "SELECT pg_database_size(current_database()),
                (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()),
                current_setting('max_connections')::bigint",
    )
    .fetch_one(&mut c)
    .await?;
    #[allow(clippy::type_complexity)]
    let tables: Vec<(String, i64, i64, i64, Option<OffsetDateTime>, Option<OffsetDateTime>)> = sqlx::query_as(
        "SELECT schemaname || '.' || relname, pg_total_relation_size(relid), n_live_tup, n_dead_tup,
                greatest(last_vacuum, last_autovacuum), greatest(last_analyze, last_autoanalyze)
         FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC, 1 LIMIT 25",
    )
    .fetch_all(&mut c)
    .await?;
    let indexes: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT schemaname || '.' || indexrelname, relname, pg_relation_size(indexrelid), idx_scan
         FROM pg_stat_user_indexes ORDER BY pg_relation_size(indexrelid) DESC, 1 LIMIT 25",
    )
    .fetch_all(&mut c)
    .await?;
    let _ = c.close().await;
    Ok(DbHealth {
        target: t.name,
        database,
        size_bytes,
        connections,
        max_connections,
        tables: tables
            .into_iter()
            .map(|(name, total, live, dead, vac, an)| TableHealth {
                name,
                total_bytes: total,
                live_rows: live,
                dead_rows: dead,
                dead_ratio: if live + dead > 0 {
                    dead as f64 / (live + dead) as f64
                } else {
                    0.0
                },
                last_vacuum: vac,
                last_analyze: an,
            })
            .collect(),
        indexes: indexes
            .into_iter()
            .map(|(name, table, bytes, scans)| IndexHealth {
                name,
                table,
                bytes,
                scans,
            })
            .collect(),
    })
}

pub async fn maintenance_audited(
    ctx: &RequestCtx,
    user: &CurrentUser,
    target: &str,
    table: &str,
    action: &str,
    confirm: Option<&str>,
) -> AppResult<String> {
    let result = maintenance(&ctx.state, target, table, action, confirm).await;
    audit(
        &ctx.state.pool,
        Some(&user.username),
        &format!("db.{action}"),
        Some(&format!("{target}:{table}")),
        result.is_ok(),
        ctx.ip.as_deref(),
        serde_json::json!({}),
    )
    .await?;
    result
}

async fn maintenance(
    state: &AppState,
    target: &str,
    table: &str,
    action: &str,
    confirm: Option<&str>,
) -> AppResult<String> {
    let verb = match action {
        "analyze" => "ANALYZE",
        "vacuum" => "VACUUM (ANALYZE)",
        "vacuum_full" => {
            if confirm.map(str::trim) != Some(table) {
                return Err(AppError::unprocessable(format!(
                    "VACUUM FULL locks `{table}` for its whole run: type the table's name to confirm"
                )));
            }
            "VACUUM FULL"
        }
        other => {
            return Err(AppError::unprocessable(format!(
                "action `{other}`: use analyze, vacuum or vacuum_full"
            )))
        }
    };
    let t = target_by_name(&state.pool, target).await?;
    let mut c = PgConnection::connect(&t.url(state))
        .await
        .map_err(|e| AppError::TargetUnreachable(format!("cannot connect to `{target}`: {e}")))?;
    let found: Option<(String, String)> = sqlx::query_as(
        "SELECT schemaname::text, relname::text FROM pg_stat_user_tables WHERE schemaname || '.' || relname = $1",
    )
    .bind(table)
    .fetch_optional(&mut c)
    .await?;
    let Some((schema, rel)) = found else {
        let _ = c.close().await;
        return Err(AppError::not_found(format!(
            "no table `{table}` in `{target}`"
        )));
    };
    let started = std::time::Instant::now();
    let r = sqlx::query(&format!(
        "{verb} {}.{}",
        quote_ident(&schema),
        quote_ident(&rel)
    ))
    .execute(&mut c)
    .await;
    let _ = c.close().await;
    r.map_err(|e| AppError::unprocessable(format!("{verb} failed: {e}")))?;
    Ok(format!(
        "{verb} {table}: done in {:.1} s",
        started.elapsed().as_secs_f64()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pg_dump and pg_restore get a database's secrets from a file only the server's user can
    /// read, never from their command line (which every user of the host sees) or environment.
    #[test]
    fn secrets_never_reach_a_command_line() {
        use std::os::unix::fs::PermissionsExt;
        let url = "postgresql://app:hunter2@db:5432/shop?sslmode=require&sslpassword=k3ysecret";
        let service = ServiceFile::write(url).unwrap();
        let cmd = command("pg_dump", Some(&service));
        let args: Vec<String> = cmd
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let envs: Vec<String> = cmd
            .as_std()
            .get_envs()
            .map(|(k, v)| format!("{k:?}={v:?}"))
            .collect();
        for secret in ["hunter2", "k3ysecret"] {
            assert!(!args.iter().any(|a| a.contains(secret)), "{args:?}");
            assert!(!envs.iter().any(|e| e.contains(secret)), "{envs:?}");
        }
        assert_eq!(args, ["--dbname", "service=opsdeck"]);
        let file = std::fs::read_to_string(service.path()).unwrap();
        assert!(file.contains("password=hunter2") && file.contains("sslpassword=k3ysecret"));
        let mode = std::fs::metadata(service.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let path = service.path().to_path_buf();
        drop(service);
        assert!(!path.exists(), "removed when done");
    }

    #[test]
    fn scratch_names_say_what_they_verify_and_fit() {
        for (db, run, want) in [
            ("shop", 7, "opsdeck_verify_shop_7_0a1b2c3d"),
            ("Shop-DB.main", 12, "opsdeck_verify_shopdbmain_12_0a1b2c3d"),
            ("", 1, "opsdeck_verify__1_0a1b2c3d"),
            ("ünïcode", 1, "opsdeck_verify_ncode_1_0a1b2c3d"),
        ] {
            assert_eq!(scratch_name(db, run, "0a1b2c3d"), want);
        }
        let long = scratch_name(&"x".repeat(200), i64::MAX, "0a1b2c3d");
        assert!(long.len() <= 63, "{long}: {}", long.len());
    }

    #[test]
    fn table_data_in_listings() {
        let listing = ";\n; Archive created at 2026-11-25 10:00:00 UTC\n;\n\
            215; 1259 16390 TABLE public users opsdeck\n\
            3346; 0 16390 TABLE DATA public users opsdeck\n\
            3347; 0 16400 TABLE DATA shop order_items app\n\
            3000; 2606 16500 CONSTRAINT public users users_pkey opsdeck\n\
            ; 3348; 0 16401 TABLE DATA public commented_out x\n\
            3349; 0 16402 TABLE DATA broken\n";
        assert_eq!(
            listed_table_data(listing),
            vec![
                ("public".to_string(), "users".to_string()),
                ("shop".to_string(), "order_items".to_string())
            ]
        );
        assert!(listed_table_data("").is_empty());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("users"), "\"users\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
