//! CPU time of the calling thread: what every zc measurement of "CPU per
//! message" divides.

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
}
