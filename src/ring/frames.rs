//! Frame headers: how a reader validates the length/type word it finds,
//! how a padding frame is written, and the view of a committed frame.
//!
//! A frame is a 32-byte header and its payload, padded to 32 bytes
//! ([`crate::layout::frame_size`]); the header's words and their encodings are in
//! [`crate::layout`] ([`Stamp`], [`LenType`]). Every length read from the
//! ring is validated here before any offset is computed from it: a payload
//! no longer than `max_message`, a padding size that is a whole number of
//! frame headers, and a frame that ends before the ring does.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::Ring;
use crate::layout::{frame, prod, LenType, Stamp, FRAME_HEADER};
use crate::mem::Memory;

/// A committed frame found at a subscriber's cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameView {
    /// Position of the frame.
    pub pos: u64,
    /// Segment offset of the payload.
    pub payload_off: usize,
    /// Payload length.
    pub len: u32,
    /// User type.
    pub msg_type: u32,
    /// Publish time (monotonic ns).
    pub timestamp_ns: u64,
    /// Sequence number.
    pub seq: u64,
    /// Position after this frame.
    pub next: u64,
    /// `Overwrite`: messages lost just before this one.
    pub lost: u64,
    /// Consumer group: how many times this message has been delivered
    /// (1 unless redelivered after a member died holding it); else 1.
    pub deliveries: u32,
}

/// A frame header read and validated by [`Ring::header_validated`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    /// Frame size in bytes.
    pub(super) size: u64,
    /// `None` for a padding frame.
    pub(super) seq: Option<u64>,
    /// Publish time (0 on a topic without timestamps).
    pub(super) ts: u64,
}

impl<M: Memory> Ring<M> {
    /// Size of the frame at `pos` whose len/type word is `lt`, if valid.
    #[inline(always)]
    pub(super) fn frame_len_of(&self, pos: u64, lt: u64) -> Option<u64> {
        self.layout.frame_len(pos, LenType::from_raw(lt))
    }

    /// Writes and commits a padding frame of `size` bytes at `pos`.
    pub(super) fn write_padding(&self, pos: u64, size: u64) {
        let off = self.layout.frame_at(pos);
        // Relaxed: published by the stamp's Release store below.
        self.mem.store64(off + frame::LEN_TYPE, LenType::padding(size).raw(), Relaxed);
        // Release: publishes the padding header to subscribers' Acquire stamp load.
        let stamp = Stamp::committed(pos, self.key()).raw();
        self.mem.store64(off + frame::STAMP, stamp, ord!(Release, "commit_relaxed", Relaxed));
    }

    /// The view of the committed message at `pos`, whose validated
    /// length/type word is `lt` (not padding) and frame size `size`.
    #[inline(always)]
    pub(super) fn view_at(&self, pos: u64, lt: u64, size: u64) -> FrameView {
        self.view_at_off(pos, self.layout.frame_at(pos), lt, size)
    }

    /// [`Ring::view_at`] of the frame at segment offset `off`.
    #[inline(always)]
    pub(super) fn view_at_off(&self, pos: u64, off: usize, lt: u64, size: u64) -> FrameView {
        FrameView {
            pos,
            payload_off: off + FRAME_HEADER,
            len: LenType::from_raw(lt).length(),
            msg_type: LenType::from_raw(lt).msg_type(),
            // Relaxed: ordered after the caller's Acquire stamp load.
            timestamp_ns: self.mem.load64(off + frame::TIMESTAMP, Relaxed),
            seq: self.mem.load64(off + frame::SEQ, Relaxed),
            next: pos + size,
            lost: 0,
            deliveries: 1,
        }
    }

    /// Reads the header of the committed frame at `p` and validates it
    /// against overwrite.
    pub(super) fn header_validated(&self, p: u64) -> Option<Header> {
        let off = self.layout.frame_at(p);
        // Acquire: pairs with the producer's Release stamp store.
        if self.mem.load64(off + frame::STAMP, ord!(Acquire, "header_acquire", Relaxed))
            != Stamp::committed(p, self.key()).raw()
        {
            return None;
        }
        let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
        let seq = self.mem.load64(off + frame::SEQ, Relaxed);
        let ts = self.mem.load64(off + frame::TIMESTAMP, Relaxed);
        let size = self.frame_len_of(p, lt)?;
        // Acquire fence: pairs with the producer's Release fence after its
        // tail (intent) store; if the tail has not passed p + capacity, the
        // words we read were not being overwritten.
        #[cfg(not(shmq_mutation = "header_fence"))]
        self.mem.fence(Acquire);
        if self.load_pos(prod::TAIL, Relaxed) > p + self.cap() {
            return None;
        }
        let is_pad = LenType::from_raw(lt).is_padding();
        Some(Header { size, seq: (!is_pad).then_some(seq), ts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{frame_size, Layout, Policy};

    /// A ring over plain memory, for the arithmetic only.
    fn ring(cap: u64, max: u32) -> Ring<crate::mem::tests::Plain> {
        let layout = Layout::new(cap, max, 1, Policy::Block, false, 0).expect("layout");
        Ring::new(crate::mem::tests::Plain::new(layout.file_len() as usize), layout)
    }

    #[test]
    fn frame_lengths_are_validated() {
        let r = ring(1024, 100);
        let ok = |pos, lt: LenType| r.frame_len_of(pos, lt.raw());
        assert_eq!(ok(0, LenType::message(0, 0)), Some(32));
        assert_eq!(ok(0, LenType::message(1, 9)), Some(64));
        assert_eq!(ok(0, LenType::message(100, 0)), Some(frame_size(100)));
        assert_eq!(ok(0, LenType::message(101, 0)), None, "longer than max_message");
        assert_eq!(ok(0, LenType::message(u32::MAX, 0)), None);
        // Padding: its length is the frame size, a whole number of headers
        // that ends at or before the ring's end.
        assert_eq!(ok(0, LenType::padding(32)), Some(32));
        assert_eq!(ok(960, LenType::padding(64)), Some(64), "up to the end");
        assert_eq!(ok(960, LenType::padding(96)), None, "past the end");
        assert_eq!(ok(0, LenType::padding(0)), None, "empty");
        assert_eq!(ok(0, LenType::padding(48)), None, "not whole headers");
        assert_eq!(ok(0, LenType::padding(u32::MAX as u64)), None);
        // A message frame that would cross the ring's end.
        assert_eq!(ok(1024 - 32, LenType::message(1, 0)), None);
        // The same offset on a later lap.
        assert_eq!(ok(5 * 1024 + 960, LenType::padding(64)), Some(64));
    }
}
