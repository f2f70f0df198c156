//! Parsers for the Linux /proc files sysinfo does not cover: TCP connection states and the
//! process count. Pure functions over text, tested on fixtures.

use std::collections::BTreeMap;

/// TCP states as the kernel numbers them in /proc/net/tcp (include/net/tcp_states.h).
pub fn tcp_state_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0x01 => "established",
        0x02 => "syn_sent",
        0x03 => "syn_recv",
        0x04 => "fin_wait1",
        0x05 => "fin_wait2",
        0x06 => "time_wait",
        0x07 => "close",
        0x08 => "close_wait",
        0x09 => "last_ack",
        0x0A => "listen",
        0x0B => "closing",
        0x0C => "new_syn_recv",
        _ => return None,
    })
}

/// Adds the connections of one /proc/net/tcp or tcp6 file to `counts`, by state name.
/// Lines that do not parse are skipped (the header, or a truncated read).
pub fn count_tcp_states(text: &str, counts: &mut BTreeMap<&'static str, u64>) {
    for line in text.lines().skip(1) {
        let Some(state) = line.split_whitespace().nth(3) else {
            continue;
        };
        let Ok(code) = u8::from_str_radix(state, 16) else {
            continue;
        };
        if let Some(name) = tcp_state_name(code) {
            *counts.entry(name).or_default() += 1;
        }
    }
}

/// Adds the local ports in LISTEN state of one /proc/net/tcp or tcp6 file to `ports`.
pub fn listening_ports(text: &str, ports: &mut std::collections::BTreeSet<u16>) {
    for line in text.lines().skip(1) {
        let mut cols = line.split_whitespace();
        let (Some(local), Some(state)) = (cols.nth(1), cols.nth(1)) else {
            continue;
        };
        if state != "0A" {
            continue;
        }
        if let Some(port) = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
        {
            ports.insert(port);
        }
    }
}

/// The TCP ports something listens on, IPv4 and IPv6.
pub fn listening_tcp_ports() -> std::collections::BTreeSet<u16> {
    let mut ports = std::collections::BTreeSet::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            listening_ports(&text, &mut ports);
        }
    }
    ports
}

/// Reads /proc/net/tcp and /proc/net/tcp6; `established` and `listen` are always present.
pub fn tcp_connections() -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::from([("established", 0), ("listen", 0)]);
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            count_tcp_states(&text, &mut counts);
        }
    }
    counts
}

/// Number of processes: the numeric entries of /proc.
pub fn process_count() -> Option<u64> {
    let dir = std::fs::read_dir("/proc").ok()?;
    Some(
        dir.filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .count() as u64,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn listening_ports_are_read_from_both_files() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0\n   1: 0100007F:1F91 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 2\n garbage\n";
        let v6 = "  sl  local_address                         remote_address                        st\n   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000\n";
        let mut ports = std::collections::BTreeSet::new();
        listening_ports(v4, &mut ports);
        listening_ports(v6, &mut ports);
        // 8080 listens; 8081 is an established connection, not a listener; 22 from tcp6.
        assert_eq!(ports.into_iter().collect::<Vec<_>>(), [22, 8080]);
    }

    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 12347 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:C352 0100007F:1F90 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
   4: garbage line
   5: 0100007F:C354 0100007F:1F90 FF 00000000:00000000 00:00000000 00000000     0        0 0 3 0000000000000000
";

    #[test]
    fn tcp_states_are_counted() {
        let mut counts = BTreeMap::new();
        count_tcp_states(TCP, &mut counts);
        assert_eq!(counts.get("listen"), Some(&1));
        assert_eq!(counts.get("established"), Some(&2));
        assert_eq!(counts.get("time_wait"), Some(&1));
        assert_eq!(
            counts.values().sum::<u64>(),
            4,
            "header, garbage and unknown states skipped"
        );
        count_tcp_states(TCP, &mut counts);
        assert_eq!(counts.get("established"), Some(&4), "tcp and tcp6 add up");
    }

    #[test]
    fn state_codes() {
        assert_eq!(tcp_state_name(0x0A), Some("listen"));
        assert_eq!(tcp_state_name(0x01), Some("established"));
        assert_eq!(tcp_state_name(0x00), None);
    }

    #[test]
    fn this_machine_has_processes() {
        assert!(process_count().unwrap() >= 1);
        assert!(tcp_connections().contains_key("listen"));
    }
}
