//! The seam between the ring algorithm and the world: where the atomics and
//! the bytes live, how a process sleeps, what time it is and whether a peer
//! process is still alive.
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
    /// word loads, so it is never a data race.
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
    /// Whether the process `pid`, started at `start` (clock ticks since
    /// boot), still runs.
    fn is_alive(&self, pid: u32, start: u64) -> bool;
    /// The calling process's `(pid, start time)`.
    fn self_id(&self) -> (u32, u64);
}
