//! The time-stamp counter: the kernel's monotonic clock (log timestamps, boot
//! time, cycle counts of benchmarks). Its frequency is measured once at boot
//! against the PIT (channel 2, 1.193182 MHz), as Linux's quick PIT calibration does.
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::port::Port;

/// TSC ticks per second, 0 until calibrated.
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// TSC value at calibration: time zero of the log.
static TSC_ZERO: AtomicU64 = AtomicU64::new(0);

const PIT_HZ: u64 = 1_193_182;
/// About 5 ms of PIT ticks.
const PIT_TICKS: u16 = 5966;

/// Read the TSC.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects and is available on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Measure the TSC frequency with the PIT. Falls back to 1 GHz (and says so in the
/// log later) if the PIT never signals, so a strange machine still boots.
pub fn calibrate() {
    let mut ctrl = Port::<u8>::new(0x61);
    let mut cmd = Port::<u8>::new(0x43);
    let mut ch2 = Port::<u8>::new(0x42);
    // SAFETY: ports 0x61 (NMI status/control: PIT gate 2 and speaker), 0x43 (PIT
    // mode) and 0x42 (PIT channel 2) are the PC's legacy timer; channel 2 drives
    // only the speaker, which we keep disabled (bit 1 of 0x61 cleared).
    let (start, end, ok) = unsafe {
        let v = ctrl.read();
        ctrl.write((v & !0x02) | 0x01);
        // Channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count), binary.
        cmd.write(0b1011_0000);
        ch2.write((PIT_TICKS & 0xff) as u8);
        ch2.write((PIT_TICKS >> 8) as u8);
        let start = rdtsc();
        let mut ok = false;
        // Bounded: at most ~2^32 TSC ticks (seconds even on a slow CPU).
        while rdtsc().wrapping_sub(start) < (1 << 32) {
            if ctrl.read() & 0x20 != 0 {
                ok = true;
                break;
            }
        }
        (start, rdtsc(), ok)
    };
    let hz = if ok && end > start {
        (end - start) * PIT_HZ / u64::from(PIT_TICKS)
    } else {
        1_000_000_000
    };
    TSC_HZ.store(hz.max(1), Ordering::Relaxed);
    TSC_ZERO.store(start, Ordering::Relaxed);
}

/// TSC ticks per second (after [`calibrate`]).
pub fn hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed).max(1)
}

/// Nanoseconds since calibration (boot).
pub fn uptime_ns() -> u64 {
    let ticks = rdtsc().saturating_sub(TSC_ZERO.load(Ordering::Relaxed));
    (u128::from(ticks) * 1_000_000_000 / u128::from(hz())) as u64
}

/// Convert a TSC tick count into microseconds.
pub fn ticks_to_us(ticks: u64) -> u64 {
    (u128::from(ticks) * 1_000_000 / u128::from(hz())) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test_case]
    fn clock_is_calibrated_and_monotonic() {
        assert!(hz() >= 10_000_000, "TSC at {} Hz is implausible", hz());
        let a = uptime_ns();
        let b = uptime_ns();
        assert!(b >= a);
    }
}
