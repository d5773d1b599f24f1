//! Liveness and repair: what keeps a crashed peer from stalling the others.
//!
//! - A blocked `Block` producer reaps the slots of subscribers whose
//!   process is gone (at most every `LIVENESS_CHECK_NS`); a durable
//!   subscriber's slot is only detached (its cursor keeps gating until it
//!   returns or expires).
//! - A single producer that attaches after a dead owner turns that owner's
//!   unfinished claim into padding ([`Ring::repair_single_claim`]).
//! - A multi-producer claim whose producer died between its tail CAS and
//!   its commit is aborted by a waiting subscriber after two liveness
//!   timeouts ([`Ring::unstick`]; "Stuck claims" in the `ring` module docs).
//!
//! Whether a process is alive is the kernel's answer, through the
//! [`Memory`] seam (`alive`: is the attachment's lock held?); the owner
//! words it is asked about are [`Owner`]s, attachment ids. A process in
//! another pid namespace, one that `exec`ed, and a daemon whose parent
//! exited are all judged rightly: the lock lives exactly as long as the
//! attachment's descriptor.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::reading::Stuck;
use super::{ProducerState, Ring, SubState, LIVENESS_CHECK_NS};
use crate::layout::{ctr, frame, prod, slot, wake, LenType, Owner, Policy, Stamp, StampState, FRAME_HEADER, MAX_POS};
use crate::mem::Memory;

impl<M: Memory> Ring<M> {
    /// A blocked producer reclaims the slots of dead subscribers (at most
    /// every [`LIVENESS_CHECK_NS`]).
    pub(super) fn check_liveness(&self, st: &mut ProducerState) {
        let now = self.mem.now_ns();
        if st.last_liveness_check != 0 && now.saturating_sub(st.last_liveness_check) < LIVENESS_CHECK_NS {
            return;
        }
        st.last_liveness_check = now.max(1);
        if self.reap_dead() > 0 {
            st.force_rescan();
        }
    }

    /// Frees the slots of subscribers whose process is gone. Returns how many.
    pub fn reap_dead(&self) -> u32 {
        let mut reaped = 0;
        for i in 0..self.layout.max_subscribers as usize {
            let s = self.layout.slot(i);
            // Acquire: pairs with the Release store of ACTIVE, so the owner
            // word below is the joiner's (a stale one names a dead owner).
            if self.mem.load32(s + slot::STATE, ord!(Acquire, "reap_acquire", Relaxed)) != slot::state::ACTIVE {
                continue;
            }
            // Acquire: pairs with the Release of a durable take-over's CAS, so
            // the new owner's lock is seen (a joiner's is published by ACTIVE)
            // and a live owner is not detached (mutation `reap_owner_acquire`).
            let owner = Owner::from_raw(self.mem.load64(s + slot::OWNER, ord!(Acquire, "reap_owner_acquire", Relaxed)));
            let flags = self.mem.load32(s + slot::FLAGS, Relaxed);
            if flags & slot::flags::DURABLE != 0 {
                reaped += self.reap_durable(s, owner);
                continue;
            }
            if flags & slot::flags::GROUP != 0 {
                continue; // a group's record belongs to no process
            }
            if flags & slot::flags::MEMBER != 0 && self.load_pos(s + slot::CURSOR, Relaxed) < slot::IDLE {
                continue; // a dead member's message is redelivered by the group
            }
            if !self.mem.alive(owner.raw()) {
                // Relaxed: the slot's owner is gone; a new owner claims with
                // an Acquire CAS and rewrites everything.
                if self.mem.cas32(s + slot::STATE, slot::state::ACTIVE, slot::state::FREE, Relaxed, Relaxed).is_ok() {
                    self.mem.add64(ctr::REAPED, 1, Relaxed);
                    reaped += 1;
                }
            }
        }
        if reaped > 0 {
            // Producers sleeping on space look again.
            self.wake_all(wake::SPACE_FUTEX);
        }
        reaped
    }

    /// A durable slot whose owner died is detached (owner 0), not freed: its
    /// cursor keeps gating until the owner returns. One detached longer
    /// than the topic's durable expiry is expired (stops gating). Returns
    /// 1 if it expired the slot (which frees room), else 0.
    fn reap_durable(&self, s: usize, owner: Owner) -> u32 {
        let now = self.mem.now_ns();
        if !owner.is_none() {
            if !self.mem.alive(owner.raw())
                && self.mem.cas64(s + slot::OWNER, owner.raw(), Owner::NONE.raw(), Relaxed, Relaxed).is_ok()
            {
                // Relaxed: when it was detached, for the expiry; a counter.
                self.mem.store64(s + slot::SEEN_NS, now, Relaxed);
                self.mem.add64(ctr::REAPED, 1, Relaxed);
            }
            return 0;
        }
        let expiry = self.layout.durable_expiry_ms as u64 * 1_000_000;
        let since = self.mem.load64(s + slot::SEEN_NS, Relaxed);
        if expiry > 0 && now.saturating_sub(since) > expiry {
            // Relaxed: the cursor stops gating; the bytes behind it are
            // nobody's any more (its owner is told when it returns).
            if self.mem.cas32(s + slot::STATE, slot::state::ACTIVE, slot::state::EXPIRED, Relaxed, Relaxed).is_ok() {
                return 1;
            }
        }
        0
    }

