//! The seam between the ring algorithm and the world: where the atomics and
//! the bytes live, how a process sleeps, what time it is, and who is alive.
//!
//! Liveness is the kernel's: every producer and subscriber *attaches*,
//! taking an id and a lock that lives exactly as long as it does (see
//! `segment` for the locks); whether an id's holder is alive is a test of
//! that lock, which any process can make, in any pid namespace. Pids are
//! only for display.
//!
//! [`crate::ring`] is written once against [`Memory`]. In production the
//! implementation is `crate::segment::Segment`: atomics made with
//! `AtomicU64::from_ptr` over a shared mapping, `SYS_futex` for sleeping.
//! Under the `loom` feature, `crate::loom_mem::LoomMem` keeps every control
//! word in a loom atomic and every payload word in a `loom::cell::UnsafeCell`,
//! so the `loom-tests/` crate model-checks the very code that runs in
//! production, including data races on payload bytes.
//!
//! All offsets are byte offsets from the start of the segment. Callers (the
//! ring) guarantee that every offset they pass is in bounds and aligned to
//! the access size; the ring derives offsets only from validated positions
//! and lengths (see `ring` module docs).

use std::sync::atomic::Ordering;
use std::time::Duration;

/// Where the ring's atomics and bytes live. See the module docs.
pub trait Memory {
    /// Atomic load of the u64 at `off`.
    fn load64(&self, off: usize, order: Ordering) -> u64;
    /// Atomic store of the u64 at `off`.
    fn store64(&self, off: usize, val: u64, order: Ordering);
    /// Atomic compare-exchange of the u64 at `off`.
    fn cas64(&self, off: usize, cur: u64, new: u64, ok: Ordering, err: Ordering) -> Result<u64, u64>;
    /// Atomic exchange of the u64 at `off`; returns the previous value.
    fn swap64(&self, off: usize, val: u64, order: Ordering) -> u64;
    /// Atomic fetch-add on the u64 at `off`; returns the previous value.
    fn add64(&self, off: usize, val: u64, order: Ordering) -> u64;
    /// Atomic load of the u32 at `off`.
    fn load32(&self, off: usize, order: Ordering) -> u32;
    /// Atomic store of the u32 at `off`.
    fn store32(&self, off: usize, val: u32, order: Ordering);
    /// Atomic compare-exchange of the u32 at `off`.
    fn cas32(&self, off: usize, cur: u32, new: u32, ok: Ordering, err: Ordering) -> Result<u32, u32>;
    /// Atomic fetch-add on the u32 at `off` (wrapping); returns the previous value.
    fn add32(&self, off: usize, val: u32, order: Ordering) -> u32;
    /// Atomic fetch-sub on the u32 at `off` (wrapping); returns the previous value.
    fn sub32(&self, off: usize, val: u32, order: Ordering) -> u32;
    /// A memory fence.
    fn fence(&self, order: Ordering);
    /// The cheap half of an asymmetric `SeqCst` fence, for the hot paths
    /// (after a commit, after a release). Pairs with [`Memory::fence_heavy`]
    /// in another process: together they order like two `SeqCst` fences.
    fn fence_light(&self) {
        self.fence(Ordering::SeqCst)
    }
    /// The expensive half, for the rare paths (about to sleep, joining).
    fn fence_heavy(&self) {
        self.fence(Ordering::SeqCst)
    }

