//! What each kind of rule observes: metrics, health checks, logs, forecasts and backups.

use super::*;

pub(super) async fn metric_observations(
    pool: &PgPool,
    loaded: &[Loaded],
    now: OffsetDateTime,
    obs: &mut Vec<Observation>,
) -> AppResult<()> {
    let mut selectors = vec![];
    for (i, l) in loaded.iter().enumerate() {
        if l.rule.kind == Kind::Metric {
            if let Some(sel) = l
                .spec
                .metric
                .as_deref()
                .and_then(|m| crate::metrics::parse_selector(m).ok())
            {
                selectors.push((i, sel));
            }
        }
    }
    if selectors.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = selectors.iter().map(|s| s.1.metric.clone()).collect();
    names.sort();
    names.dedup();
    let rows = sqlx::query!(
        r#"SELECT s.host, s.metric, s.labels AS "labels: sqlx::types::Json<BTreeMap<String, String>>",
                  l.value
           FROM metric_series s JOIN metric_latest l ON l.series_id = s.id
           WHERE s.metric = ANY($1) AND l.ts > $2"#,
        &names,
        now - METRIC_FRESH
    )
    .fetch_all(pool)
    .await?;
    let mut by_metric: HashMap<&str, Vec<_>> = HashMap::new();
    for r in &rows {
        by_metric.entry(r.metric.as_str()).or_default().push(r);
    }
    for (i, sel) in selectors {
        let l = &loaded[i];
        for r in by_metric.get(sel.metric.as_str()).into_iter().flatten() {
            let (host, metric, labels, value) = (&r.host, &r.metric, &r.labels, &r.value);
            if !rules::glob(&l.rule.host, host)
                || !sel.labels.iter().all(|(k, v)| labels.0.get(k) == Some(v))
            {
                continue;
            }
            obs.push(Observation {
                rule: i,
                instance: instance_name(host, metric, &labels.0),
                host: Some(host.clone()),
                value: Some(*value),
                reading: classify(Some(*value), l.rule.op, l.rule.threshold, l.rule.clear),
                summary: threshold_summary(
                    &instance_name(host, metric, &labels.0),
                    *value,
                    &l.rule,
                    "",
                ),
            });
        }
    }
    Ok(())
}

pub(super) async fn health_observations(
    pool: &PgPool,
    loaded: &[Loaded],
    obs: &mut Vec<Observation>,
) -> AppResult<()> {
    if !loaded.iter().any(|l| l.rule.kind == Kind::Health) {
        return Ok(());
    }
    let checks = sqlx::query!(
        "SELECT name, url, host, up, last_error, last_latency_ms FROM health_checks WHERE NOT paused"
    )
    .fetch_all(pool)
    .await?;
    for (i, l) in loaded.iter().enumerate() {
        if l.rule.kind != Kind::Health {
            continue;
        }
        let want = l.spec.check.as_deref().unwrap_or("*");
        for c in &checks {
            let (name, url, up, error, latency) =
                (&c.name, &c.url, c.up, &c.last_error, c.last_latency_ms);
            if !rules::glob(want, name) {
                continue;
            }
            let value = up.map(|u| if u { 0.0 } else { 1.0 });
            // Summaries go to webhooks and mail: the URL as it may be shown.
            let url = crate::redact::url(url);
            let error = error.as_deref().map(crate::redact::text);
            let summary = match up {
                Some(false) => format!("{name} ({url}) is down: {}", error.unwrap_or_default()),
                Some(true) => format!("{name} ({url}) is up ({:.0} ms)", latency.unwrap_or(0.0)),
                None => format!("{name} ({url}) not checked yet"),
            };
            obs.push(Observation {
                rule: i,
                instance: name.clone(),
                // The host the check depends on: while it is silent, the check's alerts are
                // suppressed and listed under it.
                host: c.host.clone(),
                value,
                reading: classify(value, l.rule.op, l.rule.threshold, None),
                summary,
            });
        }
    }
    Ok(())
}

