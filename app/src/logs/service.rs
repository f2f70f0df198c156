//! Logs on the server: storing parsed records in bulk, searching with the query language
//! (keyset pagination, newest first) and the analytics.

use super::live;
use super::parse::{Level, Record};
use super::query::{self, Clause, Cond, Op};
use super::rollup::{
    self, Durations, HourAgg, Partial, Ranking, BUCKET_SQL, KEYS_KEPT, SLOWEST_KEPT,
};
use super::{LogLine, LogStats, LogsPageData, SearchResponse, SlowRequest};
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::metrics::parse_time_param;
use crate::partitions::DailyPartitions;
use crate::state::AppState;
use sqlx::{PgPool, Postgres, QueryBuilder};
use time::{Date, Duration, OffsetDateTime};

/// Days whose partition this process knows exists.
static PARTITIONS: std::sync::LazyLock<DailyPartitions> =
    std::sync::LazyLock::new(|| DailyPartitions::new("log_lines"));

/// Creates the daily partitions for these days (once per process and day).
pub async fn ensure_partitions(pool: &PgPool, days: &[Date]) -> AppResult<()> {
    PARTITIONS.ensure(pool, days).await
}

/// Validates a service name (it appears in URLs and facets).
pub fn validate_service(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "service `{name}`: 1–64 letters, digits, `-`, `_` or `.`"
        ))
    }
}

/// Stores records in one statement (UNNEST). A record without a time gets `default_ts`.
pub async fn insert(
    pool: &PgPool,
    service: &str,
    source: &str,
    records: &[Record],
    default_ts: OffsetDateTime,
) -> AppResult<u64> {
    let mut tx = pool.begin().await?;
    let n = insert_in(&mut tx, pool, service, source, records, default_ts).await?;
    tx.commit().await?;
    lines_committed();
    Ok(n)
}

pub use super::live::lines_committed;

/// As `insert`, inside the caller's transaction (partitions are created on `pool` first).
pub async fn insert_in(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    pool: &PgPool,
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
    ensure_partitions(pool, &days).await?;
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

/// A line's fields as given: jsonb plus the typed columns put back.
pub(crate) const FIELDS_SQL: &str = "(fields || jsonb_strip_nulls(jsonb_build_object('status', status, 'duration', duration, 'path', path, 'ip', ip, 'method', method, 'user_agent', user_agent)))";

/// Fields kept in their own columns (numbers first), not in `fields`.
const TYPED_COLUMNS: [&str; 6] = ["status", "duration", "path", "ip", "method", "user_agent"];

/// Numeric comparison on a jsonb field, NULL (no match) when the field is not a number.
fn num_expr(field: &str) -> String {
    match field {
        "status" => return "status".into(),
        "duration" => return "duration".into(),
        _ => {}
    }
    format!(
        "(CASE WHEN jsonb_typeof(fields->'{f}') = 'number' THEN (fields->>'{f}')::float8 END)",
        f = field.replace('\'', "''")
    )
}

fn op_sql(op: &Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
    }
}

/// Appends `AND (…)` for each clause.
fn push_clauses(qb: &mut QueryBuilder<'_, Postgres>, clauses: &[Clause]) {
    for c in clauses {
        // A clause on a missing value is false, also under NOT (hence the coalesce there);
        // plain conditions otherwise, so the planner can use the partial indexes.
        qb.push(if c.negated {
            " AND NOT coalesce("
        } else {
            " AND ("
        });
        match &c.cond {
            Cond::Text(t) => {
                qb.push("message ILIKE ");
                qb.push_bind(format!("%{}%", query::like_pattern(t)));
            }
            Cond::Level(op, l) => {
                // A literal (a parsed level, 0 to 5), so `level:error` can use the partial
                // index on errors, whose predicate a parameter could not be proven against.
                qb.push(format!("level {} {}", op_sql(op), *l as i16));
            }
            Cond::Service(s) => {
                if s.contains('*') {
                    qb.push("service LIKE ");
                    qb.push_bind(query::like_pattern(s));
                } else {
                    qb.push("service = ");
                    qb.push_bind(s.clone());
                }
            }
            Cond::Number { field, op, value } => {
                qb.push(format!("{} {} ", num_expr(field), op_sql(op)));
                qb.push_bind(*value);
            }
            Cond::StatusClass(c) => {
                qb.push(format!("{} >= ", num_expr("status")));
                qb.push_bind(f64::from(*c) * 100.0);
                qb.push(format!(" AND {} < ", num_expr("status")));
                qb.push_bind(f64::from(*c) * 100.0 + 100.0);
            }
            Cond::Match { field, pattern } => {
                if TYPED_COLUMNS[2..].contains(&field.as_str()) {
                    qb.push(field.clone());
                } else {
                    qb.push("fields->>");
                    qb.push_bind(field.clone());
                }
                if pattern.contains('*') {
                    qb.push(" LIKE ");
                    qb.push_bind(query::like_pattern(pattern));
                } else {
                    qb.push(" = ");
                    qb.push_bind(pattern.clone());
                }
            }
            Cond::Exists(field) => {
                if TYPED_COLUMNS.contains(&field.as_str()) {
                    qb.push(format!("{field} IS NOT NULL"));
                } else {
                    qb.push("fields ? ");
                    qb.push_bind(field.clone());
                }
            }
        }
        qb.push(if c.negated { ", false)" } else { ")" });
    }
}

/// `<unix micros>.<id>`: where the next (older) page starts.
pub fn encode_cursor(ts: OffsetDateTime, id: i64) -> String {
    format!("{}.{}", ts.unix_timestamp_nanos() / 1000, id)
}

