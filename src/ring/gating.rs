//! `Block` gating: a producer may not claim past the slowest active
//! cursor plus the capacity. It caches that minimum in its
//! [`ProducerState`] and rescans the subscriber table only when the cache
//! says "full" or a subscriber joined (the join epoch changed): see
//! "`Block`: gating on the slowest cursor" in the `ring` module docs, which
//! also describes the join handshake implemented here. Leaving frees the
//! slot (a durable subscriber only detaches).

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::{JoinError, ProducerState, Ring, SubState, NO_SUBSCRIBER};
use crate::layout::{prod, slot, Owner, Policy, SlotName};
use crate::mem::Memory;
use crate::start::Start;

impl<M: Memory> Ring<M> {
    /// Minimum cursor over active subscribers, or [`NO_SUBSCRIBER`].
    pub(super) fn scan_min_cursor(&self, tail: u64) -> u64 {
        let mut min = NO_SUBSCRIBER;
        // Group members last: a member announces the frame it takes in its
        // cursor before it CASes the group's cursor past it (Release), so
        // a scan that has read the group cursor with Acquire sees the
        // member's announcement.
        for members in [false, true] {
            min = min.min(self.scan_pass(tail, members));
        }
        min
    }

    fn scan_pass(&self, tail: u64, members: bool) -> u64 {
        let mut min = NO_SUBSCRIBER;
        for i in 0..self.layout.max_subscribers as usize {
            let s = self.layout.slot(i);
            // Acquire: pairs with the Release that freed a slot (a
            // subscriber leaving, a group member releasing a dead member's
            // redelivered message), so what they read happens before we
            // overwrite it; and with the Release store of ACTIVE, which
            // follows a joiner's first cursor store (for a joiner that is
            // only defensive: its epoch increment publishes the same).
            if self.mem.load32(s + slot::STATE, ord!(Acquire, "scan_state_acquire", Relaxed)) != slot::state::ACTIVE {
                continue;
            }
            // Relaxed: set before ACTIVE was published (Acquire above).
            if (self.mem.load32(s + slot::FLAGS, Relaxed) & slot::flags::MEMBER != 0) != members {
                continue;
            }
            // Acquire: pairs with the subscriber's Release cursor store on
            // release, so its reads of the bytes happen before our overwrite.
            let c = self.load_pos(s + slot::CURSOR, ord!(Acquire, "cursor_relaxed", Relaxed));
            // A cursor ahead of the tail is corrupt; treat it as caught up.
            min = min.min(c.min(tail));
        }
        min
    }

    /// Whether a claim ending at `end` fits under the gating cursor.
    #[inline(always)]
    pub(super) fn gate_ok(&self, st: &mut ProducerState, end: u64, tail: u64) -> bool {
        if self.layout.policy == Policy::Overwrite {
            return true;
        }
        if !st.rescan && (st.cached_min == NO_SUBSCRIBER || end <= st.cached_min + self.cap()) {
            return true;
        }
        // Acquire: pairs with the joining subscriber's Release increment, so
        // a scan that follows a new epoch sees that subscriber's slot. (With
        // Relaxed, loom found the producer recording the new epoch, missing
        // the slot, and never rescanning: `join_and_leave_while_publishing`.)
        st.epoch = self.mem.load64(prod::JOIN_EPOCH, ord!(Acquire, "epoch_relaxed", Relaxed));
        st.rescan = false;
        st.cached_min = self.scan_min_cursor(tail);
        st.cached_min == NO_SUBSCRIBER || end <= st.cached_min + self.cap()
    }

    /// Takes a free subscriber slot and positions the cursor. `name` is
    /// stored for inspection (at most 32 bytes are kept).
    pub fn join(&self, start: Start, name: &[u8]) -> Result<SubState, JoinError> {
        let id = Owner::from_raw(self.mem.attach().map_err(JoinError::Attach)?);
        self.join_as(start, name, 0, id).ok_or_else(|| {
            self.mem.detach(id.raw());
            JoinError::NoFreeSlot
        })
    }

    /// Takes a free slot (reaping dead subscribers if none is free) and
    /// fills in everything but its state, cursor and expected sequence:
    /// `owner` (an attachment id, or none for a group's record), this
    /// process's pid for display, `flags`, zeroed counters and `name`.
    /// Returns the slot's index; the caller publishes the slot with a
    /// Release store of `ACTIVE`.
    pub(super) fn take_slot(&self, flags: u32, name: &SlotName, owner: Owner) -> Option<usize> {
        let i = self.claim_slot().or_else(|| {
            self.reap_dead();
            self.claim_slot()
        })?;
        let s = self.layout.slot(i);
        // Relaxed: published by the caller's Release store of ACTIVE.
        self.mem.store64(s + slot::OWNER, owner.raw(), Relaxed);
        self.mem.store64(s + slot::PID, self.mem.pid() as u64, Relaxed);
        self.mem.store32(s + slot::FLAGS, flags, Relaxed);
        self.mem.store64(s + slot::RECEIVED, 0, Relaxed);
        self.mem.store64(s + slot::LOST, 0, Relaxed);
        self.mem.store64(s + slot::SEEN_NS, self.mem.now_ns(), Relaxed);
        self.store_name(s, name);
        Some(i)
    }

