//! Notifications a team keeps trusting, pure: when a channel's waiting notices go out, and the
//! one message they make. What starts firing within `group_wait` goes out together; later
//! changes are batched every `group_interval`; past `max_per_hour` messages an hour, one digest
//! an hour. The alerts of a host that is silent (or whose own alert fires) are not sent one by
//! one: they are listed under that host in the message.

use super::rules::Notice;
use super::{AlertStatus, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// A channel's grouping settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub max_per_hour: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            group_wait: Duration::seconds(30),
            group_interval: Duration::minutes(5),
            max_per_hour: 20,
        }
    }
}

/// When a channel's waiting notices are due, and whether as the hourly digest (the channel
/// sent `max_per_hour` messages in the last hour). `oldest` is the first waiting notice,
/// `last` the channel's last message.
pub fn due(
    p: &Policy,
    oldest: OffsetDateTime,
    last: Option<OffsetDateTime>,
    sent_last_hour: i64,
) -> (OffsetDateTime, bool) {
    let mut at = oldest + p.group_wait;
    let digest = sent_last_hour >= p.max_per_hour;
    if let Some(l) = last {
        at = at.max(l + p.group_interval);
        if digest {
            at = at.max(l + Duration::hours(1));
        }
    }
    (at, digest)
}

/// Why a waiting notice is held, in words for the Alerts page.
pub fn waiting_reason(
    p: &Policy,
    (at, digest): (OffsetDateTime, bool),
    oldest: OffsetDateTime,
) -> String {
    if digest {
        format!(
            "held: the channel sent {} messages in the last hour; the next digest goes out then",
            p.max_per_hour
        )
    } else if at > oldest + p.group_wait {
        format!(
            "batched: one message every {} at most",
            super::rules::human_secs(p.group_interval.whole_seconds())
        )
    } else {
        format!(
            "grouping: waits {} for more alerts",
            super::rules::human_secs(p.group_wait.whole_seconds())
        )
    }
}

/// A message to a channel: the first alert's fields at the top (as a single notification has
/// them), every alert it lists, and the alerts suppressed under their silent host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(flatten)]
    pub lead: Notice,
    /// Every alert announced, most urgent first (the lead among them).
    #[serde(default)]
    pub alerts: Vec<Notice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<Suppressed>,
    /// An hourly digest: the channel reached its `max_per_hour`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub digest: bool,
}

/// The alerts of one host not sent on their own while the host is down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppressed {
    pub host: String,
    pub reason: String,
    pub alerts: Vec<Notice>,
}

impl Message {
    pub fn single(n: Notice) -> Message {
        Message {
            alerts: vec![n.clone()],
            lead: n,
            suppressed: vec![],
            digest: false,
        }
    }

    /// The alerts listed (a message stored before grouping lists only its lead).
    pub fn listed(&self) -> &[Notice] {
        if self.alerts.is_empty() {
            std::slice::from_ref(&self.lead)
        } else {
            &self.alerts
        }
    }

    /// `[FIRING] cpu hot (web-1 cpu)` for one alert; `[FIRING 2, RESOLVED 1] 3 alerts: …` for more.
    pub fn title(&self) -> String {
        let listed = self.listed();
        let digest = if self.digest { "Digest: " } else { "" };
        if listed.len() == 1 && self.suppressed.is_empty() {
            return format!("{digest}{}", listed[0].title());
        }
        let count = |s: AlertStatus| listed.iter().filter(|n| n.status == s).count();
        let mut parts = vec![];
        for (s, word) in [
            (AlertStatus::Firing, "FIRING"),
            (AlertStatus::Resolved, "RESOLVED"),
        ] {
            let c = count(s);
            if c > 0 {
                parts.push(format!("{word} {c}"));
            }
        }
        let held: usize = self.suppressed.iter().map(|s| s.alerts.len()).sum();
        if held > 0 {
            parts.push(format!("SUPPRESSED {held}"));
        }
        let mut names: Vec<&str> = listed.iter().map(|n| n.rule.as_str()).collect();
        names.dedup();
        let shown = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
        let more = if names.len() > 3 { ", …" } else { "" };
        format!(
            "{digest}[{}] {} alert{}: {shown}{more}",
            parts.join(", "),
            listed.len(),
            if listed.len() == 1 { "" } else { "s" }
        )
    }