pub fn decode_cursor(s: &str) -> Result<(OffsetDateTime, i64), String> {
    let bad = || format!("cursor `{s}` is not one this server gave out");
    let (t, id) = s.split_once('.').ok_or_else(bad)?;
    let micros: i128 = t.parse().map_err(|_| bad())?;
    let id: i64 = id.parse().map_err(|_| bad())?;
    let ts = OffsetDateTime::from_unix_timestamp_nanos(micros * 1000).map_err(|_| bad())?;
    Ok((ts, id))
}

/// The time range of a request: `from`/`to` as the metrics API takes them; without `from`, the
/// last 24 hours (never "everything"). At most 400 days.
pub fn time_range(
    from: Option<&str>,
    to: Option<&str>,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), String> {
    let to = match to.filter(|s| !s.is_empty()) {
        Some(s) => parse_time_param(s, now).map_err(|e| format!("to: {e}"))?,
        None => now,
    };
    let from = match from.filter(|s| !s.is_empty()) {
        Some(s) => parse_time_param(s, now).map_err(|e| format!("from: {e}"))?,
        None => to - Duration::hours(24),
    };
    if from >= to {
        return Err("from must be before to".into());
    }
    if to - from > Duration::days(400) {
        return Err("the range is longer than 400 days".into());
    }
    Ok((from, to))
}

type LineRow = (
    i64,
    OffsetDateTime,
    String,
    Option<i16>,
    String,
    sqlx::types::Json<serde_json::Map<String, serde_json::Value>>,
    Option<String>,
);

fn level_name(l: Option<i16>) -> Option<String> {
    l.and_then(|l| Level::ALL.get(l as usize))
        .map(|l| l.as_str().to_string())
}

fn push_scope(
    qb: &mut QueryBuilder<'_, Postgres>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    service: Option<&str>,
    clauses: &[Clause],
) {
    qb.push(" WHERE ts >= ");
    qb.push_bind(from);
    qb.push(" AND ts < ");
    qb.push_bind(to);
    if let Some(s) = service {
        qb.push(" AND service = ");
        qb.push_bind(s.to_string());
    }
    push_clauses(qb, clauses);
}

/// Counts of the matches by service, level and status class.
pub async fn facets(
    pool: &PgPool,
    q: &str,
    service: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<Vec<super::Facet>> {
    let clauses = query::parse(q).map_err(AppError::BadRequest)?;
    let status = num_expr("status");
    let mut qb = QueryBuilder::<Postgres>::new(format!(
        "SELECT k, v, count(*) FROM (SELECT service, level, {status} AS st FROM log_lines"
    ));
    push_scope(&mut qb, from, to, service, &clauses);
    qb.push(
        ") m CROSS JOIN LATERAL (VALUES ('service', service), ('level', coalesce(level::text, 'none')),
            ('status', CASE WHEN st IS NULL THEN NULL ELSE (st / 100)::int || 'xx' END)) AS f(k, v)
         WHERE v IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2",
    );
    let rows: Vec<(String, String, i64)> = qb.build_query_as().fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(kind, value, count)| {
            let value = if kind == "level" {
                value
                    .parse::<i16>()
                    .ok()
                    .and_then(|l| level_name(Some(l)))
                    .unwrap_or(value)
            } else {
                value
            };
            super::Facet { kind, value, count }
        })
        .collect())
}

/// How many lines match a query in [from, to) (alert rules count them).
pub async fn count_matching(
    pool: &PgPool,
    q: &str,
    service: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<i64> {
    let clauses = query::parse(q).map_err(AppError::BadRequest)?;
    let mut qb = QueryBuilder::<Postgres>::new("SELECT count(*) FROM log_lines");
    push_scope(&mut qb, from, to, service, &clauses);
    Ok(qb.build_query_scalar().fetch_one(pool).await?)
}

/// Matches over time in about 60 buckets: (bucket start, count).
pub async fn histogram(
    pool: &PgPool,
    q: &str,
    service: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<(i64, Vec<(i64, i64)>)> {
    let clauses = query::parse(q).map_err(AppError::BadRequest)?;
    let span = (to - from).whole_seconds().max(60);
    // Round steps: 1, 5, 15, 30 min, 1, 3, 6, 12 h, 1 d.
    let step = [60, 300, 900, 1800, 3600, 10800, 21600, 43200, 86400]
        .into_iter()
        .find(|s| span / s <= 90)
        .unwrap_or(86400);
    let mut qb = QueryBuilder::<Postgres>::new("SELECT (floor(extract(epoch FROM ts) / ");
    qb.push_bind(step as f64);
    qb.push(") * ");
    qb.push_bind(step as f64);
    qb.push(")::bigint AS b, count(*) FROM log_lines");
    push_scope(&mut qb, from, to, service, &clauses);
    qb.push(" GROUP BY 1 ORDER BY 1");
    let rows: Vec<(i64, i64)> = qb.build_query_as().fetch_all(pool).await?;
    Ok((step, rows))
}

/// Newest first, `limit` lines at most, continuing before `cursor`.
pub async fn search(
    pool: &PgPool,
    q: &str,
    service: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    limit: i64,
    cursor: Option<&str>,
) -> AppResult<SearchResponse> {
    let clauses = query::parse(q).map_err(AppError::BadRequest)?;
    if !(1..=1000).contains(&limit) {
        return Err(AppError::bad_request("limit must be between 1 and 1000"));
    }
    let mut qb = QueryBuilder::<Postgres>::new(format!(
        "SELECT id, ts, service, level, message, {FIELDS_SQL}, parse_error FROM log_lines"
    ));
    push_scope(&mut qb, from, to, service, &clauses);
    if let Some(c) = cursor {
        let (ts, id) = decode_cursor(c).map_err(AppError::BadRequest)?;
        qb.push(" AND (ts, id) < (");
        qb.push_bind(ts);
        qb.push(", ");
        qb.push_bind(id);
        qb.push(")");
    }
    qb.push(" ORDER BY ts DESC, id DESC LIMIT ");
    qb.push_bind(limit + 1);
    let mut rows: Vec<LineRow> = qb.build_query_as().fetch_all(pool).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| encode_cursor(r.1, r.0))
    } else {
        None
    };
    Ok(SearchResponse {
        lines: rows
            .into_iter()
            .map(
                |(id, ts, service, level, message, fields, parse_error)| LogLine {
                    id,
                    ts,
                    service,
                    level: level_name(level),
                    message,
                    fields: fields.0,
                    parse_error,
                },
            )
            .collect(),
        next_cursor,
        from,
        to,
    })
}