    /// Joins a new slot owned by `owner` (see [`Ring::take_slot`]).
    pub(super) fn join_as(&self, start: Start, name: &[u8], flags: u32, owner: Owner) -> Option<SubState> {
        let slot_idx = self.take_slot(flags, &SlotName::new(name), owner)?;
        let s = self.layout.slot(slot_idx);
        let mut st = SubState::new(slot_idx, 0, owner);
        if self.layout.policy == Policy::Overwrite {
            // Release: publishes the owner words to a reaper's Acquire load
            // of the state (`reap_dead`; mutation `reap_acquire`).
            self.mem.store32(s + slot::STATE, slot::state::ACTIVE, Release);
            self.position_overwrite(&mut st, start);
            self.mem.store64(s + slot::CURSOR, st.cursor, Relaxed);
        } else {
            self.join_block(&mut st, start);
        }
        self.mem.store64(s + slot::NEXT_SEQ, st.expected_seq, Relaxed);
        Some(st)
    }

    fn claim_slot(&self) -> Option<usize> {
        (0..self.layout.max_subscribers as usize).find(|&i| {
            let s = self.layout.slot(i);
            // Acquire: only defensive (it could be Relaxed): we rewrite
            // every field before publishing the slot, and read none.
            self.mem.cas32(s + slot::STATE, slot::state::FREE, slot::state::CLAIMING, Acquire, Relaxed).is_ok()
        })
    }

    /// The join handshake for `Block` topics (see module docs).
    fn join_block(&self, st: &mut SubState, start: Start) {
        let s = self.layout.slot(st.slot);
        let t0 = self.load_pos(prod::TAIL, Relaxed);
        let first = match start {
            Start::Newest => t0,
            _ => self.oldest_hint(t0),
        };
        // Relaxed: published by the Release store of ACTIVE.
        self.mem.store64(s + slot::CURSOR, first, Relaxed);
        // Release: publishes our cursor and owner words to a reaper's
        // Acquire state load (mutation `reap_acquire`); for the producer's
        // scan the epoch increment below publishes the same.
        self.mem.store32(s + slot::STATE, slot::state::ACTIVE, Release);
        // Release: publishes the slot (state, cursor) to a producer that
        // loads the new epoch with Acquire before it rescans.
        self.mem.add64(prod::JOIN_EPOCH, 1, ord!(Release, "epoch_relaxed", Relaxed));
        // SeqCst fence (heavy half): pairs with the producer's light
        // post-commit fence.
        fence_sc!(self.mem, heavy, "join_fence");
        let t1 = self.load_pos(prod::TAIL, Relaxed);
        // Claims up to the producer's last fence are in t1; one more claim
        // may have been made before it sees the epoch. It overwrites only
        // positions below `safe`.
        let safe = self.claim_end_bound(t1).saturating_sub(self.cap());
        let mut cursor = t1;
        if start != Start::Newest && first < t1 {
            if let Some(p) = self.walk_to(first, safe, t1) {
                cursor = self.seek(p, t1, start).0;
            }
        }
        st.cursor = cursor;
        // Release: only defensive (it could be Relaxed): before this store
        // the walk read only header words, each an atomic it validated by
        // its stamp, and no payload; the cursor only moves forward.
        self.mem.store64(s + slot::CURSOR, cursor, Release);
    }

    /// Oldest frame position the producer side advertises, never above `tail`.
    pub(super) fn oldest_hint(&self, tail: u64) -> u64 {
        if self.layout.multi_producer {
            // No producer tracks frame starts; the slowest active cursor is
            // a frame start whose frames are all intact.
            // Before the first lap, position 0 is the oldest frame.
            let m = self.scan_min_cursor(tail);
            if m != NO_SUBSCRIBER {
                m
            } else if tail <= self.cap() {
                0
            } else {
                tail
            }
        } else {
            self.load_pos(prod::OLDEST, Relaxed).min(tail)
        }
    }

    /// Leaves: frees the slot (after which the cursor no longer gates). A
    /// durable subscriber only detaches: its cursor stays and gates.
    pub fn leave(&self, st: &SubState) {
        let s = self.layout.slot(st.slot);
        // Relaxed: our own slot's flags.
        if self.mem.load32(s + slot::FLAGS, Relaxed) & slot::flags::DURABLE != 0 {
            self.mem.store64(s + slot::SEEN_NS, self.mem.now_ns(), Relaxed);
            // Release: our cursor and counters are visible to the next owner,
            // which takes the slot with an Acquire CAS.
            let _ = self.mem.cas64(s + slot::OWNER, st.attach.raw(), Owner::NONE.raw(), Release, Relaxed);
            self.mem.detach(st.attach.raw());
            return;
        }
        // Release: our reads of released frames happen before a producer
        // that sees the slot free overwrites them (pairs with the Acquire
        // state load of its scan). Needed in production, where the light
        // fence that follows is only a compiler fence; loom models light
        // fences as `SeqCst` fences, which order this by themselves, so no
        // scenario can notice it weakened (tried: `join_and_leave_...`).
        let _ = self.mem.cas32(s + slot::STATE, slot::state::ACTIVE, slot::state::FREE, Release, Relaxed);
        // The lock goes only after the slot is free: a reaper that finds the
        // slot active then finds its owner alive.
        self.mem.detach(st.attach.raw());
        // A producer may be waiting on our cursor (light half, as a release).
        self.wake_space();
    }

    /// Whether this subscriber still owns its slot.
    pub fn still_owned(&self, st: &SubState) -> bool {
        let s = self.layout.slot(st.slot);
        // Relaxed: an ownership check on our own slot.
        self.mem.load32(s + slot::STATE, Relaxed) == slot::state::ACTIVE
            && self.mem.load64(s + slot::OWNER, Relaxed) == st.attach.raw()
    }
}
