//! Publishing a batch: several messages under one claim and one commit.
//!
//! A single producer publishing a run of messages does, per message, the
//! work only a frame needs (its payload, its header words, its stamp) and,
//! once per batch, the work a claim needs: the fast-path check against
//! `fast_limit`, the tail store (the `Overwrite` intent, with its fence),
//! the producer line's counters and hints, and the post-commit fence with
//! its look at the waiter count and the join epoch. On a topic with
//! timestamps the batch reads the clock once, so its messages share a
//! publish time.
//!
//! Subscribers see nothing new: every frame is committed by its own stamp
//! (`Release`), in position order, exactly as one-by-one publishes commit
//! them, and a subscriber may read the first frames of a batch while the
//! producer still writes the last. No ordering is added, and the model of
//! `loom-tests/` runs this path (`batch_frames_arrive_in_order`).
//!
//! # How large a batch may be
//! A batch claim covers at most the bytes of one largest frame
//! (`frame_size(max_message)`) and never crosses the ring's end (it stays
//! under `fast_limit`, which ends at the lap). Two bounds elsewhere rest on
//! that: the join handshake assumes one claim made with a stale view of
//! the epoch reaches no further than `claim_end_bound` (see `gating`), and
//! a producer taking over from a dead one repairs at most `max_claim`
//! bytes after the dead one's claim start (`repair_single_claim`, which
//! keeps the batch's committed frames and pads the rest). A longer run of
//! messages is published as several batches.
//!
//! Multi-producer topics have no fast path (`fast_limit` is 0): each of
//! their messages needs its own claim, mark and commit (see "Stuck claims"
//! in the `ring` docs), so a batch there is published message by message.

use super::{ProducerState, Ring};
use crate::layout::{frame_size, FRAME_HEADER};
use crate::mem::Memory;

/// A run of frames claimed by [`Ring::claim_run`] and being committed one
/// by one ([`Ring::commit_run_frame`]), in position order.
#[derive(Debug)]
pub struct Run {
    /// Position of the next frame to commit.
    pos: u64,
    /// End of the claim.
    end: u64,
    /// Sequence number of the next frame.
    seq: u64,
    /// Publish time every frame of the run gets.
    ts: u64,
    /// Frames claimed, and committed so far.
    count: usize,
    done: usize,
    /// Position of the last committed frame, and payload bytes committed.
    last: u64,
    bytes: u64,
}

impl Run {
    /// No run: what a finished run is replaced with (finishing it does
    /// nothing but the post-commit handshake).
    pub const EMPTY: Run = Run { pos: 0, end: 0, seq: 0, ts: 0, count: 0, done: 0, last: 0, bytes: 0 };

    /// Frames claimed.
    pub fn len(&self) -> usize {
        self.count
    }
    /// Whether no frame was claimed (never: `claim_run` returns `None`).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl<M: Memory> Ring<M> {
    /// Claims the longest leading run of frames, with payloads of
    /// `len(0)`, `len(1)`, ... bytes (at most `count` of them), that fits
    /// one fast claim (see the module docs). `None`, having done nothing,
    /// when not even the first fits the fast path (a multi-producer topic,
    /// a message too large, a claim that needs the slow path): the caller
    /// then publishes it the general way.
    #[inline]
    pub fn claim_run(&self, st: &mut ProducerState, count: usize, len: impl Fn(usize) -> usize) -> Option<Run> {
        let max = self.layout.max_message as usize;
        let start = st.tail;
        let limit = st.fast_limit.min(start + frame_size(max as u64));
        let mut end = start;
        let mut n = 0;
        while n < count {
            let l = len(n);
            if l > max || end + frame_size(l as u64) > limit {
                break;
            }
            end += frame_size(l as u64);
            n += 1;
        }
        if n == 0 {
            return None;
        }
        let seq = self.take_frames(st, start, end, n as u64);
        Some(Run { pos: start, end, seq, ts: self.publish_time(), count: n, done: 0, last: start, bytes: 0 })
    }

    /// Where the payload of the run's next frame goes (segment offset),
    /// for the caller to write `len` bytes there (exactly the length the
    /// claim was made with) before [`Ring::commit_run_frame`].
    #[inline(always)]
    pub fn run_payload_off(&self, run: &Run) -> usize {
        self.layout.frame_at(run.pos) + FRAME_HEADER
    }

    /// Commits the run's next frame, whose `len`-byte payload is written:
    /// its header words, then its stamp (`Release`).
    #[inline(always)]
    pub fn commit_run_frame(&self, run: &mut Run, len: usize, msg_type: u32) {
        debug_assert!(run.done < run.count);
        let off = self.layout.frame_at(run.pos);
        self.write_header(off, len as u32, msg_type, run.seq, run.ts);
        self.stamp_single(run.pos, off);
        run.last = run.pos;
        run.bytes += len as u64;
        run.pos += frame_size(len as u64);
        run.seq = run.seq.wrapping_add(1);
        run.done += 1;
    }

    /// Ends a run: the producer line's counters and hints, and the
    /// post-commit handshake, once for the run. Frames not committed
    /// (a writer that panicked) become one padding frame, and their
    /// sequence numbers are given back, so nothing stalls and `Overwrite`
    /// loss counts stay exact.
    pub fn finish_run(&self, st: &mut ProducerState, run: Run) {
        if run.done < run.count {
            self.write_padding(run.pos, run.end - run.pos);
            st.next_seq = run.seq;
        }
        debug_assert!(run.done < run.count || run.pos == run.end);
        if run.done > 0 {
            self.after_single(st, run.last, run.bytes);
        } else {
            self.after_commit(st);
        }
    }

    /// Publishes the longest leading run of `msgs` that fits one fast
    /// claim, with user type `msg_type`, and returns how many it
    /// published: 0, having done nothing, when the first message does not
    /// fit the fast path, which the caller then publishes the general way.
    pub fn publish_batch_fast<B: AsRef<[u8]>>(&self, st: &mut ProducerState, msgs: &[B], msg_type: u32) -> usize {
        let Some(mut run) = self.claim_run(st, msgs.len(), |i| msgs[i].as_ref().len()) else {
            return 0;
        };
        let n = run.len();
        for m in &msgs[..n] {
            let data = m.as_ref();
            self.write_payload_at(self.run_payload_off(&run), data);
            self.commit_run_frame(&mut run, data.len(), msg_type);
        }
        self.finish_run(st, run);
        n
    }
}