    /// Copies `src` to `off`, where the caller owns the bytes (no concurrent
    /// reader: `Block` policy, bytes inside this producer's claim).
    ///
    /// # Safety
    /// `off..off + src.len()` is in bounds, 8-aligned at `off`, inside a
    /// claim of the calling producer that no subscriber cursor covers.
    unsafe fn write(&self, off: usize, src: &[u8]);
    /// Copies bytes at `off` into `dst`, where the caller has acquired them
    /// (a committed frame at or after this subscriber's published cursor).
    ///
    /// # Safety
    /// `off..off + dst.len()` is in bounds, 8-aligned at `off`, inside a
    /// committed frame that no producer may write while the caller's cursor
    /// covers it.
    unsafe fn read(&self, off: usize, dst: &mut [u8]);
    /// Copies `src` to `off` while subscribers may be reading the same bytes
    /// (`Overwrite` policy). Readers validate afterwards (seqlock).
    ///
    /// # Safety
    /// `off..off + src.len()` is in bounds and 8-aligned at `off`, and is
    /// inside this producer's claim.
    unsafe fn write_racy(&self, off: usize, src: &[u8]);
    /// Copies bytes at `off` into `dst` while a producer may be overwriting
    /// them; the result is only meaningful after validation. Uses atomic
    /// word loads (or, for a large copy on x86-64, a `rep movsb` in
    /// assembly that ends with `lfence`: see `segment/memory.rs`), so it is
    /// never a data race, and every load of the copy is done before the
    /// caller's next load.
    ///
    /// The caller guarantees `off..off + align8(dst.len())` is in bounds and
    /// `off` is 8-aligned.
    fn read_racy(&self, off: usize, dst: &mut [u8]);

    /// Sleeps while the u32 at `off` equals `expected`, at most `timeout`
    /// (or until woken). Spurious returns are allowed.
    fn wait(&self, off: usize, expected: u32, timeout: Option<Duration>);
    /// Wakes every process sleeping on the u32 at `off`.
    fn wake(&self, off: usize);
    /// One step of a spin/yield back-off before sleeping.
    fn snooze(&self, step: u32);
    /// How many [`Memory::snooze`] steps a waiter takes before it sleeps.
    fn spin_steps(&self) -> u32 {
        64
    }

    /// Hint: this process will soon read the cache line holding `off`.
    /// Never faults and changes no memory; a no-op where unsupported.
    fn prefetch_read(&self, _off: usize) {}

    /// Monotonic clock in nanoseconds (`CLOCK_MONOTONIC`).
    fn now_ns(&self) -> u64;

    /// Makes a new attachment: takes the next id from the topic's counter
    /// (`hdr::ATTACH_SEQ`) and a lock that the kernel holds for this
    /// attachment until [`Memory::detach`] or until the process exits or
    /// `exec`s. `Err` says why no lock could be had (out of descriptors).
    fn attach(&self) -> Result<u64, String>;
    /// Gives up attachment `id` (made by this handle): its lock is dropped.
    fn detach(&self, id: u64);
    /// Whether attachment `id`'s holder is alive (its lock is held). Id 0
    /// is nobody. When the kernel cannot answer, says alive: nothing is
    /// ever taken from a process that might live.
    fn alive(&self, id: u64) -> bool;
    /// Makes attachment `id` (made by this handle) hold the producers lock
    /// too, until it is detached: [`Memory::producers_alive`] sees it.
    fn hold_producer(&self, id: u64);
    /// Whether any attached producer is alive (in any process). When the
    /// kernel cannot answer, says alive: no stream is taken for closed on
    /// a guess.
    fn producers_alive(&self) -> bool;
    /// Tries to take the names lock (without waiting); `false` if another
    /// process or thread holds it. A holder that dies drops it.
    fn try_lock_names(&self) -> bool;
    /// Releases the names lock taken by [`Memory::try_lock_names`].
    fn unlock_names(&self);
    /// The calling process's pid, for display (in its own pid namespace).
    fn pid(&self) -> u32;
}

