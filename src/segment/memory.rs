//! The production [`Memory`]: atomics and copies on the mapping, futex
//! waits and wakes, fences, and the kernel locks that say who is alive
//! (attachments, the names lock, the producers lock).

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Segment;
use crate::layout::{hdr, lock};
use crate::mem::Memory;
use crate::sys;

/// Steps of a waiter's spin phase (see `snooze`), then of its yield phase,
/// before it sleeps on a futex.
const SPIN_STEPS: u32 = 160;
const YIELD_STEPS: u32 = 54;

/// From this many bytes on, [`Memory::read_racy`] copies with one `rep
/// movsb` instead of word by word: atomic loads are never merged or
/// vectorised, so the word loop moved a large Overwrite message at a
/// fraction of memcpy's speed. Below it the instruction's start-up costs
/// more than the loop.
#[cfg(target_arch = "x86_64")]
const RACY_BULK_MIN: usize = 256;

/// Copies `len` bytes from `src`, shared memory another process may be
/// writing meanwhile, to `dst`. The copy may be torn: the caller validates
/// it afterwards (the seqlock in `ring::overwrite`). In assembly, because a
/// Rust copy racing with a writer is a data race: `rep movsb` reads every
/// source byte as a relaxed atomic byte load would, in no particular order
/// or width (what RFC 3301's byte-wise atomic memcpy specifies), at the
/// speed of the CPU's fast string copy.
///
/// The seqlock needs every load of the copy to come before the caller's
/// next load of the tail. x86 keeps ordinary loads in order, but Intel
/// documents a fast string operation's accesses as done line by line, out
/// of order, and does not say that its loads stay ordered with later
/// ones. So the block ends with `lfence`: no later instruction starts
/// until every load before it has its data. Without `nomem` the block is
/// also a compiler barrier.
///
/// # Safety
/// `src` and `dst` are valid for `len` bytes (reads and writes), and the
/// ranges do not overlap.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn racy_bulk_copy(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: the caller's contract; the direction flag is clear on entry
    // to an asm block (Rust's inline assembly rules), so `rep movsb`
    // copies forward; `lfence` touches no memory and no flags.
    unsafe {
        std::arch::asm!(
            "rep movsb",
            "lfence",
            inout("rcx") len => _,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            options(nostack, preserves_flags)
        );
    }
}