/// Error messages with their variable parts replaced, so that similar errors group: first line
/// only; UUIDs, hex ids, IP addresses, e-mail addresses and numbers become placeholders.
const NORMALISED_MESSAGE: &str = "regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
    left(split_part(message, E'\\n', 1), 300),
    '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<uuid>', 'g'),
    '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}', '<email>', 'g'),
    '\\m\\d{1,3}(\\.\\d{1,3}){3}(:\\d+)?\\M', '<ip>', 'g'),
    '\\m(0x)?[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\\M|\\m(0x)?[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\\M', '<hex>', 'g'),
    '\\d+(\\.\\d+)?', '<n>', 'g')";

#[derive(Debug, Clone)]
pub struct StatsParams {
    pub slow_seconds: f64,
    pub suspicious_posts: i64,
    pub top: i64,
}

impl Default for StatsParams {
    fn default() -> Self {
        Self {
            slow_seconds: 5.0,
            suspicious_posts: 100,
            top: 10,
        }
    }
}

/// A transaction with enough memory for big sorts and hashes (the analytics), and without JIT:
/// compiling these queries costs more (about 120 ms measured) than it saves.
async fn begin_for_analytics(pool: &PgPool) -> AppResult<sqlx::Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL work_mem = '64MB'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
    Ok(tx)
}

