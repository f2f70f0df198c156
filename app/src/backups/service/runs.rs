//! Backup runs: reading them (history, a run's page), starting them (one per target at a time,
//! in any process), their heartbeats, and `pg_dump` into a checksummed file.

use super::*;
use crate::timestamp::Timestamp;

#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    target: String,
    trigger: Trigger,
    requested_by: Option<String>,
    status: JobStatus,
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

impl From<RunRow> for BackupRun {
    fn from(r: RunRow) -> Self {
        BackupRun {
            id: r.id,
            target: r.target,
            trigger: r.trigger,
            requested_by: r.requested_by,
            status: r.status,
            started_at: Timestamp(r.started_at),
            finished_at: r.finished_at.map(Timestamp),
            duration_seconds: r.finished_at.map(|f| (f - r.started_at).as_seconds_f64()),
            bytes_written: r.bytes_written,
            size: r.size,
            sha256: r.sha256,
            verified: r.verify_ok == Some(true),
            verify_detail: r.verify_detail,
            test_restored_at: r.test_restored_at.map(Timestamp),
            test_restore_ok: r.test_restore_ok,
            test_restore_detail: r.test_restore_detail,
            expired_at: r.expired_at.map(Timestamp),
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
    let rows = run_rows(pool, None, target, status, limit).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Runs, newest first: one (`id`), or those of a target and a status (`expired`: the expired
/// ones, whatever their status).
async fn run_rows(
    pool: &PgPool,
    id: Option<i64>,
    target: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> AppResult<Vec<RunRow>> {
    Ok(sqlx::query_as!(
        RunRow,
        r#"SELECT r.id, t.name AS target, r.trigger AS "trigger: Trigger", r.requested_by,
                  r.status AS "status: JobStatus", r.started_at, r.finished_at, r.bytes_written,
                  r.size, r.sha256, r.verify_ok, r.verify_detail, r.test_restored_at,
                  r.test_restore_ok, r.test_restore_detail, r.expired_at, r.pg_dump_version,
                  r.server_version, r.path, r.error, r.stderr_tail,
                  r.manifest AS "manifest: sqlx::types::Json<Vec<ManifestEntry>>"
           FROM backup_runs r JOIN backup_targets t ON t.id = r.target_id
           WHERE ($1::bigint IS NULL OR r.id = $1)
             AND ($2::text IS NULL OR t.name = $2)
             AND ($3::text IS NULL
                  OR ($3 = 'expired' AND r.expired_at IS NOT NULL)
                  OR ($3 <> 'expired' AND r.status = $3 AND r.expired_at IS NULL))
           ORDER BY r.started_at DESC, r.id DESC LIMIT $4"#,
        id,
        target,
        status,
        limit
    )
    .fetch_all(pool)
    .await?)
}

pub async fn get_run(pool: &PgPool, id: i64) -> AppResult<BackupRun> {
    run_rows(pool, Some(id), None, None, 1)
        .await?
        .pop()
        .map(Into::into)
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
        let sizes: Vec<(OffsetDateTime, i64)> = sqlx::query!(
            r#"SELECT r.finished_at AS "finished_at!", r.size AS "size!"
               FROM backup_runs r JOIN backup_targets t ON t.id = r.target_id
               WHERE t.name = $1 AND r.status = 'succeeded' AND r.size IS NOT NULL
               ORDER BY r.finished_at DESC LIMIT 90"#,
            &t.name
        )
        .fetch_all(&state.pool)
        .await?
        .into_iter()
        .map(|r| (r.finished_at, r.size))
        .collect();
        let size_chart = (!sizes.is_empty()).then(|| size_chart(&t.name, &sizes));
        cards.push(TargetCard {
            target: t,
            size_chart,
        });
    }
    let target = target.filter(|s| !s.is_empty());
    let status = status.filter(|s| !s.is_empty());
    let runs = list_runs(&state.pool, target, status, 100).await?;
    let restores = list_restores(&state.pool, target, 20).await?;
    Ok(BackupsOverview {
        role,
        cards,
        runs,
        restores,
    })
}

fn size_chart(name: &str, sizes: &[(OffsetDateTime, i64)]) -> crate::metrics::Chart {
    use crate::metrics::{charts, SeriesPoint, Unit};
    let mut points: Vec<SeriesPoint> = sizes
        .iter()
        .map(|(ts, size)| SeriesPoint {
            ts: Timestamp(*ts),
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

/// What beats: a backup run (with its bytes written so far) or a restore job.
pub(super) enum Beat {
    Run(Arc<AtomicI64>),
    Restore,
}

/// Beats the job's `heartbeat_at` (and a run's `bytes_written`) until dropped.
pub(super) struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    pub(super) fn start(pool: PgPool, id: i64, beat: Beat) -> Self {
        Heartbeat(tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(HEARTBEAT_SECS));
            loop {
                tick.tick().await;
                let q = match &beat {
                    Beat::Run(bytes) => sqlx::query!("UPDATE backup_runs SET heartbeat_at = now(), bytes_written = greatest(bytes_written, $2) WHERE id = $1 AND status = 'running'", id, bytes.load(Ordering::Relaxed)),
                    Beat::Restore => sqlx::query!("UPDATE restore_jobs SET heartbeat_at = now() WHERE id = $1 AND status = 'running'", id),
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
    let runs = sqlx::query!(
        "UPDATE backup_runs r SET status = 'failed', finished_at = now(),
            error = 'Opsdeck stopped while this backup ran (last heartbeat ' || to_char(r.heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC); the partial file was discarded and never counted as a backup'
         FROM backup_targets t
         WHERE t.id = r.target_id AND r.status = 'running' AND r.heartbeat_at < now() - make_interval(secs => $1)
         RETURNING r.id, t.name",
        STALE_SECS as f64
    )
    .fetch_all(&state.pool)
    .await?;
    for r in &runs {
        let (id, target) = (r.id, &r.name);
        let partial = partial_path(&state.config.data_dir, target, id);
        if partial.exists() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        tracing::warn!(run = id, target, "backup run had stopped; marked failed");
    }
    let restores = sqlx::query!("UPDATE restore_jobs SET status = 'failed', finished_at = now(),
            detail = CASE mode
              WHEN 'in_place' THEN 'Opsdeck stopped during this restore. pg_restore runs in one transaction, so the database is as it was before.'
              ELSE 'Opsdeck stopped during this restore. pg_restore runs in one transaction: the new database ' || database_name || ' holds nothing from this backup; drop it or restore again.' END
         WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => $1)", STALE_SECS as f64)
    .execute(&state.pool)
    .await?
    .rows_affected();
    Ok(runs.len() + restores as usize)
}

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
pub(super) fn command(program: &str, service: Option<&ServiceFile>) -> tokio::process::Command {
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
pub(super) async fn collect_stderr(
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

pub(super) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Ordinary tables whose data pg_dump writes (not system, temporary or extension-owned ones),
/// as (schema, table).
pub(super) async fn user_tables(
    c: &mut PgConnection,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    Ok(sqlx::query!(
        r#"SELECT n.nspname::text AS "schema!", c.relname::text AS "table!" FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind = 'r' AND c.relpersistence <> 't'
             AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                             AND d.objid = c.oid AND d.deptype = 'e')
           ORDER BY 1, 2"#
    )
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| (r.schema, r.table))
    .collect())
}

pub(super) async fn count_rows(
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
    let s = state.clone();
    // Tracked: a stopping Opsdeck waits for the run to finish (within its grace period).
    state.runtime.work.spawn(async move {
        execute_run(&s, &t, id).await;
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

pub(super) async fn insert_run(
    pool: &PgPool,
    target_id: i64,
    trigger: &str,
    requested_by: Option<&str>,
) -> AppResult<i64> {
    Ok(sqlx::query_scalar!("INSERT INTO backup_runs (target_id, trigger, requested_by, status) VALUES ($1, $2, $3, 'running') RETURNING id", target_id, trigger, requested_by)
    .fetch_one(pool)
    .await?)
}

pub async fn start_run_audited(ctx: &RequestCtx, target: &str) -> AppResult<i64> {
    let user = ctx.require(Role::Operator).await?;
    let user = &user;
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
pub(super) async fn execute_run(state: &AppState, t: &TargetRow, id: i64) -> bool {
    let bytes = Arc::new(AtomicI64::new(0));
    let heartbeat = Heartbeat::start(state.pool.clone(), id, Beat::Run(bytes.clone()));
    let started = std::time::Instant::now();
    let result = dump(state, t, id, bytes.clone()).await;
    drop(heartbeat);
    let ok = match result {
        Ok(d) => {
            let (path, pg_dump_version) = (
                d.path.to_string_lossy().into_owned(),
                tool_version("pg_dump").await,
            );
            let recorded = sqlx::query!("UPDATE backup_runs SET status = 'succeeded', finished_at = now(), path = $2, size = $3,
                    bytes_written = $3, sha256 = $4, manifest = $5, pg_dump_version = $6, server_version = $7,
                    stderr_tail = $8
                 WHERE id = $1", id, &path, d.size, &d.sha256, sqlx::types::Json(&d.manifest) as _, pg_dump_version, &d.server_version, &d.stderr_tail)
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
            let _ = sqlx::query!("UPDATE backup_runs SET status = 'failed', finished_at = now(), error = $2, stderr_tail = $3 WHERE id = $1", id, &msg, &tail)
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
    let server_version: String =
        sqlx::query_scalar!(r#"SELECT current_setting('server_version') AS "v!""#)
            .fetch_one(&mut snap_conn)
            .await
            .map_err(|e| fail(e.to_string()))?;
    sqlx::query!("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut snap_conn)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let snapshot: String = sqlx::query_scalar!(r#"SELECT pg_export_snapshot() AS "snapshot!""#)
        .fetch_one(&mut snap_conn)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let tables = user_tables(&mut snap_conn)
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
    let _ = sqlx::query!("COMMIT").execute(&mut snap_conn).await;
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
