//! A producer's claim of room for one frame.
//!
//! A single producer owns the tail, so its claim is a plain store; most
//! claims take the fast path ("The fast paths" in the `ring` module docs): one
//! comparison against [`ProducerState`]'s `fast_limit`, recomputed after
//! every claim that needed the slow path (padding at the ring's end, a
//! rescan of the gating cursors, an oldest-frame mark). Several producers
//! claim with a CAS on the shared tail, then *mark* their claim at once so
//! a subscriber can tell a dead claimant from a slow one ("Stuck claims").
//! [`Ring::claim`] is the one entry point: it waits for room as its
//! [`Wait`] says.

use std::sync::atomic::Ordering::{Relaxed, Release};

use super::{sane_pos, Ring, Wait, NO_SUBSCRIBER};
use crate::layout::{ctr, frame, frame_size, prod, LenType, Owner, Policy, Stamp, StampState};
use crate::mem::Memory;

/// Segments per ring for tracking the oldest frame (see `advance_oldest`).
pub(super) const MARKS: u64 = 64;

/// Why a claim failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// The payload is larger than the topic's max message size.
    TooLarge,
    /// `Block` policy: the slowest subscriber has not released enough space
    /// (within the wait's time, if it waited).
    Full,
    /// Multi-producer: a subscriber gave up this claim because the producer
    /// looked dead for longer than the liveness timeout (see "Stuck claims").
    Lost,
}

/// A claimed, not yet committed region.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    /// Position of the frame.
    pub(super) pos: u64,
    /// Payload bytes claimed.
    pub(super) len: u32,
    /// Sequence number of the message.
    pub(super) seq: u64,
}

impl Claim {
    /// Payload bytes claimed.
    #[inline]
    pub fn len(&self) -> u32 {
        self.len
    }
    /// Whether the claim has no payload bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A producer's private state: written only by its own producer, in its
/// own memory. The shared words it caches may be stale as each field says.
#[derive(Debug)]
pub struct ProducerState {
    /// Single producer: a claim ending at or below this needs none of the
    /// slow path's work (gating rescan, padding at the ring's end, oldest
    /// frame bookkeeping), so [`Ring::claim_fast`] takes it with one
    /// comparison. Recomputed by `refresh_fast_limit` after every slow
    /// claim; 0 (always for multi-producers, and after a rescan is forced)
    /// sends every claim down the slow path.
    pub(super) fast_limit: u64,
    /// The lowest active cursor at the last scan ([`NO_SUBSCRIBER`]: none).
    /// Stale as soon as a subscriber releases (it only grows then, so a
    /// stale value is safe: it only makes the ring look fuller), or joins
    /// (then `epoch` differs and `rescan` is set before the next claim).
    pub(super) cached_min: u64,
    /// The join epoch (`prod::JOIN_EPOCH`) the last scan saw.
    pub(super) epoch: u64,
    /// The next gating check rescans the cursors (a subscriber joined, or
    /// this producer woke from a sleep for space).
    pub(super) rescan: bool,
    /// When this producer last looked for dead gating subscribers (ns; 0:
    /// never).
    pub(super) last_liveness_check: u64,
    /// Single producer: the tail (end of its last claim); the shared word
    /// is only written from this. Multi-producer: unused.
    pub(super) tail: u64,
    /// Single producer: a frame start the next claim does not overwrite
    /// (what `prod::OLDEST` advertises).
    pub(super) oldest: u64,
    /// Single producer: the next message's sequence number.
    pub(super) next_seq: u64,
    /// Single producer: payload bytes published (mirrored to `prod::BYTES`).
    pub(super) bytes: u64,
    /// First frame start recorded in each of the last [`MARKS`] segments.
    pub(super) marks: [u64; MARKS as usize],
    /// Segment of the last recorded mark.
    pub(super) mark_seg: Option<u64>,
    /// This producer's attachment (set by [`Ring::attach_producer`]): the
    /// id its lock vouches for, written into the single producer's `OWNER`
    /// word or into each multi-producer claim's mark.
    pub(super) owner: Owner,
}

impl ProducerState {
    /// The next claim rescans the subscriber table.
    pub(super) fn force_rescan(&mut self) {
        self.rescan = true;
        self.fast_limit = 0;
    }

