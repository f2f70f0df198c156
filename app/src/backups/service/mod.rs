//! Backups on the server: targets, runs (`pg_dump -Fc` through a temporary file, fsync, rename),
//! verification, test restores, restores, retention and the database-health figures.
//!
//! Concurrency across processes: a run holds the session-level advisory lock
//! `opsdeck.backup.<target id>` on a connection of its own for its whole life (a killed process
//! drops the connection and so the lock); restores hold `opsdeck.restore.<target id>`. Running
//! runs and restores beat a heartbeat; one whose heartbeat stops is marked failed by any process.

use super::{
    conn, cron, retention, BackupRun, BackupsOverview, DbHealth, IndexHealth, JobStatus,
    ManifestEntry, RestoreJob, RestoreMode, RunDetail, TableHealth, TargetCard, TargetInfo,
    Trigger, VerifyOutcome,
};
use crate::auth::service::{audit, take_attempt, verify_password, RequestCtx};
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

#[derive(Debug, Clone)]
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
    pub paused: bool,
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

/// Which targets [`target_rows`] reads.
#[derive(Debug, Clone, Copy)]
enum Targets<'a> {
    All,
    Id(i64),
    Name(&'a str),
    /// Those with a schedule, not paused, whose next run is due at this time (or was never planned).
    DueAt(OffsetDateTime),
}

/// The targets `which` picks, ordered by name.
async fn target_rows(pool: &PgPool, which: Targets<'_>) -> AppResult<Vec<TargetRow>> {
    let (id, name, due) = match which {
        Targets::All => (None, None, None),
        Targets::Id(id) => (Some(id), None, None),
        Targets::Name(name) => (None, Some(name), None),
        Targets::DueAt(t) => (None, None, Some(t)),
    };
    Ok(sqlx::query_as!(
        TargetRow,
        "SELECT id, name, database_url, schedule, timezone, keep_days, keep_min,
                verify_every_hours, next_run_at, created_at, paused
         FROM backup_targets
         WHERE ($1::bigint IS NULL OR id = $1) AND ($2::text IS NULL OR name = $2)
           AND ($3::timestamptz IS NULL
                OR (schedule IS NOT NULL AND NOT paused AND (next_run_at IS NULL OR next_run_at <= $3)))
         ORDER BY name",
        id,
        name,
        due
    )
    .fetch_all(pool)
    .await?)
}

pub async fn target_by_name(pool: &PgPool, name: &str) -> AppResult<TargetRow> {
    target_rows(pool, Targets::Name(name))
        .await?
        .pop()
        .ok_or_else(|| AppError::not_found(format!("no backup target named `{name}`")))
}

async fn target_by_id(pool: &PgPool, id: i64) -> AppResult<TargetRow> {
    target_rows(pool, Targets::Id(id))
        .await?
        .pop()
        .ok_or_else(|| AppError::not_found("no such backup target"))
}

/// Opsdeck's own database is a target from the first start (nightly at 02:00 UTC).
pub async fn ensure_own_target(pool: &PgPool) -> AppResult<()> {
    sqlx::query!(
        "INSERT INTO backup_targets (name, database_url, schedule, timezone)
         SELECT 'opsdeck', NULL, '0 2 * * *', 'UTC'
         WHERE NOT EXISTS (SELECT 1 FROM backup_targets WHERE database_url IS NULL)
         ON CONFLICT (name) DO NOTHING"
    )
    .execute(pool)
    .await?;
    Ok(())
}

mod health;
mod restore;
mod runs;
mod schedule;
mod targets;
mod verify;

pub use health::*;
pub use restore::*;
pub use runs::*;
pub use schedule::*;
pub use targets::*;
pub use verify::*;

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