/// Plain process-local memory behind the seam, for unit tests of the
/// ring's arithmetic (no mapping, no other process).
#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    use std::time::Duration;

    use super::Memory;

    /// Zeroed words; every peer is alive and time is the real clock.
    #[derive(Debug)]
    pub(crate) struct Plain(Box<[AtomicU64]>);

    impl Plain {
        /// `len` bytes (rounded up to whole words).
        pub(crate) fn new(len: usize) -> Plain {
            Plain((0..len.div_ceil(8)).map(|_| AtomicU64::new(0)).collect())
        }
        fn w(&self, off: usize) -> &AtomicU64 {
            assert_eq!(off % 8, 0, "unaligned u64 access");
            &self.0[off / 8]
        }
        fn h(&self, off: usize) -> &AtomicU32 {
            assert_eq!(off % 4, 0, "unaligned u32 access");
            let w = self.w(off & !7);
            // SAFETY: the u64 word is live as long as `self`, aligned to 8,
            // so either 4-byte half is an aligned u32 inside it; every access
            // to it is atomic.
            unsafe { AtomicU32::from_ptr(w.as_ptr().cast::<u32>().add((off % 8) / 4)) }
        }
    }

    impl Memory for Plain {
        fn load64(&self, off: usize, o: Ordering) -> u64 {
            self.w(off).load(o)
        }
        fn store64(&self, off: usize, v: u64, o: Ordering) {
            self.w(off).store(v, o)
        }
        fn cas64(&self, off: usize, c: u64, n: u64, s: Ordering, f: Ordering) -> Result<u64, u64> {
            self.w(off).compare_exchange(c, n, s, f)
        }
        fn swap64(&self, off: usize, v: u64, o: Ordering) -> u64 {
            self.w(off).swap(v, o)
        }
        fn add64(&self, off: usize, v: u64, o: Ordering) -> u64 {
            self.w(off).fetch_add(v, o)
        }
        fn load32(&self, off: usize, o: Ordering) -> u32 {
            self.h(off).load(o)
        }
        fn store32(&self, off: usize, v: u32, o: Ordering) {
            self.h(off).store(v, o)
        }
        fn cas32(&self, off: usize, c: u32, n: u32, s: Ordering, f: Ordering) -> Result<u32, u32> {
            self.h(off).compare_exchange(c, n, s, f)
        }
        fn add32(&self, off: usize, v: u32, o: Ordering) -> u32 {
            self.h(off).fetch_add(v, o)
        }
        fn sub32(&self, off: usize, v: u32, o: Ordering) -> u32 {
            self.h(off).fetch_sub(v, o)
        }
        fn fence(&self, o: Ordering) {
            std::sync::atomic::fence(o)
        }
        unsafe fn write(&self, off: usize, src: &[u8]) {
            // SAFETY: the same contract as ours; every access is atomic here.
            unsafe { self.write_racy(off, src) }
        }
        unsafe fn read(&self, off: usize, dst: &mut [u8]) {
            self.read_racy(off, dst)
        }
        unsafe fn write_racy(&self, off: usize, src: &[u8]) {
            for (i, chunk) in src.chunks(8).enumerate() {
                let mut w = self.load64(off + 8 * i, Ordering::Relaxed).to_le_bytes();
                w[..chunk.len()].copy_from_slice(chunk);
                self.store64(off + 8 * i, u64::from_le_bytes(w), Ordering::Relaxed);
            }
        }
        fn read_racy(&self, off: usize, dst: &mut [u8]) {
            for (i, chunk) in dst.chunks_mut(8).enumerate() {
                let w = self.load64(off + 8 * i, Ordering::Relaxed).to_le_bytes();
                chunk.copy_from_slice(&w[..chunk.len()]);
            }
        }
        fn wait(&self, _off: usize, _expected: u32, timeout: Option<Duration>) {
            std::thread::sleep(timeout.unwrap_or(Duration::from_millis(1)).min(Duration::from_millis(1)));
        }
        fn wake(&self, _off: usize) {}
        fn snooze(&self, _step: u32) {
            std::hint::spin_loop();
        }
        fn now_ns(&self) -> u64 {
            crate::sys::monotonic_ns()
        }
        fn attach(&self) -> Result<u64, String> {
            Ok(self.add64(crate::layout::hdr::ATTACH_SEQ, 1, Ordering::Relaxed) + 1)
        }
        fn detach(&self, _id: u64) {}
        fn alive(&self, id: u64) -> bool {
            id != 0
        }
        fn hold_producer(&self, _id: u64) {}
        fn producers_alive(&self) -> bool {
            true
        }
        fn try_lock_names(&self) -> bool {
            true
        }
        fn unlock_names(&self) {}
        fn pid(&self) -> u32 {
            std::process::id()
        }
    }
}
