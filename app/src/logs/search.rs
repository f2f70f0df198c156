//! Searching the lines with the query language: matches newest first with keyset pages, their
//! facets and timeline, and counts for alert rules. Each of these may scan a long range, so
//! they read through `Reads::heavy`, bounded per process.

use super::parse::Level;
use super::query::{self, Clause, Cond, Op};
use super::{LogLine, SearchResponse};
use crate::db::Reads;
use crate::error::{AppError, AppResult};
use crate::metrics::parse_time_param;
use crate::timestamp::Timestamp;
use sqlx::{PgPool, Postgres, QueryBuilder};
use time::{Duration, OffsetDateTime};

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

#[derive(sqlx::FromRow)]
struct LineRow {
    id: i64,
    ts: OffsetDateTime,
    service: String,
    level: Option<i16>,
    message: String,
    fields: sqlx::types::Json<serde_json::Map<String, serde_json::Value>>,
    parse_error: Option<String>,
}

pub(crate) fn level_name(l: Option<i16>) -> Option<String> {
    l.and_then(|l| Level::ALL.get(l as usize))
        .map(|l| l.as_str().to_string())
}

pub(crate) fn push_scope(
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
    reads: &Reads,
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
    let rows: Vec<(String, String, i64)> = qb
        .build_query_as()
        .fetch_all(&mut *reads.heavy().await?)
        .await?;
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
    reads: &Reads,
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
    let rows: Vec<(i64, i64)> = qb
        .build_query_as()
        .fetch_all(&mut *reads.heavy().await?)
        .await?;
    Ok((step, rows))
}

/// Newest first, `limit` lines at most, continuing before `cursor`.
pub async fn search(
    reads: &Reads,
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
        "SELECT id, ts, service, level, message, {FIELDS_SQL} AS fields, parse_error FROM log_lines"
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
    let mut rows: Vec<LineRow> = qb
        .build_query_as()
        .fetch_all(&mut *reads.heavy().await?)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| encode_cursor(r.ts, r.id))
    } else {
        None
    };
    Ok(SearchResponse {
        lines: rows
            .into_iter()
            .map(|r| LogLine {
                id: r.id,
                ts: Timestamp(r.ts),
                service: r.service,
                level: level_name(r.level),
                message: r.message,
                fields: r.fields.0,
                parse_error: r.parse_error,
            })
            .collect(),
        next_cursor,
        from: Timestamp(from),
        to: Timestamp(to),
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
}
