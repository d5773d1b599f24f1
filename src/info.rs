//! Read-only snapshots of a topic's counters and subscriber table, for
//! inspection tools (the CLI) and monitoring. Reading a snapshot takes no
//! part in the protocol and writes nothing.

use std::sync::atomic::Ordering::Relaxed;

use crate::layout::{ctr, hdr, prod, slot, Policy, SlotName};
use crate::mem::Memory;
use crate::ring::Ring;
use crate::segment::Segment;

/// What a subscriber slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "snake_case"))]
pub enum SlotKind {
    /// A plain subscriber.
    Subscriber,
    /// A durable subscriber (named; outlives its process).
    Durable,
    /// A consumer group's record: its name and shared position (`cursor`);
    /// owned by no process (`pid` 0).
    Group,
    /// A member of a consumer group (`name` is the group's); its cursor
    /// is the message it holds, or 2^62 when it holds none.
    Member,
}

impl std::fmt::Display for SlotKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SlotKind::Subscriber => "subscriber",
            SlotKind::Durable => "durable",
            SlotKind::Group => "group",
            SlotKind::Member => "member",
        })
    }
}

/// One subscriber slot in use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SubscriberInfo {
    /// Slot index.
    pub slot: usize,
    /// A durable subscriber ([`crate::Topic::subscribe_durable`]): when not
    /// `alive`, it is detached and its cursor still holds `Block` producers.
    pub durable: bool,
    /// What the slot holds.
    pub kind: SlotKind,
    /// Name given at subscribe (may be empty).
    pub name: String,
    /// Owner process id, for display (in the owner's pid namespace).
    pub pid: u32,
    /// Whether the owner is alive: the kernel still holds its attachment's
    /// lock (right across pid namespaces, `exec` and forks).
    pub alive: bool,
    /// Cursor: position of the next frame it reads.
    pub cursor: u64,
    /// Bytes published that it has not read yet.
    pub lag_bytes: u64,
    /// Messages published that it has not read yet (exact on
    /// single-producer topics).
    pub lag_messages: u64,
    /// Messages it received.
    pub received: u64,
    /// Messages it lost to overwriting.
    pub lost: u64,
    /// A consumer group's record: messages moved to its dead-letter topic
    /// (poison or rejected); 0 for other slots.
    pub dead_lettered: u64,
    /// A consumer group's record: deliveries after which a message is
    /// dead-lettered (0: never); 0 for other slots.
    pub max_deliveries: u32,
}

/// A snapshot of a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Ring capacity in bytes.
    pub capacity: u64,
    /// Largest message.
    pub max_message: u32,
    /// Subscriber slots.
    pub max_subscribers: u32,
    /// Loss policy.
    pub policy: Policy,
    /// Several producers allowed.
    pub multi_producer: bool,
    /// Messages carry publish timestamps.
    pub timestamps: bool,
    /// The stream counts as closed once its last producer is gone
    /// ([`crate::Options::close_on_exit`]).
    pub close_on_exit: bool,
    /// A dead-letter topic: each message starts with a
    /// [`crate::DeadLetter`] envelope.
    pub dead_letters: bool,
    /// The stream is closed now (by a close at its end, or its last
    /// producer gone on a `close_on_exit` topic): subscribers that have read
    /// everything get [`crate::RecvError::Closed`].
    pub closed: bool,
    /// Creation time, ns since the Unix epoch.
    pub created_unix_ns: u64,
    /// Pid of the creator.
    pub creator_pid: u32,
    /// Pid of the attached producer (single-producer topics), if any: a
    /// pid in the producer's own pid namespace, for display.
    pub producer_pid: Option<u32>,
    /// Whether that producer is alive (its attachment's lock is held).
    pub producer_alive: bool,
    /// Messages published.
    pub published_messages: u64,
    /// Payload bytes published.
    pub published_bytes: u64,
    /// Claim position (bytes ever claimed, payload + headers + padding).
    #[cfg_attr(feature = "serde", serde(rename = "tail_position"))]
    pub tail: u64,
    /// Times a producer found the ring full.
    pub producer_waits: u64,
    /// Dead subscribers reaped.
    #[cfg_attr(feature = "serde", serde(rename = "reaped_subscribers"))]
    pub reaped: u64,
    /// Stuck frames repaired.
    #[cfg_attr(feature = "serde", serde(rename = "repaired_frames"))]
    pub repaired: u64,
    /// Subscribers holding a slot.
    pub subscribers: Vec<SubscriberInfo>,
}

