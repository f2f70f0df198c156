//! Host metrics from sysinfo and /proc: what `opsdeck serve` records for its own host and
//! `opsdeck agent` records for the host it runs on.

use super::procfs;
use app::metrics::{Labels, Sample};
use app::timestamp::Timestamp;
use std::collections::BTreeSet;
use std::time::Instant;
use sysinfo::{Disks, Networks, System};
use time::OffsetDateTime;

/// File systems that hold no user data.
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "tmpfs",
    "squashfs",
    "cgroup",
    "cgroup2",
    "autofs",
    "mqueue",
    "debugfs",
    "tracefs",
    "nsfs",
    "fuse.lxcfs",
    "ramfs",
];

pub struct Collector {
    sys: System,
    disks: Disks,
    networks: Networks,
    last: Instant,
    /// The processes to watch on this host (set before each `collect`).
    pub watches: Vec<crate::services::watch::WatchSpec>,
    watcher: crate::services::watch::ProcessWatcher,
}

fn label(k: &str, v: impl Into<String>) -> Labels {
    Labels::from([(k.to_string(), v.into())])
}

fn percent(part: f64, total: f64) -> f64 {
    if total > 0.0 {
        (part / total * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    }
}

impl Collector {
    pub fn new() -> Result<Self, String> {
        let mut sys = System::new().map_err(|e| format!("cannot read system information: {e}"))?;
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        let disks =
            Disks::new_with_refreshed_list().map_err(|e| format!("cannot list disks: {e}"))?;
        let networks = Networks::new_with_refreshed_list()
            .map_err(|e| format!("cannot list network interfaces: {e}"))?;
        Ok(Self {
            sys,
            disks,
            networks,
            last: Instant::now(),
            watches: vec![],
            watcher: crate::services::watch::ProcessWatcher::new()?,
        })
    }

    /// Takes one set of samples. Rates cover the time since the previous call, so the first
    /// call after `new` should come at least `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL` later.
    pub fn collect(&mut self, ts: OffsetDateTime) -> Vec<Sample> {
        let elapsed = self.last.elapsed().as_secs_f64().max(0.001);
        self.last = Instant::now();
        let mut out = Vec::with_capacity(64);
        let mut push = |metric: &str, labels: Labels, value: f64| {
            if value.is_finite() {
                out.push(Sample {
                    metric: metric.to_string(),
                    labels,
                    ts: Timestamp(ts),
                    value,
                });
            }
        };

        self.sys.refresh_cpu_usage();
        push(
            "cpu_usage_percent",
            Labels::new(),
            self.sys.global_cpu_usage() as f64,
        );
        for (i, cpu) in self.sys.cpus().iter().enumerate() {
            push(
                "cpu_core_usage_percent",
                label("core", i.to_string()),
                cpu.usage() as f64,
            );
        }
        if let Ok(load) = System::load_average() {
            push("load_average_1m", Labels::new(), load.one);
            push("load_average_5m", Labels::new(), load.five);
            push("load_average_15m", Labels::new(), load.fifteen);
        }

        self.sys.refresh_memory();
        let total = self.sys.total_memory() as f64;
        let used = total - self.sys.available_memory() as f64;
        push("memory_total_bytes", Labels::new(), total);
        push("memory_used_bytes", Labels::new(), used);
        push("memory_used_percent", Labels::new(), percent(used, total));
        let swap_total = self.sys.total_swap() as f64;
        let swap_used = self.sys.used_swap() as f64;
        push("swap_total_bytes", Labels::new(), swap_total);
        push("swap_used_bytes", Labels::new(), swap_used);
        push(
            "swap_used_percent",
            Labels::new(),
            percent(swap_used, swap_total),
        );

        self.disks.refresh(true);
        let mut devices = BTreeSet::new();
        for disk in &self.disks {
            let fs = disk.file_system().to_string_lossy();
            let total = disk.total_space() as f64;
            if PSEUDO_FS.contains(&fs.as_ref()) || total <= 0.0 {
                continue;
            }
            let mount = disk.mount_point().to_string_lossy().to_string();
            let used = total - disk.available_space() as f64;
            push("disk_total_bytes", label("mount", &mount), total);
            push("disk_used_bytes", label("mount", &mount), used);
            push(
                "disk_used_percent",
                label("mount", &mount),
                percent(used, total),
            );
            // A device mounted twice (bind mounts) must count its I/O once.
            let device = disk.name().to_string_lossy().to_string();
            if devices.insert(device.clone()) {
                let usage = disk.usage();
                push(
                    "disk_read_bytes_per_second",
                    label("device", &device),
                    usage.read_bytes as f64 / elapsed,
                );
                push(
                    "disk_write_bytes_per_second",
                    label("device", &device),
                    usage.written_bytes as f64 / elapsed,
                );
            }
        }

        self.networks.refresh(true);
        let (mut rx_all, mut tx_all) = (0.0, 0.0);
        for (name, data) in &self.networks {
            let name = name.to_string_lossy();
            let rx = data.received() as f64 / elapsed;
            let tx = data.transmitted() as f64 / elapsed;
            push(
                "network_receive_bytes_per_second",
                label("interface", name.as_ref()),
                rx,
            );
            push(
                "network_transmit_bytes_per_second",
                label("interface", name.as_ref()),
                tx,
            );
            if name.as_ref() != "lo" {
                rx_all += rx;
                tx_all += tx;
            }
        }
        push(
            "network_receive_bytes_per_second",
            label("interface", "all"),
            rx_all,
        );
        push(
            "network_transmit_bytes_per_second",
            label("interface", "all"),
            tx_all,
        );

        for (state, n) in procfs::tcp_connections() {
            push("tcp_connections", label("state", state), n as f64);
        }
        if let Some(n) = procfs::process_count() {
            push("host_processes", Labels::new(), n as f64);
        }
        if let Ok(up) = System::uptime() {
            push("host_uptime_seconds", Labels::new(), up as f64);
        }
        out.extend(self.watcher.collect(&self.watches, ts));
        for s in &mut out {
            s.ts = Timestamp(app::metrics::recorded_time(*s.ts));
            s.value = app::metrics::recorded_value(&s.metric, s.value);
        }
        out
    }
}

/// The machine's host name, for naming its series.
pub fn local_host_name() -> String {
    System::host_name()
        .ok()
        .map(|h| {
            h.chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_on_this_machine_are_plausible() {
        let mut c = Collector::new().unwrap();
        std::thread::sleep(
            sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(std::time::Duration::from_millis(300)),
        );
        let samples = c.collect(OffsetDateTime::now_utc());
        let get = |m: &str, l: Option<(&str, &str)>| {
            samples
                .iter()
                .find(|s| {
                    s.metric == m
                        && l.is_none_or(|(k, v)| s.labels.get(k).map(String::as_str) == Some(v))
                })
                .map(|s| s.value)
                .unwrap_or_else(|| panic!("{m} missing"))
        };
        let cpu = get("cpu_usage_percent", None);
        assert!((0.0..=100.0).contains(&cpu), "cpu {cpu}");
        let cores = samples
            .iter()
            .filter(|s| s.metric == "cpu_core_usage_percent")
            .count();
        assert!(cores >= 1, "one series per core");
        let mem_total = get("memory_total_bytes", None);
        assert!(
            mem_total > 64.0 * 1024.0 * 1024.0,
            "memory total {mem_total}"
        );
        let mem_pct = get("memory_used_percent", None);
        assert!(mem_pct > 0.0 && mem_pct < 100.0, "memory {mem_pct}");
        let root = get("disk_used_percent", Some(("mount", "/")));
        assert!(root > 0.0 && root <= 100.0, "disk / {root}");
        assert!(get("load_average_1m", None) >= 0.0);
        assert!(get("host_processes", None) >= 1.0);
        assert!(get("host_uptime_seconds", None) > 0.0);
        assert!(get("tcp_connections", Some(("state", "listen"))) >= 0.0);
        assert!(
            get(
                "network_receive_bytes_per_second",
                Some(("interface", "all"))
            ) >= 0.0
        );
        for s in &samples {
            app::metrics::validate_sample(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        }
        assert!(!samples.iter().any(|s| s
            .labels
            .get("mount")
            .is_some_and(|m| m.starts_with("/proc"))));
    }
}
