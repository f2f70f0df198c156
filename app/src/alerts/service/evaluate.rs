//! An evaluation round: every rule's observations judged by the state machine, the states,
//! events and notifications written in one transaction.

use super::*;
use crate::timestamp::Timestamp;

/// An instance's stored state with its last host, value and summary.
type PriorState = (State, Option<String>, Option<f64>, String);

/// What one rule instance read this round.
pub(super) struct Observation {
    pub(super) rule: usize,
    pub(super) instance: String,
    pub(super) host: Option<String>,
    pub(super) value: Option<f64>,
    pub(super) reading: Reading,
    pub(super) summary: String,
}

/// What a round did.
#[derive(Debug, Default, serde::Serialize)]
pub struct EvalReport {
    pub rules: usize,
    pub instances: usize,
    pub firing: usize,
    pub pending: usize,
    pub events: usize,
    pub notifications: usize,
    /// Rules that could not be evaluated, with the reason.
    pub errors: Vec<String>,
}

pub(super) struct Loaded {
    id: i64,
    name: String,
    pub(super) spec: RuleSpec,
    pub(super) rule: Rule,
    pub(super) skip: bool,
}

pub(super) fn threshold_summary(what: &str, value: f64, r: &Rule, unit: &str) -> String {
    format!(
        "{what} is {}{unit} ({} {}{unit})",
        fmt_value(value),
        r.op.as_str(),
        fmt_num(r.threshold)
    )
}

fn fmt_value(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

pub(super) fn instance_name(host: &str, metric: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        format!("{host} {metric}")
    } else {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        format!("{host} {metric}{{{}}}", l.join(","))
    }
}

/// One round: reads what every enabled rule looks at, steps each instance's state machine,
/// writes the states, records firings and resolutions (filed into incidents), and queues their
/// notifications.
pub async fn evaluate(pool: &PgPool, now: OffsetDateTime) -> AppResult<EvalReport> {
    evaluate_with(pool, now, &EvalSettings::default()).await
}

/// What an evaluation takes from the settings.
#[derive(Debug, Clone, Copy)]
pub struct EvalSettings {
    /// A firing alert joins an open incident whose last event is less than this old
    /// (`incident_join_minutes`).
    pub incident_join: Duration,
    /// A host is silent after this long without a sample (three collection intervals, at
    /// least a minute): `host` rules without a threshold use it.
    pub silent_after: Duration,
}

impl Default for EvalSettings {
    fn default() -> Self {
        EvalSettings {
            incident_join: Duration::minutes(10),
            silent_after: Duration::minutes(1),
        }
    }
}

impl EvalSettings {
    pub fn of(config: &crate::config::Config) -> Self {
        EvalSettings {
            incident_join: Duration::minutes(config.incident_join_minutes),
            silent_after: silent_after(config),
        }
    }
}

/// Three collection intervals, at least a minute: how long a host may send nothing before it
/// counts as silent (the Hosts page, `host` rules, dependencies).
pub fn silent_after(config: &crate::config::Config) -> Duration {
    Duration::seconds((3 * config.collect_interval.secs() as i64).max(60))
}

/// [`evaluate`] with the settings given.
pub async fn evaluate_with(
    pool: &PgPool,
    now: OffsetDateTime,
    settings: &EvalSettings,
) -> AppResult<EvalReport> {
    let incident_join = settings.incident_join;
    let mut report = EvalReport::default();
    let loaded = load_rules(pool, now, &mut report).await?;
    let mut obs = observe(pool, &loaded, now, settings, &mut report).await?;
    let states = prior_states(pool, &loaded, &mut obs).await?;
    report.instances = obs.len();
    let silences = active_silences(pool).await?;
    let windows = active_windows(pool, now).await?;
    let writes = step_all(
        &loaded,
        obs,
        states,
        (&silences, &windows),
        now,
        &mut report,
    );
    let mut tx = pool.begin().await?;
    write_round(&mut tx, &loaded, writes, now, incident_join, &mut report).await?;
    tx.commit().await?;
    Ok(report)
}