    /// Sends every claim down the general path, which refuses them while
    /// the producer has a claim lent out (`Producer::reserve_raw`).
    /// Returns the limit for [`ProducerState::reopen_fast_claims`].
    pub(crate) fn close_fast_claims(&mut self) -> u64 {
        std::mem::take(&mut self.fast_limit)
    }

    /// Gives back the limit [`ProducerState::close_fast_claims`] took,
    /// before the lent claim is committed or aborted. Nothing was claimed
    /// in between (the general path refused), so it holds as it did; the
    /// commit's epoch check still lowers it if a subscriber joined. (Left
    /// at 0, every reserve/commit pair of the C API took the slow claim:
    /// 64 B one-way 95 against 75 ns for Rust in `shmq bench`.)
    pub(crate) fn reopen_fast_claims(&mut self, limit: u64) {
        self.fast_limit = limit;
    }
}

impl<M: Memory> Ring<M> {
    /// A fresh producer state. For a single producer, picks up the tail and
    /// counters left by the previous owner (the caller holds ownership).
    pub fn producer_state(&self) -> ProducerState {
        // Relaxed: the caller acquired ownership of the producer line with an
        // Acquire CAS (single producer), or only uses these as hints (multi).
        let tail = self.load_pos(prod::TAIL, Relaxed);
        let oldest = self.load_pos(prod::OLDEST, Relaxed).min(tail);
        ProducerState {
            fast_limit: 0,
            cached_min: 0,
            epoch: self.mem.load64(prod::JOIN_EPOCH, Relaxed),
            rescan: true,
            last_liveness_check: 0,
            tail,
            oldest,
            next_seq: self.mem.load64(prod::NEXT_SEQ, Relaxed),
            bytes: self.mem.load64(prod::BYTES, Relaxed),
            marks: [0; MARKS as usize],
            mark_seg: None,
            owner: Owner::NONE,
        }
    }

    /// End of everything this producer has claimed: its own tail (single
    /// producer) or the shared one.
    pub fn tail_of(&self, st: &ProducerState) -> u64 {
        if self.layout.multi_producer {
            // Relaxed: producers claim the shared tail with Relaxed CASes, so
            // an Acquire here would pair with nothing; the caller (flush)
            // only needs a bound to sync the pages below, and what it
            // syncs is ordered by the kernel, not by this load.
            self.load_pos(prod::TAIL, Relaxed)
        } else {
            st.tail
        }
    }

