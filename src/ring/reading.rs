//! A `Block` subscriber's reads: peek at the frame under its cursor
//! (zero-copy: the caller reads the payload in place), then release it,
//! which publishes the cursor with `Release` and so lets the producer
//! reuse the bytes. Padding and aborted claims are skipped on the way;
//! group members and multi-producer claims not yet committed go to their
//! own paths ([`super::group`], [`super::repair`]).

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::{FrameView, ReadError, Ring};
use crate::layout::{frame, slot, LenType, Owner, Policy, Stamp, StampState};
use crate::mem::Memory;

/// An idle `Block` subscriber of a multi-producer topic looks for a stuck
/// claim once every this many empty polls (and before every sleep).
pub(super) const STUCK_POLLS: u32 = 1024;

/// What [`Ring::peek_fast`] found at a subscriber's cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    /// An ordinary committed message.
    Frame(FrameView),
    /// Nothing committed there yet (single-producer topic).
    Empty,
    /// Something only [`Ring::peek`] handles; with the stamp found at
    /// the cursor, if it was loaded (so `peek` does not load it again).
    Slow(Option<u64>),
}

/// Where a subscriber found its cursor stuck at an uncommitted claim
/// (multi-producer `Block`; see [`Ring::unstick`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stuck {
    /// The cursor position it was stuck at.
    pub(super) at: u64,
    /// When it was first seen stuck there, or last found a live owner (ns).
    pub(super) since_ns: u64,
    /// The end of the unmarked claim found at the last look (0: none yet).
    pub(super) end: u64,
}

/// A subscriber's private state: written only by its own subscriber, in
/// its own memory; the slot's shared words are written from it.
#[derive(Debug)]
pub struct SubState {
    /// Index of the subscriber's slot (fixed for its life).
    pub(super) slot: usize,
    /// Position of the next frame to read. Ahead of the slot's shared
    /// cursor between a [`Ring::consume_unpublished`] and the
    /// [`Ring::release_to`] that publishes it. Group member: the frame it
    /// holds, or [`slot::IDLE`].
    pub(super) cursor: u64,
    /// Sequence number expected next (for loss counting on `Overwrite`,
    /// and for the lag inspectors show).
    pub(super) expected_seq: u64,
    /// Messages received (mirrored to the slot at each release).
    pub(super) received: u64,
    /// Messages lost (`Overwrite`; mirrored to the slot).
    pub(super) lost: u64,
    /// Empty polls since the last stuck-claim check.
    pub(super) idle: u32,
    /// Where the cursor was found stuck, if it is (multi-producer).
    pub(super) stuck: Option<Stuck>,
    /// Group member: slot of its group's record.
    pub(super) group: Option<usize>,
    /// Group member: a dead member's slot whose message it is redelivering.
    pub(super) adopted: Option<usize>,
    /// Group member: when it last looked for dead members (ns; 0: never).
    pub(super) last_check: u64,
    /// This subscriber's attachment: the id it holds a lock for, written
    /// as the owner of its slot (and of a dead member's it adopts).
    pub(super) attach: Owner,
    /// Group member: where poison messages go (see [`super::group`]).
    pub(super) dead_letters: Option<super::group::Sink>,
    /// Group member: a dead member's slot holding a poison message the
    /// dead-letter topic had no room for yet (retried at each take).
    pub(super) bury_pending: Option<usize>,
    /// Reading ahead ([`Ring::consume_ahead`]): the position the slot's
    /// shared cursor was last published at; `None` when it is `cursor`.
    pub(super) ahead: Option<u64>,
}

