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
            match self.park_space(st, len)? {
                Parked::Ready(claim) => return Ok(claim),
                Parked::Wait(seen) => {
                    self.mem.wait(wake::SPACE_FUTEX, seen, Some(left.min(SLEEP_SLICE)));
                    self.unpark_space();
                }
            }
        }
    }

    /// The producer's half of the space handshake, up to the sleep: reaps
    /// dead subscribers when due, counts itself among the space waiters,
    /// issues the heavy fence and tries once more. `Ready` if room (or an
    /// error other than `Full`) came meanwhile; else `Wait(seen)`: the
    /// caller must sleep on [`wake::SPACE_FUTEX`] expecting `seen` (or
    /// have a waker thread do so) and then call [`Ring::unpark_space`]
    /// exactly once. Shared by the blocking wait and the async one, so
    /// both rest on the handshake loom checks (`producer_sleep_never_misses_a_release`).
    pub fn park_space(&self, st: &mut ProducerState, len: usize) -> Result<Parked<Claim>, ClaimError> {
        self.check_liveness(st);
        match self.try_claim(st, len) {
            Err(ClaimError::Full) => {}
            other => return other.map(Parked::Ready),
        }
        // Relaxed: the value is compared by the futex syscall; the
        // fence below orders the re-check.
        let seen = self.mem.load32(wake::SPACE_FUTEX, Relaxed);
        self.mem.add32(wake::SPACE_WAITERS, 1, Relaxed);
        // SeqCst fence (heavy half): pairs with the subscriber's light
        // fence between its cursor release and its waiter-count load.
        fence_sc!(self.mem, heavy, "space_fence");
        st.force_rescan();
        match self.try_claim(st, len) {
            Err(ClaimError::Full) => Ok(Parked::Wait(seen)),
            other => {
                self.unpark_space();
                other.map(Parked::Ready)
            }
        }
    }

    /// Ends a wait [`Ring::park_space`] began.
    pub fn unpark_space(&self) {
        self.mem.sub32(wake::SPACE_WAITERS, 1, Relaxed);
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
            match self.park_data(st, buf)? {
                Parked::Ready(v) => return Ok(Some(v)),
                Parked::Wait(seen) => {
                    self.mem.wait(wake::DATA_FUTEX, seen, Some(left.min(SLEEP_SLICE)));
                    self.unpark_data();
                }
            }
        }
    }

    /// The subscriber's half of the data handshake, up to the sleep: the
    /// checks a waiting subscriber makes (evicted, a stuck multi-producer
    /// claim, a corrupt frame), then it counts itself among the data
    /// waiters, issues the heavy fence and polls once more. `Ready` if a
    /// frame came meanwhile; else `Wait(seen)`: the caller must sleep on
    /// [`wake::DATA_FUTEX`] expecting `seen` (or have a waker thread do
    /// so) and then call [`Ring::unpark_data`] exactly once. Shared by the
    /// blocking wait and the async one, so both rest on the handshake loom
    /// checks (`subscriber_sleep_never_misses_a_wake`).
    pub fn park_data(&self, st: &mut SubState, buf: &mut [u8]) -> Result<Parked<FrameView>, ReadError> {
        if !self.still_owned(st) {
            return Err(ReadError::Evicted);
        }
        // Before sleeping: has a close-on-exit stream lost its last producer?
        self.check_closed(st, true)?;
        let stuck = self.layout.multi_producer && self.layout.policy == Policy::Block && self.unstick(st);
        if stuck || self.skip_corrupt_single(st) {
            if let Some(v) = self.poll(st, buf)? {
                return Ok(Parked::Ready(v));
            }
        }
        // Relaxed: compared by the futex syscall.
        let seen = self.mem.load32(wake::DATA_FUTEX, Relaxed);
        self.mem.add32(wake::DATA_WAITERS, 1, Relaxed);
        // SeqCst fence (heavy half): pairs with the producer's light
        // post-commit fence.
        fence_sc!(self.mem, heavy, "data_fence");
        match self.poll(st, buf) {
            Ok(None) => Ok(Parked::Wait(seen)),
            Ok(Some(v)) => {
                self.unpark_data();
                Ok(Parked::Ready(v))
            }
            Err(e) => {
                self.unpark_data();
                Err(e)
            }
        }
    }

    /// Ends a wait [`Ring::park_data`] began.
    pub fn unpark_data(&self) {
        self.mem.sub32(wake::DATA_WAITERS, 1, Relaxed);
    }
}

/// What [`Ring::park_data`] and [`Ring::park_space`] found.
#[derive(Debug)]
pub enum Parked<T> {
    /// What the wait was for came (no wait, nothing to undo).
    Ready(T),
    /// Counted among the waiters: wait on the futex word expecting this
    /// value, then unpark.
    Wait(u32),
}