/// One row of the grouping-sets scan of `raw_partial`.
type GroupRow = (
    i32,
    Option<OffsetDateTime>,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i32>,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// Up to this many lines with a duration in a range, its percentiles are computed exactly
/// (sorting them takes up to about 100 ms); above, they come from the rollups' histograms.
pub const EXACT_PERCENTILES_UP_TO: i64 = 20_000;

const SCOPE: &str = "ts >= $1 AND ts < $2 AND ($3::text IS NULL OR service = $3)";

/// The analytics of [from, to) read from the lines themselves: one grouping-sets scan for the
/// hours, status classes, key counts and the response-time histogram, one for the error
/// messages, one for the slowest requests.
pub async fn raw_partial(
    pool: &PgPool,
    service: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> AppResult<Partial> {
    let svc = service.map(str::to_string);
    // GROUPING bits, hr..bucket from high to low: 31 = hr, 47 = cls, 55 = path, 59 = ip,
    // 61 = user_agent, 62 = bucket.
    let q_groups = format!(
        "SELECT gmask, hr, cls, path, ip, user_agent, bucket, n, errors, requests, api_posts, durations, sum_d, min_d, max_d FROM (
            SELECT GROUPING(hr, cls, path, ip, user_agent, bucket) AS gmask, hr, cls, path, ip, user_agent, bucket,
                   count(*) AS n, count(*) FILTER (WHERE level >= 4) AS errors, count(status) AS requests,
                   count(*) FILTER (WHERE method = 'POST' AND path LIKE '/api/%') AS api_posts,
                   count(duration) AS durations, sum(duration) AS sum_d, min(duration) AS min_d, max(duration) AS max_d,
                   row_number() OVER (PARTITION BY GROUPING(hr, cls, path, ip, user_agent, bucket) ORDER BY count(*) DESC) AS rank
            FROM (SELECT date_trunc('hour', ts, 'UTC') AS hr, (status / 100)::int AS cls, path, ip, user_agent,
                         CASE WHEN duration IS NOT NULL THEN {BUCKET_SQL} END AS bucket,
                         level, status, method, duration
                  FROM log_lines WHERE {SCOPE}) s
            GROUP BY GROUPING SETS ((hr), (cls), (path), (ip), (user_agent), (bucket))
         ) g
         WHERE gmask IN (31, 47, 62) OR rank <= {KEYS_KEPT}"
    );
    let q_errors = format!(
        "SELECT {NORMALISED_MESSAGE} AS m, count(*) FROM log_lines WHERE {SCOPE} AND level >= 4
         GROUP BY 1 ORDER BY 2 DESC LIMIT {KEYS_KEPT}"
    );
    let q_slowest = format!(
        "SELECT ts, duration, coalesce(path, fields->>'url'), service FROM log_lines
         WHERE {SCOPE} AND duration IS NOT NULL ORDER BY 2 DESC, ts DESC LIMIT {SLOWEST_KEPT}"
    );
    let groups = async {
        let mut tx = begin_for_analytics(pool).await?;
        let rows = sqlx::query_as::<_, GroupRow>(&q_groups)
            .bind(from)
            .bind(to)
            .bind(&svc)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, AppError>(rows)
    };
    let errors = sqlx::query_as::<_, (String, i64)>(&q_errors)
        .bind(from)
        .bind(to)
        .bind(&svc)
        .fetch_all(pool);
    let slowest = sqlx::query_as::<_, (OffsetDateTime, f64, Option<String>, String)>(&q_slowest)
        .bind(from)
        .bind(to)
        .bind(&svc)
        .fetch_all(pool);
    let (groups, errors, slowest) =
        tokio::try_join!(groups, async { Ok::<_, AppError>(errors.await?) }, async {
            Ok::<_, AppError>(slowest.await?)
        })?;
    let mut p = Partial {
        errors: errors.into_iter().collect(),
        slowest: slowest
            .into_iter()
            .map(|(ts, duration, url, service)| SlowRequest {
                ts,
                duration,
                url,
                service,
            })
            .collect(),
        ..Partial::default()
    };
    for (
        gmask,
        hr,
        cls,
        path,
        ip,
        ua,
        bucket,
        n,
        errors,
        requests,
        api_posts,
        durations,
        sum,
        min,
        max,
    ) in groups
    {
        match gmask {
            31 => {
                if let Some(h) = hr {
                    p.hours.insert(
                        h.unix_timestamp(),
                        HourAgg {
                            total: n,
                            errors,
                            requests,
                        },
                    );
                    p.durations.merge(&Durations {
                        count: durations,
                        sum: sum.unwrap_or(0.0),
                        min,
                        max,
                    });
                }
            }
            47 => {
                if let Some(c) = cls {
                    p.classes.insert(c, n);
                }
            }
            55 => {
                if let Some(path) = path {
                    p.paths.insert(path, n);
                }
            }
            59 => {
                if let Some(ip) = ip {
                    p.ips.insert(ip, (n, api_posts));
                }
            }
            61 => {
                if let Some(ua) = ua {
                    p.agents.insert(ua, n);
                }
            }
            62 => {
                if let Some(b) = bucket {
                    p.histogram.insert(b, n);
                }
            }
            _ => {}
        }
    }
    Ok(p)
}

/// The runbook's analytics for [from, to): the whole days and hours already rolled up (and not
/// written to since) come from `log_rollups` and `log_rollup_hours`, the rest from the lines.
/// Percentiles are exact up to `EXACT_PERCENTILES_UP_TO` timed lines, else from the histogram
/// (within 0.5 %). A range ending now may be answered from up to `live::RECENT_SECONDS`
/// before (`live::fresh_or_recent`): a dashboard asks many times a second.
pub async fn stats(
    pool: &PgPool,
    service: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    p: &StatsParams,
) -> AppResult<LogStats> {
    // Ranges are taken to whole seconds (one ending now to the end of this second), so the
    // requests of one second for a range ending now share their reads.
    let (from, to) = (whole_second(from), second_end(to));
    let key = format!("stats/{service:?}/{}/{p:?}", (to - from).whole_seconds());
    let (pool2, service, p) = (pool.clone(), service.map(str::to_string), p.clone());
    // (Boxed: the analytics' future is large.)
    let compute = Box::pin(async move { stats_of(&pool2, service.as_deref(), from, to, &p).await });
    recent_if(ends_now(to), pool, key, to, compute).await
}

async fn stats_of(
    pool: &PgPool,
    service: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    p: &StatsParams,
) -> AppResult<LogStats> {
    let svc = service.map(str::to_string);
    let now_ending = ends_now(to);
    let days = rollup::whole_days(from, to);
    let rolled_days: Vec<Date> = if days.is_empty() {
        vec![]
    } else {
        sqlx::query_scalar(
            "SELECT d.day FROM log_rollup_days d WHERE d.day = ANY($1)
             AND NOT EXISTS (SELECT 1 FROM log_rollup_pending p
                             WHERE p.day = d.day AND ($2::text IS NULL OR p.service = $2))
             ORDER BY 1",
        )
        .bind(&days)
        .bind(&svc)
        .fetch_all(pool)
        .await?
    };
    let mut stored: std::collections::BTreeSet<(OffsetDateTime, OffsetDateTime)> =
        rolled_days.iter().map(|d| rollup::day_span(*d)).collect();
    // The whole hours of what the days leave (the edges, today, days not rolled up yet).
    let hours: Vec<OffsetDateTime> = rollup::raw_stretches(from, to, &stored)
        .into_iter()
        .flat_map(|(a, b)| rollup::whole_hours(a, b))
        .collect();
    let rolled_hours: Vec<OffsetDateTime> = if hours.is_empty() {
        vec![]
    } else {
        sqlx::query_scalar(
            "SELECT h.hour FROM log_rollup_hours_done h WHERE h.hour = ANY($1)
             AND NOT EXISTS (SELECT 1 FROM log_rollup_pending p
                             WHERE p.hour = h.hour AND ($2::text IS NULL OR p.service = $2))",
        )
        .bind(&hours)
        .bind(&svc)
        .fetch_all(pool)
        .await?
    };
    stored.extend(rolled_hours.iter().map(|h| rollup::hour_span(*h)));
    // The current hour (and the one before, until it is rolled up) up to the live round.
    let live: Vec<(OffsetDateTime, OffsetDateTime)> = sqlx::query_as::<_, (OffsetDateTime, OffsetDateTime)>(
        "SELECT r.hour, r.upto FROM log_rollup_live_rounds r
         WHERE r.hour >= $1 AND r.upto <= $2
           AND NOT EXISTS (SELECT 1 FROM log_rollup_pending p
                           WHERE p.hour = r.hour AND p.live AND ($3::text IS NULL OR p.service = $3))
         ORDER BY 1",
    )
    .bind(from)
    .bind(to)
    .bind(&svc)
    .fetch_all(pool)
    .await?
    .into_iter()
    .filter(|(h, _)| !stored.iter().any(|(a, b)| a < &(*h + rollup::HOUR) && *h < *b))
    .collect();
    stored.extend(live.iter().copied());
    let (live_hours, live_upto): (Vec<OffsetDateTime>, Vec<OffsetDateTime>) =
        live.iter().copied().unzip();
    let partials = async {
        if stored.is_empty() {
            return Ok(vec![]);
        }
        Ok::<_, AppError>(
            sqlx::query_scalar::<_, sqlx::types::Json<Partial>>(
                "SELECT data FROM log_rollups WHERE day = ANY($1) AND ($3::text IS NULL OR service = $3)
                 UNION ALL
                 SELECT data FROM log_rollup_hours WHERE hour = ANY($2) AND ($3::text IS NULL OR service = $3)
                 UNION ALL
                 SELECT l.data FROM log_rollup_live l
                 JOIN UNNEST($4::timestamptz[], $5::timestamptz[]) AS r(hour, upto) ON l.hour = r.hour AND l.upto = r.upto
                 WHERE ($3::text IS NULL OR l.service = $3)",
            )
            .bind(&rolled_days)
            .bind(&rolled_hours)
            .bind(&svc)
            .bind(&live_hours)
            .bind(&live_upto)
            .fetch_all(pool)
            .await?,
        )
    };
    // Usually two short edges and the seconds since the live round.
    let raw = async {
        let mut out = vec![];
        for (a, b) in rollup::raw_stretches(from, to, &stored) {
            let key = format!("raw/{service:?}/{a}/{b}");
            out.push(shared_if(now_ending, pool, key, raw_partial(pool, service, a, b)).await?);
        }
        Ok::<_, AppError>(out)
    };
    let (partials, raw) = tokio::try_join!(partials, raw)?;
    let mut all = Partial::default();
    for part in partials.iter().map(|j| &j.0).chain(raw.iter()) {
        all.merge(part);
    }
    // Exact percentiles while the range holds few enough timed lines to sort them quickly;
    // beyond that the histogram's (within 0.5 %).
    let exact = if (1..=EXACT_PERCENTILES_UP_TO).contains(&all.durations.count) {
        let q = format!(
            "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration)
             FROM log_lines WHERE {SCOPE} AND duration IS NOT NULL"
        );
        let mut tx = begin_for_analytics(pool).await?;
        let v = sqlx::query_scalar::<_, Option<Vec<f64>>>(&q)
            .bind(from)
            .bind(to)
            .bind(&svc)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        v.and_then(|v| <[f64; 3]>::try_from(v).ok())
    } else {
        None
    };
    let ranking = Ranking {
        top: p.top.clamp(0, 1000) as usize,
        slow_seconds: p.slow_seconds,
        suspicious_posts: p.suspicious_posts,
    };
    Ok(rollup::finish(&all, &ranking, exact, from, to, svc))
}

/// Whether a range ends now (a dashboard's "last hour"): such ranges are taken to whole
/// seconds, and the requests of one second share their reads (`shared_for_a_second`).
fn ends_now(to: OffsetDateTime) -> bool {
    to > OffsetDateTime::now_utc() - Duration::seconds(2)
}

fn whole_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// The end of the second `t` is in (so a range ending now holds every line stored by now).
fn second_end(t: OffsetDateTime) -> OffsetDateTime {
    let start = whole_second(t);
    if start == t {
        t
    } else {
        start + Duration::seconds(1)
    }
}

/// `compute`, shared within the second by `key` when `shared` (a range ending now), else as is.
async fn shared_if<T, F>(shared: bool, pool: &PgPool, key: String, compute: F) -> AppResult<T>
where
    T: Clone + Send + Sync + 'static,
    F: std::future::Future<Output = AppResult<T>>,
{
    if shared {
        live::shared_for_a_second(&scope(pool), &key, compute).await
    } else {
        compute.await
    }
}

/// `compute` for the range ending at `to` (a range ending now, when `live`) from up to
/// `live::RECENT_SECONDS` before (`live::fresh_or_recent`; `key` names the question without its
/// time), else as is.
async fn recent_if<T, F>(
    live: bool,
    pool: &PgPool,
    key: String,
    to: OffsetDateTime,
    compute: F,
) -> AppResult<T>
where
    T: Clone + Send + Sync + 'static,
    F: std::future::Future<Output = AppResult<T>> + Send + 'static,
{
    if live {
        live::fresh_or_recent(&scope(pool), &key, to.unix_timestamp(), compute).await
    } else {
        compute.await
    }
}

/// What answers shared between requests are kept apart by: the database.
fn scope(pool: &PgPool) -> String {
    pool.connect_options()
        .get_database()
        .unwrap_or_default()
        .to_string()
}

/// `s(service)`: the services with lines in the partition `name` (a trailing NULL row ends
/// it), found with one index probe per service rather than a pass over the partition.
fn partition_services(name: &str) -> String {
    format!(
        "WITH RECURSIVE s(service) AS (
            (SELECT service FROM {name} ORDER BY service LIMIT 1)
            UNION ALL
            SELECT (SELECT l.service FROM {name} l WHERE l.service > s.service ORDER BY l.service LIMIT 1)
            FROM s WHERE s.service IS NOT NULL
         )"
    )
}