impl SubState {
    /// The state of a subscriber in `slot` whose cursor is at `cursor`.
    pub(super) fn new(slot: usize, cursor: u64, attach: Owner) -> SubState {
        SubState {
            slot,
            cursor,
            expected_seq: 0,
            received: 0,
            lost: 0,
            idle: 0,
            stuck: None,
            group: None,
            adopted: None,
            last_check: 0,
            attach,
            dead_letters: None,
            bury_pending: None,
            ahead: None,
        }
    }
    /// Sets where this group member sends poison and rejected messages.
    pub fn set_dead_letters(&mut self, sink: Option<super::group::Sink>) {
        self.dead_letters = sink;
    }
    /// This subscriber's attachment id.
    pub fn attachment(&self) -> u64 {
        self.attach.raw()
    }
    /// Index of the subscriber's slot.
    pub fn slot(&self) -> usize {
        self.slot
    }
    /// Position of the next frame to read.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }
    /// Sequence number expected next.
    pub fn expected_seq(&self) -> u64 {
        self.expected_seq
    }
    /// Messages received.
    pub fn received(&self) -> u64 {
        self.received
    }
    /// Messages lost (`Overwrite`).
    pub fn lost(&self) -> u64 {
        self.lost
    }
    /// Position published to the slot: the cursor, or the older one
    /// while frames read ahead are held.
    pub fn released_position(&self) -> u64 {
        self.ahead.unwrap_or(self.cursor)
    }
    /// Whether this is a consumer group member.
    pub fn is_group_member(&self) -> bool {
        self.group.is_some()
    }
}

impl<M: Memory> Ring<M> {
    /// `Block`: the committed frame at the cursor, if any (zero-copy: the
    /// caller reads the payload in place, then calls [`Ring::release`]).
    /// Padding frames are skipped and released on the way.
    #[inline(always)]
    pub fn peek(&self, st: &mut SubState) -> Result<Option<FrameView>, ReadError> {
        match self.peek_fast(st) {
            Fast::Frame(v) => Ok(Some(v)),
            Fast::Empty => Ok(None),
            Fast::Slow(stamp) => self.peek_slow(st, stamp),
        }
    }

    /// The common case of [`Ring::peek`], with no side effect but a
    /// prefetch: an ordinary message at the cursor, or nothing committed
    /// there on a single-producer topic. Everything else (padding, a length
    /// that fails validation, a multi-producer's frame not yet committed, a
    /// group member) is [`Fast::Slow`], for `peek` to handle.
    #[inline(always)]
    pub fn peek_fast(&self, st: &SubState) -> Fast {
        if st.group.is_some() {
            return Fast::Slow(None);
        }
        let pos = st.cursor;
        let off = self.layout.frame_at(pos);
        // Acquire: pairs with the producer's Release stamp store, so the
        // header and payload below are the committed ones.
        let stamp = self.mem.load64(off + frame::STAMP, ord!(Acquire, "stamp_acquire", Relaxed));
        if stamp != Stamp::committed(pos, self.key()).raw() {
            if self.layout.multi_producer {
                return Fast::Slow(Some(stamp));
            }
            self.nothing_yet(off);
            return Fast::Empty;
        }
        // Relaxed: ordered after the Acquire stamp load.
        let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
        match self.frame_len_of(pos, lt) {
            Some(size) if !LenType::from_raw(lt).is_padding() => Fast::Frame(self.view_at(pos, lt, size)),
            _ => Fast::Slow(Some(stamp)),
        }
    }

    /// [`Ring::peek_fast`] and [`Ring::consume_unpublished`] in one loop,
    /// for a subscriber that drains: hands the ordinary messages from the
    /// cursor on to `f`, at most `max`, moving the private cursor past
    /// each (published later, once, by [`Ring::release_to`]). Stops,
    /// leaving the frame for [`Ring::peek`], at the first one the fast path
    /// does not handle: nothing committed, padding, a length that fails
    /// validation, a multi-producer claim. Not for group members (returns
    /// 0). The same accesses, in the same order, as `peek_fast` frame by
    /// frame; one loop, so the per-frame work is only the frame's.
    #[inline(always)]
    pub fn drain_fast(&self, st: &mut SubState, max: usize, mut f: impl FnMut(&FrameView)) -> usize {
        if st.group.is_some() {
            return 0;
        }
        // The geometry, read once: `f` is opaque to the compiler, which
        // would otherwise load these again for every frame.
        let layout = self.layout;
        let key = layout.stamp_key;
        let mut pos = st.cursor;
        let mut n = 0;
        while n < max {
            let off = layout.frame_at(pos);
            // Acquire: pairs with the producer's Release stamp store, so the
            // header and payload below are the committed ones.
            let stamp = self.mem.load64(off + frame::STAMP, ord!(Acquire, "stamp_acquire", Relaxed));
            if stamp != Stamp::committed(pos, key).raw() {
                break;
            }
            // Relaxed: ordered after the Acquire stamp load.
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            let size = match layout.frame_len(pos, LenType::from_raw(lt)) {
                Some(size) if !LenType::from_raw(lt).is_padding() => size,
                _ => break,
            };
            let v = self.view_at_off(pos, off, lt, size);
            f(&v);
            pos = v.next;
            st.expected_seq = v.seq.wrapping_add(1);
            n += 1;
        }
        st.cursor = pos;
        st.received += n as u64;
        n
    }