    /// Records that everything below `pos` is on disk (never goes back).
    pub fn advance_flushed(&self, pos: u64) {
        // Relaxed: read back only by recovery after a restart (the caller
        // syncs the header to disk after this store).
        let mut cur = self.mem.load64(prod::FLUSHED, Relaxed);
        while cur < pos {
            match self.mem.cas64(prod::FLUSHED, cur, pos, Relaxed, Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
    }

    /// Claims room for a payload of `len` bytes, waiting for room on a
    /// full `Block` ring as `wait` says (spin, then sleep; see
    /// [`super::waiting`]). The one entry point for every claim: the fast
    /// path inline, everything else out of line.
    #[inline(always)]
    pub fn claim(&self, st: &mut ProducerState, len: usize, wait: Wait) -> Result<Claim, ClaimError> {
        match self.claim_fast(st, len) {
            Some(c) => Ok(c),
            None => self.claim_slow(st, len, wait),
        }
    }

    /// Every claim [`Ring::claim_fast`] does not take, waiting if allowed:
    /// the call out of line, and the wait only when the ring is full.
    #[inline(always)]
    fn claim_slow(&self, st: &mut ProducerState, len: usize, wait: Wait) -> Result<Claim, ClaimError> {
        match self.claim_general(st, len) {
            Err(ClaimError::Full) if wait != Wait::Now => self.claim_wait_full(st, len, wait),
            other => other,
        }
    }

    /// Claims room for a payload of `len` bytes without waiting.
    #[inline(always)]
    pub(super) fn try_claim(&self, st: &mut ProducerState, len: usize) -> Result<Claim, ClaimError> {
        match self.claim_fast(st, len) {
            Some(c) => Ok(c),
            None => self.claim_general(st, len),
        }
    }

    /// The common claim of a single producer: one comparison against
    /// `fast_limit`, then the claim. `None`, having done nothing, when it
    /// does not apply (always for a multi-producer: its limit is 0).
    #[inline(always)]
    pub fn claim_fast(&self, st: &mut ProducerState, len: usize) -> Option<Claim> {
        if len > self.layout.max_message as usize {
            return None;
        }
        let pos = st.tail;
        let end = pos + frame_size(len as u64);
        if end > st.fast_limit {
            return None;
        }
        let seq = self.take_single(st, pos, end);
        Some(Claim { pos, len: len as u32, seq })
    }

    /// Every claim [`Ring::claim_fast`] does not take: one function out of
    /// line, with the multi-producer claim and its mark inlined in it. (A
    /// second out-of-line layer above it cost a multi-producer publish 19
    /// instructions, 269 -> 288 in `examples/hotpath 200000 multi`.)
    #[inline(never)]
    fn claim_general(&self, st: &mut ProducerState, len: usize) -> Result<Claim, ClaimError> {
        if len > self.layout.max_message as usize {
            return Err(ClaimError::TooLarge);
        }
        let fsize = frame_size(len as u64);
        if self.layout.multi_producer {
            self.claim_multi(st, len as u32, fsize)
        } else {
            self.claim_single_slow(st, len as u32, fsize)
        }
    }

    /// Takes the single-producer claim of the frame `[pos, end)`, whose
    /// room is already checked: records it for crash repair and as the
    /// overwrite intent, and numbers it. Returns its sequence number.
    #[inline(always)]
    fn take_single(&self, st: &mut ProducerState, pos: u64, end: u64) -> u64 {
        self.take_frames(st, pos, end, 1)
    }

    /// [`Ring::take_single`] for `count` frames filling `[pos, end)` (a
    /// batch, see [`super::batch`]): one claim, `count` sequence numbers.
    /// Returns the first.
    #[inline(always)]
    pub(super) fn take_frames(&self, st: &mut ProducerState, pos: u64, end: u64, count: u64) -> u64 {
        // Relaxed: read back only by a producer that takes over after this
        // one died (it acquires ownership first).
        self.mem.store64(prod::CLAIM_START, st.tail, Relaxed);
        // Relaxed store + Release fence: the tail is the overwrite intent; the
        // fence orders it before our data writes, pairing with a reader's
        // Acquire fence before it re-reads the tail (seqlock validation).
        self.mem.store64(prod::TAIL, end, Relaxed);
        #[cfg(not(shmq_mutation = "intent_fence"))]
        if self.layout.policy == Policy::Overwrite {
            self.mem.fence(Release);
        }
        debug_assert!(pos >= st.tail);
        st.tail = end;
        let seq = st.next_seq;
        // Wrapping: the counter was loaded from shared memory at attach.
        st.next_seq = st.next_seq.wrapping_add(count);
        seq
    }

    /// Where a frame of `fsize` bytes claimed at `tail` goes: at `tail`, or
    /// at the start of the ring after a padding frame if it would cross the
    /// ring's end. Returns its position and end, or `None` if the gating
    /// cursor leaves no room for it (Block).
    #[inline(always)]
    fn place(&self, st: &mut ProducerState, tail: u64, fsize: u64) -> Option<(u64, u64)> {
        let room = self.layout.room_to_end(tail);
        let pos = if room < fsize { tail + room } else { tail };
        let end = pos + fsize;
        self.gate_ok(st, end, tail).then_some((pos, end))
    }

    /// The part of a single-producer claim that `fast_limit` lets most
    /// claims skip: padding at the ring's end, gating, oldest-frame marks;
    /// then a new limit.
    fn claim_single_slow(&self, st: &mut ProducerState, len: u32, fsize: u64) -> Result<Claim, ClaimError> {
        let tail = st.tail;
        let (pos, end) = self.place(st, tail, fsize).ok_or(ClaimError::Full)?;
        self.advance_oldest(st, tail, pos, end);
        let seq = self.take_single(st, pos, end);
        if pos > tail {
            self.write_padding(tail, pos - tail);
        }
        self.refresh_fast_limit(st);
        Ok(Claim { pos, len, seq })
    }

    /// Single producer: the largest claim end that needs no slow-path work
    /// from the current state: under the gating cursor (unless a rescan is
    /// due), before the end of the ring's current lap (no padding), inside
    /// the segment whose first frame is already marked, and short of the
    /// point where `advance_oldest` must move `oldest`.
    pub(super) fn refresh_fast_limit(&self, st: &mut ProducerState) {
        if self.layout.multi_producer {
            st.fast_limit = 0;
            return;
        }
        let cap = self.cap();
        let gate = if self.layout.policy == Policy::Overwrite {
            u64::MAX // never gated (and `gate_ok` never clears `rescan`)
        } else if st.rescan {
            0
        } else if st.cached_min == NO_SUBSCRIBER {
            u64::MAX
        } else {
            st.cached_min + cap
        };
        // Mutation: a fast path that ignores the gating cursor (loom must
        // then see a message overwritten before its subscriber read it).
        #[cfg(shmq_mutation = "fast_gate")]
        let gate = if st.rescan { 0 } else { u64::MAX };
        let lap_end = (st.tail | (cap - 1)) + 1;
        let shift = self.mark_shift;
        let marked = st.mark_seg.map_or(0, |m| (m + 1) << shift);
        // `advance_oldest` returns at once while the overwrite edge
        // (`end - cap`) stays below the segment holding `oldest`.
        let oldest = (((st.oldest >> shift) << shift) + cap - 1).max(cap);
        st.fast_limit = gate.min(lap_end).min(marked).min(oldest);
    }

    #[inline]
    fn claim_multi(&self, st: &mut ProducerState, len: u32, fsize: u64) -> Result<Claim, ClaimError> {
        loop {
            // Relaxed: the tail only arbitrates claims between producers (the
            // CAS makes them disjoint); frame contents are ordered by stamps.
            let raw = self.mem.load64(prod::TAIL, Relaxed);
            // Compute with a sane position, but compare-exchange the raw
            // word: a corrupt (unaligned) tail is then replaced by a sane
            // one instead of failing every CAS forever (found by
            // tests/hostile.rs).
            let tail = sane_pos(raw);
            let (pos, end) = self.place(st, tail, fsize).ok_or(ClaimError::Full)?;
            let pad = pos - tail;
            if self.mem.cas64(prod::TAIL, raw, end, Relaxed, Relaxed).is_ok() {
                // Mark the claim at once, starting where subscribers stop
                // first (see "Stuck claims" in the module docs).
                if pad > 0 && !self.mark(tail, Some(pad), st.owner) {
                    return Err(ClaimError::Lost);
                }
                if !self.mark(pos, None, st.owner) {
                    return Err(ClaimError::Lost);
                }
                // Relaxed: a counter; uniqueness comes from the RMW.
                let seq = self.mem.add64(ctr::MP_SEQ, 1, Relaxed);
                return Ok(Claim { pos, len, seq });
            }
        }
    }

    /// Multi-producer: marks the frame at `p`, just claimed, as ours: with
    /// `padding`, a committed padding frame of that size; without, a
    /// claimed frame whose timestamp word holds our attachment (`owner`)
    /// until commit. Returns `false` if a
    /// subscriber had already taken the position (`ABORTING`/`ABORTED`):
    /// the claim is lost.
    fn mark(&self, p: u64, padding: Option<u64>, owner: Owner) -> bool {
        let off = self.layout.frame_at(p);
        let stamp = match padding {
            Some(size) => {
                // Relaxed: published by the Release exchange of the stamp below.
                self.mem.store64(off + frame::LEN_TYPE, LenType::padding(size).raw(), Relaxed);
                Stamp::committed(p, self.key()).raw()
            }
            None => {
                // Relaxed: as above.
                self.mem.store64(off + frame::TIMESTAMP, owner.raw(), Relaxed);
                Stamp::claimed(p, self.key()).raw()
            }
        };
        // Release: publishes the word above to a subscriber's Acquire stamp
        // load. An exchange, not a store: it tells us whether a subscriber
        // took the position first (its CAS and our exchange are ordered).
        #[cfg(shmq_mutation = "mark_store")]
        let old = {
            self.mem.store64(off + frame::STAMP, stamp, Release);
            0
        };
        #[cfg(not(shmq_mutation = "mark_store"))]
        let old = self.mem.swap64(off + frame::STAMP, stamp, ord!(Release, "mark_relaxed", Relaxed));
        if matches!(Stamp::state(old, p, self.key()), StampState::Aborted | StampState::Aborting) {
            // Put the abort back (unless its author has finished it
            // meanwhile); the subscribers skip this claim. Release is only
            // defensive (it could be Relaxed): a reader that loads the value
            // this CAS writes back synchronises with the aborting
            // subscriber's Release store anyway, because our exchange and
            // this CAS are read-modify-writes and so continue that store's
            // release sequence; the words our mark wrote (the owner) are
            // dead once the claim is aborted.
            let _ = self.mem.cas64(off + frame::STAMP, stamp, old, Release, Relaxed);
            return false;
        }
        true
    }

    /// Single producer: keeps `oldest` (a frame start that the claim ending
    /// at `end` does not overwrite) without reading old frames on the hot
    /// path. The ring is cut into [`MARKS`] segments; as the producer passes
    /// frame starts it records the first one in each segment (`marks`, in
    /// its own memory); when the overwrite edge `end - capacity` enters a
    /// new segment, it advertises the recorded start of a later segment.
    /// `oldest` thus trails the true oldest frame by at most two segments.
    pub(super) fn advance_oldest(&self, st: &mut ProducerState, claim_start: u64, frame_pos: u64, end: u64) {
        let shift = self.mark_shift;
        for p in [claim_start, frame_pos] {
            let seg = p >> shift;
            if st.mark_seg.is_none_or(|m| seg > m) {
                st.marks[(seg % MARKS) as usize] = p;
                st.mark_seg = Some(seg);
            }
        }
        let edge = end.saturating_sub(self.cap());
        if edge == 0 {
            return; // nothing overwritten yet: oldest stays at the start
        }
        let edge_seg = edge >> shift;
        if st.oldest >= edge && st.oldest >> shift > edge_seg {
            return;
        }
        let last = st.mark_seg.unwrap_or(0);
        let mut oldest = st.tail.max(end);
        for seg in edge_seg..=last {
            let m = st.marks[(seg % MARKS) as usize];
            // A mark from this lap lies inside its segment.
            if m >> shift == seg && m >= edge {
                oldest = m;
                break;
            }
        }
        st.oldest = oldest.min(frame_pos);
        // Relaxed: readers validate any frame they find there (stamp, then
        // the tail check), so a stale value only costs them a retry.
        self.mem.store64(prod::OLDEST, st.oldest, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;
    use crate::mem::tests::Plain;

    fn ring(cap: u64, policy: Policy) -> Ring<Plain> {
        let layout = Layout::new(cap, 64, 1, policy, false, 0).expect("layout");
        Ring::new(Plain::new(layout.file_len() as usize), layout)
    }

    fn state(r: &Ring<Plain>, tail: u64, oldest: u64) -> ProducerState {
        let mut st = r.producer_state();
        (st.tail, st.oldest, st.rescan) = (tail, oldest, false);
        st
    }

    #[test]
    fn fast_limit_is_the_nearest_of_gate_lap_end_mark_and_oldest() {
        // 64 KiB ring: 64 segments of 1 KiB.
        let r = ring(64 << 10, Policy::Block);
        assert_eq!(r.mark_shift, 10);
        let mut st = state(&r, 100 * 32, 0);
        st.cached_min = NO_SUBSCRIBER;
        st.mark_seg = Some(3);
        r.refresh_fast_limit(&mut st);
        // Nothing gates; the lap ends at 64 KiB; the segment marked last is
        // 3 (ends at 4 KiB); oldest 0 allows up to one lap (64 KiB - 1).
        assert_eq!(st.fast_limit, 4 << 10);
        st.mark_seg = Some(200);
        r.refresh_fast_limit(&mut st);
        assert_eq!(st.fast_limit, 64 << 10, "the lap's end");
        // A subscriber at 1 KiB gates at 1 KiB + capacity.
        (st.tail, st.oldest, st.cached_min) = ((64 << 10) + 64, 40 << 10, 1 << 10);
        r.refresh_fast_limit(&mut st);
        assert_eq!(st.fast_limit, (1 << 10) + (64 << 10));
        // The overwrite edge may not enter the segment holding `oldest`.
        st.cached_min = NO_SUBSCRIBER;
        st.oldest = 10 << 10;
        r.refresh_fast_limit(&mut st);
        assert_eq!(st.fast_limit, (10 << 10) + (64 << 10) - 1);
        // A rescan due: nothing is fast.
        st.force_rescan();
        r.refresh_fast_limit(&mut st);
        assert_eq!(st.fast_limit, 0);
    }

    #[test]
    fn a_lent_claim_closes_the_fast_path_and_gives_its_limit_back() {
        let r = ring(64 << 10, Policy::Block);
        let mut st = state(&r, 0, 0);
        st.cached_min = NO_SUBSCRIBER;
        st.mark_seg = Some(200);
        r.refresh_fast_limit(&mut st);
        assert!(r.claim_fast(&mut st, 8).is_some());
        let limit = st.close_fast_claims();
        assert_eq!(limit, 64 << 10);
        assert!(r.claim_fast(&mut st, 8).is_none(), "closed while the claim is lent");
        st.reopen_fast_claims(limit);
        assert!(r.claim_fast(&mut st, 8).is_some(), "open again, without a slow claim");
    }

    #[test]
    fn overwrite_fast_limit_ignores_gating() {
        let r = ring(64 << 10, Policy::Overwrite);
        let mut st = state(&r, 0, 0);
        st.cached_min = 0; // would gate at 64 KiB on Block
        st.rescan = true; // never cleared on Overwrite
        st.mark_seg = Some(200);
        r.refresh_fast_limit(&mut st);
        assert_eq!(st.fast_limit, 64 << 10);
    }

    #[test]
    fn oldest_advances_by_marked_segments() {
        // 4 KiB ring: 64 segments of 64 bytes.
        let r = ring(4096, Policy::Overwrite);
        assert_eq!(r.mark_shift, 6);
        let mut st = state(&r, 0, 0);
        // Frames of 96 bytes from 0: no claim overwrites anything in the first lap.
        let mut p = 0;
        while p + 96 <= 4096 {
            r.advance_oldest(&mut st, p, p, p + 96);
            st.tail = p + 96;
            assert_eq!(st.oldest, 0, "at {p}");
            p += 96;
        }
        // The frame at 4032 (96 bytes) would cross the end: padding, then 4096.
        r.advance_oldest(&mut st, p, 4096, 4096 + 96);
        st.tail = 4096 + 96;
        // The edge is at 96: the oldest advertised is a recorded frame start
        // at or after it, at most two segments further.
        assert!(st.oldest >= 96 && st.oldest <= 96 + 128, "oldest {}", st.oldest);
        assert_eq!(st.oldest % 96, 0, "a frame start");
        assert_eq!(r.mem.load64(prod::OLDEST, Relaxed), st.oldest);
        // Keep going for three laps: oldest is always a frame start of the
        // last lap, never behind the edge, never ahead of the claim.
        let mut pos = 4096 + 96;
        for _ in 0..150 {
            let room = r.layout.room_to_end(pos);
            let (claim_start, frame_pos) = if room < 96 { (pos, pos + room) } else { (pos, pos) };
            let end = frame_pos + 96;
            r.advance_oldest(&mut st, claim_start, frame_pos, end);
            st.tail = end;
            assert!(st.oldest >= end - 4096, "oldest {} behind the edge {}", st.oldest, end - 4096);
            assert!(st.oldest <= frame_pos);
            assert!(st.oldest + 2 * 64 + 96 >= end - 4096, "oldest {} lags more than two segments", st.oldest);
            pos = end;
        }
    }
}
