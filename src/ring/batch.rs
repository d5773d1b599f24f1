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

impl<M: Memory> Ring<M> {
    /// Publishes the longest leading run of `msgs` that fits one fast
    /// claim (see the module docs), with user type `msg_type`, and
    /// returns how many it published: 0, having done nothing, when the
    /// first message does not fit the fast path (a multi-producer topic, a
    /// message too large, a claim that needs the slow path), which the
    /// caller then publishes the general way.
    pub fn publish_batch_fast<B: AsRef<[u8]>>(&self, st: &mut ProducerState, msgs: &[B], msg_type: u32) -> usize {
        let max = self.layout.max_message as usize;
        let budget = frame_size(max as u64);
        let start = st.tail;
        let limit = st.fast_limit.min(start + budget);
        let mut end = start;
        let mut n = 0;
        for m in msgs {
            let len = m.as_ref().len();
            if len > max || end + frame_size(len as u64) > limit {
                break;
            }
            end += frame_size(len as u64);
            n += 1;
        }
        if n == 0 {
            return 0;
        }
        let seq = self.take_frames(st, start, end, n as u64);
        let ts = self.publish_time();
        let (mut pos, mut last, mut bytes) = (start, start, 0u64);
        for (i, m) in msgs[..n].iter().enumerate() {
            let data = m.as_ref();
            let off = self.layout.frame_at(pos);
            self.write_payload_at(off + FRAME_HEADER, data);
            self.write_header(off, data.len() as u32, msg_type, seq.wrapping_add(i as u64), ts);
            self.stamp_single(pos, off);
            bytes += data.len() as u64;
            last = pos;
            pos += frame_size(data.len() as u64);
        }
        debug_assert_eq!(pos, end);
        self.after_single(st, last, bytes);
        n
    }
}