    /// A subscriber found nothing committed at the frame at `off`. It asks
    /// for the frame's next cache line too, so when the producer commits,
    /// both lines travel to it at once instead of one after the other: one
    /// cross-core transfer saved on a 64-byte message (`shmq bench`: 64 B
    /// one-way p50 1.98 -> 1.62 x the raw cache-line ping-pong when the
    /// two CPUs are far apart, no change in throughput). A hint: it never
    /// faults and changes nothing.
    #[inline(always)]
    pub(super) fn nothing_yet(&self, off: usize) {
        self.mem.prefetch_read(off + 64);
    }

    /// [`Ring::peek`] past what [`Ring::peek_fast`] handles: group members,
    /// multi-producer claims, padding, corrupt lengths. `seen`: the stamp
    /// `peek_fast` loaded at the cursor, if it did.
    #[inline(never)]
    fn peek_slow(&self, st: &mut SubState, mut seen: Option<u64>) -> Result<Option<FrameView>, ReadError> {
        if let Some(g) = st.group {
            return self.group_take(st, g);
        }
        loop {
            let pos = st.cursor;
            let off = self.layout.frame_at(pos);
            // Acquire: pairs with the producer's Release stamp store, so the
            // header and payload below are the committed ones. (The stamp
            // `peek_fast` loaded was loaded the same way.)
            let stamp = match seen.take() {
                Some(s) => s,
                None => self.mem.load64(off + frame::STAMP, ord!(Acquire, "slow_stamp_acquire", Relaxed)),
            };
            if stamp != Stamp::committed(pos, self.key()).raw() {
                if self.layout.multi_producer && self.not_committed_multi(st, stamp)? {
                    continue;
                }
                self.nothing_yet(off);
                return Ok(None);
            }
            // Relaxed: ordered after the Acquire stamp load.
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            let Some(size) = self.frame_len_of(pos, lt) else {
                return Err(ReadError::Corrupt(format!(
                    "frame at position {pos}: length/type word {lt:#x} is invalid"
                )));
            };
            if LenType::from_raw(lt).is_padding() {
                self.release_to(st, pos + size);
                continue;
            }
            return Ok(Some(self.view_at(pos, lt, size)));
        }
    }

    /// `Block`: releases the frame returned by [`Ring::peek`]: the producer
    /// may now reuse its bytes.
    #[inline(always)]
    pub fn release(&self, st: &mut SubState, view: &FrameView) {
        st.received += 1;
        st.expected_seq = view.seq.wrapping_add(1);
        if st.group.is_some() {
            self.group_release(st);
        } else {
            self.release_to(st, view.next);
        }
    }

    /// Moves the subscriber's private cursor past `view`, a frame just read
    /// in place, without publishing it: the producer still sees the old
    /// cursor, so the bytes stay ours. A batch of these ends with one
    /// [`Ring::release_to`] (`Subscriber::drain`), which publishes the
    /// cursor once for the whole batch. Not for group members, whose
    /// messages are released one by one.
    #[inline(always)]
    pub fn consume_unpublished(&self, st: &mut SubState, view: &FrameView) {
        debug_assert!(st.group.is_none());
        st.cursor = view.next;
        st.received += 1;
        st.expected_seq = view.seq.wrapping_add(1);
    }

