//! Restores: into a new database, or in place after a pre-restore backup, in one transaction,
//! so that a failure leaves the database as it was.

use super::*;
use crate::timestamp::Timestamp;

#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub password: String,
    pub confirm: String,
    /// `new_database` or `in_place`, as sent: checked (and a bad one audited) with the rest.
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
pub async fn start_restore(ctx: &RequestCtx, id: i64, req: RestoreRequest) -> AppResult<i64> {
    let user = ctx.require(Role::Admin).await?;
    let user = &user;
    let state = &ctx.state;
    if user.role != Role::Admin {
        return Err(AppError::forbidden("restores are for admins"));
    }
    // Counted before judged, as sign-ins are: a stolen session cannot guess the password.
    let attempt = take_attempt(ctx, "restore:", &user.username).await?;
    let stored: Option<String> = sqlx::query_scalar!(
        "SELECT password_hash FROM users WHERE username = $1 AND NOT disabled",
        &user.username
    )
    .fetch_optional(&state.pool)
    .await?;
    if verify_password(stored, req.password.clone()).await {
        crate::auth::throttle::succeeded(&state.pool, &attempt).await?;
    } else {
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
    let mode: RestoreMode = match req.mode.parse() {
        Ok(m) => m,
        Err(e) => {
            return refuse(ctx, user, id, AppError::unprocessable(format!("mode: {e}"))).await
        }
    };
    let database = match mode {
        RestoreMode::NewDatabase => {
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
        RestoreMode::InPlace if t.own() => {
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
        RestoreMode::InPlace => parts.database.clone(),
    };
    if mode == RestoreMode::NewDatabase {
        let mut c = PgConnection::connect(&url).await.map_err(|e| {
            AppError::TargetUnreachable(format!("cannot connect to the target's server: {e}"))
        })?;
        let exists: bool = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
            &database
        )
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
    let job: i64 = sqlx::query_scalar!("INSERT INTO restore_jobs (backup_id, target_id, mode, database_name, requested_by, status, step)
         VALUES ($1, $2, $3, $4, $5, 'running', 'starting') RETURNING id", id, t.id, mode.as_str(), &database, &user.username)
    .fetch_one(&state.pool)
    .await?;
    audit(
        &state.pool,
        Some(&user.username),
        "backup.restore.start",
        Some(&format!("backup {id}")),
        true,
        ctx.ip.as_deref(),
        serde_json::json!({ "job": job, "target": t.name, "mode": mode, "database": database }),
    )
    .await?;
    let s = state.clone();
    let who = user.username.clone();
    state.runtime.work.spawn(async move {
        let state = s;
        let heartbeat = Heartbeat::start(state.pool.clone(), job, Beat::Restore);
        let outcome = restore_job_body(&state, &t, job, id, &f, mode, &database, &who).await;
        drop(heartbeat);
        let (ok, detail, tail) = match outcome {
            Ok((detail, tail)) => (true, detail, tail),
            Err((detail, tail)) => (false, detail, tail),
        };
        let _ = sqlx::query!("UPDATE restore_jobs SET status = $2, finished_at = now(), step = 'done', detail = $3, stderr_tail = $4 WHERE id = $1", job, if ok { JobStatus::Succeeded } else { JobStatus::Failed }.as_str(), &detail, &tail)
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
    let _ = sqlx::query!(
        "UPDATE restore_jobs SET step = $2, heartbeat_at = now() WHERE id = $1",
        job,
        step
    )
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
    mode: RestoreMode,
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
    if mode == RestoreMode::NewDatabase {
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
    let _ = sqlx::query!(
        "UPDATE restore_jobs SET pre_restore_backup_id = $2 WHERE id = $1",
        job,
        pre
    )
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
    sqlx::query_as!(
        RestoreJob,
        r#"SELECT j.id, j.backup_id, t.name AS target, j.mode AS "mode: RestoreMode",
                  j.database_name AS database, j.requested_by, j.status AS "status: JobStatus", j.step,
                  j.started_at AS "started_at: Timestamp", j.finished_at AS "finished_at: Timestamp",
                  j.pre_restore_backup_id, j.detail, j.stderr_tail
           FROM restore_jobs j JOIN backup_targets t ON t.id = j.target_id WHERE j.id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::not_found(format!("no restore with id {id}")))
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
