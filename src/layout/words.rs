//! One type per shared-memory word whose bits carry more than one value:
//! each encodes and decodes its word in one place, so the format is stated
//! once and every reader agrees with every writer.
//!
//! ```text
//!  frame header (32 bytes, at a 32-byte aligned frame start)
//!   0                   31 32                  63
//!  +-----------------------------------------------+
//!  | stamp: position ^ key ^ state bits  (Stamp)   |  word 0
//!  +-----------------------+-----------------------+
//!  | payload length (u32)  | type (u31) |P|        |  word 1 (LenType; P = bit 63: padding,
//!  +-----------------------+-----------------------+          whose length is the frame size)
//!  | publish time, CLOCK_MONOTONIC ns; while a      |  word 2
//!  | multi-producer claim is open: its Owner (the   |
//!  | claiming producer's attachment id)             |
//!  +-----------------------------------------------+
//!  | sequence number                               |  word 3
//!  +-----------------------------------------------+
//!
//!  subscriber slot (256 bytes)
//!   0   state (u32) | flags (u32)       <- scanned by producers (first line)
//!   8   cursor (u64; IDLE for an idle group member)
//!  16   group record slot (u32, members)
//!  128  owner (Owner: attachment id; 0 none)  <- read by inspectors (second line)
//!  136  owner's pid (display)   144 received   152 lost   160 last seen (ns)
//!  168  name (SlotName: 32 bytes, NUL padded)     200 next expected seq
//! ```
//!
//! Positions read from shared memory are clamped to [`MAX_POS`] (see
//! `Ring::load_pos`); every special value below sits at or above it, so no
//! valid position, and no stamp of a valid position, can ever spell one.

use super::{frame, SLOT_NAME_LEN};

/// Positions are below this (4.6 EB: never reached). A value loaded from
/// shared memory is clamped to it, so adding a capacity never overflows.
pub const MAX_POS: u64 = 1 << 62;

/// The cursor of a group member that holds nothing. It equals [`MAX_POS`]:
/// no valid position reaches it, and a corrupt cursor, clamped, reads as
/// idle (it then gates nothing, which is what a member holding nothing
/// does).
pub const IDLE: u64 = MAX_POS;

/// State bit of a frame claimed by a multi-producer and not yet committed.
const CLAIMED: u64 = 1 << 63;
/// State bit of a claim a subscriber gave up on (skipped like padding).
const ABORTED: u64 = 1 << 62;
/// Both bits: a subscriber is aborting the claim (writing its skip length).
const ABORTING: u64 = CLAIMED | ABORTED;

// A stamp with a state bit set is `pos ^ key ^ bit`; it could equal the
// committed stamp of position `pos ^ bit` only if that position were valid.
const _: () = assert!(ABORTED >= MAX_POS && CLAIMED >= MAX_POS && ABORTING >= MAX_POS);
const _: () = assert!(IDLE == MAX_POS && IDLE % super::FRAME_ALIGN as u64 == 0);
// The padding bit of the length/type word is the frame module's bit 31 of the type.
const _: () = assert!(frame::PADDING == 1 << 31);

/// What a frame's stamp says about the frame at the position it is read for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StampState {
    /// `pos ^ key`: committed for this lap (a message or padding).
    Committed,
    /// `pos ^ key ^ CLAIMED`: a multi-producer claimed it; its owner is in
    /// the timestamp word until it commits.
    Claimed,
    /// `pos ^ key ^ ABORTING`: a subscriber is turning a stuck claim into a skip.
    Aborting,
    /// `pos ^ key ^ ABORTED`: a stuck claim, skipped like padding.
    Aborted,
    /// Anything else: not written for this lap yet (or corrupt).
    Stale,
}

/// A frame's stamp word (frame word 0): the frame's absolute position XOR
/// the topic's stamp key, with state bits for multi-producer claims.
/// Written last, with `Release`: a reader that loads the stamp it expects
/// with `Acquire` sees the rest of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp(u64);

