//! Sleeping and waking: both halves of each sleep/wake handshake ("Sleeping"
//! in the `ring` module docs), and the waits that use them.
//!
//! A subscriber that finds nothing spins for a while, then announces itself
//! in the data waiter count, issues the heavy half of a `SeqCst` fence,
//! looks once more, and only then sleeps on the data futex word; a producer
//! after each commit issues the light half and wakes only if the count is
//! non-zero (`Ring::after_commit` in [`super::commit`]). A producer
//! waiting for room does the mirror image with the subscribers' release
//! (`Ring::wake_space`). Every sleep is cut into slices of
//! `SLEEP_SLICE`, so dead peers, timeouts and evictions are noticed.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::{Claim, ClaimError, FrameView, ProducerState, ReadError, Ring, SubState};
use crate::layout::{ctr, wake, Policy};
use crate::mem::Memory;

/// How long a sleeping producer or subscriber waits before looking again
/// (for dead peers, timeouts and evictions).
const SLEEP_SLICE: Duration = Duration::from_millis(50);

/// How long an operation may wait: for room on a full `Block` ring (a
/// publish or reserve), or for a message (a receive).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use shmq::Wait;
/// assert_eq!(Wait::from(Some(Duration::from_millis(5))), Wait::For(Duration::from_millis(5)));
/// assert_eq!(Wait::from(None), Wait::Forever);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wait {
    /// Do not wait: fail at once (`Full`, `Empty`).
    Now,
    /// Wait as long as it takes.
    Forever,
    /// Wait at most this long (`Full`, `Timeout` after it).
    For(Duration),
}

impl From<Option<Duration>> for Wait {
    /// `None` waits forever; `Some(d)` at most `d`.
    fn from(t: Option<Duration>) -> Wait {
        t.map_or(Wait::Forever, Wait::For)
    }
}

impl Wait {
    /// The monotonic deadline of a wait starting at `now_ns` (`None`: no
    /// deadline).
    fn deadline(self, now_ns: impl FnOnce() -> u64) -> Option<u64> {
        match self {
            Wait::Now => Some(0),
            Wait::Forever => None,
            Wait::For(t) => Some(now_ns().saturating_add(t.as_nanos().min(u64::MAX as u128) as u64)),
        }
    }
}

impl<M: Memory> Ring<M> {
    /// Wakes every process sleeping on the futex word at `futex` (the data
    /// or the space word): changes the word, so a sleeper about to compare
    /// it does not sleep, then makes the syscall.
    #[cold]
    #[inline(never)]
    pub(super) fn wake_all(&self, futex: usize) {
        // Relaxed: the futex word only needs to change; the syscall orders.
        self.mem.add32(futex, 1, Relaxed);
        self.mem.wake(futex);
    }

    /// After a cursor moved on: wakes producers waiting for space (light
    /// half of the space handshake, as in [`Ring::release_to`]).
    #[inline(always)]
    pub(super) fn wake_space(&self) {
        fence_sc!(self.mem, light, "space_fence");
        // Relaxed: ordered by the fence.
        if self.mem.load32(wake::SPACE_WAITERS, Relaxed) > 0 {
            self.wake_all(wake::SPACE_FUTEX);
        }
    }

    /// [`Ring::claim`] once the ring was found full and `wait` allows
    /// waiting: spins, then sleeps until a subscriber releases space or the
    /// wait ends; reaps dead subscribers that hold the ring. Kept out of
    /// line, so the publish path stays small.
    #[inline(never)]
    pub(super) fn claim_wait_full(&self, st: &mut ProducerState, len: usize, wait: Wait) -> Result<Claim, ClaimError> {
        // Relaxed: statistics only.
        self.mem.add64(ctr::PRODUCER_WAITS, 1, Relaxed);
        let deadline = wait.deadline(|| self.mem.now_ns());
        let mut step = 0u32;
        loop {
            self.check_liveness(st);
            match self.try_claim(st, len) {
                Err(ClaimError::Full) => {}
                other => return other,
            }
            let Ok(left) = self.time_left(deadline) else {
                return Err(ClaimError::Full);
            };
            if step < self.mem.spin_steps() {
                self.mem.snooze(step);
                step += 1;
                continue;
            }
            // Relaxed: the value is compared by the futex syscall; the
            // fence below orders the re-check.
            let seen = self.mem.load32(wake::SPACE_FUTEX, Relaxed);
            self.mem.add32(wake::SPACE_WAITERS, 1, Relaxed);
            // SeqCst fence (heavy half): pairs with the subscriber's light
            // fence between its cursor release and its waiter-count load.
            fence_sc!(self.mem, heavy, "space_fence");
            st.force_rescan();
            let res = self.try_claim(st, len);
            if !matches!(res, Err(ClaimError::Full)) {
                self.mem.sub32(wake::SPACE_WAITERS, 1, Relaxed);
                return res;
            }
            self.mem.wait(wake::SPACE_FUTEX, seen, Some(left.min(SLEEP_SLICE)));
            self.mem.sub32(wake::SPACE_WAITERS, 1, Relaxed);
        }
    }

    /// Waits for a frame as `wait` says: `Block` peeks, `Overwrite` copies
    /// into `buf`. Spins, then sleeps on the data futex. Returns `Ok(None)`
    /// when the wait ends with nothing (at once for [`Wait::Now`]).
    pub fn wait_frame(&self, st: &mut SubState, buf: &mut [u8], wait: Wait) -> Result<Option<FrameView>, ReadError> {
        if wait == Wait::Now {
            return self.poll(st, buf);
        }
        // Only a wait with a deadline reads the clock: a read costs 20-45 ns
        // in VMs, a fifth of a round trip, and a spinning `recv()` polls in
        // a loop.
        let deadline = wait.deadline(|| self.mem.now_ns());
        let mut step = 0u32;
        loop {
            if let Some(v) = self.poll(st, buf)? {
                return Ok(Some(v));
            }
            let Ok(left) = self.time_left(deadline) else {
                return Ok(None);
            };
            if step < self.mem.spin_steps() {
                self.mem.snooze(step);
                step += 1;
                continue;
            }
            if !self.still_owned(st) {
                return Err(ReadError::Evicted);
            }
            if self.layout.multi_producer && self.layout.policy == Policy::Block && self.unstick(st) {
                continue;
            }
            if self.skip_corrupt_single(st) {
                continue;
            }
            // Relaxed: compared by the futex syscall.
            let seen = self.mem.load32(wake::DATA_FUTEX, Relaxed);
            self.mem.add32(wake::DATA_WAITERS, 1, Relaxed);
            // SeqCst fence (heavy half): pairs with the producer's light
            // post-commit fence.
            fence_sc!(self.mem, heavy, "data_fence");
            let again = self.poll(st, buf);
            if !matches!(again, Ok(None)) {
                self.mem.sub32(wake::DATA_WAITERS, 1, Relaxed);
                return again;
            }
            self.mem.wait(wake::DATA_FUTEX, seen, Some(left.min(SLEEP_SLICE)));
            self.mem.sub32(wake::DATA_WAITERS, 1, Relaxed);
        }
    }
}
