//! Alerts in the database: rules, channels, silences and checks; one evaluation round over
//! every rule (batched: one query per kind of data, one write per table); the notification
//! queue; health-check results.

use super::machine::{self, classify, Event, Phase, Reading, State, Timing};
use super::rules::{self, Kind, LogCondition, Notice, Rule, RuleSpec};
use super::{
    ActiveAlert, AlertEvent, AlertStatus, AlertsOverview, AlertsPageData, ChannelInfo, CheckInfo,
    Liveness, NewChannel, NewCheck, RuleInfo, Severity, SilenceInfo, Wrong,
};
use crate::auth::service::{audit, Actor, RequestCtx};
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::metrics::Chart;
use crate::state::AppState;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap, HashSet};
use time::{Duration, OffsetDateTime};

/// A firing alert whose data stopped this long ago resolves.
pub const STALE_AFTER: Duration = Duration::minutes(10);
/// Forecast rules are evaluated at most this often (a forecast moves slowly, and costs).
pub const FORECAST_EVERY: Duration = Duration::minutes(10);
/// Metric values older than this are no data.
pub const METRIC_FRESH: Duration = Duration::minutes(5);

fn unprocessable(e: String) -> AppError {
    AppError::Unprocessable(e)
}

/// Records in the audit log what `actor` did (successfully) to `target`, and from where.
async fn done(
    pool: &PgPool,
    actor: &Actor<'_>,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> AppResult<()> {
    audit(
        pool,
        Some(actor.name),
        action,
        Some(target),
        true,
        actor.ip,
        detail,
    )
    .await
}

/// Deletes the row `id` of `table` (which has a `name`), audited as `action`; 404 names `what`.
async fn delete_named(
    pool: &PgPool,
    table: &str,
    id: i64,
    what: &str,
    action: &str,
    actor: &Actor<'_>,
) -> AppResult<()> {
    let name: Option<String> =
        sqlx::query_scalar(&format!("DELETE FROM {table} WHERE id = $1 RETURNING name"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let name = name.ok_or_else(|| AppError::not_found(format!("no {what} {id}")))?;
    done(pool, actor, action, &name, serde_json::json!({})).await
}

mod checks;
mod edit;
mod evaluate;
mod maintenance;
mod observe;
mod overview;
mod queue;
mod status;
mod store;

pub use checks::*;
pub use edit::*;
pub use evaluate::*;
pub use maintenance::*;
use observe::*;
pub use overview::*;
pub use queue::*;
pub use status::*;
pub use store::*;
