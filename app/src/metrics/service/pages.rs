//! What the Overview's host cards and a host's page show.

use super::*;

use crate::metrics::charts::{self, LineInput};
use crate::metrics::{HostCard, HostCharts, Unit};

pub(crate) fn selector(metric: &str, labels: &[(&str, &str)]) -> Selector {
    Selector {
        metric: metric.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Whether a series is the host's own (sent by its collector or agent), labelled only with the
/// keys its chart tells apart (`mount`, `device`, `state`, …). A scrape target's series of the
/// same name carry more (`target`, `host`, …) and are charted on the target's page. Pure.
pub(crate) fn own_series(labels: &Labels, keys: &[&str]) -> bool {
    labels.keys().all(|k| keys.contains(&k.as_str()))
}

/// A host is silent when nothing arrived for three collection intervals (at least a minute).
fn silent_for(state: &AppState, last_seen: OffsetDateTime, now: OffsetDateTime) -> Option<i64> {
    let limit = crate::alerts::service::silent_after(&state.config).whole_seconds();
    let age = (now - last_seen).whole_seconds();
    (age > limit).then_some(age)
}

pub async fn host_cards(state: &AppState) -> AppResult<Vec<HostCard>> {
    let now = OffsetDateTime::now_utc();
    let hosts = hosts(&state.pool).await?;
    let latest = latest(&state.pool, None).await?;
    // The fullest disk of each host, then every sparkline (CPU, memory, that disk) at once.
    let fullest_disk = |host: &str| {
        latest
            .iter()
            .filter(|v| v.host == host && v.metric == "disk_used_percent")
            .filter(|v| own_series(&v.labels, &["mount"]))
            .max_by(|a, b| a.value.total_cmp(&b.value))
            .map(|v| (v.labels.get("mount").cloned().unwrap_or_default(), v.value))
    };
    let disks: Vec<Option<(String, f64)>> = hosts.iter().map(|h| fullest_disk(&h.name)).collect();
    let mut wanted = vec![];
    for (h, disk) in hosts.iter().zip(&disks) {
        wanted.push((h.name.clone(), selector("cpu_usage_percent", &[])));
        wanted.push((h.name.clone(), selector("memory_used_percent", &[])));
        if let Some((mount, _)) = disk {
            wanted.push((
                h.name.clone(),
                selector("disk_used_percent", &[("mount", mount.as_str())]),
            ));
        }
    }
    let from = now - time::Duration::hours(1);
    let retention = Retention::from(&*state.config);
    let sparks = first_series_points(&state.reads, &wanted, from, now, 30, retention).await?;
    let mut sparks = sparks
        .into_iter()
        .map(|p| p.into_iter().map(|p| p.avg).collect::<Vec<f64>>());
    let mut cards = Vec::with_capacity(hosts.len());
    for (h, disk) in hosts.into_iter().zip(disks) {
        let (cpu_spark, memory_spark) = (
            sparks.next().unwrap_or_default(),
            sparks.next().unwrap_or_default(),
        );
        let disk_spark = match disk {
            Some(_) => sparks.next().unwrap_or_default(),
            None => vec![],
        };
        let value = |metric: &str| {
            latest
                .iter()
                .find(|v| v.host == h.name && v.metric == metric && v.labels.is_empty())
                .map(|v| v.value)
        };
        cards.push(HostCard {
            silent_for_secs: silent_for(state, *h.last_seen, now),
            cpu: value("cpu_usage_percent"),
            memory: value("memory_used_percent"),
            name: h.name,
            source: h.source,
            last_seen: h.last_seen,
            disk,
            cpu_spark,
            memory_spark,
            disk_spark,
        });
    }
    Ok(cards)
}

/// Every chart of the Hosts page for one host and range.
pub async fn host_charts(
    state: &AppState,
    host: &str,
    range: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> AppResult<HostCharts> {
    host_charts_of(state, host, (range, from, to), false).await
}

/// [`host_charts`]; with `core_only`, only CPU, memory and disk usage are read (the other
/// charts are drawn empty): what an incident's page shows of its hosts.
pub async fn host_charts_of(
    state: &AppState,
    host: &str,
    (range, from, to): (Option<&str>, Option<&str>, Option<&str>),
    core_only: bool,
) -> AppResult<HostCharts> {
    let now = OffsetDateTime::now_utc();
    let (from, to, range_label) = crate::metrics::window(
        range,
        from,
        to,
        crate::metrics::DEFAULT_RANGE,
        now,
        crate::zone::current(),
    )?;
    let known = sqlx::query_as!(
        super::HostInfo,
        r#"SELECT name, source, first_seen AS "first_seen: crate::timestamp::Timestamp",
                  last_seen AS "last_seen: crate::timestamp::Timestamp"
           FROM hosts WHERE name = $1"#,
        host
    )
    .fetch_optional(&state.pool)
    .await?;
    let Some(info) = known else {
        return Err(AppError::not_found(format!(
            "no host `{host}` has reported"
        )));
    };
    let points = 300;
    let retention = Retention::from(&*state.config);
    let reads = &state.reads;
    let q = |sel: Selector| async move {
        let core = matches!(
            sel.metric.as_str(),
            "cpu_usage_percent" | "memory_used_percent" | "disk_used_percent"
        );
        if core_only && !core {
            return Ok(SeriesResponse { series: vec![] });
        }
        series(reads, host, &sel, from, to, points, retention).await
    };
    let (cpu, load1, load5, load15, mem, swap, disks, reads, writes, rx, tx, tcp) = tokio::try_join!(
        q(selector("cpu_usage_percent", &[])),
        q(selector("load_average_1m", &[])),
        q(selector("load_average_5m", &[])),
        q(selector("load_average_15m", &[])),
        q(selector("memory_used_percent", &[])),
        q(selector("swap_used_percent", &[])),
        q(selector("disk_used_percent", &[])),
        q(selector("disk_read_bytes_per_second", &[])),
        q(selector("disk_write_bytes_per_second", &[])),
        q(selector(
            "network_receive_bytes_per_second",
            &[("interface", "all")]
        )),
        q(selector(
            "network_transmit_bytes_per_second",
            &[("interface", "all")]
        )),
        q(selector("tcp_connections", &[])),
    )?;
    let (f, t) = (from.unix_timestamp(), to.unix_timestamp());
    let own = |r: &SeriesResponse, keys: &[&str]| -> Vec<SeriesData> {
        r.series
            .iter()
            .filter(|s| own_series(&s.labels, keys))
            .cloned()
            .collect()
    };
    let first = |r: &SeriesResponse, keys: &[&str]| {
        own(r, keys)
            .into_iter()
            .next()
            .map(|s| s.points)
            .unwrap_or_default()
    };
    let step = cpu.series.first().map(|s| s.step_seconds).unwrap_or(60);
    let (disks, reads, writes, tcp) = (
        own(&disks, &["mount"]),
        own(&reads, &["device"]),
        own(&writes, &["device"]),
        own(&tcp, &["state"]),
    );
    let tier = cpu
        .series
        .first()
        .map(|s| s.tier.clone())
        .unwrap_or_else(|| "none".into());
    let mut out = Vec::new();
    let (cpu_p, mem_p, swap_p) = (first(&cpu, &[]), first(&mem, &[]), first(&swap, &[]));
    out.push(charts::render(
        "cpu",
        "CPU",
        Unit::Percent,
        f,
        t,
        step,
        &[LineInput {
            label: "cpu".into(),
            points: &cpu_p,
            band: true,
        }],
    ));
    let (l1, l5, l15) = (first(&load1, &[]), first(&load5, &[]), first(&load15, &[]));
    out.push(charts::render(
        "load",
        "Load average",
        Unit::Plain,
        f,
        t,
        step,
        &[
            LineInput {
                label: "1 min".into(),
                points: &l1,
                band: false,
            },
            LineInput {
                label: "5 min".into(),
                points: &l5,
                band: false,
            },
            LineInput {
                label: "15 min".into(),
                points: &l15,
                band: false,
            },
        ],
    ));
    out.push(charts::render(
        "memory",
        "Memory",
        Unit::Percent,
        f,
        t,
        step,
        &[LineInput {
            label: "used".into(),
            points: &mem_p,
            band: true,
        }],
    ));
    out.push(charts::render(
        "swap",
        "Swap",
        Unit::Percent,
        f,
        t,
        step,
        &[LineInput {
            label: "used".into(),
            points: &swap_p,
            band: true,
        }],
    ));
    for d in &disks {
        let mount = d.labels.get("mount").cloned().unwrap_or_default();
        out.push(charts::render(
            &format!("disk:{mount}"),
            &format!("Disk {mount}"),
            Unit::Percent,
            f,
            t,
            step,
            &[LineInput {
                label: "used".into(),
                points: &d.points,
                band: true,
            }],
        ));
    }
    let mut io_lines = Vec::new();
    for (dir, r) in [("read", &reads), ("write", &writes)] {
        for s in r.iter().take(3) {
            io_lines.push(LineInput {
                label: format!(
                    "{} {dir}",
                    s.labels.get("device").cloned().unwrap_or_default()
                ),
                points: &s.points,
                band: false,
            });
        }
    }
    out.push(charts::render(
        "disk_io",
        "Disk I/O",
        Unit::BytesPerSecond,
        f,
        t,
        step,
        &io_lines,
    ));
    let (rx_p, tx_p) = (first(&rx, &["interface"]), first(&tx, &["interface"]));
    out.push(charts::render(
        "network",
        "Network (all interfaces)",
        Unit::BytesPerSecond,
        f,
        t,
        step,
        &[
            LineInput {
                label: "receive".into(),
                points: &rx_p,
                band: false,
            },
            LineInput {
                label: "transmit".into(),
                points: &tx_p,
                band: false,
            },
        ],
    ));
    let tcp_lines: Vec<LineInput> = tcp
        .iter()
        .filter(|s| {
            matches!(
                s.labels.get("state").map(String::as_str),
                Some("established" | "listen" | "time_wait" | "close_wait")
            )
        })
        .map(|s| LineInput {
            label: s.labels.get("state").cloned().unwrap_or_default(),
            points: &s.points,
            band: false,
        })
        .collect();
    out.push(charts::render(
        "tcp",
        "TCP connections",
        Unit::Count,
        f,
        t,
        step,
        &tcp_lines,
    ));
    // Annotations of this host (and of every host) are marked on each chart.
    let marks: Vec<crate::metrics::ChartMark> =
        crate::incidents::service::annotations(&state.pool, from, to, Some(host))
            .await?
            .into_iter()
            .map(|a| crate::metrics::ChartMark {
                at: a.ts.unix_timestamp(),
                label: a.text,
            })
            .collect();
    for c in &mut out {
        c.marks = marks.clone();
    }
    Ok(HostCharts {
        host: host.to_string(),
        range_label,
        last_seen: Some(info.last_seen),
        silent: silent_for(state, *info.last_seen, now).is_some(),
        tier,
        charts: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_page_charts_the_hosts_own_series_not_a_scraped_namesake() {
        let labels = |kv: &[(&str, &str)]| -> Labels {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        for (series, keys, want) in [
            (labels(&[]), &[][..], true),
            (labels(&[("mount", "/")]), &["mount"][..], true),
            (labels(&[("state", "listen")]), &["state"][..], true),
            // Scraped from an exporter that reports the same names.
            (labels(&[("target", "self")]), &[][..], false),
            (
                labels(&[("mount", "/"), ("host", "vm"), ("target", "self")]),
                &["mount"][..],
                false,
            ),
            (
                labels(&[("state", "listen"), ("exported_target", "x")]),
                &["state"][..],
                false,
            ),
        ] {
            assert_eq!(own_series(&series, keys), want, "{series:?} {keys:?}");
        }
    }
}
