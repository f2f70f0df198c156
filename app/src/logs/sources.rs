//! Log sources: the files the tailer follows. Adding one is an admin's action, audited, and
//! only for files inside `log_source_dirs` (after symlinks and `..` are resolved), never
//! Opsdeck's own configuration file or data directory: every viewer can search what a source
//! stores.

use super::parse::Format;
use super::{validate_service, SourceRow};
use crate::auth::service::RequestCtx;
use crate::auth::Role;
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::specs::NewLogSource;
use crate::state::AppState;
use sqlx::PgPool;
use std::path::{Component, Path, PathBuf};

pub async fn list(ctx: &RequestCtx) -> AppResult<Vec<SourceRow>> {
    ctx.require(Role::Admin).await?;
    list_all(&ctx.state.pool).await
}

pub async fn list_all(pool: &PgPool) -> AppResult<Vec<SourceRow>> {
    Ok(sqlx::query_as(
        "SELECT s.id, s.path, s.format, s.service, s.paused, st.tailer,
                coalesce((SELECT sum(\"offset\") FROM log_files f WHERE f.source_id = s.id), 0)::bigint AS position,
                coalesce((SELECT sum(lines) FROM log_files f WHERE f.source_id = s.id), 0)::bigint AS lines,
                coalesce(st.lines_per_sec, 0) AS lines_per_sec, st.last_line_at, st.last_error
         FROM log_sources s LEFT JOIN log_source_state st ON st.source_id = s.id ORDER BY s.service, s.path",
    )
    .fetch_all(pool)
    .await?)
}

/// Adds a source (an admin's action, audited either way); idempotent on path and service.
pub async fn add(ctx: &RequestCtx, new: &NewLogSource) -> AppResult<i64> {
    let admin = ctx.require(Role::Admin).await?;
    let r = add_checked(&ctx.state, new).await;
    ctx.audit(
        &admin,
        "logs.source.add",
        &new.path,
        r.is_ok(),
        serde_json::json!({"service": new.service, "format": new.format}),
    )
    .await?;
    r
}

/// Adds a source from the configuration file (at start), under the same rules.
pub async fn add_checked(state: &AppState, new: &NewLogSource) -> AppResult<i64> {
    let (path, format) = checked(&state.config, new)?;
    Ok(sqlx::query_scalar!(
        "INSERT INTO log_sources (path, format, service) VALUES ($1, $2, $3)
         ON CONFLICT (path, service) DO UPDATE SET format = excluded.format RETURNING id",
        path,
        format.as_str(),
        &new.service
    )
    .fetch_one(&state.pool)
    .await?)
}

/// The source's path (trimmed) and format, once both and its service are found acceptable.
fn checked<'a>(config: &Config, new: &'a NewLogSource) -> AppResult<(&'a str, Format)> {
    let path = new.path.trim();
    if !path.starts_with('/') || path.len() > 1024 || path.contains('\0') {
        return Err(AppError::unprocessable(format!(
            "path `{path}`: give an absolute file path (a glob in its last part is allowed)"
        )));
    }
    if path
        .rsplit_once('/')
        .is_some_and(|(dir, _)| dir.contains(['*', '?']))
    {
        return Err(AppError::unprocessable(
            "path: wildcards only in the file name, not in directories",
        ));
    }
    allowed_path(config, Path::new(path)).map_err(AppError::Unprocessable)?;
    let format = Format::parse(&new.format).map_err(AppError::Unprocessable)?;
    validate_service(&new.service).map_err(AppError::Unprocessable)?;
    Ok((path, format))
}

/// Changes a source (an admin's action, audited either way): its path, format or service, or
/// `paused` (the tailer lets it go and takes it up again where it stopped).
pub async fn patch(ctx: &RequestCtx, id: i64, change: crate::patch::Change) -> AppResult<()> {
    let admin = ctx.require(Role::Admin).await?;
    let mut fields = vec![];
    let r = async {
        let current = sqlx::query_as!(
            NewLogSource,
            "SELECT path, format, service FROM log_sources WHERE id = $1",
            id
        )
        .fetch_optional(&ctx.state.pool)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no log source {id}")))?;
        let p = crate::patch::apply(&current, change).map_err(AppError::unprocessable)?;
        fields = p.fields.clone();
        let (path, format) = checked(&ctx.state.config, &p.spec)?;
        sqlx::query!(
            "UPDATE log_sources SET path = $2, format = $3, service = $4, paused = coalesce($5, paused)
             WHERE id = $1",
            id,
            path,
            format.as_str(),
            &p.spec.service,
            p.paused
        )
        .execute(&ctx.state.pool)
        .await?;
        Ok(())
    }
    .await;
    let detail = serde_json::json!({"fields": fields});
    ctx.audit(
        &admin,
        "logs.source.update",
        &id.to_string(),
        r.is_ok(),
        detail,
    )
    .await?;
    r
}

/// Stops following a source (an admin's action, audited either way); its lines stay.
pub async fn delete(ctx: &RequestCtx, id: i64) -> AppResult<()> {
    let admin = ctx.require(Role::Admin).await?;
    let r = async {
        let n = sqlx::query!("DELETE FROM log_sources WHERE id = $1", id)
            .execute(&ctx.state.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(AppError::not_found(format!("no log source {id}")));
        }
        Ok(())
    }
    .await;
    ctx.audit(
        &admin,
        "logs.source.delete",
        &id.to_string(),
        r.is_ok(),
        serde_json::json!({}),
    )
    .await?;
    r
}

/// Where `path` really leads: `..` is refused as written (a `.` in the middle means nothing),
/// and the part of it that exists is resolved (symlinks followed), the rest (a file not there
/// yet, a glob) appended.
pub fn resolve(path: &Path) -> Result<PathBuf, String> {
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!(
            "path `{}`: `.` and `..` are not allowed; give the file's real path",
            path.display()
        ));
    }
    let mut rest: Vec<&std::ffi::OsStr> = vec![];
    let mut at = path;
    loop {
        let glob = at
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains(['*', '?']));
        if !glob {
            if let Ok(real) = std::fs::canonicalize(at) {
                let mut out = real;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
        }
        match (at.file_name(), at.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                at = parent;
            }
            _ => return Ok(path.to_path_buf()),
        }
    }
}

