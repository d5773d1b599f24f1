//! The segment layout: where every field of a topic file lives, and the
//! checks that turn an untrusted header into a [`Layout`].
//!
//! ```text
//!  offset                       contents (every line is 128 bytes: two cache
//!                               lines, so the adjacent-line prefetcher never
//!                               couples two hot fields)
//!  0      ┌──────────────────┐
//!         │ static header    │ magic, version, ready flag, sizes, policy,
//!         │                  │ stamp key, creator, liveness settings
//!  128    ├──────────────────┤
//!         │ producer line    │ tail (claim position), oldest, last, seq,
//!         │                  │ join epoch, owner pid, counters (1 producer)
//!  256    ├──────────────────┤
//!         │ data wake line   │ futex word + waiter count (subscribers sleep)
//!  384    ├──────────────────┤
//!         │ space wake line  │ futex word + waiter count (producers sleep)
//!  512    ├──────────────────┤
//!         │ shared counters  │ multi-producer counters, waits, reaps, repairs
//!  640    ├──────────────────┤
//!         │ subscriber slots │ max_subscribers × 256 bytes; the first line of
//!         │                  │ a slot holds what the producer scans (state,
//!         │                  │ cursor), the second what only the CLI reads
//!         ├──────────────────┤ (padded to a 4096-byte boundary)
//!         │ data region      │ capacity bytes of frames (a power of two)
//!         └──────────────────┘
//! ```
//!
//! All offsets in this module are byte offsets from the start of the file.
//! The header is written by another process, so [`Layout::validate`] checks
//! every field against the real file length before any other code uses it.

use crate::error::OpenError;

mod words;
pub use words::{LenType, Owner, SlotName, Stamp, StampState, IDLE, MAX_POS};

/// First eight bytes of every topic file: `"SHMQRING"` in little-endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMQRING");
/// Layout version; bumped on any incompatible change of this file's format.
/// Version 2: liveness by kernel locks, not pids (owner words hold
/// attachment ids, [`hdr::ATTACH_SEQ`] numbers them, [`lock`] places the
/// locks); a process of version 1 and one of version 2 cannot share a
/// topic, so each refuses the other's files.
pub const VERSION: u32 = 3;
/// Size of one header line. Two cache lines, against adjacent-line prefetch.
pub const LINE: usize = 128;
/// Size of one subscriber slot (two lines: scanned part, inspected part).
pub const SLOT_SIZE: usize = 256;
/// Frames start on, and are padded to, this alignment.
pub const FRAME_ALIGN: usize = 32;
/// Size of a frame header (stamp, length+type, timestamp, sequence).
pub const FRAME_HEADER: usize = 32;
/// Smallest ring capacity accepted by [`Layout::new`].
pub const MIN_CAPACITY: u64 = 256;
/// Largest ring capacity accepted (1 TiB), so positions never overflow.
pub const MAX_CAPACITY: u64 = 1 << 40;
/// Largest subscriber table.
pub const MAX_SUBSCRIBERS: u32 = 4096;
/// Longest durable subscriber name stored in a slot.
pub const SLOT_NAME_LEN: usize = 32;

/// Values of the header's `state` word.
pub mod state {
    /// The creator is still writing the header.
    pub const INIT: u32 = 0;
    /// The header is complete; published with a release store.
    pub const READY: u32 = 1;
}

