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
        RestoreMode::InPlace => {
            // The built-in target by another name (another URL, host alias or role) is still
            // the database Opsdeck runs on: judged by the identity row, not the name.
            match is_opsdeck_database(state, &url).await {
                Ok(false) => parts.database.clone(),
                Ok(true) => {
                    return refuse(
                        ctx,
                        user,
                        id,
                        AppError::unprocessable(
                            "this target is the database Opsdeck runs on (under another name): Opsdeck cannot restore it in place while it runs on it; restore into a new database and point Opsdeck at it",
                        ),
                    )
                    .await
                }
                Err(e) => return refuse(ctx, user, id, e).await,
            }
        }
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
        let run = RestoreRun {
            state: &state,
            t: &t,
            job,
            backup: id,
            f: &f,
            database: &database,
            who: &who,
        };
        let outcome = match mode {
            RestoreMode::NewDatabase => run.to_new_database().await,
            RestoreMode::InPlace => run.in_place().await,
        };
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

/// Whether the database at `url` is Opsdeck's own: it holds the same identity row.
async fn is_opsdeck_database(state: &AppState, url: &str) -> AppResult<bool> {
    let own = crate::db::identity(&state.pool).await?;
    let mut c = PgConnection::connect(url).await.map_err(|e| {
        AppError::TargetUnreachable(format!("cannot connect to the target's database: {e}"))
    })?;
    // Any database may be a target: the table is read only where it exists.
    let has_identity: bool =
        sqlx::query_scalar("SELECT to_regclass('public.opsdeck_identity') IS NOT NULL")
            .fetch_one(&mut c)
            .await?;
    let theirs: Option<sqlx::types::Uuid> = if has_identity {
        sqlx::query_scalar("SELECT id FROM public.opsdeck_identity")
            .fetch_optional(&mut c)
            .await?
    } else {
        None
    };
    let _ = c.close().await;
    Ok(theirs == Some(own))
}

/// One restore job as it runs: every step is shown on the job (`set_step`) and the steps that
/// matter are audited as they happen.
struct RestoreRun<'a> {
    state: &'a AppState,
    t: &'a TargetRow,
    job: i64,
    backup: i64,
    f: &'a RunFile,
    database: &'a str,
    who: &'a str,
}

/// An outcome without pg_restore output to show.
fn message(detail: String) -> (String, String) {
    (detail, String::new())
}

