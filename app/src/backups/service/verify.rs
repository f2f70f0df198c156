//! Verification: a run's checksum and archive, and test restores into scratch databases
//! compared with the run's manifest.

use super::*;

pub(super) async fn file_sha256(path: &Path) -> std::io::Result<String> {
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

pub(super) struct RunFile {
    pub(super) path: PathBuf,
    pub(super) sha256: String,
    pub(super) manifest: Vec<ManifestEntry>,
}

pub(super) async fn run_file(pool: &PgPool, id: i64) -> AppResult<RunFile> {
    let Some(r) = sqlx::query!(
        r#"SELECT status AS "status: JobStatus", path, sha256, expired_at,
                  manifest AS "manifest: sqlx::types::Json<Vec<ManifestEntry>>"
           FROM backup_runs WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Err(AppError::not_found(format!("no backup with id {id}")));
    };
    let (status, path, sha, expired, manifest) =
        (r.status, r.path, r.sha256, r.expired_at, r.manifest);
    if status != JobStatus::Succeeded {
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
pub(super) async fn compare_with_manifest(url: &str, manifest: &[ManifestEntry]) -> VerifyOutcome {
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

pub(super) fn random_suffix() -> String {
    let mut b = [0u8; 4];
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// pg_restore into `database` on the server of `url`; `on_table` sees each table as it is loaded.
pub(super) async fn pg_restore(
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
pub(super) fn scratch_name(database: &str, run: i64, suffix: &str) -> String {
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
    let names: Vec<String> = match sqlx::query_scalar!(
        "SELECT d.datname FROM pg_database d
         WHERE d.datname LIKE 'opsdeck\\_verify\\_%'
           AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)"
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
    sqlx::query!("UPDATE backup_runs SET verified_at = now(), verify_ok = $2, verify_detail = $3 WHERE id = $1", id, checked.ok, &checked.detail)
        .execute(&state.pool)
        .await?;
    if !checked.ok || !test {
        return Ok(checked);
    }
    let target_id: i64 = sqlx::query_scalar!("SELECT target_id FROM backup_runs WHERE id = $1", id)
        .fetch_one(&state.pool)
        .await?;
    let t = target_by_id(&state.pool, target_id).await?;
    let outcome = test_restore(state, &t, id, &f).await;
    sqlx::query!("UPDATE backup_runs SET test_restored_at = now(), test_restore_ok = $2, test_restore_detail = $3 WHERE id = $1", id, outcome.ok, &outcome.detail)
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
pub async fn verify_audited(ctx: &RequestCtx, id: i64, test: bool) -> AppResult<VerifyOutcome> {
    let user = ctx.require(Role::Operator).await?;
    let user = &user;
    let (state, username, ip) = (ctx.state.clone(), user.username.clone(), ctx.ip.clone());
    ctx.state.runtime.work.spawn(async move {
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
    Ok(sqlx::query_scalar!(
        "SELECT (SELECT r.id FROM backup_runs r WHERE r.target_id = t.id AND r.status = 'succeeded' AND r.expired_at IS NULL
                 ORDER BY r.finished_at DESC LIMIT 1)
         FROM backup_targets t
         WHERE t.verify_every_hours > 0
           AND EXISTS (SELECT 1 FROM backup_runs r WHERE r.target_id = t.id AND r.status = 'succeeded' AND r.expired_at IS NULL)
           AND coalesce((SELECT max(test_restored_at) FROM backup_runs r WHERE r.target_id = t.id), '-infinity')
               < now() - make_interval(hours => t.verify_every_hours)"
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .flatten()
    .collect())
}
