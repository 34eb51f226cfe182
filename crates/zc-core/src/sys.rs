//! Small OS helpers every backend needs: CPU pinning, the monotonic clock and
//! deadlines.

use crate::error::{Error, Result};
use nix::sched::{sched_setaffinity, CpuSet};
use nix::time::{clock_gettime, ClockId};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// CLOCK_MONOTONIC in nanoseconds: the clock message timestamps use.
#[inline]
pub fn monotonic_ns() -> u64 {
    clock_ns(ClockId::CLOCK_MONOTONIC)
}

/// CLOCK_REALTIME in nanoseconds: the clock of the kernel's software rx timestamps (`SO_TIMESTAMPING`).
#[inline]
pub fn realtime_ns() -> u64 {
    clock_ns(ClockId::CLOCK_REALTIME)
}

fn clock_ns(id: ClockId) -> u64 {
    // clock_gettime cannot fail for these two always-present clocks; 0 would
    // only show up as an absurd latency, never as a crash.
    clock_gettime(id)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// The instant `timeout` from now, or `None` when that lies beyond what the
/// clock can represent (`Duration::MAX`, or `1e19` seconds from the command
/// line): such a deadline is never reached, so `None` means "no deadline".
/// Every receive and send loop computes its deadline here, never with
/// `Instant::now() + timeout`, which panics on overflow.
#[inline]
pub fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Pins the calling thread to one CPU.
pub fn pin_current_thread(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).map_err(|_| {
        Error::config(format!(
            "CPU {cpu} is beyond the {} CPUs a cpu_set_t can name",
            CpuSet::count()
        ))
    })?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|e| {
        Error::io(format!("pin thread to CPU {cpu}"), e.into()).with_fix(format!(
            "choose a CPU this process may use (0..{})",
            online_cpus()
        ))
    })
}

/// Number of CPUs online.
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Environment variable that turns a privileged test's skip into a failure
/// (`build/test.sh` sets it when `CI=true`, so a green CI means they ran).
pub const REQUIRE_PRIVILEGED_ENV: &str = "ZC_REQUIRE_PRIVILEGED";

/// For tests that need root: true when running as root. Otherwise prints why
/// `test` is skipped and returns false, or panics when
/// [`REQUIRE_PRIVILEGED_ENV`] is set.
pub fn privileged_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os(REQUIRE_PRIVILEGED_ENV).is_some() {
        panic!("{test} needs root and {REQUIRE_PRIVILEGED_ENV} is set: run the tests as root");
    }
    // Printed, not logged: a test has no tracing subscriber, and a skip must
    // show in the test output.
    eprintln!(
        "skipped {test}: needs root (network namespaces, raw devices); run `sudo ./build/test.sh`"
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn a_deadline_past_the_clock_is_none_not_a_panic() {
        assert_eq!(deadline_after(Duration::MAX), None);
        assert_eq!(deadline_after(Duration::from_secs(u64::MAX / 2)), None);
        let d = deadline_after(Duration::from_secs(1)).unwrap();
        assert!(d > Instant::now());
    }

    #[test]
    fn pinning_to_an_impossible_cpu_is_a_clear_error() {
        let e = pin_current_thread(100_000).unwrap_err();
        assert!(e.to_string().contains("CPU 100000"), "{e}");
    }

    #[test]
    fn pinning_to_cpu_zero_works() {
        std::thread::spawn(|| pin_current_thread(0))
            .join()
            .unwrap()
            .unwrap();
    }
}