/// Offsets of the static header fields.
pub mod hdr {
    /// u64 [`super::MAGIC`].
    pub const MAGIC: usize = 0;
    /// u32 [`super::VERSION`].
    pub const VERSION: usize = 8;
    /// u32 ready flag, see [`super::state`].
    pub const STATE: usize = 12;
    /// u64 offset of the data region (= size of everything before it).
    pub const DATA_OFFSET: usize = 16;
    /// u64 capacity of the data region in bytes (a power of two).
    pub const CAPACITY: usize = 24;
    /// u32 largest payload accepted.
    pub const MAX_MESSAGE: usize = 32;
    /// u32 number of subscriber slots.
    pub const MAX_SUBSCRIBERS: usize = 36;
    /// u32 [`super::Policy`] as a number.
    pub const POLICY: usize = 40;
    /// u32 1 for a multi-producer topic.
    pub const MULTI_PRODUCER: usize = 44;
    /// u64 key XORed into every frame stamp (see `ring` module docs).
    pub const STAMP_KEY: usize = 48;
    /// u64 creation time, nanoseconds since the Unix epoch (for display).
    pub const CREATED_UNIX_NS: usize = 56;
    /// u32 pid of the creating process.
    pub const CREATOR_PID: usize = 64;
    /// u32 liveness timeout in milliseconds.
    pub const LIVENESS_MS: usize = 68;
    /// u64 total file length the creator wrote.
    pub const FILE_LEN: usize = 72;
    /// u32 fence mode: 0 symmetric `SeqCst` fences, 1 asymmetric
    /// (membarrier). Every process of a topic must use the topic's mode.
    pub const FENCES: usize = 80;
    /// u32 1 if producers stamp each message with the publish time.
    pub const TIMESTAMPS: usize = 84;
    /// u32 milliseconds a detached durable subscriber may hold a blocked
    /// `Block` producer before it is expired (0: never).
    pub const DURABLE_EXPIRY_MS: usize = 88;
    /// u64 hash of the kernel's boot id when the ring was last known
    /// consistent (0: unknown). A different boot id at open means the
    /// machine restarted: see `Ring::recover_after_reboot`.
    pub const BOOT_ID: usize = 96;
    /// u64 attachments ever made to this topic: each producer and
    /// subscriber takes the next number as its id ([`super::Owner`]) and
    /// holds the kernel lock at [`super::lock::attachment`] of it.
    pub const ATTACH_SEQ: usize = 104;
    /// u32 topic flags, see [`super::topic_flags`].
    pub const FLAGS: usize = 112;
    /// u32 1 once any producer has attached (for `CLOSE_ON_EXIT`: a topic
    /// that never had a producer is not closed).
    pub const HAD_PRODUCER: usize = 116;
    /// u64 0 while the stream is open; after a close, the position of its
    /// end then, plus 1 (the `closing` module of `ring`). A message
    /// published after the close reopens the stream (its end moves on).
    pub const CLOSED_AT: usize = 120;
}

/// Where the kernel locks that say who is alive lie: byte offsets of the
/// topic file, far beyond its data (a lock needs no bytes behind it).
/// Every lock is an open-file-description lock (`F_OFD_SETLK`), held
/// through a descriptor opened with `O_CLOEXEC`; the kernel drops it when
/// the holder exits or `exec`s, and any process that has the file open,
/// in any pid namespace, of any user, can test it (`F_OFD_GETLK`).
pub mod lock {
    /// A read (shared) lock held by every writable handle on the topic:
    /// the topic is in use while anyone else holds it.
    pub const USERS: u64 = 1 << 48;
    /// A write lock held while a named slot (durable subscriber, consumer
    /// group) is found or created, and while one is removed.
    pub const NAMES: u64 = USERS + 1;
    /// A read (shared) lock held by every attached producer: a producer is
    /// alive while anyone holds it (for `topic_flags::CLOSE_ON_EXIT`).
    pub const PRODUCERS: u64 = USERS + 2;
    /// The lock of attachment 1; attachment `id` holds `ATTACH_BASE + id`.
    pub const ATTACH_BASE: u64 = 1 << 49;

    /// The byte whose lock attachment `id` holds.
    pub const fn attachment(id: u64) -> u64 {
        ATTACH_BASE + (id & ((1 << 62) - 1))
    }
}

/// Bits of the topic's flags word (`hdr::FLAGS`).
pub mod topic_flags {
    /// The stream counts as closed once no producer is attached (and one
    /// ever was): `Options::close_on_exit`.
    pub const CLOSE_ON_EXIT: u32 = 1;
    /// A dead-letter topic: each message is a dead-letter envelope
    /// (`crate::DeadLetter`) followed by the original payload.
    pub const DEAD_LETTERS: u32 = 2;
    /// Every bit defined.
    pub const ALL: u32 = CLOSE_ON_EXIT | DEAD_LETTERS;
}