/// What a round of `roll_up` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct RollupReport {
    /// (service, hour) pairs rolled up from the lines.
    pub hours: usize,
    /// Lines they hold.
    pub lines: i64,
    /// (service, day) pairs merged from their hours.
    pub days: usize,
}

/// Rolls up the finished hours, then merges the finished days from them:
/// 1. every hour of a stored day that was never rolled up gets a mark for each service with
///    lines in it (found by index probes, not a pass over the partition);
/// 2. every marked (service, hour) is read from the lines and stored in `log_rollup_hours`
///    (marks come from step 1, from late writes and from retention);
/// 3. every finished day that is new, or had an hour rolled up again, is merged from its hours
///    into `log_rollups`.
pub async fn roll_up(pool: &PgPool, now: OffsetDateTime) -> AppResult<RollupReport> {
    let done: std::collections::HashSet<OffsetDateTime> =
        sqlx::query_scalar("SELECT hour FROM log_rollup_hours_done")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let partitions = PARTITIONS.existing(pool).await?;
    for (name, day) in &partitions {
        let start = rollup::day_start(*day);
        let due: Vec<OffsetDateTime> = (0..24)
            .map(|h| start + Duration::hours(h))
            .filter(|h| !done.contains(h) && rollup::rollable(*h, rollup::HOUR, now))
            .collect();
        if due.is_empty() {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::query(&format!(
            "{}
             INSERT INTO log_rollup_pending (service, day, hour)
             SELECT s.service, $1::date, h FROM s, unnest($2::timestamptz[]) h
             WHERE s.service IS NOT NULL AND EXISTS (
                SELECT 1 FROM {name} l WHERE l.service = s.service AND l.ts >= h AND l.ts < h + interval '1 hour')",
            partition_services(name)
        ))
        .bind(day)
        .bind(&due)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO log_rollup_hours_done (hour) SELECT unnest($1::timestamptz[]) ON CONFLICT DO NOTHING")
            .bind(&due)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }

    let todo: Vec<(String, OffsetDateTime)> = sqlx::query_as(
        "SELECT DISTINCT service, hour FROM log_rollup_pending WHERE hour <= $1 ORDER BY hour, service",
    )
    .bind(now - rollup::HOUR)
    .fetch_all(pool)
    .await?;
    let mut report = RollupReport::default();
    let mut touched: std::collections::BTreeSet<(Date, String)> = Default::default();
    for (service, hour) in todo {
        if !rollup::rollable(hour, rollup::HOUR, now) {
            continue;
        }
        let mut tx = pool.begin().await?;
        // Only marks of committed writes are visible here, so every line they stand for is
        // read below; marks of writes still running stay for the next round.
        let taken = sqlx::query("DELETE FROM log_rollup_pending WHERE service = $1 AND hour = $2")
            .bind(&service)
            .bind(hour)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if taken == 0 {
            continue;
        }
        let part = raw_partial(pool, Some(&service), hour, hour + rollup::HOUR).await?;
        let lines = part.lines();
        if lines == 0 {
            sqlx::query("DELETE FROM log_rollup_hours WHERE service = $1 AND hour = $2")
                .bind(&service)
                .bind(hour)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO log_rollup_hours (service, hour, lines, data) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (service, hour) DO UPDATE SET lines = excluded.lines, data = excluded.data, computed_at = now()",
            )
            .bind(&service)
            .bind(hour)
            .bind(lines)
            .bind(sqlx::types::Json(&part))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        report.hours += 1;
        report.lines += lines;
        touched.insert((hour.to_offset(time::UtcOffset::UTC).date(), service));
    }

    let days_done: std::collections::HashSet<Date> =
        sqlx::query_scalar("SELECT day FROM log_rollup_days")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let mut new_days = vec![];
    for (_, day) in &partitions {
        if !days_done.contains(day) && rollup::rollable(rollup::day_start(*day), Duration::DAY, now)
        {
            new_days.push(*day);
        }
    }
    for day in &new_days {
        let (a, b) = rollup::day_span(*day);
        let services: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT service FROM log_rollup_hours WHERE hour >= $1 AND hour < $2",
        )
        .bind(a)
        .bind(b)
        .fetch_all(pool)
        .await?;
        touched.extend(services.into_iter().map(|s| (*day, s)));
    }
    for (day, service) in touched {
        let (a, b) = rollup::day_span(day);
        if !rollup::rollable(a, Duration::DAY, now) {
            continue;
        }
        let hours = sqlx::query_scalar::<_, sqlx::types::Json<Partial>>(
            "SELECT data FROM log_rollup_hours WHERE service = $1 AND hour >= $2 AND hour < $3",
        )
        .bind(&service)
        .bind(a)
        .bind(b)
        .fetch_all(pool)
        .await?;
        let mut part = Partial::default();
        for h in &hours {
            part.merge(&h.0);
        }
        part.trim(KEYS_KEPT as usize);
        if hours.is_empty() {
            sqlx::query("DELETE FROM log_rollups WHERE service = $1 AND day = $2")
                .bind(&service)
                .bind(day)
                .execute(pool)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO log_rollups (service, day, lines, data) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (service, day) DO UPDATE SET lines = excluded.lines, data = excluded.data, computed_at = now()",
            )
            .bind(&service)
            .bind(day)
            .bind(part.lines())
            .bind(sqlx::types::Json(&part))
            .execute(pool)
            .await?;
        }
        report.days += 1;
    }
    // Only now is a new day whole: every service's row is in.
    if !new_days.is_empty() {
        sqlx::query(
            "INSERT INTO log_rollup_days (day) SELECT unnest($1::date[]) ON CONFLICT DO NOTHING",
        )
        .bind(&new_days)
        .execute(pool)
        .await?;
    }
    Ok(report)
}

