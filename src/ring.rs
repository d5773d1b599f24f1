//! The ring protocol: claiming, committing and reading frames, gating a
//! `Block` producer on the slowest subscriber, and the sleep/wake handshake.
//! Written once against [`Memory`], so `loom-tests/` checks this code.
//!
//! # Positions and frames
//! Every byte ever published has an absolute position (u64, never wraps in
//! practice: 2^64 bytes). The byte at position `p` lives at data offset
//! `p & (capacity - 1)`. A frame is a 32-byte header and its payload, padded
//! to 32 bytes; it never wraps: when it does not fit before the end of the
//! ring, the producer claims the rest as a *padding frame* and starts the
//! frame at offset 0 (Aeron's rule), so every payload is one contiguous
//! slice.
//!
//! # Commit by stamp
//! The first header word is the stamp. A frame at position `p` is committed
//! when its stamp equals `p ^ key` (`key` is a random per-topic value from the
//! header); the producer writes header and payload, then the stamp with
//! `Release`; a subscriber loads the stamp with `Acquire` and only then reads
//! the rest. A stamp left from an earlier lap encodes an earlier position, so
//! nothing ever needs zeroing; the key makes it vanishingly unlikely that
//! stale *payload* bytes at a frame start happen to spell the expected stamp.
//!
//! # Producers
//! One producer (`multi_producer = false`) owns the tail: claiming is a plain
//! store. Several producers claim with a CAS loop on the tail word, then
//! fill and commit their frames independently; subscribers stop at the first
//! uncommitted frame, so frames are delivered in position order.
//!
//! # The fast paths
//! Most single-producer claims need none of the claim's bookkeeping: no
//! padding (the frame fits before the end of the lap), no rescan of the
//! cursors (it stays under the cached gating minimum), no oldest-frame mark
//! (it stays inside a segment already marked). After every claim that does
//! need it, the producer computes the largest claim end for which all three
//! still hold (`fast_limit`; 0 when a subscriber joined or a rescan is due,
//! always 0 for multi-producers), so the next claims cost one comparison
//! ([`Ring::claim_fast`], and [`Ring::publish_fast`] for a whole copy-in
//! publish). A subscriber's [`Ring::peek_fast`] handles an ordinary message
//! or an empty slot; padding, bad lengths, groups and multi-producer claims
//! go to the general path. The fast paths make the same atomic accesses in
//! the same order as the general ones; `loom-tests/` checks them
//! (`fast_claims_respect_the_gating_cursor`). Together they took a 64-byte
//! publish and receive from 333 to 141 instructions (docs/BENCHMARKS.md).
//!
//! # Stuck claims (multi-producer)
//! A producer that dies between its tail CAS and its commit would stop every
//! subscriber at its frame forever, while the others keep claiming behind
//! it. So right after the CAS a multi-producer *marks* its claim: the stamp
//! becomes `pos ^ key ^ CLAIMED` and the frame's timestamp word holds its
//! pid and start time (overwritten at commit); it commits with a CAS from
//! that mark. A `Block` subscriber waiting at an uncommitted frame with the
//! tail past it looks again after the topic's liveness timeout (header
//! field `liveness_ms`): it finds where the claim ends (the next marked
//! frame, or the tail) and, if a second look one timeout later finds the
//! same end and the marking process is dead (or there is no mark: the
//! producer died within the few instructions between CAS and mark), it
//! aborts the claim: it takes the stamp (`ABORTING`), writes the skip
//! length and stamps `ABORTED`, which every reader skips like padding, and
//! counts a repair. A live process is never skipped, and the second look
//! gives a live producer that claimed the next frame a whole timeout to
//! mark it, so its claim is never swallowed. The marks are exchanges and
//! the commit a CAS, so a producer that stalled that long learns that it
//! lost the claim ([`ClaimError::Lost`]) instead of committing behind the
//! readers. (Loom caught a first version that wrote the skip length before
//! taking the stamp, over a frame committed meanwhile.) Aeron's
//! publication unblocker solves the same problem by timeout alone; the
//! owner check here means a slow but live producer is never cut off. A
//! single producer needs none of this: its claim is repaired by the next
//! producer to attach ([`Ring::repair_single_claim`]).
//!
//! # `Block`: gating on the slowest cursor
//! A producer may not claim past `min(active cursors) + capacity`. It keeps
//! that minimum in its own state (the Disruptor's gating-sequence cache) and
//! rescans the subscriber table only when the cache says "full" or when a
//! subscriber has joined (the join epoch changed). A subscriber publishes its
//! cursor with `Release` when it releases a message: that is what lets the
//! producer reuse the bytes.
//!
//! Joining is a Dekker handshake with the producer's post-commit fence: the
//! subscriber registers its cursor, bumps the join epoch, issues a `SeqCst`
//! fence and reads the tail; the producer, after every commit, issues a
//! `SeqCst` fence and reads the epoch. Either the producer sees the epoch
//! before its next claim (and rescans), or the subscriber's tail read sees
//! every claim up to the producer's last fence, in which case the only claim
//! made with a stale view can overwrite only positions below
//! `tail + max_claim - capacity`, which the subscriber does not read.
//!
//! # `Overwrite`: copy, then validate
//! The producer never waits. Before writing it stores the new tail (its
//! *intent*) and issues a `Release` fence; then it writes. A subscriber copies
//! the frame with atomic word loads, issues an `Acquire` fence and re-reads
//! the tail: if the tail passed `position + capacity`, the bytes it copied
//! may be torn, so it discards them (Agrona's broadcast receiver). A lapped
//! subscriber jumps to the oldest intact frame, which the single producer
//! tracks as it overwrites; every frame carries a dense sequence number, so
//! the loss count is exact.
//!
//! # Sleeping
//! A subscriber that finds nothing bumps the data waiter count, issues a
//! `SeqCst` fence, looks again, and only then sleeps on the data futex word.
//! A producer, after each commit, issues a `SeqCst` fence and makes the wake
//! syscall only if the waiter count is non-zero. The two fences guarantee at
//! least one side sees the other (store-buffer litmus test), so a wake is
//! never lost. Producers waiting for space use the mirror-image handshake
//! with the subscribers' cursor release. Every sleep has a timeout.
//!
//! The fences are *asymmetric* (as in liburcu and folly): the side on the
//! hot path (a producer after every commit, a subscriber after every
//! release) issues only a compiler fence, and the side on the rare path (a
//! process about to sleep, a joining subscriber) calls
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, which makes every CPU
//! running a registered process execute a full barrier. Whichever of the
//! two comes first in time, the pair orders like two `SeqCst` fences. An
//! `mfence` per message drains the store buffer on the hot path; removing
//! it took the 64-byte one-way p50 between two pinned processes from 434
//! to 354 ns (`shmq bench --quick`, same machine, consecutive runs).
//! Topics whose creator could not register for `membarrier` use plain
//! `SeqCst` fences on both sides (header field `fences`). Loom models both
//! halves as `SeqCst` fences.
//!
//! # Untrusted memory
//! Other processes write this memory. Every value read from it (stamps,
//! lengths, cursors, the tail) is checked before it is used to compute an
//! offset: a payload length above `max_message`, a frame that would cross the
//! end of the ring or a padding length that is not a whole number of frames
//! is reported as [`ReadError::Corrupt`], never used.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::Duration;

use crate::layout::{ctr, frame, frame_size, hdr, prod, slot, wake, Layout, Policy, FRAME_HEADER, SLOT_NAME_LEN};
use crate::mem::Memory;

/// `cached_min` value meaning "no active subscriber gates the producer".
const NO_SUBSCRIBER: u64 = u64::MAX;
/// How long a sleeping producer or subscriber waits before looking again
/// (for dead peers, timeouts and evictions).
const SLEEP_SLICE: Duration = Duration::from_millis(50);
/// How often a blocked producer checks whether gating subscribers are alive.
const LIVENESS_CHECK_NS: u64 = 20_000_000;
/// Segments per ring for tracking the oldest frame (see `advance_oldest`).
const MARKS: u64 = 64;
/// How many times a lapped `Overwrite` reader retries before giving up for
/// this call.
const LAP_RETRIES: u32 = 64;

/// Largest position accepted from shared memory (4.6 EB: never reached).
const MAX_POS: u64 = 1 << 62;
/// Stamp of a frame claimed but not yet committed by a multi-producer:
/// `pos ^ key ^ CLAIMED` (see "Stuck claims"). Positions stay below 2^62,
/// so this and [`ABORTED`] never equal any position's committed stamp.
const CLAIMED: u64 = 1 << 63;
/// Stamp of a claim a subscriber gave up on: `pos ^ key ^ ABORTED`; the
/// frame is skipped like padding.
const ABORTED: u64 = 1 << 62;
/// Stamp of a claim a subscriber is aborting: `pos ^ key ^ ABORTING`,
/// until it has written the skip length and stamps [`ABORTED`].
const ABORTING: u64 = CLAIMED | ABORTED;
/// An idle `Block` subscriber of a multi-producer topic looks for a stuck
/// claim once every this many empty polls (and before every sleep).
const STUCK_POLLS: u32 = 1024;

