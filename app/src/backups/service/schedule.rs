//! Retention of backups, and the runs the schedules make due.

use super::*;

pub async fn apply_retention(
    state: &AppState,
    t: &TargetRow,
    now: OffsetDateTime,
) -> AppResult<Vec<i64>> {
    let rows = sqlx::query!(
        r#"SELECT id, finished_at, status AS "status: JobStatus", test_restore_ok, expired_at
           FROM backup_runs WHERE target_id = $1 AND status <> 'running'"#,
        t.id
    )
    .fetch_all(&state.pool)
    .await?;
    let facts: Vec<retention::RunFacts> = rows
        .into_iter()
        .filter_map(|r| {
            Some(retention::RunFacts {
                id: r.id,
                finished_at: r.finished_at?,
                succeeded: r.status == JobStatus::Succeeded,
                verified: r.test_restore_ok == Some(true),
                expired: r.expired_at.is_some(),
            })
        })
        .collect();
    let policy = retention::Policy {
        keep_days: t.keep_days.into(),
        keep_min: t.keep_min.max(0) as usize,
    };
    let expire = retention::to_expire(&facts, policy, now);
    for id in &expire {
        let path: Option<String> = sqlx::query_scalar!("UPDATE backup_runs SET expired_at = now() WHERE id = $1 AND expired_at IS NULL RETURNING path", id)
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
    let rows = target_rows(&state.pool, Targets::All).await?;
    let mut n = 0;
    for t in &rows {
        n += apply_retention(state, t, OffsetDateTime::now_utc())
            .await?
            .len();
    }
    Ok(n)
}

/// Starts the runs that are due. Each due time is claimed with one UPDATE, so however many
/// processes look, one of them starts the run.
pub async fn start_due_runs(state: &AppState, now: OffsetDateTime) -> AppResult<Vec<i64>> {
    let rows = target_rows(&state.pool, Targets::DueAt(now)).await?;
    let mut started = vec![];
    for t in rows {
        let next = next_run(&t.schedule, &t.timezone, now);
        let claimed = sqlx::query!("UPDATE backup_targets SET next_run_at = $2 WHERE id = $1 AND next_run_at IS NOT DISTINCT FROM $3", t.id, next, t.next_run_at)
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
