//! Logs on the server: storing parsed records in bulk, searching with the query language
//! (keyset pagination, newest first) and the analytics.

use super::parse::{Level, Record};
use super::query::{self, Clause, Cond, Op};
use super::{
    AgentCount, ClassCount, HourCount, IpCount, LogLine, LogStats, LogsPageData, MessageCount,
    PathCount, ResponseTime, SearchResponse, SlowRequest, SuspiciousIp,
};
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
    Ok(n)
}

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
    let fields: Vec<String> = records
        .iter()
        .map(|r| {
            clean(&serde_json::Value::Object(r.fields.clone()).to_string())
                .replace("\\u0000", "\u{FFFD}")
        })
        .collect();
    let errors: Vec<Option<String>> = records
        .iter()
        .map(|r| r.parse_error.as_deref().map(clean))
        .collect();
    let typed = TypedFields::of(records, clean);
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
}

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
        qb.push(if c.negated {
            " AND NOT coalesce("
        } else {
            " AND coalesce("
        });
        match &c.cond {
            Cond::Text(t) => {
                qb.push("message ILIKE ");
                qb.push_bind(format!("%{}%", query::like_pattern(t)));
            }
            Cond::Level(op, l) => {
                qb.push(format!("level {} ", op_sql(op)));
                qb.push_bind(*l as i16);
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
                if ["path", "ip", "method", "user_agent"].contains(&field.as_str()) {
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
                qb.push("fields ? ");
                qb.push_bind(field.clone());
            }
        }
        qb.push(", false)");
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
    let mut qb = QueryBuilder::<Postgres>::new(
        "SELECT id, ts, service, level, message, fields, parse_error FROM log_lines",
    );
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

/// A read-only transaction with enough memory for big sorts and hashes (the analytics).
async fn begin_with_work_mem(pool: &PgPool) -> AppResult<sqlx::Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL work_mem = '64MB'")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// One row of the grouping-sets scan.
type GroupRow = (
    i32,
    Option<OffsetDateTime>,
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

pub async fn stats(
    pool: &PgPool,
    service: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    p: &StatsParams,
) -> AppResult<LogStats> {
    let svc = service.map(str::to_string);
    let scope = "ts >= $1 AND ts < $2 AND ($3::text IS NULL OR service = $3)";
    // One scan for the counts, the hourly timeline, the status classes and the top lists (each
    // list cut to its top entries in SQL; suspicious IPs kept whatever their rank).
    let q_groups = format!(
        "SELECT gmask, hr, path, ip, user_agent, cls, n, errors, requests, api_posts, durations, avg_d, min_d, max_d FROM (
            SELECT GROUPING(hr, path, ip, user_agent, cls) AS gmask, hr, path, ip, user_agent, cls,
                   count(*) AS n, count(*) FILTER (WHERE level >= 4) AS errors,
                   count(*) FILTER (WHERE status IS NOT NULL) AS requests,
                   count(*) FILTER (WHERE method = 'POST' AND path LIKE '/api/%') AS api_posts,
                   count(duration) AS durations, avg(duration) AS avg_d, min(duration) AS min_d, max(duration) AS max_d,
                   row_number() OVER (PARTITION BY GROUPING(hr, path, ip, user_agent, cls) ORDER BY count(*) DESC, path, ip, user_agent) AS rank
            FROM (SELECT date_trunc('hour', ts, 'UTC') AS hr, path, ip, user_agent, (status / 100)::int AS cls,
                         level, status, method, duration
                  FROM log_lines WHERE {scope}) s
            GROUP BY GROUPING SETS ((), (hr), (path), (ip), (user_agent), (cls))
         ) g
         WHERE gmask IN (31, 15, 30) OR rank <= $4 + 1 OR (gmask = 27 AND api_posts > $5)"
    );
    let q_percentiles = format!(
        "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration)
         FROM log_lines WHERE {scope} AND duration IS NOT NULL"
    );
    let q_top_errors = format!(
        "SELECT {NORMALISED_MESSAGE} AS m, count(*) FROM log_lines WHERE {scope} AND level >= 4
         GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $4"
    );
    let q_slow = format!(
        "SELECT ts, duration, coalesce(path, fields->>'url'), service FROM log_lines
         WHERE {scope} AND duration > $4 ORDER BY 2 DESC, ts DESC LIMIT 50"
    );
    let groups = async {
        let mut tx = begin_with_work_mem(pool).await?;
        let rows = sqlx::query_as::<_, GroupRow>(&q_groups)
            .bind(from)
            .bind(to)
            .bind(&svc)
            .bind(p.top)
            .bind(p.suspicious_posts)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, AppError>(rows)
    };
    let percentiles = async {
        let mut tx = begin_with_work_mem(pool).await?;
        let v = sqlx::query_scalar::<_, Option<Vec<f64>>>(&q_percentiles)
            .bind(from)
            .bind(to)
            .bind(&svc)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, AppError>(v)
    };
    let top_errors = sqlx::query_as::<_, (String, i64)>(&q_top_errors)
        .bind(from)
        .bind(to)
        .bind(&svc)
        .bind(p.top)
        .fetch_all(pool);
    let slow = sqlx::query_as::<_, (OffsetDateTime, f64, Option<String>, String)>(&q_slow)
        .bind(from)
        .bind(to)
        .bind(&svc)
        .bind(p.slow_seconds)
        .fetch_all(pool);
    let (groups, percentiles, top_errors, slow) = tokio::try_join!(
        groups,
        percentiles,
        async { Ok(top_errors.await?) },
        async { Ok::<_, AppError>(slow.await?) }
    )?;
    let percentiles = percentiles.unwrap_or_default();
    let pct = |i: usize| percentiles.get(i).copied();

    // GROUPING bits, hr..cls from high to low: 31 = (), 15 = hr, 23 = path, 27 = ip, 29 = ua, 30 = cls.
    let mut out = LogStats {
        from,
        to,
        service: svc,
        total: 0,
        errors: 0,
        error_rate: 0.0,
        requests: 0,
        top_errors: top_errors
            .into_iter()
            .map(|(message, count)| MessageCount { message, count })
            .collect(),
        errors_per_hour: vec![],
        requests_per_hour: vec![],
        response_time: ResponseTime::default(),
        slow_threshold_seconds: p.slow_seconds,
        slow_requests: slow
            .into_iter()
            .map(|(ts, duration, url, service)| SlowRequest {
                ts,
                duration,
                url,
                service,
            })
            .collect(),
        status_classes: vec![],
        top_paths: vec![],
        top_ips: vec![],
        suspicious_post_threshold: p.suspicious_posts,
        suspicious_ips: vec![],
        top_user_agents: vec![],
    };
    let mut ips: Vec<(String, i64, i64)> = vec![];
    for (gmask, hr, path, ip, ua, cls, n, errors, requests, api_posts, durations, avg, min, max) in
        groups
    {
        match gmask {
            31 => {
                out.total = n;
                out.errors = errors;
                out.requests = requests;
                out.response_time = ResponseTime {
                    count: durations,
                    avg,
                    min,
                    max,
                    p50: pct(0),
                    p95: pct(1),
                    p99: pct(2),
                };
            }
            15 => {
                if let Some(hour) = hr {
                    if errors > 0 {
                        out.errors_per_hour.push(HourCount {
                            hour,
                            count: errors,
                        });
                    }
                    if requests > 0 {
                        out.requests_per_hour.push(HourCount {
                            hour,
                            count: requests,
                        });
                    }
                }
            }
            23 => out
                .top_paths
                .extend(path.map(|path| PathCount { path, count: n })),
            27 => ips.extend(ip.map(|ip| (ip, n, api_posts))),
            29 => out.top_user_agents.extend(ua.map(|user_agent| AgentCount {
                user_agent,
                count: n,
            })),
            30 => out.status_classes.extend(cls.map(|c| ClassCount {
                class: format!("{c}xx"),
                count: n,
            })),
            _ => {}
        }
    }
    out.error_rate = if out.total > 0 {
        out.errors as f64 / out.total as f64
    } else {
        0.0
    };
    out.errors_per_hour.sort_by_key(|h| h.hour);
    out.requests_per_hour.sort_by_key(|h| h.hour);
    out.status_classes.sort_by(|a, b| a.class.cmp(&b.class));
    // NULL groups (lines without the field) took a place in the ranking: cut to `top` again.
    let top = p.top as usize;
    out.top_paths.truncate(top);
    out.top_user_agents.truncate(top);
    let mut suspicious: Vec<SuspiciousIp> = ips
        .iter()
        .filter(|(_, _, posts)| *posts > p.suspicious_posts)
        .map(|(ip, _, posts)| SuspiciousIp {
            ip: ip.clone(),
            posts: *posts,
        })
        .collect();
    suspicious.sort_by(|a, b| b.posts.cmp(&a.posts).then(a.ip.cmp(&b.ip)));
    suspicious.truncate(100);
    out.suspicious_ips = suspicious;
    let mut top_ips: Vec<IpCount> = ips
        .into_iter()
        .map(|(ip, count, _)| IpCount { ip, count })
        .collect();
    top_ips.sort_by(|a, b| b.count.cmp(&a.count).then(a.ip.cmp(&b.ip)));
    top_ips.truncate(top);
    out.top_ips = top_ips;
    Ok(out)
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

/// Drops whole daily partitions older than the retention.
pub async fn enforce_retention(
    pool: &PgPool,
    days: i64,
    now: OffsetDateTime,
) -> AppResult<Vec<String>> {
    PARTITIONS
        .drop_older_than(pool, now - Duration::days(days))
        .await
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
    let search = search(&state.pool, p.q, p.service, from, to, 100, p.cursor).await?;
    let params = StatsParams::default();
    let (stats, facets, histogram) = if p.cursor.is_none() {
        let (s, f, h) = tokio::try_join!(
            stats(&state.pool, p.service, from, to, &params),
            facets(&state.pool, p.q, p.service, from, to),
            histogram(&state.pool, p.q, p.service, from, to),
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
