//! Backup targets: the databases Opsdeck backs up, with their schedules and retention.

use super::*;
use crate::timestamp::Timestamp;

/// A backup target to add, as the JSON API and the page's form send it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewTargetBody)]
pub struct NewTarget {
    pub name: String,
    /// libpq URL; its password is kept on the server and never returned.
    pub database_url: String,
    /// Cron expression (5 fields or @daily-style), evaluated in `timezone`.
    pub schedule: Option<String>,
    /// IANA time zone, default UTC.
    pub timezone: Option<String>,
    /// Keep every backup this many days (default 30).
    pub keep_days: Option<i32>,
    /// And at least this many newest successful backups (default 7).
    pub keep_min: Option<i32>,
    /// Test-restore the newest backup this often (default 168 h; 0 = on demand only).
    pub verify_every_hours: Option<i32>,
}

pub(super) fn next_run(
    schedule: &Option<String>,
    tz: &str,
    after: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let s = cron::parse(schedule.as_deref()?).ok()?;
    let tz = cron::parse_timezone(tz).ok()?;
    let after = chrono::DateTime::from_timestamp(after.unix_timestamp(), 0)?;
    let next = s.next_after(after, tz)?;
    OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
}

pub async fn create_target(pool: &PgPool, new: NewTarget) -> AppResult<TargetInfo> {
    conn::split(&new.database_url).map_err(AppError::Unprocessable)?;
    let tz = checked(&new)?;
    let next = next_run(&new.schedule, &tz, OffsetDateTime::now_utc());
    let inserted = sqlx::query!("INSERT INTO backup_targets (name, database_url, schedule, timezone, keep_days, keep_min, verify_every_hours, next_run_at)
         VALUES ($1, $2, $3, $4, coalesce($5, 30), coalesce($6, 7), coalesce($7, 168), $8)
         ON CONFLICT (name) DO NOTHING", &new.name, new.database_url.trim(), new.schedule.as_deref(), &tz, new.keep_days, new.keep_min, new.verify_every_hours, next)
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

/// Checks a target's name, schedule, time zone and retention; returns its time zone.
fn checked(new: &NewTarget) -> AppResult<String> {
    crate::backups::validate_target_name(&new.name).map_err(AppError::Unprocessable)?;
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
    Ok(tz)
}

/// Changes a target (admins; audited either way): any field of its declaration, or `paused`
/// (its schedule stops; a run by hand still works). The built-in target stays Opsdeck's own
/// database. The database URL, password included, is kept unless the change gives a new one.
pub async fn patch_target_audited(
    ctx: &RequestCtx,
    name: &str,
    change: crate::patch::Change,
) -> AppResult<TargetInfo> {
    let admin = ctx.require(Role::Admin).await?;
    let mut fields = vec![];
    let result = async {
        let pool = &ctx.state.pool;
        let row = target_by_name(pool, name).await?;
        let current = NewTarget {
            name: row.name.clone(),
            database_url: row.database_url.clone().unwrap_or_default(),
            schedule: row.schedule.clone(),
            timezone: Some(row.timezone.clone()),
            keep_days: Some(row.keep_days),
            keep_min: Some(row.keep_min),
            verify_every_hours: Some(row.verify_every_hours),
        };
        let p = crate::patch::apply(&current, change).map_err(AppError::unprocessable)?;
        fields = p.fields.clone();
        let mut new = p.spec;
        new.schedule = new.schedule.filter(|s| !s.trim().is_empty());
        if row.own() {
            if new.database_url != current.database_url {
                return Err(AppError::unprocessable(
                    "database_url: the built-in target is Opsdeck's own database; add another target for another database",
                ));
            }
        } else {
            conn::split(&new.database_url).map_err(AppError::Unprocessable)?;
        }
        let tz = checked(&new)?;
        let next = next_run(&new.schedule, &tz, OffsetDateTime::now_utc());
        sqlx::query!("UPDATE backup_targets SET name = $2, database_url = CASE WHEN database_url IS NULL THEN NULL ELSE $3 END,
                 schedule = $4, timezone = $5, keep_days = coalesce($6, keep_days), keep_min = coalesce($7, keep_min),
                 verify_every_hours = coalesce($8, verify_every_hours), next_run_at = $9, paused = coalesce($10, paused)
             WHERE id = $1", row.id, new.name, new.database_url.trim(), new.schedule.as_deref(), &tz, new.keep_days, new.keep_min, new.verify_every_hours, next, p.paused)
        .execute(pool)
        .await
        .map_err(|e| match AppError::from(e) {
            AppError::Conflict(_) => AppError::conflict(format!("a backup target named `{}` exists", new.name)),
            e => e,
        })?;
        let row = target_by_name(pool, &new.name).await?;
        target_info(pool, &row, "", OffsetDateTime::now_utc()).await
    }
    .await;
    let detail = serde_json::json!({"fields": fields});
    ctx.audit(&admin, "backup.target.update", name, result.is_ok(), detail)
        .await?;
    result
}

pub async fn create_target_audited(ctx: &RequestCtx, new: NewTarget) -> AppResult<TargetInfo> {
    let admin = ctx.require(Role::Admin).await?;
    let admin = &admin;
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
    let last = sqlx::query!(
        r#"SELECT (SELECT max(finished_at) FROM backup_runs WHERE target_id = $1 AND status = 'succeeded') AS last_success_at,
                  (SELECT max(test_restored_at) FROM backup_runs WHERE target_id = $1 AND test_restore_ok) AS last_verified_at,
                  (SELECT max(id) FROM backup_runs WHERE target_id = $1 AND status = 'running') AS running"#,
        t.id
    )
    .fetch_one(pool)
    .await?;
    let (last_success_at, last_verified_at, running) =
        (last.last_success_at, last.last_verified_at, last.running);
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
        paused: t.paused,
        next_run_at: t.next_run_at.map(Timestamp),
        last_success_at: last_success_at.map(Timestamp),
        last_verified_at: last_verified_at.map(Timestamp),
        overdue: overdue.unwrap_or(false),
        running,
    })
}

pub async fn list_targets(state: &AppState) -> AppResult<Vec<TargetInfo>> {
    let rows = target_rows(&state.pool, Targets::All).await?;
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(target_info(&state.pool, r, state.config.database_url.expose(), now).await?);
    }
    Ok(out)
}