/// A frame's length/type word: a payload length, or with `padding` the
/// size of a padding frame.
#[inline]
fn size_word(len: u64, padding: bool) -> u64 {
    if padding {
        len | (frame::PADDING as u64) << 32
    } else {
        len
    }
}

/// A slot's owner word: pid and the low 32 bits of its start time, so one
/// CAS hands a durable slot from a dead owner to a new one.
#[inline]
fn owner_word(pid: u32, start: u64) -> u64 {
    pid as u64 | start << 32
}

/// See [`Ring::load_pos`].
#[inline]
fn sane_pos(v: u64) -> u64 {
    v.min(MAX_POS) & !(crate::layout::FRAME_ALIGN as u64 - 1)
}

/// Picks an ordering, or a weaker one when the named mutation is compiled in
/// (`SHMQ_MUTATION=NAME`, which `build.rs` turns into
/// `--cfg shmq_mutation="NAME"`): how `loom-tests/` proves that its
/// scenarios notice a missing ordering.
macro_rules! ord {
    ($strong:expr, $mutation:literal, $weak:expr) => {{
        #[cfg(shmq_mutation = $mutation)]
        let o = $weak;
        #[cfg(not(shmq_mutation = $mutation))]
        let o = $strong;
        o
    }};
}

/// One half of an asymmetric `SeqCst` fence (`light` on hot paths, `heavy`
/// on the rare paths that pair with them; see "Sleeping" above), left out
/// when the named mutation is compiled in.
macro_rules! fence_sc {
    ($mem:expr, light, $mutation:literal) => {{
        #[cfg(not(shmq_mutation = $mutation))]
        $mem.fence_light();
    }};
    ($mem:expr, heavy, $mutation:literal) => {{
        #[cfg(not(shmq_mutation = $mutation))]
        $mem.fence_heavy();
    }};
}

/// Why a claim failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// The payload is larger than the topic's max message size.
    TooLarge,
    /// `Block` policy: the slowest subscriber has not released enough space.
    Full,
    /// Multi-producer: a subscriber gave up this claim because the producer
    /// looked dead for longer than the liveness timeout (see "Stuck claims").
    Lost,
}

/// Why a durable subscriber could not attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurableError {
    /// A live process (this pid; 0 if unknown) holds the name.
    Taken(u32),
    /// The subscriber was dropped after the topic's durable expiry; its
    /// slot is freed now, so subscribing again starts afresh.
    Expired,
    /// No free slot for a new durable subscriber.
    NoFreeSlot,
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The ring holds a value no correct producer writes.
    Corrupt(String),
    /// This subscriber's slot was taken away (reaped as dead, or repaired).
    Evicted,
}

/// What [`Ring::peek_fast`] found at a subscriber's cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    /// An ordinary committed message.
    Frame(FrameView),
    /// Nothing committed there yet (single-producer topic).
    Empty,
    /// Something only [`Ring::peek`] handles; with the stamp found at
    /// the cursor, if it was loaded (so `peek` does not load it again).
    Slow(Option<u64>),
}

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

/// Where a new subscriber (or a [`crate::Tail`]) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After the last committed message: only messages published from now on.
    Newest,
    /// At the oldest message the ring still holds.
    Oldest,
    /// At the first retained message whose sequence number is at least
    /// this; at the newest if none is yet. On an `Overwrite` topic whose
    /// oldest retained message is already past it, the first receive
    /// reports the missing ones as `Lagged`.
    Seq(u64),
    /// At the first retained message published at or after this time
    /// (`CLOCK_MONOTONIC` nanoseconds, as [`crate::Message::timestamp_ns`];
    /// [`crate::sys::monotonic_ns`] is now); at the newest if none is yet.
    /// Needs a topic with timestamps.
    Time(u64),
}

impl Start {
    /// Whether a message with `seq` published at `ts` is where this start
    /// stops (always, for `Newest`/`Oldest`).
    fn reached_by(self, seq: u64, ts: u64) -> bool {
        match self {
            Start::Newest | Start::Oldest => true,
            Start::Seq(s) => seq >= s,
            Start::Time(t) => ts >= t,
        }
    }
}

/// A frame header read and validated by [`Ring::header_validated`].
#[derive(Debug, Clone, Copy)]
struct Header {
    size: u64,
    /// `None` for a padding frame.
    seq: Option<u64>,
    ts: u64,
}

/// A claimed, not yet committed region.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    /// Position of the frame.
    pub pos: u64,
    /// End of the claim (position after the frame).
    pub end: u64,
    /// Payload bytes claimed.
    pub len: u32,
    /// Sequence number of the message.
    pub seq: u64,
}

/// A producer's private state.
#[derive(Debug)]
pub struct ProducerState {
    /// Single producer: a claim ending at or below this needs none of the
    /// slow path's work (gating rescan, padding at the ring's end, oldest
    /// frame bookkeeping), so `claim_single` takes it with one comparison.
    /// Recomputed by [`Ring::refresh_fast_limit`] after every slow claim;
    /// 0 (always for multi-producers) sends every claim down the slow path.
    fast_limit: u64,
    cached_min: u64,
    epoch: u64,
    rescan: bool,
    last_liveness_check: u64,
    // Single producer only: the producer's own copy of the shared words.
    tail: u64,
    oldest: u64,
    next_seq: u64,
    bytes: u64,
    /// First frame start recorded in each of the last [`MARKS`] segments.
    marks: [u64; MARKS as usize],
    /// Segment of the last recorded mark.
    mark_seg: Option<u64>,
}

impl ProducerState {
    /// The next claim rescans the subscriber table.
    fn force_rescan(&mut self) {
        self.rescan = true;
        self.fast_limit = 0;
    }
}

/// A subscriber's private state.
#[derive(Debug)]
pub struct SubState {
    /// Index of the subscriber's slot.
    pub slot: usize,
    /// Position of the next frame to read.
    pub cursor: u64,
    /// `Overwrite`: sequence number expected next (for loss counting).
    pub expected_seq: u64,
    /// Messages received.
    pub received: u64,
    /// Messages lost (overwrite).
    pub lost: u64,
    /// Empty polls since the last stuck-claim check.
    pub idle: u32,
    /// Where the cursor was found stuck, since when (ns), and the end of
    /// the unmarked claim found there at the last look (0: none yet).
    pub stuck: Option<(u64, u64, u64)>,
    /// Group member: slot of its group's record.
    pub group: Option<usize>,
    /// Group member: a dead member's slot whose message it is redelivering.
    pub adopted: Option<usize>,
    /// Group member: when it last looked for dead members (ns).
    pub last_check: u64,
}

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
}

/// The ring: a [`Memory`] and the validated [`Layout`] that says where
/// everything is in it.
#[derive(Debug)]
pub struct Ring<M> {
    /// Where the atomics and bytes live.
    pub mem: M,
    /// Validated geometry.
    pub layout: Layout,
    /// log2 of the segment size of the single producer's oldest-frame
    /// marks (see `advance_oldest`): the ring is cut into `MARKS` (64)
    /// segments by default. A claim that stays inside a segment already
    /// marked takes the fast path, so the model rings of `loom-tests/`
    /// (two frames a lap) use one segment per lap to reach it.
    pub mark_shift: u32,
}

impl<M: Memory> Ring<M> {
    /// Wraps memory whose header has been validated into `layout`.
    pub fn new(mem: M, layout: Layout) -> Self {
        let mark_shift = layout.capacity.trailing_zeros().saturating_sub(MARKS.trailing_zeros());
        Ring { mem, layout, mark_shift }
    }

    fn key(&self) -> u64 {
        self.layout.stamp_key
    }

    /// Loads a position (tail, oldest, claim start, cursor) from shared
    /// memory, made safe to compute with: aligned down to a frame boundary
    /// (so every access derived from it is aligned and in bounds) and
    /// clamped below 2^62 (so adding a capacity never overflows). A value
    /// another process corrupted becomes a harmless wrong position, which
    /// the stamps then refuse.
    #[inline]
    fn load_pos(&self, off: usize, order: std::sync::atomic::Ordering) -> u64 {
        sane_pos(self.mem.load64(off, order))
    }

    fn cap(&self) -> u64 {
        self.layout.capacity
    }

    /// Largest claim a single publish can make (padding + frame).
    fn max_claim(&self) -> u64 {
        2 * frame_size(self.layout.max_message as u64)
    }

