//! End of stream: a producer (or `shmq close`) marks the stream closed
//! after the messages already published, and a subscriber that has
//! received all of them is told [`ReadError::Closed`] instead of waiting.
//!
//! The mark is one header word, `hdr::CLOSED_AT`: the position of the
//! stream's end at the close, plus one (0: never closed). A subscriber is
//! at the end of a closed stream when nothing is committed at its read
//! position and that position is the closed end. No ordering is needed to
//! publish the mark itself: a subscriber whose position *is* the closed end
//! has read every message before it (each through its own stamp), and one
//! that sees a stale mark only waits a little longer, because the close
//! then wakes it. What is needed is that wake: the close stores the mark,
//! issues a `SeqCst` fence and bumps and wakes the data futex, the mirror
//! of a sleeping subscriber's "count myself, fence, look again" (loom
//! scenario `close_wakes_a_sleeping_subscriber`, mutations `close_fence`
//! and `close_no_wake`).
//!
//! A message published after a close reopens the stream: its end moves
//! past the mark, so subscribers that were told `Closed` receive it next.
//!
//! A topic created with `close_on_exit` also counts as closed at the end
//! when no producer is attached and one ever was: every producer holds the
//! producers lock (`lock::PRODUCERS`, a kernel lock, dropped even by
//! SIGKILL), and `hdr::HAD_PRODUCER` is set after the first producer took
//! it (`Release`, paired with the subscriber's `Acquire` before it tests
//! the lock: mutation `had_producer_relaxed`). Testing the lock is a system
//! call, so subscribers make it only where they would otherwise sleep, and
//! every 4096 empty polls of `try_recv`.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

use super::{ReadError, Ring, SubState};
use crate::layout::{hdr, prod, slot, wake};
use crate::mem::Memory;

impl<M: Memory> Ring<M> {
    /// Closes the stream after everything published so far, and wakes the
    /// subscribers that sleep.
    pub fn close(&self) {
        let end = self.load_pos(prod::TAIL, Relaxed);
        // Relaxed: see the module docs (the fence and wake below order it).
        self.mem.store64(hdr::CLOSED_AT, end + 1, Relaxed);
        // SeqCst fence: pairs with the heavy fence of a subscriber going to
        // sleep, which counts itself, fences, then looks at the mark.
        #[cfg(not(shmq_mutation = "close_fence"))]
        self.mem.fence(SeqCst);
        #[cfg(not(shmq_mutation = "close_no_wake"))]
        self.wake_all(wake::DATA_FUTEX);
    }

    /// Marks that a producer is attached (`attach_producer`, after it took
    /// the producers lock).
    pub(super) fn note_producer(&self, id: u64) {
        self.mem.hold_producer(id);
        // Release: publishes the lock taken above to a subscriber that
        // reads the flag (Acquire) and then tests the lock.
        self.mem.store32(hdr::HAD_PRODUCER, 1, ord!(Release, "had_producer_relaxed", Relaxed));
    }

    /// Whether the stream was closed by a close (not a gone producer) at
    /// position `pos`.
    #[inline]
    pub(super) fn closed_mark_at(&self, pos: u64) -> bool {
        // Relaxed: see the module docs.
        self.mem.load64(hdr::CLOSED_AT, Relaxed) == pos.wrapping_add(1)
    }

    /// Whether a `close_on_exit` stream has lost its last producer and the
    /// reader at `pos` has read to its end. A system call: slow paths only.
    pub(super) fn closed_by_exit_at(&self, pos: u64) -> bool {
        // Acquire: pairs with `note_producer`'s Release, so a producer whose
        // flag we see holds a lock we see too (mutation `had_producer_relaxed`).
        self.layout.close_on_exit
            && self.mem.load32(hdr::HAD_PRODUCER, ord!(Acquire, "had_producer_relaxed", Relaxed)) == 1
            && pos == self.load_pos(prod::TAIL, Relaxed)
            && !self.mem.producers_alive()
    }

    /// The position a subscriber reads next (a group member: its group's).
    fn read_pos(&self, st: &SubState) -> u64 {
        match st.group {
            // Relaxed: compared with the closed mark only.
            Some(g) => self.load_pos(self.layout.slot(g) + slot::CURSOR, Relaxed),
            None => st.cursor,
        }
    }

    /// Nothing is committed at the subscriber's read position: `Closed` if
    /// that is the end of a closed stream; `deep` also asks whether the
    /// last producer of a `close_on_exit` stream is gone (a system call).
    pub fn check_closed(&self, st: &SubState, deep: bool) -> Result<(), ReadError> {
        let pos = self.read_pos(st);
        if self.closed_mark_at(pos) || (deep && self.closed_by_exit_at(pos)) {
            return Err(ReadError::Closed);
        }
        Ok(())
    }

    /// Whether a passive reader at `pos` (which has read everything before
    /// it) is at the end of a closed stream, either way.
    pub fn is_closed_at(&self, pos: u64) -> bool {
        self.closed_mark_at(pos) || self.closed_by_exit_at(pos)
    }

    /// Whether the stream is closed now, as `shmq info` shows it: by a
    /// close at its end, or (a `close_on_exit` topic) by its last producer
    /// gone.
    pub fn is_closed(&self) -> bool {
        self.is_closed_at(self.load_pos(prod::TAIL, Relaxed))
    }
}