    /// Single producer taking over from a dead owner: commits every frame
    /// of the dead owner's last claim that is not committed as padding, so
    /// subscribers move on. Returns how many frames were repaired.
    pub fn repair_single_claim(&self, st: &mut ProducerState) -> u32 {
        let tail = st.tail;
        let mut p = self.load_pos(prod::CLAIM_START, Relaxed);
        if p > tail || tail - p > self.max_claim() {
            return 0;
        }
        let mut repaired = 0;
        while p < tail {
            let off = self.layout.frame_at(p);
            // Acquire: only defensive: the previous owner detached with a
            // Release that our ownership CAS acquired, or died, and its
            // death, observed through the kernel, orders its stores first.
            let committed = self.mem.load64(off + frame::STAMP, Acquire) == Stamp::committed(p, self.key()).raw();
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            match (committed, self.frame_len_of(p, lt)) {
                (true, Some(size)) if p + size <= tail => {
                    if !LenType::from_raw(lt).is_padding() {
                        // The dead owner committed this frame (one of a
                        // batch, or a publish killed before its counters
                        // were stored): number on after it, so no sequence
                        // number is given twice. Relaxed: as the stamp.
                        st.next_seq = self.mem.load64(off + frame::SEQ, Relaxed).wrapping_add(1);
                    }
                    p += size
                }
                _ => {
                    let size = (tail - p).min(self.layout.room_to_end(p));
                    self.write_padding(p, size);
                    repaired += 1;
                    p += size;
                }
            }
        }
        if repaired > 0 {
            self.mem.add64(ctr::REPAIRED, repaired as u64, Relaxed);
            self.after_commit(st);
        }
        repaired
    }

    /// Multi-producer `Block`: called while the cursor waits at a frame that
    /// is not committed although the tail is past it. After the topic's
    /// liveness timeout it finds where the stuck claim ends (the next marked
    /// frame, or the tail); after a second timeout, if the end is the same
    /// and the claim's marked owner is dead (or it has no mark), it aborts
    /// the claim so every subscriber goes on. Returns whether the frame at
    /// the cursor can now be read or skipped.
    pub fn unstick(&self, st: &mut SubState) -> bool {
        let q = st.cursor;
        let off = self.layout.frame_at(q);
        let key = self.key();
        // Acquire: pairs with the producer's Release mark, so the owner
        // word read below is the marking producer's (a stale one could name
        // a dead process and abort a live claim, which its producer would
        // learn as `Lost`), or with another subscriber's Release abort.
        // Needed, and the one ordering loom cannot check here: a scenario
        // must let time pass for a look to abort, and with time passing the
        // model may also show a look no mark at all, which aborts a live
        // claim by design (the producer died between its CAS and its mark,
        // as far as the look can tell), so no assertion can tell the two
        // apart. `stuck_claim_abort_races_commit` checks that either way
        // the claim is reported lost, never committed behind the skip.
        let stamp = self.mem.load64(off + frame::STAMP, Acquire);
        let state = Stamp::state(stamp, q, key);
        if matches!(state, StampState::Committed | StampState::Aborted) {
            st.stuck = None;
            return true;
        }
        // Relaxed: only tells whether anything was claimed beyond q.
        let tail = self.load_pos(prod::TAIL, Relaxed);
        if tail <= q {
            st.stuck = None;
            return false;
        }
        let now = self.mem.now_ns();
        let timeout = self.layout.liveness_ms as u64 * 1_000_000;
        let candidate = match st.stuck {
            Some(Stuck { at, since_ns, end }) if at == q => {
                if now.saturating_sub(since_ns) < timeout {
                    return false;
                }
                end
            }
            _ => {
                st.stuck = Some(Stuck { at: q, since_ns: now, end: 0 });
                return false;
            }
        };
        if state == StampState::Claimed {
            // Relaxed: ordered after the Acquire stamp load; a producer that
            // commits meanwhile makes the CAS below fail.
            let owner = Owner::from_raw(self.mem.load64(off + frame::TIMESTAMP, Relaxed));
            if self.mem.alive(owner.raw()) {
                // A live producer is never skipped; look again later.
                st.stuck = Some(Stuck { at: q, since_ns: now, end: 0 });
                return false;
            }
        }
        // The claim ends at the next marked frame or at the tail. Abort only
        // if a second look, a timeout later, finds the same end: a live
        // producer that had claimed but not yet marked the next frame has
        // marked it by then, so its claim is never swallowed.
        let Some(end) = self.next_boundary(q, tail) else {
            return false;
        };
        if end != candidate {
            st.stuck = Some(Stuck { at: q, since_ns: now, end });
            return false;
        }
        // Take the stamp first (ABORTING), then write the skip length, then
        // stamp ABORTED: writing the length before taking the stamp could
        // overwrite the length of a frame committed meanwhile (loom found
        // this: `stuck_claim_abort_races_commit`). Relaxed: nothing to
        // publish yet; the Release store below publishes the length.
        let first = (end - q).min(self.layout.room_to_end(q));
        #[cfg(shmq_mutation = "abort_len_first")]
        let ok = {
            self.mem.store64(off + frame::LEN_TYPE, LenType::padding(first).raw(), Relaxed);
            self.mem.cas64(off + frame::STAMP, stamp, Stamp::aborted(q, key).raw(), Release, Relaxed).is_ok()
        };
        #[cfg(not(shmq_mutation = "abort_len_first"))]
        let ok = self.mem.cas64(off + frame::STAMP, stamp, Stamp::aborting(q, key).raw(), Relaxed, Relaxed).is_ok();
        if ok {
            self.mem.store64(off + frame::LEN_TYPE, LenType::padding(first).raw(), Relaxed);
            if first < end - q {
                // The claim wrapped: the rest lies at the start of the ring.
                self.write_padding(q + first, end - q - first);
            }
            // Release: publishes the length word to readers' Acquire load.
            self.mem.store64(
                off + frame::STAMP,
                Stamp::aborted(q, key).raw(),
                ord!(Release, "aborted_relaxed", Relaxed),
            );
        }
        self.aborted(st, ok)
    }

