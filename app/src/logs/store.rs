//! Storing log entries: one pipeline for every way lines arrive. The HTTP ingest, `opsdeck
//! logs import` and the tailer parse with `parse::Records` and store here: [`write`] inside the
//! caller's transaction (which may also move an import's or a file's position), then
//! [`committed`] once it commits.

use super::parse::Record;
use super::rollup;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use sqlx::Postgres;
use time::{Date, OffsetDateTime};

pub use super::validate_service;

/// Creates the daily partitions for these days (once per process and day).
pub async fn ensure_partitions(state: &AppState, days: &[Date]) -> AppResult<()> {
    state.runtime.log_partitions.ensure(&state.pool, days).await
}

/// Stores records in their own transaction: [`write`] then [`committed`].
pub async fn insert(
    state: &AppState,
    service: &str,
    source: &str,
    records: &[Record],
    default_ts: OffsetDateTime,
) -> AppResult<u64> {
    let mut tx = state.pool.begin().await?;
    let n = write(&mut tx, state, service, source, records, default_ts).await?;
    tx.commit().await?;
    committed(state);
    Ok(n)
}

/// To be called once a transaction that [`write`] wrote to has committed: answers of ranges
/// ending now see the lines at once.
pub fn committed(state: &AppState) {
    state.runtime.answers.committed();
}

/// Lines of hours already over (a backfill, an agent catching up) are rolled up now rather than
/// at the next scheduled round, so that their analytics are quick within seconds. One roll-up
/// at a time: one under way (or the next round) takes their hours otherwise.
pub fn roll_up_soon(state: &AppState, records: &[Record], now: OffsetDateTime) {
    let past = records.iter().any(|r| {
        r.ts.is_some_and(|t| rollup::rollable(rollup::hour_of(t), rollup::HOUR, now))
    });
    if past {
        let state = state.clone();
        tokio::spawn(async move {
            let r = crate::locks::run_now_locked(
                &state.pool,
                "log_rollups",
                false,
                super::rollup_jobs::roll_up(&state, OffsetDateTime::now_utc()),
            )
            .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "rolling up stored lines failed; the next round will");
            }
        });
    }
}

/// Stores records in one statement (UNNEST) inside the caller's transaction; a record without
/// a time gets `default_ts`. Lines for an hour that is (about to be) rolled up mark it to be
/// rolled up again, in the same transaction.
pub async fn write(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    state: &AppState,
    service: &str,
    source: &str,
    records: &[Record],
    default_ts: OffsetDateTime,
) -> AppResult<u64> {
    if records.is_empty() {
        return Ok(0);
    }
    validate_service(service).map_err(AppError::BadRequest)?;
    let ts: Vec<OffsetDateTime> = records.iter().map(|r| r.ts.unwrap_or(default_ts)).collect();
    let mut days: Vec<Date> = ts
        .iter()
        .map(|t| t.to_offset(time::UtcOffset::UTC).date())
        .collect();
    days.sort();
    days.dedup();
    ensure_partitions(state, &days).await?;
    let levels: Vec<Option<i16>> = records.iter().map(|r| r.level.map(|l| l as i16)).collect();
    // PostgreSQL text cannot hold NUL: replace it rather than lose the line.
    let clean = |s: &str| {
        if s.contains('\0') {
            s.replace('\0', "\u{FFFD}")
        } else {
            s.to_string()
        }
    };
    let messages: Vec<String> = records.iter().map(|r| clean(&r.message)).collect();
    let errors: Vec<Option<String>> = records
        .iter()
        .map(|r| r.parse_error.as_deref().map(clean))
        .collect();
    let typed = TypedFields::of(records, clean);
    // What went into a typed column is not stored again in jsonb (reads put it back: FIELDS_SQL).
    let fields: Vec<String> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut rest = r.fields.clone();
            typed.strip_stored(i, &mut rest);
            clean(&serde_json::Value::Object(rest).to_string()).replace("\\u0000", "\u{FFFD}")
        })
        .collect();
    let n = sqlx::query(
        "INSERT INTO log_lines (ts, service, level, message, fields, source, parse_error, status, duration, path, ip, method, user_agent)
         SELECT t, $2, l, m, f::jsonb, $3, e, st, d, p, i, me, ua
         FROM UNNEST($1::timestamptz[], $4::smallint[], $5::text[], $6::text[], $7::text[], $8::smallint[], $9::float8[], $10::text[], $11::text[], $12::text[], $13::text[])
              AS u(t, l, m, f, e, st, d, p, i, me, ua)",
    )
    .bind(&ts)
    .bind(service)
    .bind(source)
    .bind(&levels)
    .bind(&messages)
    .bind(&fields)
    .bind(&errors)
    .bind(&typed.status)
    .bind(&typed.duration)
    .bind(&typed.path)
    .bind(&typed.ip)
    .bind(&typed.method)
    .bind(&typed.user_agent)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    // Lines for an hour that is (about to be) rolled up, or old enough to fall into the current
    // hour's live rollup: have it rolled up again.
    let now = OffsetDateTime::now_utc();
    let mut late: std::collections::BTreeMap<OffsetDateTime, bool> = Default::default();
    for t in ts.iter().filter(|t| rollup::needs_mark(**t, now)) {
        *late.entry(rollup::hour_of(*t)).or_default() |= *t < now - rollup::LIVE_MARK;
    }
    if !late.is_empty() {
        let (hours, live): (Vec<OffsetDateTime>, Vec<bool>) = late.into_iter().unzip();
        sqlx::query(
            "INSERT INTO log_rollup_pending (service, day, hour, live)
             SELECT $1, (h AT TIME ZONE 'UTC')::date, h, l FROM unnest($2::timestamptz[], $3::bool[]) AS u(h, l)",
        )
        .bind(service)
        .bind(&hours)
        .bind(&live)
        .execute(&mut **tx)
        .await?;
    }
    Ok(n)
}