/// Offsets inside the producer line.
pub mod prod {
    use super::LINE;
    const BASE: usize = LINE;
    /// u64 claim position: end of the last claimed frame (absolute bytes).
    pub const TAIL: usize = BASE;
    /// u64 position of the oldest frame still intact (single producer).
    pub const OLDEST: usize = BASE + 8;
    /// u64 position of the last committed frame + 1 (0: none yet).
    pub const LAST: usize = BASE + 16;
    /// u64 single producer: sequence number of the next message.
    pub const NEXT_SEQ: usize = BASE + 24;
    /// u64 bumped by every subscriber that joins a `Block` topic.
    pub const JOIN_EPOCH: usize = BASE + 32;
    /// u64 single producer: the attachment id ([`super::Owner`]) of the
    /// producer that holds the topic, 0 when free.
    pub const OWNER: usize = BASE + 40;
    /// u64 single producer: the holder's pid, for display (it may belong
    /// to another pid namespace).
    pub const OWNER_PID: usize = BASE + 48;
    /// u64 single producer: bytes published (payload bytes).
    pub const BYTES: usize = BASE + 56;
    /// u64 single producer: start of the claim in flight (for repair).
    pub const CLAIM_START: usize = BASE + 64;
    /// u64 position up to which a producer's `flush` has reached the disk.
    pub const FLUSHED: usize = BASE + 72;
}

/// Offsets of the two wake lines.
pub mod wake {
    use super::LINE;
    /// u32 futex word subscribers sleep on; bumped by producers.
    pub const DATA_FUTEX: usize = 2 * LINE;
    /// u32 number of subscribers asleep or about to sleep.
    pub const DATA_WAITERS: usize = 2 * LINE + 4;
    /// u32 futex word producers sleep on; bumped by subscribers.
    pub const SPACE_FUTEX: usize = 3 * LINE;
    /// u32 number of producers asleep or about to sleep.
    pub const SPACE_WAITERS: usize = 3 * LINE + 4;
}

/// Number of header lines before the subscriber table.
pub const HEADER_LINES: usize = 5;

/// Offsets of the shared counters line.
pub mod ctr {
    use super::LINE;
    const BASE: usize = 4 * LINE;
    /// u64 multi producer: next sequence number (fetch_add).
    pub const MP_SEQ: usize = BASE;
    /// u64 multi producer: payload bytes published.
    pub const MP_BYTES: usize = BASE + 8;
    /// u64 times a producer found the ring full.
    pub const PRODUCER_WAITS: usize = BASE + 16;
    /// u64 subscriber slots reclaimed from dead processes.
    pub const REAPED: usize = BASE + 24;
    /// u64 stuck frames turned into padding by repair.
    pub const REPAIRED: usize = BASE + 32;
    // BASE + 40: unused since version 2 (the names lock is the kernel
    // lock `lock::NAMES`).
}

/// Offsets inside one subscriber slot, relative to the slot's start.
pub mod slot {
    /// u32 slot state, see [`state`].
    pub const STATE: usize = 0;
    /// u32 [`flags`] of the slot.
    pub const FLAGS: usize = 4;
    /// u64 cursor: absolute position of the next frame to read. For a
    /// consumer group's record: the group's next frame to hand out; for a
    /// group member: the frame it holds, or `IDLE`.
    pub const CURSOR: usize = 8;
    /// u32 group member: index of its group's record slot.
    pub const GROUP: usize = 16;
    /// Cursor value of a group member that holds nothing (never gates):
    /// [`super::IDLE`].
    pub const IDLE: u64 = super::IDLE;
    /// u64 owner: the attachment id ([`super::Owner`]) of the process that
    /// holds the slot, so one CAS changes owners; 0 for a detached durable
    /// subscriber and a group's record.
    pub const OWNER: usize = 128;
    /// u64 owner's pid, for display (it may belong to another pid
    /// namespace).
    pub const PID: usize = 136;
    /// u64 messages received.
    pub const RECEIVED: usize = 144;
    /// u64 messages lost (overwrite policy).
    pub const LOST: usize = 152;
    /// u64 last time the owner touched the slot (monotonic ns).
    pub const SEEN_NS: usize = 160;
    /// 32 bytes: optional name, a [`super::SlotName`] (NUL padded).
    pub const NAME: usize = 168;
    /// u64 sequence number the subscriber expects next (for lag display).
    pub const NEXT_SEQ: usize = 200;
    /// u32 group member: how many times the message it holds has been
    /// delivered (1 when taken; a redelivery to an adopter adds one).
    pub const DELIVERIES: usize = 208;
    /// u32 group record: a message delivered this many times without being
    /// released goes to the dead-letter topic (0: never). Set when the
    /// group is created.
    pub const MAX_DELIVERIES: usize = 212;
    /// u64 group record: messages moved to the dead-letter topic.
    pub const DEAD_LETTERED: usize = 216;