impl TopicInfo {
    pub(crate) fn read(ring: &Ring<Segment>, name: &str) -> TopicInfo {
        let m = &ring.mem;
        let l = &ring.layout;
        // Relaxed everywhere: a snapshot for display, each word read atomically.
        let tail = m.load64(prod::TAIL, Relaxed);
        let (published_messages, published_bytes) = if l.multi_producer {
            (m.load64(ctr::MP_SEQ, Relaxed), m.load64(ctr::MP_BYTES, Relaxed))
        } else {
            (m.load64(prod::NEXT_SEQ, Relaxed), m.load64(prod::BYTES, Relaxed))
        };
        let owner = m.load64(prod::OWNER, Relaxed);
        let mut subscribers = Vec::new();
        for i in 0..l.max_subscribers as usize {
            let s = l.slot(i);
            if m.load32(s + slot::STATE, Relaxed) != slot::state::ACTIVE {
                continue;
            }
            let owner = m.load64(s + slot::OWNER, Relaxed);
            let pid = m.load64(s + slot::PID, Relaxed) as u32;
            let cursor = m.load64(s + slot::CURSOR, Relaxed);
            let name = SlotName::from_words(std::array::from_fn(|k| m.load64(s + slot::NAME + 8 * k, Relaxed)));
            let next_seq = m.load64(s + slot::NEXT_SEQ, Relaxed);
            let is_group = m.load32(s + slot::FLAGS, Relaxed) & slot::flags::GROUP != 0;
            subscribers.push(SubscriberInfo {
                slot: i,
                durable: m.load32(s + slot::FLAGS, Relaxed) & slot::flags::DURABLE != 0,
                kind: match m.load32(s + slot::FLAGS, Relaxed) {
                    f if f & slot::flags::GROUP != 0 => SlotKind::Group,
                    f if f & slot::flags::MEMBER != 0 => SlotKind::Member,
                    f if f & slot::flags::DURABLE != 0 => SlotKind::Durable,
                    _ => SlotKind::Subscriber,
                },
                name: String::from_utf8_lossy(name.as_bytes()).into_owned(),
                pid,
                alive: m.alive(owner),
                cursor,
                lag_bytes: tail.saturating_sub(cursor),
                lag_messages: if tail > cursor { published_messages.saturating_sub(next_seq) } else { 0 },
                received: m.load64(s + slot::RECEIVED, Relaxed),
                lost: m.load64(s + slot::LOST, Relaxed),
                dead_lettered: if is_group { m.load64(s + slot::DEAD_LETTERED, Relaxed) } else { 0 },
                max_deliveries: if is_group { m.load32(s + slot::MAX_DELIVERIES, Relaxed) } else { 0 },
            });
        }
        TopicInfo {
            name: name.to_string(),
            capacity: l.capacity,
            max_message: l.max_message,
            max_subscribers: l.max_subscribers,
            policy: l.policy,
            multi_producer: l.multi_producer,
            timestamps: l.timestamps,
            close_on_exit: l.close_on_exit,
            dead_letters: l.dead_letters,
            closed: ring.is_closed(),
            created_unix_ns: m.load64(hdr::CREATED_UNIX_NS, Relaxed),
            creator_pid: m.load32(hdr::CREATOR_PID, Relaxed),
            producer_pid: (owner != 0).then(|| m.load64(prod::OWNER_PID, Relaxed) as u32),
            producer_alive: m.alive(owner),
            published_messages,
            published_bytes,
            tail,
            producer_waits: m.load64(ctr::PRODUCER_WAITS, Relaxed),
            reaped: m.load64(ctr::REAPED, Relaxed),
            repaired: m.load64(ctr::REPAIRED, Relaxed),
            subscribers,
        }
    }
}