/// The request fields stored as typed columns, one array each.
struct TypedFields {
    status: Vec<Option<i16>>,
    duration: Vec<Option<f64>>,
    path: Vec<Option<String>>,
    ip: Vec<Option<String>>,
    method: Vec<Option<String>>,
    user_agent: Vec<Option<String>>,
}

impl TypedFields {
    fn of(records: &[Record], clean: impl Fn(&str) -> String) -> Self {
        let text = |r: &Record, k: &str| r.fields.get(k).and_then(|v| v.as_str()).map(&clean);
        TypedFields {
            status: records
                .iter()
                .map(|r| {
                    r.fields
                        .get("status")
                        .and_then(|v| v.as_f64())
                        .filter(|s| (100.0..1000.0).contains(s))
                        .map(|s| s as i16)
                })
                .collect(),
            duration: records
                .iter()
                .map(|r| {
                    r.fields
                        .get("duration")
                        .and_then(|v| v.as_f64())
                        .filter(|d| d.is_finite())
                })
                .collect(),
            path: records.iter().map(|r| text(r, "path")).collect(),
            ip: records.iter().map(|r| text(r, "ip")).collect(),
            method: records.iter().map(|r| text(r, "method")).collect(),
            user_agent: records.iter().map(|r| text(r, "user_agent")).collect(),
        }
    }

    /// Removes from record `i`'s fields what its typed columns hold exactly.
    fn strip_stored(&self, i: usize, fields: &mut serde_json::Map<String, serde_json::Value>) {
        for (key, col) in [
            ("status", self.status[i].map(f64::from)),
            ("duration", self.duration[i]),
        ] {
            if col.is_some() && fields.get(key).and_then(|f| f.as_f64()) == col {
                fields.remove(key);
            }
        }
        for (key, col) in [
            ("path", &self.path),
            ("ip", &self.ip),
            ("method", &self.method),
            ("user_agent", &self.user_agent),
        ] {
            if col[i].is_some() && fields.get(key).and_then(|v| v.as_str()) == col[i].as_deref() {
                fields.remove(key);
            }
        }
    }
}

/// The services with lines in the last 30 days, for the page's picker. A skip scan over the
/// (service, ts) index: one index probe per service, not a pass over every line (this runs on
/// every page view).
pub async fn services(pool: &sqlx::PgPool) -> AppResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "WITH RECURSIVE s(service) AS (
            (SELECT service FROM log_lines WHERE ts > now() - interval '30 days' ORDER BY service LIMIT 1)
            UNION ALL
            SELECT (SELECT l.service FROM log_lines l
                    WHERE l.service > s.service AND l.ts > now() - interval '30 days'
                    ORDER BY l.service LIMIT 1)
            FROM s WHERE s.service IS NOT NULL
         )
         SELECT service FROM s WHERE service IS NOT NULL",
    )
    .fetch_all(pool)
    .await?)
}
