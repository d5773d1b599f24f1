//! The ring protocol: claiming, committing and reading frames, gating a
//! `Block` producer on the slowest subscriber, and the sleep/wake handshake.
//! Written once against [`Memory`], so `loom-tests/` checks this code.
//!
//! # Where each mechanism lives
//! Each file holds one mechanism as its own `impl<M: Memory> Ring<M>` block
//! (the layout of crossbeam-channel's `flavors/`); this file holds the
//! overview below, the [`Ring`] itself and the helpers they share.
//!
//! | file | mechanism |
//! |---|---|
//! | [`frames`] | frame headers: validating a length word, padding frames, a committed frame's view |
//! | [`claim`] | a producer's claim: the one-comparison fast path, padding at the wrap, the multi-producer CAS and its mark, the oldest-frame marks; [`ProducerState`] |
//! | [`commit`] | writing a claim's payload and header, the commit stamp, aborting a claim |
//! | [`batch`] | a single producer's run of messages under one claim and one commit |
//! | [`gating`] | `Block` gating: the cursor scan, joining (the epoch handshake), leaving |
//! | [`waiting`] | both halves of each sleep/wake handshake, and waits with a [`Wait`] |
//! | [`reading`] | a subscriber's peek and release on `Block`; [`SubState`] |
//! | [`overwrite`] | `Overwrite`: copy and validate, passive readers, seeking a start |
//! | [`owner`] | the single producer's ownership word |
//! | [`repair`] | liveness: reaping dead subscribers, repairing a dead producer's claims |
//! | [`named`] | durable subscribers and the names lock |
//! | [`group`] | consumer groups |
//! | [`recovery`] | recovery of a file-backed topic after a machine restart |
//! | [`closing`] | end of stream: the closed mark, its wake, close-on-exit (the producers lock) |
//!
//! The encodings of the words these read and write (stamps, length/type
//! words, owners, names) are in [`crate::layout`], one type per word.
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
//! attachment id (overwritten at commit), whose kernel lock says whether
//! it lives, in any pid namespace; it commits with a CAS from
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
//! # Orderings, and the loom mutation that removes each
//! Every ordering stronger than `Relaxed` on shared memory, by the pair it
//! forms (writer's side -> reader's side). Each named mutation is listed
//! in `loom-tests/mutations.txt` with the scenario that fails when it is
//! compiled in (`bash loom-tests/mutations.sh`); a test checks that this
//! table, that list, `loom-tests/README.md` and the code name the same
//! mutations.
//!
//! | pair | where | mutation |
//! |---|---|---|
//! | commit stamp `Release` -> a `Block` subscriber's stamp `Acquire` | [`commit`], [`frames`] (padding); [`reading`] | `commit_relaxed`, `stamp_acquire` |
//! | commit stamp -> the stamp `Acquire` of the general read path | [`reading`] (`peek_slow`) | `slow_stamp_acquire` |
//! | commit stamp -> a group member's stamp `Acquire` | [`group`] (`group_take`) | `group_stamp_acquire` |
//! | commit stamp -> an `Overwrite` or passive reader's stamp `Acquire` | [`overwrite`] (`read_passive`) | `passive_stamp_acquire` |
//! | commit stamp -> the stamp `Acquire` before a header is used to position or seek | [`frames`] (`header_validated`) | `header_acquire` |
//! | multi-producer claim mark (exchange, `Release`) -> stamp `Acquire` | [`claim`] (`mark`) | `mark_relaxed`, `mark_store` |
//! | multi-producer commit (CAS from the mark, `Release`) -> stamp `Acquire` | [`commit`] (`commit_multi`) | `commit_relaxed`, `commit_store` |
//! | a dropped multi-producer grant turned into padding (CAS, `Release`) -> stamp `Acquire` | [`commit`] (`abort`) | `abort_relaxed` |
//! | an aborted stuck claim (`ABORTING`, length, `ABORTED` with `Release`) -> stamp `Acquire` | [`repair`] (`unstick`) | `aborted_relaxed`, `abort_len_first` |
//! | a subscriber's cursor release -> the producer's cursor `Acquire` in its scan | [`reading`], [`group`]; [`gating`] | `cursor_relaxed` |
//! | the join epoch increment -> the producer's epoch `Acquire` | [`gating`] | `epoch_relaxed` |
//! | a group member's CAS of the group cursor (publishes its announcement) -> the producer's scan | [`group`] | `group_cursor_relaxed` |
//! | freeing a dead member's slot after redelivering (or burying) its message -> the producer's slot-state `Acquire` | [`group`] (`group_release`, `bury`); [`gating`] (`scan_pass`) | `adopt_free_relaxed`, `bury_free_relaxed`, `scan_state_acquire` |
//! | a joiner's `ACTIVE` -> a reaper's slot-state `Acquire` (owner words) | [`gating`], [`group`]; [`repair`] (`reap_dead`) | `reap_acquire` |
//! | a single producer's detach -> the next attach's CAS `Acquire` | [`owner`] | `owner_acquire` |
//! | an attach CAS publishing the attachment id (its lock taken before) -> another attacher's `Acquire` read of it, then its lock test | [`owner`] | `owner_publish` |
//! | a durable subscriber's detach -> the taker's owner load and CAS `Acquire` | [`gating`] (`leave`); [`named`] | `durable_relaxed` |
//! | the names lock (a kernel lock: taking and dropping it order like a mutex) | [`named`] | `names_unlocked` |
//! | a durable take-over's owner CAS (`Release`, the new owner's lock taken before) -> a reaper's owner `Acquire`, then its lock test | [`named`]; [`repair`] (`reap_dead`) | `takeover_publish`, `reap_owner_acquire` |
//! | a group adoption's owner CAS (`Release`) -> another member's owner `Acquire`, then its lock test | [`group`] (`adopt_dead`) | `adopt_publish`, `adopt_owner_acquire` |
//! | end of stream: the close's mark, `SeqCst` fence, data-futex bump and wake <-> a sleeping subscriber's fence and re-look | [`closing`]; [`waiting`] | `close_fence`, `close_no_wake` |
//! | the first producer's "had a producer" flag (`Release`, after the producers lock) -> a subscriber's `Acquire`, then its lock test | [`closing`] | `had_producer_relaxed` |
//! | `Overwrite` intent: tail store, `Release` fence -> reader's `Acquire` fence, tail re-read | [`claim`] (`take_single`); [`overwrite`]; [`frames`] | `intent_fence`, `validate_fence`, `header_fence` |
//! | data wake: post-commit fence <-> a subscriber's fence before it sleeps | [`commit`]; [`waiting`] | `data_fence` |
//! | space wake: post-release fence <-> a producer's fence before it sleeps | [`waiting`] | `space_fence` |
//! | join: post-commit fence <-> the joiner's fence before it reads the tail | [`commit`]; [`gating`] | `join_fence` |
//!
//! Three further mutations change no ordering but a step of the protocol
//! that a scenario depends on: `fast_gate` (the fast-path limit ignores
//! the gating cursor), `group_no_wake` (a withdrawn announcement without
//! its wake) and `corrupt_no_recheck` (a corrupt-frame skip that does not
//! look at the cursor again).
//!
//! Some orderings are needed and no scenario catches them; their comments
//! say why: the slot-free `Release` of a leaving subscriber (the light
//! fence after it is a compiler fence in production, a `SeqCst` fence in
//! the model, which orders the pair by itself); `unstick`'s stamp
//! `Acquire` (telling an aborted live claim from an unmarked one needs
//! real time). Every other ordering stronger than `Relaxed` is only
//! defensive, and its comment says why it could be `Relaxed`: the abort
//! put-back in `mark`, the passive reader's tail load, a joiner's last
//! cursor store, `claim_slot`, slot searches under the names lock, the
//! take-over of a lock or slot from a dead process (death, observed
//! through the kernel, orders the dead process's stores), the group
//! cursor loads, a withdrawn announcement, the group record's and a
//! removed durable's free, `repair_single_claim`'s stamps, and the boot id
//! after a recovery (ordered by the flock).
//!
//! # Untrusted memory
//! Other processes write this memory. Every value read from it (stamps,
//! lengths, cursors, the tail) is checked before it is used to compute an
//! offset: a payload length above `max_message`, a frame that would cross the
//! end of the ring or a padding length that is not a whole number of frames
//! is reported as [`ReadError::Corrupt`], never used.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::layout::{frame_size, Layout, MAX_POS};
use crate::mem::Memory;

