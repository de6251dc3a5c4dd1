//! Where the CPU went during the timed phase (Linux `/proc`, best effort): the whole machine,
//! this load generator, and the server's processes. What remains is PostgreSQL and anything
//! else running. On a small machine all three share the same cores, so CPU time per callback
//! tells more than throughput alone.

/// Linux reports process times in clock ticks of 1/100 s (`USER_HZ`) on every common platform.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    machine_busy: u64,
    machine_total: u64,
    own: u64,
    server: u64,
    valid: bool,
}

impl Snapshot {
    pub fn take(server_pids: &[u32]) -> Self {
        let Some((machine_busy, machine_total)) = machine() else {
            return Self::default();
        };
        let own = process("self").unwrap_or(0);
        let server = server_pids
            .iter()
            .filter_map(|p| process(&p.to_string()))
            .sum();
        Self {
            machine_busy,
            machine_total,
            own,
            server,
            valid: true,
        }
    }
}

/// CPU seconds spent between two snapshots.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Share of all cores that was busy (0..1).
    pub busy_share: f64,
    pub machine_s: f64,
    pub load_generator_s: f64,
    /// `None` when no server process was named.
    pub server_s: Option<f64>,
    /// Everything else: PostgreSQL, mostly.
    pub other_s: f64,
}

impl Usage {
    pub fn between(a: &Snapshot, b: &Snapshot, server_known: bool) -> Option<Self> {
        if !(a.valid && b.valid) {
            return None;
        }
        let secs = |t: u64| t as f64 / TICKS_PER_SECOND;
        let busy = b.machine_busy.saturating_sub(a.machine_busy);
        let total = b.machine_total.saturating_sub(a.machine_total).max(1);
        let own = b.own.saturating_sub(a.own);
        let server = b.server.saturating_sub(a.server);
        Some(Self {
            busy_share: busy as f64 / total as f64,
            machine_s: secs(busy),
            load_generator_s: secs(own),
            server_s: server_known.then(|| secs(server)),
            other_s: secs(busy.saturating_sub(own + if server_known { server } else { 0 })),
        })
    }
}

/// (busy, total) ticks summed over all cores, from the first line of /proc/stat.
fn machine() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    if v.len() < 8 {
        return None;
    }
    let busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    Some((busy, busy + v[3] + v[4]))
}

/// utime + stime of a process (all its threads), in ticks.
fn process(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process_on_linux() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(process("self").is_some());
            assert!(machine().is_some());
        }
    }
}