/// The enabled rules that validate (the others are reported), each with whether it skips this
/// round (forecast rules run every FORECAST_EVERY).
async fn load_rules(
    pool: &PgPool,
    now: OffsetDateTime,
    report: &mut EvalReport,
) -> AppResult<Vec<Loaded>> {
    let raw = sqlx::query!(
        r#"SELECT id, name, spec AS "spec: sqlx::types::Json<RuleSpec>", last_evaluated_at
           FROM alert_rules WHERE enabled ORDER BY id"#
    )
    .fetch_all(pool)
    .await?;
    let mut loaded = vec![];
    for r in raw {
        match rules::validate(&r.spec.0) {
            Ok(rule) => loaded.push(Loaded {
                skip: rule.kind == Kind::Forecast
                    && r.last_evaluated_at
                        .is_some_and(|l| now - l < FORECAST_EVERY),
                id: r.id,
                name: r.name,
                spec: r.spec.0,
                rule,
            }),
            Err(e) => report.errors.push(format!("{}: {e}", r.name)),
        }
    }
    report.rules = loaded.len();
    Ok(loaded)
}

/// What every rule looks at now: one query per kind of data.
async fn observe(
    pool: &PgPool,
    loaded: &[Loaded],
    now: OffsetDateTime,
    settings: &EvalSettings,
    report: &mut EvalReport,
) -> AppResult<Vec<Observation>> {
    let mut obs: Vec<Observation> = vec![];
    metric_observations(pool, loaded, now, &mut obs).await?;
    health_observations(pool, loaded, &mut obs).await?;
    host_observations(pool, loaded, now, settings.silent_after, &mut obs).await?;
    if let Err(e) = log_observations(pool, loaded, now, &mut obs).await {
        report.errors.push(format!("log rules: {e}"));
    }
    if let Err(e) = anomaly_observations(pool, loaded, now, &mut obs).await {
        report.errors.push(format!("log anomaly rules: {e}"));
    }
    if let Err(e) = forecast_observations(pool, loaded, now, &mut obs).await {
        report.errors.push(format!("forecast rules: {e}"));
    }
    backup_observations(pool, loaded, now, &mut obs).await?;
    Ok(obs)
}

/// The stored states of these rules' instances; an instance with a state but no observation
/// this round is observed as no data.
async fn prior_states(
    pool: &PgPool,
    loaded: &[Loaded],
    obs: &mut Vec<Observation>,
) -> AppResult<HashMap<(usize, String), PriorState>> {
    let ids: Vec<i64> = loaded.iter().map(|l| l.id).collect();
    let index: HashMap<i64, usize> = loaded.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
    let rows = sqlx::query!(
        r#"SELECT rule_id, instance, host, phase AS "phase: Phase", since, notified_at, seen_at,
                  acked_at IS NOT NULL AS "acked!", value, summary
           FROM alert_states WHERE rule_id = ANY($1)"#,
        &ids
    )
    .fetch_all(pool)
    .await?;
    let mut states: HashMap<(usize, String), PriorState> = HashMap::with_capacity(rows.len());
    for r in rows {
        if let Some(&i) = index.get(&r.rule_id) {
            let state = State {
                phase: r.phase,
                since: r.since,
                notified_at: r.notified_at,
                acked: r.acked,
                seen_at: r.seen_at,
            };
            states.insert((i, r.instance), (state, r.host, r.value, r.summary));
        }
    }
    let seen: HashSet<(usize, String)> = obs.iter().map(|o| (o.rule, o.instance.clone())).collect();
    for ((i, instance), (_, host, value, summary)) in &states {
        if !seen.contains(&(*i, instance.clone())) && !loaded[*i].skip {
            obs.push(Observation {
                rule: *i,
                instance: instance.clone(),
                host: host.clone(),
                value: *value,
                reading: Reading::NoData,
                summary: summary.clone(),
            });
        }
    }
    Ok(states)
}

/// The writes of one round, as columns.
#[derive(Default)]
struct RoundWrites {
    keep: StateRows,
    gone: (Vec<i64>, Vec<String>),
    events: EventRows,
    reminders: Vec<(usize, Notice)>,
}

