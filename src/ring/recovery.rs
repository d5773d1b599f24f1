//! Recovery of a file-backed topic after a machine restart.
//!
//! Pages the kernel wrote back on its own may have reached the disk torn or
//! not at all, so only what a producer's `flush` recorded (`prod::FLUSHED`)
//! is trusted: the committed frames up to it are kept, every other stamp is
//! erased, the producer words are reset, plain subscribers' slots are
//! freed and durable ones detached (their cursors clamped to what was
//! kept). The caller holds an exclusive lock on the file and no process of
//! the previous boot runs, so everything here is `Relaxed`, except the
//! final `Release` store of the boot id that other openers wait for.

use std::sync::atomic::Ordering::{Relaxed, Release};

use super::Ring;
use crate::layout::{frame, hdr, prod, slot, wake, FRAME_HEADER};
use crate::mem::Memory;

impl<M: Memory> Ring<M> {
    /// After a machine restart (a file-backed topic whose header carries
    /// another boot id): keeps the committed frames up to the producers'
    /// last flush, erases every other stamp (pages written after the flush
    /// may have reached the disk torn or not at all), resets the producer
    /// words, frees plain subscribers' slots and detaches durable ones
    /// (their cursors clamped to what was kept), then records `boot`.
    /// The caller holds an exclusive lock on the file; no process of the
    /// previous boot runs. Returns the number of messages kept.
    pub fn recover_after_reboot(&self, boot: u64) -> u64 {
        let cap = self.cap();
        let flushed = self.load_pos(prod::FLUSHED, Relaxed).min(self.load_pos(prod::TAIL, Relaxed));
        // A known frame start at or before the flush: the oldest frame
        // (single producer), or the lowest cursor a durable subscriber or
        // group kept (cursors are frame starts).
        let mut start = if self.layout.multi_producer {
            (0..self.layout.max_subscribers as usize)
                .map(|i| self.layout.slot(i))
                .filter(|&s| self.mem.load32(s + slot::STATE, Relaxed) == slot::state::ACTIVE)
                .filter(|&s| {
                    self.mem.load32(s + slot::FLAGS, Relaxed) & (slot::flags::DURABLE | slot::flags::GROUP) != 0
                })
                .map(|s| self.load_pos(s + slot::CURSOR, Relaxed))
                .min()
                .unwrap_or(flushed)
        } else {
            self.load_pos(prod::OLDEST, Relaxed)
        };
        if start > flushed || flushed - start > cap {
            start = flushed;
        }
        let (mut p, mut kept, mut last) = (start, 0u64, None);
        while p < flushed {
            match self.header_validated(p) {
                Some(h) if p + h.size <= flushed => {
                    if let Some(seq) = h.seq {
                        kept += 1;
                        last = Some((p, seq));
                    }
                    p += h.size;
                }
                _ => break,
            }
        }
        let end = p;
        // Relaxed everywhere below: nobody else maps the file (see above);
        // the caller syncs it to disk afterwards.
        let mut q = end;
        while q < start + cap {
            self.mem.store64(self.layout.frame_at(q) + frame::STAMP, 0, Relaxed);
            q += FRAME_HEADER as u64;
        }
        for w in [prod::TAIL, prod::CLAIM_START, prod::FLUSHED] {
            self.mem.store64(w, end, Relaxed);
        }
        self.mem.store64(prod::OLDEST, start, Relaxed);
        self.mem.store64(prod::OWNER, 0, Relaxed);
        self.mem.store64(prod::LAST, last.map_or(0, |(pos, _)| pos + 1), Relaxed);
        if !self.layout.multi_producer {
            let next = last.map_or_else(|| self.mem.load64(prod::NEXT_SEQ, Relaxed), |(_, seq)| seq.wrapping_add(1));
            self.mem.store64(prod::NEXT_SEQ, next, Relaxed);
        }
        for w in [wake::DATA_WAITERS, wake::SPACE_WAITERS] {
            self.mem.store32(w, 0, Relaxed);
        }
        for i in 0..self.layout.max_subscribers as usize {
            let s = self.layout.slot(i);
            let state = self.mem.load32(s + slot::STATE, Relaxed);
            let flags = self.mem.load32(s + slot::FLAGS, Relaxed);
            let cursor = self.load_pos(s + slot::CURSOR, Relaxed);
            if state == slot::state::EXPIRED {
                continue;
            }
            if state != slot::state::ACTIVE
                || flags & (slot::flags::DURABLE | slot::flags::GROUP | slot::flags::MEMBER) == 0
            {
                self.mem.store32(s + slot::STATE, slot::state::FREE, Relaxed);
                continue;
            }
            let c = if flags & slot::flags::MEMBER != 0 {
                // A held message that was kept is redelivered (its owner is
                // gone); one that was not is lost with the unflushed tail.
                if (start..end).contains(&cursor) {
                    cursor
                } else {
                    slot::IDLE
                }
            } else {
                cursor.clamp(start, end)
            };
            self.mem.store64(s + slot::CURSOR, c, Relaxed);
            if flags & slot::flags::DURABLE != 0 {
                self.mem.store64(s + slot::OWNER, 0, Relaxed);
            }
        }
        // Release: only defensive: the recovering opener holds an exclusive
        // flock, and every other opener takes the lock before it reads the
        // boot id again, so the kernel's lock orders the recovery first.
        self.mem.store64(hdr::BOOT_ID, boot, Release);
        kept
    }
}