    /// Moves the subscriber's cursor past `view` and holds it, reading
    /// ahead: unlike [`Ring::consume_unpublished`] the frame stays held
    /// across receives, until [`Ring::release_through`] publishes a
    /// position at or past its end. Not for group members.
    pub fn consume_ahead(&self, st: &mut SubState, view: &FrameView) {
        debug_assert!(st.group.is_none());
        if st.ahead.is_none() {
            st.ahead = Some(st.cursor);
        }
        self.consume_unpublished(st, view);
    }

    /// Publishes the position `next` (sequence number `next_seq` expected
    /// there) of a subscriber reading ahead: the frames before it are
    /// released, the ones from it on stay held. `false`, and nothing done,
    /// unless `next` lies past the published cursor and at or before the
    /// subscriber's own. The store is the one [`Ring::release_to`] makes;
    /// no ordering is added.
    pub fn release_through(&self, st: &mut SubState, next: u64, next_seq: u64) -> bool {
        let Some(published) = st.ahead else {
            return false;
        };
        if next <= published || next > st.cursor {
            return false;
        }
        st.ahead = if next == st.cursor { None } else { Some(next) };
        self.publish_cursor(st, next, next_seq);
        true
    }

    /// Publishes the cursor and wakes a producer waiting for space. While
    /// frames read ahead are held it only moves the private cursor (past
    /// padding, say): [`Ring::release_through`] publishes.
    #[inline(always)]
    pub fn release_to(&self, st: &mut SubState, next: u64) {
        st.cursor = next;
        if st.ahead.is_some() {
            return;
        }
        self.publish_cursor(st, next, st.expected_seq);
    }

    #[inline(always)]
    fn publish_cursor(&self, st: &SubState, next: u64, next_seq: u64) {
        let s = self.layout.slot(st.slot);
        // Relaxed: statistics for inspectors.
        self.mem.store64(s + slot::RECEIVED, st.received, Relaxed);
        self.mem.store64(s + slot::NEXT_SEQ, next_seq, Relaxed);
        // Release: our reads of the frame happen before the producer's
        // overwrite (pairs with its Acquire cursor load).
        self.mem.store64(s + slot::CURSOR, next, ord!(Release, "cursor_relaxed", Relaxed));
        // SeqCst fence (light half, in `wake_space`): pairs with the
        // producer's heavy fence between its waiter increment and its
        // re-scan of cursors.
        self.wake_space();
    }

    /// One non-blocking look for a frame, for either policy.
    #[inline(always)]
    pub fn poll(&self, st: &mut SubState, buf: &mut [u8]) -> Result<Option<FrameView>, ReadError> {
        let got = match self.layout.policy {
            Policy::Block => self.peek(st),
            Policy::Overwrite => self.read_copy(st, buf),
        };
        match got {
            Ok(None) => self.check_closed(st, false).map(|()| None),
            other => other,
        }
    }

    /// Multi-producer `Block`, [`Ring::peek`] found no committed frame at
    /// the cursor (stamp `stamp`): skips an aborted claim, and now and then
    /// looks for a stuck one. Returns whether to look at the cursor again.
    /// Kept out of line: the single-producer hot path never comes here.
    #[cold]
    #[inline(never)]
    fn not_committed_multi(&self, st: &mut SubState, stamp: u64) -> Result<bool, ReadError> {
        let pos = st.cursor;
        let off = self.layout.frame_at(pos);
        if Stamp::state(stamp, pos, self.key()) == StampState::Aborted {
            // Relaxed: ordered after the caller's Acquire stamp load.
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            let Some(size) = self.frame_len_of(pos, lt) else {
                return Err(ReadError::Corrupt(format!(
                    "aborted frame at position {pos}: length/type word {lt:#x} is invalid"
                )));
            };
            self.release_to(st, pos + size);
            return Ok(true);
        }
        st.idle += 1;
        if st.idle >= STUCK_POLLS {
            st.idle = 0;
            return Ok(self.unstick(st));
        }
        Ok(false)
    }
}
