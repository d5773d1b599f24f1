//! `Overwrite` reading, and every reader that takes no part in gating.
//!
//! The producer never waits: before writing it stores the new tail (its
//! *intent*) and issues a `Release` fence. A reader copies the frame (with
//! atomic word loads, or one `rep movsb` and `lfence` for a payload of
//! 256 bytes or more: `Memory::read_racy`), issues an `Acquire` fence and
//! re-reads the tail; if
//! the tail passed `position + capacity`, the copy may be torn and is
//! discarded (Agrona's `BroadcastReceiver::validate`). A lapped subscriber
//! jumps to the oldest intact frame; dense sequence numbers make its loss
//! count exact. Passive readers ([`crate::Tail`], the CLI) use the same
//! copy-and-validate on a read-only mapping, and seeking a start (by
//! sequence number or time) walks validated headers.

use std::sync::atomic::Ordering::{Acquire, Relaxed};

use super::frames::Header;
use super::{sane_pos, FrameView, ReadError, Ring, SubState};
use crate::layout::{frame, prod, slot, LenType, Stamp, StampState, FRAME_HEADER, MAX_POS};
use crate::mem::Memory;
use crate::start::Start;

/// How many times a lapped `Overwrite` reader retries before giving up for
/// this call.
const LAP_RETRIES: u32 = 64;

/// What a passive reader (no slot, read-only) found at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passive {
    /// A committed message, copied and validated.
    Frame(FrameView),
    /// A padding frame; the next frame starts at the given position.
    Skip(u64),
    /// Nothing committed there yet.
    Empty,
    /// The producer overwrote the position before it could be read.
    Lapped,
}

impl<M: Memory> Ring<M> {
    /// `Overwrite`: copies the next message into `buf` (at least
    /// `max_message` bytes) and validates it. `Ok(None)`: nothing new (or
    /// lapped faster than it could read; call again).
    pub fn read_copy(&self, st: &mut SubState, buf: &mut [u8]) -> Result<Option<FrameView>, ReadError> {
        for attempt in 0..LAP_RETRIES {
            if attempt > 0 {
                // Retrying after a lap or a padding frame: let the producer run.
                self.mem.snooze(attempt);
            }
            // The copy and its validation are the passive reader's; this
            // adds the subscriber's state (cursor, loss count, statistics).
            let v = match self.read_passive(st.cursor, buf)? {
                Passive::Empty => return Ok(None),
                Passive::Lapped => {
                    self.jump_to_oldest(st);
                    continue;
                }
                Passive::Skip(next) => {
                    st.cursor = next;
                    continue;
                }
                Passive::Frame(v) => v,
            };
            let lost = if st.expected_seq == u64::MAX { 0 } else { v.seq.saturating_sub(st.expected_seq) };
            st.lost = st.lost.saturating_add(lost);
            st.received += 1;
            st.expected_seq = v.seq.wrapping_add(1);
            st.cursor = v.next;
            let s = self.layout.slot(st.slot);
            // Relaxed: statistics for inspectors (Overwrite cursors never
            // gate the producer).
            self.mem.store64(s + slot::CURSOR, st.cursor, Relaxed);
            self.mem.store64(s + slot::RECEIVED, st.received, Relaxed);
            self.mem.store64(s + slot::LOST, st.lost, Relaxed);
            self.mem.store64(s + slot::NEXT_SEQ, st.expected_seq, Relaxed);
            return Ok(Some(FrameView { lost, ..v }));
        }
        Ok(None)
    }