/// Picks an ordering, or a weaker one when the (or one of the two) named
/// mutation is compiled in
/// (`SHMQ_MUTATION=NAME`, which `build.rs` turns into
/// `--cfg shmq_mutation="NAME"`): how `loom-tests/` proves that its
/// scenarios notice a missing ordering. Every name is listed in
/// `loom-tests/mutations.txt`.
macro_rules! ord {
    ($strong:expr, $mutation:literal, $weak:expr) => {{
        #[cfg(shmq_mutation = $mutation)]
        let o = $weak;
        #[cfg(not(shmq_mutation = $mutation))]
        let o = $strong;
        o
    }};
    ($strong:expr, $mutation:literal, $weak:expr, $mutation2:literal, $weak2:expr) => {{
        #[cfg(shmq_mutation = $mutation)]
        let o = $weak;
        #[cfg(shmq_mutation = $mutation2)]
        let o = $weak2;
        #[cfg(not(any(shmq_mutation = $mutation, shmq_mutation = $mutation2)))]
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

pub mod batch;
pub mod claim;
pub mod closing;
pub mod commit;
pub mod frames;
pub mod gating;
pub mod group;
pub mod named;
pub mod overwrite;
pub mod owner;
pub mod reading;
pub mod recovery;
pub mod repair;
pub mod waiting;

pub use batch::Run;
pub use claim::{Claim, ClaimError, ProducerState};
pub use frames::FrameView;
pub use group::{DeadLetters, Sink};
pub use overwrite::Passive;
pub use owner::AttachError;
pub use reading::{Fast, SubState};
pub use waiting::{Parked, Wait};

/// `cached_min` value meaning "no active subscriber gates the producer".
const NO_SUBSCRIBER: u64 = u64::MAX;
/// How often a blocked producer checks whether gating subscribers are
/// alive, and a group member whether another member died.
const LIVENESS_CHECK_NS: u64 = 20_000_000;

/// Why a subscriber (plain, durable, or a group member) could not join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// No free slot.
    NoFreeSlot,
    /// A durable subscriber's name is held by a live process (this pid,
    /// for display; 0 if unknown).
    Taken(u32),
    /// The durable subscriber was dropped after the topic's durable
    /// expiry; its slot is freed now, so joining again starts afresh.
    Expired,
    /// The kernel gave no lock to attach with (out of descriptors).
    Attach(String),
    /// The consumer group exists with another `max_deliveries` (this one).
    GroupSettings {
        /// The group's value.
        max_deliveries: u32,
    },
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The ring holds a value no correct producer writes.
    Corrupt(String),
    /// This subscriber's slot was taken away (reaped as dead, or repaired).
    Evicted,
    /// At the end of a closed stream (see `closing`).
    Closed,
}

/// See [`Ring::load_pos`].
#[inline]
fn sane_pos(v: u64) -> u64 {
    v.min(MAX_POS) & !(crate::layout::FRAME_ALIGN as u64 - 1)
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
    /// marks (see `advance_oldest` in [`claim`]): the ring is cut into 64
    /// segments by default. A claim that stays inside a segment already
    /// marked takes the fast path, so the model rings of `loom-tests/`
    /// (two frames a lap) use one segment per lap to reach it.
    pub mark_shift: u32,
}

impl<M: Memory> Ring<M> {
    /// Wraps memory whose header has been validated into `layout`.
    pub fn new(mem: M, layout: Layout) -> Self {
        let mark_shift = layout.capacity.trailing_zeros().saturating_sub(claim::MARKS.trailing_zeros());
        Ring { mem, layout, mark_shift }
    }

    /// The topic's stamp key (see "Commit by stamp").
    #[inline(always)]
    fn key(&self) -> u64 {
        self.layout.stamp_key
    }

    /// Loads a position (tail, oldest, claim start, cursor) from shared
    /// memory, made safe to compute with: aligned down to a frame boundary
    /// (so every access derived from it is aligned and in bounds) and
    /// clamped to [`MAX_POS`] (so adding a capacity never overflows). A
    /// value another process corrupted becomes a harmless wrong position,
    /// which the stamps then refuse.
    #[inline]
    fn load_pos(&self, off: usize, order: Ordering) -> u64 {
        sane_pos(self.mem.load64(off, order))
    }

    #[inline(always)]
    fn cap(&self) -> u64 {
        self.layout.capacity
    }

    /// Largest claim a single publish can make (padding + frame).
    fn max_claim(&self) -> u64 {
        2 * frame_size(self.layout.max_message as u64)
    }

    /// The furthest a single claim starting at `tail` can reach: the
    /// largest frame, after padding to the ring's end if it does not fit
    /// before it. Tighter than `tail + max_claim()`, which matters on
    /// rings whose largest message is a large share of the capacity.
    fn claim_end_bound(&self, tail: u64) -> u64 {
        let frame = frame_size(self.layout.max_message as u64);
        let off = tail % self.cap();
        if off + frame <= self.cap() {
            tail + frame
        } else {
            tail - off + self.cap() + frame
        }
    }

    /// How long a wait that ends at `deadline` (monotonic ns) may still
    /// sleep: `Err` once it has passed, [`Duration::MAX`] without one.
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
}