    /// Bookkeeping after an abort attempt of [`Ring::unstick`].
    fn aborted(&self, st: &mut SubState, ok: bool) -> bool {
        st.stuck = None;
        if ok {
            // Relaxed: statistics; other sleeping subscribers look again.
            self.mem.add64(ctr::REPAIRED, 1, Relaxed);
            self.wake_all(wake::DATA_FUTEX);
        }
        true
    }

    /// The first position after `q` (at most a claim away) where a frame
    /// was marked, committed or aborted, else the tail if that is within a
    /// claim; `None` if neither is (then nothing is aborted).
    fn next_boundary(&self, q: u64, tail: u64) -> Option<u64> {
        let limit = tail.min(q + self.max_claim());
        let mut p = q + FRAME_HEADER as u64;
        while p < limit {
            // Relaxed: a hint only; the abort CAS is what decides.
            let stamp = self.mem.load64(self.layout.frame_at(p) + frame::STAMP, Relaxed);
            if Stamp::state(stamp, p, self.key()) != StampState::Stale {
                return Some(p);
            }
            p += FRAME_HEADER as u64;
        }
        (tail <= limit).then_some(tail)
    }

    /// Single-producer `Block`: the frame at the cursor is not committed
    /// although a later one is. A single producer commits in order, so the
    /// frame's stamp was overwritten by someone else (a stray write, a
    /// hostile process): waiting for it would wait forever. Turns it into
    /// padding up to the next committed frame (the producer is past it, and
    /// our cursor keeps it from coming back), counts a repair, and returns
    /// whether the cursor can move on. Reads only on this rare path: the
    /// callers ask after spinning, or after many empty polls.
    pub fn skip_corrupt_single(&self, st: &mut SubState) -> bool {
        if self.layout.multi_producer || self.layout.policy != Policy::Block || st.group.is_some() {
            return false;
        }
        let q = st.cursor;
        let key = self.key();
        let off = self.layout.frame_at(q);
        // Relaxed: a hint; the stamps decide.
        let last = self.mem.load64(prod::LAST, Relaxed);
        if last == 0 || last > MAX_POS || last - 1 <= q {
            return false;
        }
        // Acquire: pairs with the producer's Release stamp store.
        if self.mem.load64(off + frame::STAMP, Acquire) == Stamp::committed(q, key).raw() {
            return true;
        }
        // The next frame start after q whose stamp is committed, within a
        // claim's reach (a frame and the padding before it).
        let limit = (last - 1).min(q + self.max_claim());
        let mut p = q + FRAME_HEADER as u64;
        while p <= limit {
            // Acquire: pairs with the producer's Release stamp store; a
            // committed frame there means the producer finished q long ago.
            if self.mem.load64(self.layout.frame_at(p) + frame::STAMP, Acquire) == Stamp::committed(p, key).raw() {
                break;
            }
            p += FRAME_HEADER as u64;
        }
        if p > limit {
            return false;
        }
        // Look at q again: the first look may have been older than the one
        // that found p committed. The Acquire load of p's stamp orders
        // everything the producer did before committing p, q's commit
        // included, before this load; a committed q here was merely slow to
        // show, not corrupt.
        #[cfg(not(shmq_mutation = "corrupt_no_recheck"))]
        if self.mem.load64(off + frame::STAMP, Acquire) == Stamp::committed(q, key).raw() {
            return true;
        }
        let first = (p - q).min(self.layout.room_to_end(q));
        self.write_padding(q, first);
        if first < p - q {
            self.write_padding(q + first, p - q - first);
        }
        // Relaxed: a counter, for `shmq info`.
        self.mem.add64(ctr::REPAIRED, 1, Relaxed);
        true
    }
}