    /// Reads the frame at `pos` without taking part in the protocol: loads
    /// only, so it works on a read-only mapping, and never slows a producer.
    /// Copies into `buf` (at least `max_message` bytes) and validates the
    /// copy against the tail, as an `Overwrite` subscriber does.
    #[inline]
    pub fn read_passive(&self, pos: u64, buf: &mut [u8]) -> Result<Passive, ReadError> {
        let off = self.layout.frame_at(pos);
        // Acquire: pairs with the producer's Release stamp store, so the
        // header words below are this lap's (the tail check after the copy
        // only notices a *later* overwrite).
        let stamp = self.mem.load64(off + frame::STAMP, ord!(Acquire, "passive_stamp_acquire", Relaxed));
        if Stamp::state(stamp, pos, self.key()) == StampState::Aborted {
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            return match self.frame_len_of(pos, lt) {
                Some(size) => Ok(Passive::Skip(pos + size)),
                None => Err(ReadError::Corrupt(format!("aborted frame at position {pos}: bad length word {lt:#x}"))),
            };
        }
        if stamp != Stamp::committed(pos, self.key()).raw() {
            // Acquire: only defensive (it could be Relaxed): nothing is read
            // after this load; it only tells a lapped reader from one that
            // is early, and both look again.
            return Ok(if self.load_pos(prod::TAIL, Acquire) > pos + self.cap() {
                Passive::Lapped
            } else {
                Passive::Empty
            });
        }
        let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
        let ts = self.mem.load64(off + frame::TIMESTAMP, Relaxed);
        let seq = self.mem.load64(off + frame::SEQ, Relaxed);
        let size = self.frame_len_of(pos, lt);
        let len = LenType::from_raw(lt).length() as usize;
        let is_pad = LenType::from_raw(lt).is_padding();
        if size.is_some() && !is_pad && len <= buf.len() {
            self.mem.read_racy(off + FRAME_HEADER, &mut buf[..len]);
        }
        // Acquire fence: pairs with the producer's Release fence after its
        // tail store (see the module docs).
        #[cfg(not(shmq_mutation = "validate_fence"))]
        self.mem.fence(Acquire);
        if self.load_pos(prod::TAIL, Relaxed) > pos + self.cap() {
            return Ok(Passive::Lapped);
        }
        let Some(size) = size else {
            return Err(ReadError::Corrupt(format!("frame at position {pos}: length/type word {lt:#x} is invalid")));
        };
        if is_pad {
            return Ok(Passive::Skip(pos + size));
        }
        if len > buf.len() {
            return Err(ReadError::Corrupt(format!("frame at position {pos}: length {len} exceeds the buffer")));
        }
        Ok(Passive::Frame(FrameView {
            pos,
            payload_off: off + FRAME_HEADER,
            len: len as u32,
            msg_type: LenType::from_raw(lt).msg_type(),
            timestamp_ns: ts,
            seq,
            next: pos + size,
            lost: 0,
            deliveries: 1,
        }))
    }

    /// Where a passive reader starts: the tail (newest), or the oldest
    /// frame the ring advertises.
    pub fn passive_start(&self, start: Start) -> u64 {
        let tail = self.load_pos(prod::TAIL, Relaxed);
        match start {
            Start::Newest => tail,
            Start::Oldest => self.oldest_hint(tail),
            Start::Seq(_) | Start::Time(_) => self.seek(self.oldest_hint(tail), tail, start).0,
        }
    }

    fn jump_to_oldest(&self, st: &mut SubState) {
        let tail = self.load_pos(prod::TAIL, Relaxed);
        let oldest = self.load_pos(prod::OLDEST, Relaxed).min(tail);
        // A frame start a whole ring behind the tail is gone already.
        st.cursor = oldest.max(st.cursor);
        if st.cursor + self.cap() < tail {
            st.cursor = oldest;
        }
    }