pub(super) async fn log_observations(
    pool: &PgPool,
    loaded: &[Loaded],
    now: OffsetDateTime,
    obs: &mut Vec<Observation>,
) -> AppResult<()> {
    // One scan per (service, window) for the rates; one count per query rule.
    // (service, window seconds) → (lines, errors, mean duration)
    type Window = (Option<String>, i64);
    let mut windows: HashMap<Window, (i64, i64, Option<f64>)> = HashMap::new();
    for l in loaded {
        if l.rule.kind == Kind::Log && l.rule.log != Some(LogCondition::QueryCount) {
            windows.insert(
                (l.spec.service.clone(), l.rule.window.whole_seconds()),
                (0, 0, None),
            );
        }
    }
    for ((service, window), out) in windows.iter_mut() {
        let r = sqlx::query!(
            r#"SELECT count(*) AS "total!", count(*) FILTER (WHERE level >= 4) AS "errors!",
                      avg(duration) AS avg
               FROM log_lines
               WHERE ts >= $1 AND ts < $2 AND ($3::text IS NULL OR service = $3)"#,
            now - Duration::seconds(*window),
            now,
            service.as_deref()
        )
        .fetch_one(pool)
        .await?;
        *out = (r.total, r.errors, r.avg);
    }
    for (i, l) in loaded.iter().enumerate() {
        if l.rule.kind != Kind::Log {
            continue;
        }
        let window = l.rule.window.whole_seconds();
        let scope = l
            .spec
            .service
            .clone()
            .unwrap_or_else(|| "every service".into());
        let (value, what, unit) = match l.rule.log {
            Some(LogCondition::QueryCount) => {
                let q = l.spec.query.as_deref().unwrap_or("");
                let n = crate::logs::search::count_matching(
                    pool,
                    q,
                    l.spec.service.as_deref(),
                    now - Duration::seconds(window),
                    now,
                )
                .await?;
                (
                    Some(n as f64),
                    format!("lines matching `{q}` in {scope}"),
                    "",
                )
            }
            Some(LogCondition::ErrorRate) => {
                let (total, errors, _) = windows[&(l.spec.service.clone(), window)];
                (
                    (total > 0).then(|| 100.0 * errors as f64 / total as f64),
                    format!("error rate of {scope}"),
                    " %",
                )
            }
            _ => {
                let (_, _, avg) = windows[&(l.spec.service.clone(), window)];
                (avg, format!("average response time of {scope}"), " s")
            }
        };
        obs.push(Observation {
            rule: i,
            instance: scope.clone(),
            host: None,
            value,
            reading: classify(value, l.rule.op, l.rule.threshold, l.rule.clear),
            summary: value
                .map(|v| {
                    format!(
                        "{} over the last {}",
                        threshold_summary(&what, v, &l.rule, unit),
                        rules::human_secs(window)
                    )
                })
                .unwrap_or_else(|| format!("no lines in {scope} in the window")),
        });
    }
    Ok(())
}

/// `host` rules: how long each host has sent nothing (hosts silent for over a week are left
/// out, so a host taken away resolves).
pub(super) async fn host_observations(
    pool: &PgPool,
    loaded: &[Loaded],
    now: OffsetDateTime,
    silent_after: Duration,
    obs: &mut Vec<Observation>,
) -> AppResult<()> {
    if !loaded.iter().any(|l| l.rule.kind == Kind::Host) {
        return Ok(());
    }
    let hosts = sqlx::query!(
        "SELECT name, last_seen FROM hosts WHERE last_seen > $1 ORDER BY name",
        now - Duration::days(7)
    )
    .fetch_all(pool)
    .await?;
    for (i, l) in loaded.iter().enumerate() {
        if l.rule.kind != Kind::Host {
            continue;
        }
        let limit = if l.rule.threshold > 0.0 {
            l.rule.threshold
        } else {
            silent_after.whole_seconds() as f64
        };
        for h in hosts.iter().filter(|h| rules::glob(&l.rule.host, &h.name)) {
            let age = (now - h.last_seen).whole_seconds().max(0);
            let summary = if age as f64 > limit {
                format!(
                    "{} sent nothing for {}",
                    h.name,
                    crate::components::fmt_duration(age as u64)
                )
            } else {
                format!("{} is sending (last sample {age} s ago)", h.name)
            };
            obs.push(Observation {
                rule: i,
                instance: h.name.clone(),
                host: Some(h.name.clone()),
                value: Some(age as f64),
                reading: classify(Some(age as f64), super::machine::Op::Gt, limit, None),
                summary,
            });
        }
    }
    Ok(())
}

