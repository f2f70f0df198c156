//! Watched processes on this host: each watch's matching processes summed up (count, CPU %,
//! RSS, open files, threads, uptime of the oldest, i.e. the main process), whether that main
//! process was replaced since the previous look (a restart), and whether the watch's port is
//! listening. Used by `opsdeck serve` for its own host and by agents.

use super::super::metrics::procfs;
use app::metrics::{Labels, Sample};
use app::services::process::{matches, restarts, Instance};
use app::timestamp::Timestamp;
use std::collections::{BTreeSet, HashMap};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
use time::OffsetDateTime;

/// (name, pattern, port)
pub type WatchSpec = (String, String, Option<u16>);

pub struct ProcessWatcher {
    sys: System,
    seen: HashMap<String, BTreeSet<Instance>>,
}

/// Open file descriptors and threads of a process, from /proc.
fn fds_and_threads(pid: u32) -> (Option<f64>, Option<f64>) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count() as f64);
    let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
    (fds, threads)
}

impl ProcessWatcher {
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            sys: System::new().map_err(|e| format!("cannot read system information: {e}"))?,
            seen: HashMap::new(),
        })
    }

    /// One look at every watch. CPU % covers the time since the previous call.
    pub fn collect(&mut self, watches: &[WatchSpec], ts: OffsetDateTime) -> Vec<Sample> {
        let mut out = vec![];
        if watches.is_empty() {
            self.seen.clear();
            return out;
        }
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .with_cmd(UpdateKind::OnlyIfNotSet),
        );
        let ports = if watches.iter().any(|w| w.2.is_some()) {
            procfs::listening_tcp_ports()
        } else {
            BTreeSet::new()
        };
        let now_unix = ts.unix_timestamp().max(0) as u64;
        // Each process's name and command line, read once for all the watches.
        let procs: Vec<(&sysinfo::Pid, &sysinfo::Process, String, String)> = self
            .sys
            .processes()
            .iter()
            .filter(|(_, p)| p.thread_kind().is_none())
            .map(|(pid, p)| {
                let cmd = p
                    .cmd()
                    .iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ");
                (pid, p, p.name().to_string_lossy().into_owned(), cmd)
            })
            .collect();
        for (name, pattern, port) in watches {
            let mut instances = BTreeSet::new();
            let (mut cpu, mut rss, mut fds, mut threads) = (0.0, 0.0, 0.0, 0.0);
            let mut oldest: Option<u64> = None;
            for (pid, p, pname, cmd) in &procs {
                if !matches(pattern, pname, cmd) {
                    continue;
                }
                instances.insert((pid.as_u32(), p.start_time()));
                cpu += f64::from(p.cpu_usage());
                rss += p.memory() as f64;
                let (f, t) = fds_and_threads(pid.as_u32());
                fds += f.unwrap_or(0.0);
                threads += t.unwrap_or(0.0);
                oldest = Some(oldest.map_or(p.start_time(), |o| o.min(p.start_time())));
            }
            let before = self.seen.get(name);
            let restarted = restarts(
                before.unwrap_or(&BTreeSet::new()),
                &instances,
                before.is_some(),
            );
            let labels = Labels::from([("process".to_string(), name.clone())]);
            let mut push = |metric: &str, value: f64| {
                out.push(Sample {
                    metric: metric.into(),
                    labels: labels.clone(),
                    ts: Timestamp(ts),
                    value,
                })
            };
            let up = !instances.is_empty();
            push("process_up", f64::from(u8::from(up)));
            push("process_count", instances.len() as f64);
            push("process_restarts", restarted as f64);
            if up {
                push("process_cpu_percent", cpu);
                push("process_resident_memory_bytes", rss);
                push("process_open_fds", fds);
                push("process_threads", threads);
                if let Some(y) = oldest {
                    push("process_uptime_seconds", now_unix.saturating_sub(y) as f64);
                }
            }
            if let Some(port) = port {
                push(
                    "process_port_listening",
                    f64::from(u8::from(ports.contains(port))),
                );
            }
            self.seen.insert(name.clone(), instances);
        }
        self.seen
            .retain(|name, _| watches.iter().any(|w| &w.0 == name));
        out
    }
}