    /// Positions an `Overwrite` subscriber: after the last committed frame
    /// (newest), or at the oldest intact frame.
    pub(super) fn position_overwrite(&self, st: &mut SubState, start: Start) {
        for attempt in 0..LAP_RETRIES {
            if attempt > 0 {
                self.mem.snooze(attempt);
            }
            let tail = self.load_pos(prod::TAIL, Relaxed);
            let target = match start {
                Start::Newest => {
                    // Relaxed: a hint; the frame it names is validated below.
                    let last = self.mem.load64(prod::LAST, Relaxed);
                    if last == 0 || last > MAX_POS {
                        st.cursor = 0;
                        st.expected_seq = 0;
                        return;
                    }
                    sane_pos(last - 1)
                }
                _ => self.load_pos(prod::OLDEST, Relaxed).min(tail),
            };
            // Skip padding frames to a real frame, to learn its sequence.
            let mut p = target;
            let mut found = None;
            for _ in 0..4 {
                match self.header_validated(p) {
                    Some(Header { size, seq: None, .. }) => p += size,
                    Some(Header { size, seq: Some(seq), .. }) => {
                        found = Some((p, size, seq));
                        break;
                    }
                    None => break,
                }
            }
            if let Some((p, size, seq)) = found {
                match start {
                    Start::Newest => {
                        st.cursor = p + size;
                        st.expected_seq = seq.wrapping_add(1);
                    }
                    Start::Oldest => {
                        st.cursor = p;
                        st.expected_seq = seq;
                    }
                    Start::Seq(_) | Start::Time(_) => {
                        let (q, at) = self.seek(p, tail, start);
                        if q < tail && at.is_none() {
                            continue; // lapped while walking: look again
                        }
                        st.expected_seq = match (start, at) {
                            // Asked for messages already gone: the first
                            // receive reports them as lost.
                            (Start::Seq(s), _) if s < seq => s,
                            (_, Some(at)) => at,
                            _ => match self.seq_at_tail(q) {
                                Some(next) => next,
                                None => continue, // the tail moved: look again
                            },
                        };
                        st.cursor = q;
                    }
                }
                return;
            }
            if p == tail {
                // Nothing (or only padding) up to the tail: the next message
                // is the first one this subscriber reads.
                if let Some(next) = self.seq_at_tail(p) {
                    st.cursor = p;
                    st.expected_seq = next;
                    return;
                }
            }
        }
        // The producer laps us faster than we can look: start at the tail;
        // the first frame read fixes the sequence.
        st.cursor = self.load_pos(prod::TAIL, Relaxed);
        st.expected_seq = u64::MAX;
    }

    /// The sequence number of the message that will start at `tail`, the
    /// end of what a reader found committed, if it can be known exactly
    /// now; `None` if the producer has moved on (look again). It is one
    /// more than the number of the last committed frame when that frame
    /// ends at `tail`. The shared `NEXT_SEQ` counter alone cannot say:
    /// read beside a stale tail it numbered a subscriber's start wrongly,
    /// and its loss counts were off by as much (found by loom:
    /// `overwrite_subscriber_joins_while_publishing`).
    fn seq_at_tail(&self, tail: u64) -> Option<u64> {
        // Relaxed: a hint; the frame it names is validated below.
        let last = self.mem.load64(prod::LAST, Relaxed);
        if last == 0 || last > MAX_POS {
            // Nothing committed since the topic was made or recovered: the
            // counter is exact if the tail is still where it was.
            let next = self.mem.load64(prod::NEXT_SEQ, Relaxed);
            // Acquire fence: pairs with the producer's Release fence after
            // its tail store (`take_single`): a count that includes a claim
            // means the tail load below sees that claim.
            self.mem.fence(Acquire);
            return (self.load_pos(prod::TAIL, Relaxed) == tail).then_some(next);
        }
        let p = sane_pos(last - 1);
        let h = self.header_validated(p)?;
        let seq = h.seq?;
        (p + h.size == tail).then(|| seq.wrapping_add(1))
    }

    /// From frame start `from`, walks committed frames to the first frame
    /// start at or after `min_pos`, validating each header against the tail
    /// (a header the producer may be overwriting is not trusted). Returns
    /// `None` if the walk hits something it cannot validate.
    pub(super) fn walk_to(&self, from: u64, min_pos: u64, tail: u64) -> Option<u64> {
        let mut p = from;
        let mut steps = 0u64;
        while p < min_pos {
            p += self.header_validated(p)?.size;
            steps += 1;
            if p > tail || steps > self.cap() / FRAME_HEADER as u64 {
                return None;
            }
        }
        Some(p)
    }

    /// From frame start `p`, walks committed frames (below `tail`) to the
    /// first message `start` stops at. Returns its position and its
    /// sequence number, or where the walk ended (the tail, or a frame it
    /// could not validate) and `None`.
    pub(super) fn seek(&self, mut p: u64, tail: u64, start: Start) -> (u64, Option<u64>) {
        let mut steps = 0u64;
        while p < tail && steps <= self.cap() / FRAME_HEADER as u64 {
            let Some(h) = self.header_validated(p) else {
                break;
            };
            if let Some(seq) = h.seq {
                if start.reached_by(seq, h.ts) {
                    return (p, Some(seq));
                }
            }
            p += h.size;
            steps += 1;
        }
        (p, None)
    }
}