/// `log_anomaly` rules: each service's errors in the window against the same hour of the 7
/// days before (from the hourly roll-ups); a firing one names the top new error.
pub(super) async fn anomaly_observations(
    pool: &PgPool,
    loaded: &[Loaded],
    now: OffsetDateTime,
    obs: &mut Vec<Observation>,
) -> AppResult<()> {
    let hour =
        now.replace_time(time::Time::from_hms(now.hour(), 0, 0).unwrap_or(time::Time::MIDNIGHT));
    let same_hours: Vec<OffsetDateTime> = (1..=7).map(|d| hour - Duration::days(d)).collect();
    for (i, l) in loaded.iter().enumerate() {
        let (Kind::LogAnomaly, Some((factor, min_errors))) = (l.rule.kind, l.rule.anomaly) else {
            continue;
        };
        let window = l.rule.window;
        let service = l.spec.service.as_deref();
        let now_rows = sqlx::query!(
            r#"SELECT service, count(*) AS "lines!", count(*) FILTER (WHERE level >= 4) AS "errors!"
               FROM log_lines WHERE ts >= $1 AND ts < $2 AND ($3::text IS NULL OR service = $3)
               GROUP BY service"#,
            now - window,
            now,
            service
        )
        .fetch_all(pool)
        .await?;
        let base: HashMap<String, (i64, i64)> = sqlx::query!(
            r#"SELECT service,
                      sum((SELECT coalesce(sum((v->>'errors')::bigint), 0)
                           FROM jsonb_each(coalesce(h.data->'hours', '{}'::jsonb)) AS e(k, v)))::bigint AS "errors!",
                      sum(lines)::bigint AS "lines!"
               FROM log_rollup_hours h
               WHERE hour = ANY($1) AND ($2::text IS NULL OR service = $2)
               GROUP BY service"#,
            &same_hours,
            service
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| (r.service, (r.errors, r.lines)))
        .collect();
        let rate = l.rule.log == Some(LogCondition::ErrorRate);
        for r in now_rows {
            let (base_errors, base_lines) = base.get(&r.service).copied().unwrap_or((0, 0));
            let a = rules::judge_anomaly(
                (r.errors, r.lines),
                (base_errors, base_lines),
                window.whole_seconds(),
                (factor, min_errors, rate),
            );
            let mut summary = a.describe(&r.service, window.whole_seconds(), rate);
            if a.breach {
                let mut conn = pool.acquire().await?;
                let new = crate::incidents::service::new_errors(
                    &mut conn,
                    now - window,
                    now,
                    Some(&r.service),
                )
                .await?;
                if let Some(top) = new.first() {
                    summary.push_str(&format!(
                        "; top new error ({}×): {}",
                        top.count,
                        crate::redact::text(&top.message)
                    ));
                }
            }
            obs.push(Observation {
                rule: i,
                instance: r.service.clone(),
                host: None,
                value: Some(a.value),
                reading: if a.breach {
                    Reading::Breach
                } else {
                    Reading::Clear
                },
                summary,
            });
        }
    }
    Ok(())
}

