//! Annotations: deploys and other marks on the charts and incident timelines.

use super::has_control;
use crate::error::{AppError, AppResult};
use crate::incidents::Annotation;
use crate::timestamp::Timestamp;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

/// A new annotation as posted: `{"text","tags"?,"host"?,"ts"?}`.
#[derive(Debug, Clone, serde::Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAnnotation {
    pub text: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The host it belongs to; absent: every host.
    #[serde(default)]
    pub host: Option<String>,
    /// When (RFC 3339); absent: now.
    #[serde(default)]
    pub ts: Option<Timestamp>,
}

/// Checks an annotation: text 1–1,000 characters, at most 10 tags of 1–64 characters, a host
/// name of at most 255, a time no more than a day ahead. Pure.
pub fn check_annotation(a: &NewAnnotation, now: OffsetDateTime) -> Result<(), String> {
    let text = a.text.trim();
    if text.is_empty() || text.chars().count() > 1000 || has_control(text) {
        return Err("text: 1 to 1000 characters of text".into());
    }
    if a.tags.len() > 10 {
        return Err("tags: at most 10".into());
    }
    if let Some(t) = a
        .tags
        .iter()
        .find(|t| t.trim().is_empty() || t.chars().count() > 64 || t.chars().any(char::is_control))
    {
        return Err(format!(
            "tags: `{}` must be 1 to 64 characters",
            crate::redact::clip(t, 70)
        ));
    }
    if let Some(h) = &a.host {
        if h.trim().is_empty() || h.len() > 255 || h.chars().any(char::is_control) {
            return Err("host: a host name of 1 to 255 characters".into());
        }
    }
    if a.ts.is_some_and(|t| *t > now + Duration::days(1)) {
        return Err("ts: more than a day in the future".into());
    }
    Ok(())
}

pub async fn add_annotation(pool: &PgPool, a: &NewAnnotation, by: &str) -> AppResult<i64> {
    let now = OffsetDateTime::now_utc();
    check_annotation(a, now).map_err(AppError::bad_request)?;
    let tags: Vec<String> = a.tags.iter().map(|t| t.trim().to_string()).collect();
    Ok(sqlx::query_scalar!(
        "INSERT INTO annotations (ts, text, tags, host, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        a.ts.map(|t| *t).unwrap_or(now),
        a.text.trim(),
        &tags,
        a.host.as_deref().map(str::trim),
        by
    )
    .fetch_one(pool)
    .await?)
}

/// Annotations in `[from, to]`, of `host` (and those of every host) when given, oldest first.
pub async fn annotations(
    pool: &PgPool,
    from: OffsetDateTime,
    to: OffsetDateTime,
    host: Option<&str>,
) -> AppResult<Vec<Annotation>> {
    Ok(sqlx::query!(
        r#"SELECT id, ts AS "ts: Timestamp", text, tags, host, created_by FROM annotations
           WHERE ts BETWEEN $1 AND $2 AND ($3::text IS NULL OR host IS NULL OR host = $3)
           ORDER BY ts, id LIMIT 1000"#,
        from,
        to,
        host
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| Annotation {
        id: r.id,
        ts: r.ts,
        text: r.text,
        tags: r.tags,
        host: r.host,
        created_by: r.created_by,
    })
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn annotations_are_checked_before_they_are_stored() {
        let now = datetime!(2026-12-01 10:00 UTC);
        let a = |text: &str, tags: &[&str], host: Option<&str>, ts: Option<OffsetDateTime>| {
            NewAnnotation {
                text: text.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                host: host.map(str::to_string),
                ts: ts.map(Timestamp),
            }
        };
        let long = "x".repeat(1001);
        let table: Vec<(NewAnnotation, Option<&str>)> = vec![
            (a("deploy 1.4.2", &["deploy"], Some("web-1"), None), None),
            (a("deploy", &[], None, Some(now - Duration::days(3))), None),
            (a("  ", &[], None, None), Some("text")),
            (a(&long, &[], None, None), Some("text")),
            (a("x", &["ok", ""], None, None), Some("tags")),
            (a("x", &["a"; 11], None, None), Some("tags")),
            (a("x\u{0}y", &[], None, None), Some("text")),
            (a("x", &["a\u{0}"], None, None), Some("tags")),
            (a("x", &[], Some(""), None), Some("host")),
            (a("x", &[], Some("a\nb"), None), Some("host")),
            (a("x", &[], None, Some(now + Duration::days(2))), Some("ts")),
        ];
        for (ann, want) in table {
            let got = check_annotation(&ann, now);
            match want {
                None => assert!(got.is_ok(), "{ann:?}: {got:?}"),
                Some(field) => assert!(
                    got.as_ref().is_err_and(|e| e.starts_with(field)),
                    "{ann:?}: {got:?}"
                ),
            }
        }
    }
}