/// Steps every instance's state machine and collects the states to keep or drop, the events
/// (firing, resolved) and the reminders.
fn step_all(
    loaded: &[Loaded],
    obs: Vec<Observation>,
    mut states: HashMap<(usize, String), PriorState>,
    (silences, windows): (
        &[super::store::Silence],
        &[crate::alerts::maintenance::MaintenanceWindow],
    ),
    now: OffsetDateTime,
    report: &mut EvalReport,
) -> RoundWrites {
    let mut w = RoundWrites::default();
    for o in obs {
        let l = &loaded[o.rule];
        let key = (o.rule, o.instance.clone());
        let had_row = states.contains_key(&key);
        let prev = states
            .remove(&key)
            .map(|s| s.0)
            .unwrap_or_else(|| State::new(now));
        let timing = Timing {
            for_duration: l.rule.for_duration,
            repeat: l.rule.repeat,
            stale_after: STALE_AFTER,
        };
        let (next, event) = machine::step(&prev, o.reading, &timing, now);
        match next.phase {
            Phase::Ok => {
                if had_row {
                    w.gone.0.push(l.id);
                    w.gone.1.push(o.instance.clone());
                }
            }
            phase => {
                if phase == Phase::Firing {
                    report.firing += 1;
                } else {
                    report.pending += 1;
                }
                w.keep.push(l.id, &o, &next, now);
            }
        }
        let Some(event) = event else { continue };
        // Silenced, or in a maintenance window: recorded, not sent.
        let silenced = silences.iter().any(|s| s.covers(l.id, o.host.as_deref()))
            || window_of(
                windows,
                &l.name,
                &l.spec.kind,
                &o.instance,
                o.host.as_deref(),
            )
            .is_some();
        let status = match event {
            Event::Firing | Event::Reminder => AlertStatus::Firing,
            Event::Resolved | Event::ResolvedNoData => AlertStatus::Resolved,
            Event::Pending => continue,
        };
        let summary = if event == Event::ResolvedNoData {
            format!(
                "no data for {} min: {}",
                STALE_AFTER.whole_minutes(),
                o.summary
            )
        } else {
            o.summary.clone()
        };
        let notice = Notice {
            rule: l.name.clone(),
            status,
            host: o.host.clone(),
            value: o.value,
            at: Timestamp(now),
            severity: l.spec.severity.unwrap_or_default(),
            kind: l.spec.kind.clone(),
            instance: o.instance.clone(),
            summary,
            reminder: event == Event::Reminder,
            url: None,
        };
        if event == Event::Reminder {
            if !silenced {
                w.reminders.push((o.rule, notice));
            }
        } else {
            w.events.push(o.rule, l.id, &notice, silenced);
        }
    }

    w
}

