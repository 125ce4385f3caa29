//! How fast this host backs fresh memory, with one thread and with two: what most of
//! `--bench-smp`'s ratio is made of.
//!
//! A cold `--mem 16G` boot is mostly the host faulting guest RAM in: every 2 MiB of
//! memmap the kernel writes for the first time is a transparent huge page the host
//! allocates and clears (QEMU asks for them with `MADV_HUGEPAGE`), 4-6.5 ms each on
//! a host that hands freed memory back to its own hypervisor. When two vCPUs fault at
//! once they go no faster than the host serves two faulting threads, so the kernel's
//! two-CPU deferred init is held to about [`scaling`]'s figure. This measures it the same
//! way: fresh anonymous memory, `MADV_HUGEPAGE`, one byte written per 4 KiB, each
//! thread its own share.
use std::io;
use std::time::{Duration, Instant};

use memmap2::{Advice, MmapOptions};

const HUGE_PAGE: usize = 2 << 20;

/// Fresh memory: `mib` MiB of anonymous mapping, `MADV_HUGEPAGE`, not touched yet;
/// [`first_touch`] takes the huge-page-aligned part.
pub struct Fresh {
    map: memmap2::MmapMut,
    len: usize,
}

impl Fresh {
    /// Map `mib` MiB (at least 1).
    pub fn new(mib: usize) -> io::Result<Self> {
        let len = mib
            .checked_mul(1 << 20)
            .filter(|&l| l > 0)
            .ok_or(io::Error::new(
                io::ErrorKind::InvalidInput,
                "fresh memory needs a size of 1 MiB or more that fits",
            ))?;
        // One huge page more, so that whole huge pages fit after aligning the start.
        let map = MmapOptions::new()
            .len(
                len.checked_add(HUGE_PAGE)
                    .ok_or(io::ErrorKind::InvalidInput)?,
            )
            .no_reserve_swap()
            .map_anon()?;
        map.advise(Advice::HugePage)?;
        Ok(Self { map, len })
    }
}

/// Wall time for `threads` threads to write the first byte of every 4 KiB page of
/// `mem`, each thread its own contiguous share. Only the first call on a [`Fresh`]
/// measures the host; later ones find the memory backed.
pub fn first_touch(mem: &mut Fresh, threads: usize) -> io::Result<Duration> {
    if threads == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "first_touch needs at least one thread",
        ));
    }
    let skip = mem.map.as_ptr().align_offset(HUGE_PAGE);
    let len = mem.len;
    let mem = &mut mem.map[skip..skip + len];
    let share = len.div_ceil(threads).next_multiple_of(HUGE_PAGE);
    let start = Instant::now();
    std::thread::scope(|s| {
        for part in mem.chunks_mut(share) {
            s.spawn(move || {
                for page in part.chunks_mut(4096) {
                    page[0] = 1;
                }
            });
        }
    });
    Ok(start.elapsed())
}

/// Two threads' time against one thread's for `mib` MiB of fresh memory each time
/// (0.5 when the host serves two faulting threads as fast as one each; 1.0 when it
/// serves them one after the other). Both mappings exist before either is touched, so
/// the second is not backed by pages the first gave back. `two_first` picks the
/// order, so that runs can alternate it. Memory the host took back a moment ago is
/// what a cold boot gets: run it a few seconds after anything large exited.
pub fn scaling(mib: usize, two_first: bool) -> io::Result<f64> {
    let (mut a, mut b) = (Fresh::new(mib)?, Fresh::new(mib)?);
    let (one, two) = if two_first {
        let two = first_touch(&mut a, 2)?;
        (first_touch(&mut b, 1)?, two)
    } else {
        let one = first_touch(&mut a, 1)?;
        (one, first_touch(&mut b, 2)?)
    };
    Ok(two.as_secs_f64() / one.as_secs_f64().max(1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touches_with_any_number_of_threads_and_refuses_none() {
        for threads in [1, 2, 3] {
            let mut m = Fresh::new(7).unwrap();
            assert!(first_touch(&mut m, threads).is_ok(), "{threads} threads");
            assert!(
                m.map[m.map.as_ptr().align_offset(HUGE_PAGE)..]
                    .iter()
                    .step_by(4096)
                    .take(7 * 256)
                    .all(|&b| b == 1)
            );
        }
        assert!(first_touch(&mut Fresh::new(1).unwrap(), 0).is_err());
        assert!(Fresh::new(0).is_err());
        assert!(Fresh::new(usize::MAX).is_err(), "a size that overflows");
        let s = scaling(8, true).unwrap();
        assert!(s.is_finite() && s > 0.0, "{s}");
    }
}