    /// One line per alert, then the suppressed ones under their host.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .listed()
            .iter()
            .map(|n| format!("{}: {}", n.title(), n.summary))
            .collect();
        for s in &self.suppressed {
            out.push(format!(
                "Suppressed while {} ({}): {}",
                s.host,
                s.reason,
                s.alerts
                    .iter()
                    .map(|n| format!("{} {} ({})", n.status, n.rule, n.instance))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        out
    }
}

/// A webhook's JSON body. Every format carries the Opsdeck fields (`rule`, `status`, `host`,
/// `value`, `at`…); Slack's adds `text`, Discord's `content` (both ignore other fields).
pub fn webhook_body(format: &str, m: &Message) -> serde_json::Value {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    let lines = m.lines();
    let line = if lines.len() == 1 {
        lines[0].clone()
    } else {
        format!("{}\n{}", m.title(), lines.join("\n"))
    };
    if let serde_json::Value::Object(m) = &mut v {
        match format {
            "slack" => {
                m.insert("text".into(), line.into());
            }
            "discord" => {
                m.insert(
                    "content".into(),
                    line.chars().take(2000).collect::<String>().into(),
                );
            }
            _ => {}
        }
    }
    v
}

/// An e-mail's subject and plain-text body: each alert the message lists, then the suppressed.
pub fn email_text(m: &Message) -> (String, String) {
    let mut body = String::new();
    for n in m.listed() {
        if !body.is_empty() {
            body.push_str("\n----\n\n");
        }
        body.push_str(&notice_text(n));
    }
    for line in m.lines().into_iter().skip(m.listed().len()) {
        body.push_str(&format!("\n{line}\n"));
    }
    if let Some(u) = &m.lead.url {
        body.push_str(&format!("\n{u}\n"));
    }
    (format!("Opsdeck {}", m.title()), body)
}

fn notice_text(n: &Notice) -> String {
    let mut body = format!(
        "{}\n\nRule:     {}\nStatus:   {}{}\nSeverity: {}\nInstance: {}\nAt:       {}\n",
        n.summary,
        n.rule,
        n.status,
        if n.reminder { " (reminder)" } else { "" },
        n.severity,
        n.instance,
        n.at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    );
    if let Some(v) = n.value {
        body.push_str(&format!("Value:    {v}\n"));
    }
    body
}

/// A notice waiting in a channel's outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub id: i64,
    pub notice: Notice,
}

/// What a flush does with a channel's waiting notices.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// None when everything waiting was suppressed: nothing is sent.
    pub message: Option<Message>,
    pub sent: Vec<i64>,
    /// (notice, why).
    pub suppressed: Vec<(i64, String)>,
}