/// The rule, on a resolved path: inside one of `allowed` (resolved too), and not `forbidden`
/// (a file) nor inside one of `forbidden_dirs`.
pub fn check_policy(
    resolved: &Path,
    allowed: &[PathBuf],
    forbidden: &[PathBuf],
    forbidden_dirs: &[PathBuf],
) -> Result<(), String> {
    if forbidden.iter().any(|f| f == resolved)
        || forbidden_dirs.iter().any(|d| resolved.starts_with(d))
    {
        return Err(format!(
            "`{}` is Opsdeck's own configuration or data: it cannot be a log source",
            resolved.display()
        ));
    }
    if !allowed.iter().any(|d| resolved.starts_with(d)) {
        let dirs: Vec<String> = allowed.iter().map(|d| d.display().to_string()).collect();
        return Err(format!(
            "`{}` is outside the directories log sources may be in ({}); an admin can add its \
             directory to `log_source_dirs` (OPSDECK_LOG_SOURCE_DIRS)",
            resolved.display(),
            if dirs.is_empty() {
                "none".to_string()
            } else {
                dirs.join(", ")
            }
        ));
    }
    Ok(())
}

/// Whether a log source may read `path` under this configuration (checked when a source is
/// added, and again by the tailer for every file it opens, in case a symlink changed).
pub fn allowed_path(config: &Config, path: &Path) -> Result<PathBuf, String> {
    let resolved = resolve(path)?;
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let allowed: Vec<PathBuf> = config.log_source_dirs.iter().map(|d| real(d)).collect();
    let forbidden: Vec<PathBuf> = config.config.iter().map(|f| real(f)).collect();
    let data = real(&config.data_dir);
    let data = if data.is_absolute() {
        data
    } else {
        std::env::current_dir()
            .map(|d| d.join(&data))
            .unwrap_or(data)
    };
    check_policy(&resolved, &allowed, &forbidden, &[data])?;
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_on_resolved_paths() {
        let allowed = [PathBuf::from("/var/log"), PathBuf::from("/srv/app/logs")];
        let forbidden = [PathBuf::from("/var/log/opsdeck.toml")];
        let data = [PathBuf::from("/var/log/opsdeck-data")];
        let cases = [
            ("/var/log/nginx/access.log", None),
            ("/var/log/app-*.log", None),
            ("/srv/app/logs/x.log", None),
            ("/etc/shadow", Some("outside")),
            ("/var/logx/a.log", Some("outside")),
            ("/srv/app/logs2/x.log", Some("outside")),
            ("/var/log/opsdeck.toml", Some("own configuration")),
            (
                "/var/log/opsdeck-data/backups/x.dump",
                Some("own configuration"),
            ),
        ];
        for (path, want) in cases {
            let got = check_policy(Path::new(path), &allowed, &forbidden, &data);
            match want {
                None => assert_eq!(got, Ok(()), "{path}"),
                Some(w) => {
                    let e = got.unwrap_err();
                    assert!(e.contains(w), "{path}: {e}");
                }
            }
        }
        let e = check_policy(Path::new("/x"), &[], &[], &[]).unwrap_err();
        assert!(e.contains("(none)"), "{e}");
    }

    #[test]
    fn paths_are_resolved_through_symlinks_and_dots_refused() {
        let dir = std::env::temp_dir().join(format!("opsdeck-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::create_dir_all(dir.join("secret")).unwrap();
        std::fs::write(dir.join("secret/key"), "x").unwrap();
        std::os::unix::fs::symlink(dir.join("secret/key"), dir.join("logs/app.log")).unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), dir.join("logs/linked")).unwrap();
        let real = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(
            resolve(&dir.join("logs/app.log")).unwrap(),
            real.join("secret/key")
        );
        assert_eq!(
            resolve(&dir.join("logs/linked/*.log")).unwrap(),
            real.join("secret/*.log")
        );
        assert_eq!(
            resolve(&dir.join("logs/not-yet/a.log")).unwrap(),
            real.join("logs/not-yet/a.log")
        );
        for bad in ["/var/log/../../etc/shadow", "/var/log/x/../x.log"] {
            assert!(resolve(Path::new(bad)).unwrap_err().contains(".."), "{bad}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
