//! The database-health figures of a target (size, tables, indexes, vacuum) and the audited
//! `ANALYZE`/`VACUUM` maintenance.

use super::*;
use crate::timestamp::Timestamp;

pub async fn db_health(state: &AppState, target: &str) -> AppResult<DbHealth> {
    let t = target_by_name(&state.pool, target).await?;
    let url = t.url(state);
    let database = conn::split(&url).map(|p| p.database).unwrap_or_default();
    let mut c = PgConnection::connect(&url)
        .await
        .map_err(|e| AppError::TargetUnreachable(format!("cannot connect to `{target}`: {e}")))?;
    let sizes = sqlx::query!(
        r#"SELECT pg_database_size(current_database()) AS "size_bytes!",
                  (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()) AS "connections!",
                  current_setting('max_connections')::bigint AS "max_connections!""#
    )
    .fetch_one(&mut c)
    .await?;
    let (size_bytes, connections, max_connections) =
        (sizes.size_bytes, sizes.connections, sizes.max_connections);
    let tables = sqlx::query!(
        r#"SELECT schemaname || '.' || relname AS "name!", pg_total_relation_size(relid) AS "total!",
                  n_live_tup AS "live!", n_dead_tup AS "dead!",
                  greatest(last_vacuum, last_autovacuum) AS vac,
                  greatest(last_analyze, last_autoanalyze) AS an
           FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC, 1 LIMIT 25"#
    )
    .fetch_all(&mut c)
    .await?;
    let indexes = sqlx::query!(
        r#"SELECT schemaname || '.' || indexrelname AS "name!", relname AS "table!",
                  pg_relation_size(indexrelid) AS "bytes!", idx_scan AS "scans!"
           FROM pg_stat_user_indexes ORDER BY pg_relation_size(indexrelid) DESC, 1 LIMIT 25"#
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
            .map(|r| TableHealth {
                name: r.name,
                total_bytes: r.total,
                live_rows: r.live,
                dead_rows: r.dead,
                dead_ratio: if r.live + r.dead > 0 {
                    r.dead as f64 / (r.live + r.dead) as f64
                } else {
                    0.0
                },
                last_vacuum: r.vac.map(Timestamp),
                last_analyze: r.an.map(Timestamp),
            })
            .collect(),
        indexes: indexes
            .into_iter()
            .map(|r| IndexHealth {
                name: r.name,
                table: r.table,
                bytes: r.bytes,
                scans: r.scans,
            })
            .collect(),
    })
}

pub async fn maintenance_audited(
    ctx: &RequestCtx,
    target: &str,
    table: &str,
    action: &str,
    confirm: Option<&str>,
) -> AppResult<String> {
    let user = ctx.require(Role::Operator).await?;
    let user = &user;
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
    let found = sqlx::query!(
        r#"SELECT schemaname::text AS "schema!", relname::text AS "rel!"
           FROM pg_stat_user_tables WHERE schemaname || '.' || relname = $1"#,
        table
    )
    .fetch_optional(&mut c)
    .await?
    .map(|r| (r.schema, r.rel));
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