impl Stamp {
    /// The committed stamp of the frame at `pos`.
    #[inline(always)]
    pub const fn committed(pos: u64, key: u64) -> Stamp {
        Stamp(pos ^ key)
    }
    /// The mark of a multi-producer's open claim at `pos`.
    #[inline(always)]
    pub const fn claimed(pos: u64, key: u64) -> Stamp {
        Stamp(pos ^ key ^ CLAIMED)
    }
    /// The stamp of a claim at `pos` a subscriber is aborting.
    #[inline(always)]
    pub const fn aborting(pos: u64, key: u64) -> Stamp {
        Stamp(pos ^ key ^ ABORTING)
    }
    /// The stamp of a claim at `pos` a subscriber aborted.
    #[inline(always)]
    pub const fn aborted(pos: u64, key: u64) -> Stamp {
        Stamp(pos ^ key ^ ABORTED)
    }
    /// The raw word.
    #[inline(always)]
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// What `raw`, read at the frame of `pos`, says about that frame.
    #[inline]
    pub const fn state(raw: u64, pos: u64, key: u64) -> StampState {
        match raw ^ pos ^ key {
            0 => StampState::Committed,
            CLAIMED => StampState::Claimed,
            ABORTING => StampState::Aborting,
            ABORTED => StampState::Aborted,
            _ => StampState::Stale,
        }
    }
}

/// A frame's length/type word (frame word 1): the payload length in the
/// low 32 bits and the user type in the high 32, whose top bit
/// ([`frame::PADDING`]) marks a padding frame, whose length is then the
/// size of the whole frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LenType(u64);

impl LenType {
    /// A message of `len` payload bytes with user type `msg_type` (its
    /// padding bit is cleared: user types are below 2^31).
    #[inline(always)]
    pub const fn message(len: u32, msg_type: u32) -> LenType {
        LenType(len as u64 | ((msg_type & !frame::PADDING) as u64) << 32)
    }
    /// A padding frame of `size` bytes (a multiple of the frame alignment).
    #[inline(always)]
    pub const fn padding(size: u64) -> LenType {
        LenType(size | (frame::PADDING as u64) << 32)
    }
    /// The word as read from shared memory (not validated).
    #[inline(always)]
    pub const fn from_raw(raw: u64) -> LenType {
        LenType(raw)
    }
    /// The raw word.
    #[inline(always)]
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// The payload length (a message) or the frame size (padding).
    #[inline(always)]
    pub const fn length(self) -> u32 {
        self.0 as u32
    }
    /// The type half, padding bit included.
    #[inline(always)]
    pub const fn msg_type(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// Whether this is a padding frame.
    #[inline(always)]
    pub const fn is_padding(self) -> bool {
        self.msg_type() & frame::PADDING != 0
    }
}

/// Who holds a slot, the single-producer line, or an open multi-producer
/// claim: an attachment id, the number a producer or subscriber took from
/// [`super::hdr::ATTACH_SEQ`] when it attached (ids are never reused
/// within a topic's life). Whether its holder is alive is a question for
/// the kernel, not for this word: the holder keeps a lock on the byte
/// [`super::lock::attachment`] of its id for as long as it lives, in any
/// pid namespace (see `Memory::alive`). 0 is nobody (a detached durable
/// subscriber, a group's record, a free producer line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner(u64);

impl Owner {
    /// Nobody.
    pub const NONE: Owner = Owner(0);
    /// The word as read from (or to be written to) shared memory.
    #[inline(always)]
    pub const fn from_raw(raw: u64) -> Owner {
        Owner(raw)
    }
    /// The raw word: the attachment id.
    #[inline(always)]
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// Whether this is [`Owner::NONE`].
    #[inline(always)]
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }
}

/// A slot's name (durable subscriber, consumer group, or a plain
/// subscriber's label): up to [`SLOT_NAME_LEN`] bytes, NUL padded, stored as
/// four little-endian u64 words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SlotName([u8; SLOT_NAME_LEN]);

impl SlotName {
    /// Number of u64 words a name takes.
    pub const WORDS: usize = SLOT_NAME_LEN / 8;