    /// Values of a slot's state word.
    pub mod state {
        /// Nobody owns the slot.
        pub const FREE: u32 = 0;
        /// A subscriber is filling the slot in.
        pub const CLAIMING: u32 = 1;
        /// A subscriber (or a detached durable one, owner 0); its cursor
        /// gates `Block` producers.
        pub const ACTIVE: u32 = 2;
        /// A durable subscriber dropped after the topic's durable expiry;
        /// keeps its name until its owner returns and is told.
        pub const EXPIRED: u32 = 3;
    }

    /// Bits of a slot's flags word.
    pub mod flags {
        /// A durable subscriber: its slot and cursor outlive its process.
        pub const DURABLE: u32 = 1;
        /// A consumer group's record: name, and the shared claim cursor
        /// (which gates `Block` producers); owned by no process.
        pub const GROUP: u32 = 2;
        /// A consumer group member: its cursor is the frame it holds.
        pub const MEMBER: u32 = 4;
    }
}

/// Offsets inside a frame, relative to the frame's start (bit diagram:
/// [`crate::layout::Stamp`] and the `words` module).
pub mod frame {
    /// u64 [`super::Stamp`]: the frame's absolute position XOR the topic's
    /// stamp key, with state bits while a multi-producer claim is open.
    pub const STAMP: usize = 0;
    /// u64 [`super::LenType`]: length (low 32 bits) | type (high 32 bits).
    pub const LEN_TYPE: usize = 8;
    /// u64 publish time, `CLOCK_MONOTONIC` nanoseconds.
    pub const TIMESTAMP: usize = 16;
    /// u64 message sequence number.
    pub const SEQ: usize = 24;
    /// Type bit that marks a padding frame (its length is the frame size).
    pub const PADDING: u32 = 1 << 31;
}

/// What a `Block` or `Overwrite` topic does when a subscriber falls behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "lowercase"))]
pub enum Policy {
    /// Lossless: a producer never overwrites bytes an active subscriber has
    /// not released; when the ring is full it waits or returns `Full`.
    Block,
    /// Lossy: the producer never waits; a subscriber that falls a whole ring
    /// behind is told how many messages it lost and resumes at the oldest.
    Overwrite,
}

impl Policy {
    pub(crate) fn to_raw(self) -> u32 {
        match self {
            Policy::Block => 0,
            Policy::Overwrite => 1,
        }
    }
    pub(crate) fn from_raw(v: u32) -> Option<Policy> {
        match v {
            0 => Some(Policy::Block),
            1 => Some(Policy::Overwrite),
            _ => None,
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Policy::Block => "block",
            Policy::Overwrite => "overwrite",
        })
    }
}

/// Rounds `n` up to a multiple of [`FRAME_ALIGN`].
pub const fn align_frame(n: u64) -> u64 {
    (n + FRAME_ALIGN as u64 - 1) & !(FRAME_ALIGN as u64 - 1)
}

/// Size of the frame that carries a payload of `len` bytes.
pub const fn frame_size(len: u64) -> u64 {
    align_frame(FRAME_HEADER as u64 + len)
}

/// The validated geometry of one segment: everything the ring needs to turn
/// positions into offsets. Built by the creator from options, or by an opener
/// from the (untrusted) header through [`Layout::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Data region size in bytes; a power of two in
    /// `MIN_CAPACITY..=MAX_CAPACITY`.
    pub capacity: u64,
    /// Largest payload; `frame_size(max_message) <= capacity / 2`.
    pub max_message: u32,
    /// Number of subscriber slots, `1..=MAX_SUBSCRIBERS`.
    pub max_subscribers: u32,
    /// Loss policy.
    pub policy: Policy,
    /// Whether several producers may publish at once.
    pub multi_producer: bool,
    /// Key XORed into stamps.
    pub stamp_key: u64,
    /// Offset of the data region; a multiple of 4096.
    pub data_offset: usize,
    /// Asymmetric fences (`membarrier`) instead of `SeqCst` on hot paths.
    pub asymmetric_fences: bool,
    /// Producers write a `CLOCK_MONOTONIC` publish time into every frame.
    pub timestamps: bool,
    /// How long a frame may stay claimed by a dead (multi-)producer before
    /// a subscriber turns it into padding, in milliseconds
    /// (`1..=MAX_LIVENESS_MS`).
    pub liveness_ms: u32,
    /// Milliseconds a detached durable subscriber may hold a blocked
    /// producer before it is expired; 0: never.
    pub durable_expiry_ms: u32,
    /// The stream counts as closed once its last producer is gone.
    pub close_on_exit: bool,
    /// A dead-letter topic (its messages carry an envelope).
    pub dead_letters: bool,
}