    // ------------------------------------------------------------------
    // Producer side
    // ------------------------------------------------------------------

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
        }
    }

    /// End of everything this producer has claimed: its own tail (single
    /// producer) or the shared one.
    pub fn tail_of(&self, st: &ProducerState) -> u64 {
        if self.layout.multi_producer {
            self.load_pos(prod::TAIL, Acquire)
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

    /// Minimum cursor over active subscribers, or [`NO_SUBSCRIBER`].
    fn scan_min_cursor(&self, tail: u64) -> u64 {
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
            // Acquire: pairs with the subscriber's Release store of ACTIVE,
            // which follows its first cursor store.
            if self.mem.load32(s + slot::STATE, Acquire) != slot::state::ACTIVE {
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
    fn gate_ok(&self, st: &mut ProducerState, end: u64, tail: u64) -> bool {
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

    /// Claims room for a payload of `len` bytes without waiting.
    #[inline(always)]
    pub fn try_claim(&self, st: &mut ProducerState, len: usize) -> Result<Claim, ClaimError> {
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
        Some(Claim { pos, end, len: len as u32, seq })
    }

    /// Every claim [`Ring::claim_fast`] does not take.
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
        // Relaxed: read back only by a producer that takes over after this
        // one died (it acquires ownership first).
        self.mem.store64(prod::CLAIM_START, st.tail, Relaxed);
        // Relaxed store + Release fence: the tail is the overwrite intent; the
        // fence orders it before our data writes, pairing with a reader's
        // Acquire fence before it re-reads the tail (seqlock validation).
        self.mem.store64(prod::TAIL, end, Relaxed);
        if self.layout.policy == Policy::Overwrite {
            self.mem.fence(Release);
        }
        debug_assert!(pos >= st.tail);
        st.tail = end;
        let seq = st.next_seq;
        // Wrapping: the counter was loaded from shared memory at attach.
        st.next_seq = st.next_seq.wrapping_add(1);
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
        Ok(Claim { pos, end, len, seq })
    }

    /// Single producer: the largest claim end that needs no slow-path work
    /// from the current state: under the gating cursor (unless a rescan is
    /// due), before the end of the ring's current lap (no padding), inside
    /// the segment whose first frame is already marked, and short of the
    /// point where `advance_oldest` must move `oldest`.
    fn refresh_fast_limit(&self, st: &mut ProducerState) {
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
                if pad > 0 && !self.mark(tail, Some(pad)) {
                    return Err(ClaimError::Lost);
                }
                if !self.mark(pos, None) {
                    return Err(ClaimError::Lost);
                }
                // Relaxed: a counter; uniqueness comes from the RMW.
                let seq = self.mem.add64(ctr::MP_SEQ, 1, Relaxed);
                return Ok(Claim { pos, end, len, seq });
            }
        }
    }

    /// Multi-producer: marks the frame at `p`, just claimed, as ours: with
    /// `padding`, a committed padding frame of that size; without, a
    /// claimed frame whose timestamp word holds the owner (pid, and the low
    /// 32 bits of its start time) until commit. Returns `false` if a
    /// subscriber had already taken the position (`ABORTING`/`ABORTED`):
    /// the claim is lost.
    fn mark(&self, p: u64, padding: Option<u64>) -> bool {
        let off = self.layout.frame_at(p);
        let stamp = match padding {
            Some(size) => {
                // Relaxed: published by the Release exchange of the stamp below.
                self.mem.store64(off + frame::LEN_TYPE, size_word(size, true), Relaxed);
                p ^ self.key()
            }
            None => {
                let (pid, start) = self.mem.self_id();
                // Relaxed: as above.
                self.mem.store64(off + frame::TIMESTAMP, pid as u64 | (start << 32), Relaxed);
                p ^ self.key() ^ CLAIMED
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
        let old = self.mem.swap64(off + frame::STAMP, stamp, Release);
        if old == p ^ self.key() ^ ABORTED || old == p ^ self.key() ^ ABORTING {
            // Put the abort back (unless its author has finished it
            // meanwhile); the subscribers skip this claim.
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
    fn advance_oldest(&self, st: &mut ProducerState, claim_start: u64, frame_pos: u64, end: u64) {
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

    /// Size of the frame at `pos` whose len/type word is `lt`, if valid.
    #[inline(always)]
    fn frame_len_of(&self, pos: u64, lt: u64) -> Option<u64> {
        let len = lt as u32;
        let ty = (lt >> 32) as u32;
        let room = self.layout.room_to_end(pos);
        let size = if ty & frame::PADDING != 0 {
            len as u64
        } else {
            if len > self.layout.max_message {
                return None;
            }
            frame_size(len as u64)
        };
        (size >= FRAME_HEADER as u64 && size % FRAME_HEADER as u64 == 0 && size <= room).then_some(size)
    }

    /// Writes and commits a padding frame of `size` bytes at `pos`.
    fn write_padding(&self, pos: u64, size: u64) {
        let off = self.layout.frame_at(pos);
        // Relaxed: published by the stamp's Release store below.
        self.mem.store64(off + frame::LEN_TYPE, size_word(size, true), Relaxed);
        // Release: publishes the padding header to subscribers' Acquire stamp load.
        self.mem.store64(off + frame::STAMP, pos ^ self.key(), ord!(Release, "commit_relaxed", Relaxed));
    }

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
    fn write_payload_at(&self, off: usize, data: &[u8]) {
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
        self.write_header(off, c.len, msg_type, c.seq);
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
        self.write_header(off, len, msg_type, claim.seq);
        if self.layout.multi_producer {
            return self.commit_multi(st, off, claim.pos ^ self.key(), len as u64);
        }
        self.commit_single(st, claim.pos, off, len);
        true
    }

    /// Writes the header words of the frame at `off` other than its stamp:
    /// payload length and user type, publish time, sequence number.
    #[inline(always)]
    fn write_header(&self, off: usize, len: u32, msg_type: u32, seq: u64) {
        let ty = msg_type & !frame::PADDING;
        // Relaxed: these header words are published by the stamp's Release.
        self.mem.store64(off + frame::LEN_TYPE, len as u64 | ((ty as u64) << 32), Relaxed);
        // A clock read costs 20-45 ns in VMs: only topics that asked for
        // timestamps pay for it.
        let ts = if self.layout.timestamps { self.mem.now_ns() } else { 0 };
        self.mem.store64(off + frame::TIMESTAMP, ts, Relaxed);
        self.mem.store64(off + frame::SEQ, seq, Relaxed);
    }

    /// Single producer: commits the frame at `pos` (segment offset `off`),
    /// whose header and payload (`len` bytes) are written.
    #[inline(always)]
    fn commit_single(&self, st: &mut ProducerState, pos: u64, off: usize, len: u32) {
        // Release: publishes header and payload to the subscribers'
        // Acquire load of the stamp.
        self.mem.store64(off + frame::STAMP, pos ^ self.key(), ord!(Release, "commit_relaxed", Relaxed));
        st.bytes = st.bytes.wrapping_add(len as u64);
        // Relaxed: statistics for inspectors, and hints for the next
        // owner after a crash (which acquires ownership first).
        self.mem.store64(prod::NEXT_SEQ, st.next_seq, Relaxed);
        self.mem.store64(prod::BYTES, st.bytes, Relaxed);
        // Release: a reader that loads LAST with Acquire and finds the
        // frame's stamp sees a committed frame (it validates anyway).
        self.mem.store64(prod::LAST, pos + 1, Release);
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
    fn commit_multi(&self, st: &mut ProducerState, off: usize, stamp: u64, len: u64) -> bool {
        // Release: publishes header and payload to the subscribers' Acquire
        // stamp load. A CAS from our claim mark, so a claim that a
        // subscriber aborted (it thought us dead) is never committed behind
        // its back.
        let mark = stamp ^ CLAIMED;
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
            self.mem.store64(off + frame::LEN_TYPE, size_word(size, true), Relaxed);
            let stamp = claim.pos ^ self.key();
            // Release: publishes the padding header. Fails only if a
            // subscriber aborted the claim already: skipped either way.
            let _ = self.mem.cas64(off + frame::STAMP, stamp ^ CLAIMED, stamp, Release, Relaxed);
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
    fn after_commit(&self, st: &mut ProducerState) {
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

    /// Wakes every process sleeping on the futex word at `futex` (the data
    /// or the space word): changes the word, so a sleeper about to compare
    /// it does not sleep, then makes the syscall.
    #[cold]
    #[inline(never)]
    fn wake_all(&self, futex: usize) {
        // Relaxed: the futex word only needs to change; the syscall orders.
        self.mem.add32(futex, 1, Relaxed);
        self.mem.wake(futex);
    }

    /// Claims with waiting: spins, then sleeps until a subscriber releases
    /// space or `timeout` passes (`None`: forever). Reaps dead subscribers
    /// that hold the ring.
    #[inline(always)]
    pub fn claim_wait(
        &self,
        st: &mut ProducerState,
        len: usize,
        timeout: Option<Duration>,
    ) -> Result<Claim, ClaimError> {
        match self.try_claim(st, len) {
            Err(ClaimError::Full) => self.claim_wait_full(st, len, timeout),
            other => other,
        }
    }

    /// [`Ring::claim_wait`] once the ring was found full: kept out of line,
    /// so the publish path stays small.
    #[inline(never)]
    fn claim_wait_full(
        &self,
        st: &mut ProducerState,
        len: usize,
        timeout: Option<Duration>,
    ) -> Result<Claim, ClaimError> {
        // Relaxed: statistics only.
        self.mem.add64(ctr::PRODUCER_WAITS, 1, Relaxed);
        let deadline = timeout.map(|t| self.mem.now_ns().saturating_add(t.as_nanos() as u64));
        let mut step = 0u32;
        loop {
            self.check_liveness(st);
            match self.try_claim(st, len) {
                Err(ClaimError::Full) => {}
                other => return other,
            }
            let Ok(left) = self.time_left(deadline) else {
                return Err(ClaimError::Full);
            };
            if step < self.mem.spin_steps() {
                self.mem.snooze(step);
                step += 1;
                continue;
            }
            // Relaxed: the value is compared by the futex syscall; the
            // fence below orders the re-check.
            let seen = self.mem.load32(wake::SPACE_FUTEX, Relaxed);
            self.mem.add32(wake::SPACE_WAITERS, 1, Relaxed);
            // SeqCst fence (heavy half): pairs with the subscriber's light
            // fence between its cursor release and its waiter-count load.
            fence_sc!(self.mem, heavy, "space_fence");
            st.force_rescan();
            let res = self.try_claim(st, len);
            if !matches!(res, Err(ClaimError::Full)) {
                self.mem.sub32(wake::SPACE_WAITERS, 1, Relaxed);
                return res;
            }
            self.mem.wait(wake::SPACE_FUTEX, seen, Some(left.min(SLEEP_SLICE)));
            self.mem.sub32(wake::SPACE_WAITERS, 1, Relaxed);
        }
    }

    /// A blocked producer reclaims the slots of dead subscribers (at most
    /// every [`LIVENESS_CHECK_NS`]).
    fn check_liveness(&self, st: &mut ProducerState) {
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
            // Acquire: pairs with the Release store of ACTIVE, so pid and
            // start time below are the owner's.
            if self.mem.load32(s + slot::STATE, Acquire) != slot::state::ACTIVE {
                continue;
            }
            let owner = self.mem.load64(s + slot::PID, Relaxed);
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
            let pid = owner as u32;
            let start = self.mem.load64(s + slot::START, Relaxed);
            if pid != 0 && !self.mem.is_alive(pid, start) {
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
    fn reap_durable(&self, s: usize, owner: u64) -> u32 {
        let now = self.mem.now_ns();
        if owner != 0 {
            if !self.mem.is_alive(owner as u32, owner >> 32)
                && self.mem.cas64(s + slot::PID, owner, 0, Relaxed, Relaxed).is_ok()
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
            // Acquire: pairs with the dead owner's Release stamp store.
            let committed = self.mem.load64(off + frame::STAMP, Acquire) == p ^ self.key();
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            match (committed, self.frame_len_of(p, lt)) {
                (true, Some(size)) if p + size <= tail => p += size,
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

    // ------------------------------------------------------------------
    // Subscriber side
    // ------------------------------------------------------------------

    /// Takes a free subscriber slot and positions the cursor. `name` is
    /// stored for inspection (at most 32 bytes are kept).
    pub fn join(&self, start: Start, name: &[u8]) -> Option<SubState> {
        self.join_as(start, name, 0)
    }

    fn join_as(&self, start: Start, name: &[u8], flags: u32) -> Option<SubState> {
        let slot_idx = self.claim_slot().or_else(|| {
            self.reap_dead();
            self.claim_slot()
        })?;
        let s = self.layout.slot(slot_idx);
        let (pid, pstart) = self.mem.self_id();
        // Relaxed: published by the Release store of ACTIVE below.
        self.mem.store64(s + slot::PID, owner_word(pid, pstart), Relaxed);
        self.mem.store64(s + slot::START, pstart, Relaxed);
        self.mem.store32(s + slot::FLAGS, flags, Relaxed);
        self.mem.store64(s + slot::RECEIVED, 0, Relaxed);
        self.mem.store64(s + slot::LOST, 0, Relaxed);
        self.mem.store64(s + slot::SEEN_NS, self.mem.now_ns(), Relaxed);
        let mut buf = [0u8; SLOT_NAME_LEN];
        let n = name.len().min(SLOT_NAME_LEN);
        buf[..n].copy_from_slice(&name[..n]);
        for (i, chunk) in buf.chunks_exact(8).enumerate() {
            let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            self.mem.store64(s + slot::NAME + 8 * i, w, Relaxed);
        }

        let mut st = SubState {
            slot: slot_idx,
            cursor: 0,
            expected_seq: 0,
            received: 0,
            lost: 0,
            idle: 0,
            stuck: None,
            group: None,
            adopted: None,
            last_check: 0,
        };
        if self.layout.policy == Policy::Overwrite {
            self.mem.store32(s + slot::STATE, slot::state::ACTIVE, Release);
            self.position_overwrite(&mut st, start);
            self.mem.store64(s + slot::CURSOR, st.cursor, Relaxed);
        } else {
            self.join_block(&mut st, start);
        }
        self.mem.store64(s + slot::NEXT_SEQ, st.expected_seq, Relaxed);
        Some(st)
    }

    /// The slot of the durable subscriber `name` (ACTIVE or EXPIRED).
    fn find_durable(&self, name: &[u8; SLOT_NAME_LEN]) -> Option<(usize, u32)> {
        (0..self.layout.max_subscribers as usize).find_map(|i| {
            let s = self.layout.slot(i);
            // Acquire: pairs with the Release store of ACTIVE by the slot's
            // creator, so its name and flags are complete.
            let state = self.mem.load32(s + slot::STATE, Acquire);
            let durable = self.mem.load32(s + slot::FLAGS, Relaxed) & slot::flags::DURABLE != 0;
            if !durable || !(state == slot::state::ACTIVE || state == slot::state::EXPIRED) {
                return None;
            }
            let same = name.chunks_exact(8).enumerate().all(|(k, chunk)| {
                let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                self.mem.load64(s + slot::NAME + 8 * k, Relaxed) == w
            });
            same.then_some((i, state))
        })
    }

    /// Attaches the durable subscriber `name` (1..=32 bytes): takes over its
    /// slot if it exists and its owner is gone, resuming at its cursor (the
    /// first message it had not released); else joins a new slot from the
    /// newest message.
    pub fn join_durable(&self, name: &[u8]) -> Result<SubState, DurableError> {
        let mut key = [0u8; SLOT_NAME_LEN];
        let n = name.len().min(SLOT_NAME_LEN);
        key[..n].copy_from_slice(&name[..n]);
        let (pid, start) = self.mem.self_id();
        let me = owner_word(pid, start);
        for _ in 0..16 {
            // Find-or-create under the names lock: two processes creating
            // the same name at once would otherwise both succeed.
            let created = self.with_names_lock(|| match self.find_durable(&key) {
                Some(hit) => Ok(Err(hit)),
                None => self.join_as(Start::Newest, &key[..n], slot::flags::DURABLE).map(Ok).ok_or(()),
            });
            let (i, state) = match created {
                Ok(Ok(st)) => return Ok(st),
                Ok(Err(hit)) => hit,
                Err(()) => return Err(DurableError::NoFreeSlot),
            };
            let s = self.layout.slot(i);
            if state == slot::state::EXPIRED {
                // Relaxed: the expired slot holds nothing anyone needs.
                let _ = self.mem.cas32(s + slot::STATE, slot::state::EXPIRED, slot::state::FREE, Relaxed, Relaxed);
                return Err(DurableError::Expired);
            }
            let owner = self.mem.load64(s + slot::PID, Acquire);
            if owner != 0 && self.mem.is_alive(owner as u32, owner >> 32) {
                return Err(DurableError::Taken(owner as u32));
            }
            // Acquire: pairs with the previous owner's Release detach, so its
            // cursor and counters below are the last it published.
            if self.mem.cas64(s + slot::PID, owner, me, Acquire, Relaxed).is_err() {
                continue;
            }
            if owner != 0 {
                // We took it from a dead owner nobody had reaped yet.
                self.mem.add64(ctr::REAPED, 1, Relaxed);
            }
            self.mem.store64(s + slot::START, start, Relaxed);
            self.mem.store64(s + slot::SEEN_NS, self.mem.now_ns(), Relaxed);
            let tail = self.load_pos(prod::TAIL, Relaxed);
            let st = SubState {
                slot: i,
                cursor: self.load_pos(s + slot::CURSOR, Relaxed).min(tail),
                expected_seq: self.mem.load64(s + slot::NEXT_SEQ, Relaxed),
                received: self.mem.load64(s + slot::RECEIVED, Relaxed),
                lost: self.mem.load64(s + slot::LOST, Relaxed),
                idle: 0,
                stuck: None,
                group: None,
                adopted: None,
                last_check: 0,
            };
            if self.mem.load32(s + slot::STATE, Acquire) != slot::state::ACTIVE {
                // Expired between our look and our CAS.
                continue;
            }
            return Ok(st);
        }
        Err(DurableError::Taken(0))
    }

    /// Removes the durable subscriber `name` (its cursor stops gating).
    /// `Ok(false)` if there is none; `Err(pid)` if a live process holds it.
    pub fn remove_durable(&self, name: &[u8]) -> Result<bool, u32> {
        let mut key = [0u8; SLOT_NAME_LEN];
        let n = name.len().min(SLOT_NAME_LEN);
        key[..n].copy_from_slice(&name[..n]);
        let Some((i, _)) = self.find_durable(&key) else {
            return Ok(false);
        };
        let s = self.layout.slot(i);
        let owner = self.mem.load64(s + slot::PID, Relaxed);
        if owner != 0 && self.mem.is_alive(owner as u32, owner >> 32) {
            return Err(owner as u32);
        }
        // Relaxed: the slot stops gating; nobody reads through it.
        if self.mem.cas64(s + slot::PID, owner, 0, Relaxed, Relaxed).is_err() {
            return Err(0);
        }
        self.mem.store32(s + slot::FLAGS, 0, Relaxed);
        for from in [slot::state::ACTIVE, slot::state::EXPIRED] {
            if self.mem.cas32(s + slot::STATE, from, slot::state::FREE, Release, Relaxed).is_ok() {
                break;
            }
        }
        // A producer may be waiting on this cursor.
        self.wake_all(wake::SPACE_FUTEX);
        Ok(true)
    }

    /// Runs `f` holding the topic's names lock (header word
    /// `ctr::NAMES_LOCK`), which serialises find-or-create of named slots.
    /// A lock left by a dead process is taken over.
    fn with_names_lock<T>(&self, f: impl FnOnce() -> T) -> T {
        let (pid, start) = self.mem.self_id();
        let me = owner_word(pid, start);
        let mut step = 0;
        // A holder keeps the lock for microseconds; one seen for a whole
        // liveness timeout is dead or a corrupt word (found by
        // tests/hostile.rs: a scribbled word naming pid 1 spun forever).
        let mut seen: Option<(u64, u64)> = None;
        loop {
            // Acquire: pairs with the previous holder's Release unlock, so
            // the slots it created are visible to our search.
            let holder = match self.mem.cas64(ctr::NAMES_LOCK, 0, me, Acquire, Relaxed) {
                Ok(_) => break,
                Err(holder) => holder,
            };
            let now = self.mem.now_ns();
            let stale = match seen {
                Some((h, since)) if h == holder => {
                    now.saturating_sub(since) > self.layout.liveness_ms as u64 * 1_000_000
                }
                _ => {
                    seen = Some((holder, now));
                    false
                }
            };
            if (stale || !self.mem.is_alive(holder as u32, holder >> 32))
                && self.mem.cas64(ctr::NAMES_LOCK, holder, me, Acquire, Relaxed).is_ok()
            {
                break;
            }
            self.mem.snooze(step);
            step = (step + 1).min(64);
        }
        let r = f();
        // Release: what we created is visible to the next holder.
        self.mem.store64(ctr::NAMES_LOCK, 0, Release);
        r
    }

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
        self.mem.store64(ctr::NAMES_LOCK, 0, Relaxed);
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
                self.mem.store64(s + slot::PID, 0, Relaxed);
            }
        }
        self.mem.store64(hdr::BOOT_ID, boot, Release);
        kept
    }

    /// The record slot of consumer group `name`.
    fn find_group(&self, key: &[u8; SLOT_NAME_LEN]) -> Option<usize> {
        (0..self.layout.max_subscribers as usize).find(|&i| {
            let s = self.layout.slot(i);
            // Acquire: pairs with the Release store of ACTIVE by the record's
            // creator, so its name and flags are complete.
            self.mem.load32(s + slot::STATE, Acquire) == slot::state::ACTIVE
                && self.mem.load32(s + slot::FLAGS, Relaxed) & slot::flags::GROUP != 0
                && key.chunks_exact(8).enumerate().all(|(k, chunk)| {
                    let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                    self.mem.load64(s + slot::NAME + 8 * k, Relaxed) == w
                })
        })
    }

    /// Joins consumer group `name` (`Block` topics): creates the group's
    /// record at the newest message if it does not exist, then takes a
    /// member slot. Each message goes to exactly one member (work sharing,
    /// as in the Disruptor's work pool).
    pub fn join_group(&self, name: &[u8]) -> Option<SubState> {
        let mut key = [0u8; SLOT_NAME_LEN];
        let n = name.len().min(SLOT_NAME_LEN);
        key[..n].copy_from_slice(&name[..n]);
        // Find-or-create under the names lock (see `join_durable`).
        let g = self.with_names_lock(|| {
            if let Some(g) = self.find_group(&key) {
                return Some(g);
            }
            let st = self.join_as(Start::Newest, &key[..n], slot::flags::GROUP)?;
            // Relaxed: the record belongs to no process, so no reaper ever
            // frees it.
            self.mem.store64(self.layout.slot(st.slot) + slot::PID, 0, Relaxed);
            Some(st.slot)
        })?;
        let m = self.claim_slot().or_else(|| {
            self.reap_dead();
            self.claim_slot()
        })?;
        let s = self.layout.slot(m);
        let (pid, pstart) = self.mem.self_id();
        // Relaxed: published by the Release store of ACTIVE below.
        self.mem.store64(s + slot::PID, owner_word(pid, pstart), Relaxed);
        self.mem.store64(s + slot::START, pstart, Relaxed);
        self.mem.store32(s + slot::FLAGS, slot::flags::MEMBER, Relaxed);
        self.mem.store32(s + slot::GROUP, g as u32, Relaxed);
        self.mem.store64(s + slot::CURSOR, slot::IDLE, Relaxed);
        self.mem.store64(s + slot::RECEIVED, 0, Relaxed);
        self.mem.store64(s + slot::LOST, 0, Relaxed);
        self.mem.store64(s + slot::SEEN_NS, self.mem.now_ns(), Relaxed);
        for (k, chunk) in key.chunks_exact(8).enumerate() {
            let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            self.mem.store64(s + slot::NAME + 8 * k, w, Relaxed);
        }
        // Release: publishes the fields above to scans and reapers.
        self.mem.store32(s + slot::STATE, slot::state::ACTIVE, Release);
        Some(SubState {
            slot: m,
            cursor: slot::IDLE,
            expected_seq: 0,
            received: 0,
            lost: 0,
            idle: 0,
            stuck: None,
            group: Some(g),
            adopted: None,
            last_check: 0,
        })
    }

    /// Group member: takes the group's next message (exactly one member
    /// gets each), or redelivers a dead member's unreleased one.
    #[inline(never)]
    fn group_take(&self, st: &mut SubState, g: usize) -> Result<Option<FrameView>, ReadError> {
        if let Some(v) = self.adopt_dead(st, g)? {
            return Ok(Some(v));
        }
        let gs = self.layout.slot(g);
        let ms = self.layout.slot(st.slot);
        let mut passes = 0u64;
        loop {
            // Acquire: pairs with other members' Release CAS of the group
            // cursor, and (through the stamp) with the producer's commit.
            // Compute with the sane position, CAS the raw word: a corrupt
            // (unaligned) cursor is then replaced instead of failing every
            // CAS forever (found by tests/hostile.rs, like the tail's).
            let raw = self.mem.load64(gs + slot::CURSOR, Acquire);
            let next = sane_pos(raw);
            // Each pass skips a frame or retries a lost race; more passes
            // than the ring has frames means the memory is corrupt (a cursor
            // pinned at the clamp skipped the same frame forever: found by
            // tests/hostile.rs).
            passes += 1;
            if raw >= MAX_POS || passes > self.cap() / FRAME_HEADER as u64 + 64 {
                return Err(ReadError::Corrupt(format!("group cursor {raw:#x} does not advance")));
            }
            let off = self.layout.frame_at(next);
            // Acquire: pairs with the producer's Release stamp store.
            let stamp = self.mem.load64(off + frame::STAMP, Acquire);
            let done = next ^ self.key();
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            if stamp != done && stamp != done ^ ABORTED {
                if self.layout.multi_producer {
                    st.cursor = next;
                    st.idle += 1;
                    if st.idle >= STUCK_POLLS {
                        st.idle = 0;
                        if self.unstick(st) {
                            continue;
                        }
                    }
                }
                return Ok(None);
            }
            let Some(size) = self.frame_len_of(next, lt) else {
                if self.load_pos(gs + slot::CURSOR, Acquire) != next {
                    continue; // another member moved on; what we read may be reused
                }
                return Err(ReadError::Corrupt(format!(
                    "frame at position {next}: length/type word {lt:#x} is invalid"
                )));
            };
            let skip = stamp != done || (lt >> 32) as u32 & frame::PADDING != 0;
            if !skip {
                // Announce the frame before taking it (see `scan_min_cursor`).
                self.mem.store64(ms + slot::CURSOR, next, Relaxed);
            }
            // Release: our announcement (above) is visible to a producer
            // that reads the new group cursor with Acquire.
            if self.mem.cas64(gs + slot::CURSOR, raw, next + size, Release, Relaxed).is_err() {
                if !skip {
                    // Withdraw the announcement, and wake a producer that
                    // saw it and went to sleep (loom found this lost wake:
                    // `group_members_take_each_message_once`).
                    self.mem.store64(ms + slot::CURSOR, slot::IDLE, Release);
                    #[cfg(not(shmq_mutation = "group_no_wake"))]
                    self.wake_space();
                }
                continue;
            }
            if skip {
                self.wake_space();
                continue;
            }
            st.cursor = next;
            return Ok(Some(self.view_at(next, lt, size)));
        }
    }

    /// Group member: a dead member's unreleased message, taken over (at
    /// most every [`LIVENESS_CHECK_NS`]); dead idle members are freed.
    fn adopt_dead(&self, st: &mut SubState, g: usize) -> Result<Option<FrameView>, ReadError> {
        let now = self.mem.now_ns();
        if st.last_check != 0 && now.saturating_sub(st.last_check) < LIVENESS_CHECK_NS {
            return Ok(None);
        }
        st.last_check = now.max(1);
        let (pid, start) = self.mem.self_id();
        for i in 0..self.layout.max_subscribers as usize {
            let s = self.layout.slot(i);
            // Acquire: pairs with the member's Release store of ACTIVE.
            if i == st.slot
                || self.mem.load32(s + slot::STATE, Acquire) != slot::state::ACTIVE
                || self.mem.load32(s + slot::FLAGS, Relaxed) & slot::flags::MEMBER == 0
                || self.mem.load32(s + slot::GROUP, Relaxed) as usize != g
            {
                continue;
            }
            let owner = self.mem.load64(s + slot::PID, Relaxed);
            if self.mem.is_alive(owner as u32, owner >> 32) {
                continue;
            }
            // Acquire: pairs with the dead member's Release stores, so its
            // announced cursor is the frame it held.
            if self.mem.cas64(s + slot::PID, owner, owner_word(pid, start), Acquire, Relaxed).is_err() {
                continue;
            }
            let p = self.load_pos(s + slot::CURSOR, Acquire);
            if p >= slot::IDLE {
                // Held nothing: free the slot.
                if self.mem.cas32(s + slot::STATE, slot::state::ACTIVE, slot::state::FREE, Release, Relaxed).is_ok() {
                    self.mem.add64(ctr::REAPED, 1, Relaxed);
                }
                continue;
            }
            // Its cursor still gates the frame at p: deliver it again.
            let off = self.layout.frame_at(p);
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            // Acquire: pairs with the producer's Release stamp store.
            let ok = self.mem.load64(off + frame::STAMP, Acquire) == p ^ self.key();
            // A member only ever announces a message, never padding: a
            // padding length word here is corrupt (and as a payload length
            // it could reach past the end of the ring).
            let is_pad = (lt >> 32) as u32 & frame::PADDING != 0;
            let (Some(size), true, false) = (self.frame_len_of(p, lt), ok, is_pad) else {
                return Err(ReadError::Corrupt(format!("redelivered frame at position {p} is not intact")));
            };
            self.mem.add64(ctr::REAPED, 1, Relaxed);
            st.adopted = Some(i);
            st.cursor = p;
            return Ok(Some(self.view_at(p, lt, size)));
        }
        Ok(None)
    }

    /// Group member: releases the message it holds (its own, or one it
    /// redelivered for a dead member, whose slot it then frees).
    fn group_release(&self, st: &mut SubState) {
        let s = self.layout.slot(st.slot);
        // Relaxed: statistics for inspectors.
        self.mem.store64(s + slot::RECEIVED, st.received, Relaxed);
        if let Some(dead) = st.adopted.take() {
            // Release: our reads of the frame happen before a producer that
            // sees the slot free overwrites it.
            let _ = self.mem.cas32(
                self.layout.slot(dead) + slot::STATE,
                slot::state::ACTIVE,
                slot::state::FREE,
                Release,
                Relaxed,
            );
        } else {
            // Release: as above, for our own announced frame.
            self.mem.store64(s + slot::CURSOR, slot::IDLE, ord!(Release, "cursor_relaxed", Relaxed));
        }
        st.cursor = slot::IDLE;
        self.wake_space();
    }

    /// After a cursor moved on: wakes producers waiting for space (light
    /// half of the space handshake, as in [`Ring::release_to`]).
    #[inline(always)]
    fn wake_space(&self) {
        fence_sc!(self.mem, light, "space_fence");
        // Relaxed: ordered by the fence.
        if self.mem.load32(wake::SPACE_WAITERS, Relaxed) > 0 {
            self.wake_all(wake::SPACE_FUTEX);
        }
    }

    /// Removes consumer group `name` (its cursor stops gating). `Err(n)`
    /// if `n` live members are in it.
    pub fn remove_group(&self, name: &[u8]) -> Result<bool, usize> {
        let mut key = [0u8; SLOT_NAME_LEN];
        let n = name.len().min(SLOT_NAME_LEN);
        key[..n].copy_from_slice(&name[..n]);
        let Some(g) = self.find_group(&key) else {
            return Ok(false);
        };
        let live = (0..self.layout.max_subscribers as usize)
            .filter(|&i| {
                let s = self.layout.slot(i);
                let owner = self.mem.load64(s + slot::PID, Relaxed);
                // Acquire: pairs with the member's Release store of ACTIVE.
                self.mem.load32(s + slot::STATE, Acquire) == slot::state::ACTIVE
                    && self.mem.load32(s + slot::FLAGS, Relaxed) & slot::flags::MEMBER != 0
                    && self.mem.load32(s + slot::GROUP, Relaxed) as usize == g
                    && self.mem.is_alive(owner as u32, owner >> 32)
            })
            .count();
        if live > 0 {
            return Err(live);
        }
        let s = self.layout.slot(g);
        self.mem.store32(s + slot::FLAGS, 0, Relaxed);
        // Release: the record stops gating.
        let _ = self.mem.cas32(s + slot::STATE, slot::state::ACTIVE, slot::state::FREE, Release, Relaxed);
        self.wake_space();
        Ok(true)
    }

    fn claim_slot(&self) -> Option<usize> {
        (0..self.layout.max_subscribers as usize).find(|&i| {
            let s = self.layout.slot(i);
            // Acquire: pairs with the Release/Relaxed free of the previous
            // owner; we overwrite all fields anyway.
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
        // Release: pairs with the producer's Acquire load of the state in
        // its scan, so it sees our cursor.
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
        let safe = (t1 + self.max_claim()).saturating_sub(self.cap());
        let mut cursor = t1;
        if start != Start::Newest && first < t1 {
            if let Some(p) = self.walk_to(first, safe, t1) {
                cursor = self.seek(p, t1, start).0;
            }
        }
        st.cursor = cursor;
        // Release: pairs with the producer's Acquire cursor load.
        self.mem.store64(s + slot::CURSOR, cursor, Release);
    }

    /// Oldest frame position the producer side advertises, never above `tail`.
    fn oldest_hint(&self, tail: u64) -> u64 {
        if self.layout.multi_producer {
            // No producer tracks frame starts; the slowest active cursor is
            // a frame start whose frames are all intact.
            let m = self.scan_min_cursor(tail);
            if m == NO_SUBSCRIBER {
                tail
            } else {
                m
            }
        } else {
            self.load_pos(prod::OLDEST, Relaxed).min(tail)
        }
    }

    /// From frame start `from`, walks committed frames to the first frame
    /// start at or after `min_pos`, validating each header against the tail
    /// (a header the producer may be overwriting is not trusted). Returns
    /// `None` if the walk hits something it cannot validate.
    fn walk_to(&self, from: u64, min_pos: u64, tail: u64) -> Option<u64> {
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
    fn seek(&self, mut p: u64, tail: u64, start: Start) -> (u64, Option<u64>) {
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

    /// Reads the header of the committed frame at `p` and validates it
    /// against overwrite.
    fn header_validated(&self, p: u64) -> Option<Header> {
        let off = self.layout.frame_at(p);
        // Acquire: pairs with the producer's Release stamp store.
        if self.mem.load64(off + frame::STAMP, Acquire) != p ^ self.key() {
            return None;
        }
        let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
        let seq = self.mem.load64(off + frame::SEQ, Relaxed);
        let ts = self.mem.load64(off + frame::TIMESTAMP, Relaxed);
        let size = self.frame_len_of(p, lt)?;
        // Acquire fence: pairs with the producer's Release fence after its
        // tail (intent) store; if the tail has not passed p + capacity, the
        // words we read were not being overwritten.
        self.mem.fence(Acquire);
        if self.load_pos(prod::TAIL, Relaxed) > p + self.cap() {
            return None;
        }
        let is_pad = (lt >> 32) as u32 & frame::PADDING != 0;
        Some(Header { size, seq: (!is_pad).then_some(seq), ts })
    }

    /// Positions an `Overwrite` subscriber: after the last committed frame
    /// (newest), or at the oldest intact frame.
    fn position_overwrite(&self, st: &mut SubState, start: Start) {
        for attempt in 0..LAP_RETRIES {
            if attempt > 0 {
                self.mem.snooze(attempt);
            }
            let tail = self.load_pos(prod::TAIL, Relaxed);
            let target = match start {
                Start::Newest => {
                    // Acquire: pairs with the producer's Release store of LAST.
                    let last = self.mem.load64(prod::LAST, Acquire);
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
                        st.cursor = q;
                        st.expected_seq = match (start, at) {
                            // Asked for messages already gone: the first
                            // receive reports them as lost.
                            (Start::Seq(s), _) if s < seq => s,
                            (_, Some(at)) => at,
                            _ => self.mem.load64(prod::NEXT_SEQ, Relaxed),
                        };
                    }
                }
                return;
            }
            if p == tail {
                // Only padding up to the tail.
                st.cursor = p;
                st.expected_seq = self.mem.load64(prod::NEXT_SEQ, Relaxed);
                return;
            }
        }
        // The producer laps us faster than we can look: start at the tail;
        // the first frame read fixes the sequence.
        st.cursor = self.load_pos(prod::TAIL, Relaxed);
        st.expected_seq = u64::MAX;
    }

    /// Leaves: frees the slot (after which the cursor no longer gates). A
    /// durable subscriber only detaches: its cursor stays and gates.
    pub fn leave(&self, st: &SubState) {
        let s = self.layout.slot(st.slot);
        // Relaxed: our own slot's flags.
        if self.mem.load32(s + slot::FLAGS, Relaxed) & slot::flags::DURABLE != 0 {
            let (pid, start) = self.mem.self_id();
            self.mem.store64(s + slot::SEEN_NS, self.mem.now_ns(), Relaxed);
            // Release: our cursor and counters are visible to the next owner,
            // which takes the slot with an Acquire CAS.
            let _ = self.mem.cas64(s + slot::PID, owner_word(pid, start), 0, Release, Relaxed);
            return;
        }
        // Release: our reads of released frames happen before a producer
        // that sees the slot free overwrites them (pairs with its Acquire
        // state load).
        let _ = self.mem.cas32(s + slot::STATE, slot::state::ACTIVE, slot::state::FREE, Release, Relaxed);
        // A producer may be waiting on our cursor (light half, as a release).
        self.wake_space();
    }

    /// Whether this subscriber still owns its slot.
    pub fn still_owned(&self, st: &SubState) -> bool {
        let s = self.layout.slot(st.slot);
        // Relaxed: an ownership check on our own slot.
        self.mem.load32(s + slot::STATE, Relaxed) == slot::state::ACTIVE
            && self.mem.load64(s + slot::PID, Relaxed) as u32 == self.mem.self_id().0
    }

    /// `Block`: the committed frame at the cursor, if any (zero-copy: the
    /// caller reads the payload in place, then calls [`Ring::release`]).
    /// Padding frames are skipped and released on the way.
    #[inline(always)]
    pub fn peek(&self, st: &mut SubState) -> Result<Option<FrameView>, ReadError> {
        match self.peek_fast(st) {
            Fast::Frame(v) => Ok(Some(v)),
            Fast::Empty => Ok(None),
            Fast::Slow(stamp) => self.peek_slow(st, stamp),
        }
    }

    /// The common case of [`Ring::peek`], with no side effect but a
    /// prefetch: an ordinary message at the cursor, or nothing committed
    /// there on a single-producer topic. Everything else (padding, a length
    /// that fails validation, a multi-producer's frame not yet committed, a
    /// group member) is [`Fast::Slow`], for `peek` to handle.
    #[inline(always)]
    pub fn peek_fast(&self, st: &SubState) -> Fast {
        if st.group.is_some() {
            return Fast::Slow(None);
        }
        let pos = st.cursor;
        let off = self.layout.frame_at(pos);
        // Acquire: pairs with the producer's Release stamp store, so the
        // header and payload below are the committed ones.
        let stamp = self.mem.load64(off + frame::STAMP, Acquire);
        if stamp != pos ^ self.key() {
            if self.layout.multi_producer {
                return Fast::Slow(Some(stamp));
            }
            self.nothing_yet(off);
            return Fast::Empty;
        }
        // Relaxed: ordered after the Acquire stamp load.
        let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
        match self.frame_len_of(pos, lt) {
            Some(size) if (lt >> 32) as u32 & frame::PADDING == 0 => Fast::Frame(self.view_at(pos, lt, size)),
            _ => Fast::Slow(Some(stamp)),
        }
    }

    /// A subscriber found nothing committed at the frame at `off`. It asks
    /// for the frame's next cache line too, so when the producer commits,
    /// both lines travel to it at once instead of one after the other: one
    /// cross-core transfer saved on a 64-byte message (`shmq bench`: 64 B
    /// one-way p50 1.98 -> 1.62 x the raw cache-line ping-pong when the
    /// two CPUs are far apart, no change in throughput). A hint: it never
    /// faults and changes nothing.
    #[inline(always)]
    fn nothing_yet(&self, off: usize) {
        self.mem.prefetch_read(off + 64);
    }

    /// [`Ring::peek`] past what [`Ring::peek_fast`] handles: group members,
    /// multi-producer claims, padding, corrupt lengths. `seen`: the stamp
    /// `peek_fast` loaded at the cursor, if it did.
    #[inline(never)]
    fn peek_slow(&self, st: &mut SubState, mut seen: Option<u64>) -> Result<Option<FrameView>, ReadError> {
        if let Some(g) = st.group {
            return self.group_take(st, g);
        }
        loop {
            let pos = st.cursor;
            let off = self.layout.frame_at(pos);
            // Acquire: pairs with the producer's Release stamp store, so the
            // header and payload below are the committed ones. (The stamp
            // `peek_fast` loaded was loaded the same way.)
            let stamp = match seen.take() {
                Some(s) => s,
                None => self.mem.load64(off + frame::STAMP, Acquire),
            };
            if stamp != pos ^ self.key() {
                if self.layout.multi_producer && self.not_committed_multi(st, stamp)? {
                    continue;
                }
                self.nothing_yet(off);
                return Ok(None);
            }
            // Relaxed: ordered after the Acquire stamp load.
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            let Some(size) = self.frame_len_of(pos, lt) else {
                return Err(ReadError::Corrupt(format!(
                    "frame at position {pos}: length/type word {lt:#x} is invalid"
                )));
            };
            let ty = (lt >> 32) as u32;
            if ty & frame::PADDING != 0 {
                self.release_to(st, pos + size);
                continue;
            }
            return Ok(Some(self.view_at(pos, lt, size)));
        }
    }

    /// The view of the committed message at `pos`, whose validated
    /// length/type word is `lt` (not padding) and frame size `size`.
    #[inline(always)]
    fn view_at(&self, pos: u64, lt: u64, size: u64) -> FrameView {
        let off = self.layout.frame_at(pos);
        FrameView {
            pos,
            payload_off: off + FRAME_HEADER,
            len: lt as u32,
            msg_type: (lt >> 32) as u32,
            // Relaxed: ordered after the caller's Acquire stamp load.
            timestamp_ns: self.mem.load64(off + frame::TIMESTAMP, Relaxed),
            seq: self.mem.load64(off + frame::SEQ, Relaxed),
            next: pos + size,
            lost: 0,
        }
    }

    /// Multi-producer `Block`, [`Ring::peek`] found no committed frame at
    /// the cursor (stamp `stamp`): skips an aborted claim, and now and then
    /// looks for a stuck one. Returns whether to look at the cursor again.
    /// Kept out of line: the single-producer hot path never comes here.
    #[cold]
    #[inline(never)]
    fn not_committed_multi(&self, st: &mut SubState, stamp: u64) -> Result<bool, ReadError> {
        let pos = st.cursor;
        let off = self.layout.frame_at(pos);
        if stamp == pos ^ self.key() ^ ABORTED {
            // Relaxed: ordered after the caller's Acquire stamp load.
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            let Some(size) = self.frame_len_of(pos, lt) else {
                return Err(ReadError::Corrupt(format!(
                    "aborted frame at position {pos}: length/type word {lt:#x} is invalid"
                )));
            };
            self.release_to(st, pos + size);
            return Ok(true);
        }
        st.idle += 1;
        if st.idle >= STUCK_POLLS {
            st.idle = 0;
            return Ok(self.unstick(st));
        }
        Ok(false)
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
        let done = q ^ self.key();
        // Acquire: pairs with the producer's Release mark (and the owner
        // word below), or with another subscriber's Release abort.
        let stamp = self.mem.load64(off + frame::STAMP, Acquire);
        if stamp == done || stamp == done ^ ABORTED {
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
            Some((p, since, cand)) if p == q => {
                if now.saturating_sub(since) < timeout {
                    return false;
                }
                cand
            }
            _ => {
                st.stuck = Some((q, now, 0));
                return false;
            }
        };
        if stamp == done ^ CLAIMED {
            // Relaxed: ordered after the Acquire stamp load; a producer that
            // commits meanwhile makes the CAS below fail.
            let owner = self.mem.load64(off + frame::TIMESTAMP, Relaxed);
            if self.mem.is_alive(owner as u32, owner >> 32) {
                // A live producer is never skipped; look again later.
                st.stuck = Some((q, now, 0));
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
            st.stuck = Some((q, now, end));
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
            self.mem.store64(off + frame::LEN_TYPE, size_word(first, true), Relaxed);
            self.mem.cas64(off + frame::STAMP, stamp, done ^ ABORTED, Release, Relaxed).is_ok()
        };
        #[cfg(not(shmq_mutation = "abort_len_first"))]
        let ok = self.mem.cas64(off + frame::STAMP, stamp, done ^ ABORTING, Relaxed, Relaxed).is_ok();
        if ok {
            self.mem.store64(off + frame::LEN_TYPE, size_word(first, true), Relaxed);
            if first < end - q {
                // The claim wrapped: the rest lies at the start of the ring.
                self.write_padding(q + first, end - q - first);
            }
            // Release: publishes the length word to readers' Acquire load.
            self.mem.store64(off + frame::STAMP, done ^ ABORTED, Release);
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
            let done = p ^ self.key();
            // Relaxed: a hint only; the abort CAS is what decides.
            let stamp = self.mem.load64(self.layout.frame_at(p) + frame::STAMP, Relaxed);
            if stamp == done || stamp == done ^ CLAIMED || stamp == done ^ ABORTED || stamp == done ^ ABORTING {
                return Some(p);
            }
            p += FRAME_HEADER as u64;
        }
        (tail <= limit).then_some(tail)
    }

    /// `Block`: releases the frame returned by [`Ring::peek`]: the producer
    /// may now reuse its bytes.
    #[inline(always)]
    pub fn release(&self, st: &mut SubState, view: &FrameView) {
        st.received += 1;
        st.expected_seq = view.seq.wrapping_add(1);
        if st.group.is_some() {
            self.group_release(st);
        } else {
            self.release_to(st, view.next);
        }
    }

    /// Publishes the cursor and wakes a producer waiting for space.
    #[inline(always)]
    pub fn release_to(&self, st: &mut SubState, next: u64) {
        st.cursor = next;
        let s = self.layout.slot(st.slot);
        // Relaxed: statistics for inspectors.
        self.mem.store64(s + slot::RECEIVED, st.received, Relaxed);
        self.mem.store64(s + slot::NEXT_SEQ, st.expected_seq, Relaxed);
        // Release: our reads of the frame happen before the producer's
        // overwrite (pairs with its Acquire cursor load).
        self.mem.store64(s + slot::CURSOR, next, ord!(Release, "cursor_relaxed", Relaxed));
        // SeqCst fence (light half, in `wake_space`): pairs with the
        // producer's heavy fence between its waiter increment and its
        // re-scan of cursors.
        self.wake_space();
    }

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
        // Acquire: pairs with the producer's Release stamp store.
        let stamp = self.mem.load64(off + frame::STAMP, Acquire);
        if stamp == pos ^ self.key() ^ ABORTED {
            let lt = self.mem.load64(off + frame::LEN_TYPE, Relaxed);
            return match self.frame_len_of(pos, lt) {
                Some(size) => Ok(Passive::Skip(pos + size)),
                None => Err(ReadError::Corrupt(format!("aborted frame at position {pos}: bad length word {lt:#x}"))),
            };
        }
        if stamp != pos ^ self.key() {
            // Acquire: pairs with the producer's Release fence after its tail store.
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
        let len = lt as u32 as usize;
        let is_pad = (lt >> 32) as u32 & frame::PADDING != 0;
        if size.is_some() && !is_pad && len <= buf.len() {
            self.mem.read_racy(off + FRAME_HEADER, &mut buf[..len]);
        }
        // Acquire fence: pairs with the producer's Release fence after its
        // tail store (see `read_copy`).
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
            msg_type: (lt >> 32) as u32,
            timestamp_ns: ts,
            seq,
            next: pos + size,
            lost: 0,
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

    /// Waits for a frame: `Block` peeks, `Overwrite` copies into `buf`.
    /// Spins, then sleeps on the data futex; `timeout` `None` waits forever.
    /// Returns `Ok(None)` on timeout.
    pub fn wait_frame(
        &self,
        st: &mut SubState,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<Option<FrameView>, ReadError> {
        let deadline = timeout.map(|t| self.mem.now_ns().saturating_add(t.as_nanos() as u64));
        let mut step = 0u32;
        loop {
            if let Some(v) = self.poll(st, buf)? {
                return Ok(Some(v));
            }
            let Ok(left) = self.time_left(deadline) else {
                return Ok(None);
            };
            if step < self.mem.spin_steps() {
                self.mem.snooze(step);
                step += 1;
                continue;
            }
            if !self.still_owned(st) {
                return Err(ReadError::Evicted);
            }
            if self.layout.multi_producer && self.layout.policy == Policy::Block && self.unstick(st) {
                continue;
            }
            // Relaxed: compared by the futex syscall.
            let seen = self.mem.load32(wake::DATA_FUTEX, Relaxed);
            self.mem.add32(wake::DATA_WAITERS, 1, Relaxed);
            // SeqCst fence (heavy half): pairs with the producer's light
            // post-commit fence.
            fence_sc!(self.mem, heavy, "data_fence");
            let again = self.poll(st, buf);
            if !matches!(again, Ok(None)) {
                self.mem.sub32(wake::DATA_WAITERS, 1, Relaxed);
                return again;
            }
            self.mem.wait(wake::DATA_FUTEX, seen, Some(left.min(SLEEP_SLICE)));
            self.mem.sub32(wake::DATA_WAITERS, 1, Relaxed);
        }
    }

    /// How long a wait with `deadline` (monotonic ns) may still sleep:
    /// `Err` once it has passed, [`Duration::MAX`] without one. Only a wait
    /// with a deadline reads the clock: a read costs 20-45 ns in VMs, a
    /// fifth of a round trip, and a spinning `recv()` polls in a loop.
    #[inline]
    fn time_left(&self, deadline: Option<u64>) -> Result<Duration, ()> {
        match deadline {
            None => Ok(Duration::MAX),
            Some(d) => {
                let now = self.mem.now_ns();
                if now >= d {
                    Err(())
                } else {
                    Ok(Duration::from_nanos(d - now))
                }
            }
        }
    }

    /// One non-blocking look for a frame, for either policy.
    #[inline(always)]
    pub fn poll(&self, st: &mut SubState, buf: &mut [u8]) -> Result<Option<FrameView>, ReadError> {
        match self.layout.policy {
            Policy::Block => self.peek(st),
            Policy::Overwrite => self.read_copy(st, buf),
        }
    }
}