impl Memory for Segment {
    #[inline]
    fn load64(&self, off: usize, order: Ordering) -> u64 {
        self.a64(off).load(order)
    }
    #[inline]
    fn store64(&self, off: usize, val: u64, order: Ordering) {
        self.a64(off).store(val, order)
    }
    #[inline]
    fn cas64(&self, off: usize, cur: u64, new: u64, ok: Ordering, err: Ordering) -> Result<u64, u64> {
        self.a64(off).compare_exchange(cur, new, ok, err)
    }
    #[inline]
    fn swap64(&self, off: usize, val: u64, order: Ordering) -> u64 {
        self.a64(off).swap(val, order)
    }
    #[inline]
    fn add64(&self, off: usize, val: u64, order: Ordering) -> u64 {
        self.a64(off).fetch_add(val, order)
    }
    #[inline]
    fn load32(&self, off: usize, order: Ordering) -> u32 {
        self.a32(off).load(order)
    }
    #[inline]
    fn store32(&self, off: usize, val: u32, order: Ordering) {
        self.a32(off).store(val, order)
    }
    #[inline]
    fn cas32(&self, off: usize, cur: u32, new: u32, ok: Ordering, err: Ordering) -> Result<u32, u32> {
        self.a32(off).compare_exchange(cur, new, ok, err)
    }
    #[inline]
    fn add32(&self, off: usize, val: u32, order: Ordering) -> u32 {
        self.a32(off).fetch_add(val, order)
    }
    #[inline]
    fn sub32(&self, off: usize, val: u32, order: Ordering) -> u32 {
        self.a32(off).fetch_sub(val, order)
    }
    #[inline]
    fn fence(&self, order: Ordering) {
        std::sync::atomic::fence(order)
    }
    #[inline]
    fn fence_light(&self) {
        if self.asymmetric {
            // The heavy half (membarrier in the other process) makes our
            // CPU execute the barrier; we only stop the compiler from
            // moving accesses across this point.
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
        } else {
            std::sync::atomic::fence(Ordering::SeqCst);
        }
    }
    #[inline]
    fn fence_heavy(&self) {
        if self.asymmetric {
            sys::heavy_fence();
        } else {
            std::sync::atomic::fence(Ordering::SeqCst);
        }
    }
    #[inline]
    unsafe fn write(&self, off: usize, src: &[u8]) {
        debug_assert!(off + src.len() <= self.len);
        // SAFETY: the caller guarantees the range is in bounds and owned by
        // this producer's claim (no concurrent reader or writer).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.base().add(off), src.len()) }
    }
    #[inline]
    unsafe fn read(&self, off: usize, dst: &mut [u8]) {
        debug_assert!(off + dst.len() <= self.len);
        // SAFETY: the caller guarantees the range is in bounds and covered by
        // its cursor, so no producer writes it concurrently.
        unsafe { std::ptr::copy_nonoverlapping(self.base().add(off), dst.as_mut_ptr(), dst.len()) }
    }
    #[inline]
    unsafe fn write_racy(&self, off: usize, src: &[u8]) {
        debug_assert!(off + src.len() <= self.len);
        // Readers in other processes may copy these bytes concurrently with
        // atomic word loads; they discard the copy unless validation proves
        // we had not started overwriting it (seqlock, the compromise
        // crossbeam's AtomicCell makes too).
        // SAFETY: in bounds by the caller's contract; racing readers never trust these bytes unvalidated.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.base().add(off), src.len()) }
    }
    #[inline]
    fn read_racy(&self, off: usize, dst: &mut [u8]) {
        debug_assert!(off + dst.len() <= self.len);
        #[cfg(target_arch = "x86_64")]
        if dst.len() >= RACY_BULK_MIN {
            // SAFETY: the ring passes an in-bounds range of the mapping
            // (a validated frame's payload), and `dst` is ours: neither
            // overlaps the other.
            unsafe { racy_bulk_copy(self.base().add(off), dst.as_mut_ptr(), dst.len()) };
            return;
        }
        let mut chunks = dst.chunks_exact_mut(8);
        let mut word = off;
        for c in &mut chunks {
            // Relaxed: the caller validates the copy afterwards (seqlock).
            c.copy_from_slice(&self.a64(word).load(Ordering::Relaxed).to_le_bytes());
            word += 8;
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            // Frames are padded to 32 bytes, so the whole last word is ours.
            let w = self.a64(word).load(Ordering::Relaxed).to_le_bytes();
            rest.copy_from_slice(&w[..rest.len()]);
        }
    }
    fn wait(&self, off: usize, expected: u32, timeout: Option<Duration>) {
        sys::futex_wait(self.a32(off), expected, timeout)
    }
    fn wake(&self, off: usize) {
        sys::futex_wake(self.a32(off))
    }
    #[inline]
    fn snooze(&self, step: u32) {
        // Short, even pauses while spinning: how long a waiter takes to see
        // a message that arrives while it spins is about one pause burst,
        // so bursts doubling up to 64 pauses made a blocking `recv()` 1.8x
        // slower than busy-polling `try_recv` in a ping-pong (`shmq bench`
        // 64 B one-way p50 185-240 ns against 105); two pauses: 150 ns. The
        // spin phase lasts as long as before (about 320 pauses), then the
        // waiter yields, then sleeps on the futex.
        if step < SPIN_STEPS {
            for _ in 0..(1 + step.min(1)) {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
    }
    fn spin_steps(&self) -> u32 {
        SPIN_STEPS + YIELD_STEPS
    }
    #[inline]
    fn now_ns(&self) -> u64 {
        sys::monotonic_ns()
    }
    #[inline(always)]
    fn prefetch_read(&self, off: usize) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch never faults, even on an invalid address, and changes no memory.
        unsafe {
            std::arch::asm!("prefetcht0 [{}]", in(reg) self.base().wrapping_add(off), options(nostack, readonly, preserves_flags))
        }
    }
    fn attach(&self) -> Result<u64, String> {
        for _ in 0..8 {
            // Relaxed: only the RMW's uniqueness matters.
            let id = self.add64(hdr::ATTACH_SEQ, 1, Ordering::Relaxed).wrapping_add(1);
            if id == 0 {
                continue;
            }
            let fd = self.reopen().map_err(|e| format!("opening a lock descriptor of the topic file: {e}"))?;
            match sys::ofd_lock(fd.as_raw_fd(), lock::attachment(id), false) {
                Ok(true) => {
                    self.attachments().insert(id, fd);
                    return Ok(id);
                }
                // Held: the counter was set back (a corrupt or restored
                // file); take the next id.
                Ok(false) => continue,
                Err(e) => return Err(format!("locking the topic file: {e}")),
            }
        }
        Err("every attachment id offered is in use: the topic's attachment counter is corrupt".into())
    }
    fn detach(&self, id: u64) {
        // Closing the descriptor drops the lock (unless a forked child
        // shares it: then the child's copy keeps it, and the slot it
        // guarded, already given back, no longer asks).
        drop(self.attachments().remove(&id));
    }
    fn alive(&self, id: u64) -> bool {
        if id == 0 {
            return false;
        }
        if self.attachments().contains_key(&id) {
            return true;
        }
        // When the kernel cannot answer, alive: never take from the living.
        sys::ofd_held(self.file.as_raw_fd(), lock::attachment(id), false).unwrap_or(true)
    }
    fn hold_producer(&self, id: u64) {
        if let Some(fd) = self.attachments().get(&id) {
            // A shared lock through the attachment's own descriptor: dropped
            // with it (detach, exit, exec, SIGKILL). A failure leaves the
            // producer unseen by `producers_alive`; it only matters to a
            // close-on-exit topic, whose subscribers then see the stream
            // closed while this producer lives, until it publishes.
            let _ = sys::ofd_lock(fd.as_raw_fd(), lock::PRODUCERS, true);
        }
    }
    fn producers_alive(&self) -> bool {
        // A write-lock test conflicts with any producer's shared lock (this
        // descriptor holds none).
        sys::ofd_held(self.file.as_raw_fd(), lock::PRODUCERS, false).unwrap_or(true)
    }
    fn try_lock_names(&self) -> bool {
        // Acquire: pairs with the Release below, between threads of this
        // process sharing this handle (the kernel lock orders processes).
        if self.names_held.swap(true, Ordering::Acquire) {
            return false;
        }
        match sys::ofd_lock(self.file.as_raw_fd(), lock::NAMES, false) {
            Ok(true) => true,
            Ok(false) => {
                self.names_held.store(false, Ordering::Release);
                false
            }
            // A descriptor that cannot lock (read-only): threads of this
            // process are still excluded; nothing else can create names
            // through it.
            Err(_) => true,
        }
    }
    fn unlock_names(&self) {
        sys::ofd_unlock(self.file.as_raw_fd(), lock::NAMES);
        // Release: what we did under the lock happens before the next
        // holder in this process.
        self.names_held.store(false, Ordering::Release);
    }
    fn pid(&self) -> u32 {
        // A getpid syscall: called only when attaching, never per message.
        std::process::id()
    }
}