/// What a round of `roll_up_live` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct LiveReport {
    /// Services brought up to `upto`.
    pub services: usize,
    /// Of which rebuilt from the start of the hour (late lines had arrived).
    pub rebuilt: usize,
    #[serde(with = "time::serde::rfc3339::option")]
    pub upto: Option<OffsetDateTime>,
}

/// Brings the current hour's live rollup of every service up to `now - LIVE_LAG`: each
/// service's partial grows by the lines since the last round, or is rebuilt from the hour's
/// start when late lines marked the hour. One transaction, so that readers see every service at
/// the same `upto` or none at the new one.
pub async fn roll_up_live(pool: &PgPool, now: OffsetDateTime) -> AppResult<LiveReport> {
    let upto = now - rollup::LIVE_LAG;
    let hour = rollup::hour_of(upto);
    let mut report = LiveReport::default();
    let day = hour.to_offset(time::UtcOffset::UTC).date();
    let Some((name, _)) = PARTITIONS
        .existing(pool)
        .await?
        .into_iter()
        .find(|(_, d)| *d == day)
    else {
        return Ok(report);
    };
    let services: Vec<String> = sqlx::query_scalar(&format!(
        "{}
         SELECT s.service FROM s WHERE s.service IS NOT NULL AND EXISTS (
            SELECT 1 FROM {name} l WHERE l.service = s.service AND l.ts >= $1 AND l.ts < $2)",
        partition_services(&name)
    ))
    .bind(hour)
    .bind(upto)
    .fetch_all(pool)
    .await?;
    let mut tx = pool.begin().await?;
    for service in &services {
        // Marks of committed late writes: their lines are read below (as in `roll_up`).
        let late =
            sqlx::query("DELETE FROM log_rollup_pending WHERE service = $1 AND hour = $2 AND live")
                .bind(service)
                .bind(hour)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let prev: Option<(OffsetDateTime, sqlx::types::Json<Partial>)> = sqlx::query_as(
            "SELECT upto, data FROM log_rollup_live WHERE service = $1 AND hour = $2",
        )
        .bind(service)
        .bind(hour)
        .fetch_optional(&mut *tx)
        .await?;
        let part = match prev {
            Some((since, data)) if late == 0 && since <= upto => {
                let mut p = data.0;
                p.merge(&raw_partial(pool, Some(service), since, upto).await?);
                p.trim(KEYS_KEPT as usize);
                p
            }
            _ => {
                report.rebuilt += 1;
                raw_partial(pool, Some(service), hour, upto).await?
            }
        };
        sqlx::query(
            "INSERT INTO log_rollup_live (service, hour, upto, lines, data) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (service, hour) DO UPDATE SET upto = excluded.upto, lines = excluded.lines, data = excluded.data",
        )
        .bind(service)
        .bind(hour)
        .bind(upto)
        .bind(part.lines())
        .bind(sqlx::types::Json(&part))
        .execute(&mut *tx)
        .await?;
        report.services += 1;
    }
    sqlx::query(
        "INSERT INTO log_rollup_live_rounds (hour, upto) VALUES ($1, $2)
         ON CONFLICT (hour) DO UPDATE SET upto = excluded.upto",
    )
    .bind(hour)
    .bind(upto)
    .execute(&mut *tx)
    .await?;
    // Hours long over are in log_rollup_hours by now.
    for table in ["log_rollup_live", "log_rollup_live_rounds"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE hour < $1"))
            .bind(hour - Duration::hours(2))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    report.upto = Some(upto);
    Ok(report)
}

pub async fn list_sources(pool: &PgPool) -> AppResult<Vec<super::SourceRow>> {
    Ok(sqlx::query_as(
        "SELECT s.id, s.path, s.format, s.service, st.tailer,
                coalesce((SELECT sum(\"offset\") FROM log_files f WHERE f.source_id = s.id), 0)::bigint AS position,
                coalesce((SELECT sum(lines) FROM log_files f WHERE f.source_id = s.id), 0)::bigint AS lines,
                coalesce(st.lines_per_sec, 0) AS lines_per_sec, st.last_line_at, st.last_error
         FROM log_sources s LEFT JOIN log_source_state st ON st.source_id = s.id ORDER BY s.service, s.path",
    )
    .fetch_all(pool)
    .await?)
}

/// Adds a source (idempotent on path and service).
pub async fn add_source(pool: &PgPool, path: &str, format: &str, service: &str) -> AppResult<i64> {
    let path = path.trim();
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
    let format = super::parse::Format::parse(format).map_err(AppError::Unprocessable)?;
    validate_service(service).map_err(AppError::Unprocessable)?;
    let f = match format {
        super::parse::Format::Json => "json",
        super::parse::Format::Nginx => "nginx",
        super::parse::Format::Text => "text",
    };
    Ok(sqlx::query_scalar(
        "INSERT INTO log_sources (path, format, service) VALUES ($1, $2, $3)
         ON CONFLICT (path, service) DO UPDATE SET format = excluded.format RETURNING id",
    )
    .bind(path)
    .bind(f)
    .bind(service)
    .fetch_one(pool)
    .await?)
}

pub async fn delete_source(pool: &PgPool, id: i64) -> AppResult<()> {
    let n = sqlx::query("DELETE FROM log_sources WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(AppError::not_found(format!("no log source {id}")));
    }
    Ok(())
}

/// What log retention removed.
#[derive(Debug, Default, serde::Serialize)]
pub struct LogRetentionReport {
    pub dropped_partitions: Vec<String>,
    /// Lines deleted row by row: services kept shorter than the longest retention.
    pub deleted_lines: u64,
}

/// Drops whole daily partitions older than the longest retention (the default or a service's
/// own), then deletes the lines of services kept shorter than that, service by service.
pub async fn enforce_retention(
    pool: &PgPool,
    days: i64,
    per_service: &[(String, i64)],
    now: OffsetDateTime,
) -> AppResult<LogRetentionReport> {
    let longest = per_service
        .iter()
        .map(|s| s.1)
        .chain([days])
        .max()
        .unwrap_or(days);
    let cutoff = now - Duration::days(longest);
    let mut report = LogRetentionReport {
        dropped_partitions: PARTITIONS.drop_older_than(pool, cutoff).await?,
        ..Default::default()
    };
    sqlx::query("DELETE FROM log_ingest_keys WHERE created_at < $1")
        .bind(now - Duration::hours(24))
        .execute(pool)
        .await?;
    let day = cutoff.to_offset(time::UtcOffset::UTC).date();
    for table in ["log_rollups", "log_rollup_days", "log_rollup_pending"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE day < $1"))
            .bind(day)
            .execute(pool)
            .await?;
    }
    for table in ["log_rollup_hours", "log_rollup_hours_done"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE hour < $1"))
            .bind(rollup::day_start(day))
            .execute(pool)
            .await?;
    }
    // Services kept shorter than the longest: row by row, in one transaction with their
    // rollups (whole hours and days removed, the hour cut in two rolled up again, and with it
    // its day).
    let named: Vec<String> = per_service.iter().map(|s| s.0.clone()).collect();
    let mut shorter: Vec<(Option<&str>, i64)> = per_service
        .iter()
        .filter(|s| s.1 < longest)
        .map(|s| (Some(s.0.as_str()), s.1))
        .collect();
    if days < longest {
        shorter.push((None, days));
    }
    for (service, keep) in shorter {
        let cut = now - Duration::days(keep);
        let cut_hour = rollup::hour_of(cut);
        let cut_day = cut_hour.date();
        // `service` NULL: every service without a retention of its own.
        let scope = "CASE WHEN $1::text IS NULL THEN service <> ALL($2) ELSE service = $1 END";
        let mut tx = pool.begin().await?;
        report.deleted_lines +=
            sqlx::query(&format!("DELETE FROM log_lines WHERE {scope} AND ts < $3"))
                .bind(service)
                .bind(&named)
                .bind(cut)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query(&format!(
            "DELETE FROM log_rollups WHERE {scope} AND day < $3"
        ))
        .bind(service)
        .bind(&named)
        .bind(cut_day)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "DELETE FROM log_rollup_hours WHERE {scope} AND hour < $3"
        ))
        .bind(service)
        .bind(&named)
        .bind(cut_hour)
        .execute(&mut *tx)
        .await?;
        // The hour cut in two is rolled up again; that merges its day anew too. Until then a
        // mark keeps readers on the lines for both.
        sqlx::query(&format!(
            "INSERT INTO log_rollup_pending (service, day, hour)
             SELECT service, $4, $3 FROM log_rollup_hours WHERE {scope} AND hour = $3
             UNION SELECT service, $4, $3 FROM log_rollups WHERE {scope} AND day = $4"
        ))
        .bind(service)
        .bind(&named)
        .bind(cut_hour)
        .bind(cut_day)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(report)
}

/// The services with lines in the last 30 days, for the page's picker. A skip scan over the
/// (service, ts) index: one index probe per service, not a pass over every line (this runs on
/// every page view).
pub async fn services(pool: &PgPool) -> AppResult<Vec<String>> {
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

/// What the Logs page asks for.
pub struct PageQuery<'a> {
    pub q: &'a str,
    pub service: Option<&'a str>,
    pub range: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub cursor: Option<&'a str>,
}

/// The Logs page: matches, facets, the histogram and, on the first page, the analytics.
pub async fn page_data(state: &AppState, role: Role, p: PageQuery<'_>) -> AppResult<LogsPageData> {
    let now = OffsetDateTime::now_utc();
    let (from, to) = if p.from.is_some() {
        time_range(p.from, p.to, now).map_err(AppError::BadRequest)?
    } else {
        let secs = crate::metrics::parse_duration_secs(p.range.unwrap_or("24h"))
            .map_err(|e| AppError::bad_request(format!("range: {e}")))?;
        time_range(Some(&format!("now-{secs}s")), None, now).map_err(AppError::BadRequest)?
    };
    // A range ending now: whole seconds, as `stats` takes it, so the facets and timeline below
    // cover the same range.
    let live = ends_now(to);
    let (from, to) = if live {
        (whole_second(from), second_end(to))
    } else {
        (from, to)
    };
    let search = search(&state.pool, p.q, p.service, from, to, 100, p.cursor).await?;
    let params = StatsParams::default();
    let (stats, facets, histogram) = if p.cursor.is_none() {
        // For a range ending now, the facets and the timeline may come from up to
        // `live::RECENT_SECONDS` before, as the analytics (`stats`) do.
        let span = (to - from).whole_seconds();
        let (q, service) = (p.q.to_string(), p.service.map(str::to_string));
        let (pool, q2, service2) = (state.pool.clone(), q.clone(), service.clone());
        let facets_now = async move { facets(&pool, &q2, service2.as_deref(), from, to).await };
        let pool = state.pool.clone();
        let histogram_now = async move { histogram(&pool, &q, service.as_deref(), from, to).await };
        let (s, f, h) = tokio::try_join!(
            stats(&state.pool, p.service, from, to, &params),
            recent_if(
                live,
                &state.pool,
                format!("facets/{}/{:?}/{span}", p.q, p.service),
                to,
                facets_now,
            ),
            recent_if(
                live,
                &state.pool,
                format!("histogram/{}/{:?}/{span}", p.q, p.service),
                to,
                histogram_now,
            ),
        )?;
        (Some(s), f, Some(h))
    } else {
        (None, vec![], None)
    };
    Ok(LogsPageData {
        role,
        services: services(&state.pool).await?,
        search,
        stats,
        facets,
        histogram_step: histogram.as_ref().map(|h| h.0).unwrap_or(0),
        histogram: histogram.map(|h| h.1).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let t = datetime!(2026-11-24 10:15:02.123456 UTC);
        assert_eq!(decode_cursor(&encode_cursor(t, 42)), Ok((t, 42)));
        for bad in ["", "x", "1.", ".1", "1.x", "99999999999999999999999999.1"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_default_to_a_day() {
        let now = datetime!(2026-11-24 10:00 UTC);
        assert_eq!(
            time_range(None, None, now),
            Ok((now - Duration::hours(24), now))
        );
        assert_eq!(
            time_range(Some("now-1h"), None, now),
            Ok((now - Duration::hours(1), now))
        );
        assert!(time_range(Some("now"), Some("now-1h"), now)
            .unwrap_err()
            .contains("before"));
        assert!(time_range(Some("now-500d"), None, now)
            .unwrap_err()
            .contains("400 days"));
        assert!(time_range(Some("soon"), None, now)
            .unwrap_err()
            .starts_with("from:"));
    }

    #[test]
    fn services() {
        assert!(validate_service("api-1.eu_west").is_ok());
        for bad in ["", "a b", "x/y", &"s".repeat(65)] {
            assert!(validate_service(bad).is_err(), "{bad}");
        }
    }
}