    /// The name `bytes`, truncated to [`SLOT_NAME_LEN`] bytes.
    pub fn new(bytes: &[u8]) -> SlotName {
        let mut b = [0u8; SLOT_NAME_LEN];
        let n = bytes.len().min(SLOT_NAME_LEN);
        b[..n].copy_from_slice(&bytes[..n]);
        SlotName(b)
    }
    /// The name from its words as read from shared memory.
    pub fn from_words(words: [u64; Self::WORDS]) -> SlotName {
        let mut b = [0u8; SLOT_NAME_LEN];
        for (chunk, w) in b.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        SlotName(b)
    }
    /// The words to store.
    pub fn words(&self) -> [u64; Self::WORDS] {
        let mut w = [0u64; Self::WORDS];
        for (i, chunk) in self.0.chunks_exact(8).enumerate() {
            let mut a = [0u8; 8];
            a.copy_from_slice(chunk);
            w[i] = u64::from_le_bytes(a);
        }
        w
    }
    /// The bytes before the first NUL.
    pub fn as_bytes(&self) -> &[u8] {
        let n = self.0.iter().position(|&b| b == 0).unwrap_or(SLOT_NAME_LEN);
        &self.0[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_states_round_trip_and_never_collide_across_valid_positions() {
        let key = 0x1234_5678_9abc_def0;
        for pos in [0u64, 32, 4096, MAX_POS - 32] {
            assert_eq!(Stamp::state(Stamp::committed(pos, key).raw(), pos, key), StampState::Committed);
            assert_eq!(Stamp::state(Stamp::claimed(pos, key).raw(), pos, key), StampState::Claimed);
            assert_eq!(Stamp::state(Stamp::aborting(pos, key).raw(), pos, key), StampState::Aborting);
            assert_eq!(Stamp::state(Stamp::aborted(pos, key).raw(), pos, key), StampState::Aborted);
            // A stamp of an earlier lap, or of a neighbouring frame, is stale.
            for other in [pos.wrapping_sub(4096), pos + 32] {
                if other < MAX_POS {
                    for s in [Stamp::committed(other, key), Stamp::claimed(other, key), Stamp::aborted(other, key)] {
                        assert_eq!(Stamp::state(s.raw(), pos, key), StampState::Stale, "{other} vs {pos}");
                    }
                }
            }
        }
        assert_eq!(Stamp::state(0, 64, key), StampState::Stale);
        assert_eq!(Stamp::state(u64::MAX, 64, key), StampState::Stale);
    }

    #[test]
    fn len_type_encodes_messages_and_padding() {
        let m = LenType::message(300, 7);
        assert_eq!((m.length(), m.msg_type(), m.is_padding()), (300, 7, false));
        assert_eq!(m.raw(), 300 | 7 << 32);
        // The padding bit of a user type is cleared (types are below 2^31).
        let m = LenType::message(5, u32::MAX);
        assert_eq!((m.msg_type(), m.is_padding()), (u32::MAX >> 1, false));
        let p = LenType::padding(96);
        assert_eq!((p.length(), p.is_padding()), (96, true));
        assert_eq!(LenType::from_raw(p.raw()), p);
        // Every raw word decodes; validation is the ring's (`frame_len_of`).
        let junk = LenType::from_raw(u64::MAX);
        assert_eq!((junk.length(), junk.is_padding()), (u32::MAX, true));
    }

    #[test]
    fn owner_words_are_attachment_ids() {
        let o = Owner::from_raw(42);
        assert_eq!(o.raw(), 42);
        assert!(Owner::NONE.is_none() && !o.is_none());
        assert_eq!(Owner::from_raw(0), Owner::NONE);
    }

    #[test]
    fn slot_names_pad_truncate_and_round_trip() {
        let n = SlotName::new(b"orders");
        assert_eq!(n.as_bytes(), b"orders");
        assert_eq!(SlotName::from_words(n.words()), n);
        assert_eq!(n.words()[0], u64::from_le_bytes(*b"orders\0\0"));
        assert_eq!(n.words()[1..], [0, 0, 0]);
        let long = SlotName::new(&[b'x'; 40]);
        assert_eq!(long.as_bytes(), &[b'x'; SLOT_NAME_LEN][..]);
        assert_eq!(SlotName::new(b"").as_bytes(), b"");
        // Bytes after a NUL are kept in the words but not in the name.
        let odd = SlotName::from_words([u64::from_le_bytes(*b"ab\0cd\0\0\0"), 0, 0, 0]);
        assert_eq!(odd.as_bytes(), b"ab");
    }
}