impl RestoreRun<'_> {
    async fn step(&self, text: &str) {
        set_step(&self.state.pool, self.job, text).await;
    }

    async fn audit(&self, action: &'static str, ok: bool, detail: serde_json::Value) {
        let _ = audit(
            &self.state.pool,
            Some(self.who),
            action,
            Some(&format!("backup {}", self.backup)),
            ok,
            None,
            serde_json::json!({ "job": self.job, "target": self.t.name, "database": self.database, "detail": detail }),
        )
        .await;
    }

    /// The file is the one that was backed up (its SHA-256 matches the recorded one).
    async fn check_checksum(&self) -> Result<(), (String, String)> {
        self.step("verifying the checksum").await;
        match file_sha256(&self.f.path).await {
            Ok(sha) if sha == self.f.sha256 => {
                self.audit("backup.restore.checksum", true, serde_json::json!(sha))
                    .await;
                Ok(())
            }
            Ok(sha) => {
                self.audit("backup.restore.checksum", false, serde_json::json!(sha))
                    .await;
                Err(message(format!(
                    "checksum mismatch (file {sha}, recorded {}): restore refused; nothing was changed",
                    self.f.sha256
                )))
            }
            Err(e) => Err(message(format!(
                "cannot read the backup file: {e}; nothing was changed"
            ))),
        }
    }

    /// pg_restore's per-table progress, shown on the job.
    fn progress(&self) -> impl Fn(usize) + Send + 'static {
        let (pool, job, total) = (self.state.pool.clone(), self.job, self.f.manifest.len());
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
    }

    /// Into a database that does not exist yet: created, restored in one transaction, checked
    /// against the manifest; dropped again if the restore fails.
    async fn to_new_database(&self) -> StepResult {
        self.check_checksum().await?;
        let (url, database) = (self.t.url(self.state), self.database);
        self.step(&format!("creating database {database}")).await;
        let mut admin = PgConnection::connect(&url)
            .await
            .map_err(|e| message(format!("cannot connect to the target's server: {e}")))?;
        sqlx::query(&format!("CREATE DATABASE {}", quote_ident(database)))
            .execute(&mut admin)
            .await
            .map_err(|e| {
                message(format!(
                    "cannot create database {database}: {e}; nothing was changed"
                ))
            })?;
        self.step("restoring").await;
        let restored = pg_restore(
            &url,
            database,
            &self.f.path,
            &["--no-owner", "--no-privileges", "--single-transaction"],
            self.progress(),
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
        self.step("checking row counts").await;
        let check = match conn::with_database(&url, database) {
            Ok(u) => compare_with_manifest(&u, &self.f.manifest).await,
            Err(e) => VerifyOutcome {
                ok: false,
                detail: e,
            },
        };
        if check.ok {
            Ok(message(format!(
                "restored backup {} into the new database {database}: {}",
                self.backup, check.detail
            )))
        } else {
            Err(message(format!(
                "restored into {database}, but the contents differ from the manifest: {}",
                check.detail
            )))
        }
    }

    /// Over the target database: first a fresh backup of what is there now (so even a wrong
    /// choice can be undone), then pg_restore in one transaction, then the manifest check.
    async fn in_place(&self) -> StepResult {
        self.check_checksum().await?;
        let pre = self.pre_restore_backup().await?;
        self.step("restoring in place").await;
        let url = self.t.url(self.state);
        let restored = pg_restore(
            &url,
            self.database,
            &self.f.path,
            &["--clean", "--if-exists", "--single-transaction"],
            self.progress(),
        )
        .await;
        if let Err((msg, tail)) = restored {
            return Err((
                format!("{msg}; pg_restore ran in one transaction, which was rolled back: the database is as it was (pre-restore backup: run {pre})"),
                tail,
            ));
        }
        self.step("checking row counts").await;
        let check = compare_with_manifest(&url, &self.f.manifest).await;
        if check.ok {
            Ok(message(format!(
                "restored backup {} in place: {} (pre-restore backup: run {pre})",
                self.backup, check.detail
            )))
        } else {
            Err(message(format!("restored in place, but the contents differ from the manifest: {} (pre-restore backup: run {pre})", check.detail)))
        }
    }

    /// The backup taken before an in-place restore, under the target's backup lock; its run id.
    async fn pre_restore_backup(&self) -> Result<i64, (String, String)> {
        let (pool, t) = (&self.state.pool, self.t);
        self.step("pre-restore backup").await;
        let Some(lock) = HeldLock::try_take(self.state, &format!("opsdeck.backup.{}", t.id))
            .await
            .map_err(|e| message(e.to_string()))?
        else {
            return Err(message("a backup of this target is running; the restore was not started (try again when it ends)".into()));
        };
        let pre = insert_run(pool, t.id, "pre_restore", None)
            .await
            .map_err(|e| message(e.to_string()))?;
        let _ = sqlx::query!(
            "UPDATE restore_jobs SET pre_restore_backup_id = $2 WHERE id = $1",
            self.job,
            pre
        )
        .execute(pool)
        .await;
        let pre_ok = execute_run(self.state, t, pre).await;
        lock.release().await;
        self.audit(
            "backup.restore.pre_backup",
            pre_ok,
            serde_json::json!({ "run": pre }),
        )
        .await;
        if !pre_ok {
            return Err(message(format!("the pre-restore backup (run {pre}) failed, so the restore was not started; the database is untouched")));
        }
        Ok(pre)
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

/// The newest restores (of one target, or of all), newest first: the Backups page's history.
pub async fn list_restores(
    pool: &PgPool,
    target: Option<&str>,
    limit: i64,
) -> AppResult<Vec<RestoreJob>> {
    Ok(sqlx::query_as!(
        RestoreJob,
        r#"SELECT j.id, j.backup_id, t.name AS target, j.mode AS "mode: RestoreMode",
                  j.database_name AS database, j.requested_by, j.status AS "status: JobStatus", j.step,
                  j.started_at AS "started_at: Timestamp", j.finished_at AS "finished_at: Timestamp",
                  j.pre_restore_backup_id, j.detail, j.stderr_tail
           FROM restore_jobs j JOIN backup_targets t ON t.id = j.target_id
           WHERE $1::text IS NULL OR t.name = $1
           ORDER BY j.id DESC LIMIT $2"#,
        target,
        limit.clamp(1, 500)
    )
    .fetch_all(pool)
    .await?)
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
