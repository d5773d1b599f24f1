//! Writing a claim and committing it: the payload copy, the header words,
//! then the stamp with `Release` ("Commit by stamp" in the `ring`
//! docs), and the producer's half of the data sleep/wake handshake after
//! every commit. A claim given back (a dropped grant) is committed as
//! padding, so the ring never stalls on it.

use std::sync::atomic::Ordering::{Relaxed, Release};

use super::{Claim, ProducerState, Ring};
use crate::layout::{ctr, frame, frame_size, prod, wake, LenType, Policy, Stamp, FRAME_HEADER};
use crate::mem::Memory;

impl<M: Memory> Ring<M> {
    /// Offset of the payload of a claim.
    pub fn payload_off(&self, claim: &Claim) -> usize {
        self.layout.frame_at(claim.pos) + FRAME_HEADER
    }

    /// Copies `data` into the claim's payload.
    #[inline(always)]
    pub fn write_payload(&self, claim: &Claim, data: &[u8]) {
        debug_assert!(data.len() <= claim.len as usize);
        self.write_payload_at(self.payload_off(claim), data);
    }

    /// Copies `data` to the payload offset `off` of a frame this producer
    /// has claimed and not committed, `data` no longer than the claim.
    #[inline(always)]
    pub(super) fn write_payload_at(&self, off: usize, data: &[u8]) {
        if self.layout.policy == Policy::Overwrite {
            // SAFETY: the claim lies in bounds (frame_at masks the position,
            // the frame fits before the ring's end), offsets are 32-aligned,
            // and this producer owns the claim.
            unsafe { self.mem.write_racy(off, data) }
        } else {
            // SAFETY: as above; in Block mode gating guarantees no subscriber
            // cursor covers these bytes, so nobody reads them until commit.
            unsafe { self.mem.write(off, data) }
        }
    }

    /// The whole publish of `data` on the common path of a single
    /// producer: a fast claim (one comparison, see `fast_limit`), the copy,
    /// the commit, with no `Claim` in between. Returns `false`, having
    /// done nothing, when that path does not apply (several producers, a
    /// message too large, or a claim that needs the slow path): the caller
    /// then takes the general path, which handles every case.
    #[inline(always)]
    pub fn publish_fast(&self, st: &mut ProducerState, data: &[u8], msg_type: u32) -> bool {
        let Some(c) = self.claim_fast(st, data.len()) else {
            return false;
        };
        let off = self.layout.frame_at(c.pos);
        self.write_payload_at(off + FRAME_HEADER, data);
        self.write_header(off, c.len, msg_type, c.seq, self.publish_time());
        self.commit_single(st, c.pos, off, c.len);
        true
    }

    /// Commits `len <= claim.len` payload bytes already written into the
    /// claim, with user type `msg_type`. The rest of the claim becomes
    /// padding. Returns `false` if the claim was lost (multi-producer: a
    /// subscriber aborted it, see "Stuck claims"); nothing was published.
    ///
    /// Inlined: with `try_claim` it is the whole publish, and a
    /// single-producer commit is a handful of stores; the rare parts
    /// (shrinking the claim, the multi-producer CAS, waking sleepers) are
    /// out of line.
    #[inline(always)]
    pub fn commit(&self, st: &mut ProducerState, claim: &Claim, len: u32, msg_type: u32) -> bool {
        let len = len.min(claim.len);
        if len < claim.len {
            self.pad_unused(claim, len);
        }
        let off = self.layout.frame_at(claim.pos);
        self.write_header(off, len, msg_type, claim.seq, self.publish_time());
        if self.layout.multi_producer {
            return self.commit_multi(st, claim.pos, off, len as u64);
        }
        self.commit_single(st, claim.pos, off, len);
        true
    }

    /// The publish time a frame's header gets: the monotonic clock on
    /// topics with timestamps, else 0. A clock read costs 20-45 ns in VMs:
    /// only topics that asked for timestamps pay for it.
    #[inline(always)]
    pub(super) fn publish_time(&self) -> u64 {
        if self.layout.timestamps {
            self.mem.now_ns()
        } else {
            0
        }
    }

    /// Writes the header words of the frame at `off` other than its stamp:
    /// payload length and user type, publish time `ts`, sequence number.
    #[inline(always)]
    pub(super) fn write_header(&self, off: usize, len: u32, msg_type: u32, seq: u64, ts: u64) {
        // Relaxed: these header words are published by the stamp's Release.
        self.mem.store64(off + frame::LEN_TYPE, LenType::message(len, msg_type).raw(), Relaxed);
        self.mem.store64(off + frame::TIMESTAMP, ts, Relaxed);
        self.mem.store64(off + frame::SEQ, seq, Relaxed);
    }

    /// Single producer: commits the frame at `pos` (segment offset `off`),
    /// whose header and payload (`len` bytes) are written.
    #[inline(always)]
    fn commit_single(&self, st: &mut ProducerState, pos: u64, off: usize, len: u32) {
        self.stamp_single(pos, off);
        self.after_single(st, pos, len as u64);
    }

