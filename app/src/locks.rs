//! Work that must run in one process at a time, whichever of several Opsdeck processes asks.

use crate::error::AppResult;
use crate::state::AppState;
use sqlx::{Connection, PgConnection};

/// A session-level advisory lock on a connection of its own; dropping it closes the
/// connection, which releases the lock (also when the process dies).
pub struct HeldLock(PgConnection);

impl HeldLock {
    pub async fn try_take(state: &AppState, key: &str) -> AppResult<Option<HeldLock>> {
        let mut c = PgConnection::connect_with(&*state.pool.connect_options()).await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(key)
            .fetch_one(&mut c)
            .await?;
        if got {
            Ok(Some(HeldLock(c)))
        } else {
            let _ = c.close().await;
            Ok(None)
        }
    }

    /// Whether the lock's connection still answers (it and the lock die with a server restart).
    pub async fn alive(&mut self) -> bool {
        sqlx::query("SELECT 1").execute(&mut self.0).await.is_ok()
    }

    pub async fn release(self) {
        let _ = self.0.close().await;
    }
}