pub(super) async fn forecast_observations(
    pool: &PgPool,
    loaded: &[Loaded],
    now: OffsetDateTime,
    obs: &mut Vec<Observation>,
) -> AppResult<()> {
    let due: Vec<usize> = loaded
        .iter()
        .enumerate()
        .filter(|(_, l)| l.rule.kind == Kind::Forecast && !l.skip)
        .map(|(i, _)| i)
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    let rows = crate::forecast::service::forecasts(pool, None, now).await?;
    for i in due {
        let l = &loaded[i];
        let sel = l
            .spec
            .metric
            .as_deref()
            .and_then(|m| crate::metrics::parse_selector(m).ok());
        for f in &rows {
            if !rules::glob(&l.rule.host, &f.host) {
                continue;
            }
            if let Some(sel) = &sel {
                if sel.metric != f.metric
                    || !sel.labels.iter().all(|(k, v)| f.labels.get(k) == Some(v))
                {
                    continue;
                }
            }
            let name = instance_name(&f.host, &f.metric, &f.labels);
            // Days until 80 %: 0 when already there, far away when not crossing within a
            // year; no data without a model.
            let value = if f.model.is_none() {
                None
            } else if f.current.is_some_and(|c| c >= 80.0) {
                Some(0.0)
            } else {
                Some(
                    f.eta_80
                        .map(|t| ((t - now).as_seconds_f64() / 86_400.0).max(0.0))
                        .unwrap_or(1e9),
                )
            };
            let summary = match (value, f.eta_80) {
                (Some(d), Some(_)) if d < 1e9 => {
                    format!("{name} expected to reach 80 % in {d:.1} days")
                }
                (Some(0.0), None) => format!("{name} is at or above 80 %"),
                _ => format!("{name} not expected to reach 80 % within a year"),
            };
            obs.push(Observation {
                rule: i,
                instance: name,
                host: Some(f.host.clone()),
                value,
                reading: classify(value, l.rule.op, l.rule.threshold, None),
                summary,
            });
        }
    }
    Ok(())
}

pub(super) async fn backup_observations(
    pool: &PgPool,
    loaded: &[Loaded],
    now: OffsetDateTime,
    obs: &mut Vec<Observation>,
) -> AppResult<()> {
    if !loaded.iter().any(|l| l.rule.kind == Kind::Backup) {
        return Ok(());
    }
    let targets = sqlx::query!(
        r#"SELECT t.name, t.created_at,
                  (SELECT max(finished_at) FROM backup_runs r
                   WHERE r.target_id = t.id AND r.status = 'succeeded') AS last_ok,
                  (SELECT max(finished_at) FROM backup_runs r
                   WHERE r.target_id = t.id AND r.status = 'succeeded' AND r.test_restore_ok) AS last_tested
           FROM backup_targets t ORDER BY t.name"#
    )
    .fetch_all(pool)
    .await?;
    for (i, l) in loaded.iter().enumerate() {
        if l.rule.kind != Kind::Backup {
            continue;
        }
        let verified = l.spec.verified == Some(true);
        for t in &targets {
            let (name, created, ok, tested) = (&t.name, &t.created_at, &t.last_ok, &t.last_tested);
            if l.spec.target.as_deref().is_some_and(|t| t != name) {
                continue;
            }
            let last = if verified { *tested } else { *ok };
            // Never backed up: counted from when the target was added.
            let hours = (now - last.unwrap_or(*created)).as_seconds_f64() / 3600.0;
            let what = if verified {
                "test-restored backup"
            } else {
                "successful backup"
            };
            let summary = match last {
                Some(_) => format!(
                    "last {what} of {name} {hours:.1} h ago (> {} h)",
                    fmt_num(l.rule.threshold)
                ),
                None => format!("no {what} of {name} yet ({hours:.1} h since it was added)"),
            };
            obs.push(Observation {
                rule: i,
                instance: name.clone(),
                host: None,
                value: Some(hours),
                reading: classify(Some(hours), l.rule.op, l.rule.threshold, None),
                summary,
            });
        }
    }
    Ok(())
}