    /// Single producer: the commit stamp of the frame at `pos` (segment
    /// offset `off`), whose header and payload are written.
    #[inline(always)]
    pub(super) fn stamp_single(&self, pos: u64, off: usize) {
        // Release: publishes header and payload to the subscribers'
        // Acquire load of the stamp.
        let stamp = Stamp::committed(pos, self.key()).raw();
        self.mem.store64(off + frame::STAMP, stamp, ord!(Release, "commit_relaxed", Relaxed));
    }

    /// Single producer, after the stamps of one claim's frames (the last
    /// at `pos`, `len` payload bytes in all): the producer line's counters
    /// and hints, then [`Ring::after_commit`].
    #[inline(always)]
    pub(super) fn after_single(&self, st: &mut ProducerState, pos: u64, len: u64) {
        st.bytes = st.bytes.wrapping_add(len);
        // Relaxed: statistics for inspectors, and hints for the next
        // owner after a crash (which acquires ownership first).
        self.mem.store64(prod::NEXT_SEQ, st.next_seq, Relaxed);
        self.mem.store64(prod::BYTES, st.bytes, Relaxed);
        // Relaxed: a hint for readers positioning at the newest frame;
        // they validate the frame it names by its stamp (Acquire) and the
        // tail, so this store publishes nothing (an Acquire/Release pair
        // here was only defensive: loom's `last_acquire` mutation of the
        // reader's side went unnoticed).
        self.mem.store64(prod::LAST, pos + 1, Relaxed);
        self.after_commit(st);
    }

    /// A claim committed with fewer bytes than it reserved: the frame's
    /// unused tail becomes a padding frame.
    #[cold]
    #[inline(never)]
    fn pad_unused(&self, claim: &Claim, len: u32) {
        let used = frame_size(len as u64);
        let claimed = frame_size(claim.len as u64);
        if claimed > used {
            self.write_padding(claim.pos + used, claimed - used);
        }
    }

    /// Multi-producer half of [`Ring::commit`]: the stamp, and statistics.
    #[inline(never)]
    fn commit_multi(&self, st: &mut ProducerState, pos: u64, off: usize, len: u64) -> bool {
        // Release: publishes header and payload to the subscribers' Acquire
        // stamp load. A CAS from our claim mark, so a claim that a
        // subscriber aborted (it thought us dead) is never committed behind
        // its back.
        let stamp = Stamp::committed(pos, self.key()).raw();
        let mark = Stamp::claimed(pos, self.key()).raw();
        #[cfg(shmq_mutation = "commit_store")]
        let lost = {
            self.mem.store64(off + frame::STAMP, stamp, Release);
            mark == 0
        };
        #[cfg(not(shmq_mutation = "commit_store"))]
        let lost =
            self.mem.cas64(off + frame::STAMP, mark, stamp, ord!(Release, "commit_relaxed", Relaxed), Relaxed).is_err();
        if !lost {
            // Relaxed: statistics only.
            self.mem.add64(ctr::MP_BYTES, len, Relaxed);
        }
        self.after_commit(st);
        !lost
    }

    /// Turns a claim into padding (a dropped grant): nothing leaks and
    /// subscribers skip it.
    #[cold]
    #[inline(never)]
    pub fn abort(&self, st: &mut ProducerState, claim: &Claim) {
        let size = frame_size(claim.len as u64);
        if self.layout.multi_producer {
            let off = self.layout.frame_at(claim.pos);
            // Relaxed: published by the Release CAS of the stamp.
            self.mem.store64(off + frame::LEN_TYPE, LenType::padding(size).raw(), Relaxed);
            let (mark, stamp) = (Stamp::claimed(claim.pos, self.key()), Stamp::committed(claim.pos, self.key()));
            // Release: publishes the padding header. Fails only if a
            // subscriber aborted the claim already: skipped either way.
            let _ = self.mem.cas64(
                off + frame::STAMP,
                mark.raw(),
                stamp.raw(),
                ord!(Release, "abort_relaxed", Relaxed),
                Relaxed,
            );
        } else {
            self.write_padding(claim.pos, size);
        }
        if !self.layout.multi_producer {
            // The sequence number was not used: give it back, so overwrite
            // loss counts stay exact.
            st.next_seq = claim.seq;
        }
        self.after_commit(st);
    }

    /// The producer half of the sleep/wake handshake, and the epoch check.
    #[inline(always)]
    pub(super) fn after_commit(&self, st: &mut ProducerState) {
        // SeqCst fence (light half): orders our stamp store before the
        // waiter-count load, pairing with the subscriber's heavy fence between
        // its waiter-count increment and its stamp re-check.
        fence_sc!(self.mem, light, "data_fence");
        // Relaxed: ordered by the fence above.
        if self.mem.load32(wake::DATA_WAITERS, Relaxed) > 0 {
            self.wake_all(wake::DATA_FUTEX);
        }
        // Relaxed: ordered by the fence above; pairs with the joining
        // subscriber's fence (see the join handshake in the module docs).
        if self.mem.load64(prod::JOIN_EPOCH, Relaxed) != st.epoch {
            st.force_rescan();
        }
    }
}