/// Default [`Layout::liveness_ms`].
pub const DEFAULT_LIVENESS_MS: u32 = 1000;
/// Largest [`Layout::liveness_ms`] accepted (one hour).
pub const MAX_LIVENESS_MS: u32 = 3_600_000;

impl Layout {
    /// Largest payload a ring of `capacity` bytes accepts: a frame must fit
    /// in half the ring, so a padding frame plus the frame always fit too.
    pub const fn max_message_for(capacity: u64) -> u64 {
        capacity / 2 - FRAME_HEADER as u64
    }

    /// Offset of the data region for a table of `max_subscribers` slots.
    pub const fn data_offset_for(max_subscribers: u32) -> usize {
        let end = HEADER_LINES * LINE + max_subscribers as usize * SLOT_SIZE;
        (end + 4095) & !4095
    }

    /// Builds and checks a layout from creation options.
    pub fn new(
        capacity: u64,
        max_message: u32,
        max_subscribers: u32,
        policy: Policy,
        multi_producer: bool,
        stamp_key: u64,
    ) -> Result<Layout, String> {
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(format!("capacity {capacity} must be a power of two in {MIN_CAPACITY}..={MAX_CAPACITY}"));
        }
        if max_message as u64 > Self::max_message_for(capacity) {
            return Err(format!(
                "max message {max_message} bytes does not fit a {capacity}-byte ring \
                 (at most {} bytes: a frame must fit in half the ring)",
                Self::max_message_for(capacity)
            ));
        }
        if max_message >= frame::PADDING {
            return Err("max message must be below 2 GiB".into());
        }
        if max_subscribers == 0 || max_subscribers > MAX_SUBSCRIBERS {
            return Err(format!("max subscribers {max_subscribers} must be in 1..={MAX_SUBSCRIBERS}"));
        }
        if policy == Policy::Overwrite && multi_producer {
            return Err("the overwrite policy supports one producer only: exact loss counts \
                        need one writer to number the messages (use Block for several producers)"
                .into());
        }
        Ok(Layout {
            capacity,
            max_message,
            max_subscribers,
            policy,
            multi_producer,
            stamp_key,
            data_offset: Self::data_offset_for(max_subscribers),
            asymmetric_fences: false,
            timestamps: false,
            liveness_ms: DEFAULT_LIVENESS_MS,
            durable_expiry_ms: 0,
            close_on_exit: false,
            dead_letters: false,
        })
    }

    /// Total file length for this layout.
    pub fn file_len(&self) -> u64 {
        self.data_offset as u64 + self.capacity
    }

    /// Offset of subscriber slot `i` (caller guarantees `i < max_subscribers`).
    pub fn slot(&self, i: usize) -> usize {
        HEADER_LINES * LINE + i * SLOT_SIZE
    }

    /// Offset of the frame at absolute position `pos`.
    pub fn frame_at(&self, pos: u64) -> usize {
        self.data_offset + (pos & (self.capacity - 1)) as usize
    }

    /// Size of the frame at `pos` whose length/type word is `lt`, if it
    /// is valid: a message no longer than `max_message`, a padding length
    /// that is a whole number of frames, a frame that ends before the end
    /// of the data region. The word comes from shared memory: nothing
    /// derived from it is used before this check.
    #[inline(always)]
    pub fn frame_len(&self, pos: u64, lt: LenType) -> Option<u64> {
        let len = lt.length();
        let room = self.room_to_end(pos);
        let size = if lt.is_padding() {
            len as u64
        } else {
            if len > self.max_message {
                return None;
            }
            frame_size(len as u64)
        };
        (size >= FRAME_HEADER as u64 && size % FRAME_HEADER as u64 == 0 && size <= room).then_some(size)
    }

    /// Bytes from `pos` to the end of the data region.
    pub fn room_to_end(&self, pos: u64) -> u64 {
        self.capacity - (pos & (self.capacity - 1))
    }

    /// Checks a header read from a file of `real_len` bytes. `read_u32` and
    /// `read_u64` read header fields at the given offsets (the caller has
    /// already checked that the file holds at least one line).
    pub fn validate(
        real_len: u64,
        read_u32: impl Fn(usize) -> u32,
        read_u64: impl Fn(usize) -> u64,
    ) -> Result<Layout, OpenError> {
        let corrupt = |reason: String| OpenError::Corrupt { reason };
        if read_u64(hdr::MAGIC) != MAGIC {
            return Err(corrupt("bad magic: not a shmq topic file".into()));
        }
        let version = read_u32(hdr::VERSION);
        if version != VERSION {
            return Err(OpenError::VersionMismatch { found: version, supported: VERSION });
        }
        let capacity = read_u64(hdr::CAPACITY);
        let max_message = read_u32(hdr::MAX_MESSAGE);
        let max_subscribers = read_u32(hdr::MAX_SUBSCRIBERS);
        let policy = Policy::from_raw(read_u32(hdr::POLICY))
            .ok_or_else(|| corrupt(format!("unknown policy {}", read_u32(hdr::POLICY))))?;
        let multi = match read_u32(hdr::MULTI_PRODUCER) {
            0 => false,
            1 => true,
            v => return Err(corrupt(format!("bad producer mode {v}"))),
        };
        let mut layout = Layout::new(capacity, max_message, max_subscribers, policy, multi, read_u64(hdr::STAMP_KEY))
            .map_err(|e| corrupt(format!("header geometry: {e}")))?;
        layout.asymmetric_fences = match read_u32(hdr::FENCES) {
            0 => false,
            1 => true,
            v => return Err(corrupt(format!("bad fence mode {v}"))),
        };
        layout.timestamps = match read_u32(hdr::TIMESTAMPS) {
            0 => false,
            1 => true,
            v => return Err(corrupt(format!("bad timestamps flag {v}"))),
        };
        layout.liveness_ms = match read_u32(hdr::LIVENESS_MS) {
            v @ 1..=MAX_LIVENESS_MS => v,
            v => return Err(corrupt(format!("liveness timeout {v} ms outside 1..={MAX_LIVENESS_MS}"))),
        };
        layout.durable_expiry_ms = read_u32(hdr::DURABLE_EXPIRY_MS);
        let flags = read_u32(hdr::FLAGS);
        if flags & !topic_flags::ALL != 0 {
            return Err(corrupt(format!("unknown topic flags {flags:#x}")));
        }
        layout.close_on_exit = flags & topic_flags::CLOSE_ON_EXIT != 0;
        layout.dead_letters = flags & topic_flags::DEAD_LETTERS != 0;
        let data_offset = read_u64(hdr::DATA_OFFSET);
        if data_offset != layout.data_offset as u64 {
            return Err(corrupt(format!(
                "data offset {data_offset} does not match {} subscriber slots (expected {})",
                max_subscribers, layout.data_offset
            )));
        }
        let header_len = read_u64(hdr::FILE_LEN);
        if header_len != layout.file_len() || real_len != layout.file_len() {
            return Err(corrupt(format!(
                "file is {real_len} bytes, header says {header_len}, geometry needs {}",
                layout.file_len()
            )));
        }
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_are_aligned() {
        assert_eq!(frame_size(0), 32);
        assert_eq!(frame_size(1), 64);
        assert_eq!(frame_size(32), 64);
        assert_eq!(frame_size(33), 96);
    }

    #[test]
    fn layout_rejects_bad_geometry() {
        assert!(Layout::new(1000, 10, 4, Policy::Block, false, 0).is_err());
        assert!(Layout::new(1024, 1024, 4, Policy::Block, false, 0).is_err());
        assert!(Layout::new(1024, 480, 4, Policy::Block, false, 0).is_ok());
        assert!(Layout::new(1024, 481, 4, Policy::Block, false, 0).is_err());
        assert!(Layout::new(1024, 10, 0, Policy::Block, false, 0).is_err());
        assert!(Layout::new(1024, 10, 4, Policy::Overwrite, true, 0).is_err());
    }

    #[test]
    fn data_offset_is_page_aligned_and_after_slots() {
        for n in [1, 4, 64, 4096] {
            let off = Layout::data_offset_for(n);
            assert_eq!(off % 4096, 0);
            assert!(off >= HEADER_LINES * LINE + n as usize * SLOT_SIZE);
        }
    }
}