/// The message the waiting notices make. `down` maps a host that is silent or whose own alert
/// fires to the reason: the other alerts on that host (checks, processes, metrics) are
/// suppressed and listed under it; its own `host` alerts are sent.
pub fn plan(waiting: Vec<Waiting>, down: &BTreeMap<String, String>, digest: bool) -> Plan {
    let mut out = Plan::default();
    let mut alerts = vec![];
    let mut held: BTreeMap<String, Vec<Notice>> = BTreeMap::new();
    for w in waiting {
        let reason = w
            .notice
            .host
            .as_ref()
            .filter(|_| w.notice.kind != "host")
            .and_then(|h| down.get(h).map(|r| (h.clone(), r.clone())));
        match reason {
            Some((host, why)) => {
                out.suppressed.push((w.id, format!("{host}: {why}")));
                held.entry(host).or_default().push(w.notice);
            }
            None => {
                out.sent.push(w.id);
                alerts.push(w.notice);
            }
        }
    }
    if alerts.is_empty() {
        return out;
    }
    // Firing before resolved, critical before warning, then in the order they came.
    alerts.sort_by_key(|n| {
        (
            n.status != AlertStatus::Firing,
            n.severity != Severity::Critical,
        )
    });
    out.message = Some(Message {
        lead: alerts[0].clone(),
        alerts,
        suppressed: held
            .into_iter()
            .map(|(host, alerts)| Suppressed {
                reason: down.get(&host).cloned().unwrap_or_default(),
                host,
                alerts,
            })
            .collect(),
        digest,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Timestamp;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-01 03:00 UTC);

    fn s(n: i64) -> Duration {
        Duration::seconds(n)
    }

    #[test]
    fn due_times() {
        let p = Policy::default();
        // (oldest waiting, last message, sent in the last hour) → (due, digest)
        let cases = [
            // Nothing sent lately: the group waits 30 s from its first alert.
            (T0, None, 0, (T0 + s(30), false)),
            (T0, Some(T0 - Duration::hours(2)), 1, (T0 + s(30), false)),
            // A message went out a minute ago: the next batch waits for the 5-minute interval.
            (T0, Some(T0 - s(60)), 1, (T0 + s(240), false)),
            // The interval passed long ago but the group wait still holds.
            (T0, Some(T0 - s(290)), 1, (T0 + s(30), false)),
            // 20 messages in the last hour: the next is a digest, an hour after the last.
            (
                T0,
                Some(T0 - s(60)),
                20,
                (T0 - s(60) + Duration::hours(1), true),
            ),
            (T0, Some(T0 - Duration::hours(2)), 25, (T0 + s(30), true)),
        ];
        for (oldest, last, sent, want) in cases {
            assert_eq!(
                due(&p, oldest, last, sent),
                want,
                "{oldest} {last:?} {sent}"
            );
        }
        let none = Policy {
            group_wait: s(0),
            group_interval: s(0),
            max_per_hour: 20,
        };
        assert_eq!(due(&none, T0, Some(T0 - s(1)), 3), (T0, false));
    }

    fn n(rule: &str, kind: &str, host: Option<&str>, status: AlertStatus, sev: Severity) -> Notice {
        Notice {
            rule: rule.into(),
            status,
            host: host.map(str::to_string),
            value: Some(1.0),
            at: Timestamp(T0),
            severity: sev,
            kind: kind.into(),
            instance: host.unwrap_or(rule).into(),
            summary: format!("{rule} summary"),
            reminder: false,
            url: None,
        }
    }

    #[test]
    fn plans() {
        use AlertStatus::{Firing, Resolved};
        use Severity::{Critical, Warning};
        let w = |id, n| Waiting { id, notice: n };
        let down: BTreeMap<String, String> =
            [("web-2".to_string(), "silent for 4 min".to_string())].into();
        // Three alerts at once: one message, most urgent first.
        let p = plan(
            vec![
                w(1, n("disk", "metric", Some("web-1"), Resolved, Warning)),
                w(2, n("cpu", "metric", Some("web-1"), Firing, Warning)),
                w(3, n("api", "health", None, Firing, Critical)),
            ],
            &down,
            false,
        );
        let m = p.message.unwrap();
        let order: Vec<&str> = m.alerts.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(order, ["api", "cpu", "disk"]);
        assert_eq!(m.lead.rule, "api");
        assert_eq!(p.sent, [1, 2, 3]);
        assert_eq!(m.title(), "[FIRING 2, RESOLVED 1] 3 alerts: api, cpu, disk");
        assert_eq!(m.lines().len(), 3);

        // A silent host: its own alert is sent, its check and process alerts listed under it.
        let p = plan(
            vec![
                w(4, n("host silent", "host", Some("web-2"), Firing, Critical)),
                w(
                    5,
                    n("api on web-2", "health", Some("web-2"), Firing, Warning),
                ),
                w(6, n("gunicorn", "metric", Some("web-2"), Firing, Warning)),
                w(7, n("cpu", "metric", Some("web-1"), Firing, Warning)),
            ],
            &down,
            false,
        );
        assert_eq!(p.sent, [4, 7]);
        assert_eq!(p.suppressed.iter().map(|s| s.0).collect::<Vec<_>>(), [5, 6]);
        let m = p.message.unwrap();
        assert_eq!(m.suppressed.len(), 1);
        assert_eq!(m.suppressed[0].host, "web-2");
        assert_eq!(m.suppressed[0].alerts.len(), 2);
        assert!(m.title().contains("SUPPRESSED 2"), "{}", m.title());
        assert!(m.lines()[2].starts_with("Suppressed while web-2 (silent for 4 min)"));

        // Only suppressed alerts: no message at all.
        let p = plan(
            vec![w(
                8,
                n("api on web-2", "health", Some("web-2"), Firing, Warning),
            )],
            &down,
            false,
        );
        assert_eq!((p.message, p.sent.len(), p.suppressed.len()), (None, 0, 1));

        // One alert: the single notification's title; a digest says so.
        let p = plan(
            vec![w(9, n("cpu", "metric", Some("web-1"), Firing, Warning))],
            &down,
            true,
        );
        let m = p.message.unwrap();
        assert_eq!(m.title(), "Digest: [FIRING] cpu (web-1)");
        assert!(m.digest);
    }

    #[test]
    fn a_message_reads_back_and_an_old_single_notice_still_reads() {
        let one = n(
            "cpu",
            "metric",
            Some("web-1"),
            AlertStatus::Firing,
            Severity::Warning,
        );
        let m = Message::single(one.clone());
        let v = serde_json::to_value(&m).unwrap();
        // The lead's fields sit at the top, as a single notification's did.
        assert_eq!(v["rule"], "cpu");
        assert_eq!(v["alerts"][0]["rule"], "cpu");
        assert!(v.get("suppressed").is_none() && v.get("digest").is_none());
        assert_eq!(serde_json::from_value::<Message>(v).unwrap(), m);
        let old: Message = serde_json::from_value(serde_json::to_value(&one).unwrap()).unwrap();
        assert_eq!(old.listed(), std::slice::from_ref(&one));
    }
}
