//! CPU time of the calling thread: what every zc measurement of "CPU per
//! message" divides; and the whole machine's busy time, for the CPU a
//! receive path costs on every CPU (softirq and kernel threads included).

use std::time::Duration;

/// CPU time consumed so far by the calling thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time in user space.
    pub user: Duration,
    /// Time in the kernel on behalf of the thread.
    pub system: Duration,
}

impl CpuTime {
    /// `getrusage(RUSAGE_THREAD)` for the calling thread.
    pub fn thread() -> Self {
        let ru = thread_rusage();
        let tv = |t: libc::timeval| {
            Duration::new(
                u64::try_from(t.tv_sec).unwrap_or(0),
                u32::try_from(t.tv_usec).unwrap_or(0) * 1000,
            )
        };
        Self {
            user: tv(ru.ru_utime),
            system: tv(ru.ru_stime),
        }
    }

    /// User plus system time.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// The time spent between `earlier` and `self`.
    pub fn since(&self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// User plus system CPU time of the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    u64::try_from(CpuTime::thread().total().as_nanos()).unwrap_or(u64::MAX)
}

/// Voluntary context switches of the calling thread so far (`ru_nvcsw`):
/// how often it slept.
pub fn thread_sleeps() -> u64 {
    u64::try_from(thread_rusage().ru_nvcsw).unwrap_or(0)
}

fn thread_rusage() -> libc::rusage {
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD with a valid out pointer cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    ru
}

/// Busy time of every CPU so far, from the `cpu` line of `/proc/stat`: user,
/// nice, system, irq and softirq (idle, iowait and steal left out; guest time
/// is already inside user). The kernel counts it in ticks (`USER_HZ`), so a
/// difference is good to 10 ms per CPU: measure over a second or more.
pub fn machine_busy_ns() -> std::io::Result<u64> {
    parse_busy_ns(
        &std::fs::read_to_string("/proc/stat")?,
        clock_ticks_per_sec(),
    )
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf reads a constant of the system; no memory is passed.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|&h| h > 0).unwrap_or(100)
}

/// The busy nanoseconds of the aggregate `cpu` line of a `/proc/stat` text.
fn parse_busy_ns(stat: &str, ticks_per_sec: u64) -> std::io::Result<u64> {
    let bad = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/stat: {why}"),
        )
    };
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| bad("no aggregate `cpu` line"))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad("a `cpu` field is not a number"))?;
    if fields.len() < 7 {
        return Err(bad("fewer than 7 `cpu` fields"));
    }
    // user nice system idle iowait irq softirq ...
    let busy: u64 = [0, 1, 2, 5, 6].iter().map(|&i| fields[i]).sum();
    Ok(busy.saturating_mul(1_000_000_000 / ticks_per_sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_accumulates_cpu_time() {
        let t0 = CpuTime::thread();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let spent = CpuTime::thread().since(t0).total();
        assert!(spent >= Duration::from_millis(5), "{spent:?}");
        assert!(thread_cpu_ns() > 0);
    }

    #[test]
    fn busy_time_is_user_nice_system_irq_and_softirq() {
        let stat = "cpu  100 2 30 5000 7 4 60 9 0 0\ncpu0 50 1 15 2500 3 2 30 4 0 0\n";
        // 100 + 2 + 30 + 4 + 60 ticks of 10 ms.
        assert_eq!(parse_busy_ns(stat, 100).unwrap(), 196 * 10_000_000);
        assert!(parse_busy_ns("cpu0 1 2 3 4 5 6 7\n", 100).is_err());
        assert!(parse_busy_ns("cpu  1 2 x 4 5 6 7\n", 100).is_err());
        assert!(parse_busy_ns("cpu  1 2 3\n", 100).is_err());
        assert!(machine_busy_ns().unwrap() > 0);
    }
}