/// Writes a round's states, events and notifications in one transaction.
async fn write_round(
    tx: &mut sqlx::PgConnection,
    loaded: &[Loaded],
    w: RoundWrites,
    now: OffsetDateTime,
    incident_join: Duration,
    report: &mut EvalReport,
) -> AppResult<()> {
    let RoundWrites {
        keep,
        gone,
        events,
        reminders,
    } = w;
    if !keep.rule.is_empty() {
        sqlx::query!("INSERT INTO alert_states (rule_id, instance, host, phase, since, notified_at, seen_at, value, summary, evaluated_at)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[], $8::float8[], $9::text[], $10::timestamptz[])
             ON CONFLICT (rule_id, instance) DO UPDATE SET host = excluded.host, phase = excluded.phase,
                since = excluded.since, notified_at = excluded.notified_at, seen_at = excluded.seen_at,
                value = excluded.value, summary = excluded.summary, evaluated_at = excluded.evaluated_at,
                acked_by = CASE WHEN alert_states.since = excluded.since THEN alert_states.acked_by END,
                acked_at = CASE WHEN alert_states.since = excluded.since THEN alert_states.acked_at END", &keep.rule, &keep.instance, &keep.host as _, &keep.phase as _, &keep.since, &keep.notified_at as _, &keep.seen_at as _, &keep.value as _, &keep.summary, &keep.evaluated_at)
        .execute(&mut *tx)
        .await?;
    }
    if !gone.0.is_empty() {
        sqlx::query!("DELETE FROM alert_states s USING UNNEST($1::bigint[], $2::text[]) AS g(rule_id, instance)
             WHERE s.rule_id = g.rule_id AND s.instance = g.instance", &gone.0, &gone.1)
        .execute(&mut *tx)
        .await?;
    }
    let forecast_ids: Vec<i64> = loaded
        .iter()
        .filter(|l| l.rule.kind == Kind::Forecast && !l.skip)
        .map(|l| l.id)
        .collect();
    if !forecast_ids.is_empty() {
        sqlx::query!(
            "UPDATE alert_rules SET last_evaluated_at = $2 WHERE id = ANY($1)",
            &forecast_ids,
            now
        )
        .execute(&mut *tx)
        .await?;
    }
    report.events = events.rule.len();
    let mut queued = NotificationRows::default();
    if !events.rule.is_empty() {
        let ids = sqlx::query!(
            "INSERT INTO alert_events (rule_id, rule_name, instance, host, status, value, summary, silenced, at)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::text[], $8::bool[], $9::timestamptz[])
             RETURNING id, silenced",
            &events.rule,
            &events.name,
            &events.instance,
            &events.host as _,
            &events.status as _,
            &events.value as _,
            &events.summary,
            &events.silenced,
            &events.at
        )
        .fetch_all(&mut *tx)
        .await?;
        // RETURNING keeps the order of the rows inserted from UNNEST.
        let mut filed = Vec::with_capacity(ids.len());
        for (((row, notice), i), rule_id) in ids
            .iter()
            .zip(&events.notices)
            .zip(&events.loaded)
            .zip(&events.rule)
        {
            if !row.silenced {
                queued.push(&loaded[*i].spec.notify, Some(row.id), notice);
            }
            filed.push(crate::incidents::service::AlertEvent {
                event_id: row.id,
                rule_id: *rule_id,
                rule: notice.rule.clone(),
                instance: notice.instance.clone(),
                host: notice.host.clone(),
                status: notice.status,
                severity: notice.severity,
                at: *notice.at,
            });
        }
        crate::incidents::service::file_alert_events(&mut *tx, &filed, incident_join).await?;
    }
    for (i, notice) in &reminders {
        queued.push(&loaded[*i].spec.notify, None, notice);
    }
    report.notifications = queued.insert(tx).await?;
    Ok(())
}

#[derive(Default)]
struct StateRows {
    rule: Vec<i64>,
    instance: Vec<String>,
    host: Vec<Option<String>>,
    phase: Vec<&'static str>,
    since: Vec<OffsetDateTime>,
    notified_at: Vec<Option<OffsetDateTime>>,
    seen_at: Vec<OffsetDateTime>,
    value: Vec<Option<f64>>,
    summary: Vec<String>,
    evaluated_at: Vec<OffsetDateTime>,
}

impl StateRows {
    fn push(&mut self, rule: i64, o: &Observation, s: &State, now: OffsetDateTime) {
        self.rule.push(rule);
        self.instance.push(o.instance.clone());
        self.host.push(o.host.clone());
        self.phase.push(s.phase.as_str());
        self.since.push(s.since);
        self.notified_at.push(s.notified_at);
        self.seen_at.push(s.seen_at);
        self.value.push(o.value);
        self.summary.push(o.summary.clone());
        self.evaluated_at.push(now);
    }
}

#[derive(Default)]
struct EventRows {
    rule: Vec<i64>,
    name: Vec<String>,
    instance: Vec<String>,
    host: Vec<Option<String>>,
    status: Vec<&'static str>,
    value: Vec<Option<f64>>,
    summary: Vec<String>,
    silenced: Vec<bool>,
    at: Vec<OffsetDateTime>,
    notices: Vec<Notice>,
    /// The rule's index in the round's rules.
    loaded: Vec<usize>,
}

impl EventRows {
    fn push(&mut self, loaded: usize, rule: i64, n: &Notice, silenced: bool) {
        self.loaded.push(loaded);
        self.rule.push(rule);
        self.name.push(n.rule.clone());
        self.instance.push(n.instance.clone());
        self.host.push(n.host.clone());
        self.status.push(n.status.as_str());
        self.value.push(n.value);
        self.summary.push(n.summary.clone());
        self.silenced.push(silenced);
        self.at.push(*n.at);
        self.notices.push(n.clone());
    }
}

#[derive(Default)]
struct NotificationRows {
    channel: Vec<String>,
    event: Vec<Option<i64>>,
    body: Vec<serde_json::Value>,
}

impl NotificationRows {
    /// To the channels a rule names; a rule that names none notifies the default channels
    /// (the empty name stands for them below: channel names are never empty).
    fn push(&mut self, channels: &[String], event: Option<i64>, n: &Notice) {
        let default = [String::new()];
        let channels = if channels.is_empty() {
            &default[..]
        } else {
            channels
        };
        for c in channels {
            self.channel.push(c.clone());
            self.event.push(event);
            self.body.push(serde_json::to_value(n).unwrap_or_default());
        }
    }

    async fn insert(&self, tx: &mut sqlx::PgConnection) -> AppResult<usize> {
        if self.channel.is_empty() {
            return Ok(0);
        }
        // Into each channel's outbox, to go out grouped. A channel deleted since the rule was
        // saved, or paused, is skipped (the join drops it).
        Ok(sqlx::query!("INSERT INTO alert_outbox (channel_id, event_id, notice)
             SELECT c.id, u.event_id, u.body FROM UNNEST($1::text[], $2::bigint[], $3::jsonb[]) AS u(channel, event_id, body)
             JOIN alert_channels c ON (c.name = u.channel OR (u.channel = '' AND c.is_default)) AND NOT c.paused", &self.channel, &self.event as _, &self.body)
        .execute(&mut *tx)
        .await?
        .rows_affected() as usize)
    }
}
