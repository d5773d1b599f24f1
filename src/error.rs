//! Typed errors, one enum per operation: what went wrong and what to do.

use std::fmt;
use std::io;

/// Why a topic could not be created, opened or removed.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The topic name is not allowed (see [`crate::validate_name`]).
    InvalidName {
        /// The rejected name (lossy UTF-8).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The options make no valid topic (e.g. capacity not a power of two).
    InvalidOptions(String),
    /// No topic of that name exists in the directory.
    NotFound {
        /// Path that was looked up.
        path: std::path::PathBuf,
    },
    /// `create` found a topic of that name already.
    AlreadyExists {
        /// Path of the existing topic.
        path: std::path::PathBuf,
    },
    /// The topic exists but its settings differ from the ones required.
    Incompatible {
        /// Which setting differs (`capacity`, `policy`, …).
        field: &'static str,
        /// What the caller asked for.
        expected: String,
        /// What the topic has.
        found: String,
    },
    /// The file is not a valid topic (bad magic, sizes that do not match
    /// the file, …).
    Corrupt {
        /// What failed to validate.
        reason: String,
    },
    /// The file was written by a newer or older layout version.
    VersionMismatch {
        /// Version in the file.
        found: u32,
        /// Version this library reads.
        supported: u32,
    },
    /// The creator has not finished initialising the file within the wait
    /// bound (it may have died mid-creation: `shmq gc` removes such files).
    NotReady,
    /// The topic's space could not be reserved (the directory's file
    /// system is full: for /dev/shm, see the FAQ on Docker's 64 MB default).
    NoSpace {
        /// Bytes the topic needs.
        needed: u64,
    },
    /// Permission denied, or a symlink or a file owned by another user was
    /// found where the topic should be.
    PermissionDenied(String),
    /// Something other than a regular file (a FIFO, a directory, a device)
    /// has the topic's name; nothing was opened or read through it.
    NotATopic {
        /// The path.
        path: std::path::PathBuf,
        /// What it is ("a FIFO", ...).
        what: &'static str,
    },
    /// The topic directory could be changed under its users by someone
    /// else: it belongs to another (non-root) user, or others may write to
    /// it without the sticky bit (the rule ssh applies to its files).
    UnsafeDirectory {
        /// The directory.
        path: std::path::PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// The directory's file system does not support open-file-description
    /// locks (`F_OFD_SETLK`; some network file systems), on which shmq's
    /// liveness rests: topics there are refused.
    LocksUnsupported {
        /// The topic file.
        path: std::path::PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// Any other I/O error, with the operation that failed.
    Io {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::InvalidName { name, reason } => {
                write!(f, "invalid topic name {name:?}: {reason}")
            }
            OpenError::InvalidOptions(r) => write!(f, "invalid topic options: {r}"),
            OpenError::NotFound { path } => {
                write!(f, "topic not found: {} (create it first)", path.display())
            }
            OpenError::AlreadyExists { path } => {
                write!(f, "topic already exists: {} (open it, or remove it first)", path.display())
            }
            OpenError::Incompatible { field, expected, found } => {
                write!(f, "topic {field} is {found}, but {expected} was required")
            }
            OpenError::Corrupt { reason } => write!(f, "not a valid topic file: {reason}"),
            OpenError::VersionMismatch { found, supported } => write!(
                f,
                "topic layout version {found}, this library reads version {supported}: open it with the shmq \
                 version that made it, or remove it (shmq rm) and create it again with this one \
                 (layout 2 judges liveness by kernel locks, layout 3 adds the end of stream; processes of different layouts cannot share a topic)"
            ),
            OpenError::NotReady => {
                write!(f, "topic is still being created (or its creator died: run `shmq gc`)")
            }
            OpenError::NoSpace { needed } => write!(
                f,
                "no space for a {needed}-byte topic (the directory's file system is full; \
                 for /dev/shm in Docker, raise --shm-size)"
            ),
            OpenError::PermissionDenied(r) => write!(f, "permission denied: {r}"),
            OpenError::NotATopic { path, what } => {
                write!(f, "{} is {what}, not a topic file; remove it or pick another name", path.display())
            }
            OpenError::UnsafeDirectory { path, reason } => {
                write!(f, "unsafe topic directory {}: {reason}", path.display())
            }
            OpenError::LocksUnsupported { path, source } => write!(
                f,
                "{}: its file system does not support open file description locks ({source}), which shmq \
                 needs to tell live processes from dead ones; put topics on a local file system such as /dev/shm",
                path.display()
            ),
            OpenError::Io { op, source } => write!(f, "{op}: {source}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io { source, .. } | OpenError::LocksUnsupported { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a producer could not be attached.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProducerError {
    /// A single-producer topic already has a live producer.
    Busy {
        /// Pid of the producer that holds the topic.
        pid: u32,
    },
    /// The handle was opened read-only.
    ReadOnly,
    /// The kernel gave no lock to attach with (out of file descriptors).
    Attach(String),
}

impl fmt::Display for ProducerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProducerError::Busy { pid } => write!(
                f,
                "topic has a single producer and process {pid} holds it \
                 (create the topic with multi_producer for several)"
            ),
            ProducerError::ReadOnly => write!(f, "topic was opened read-only"),
            ProducerError::Attach(why) => write!(f, "cannot attach a producer: {why}"),
        }
    }
}
impl std::error::Error for ProducerError {}

/// Why a message could not be published.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// The message is larger than the topic's max message size.
    TooLarge {
        /// Length of the message.
        len: usize,
        /// The topic's limit.
        max: usize,
    },
    /// `Block` topic: the slowest subscriber has not released enough room
    /// (`try_publish`, or `publish_timeout` after its timeout).
    Full,
    /// Multi-producer topic: this producer stalled, between claiming room
    /// and marking or committing it, for longer than the topic's liveness
    /// timeout while its process looked dead to a subscriber, which skipped
    /// the room (counted as repaired). Nothing was published; publish again.
    Lost,
    /// A commit of more bytes than were reserved; nothing was published
    /// (a `Grant` is given back; a raw reservation stays outstanding).
    CommitTooLarge {
        /// Bytes the commit asked for.
        len: usize,
        /// Bytes reserved.
        reserved: usize,
    },
    /// A user message type at or above 2^31 (the top bit marks padding
    /// frames); nothing was published.
    InvalidType(u32),
    /// The message was published, but the automatic flush it triggered
    /// ([`crate::Producer::flush_every`]) failed.
    Flush(String),
    /// [`crate::Producer::reserve_value`] of a type aligned to more than
    /// [`crate::MAX_VALUE_ALIGN`] bytes (payloads are 32-byte aligned).
    Unaligned {
        /// The type's alignment.
        align: usize,
    },
    /// A claim lent by [`crate::Producer::reserve_raw`] is outstanding:
    /// this producer publishes nothing else until it is committed
    /// ([`crate::Producer::commit_raw`]) or abandoned
    /// ([`crate::Producer::abort_raw`]), since subscribers read frames in
    /// position order and crash repair follows the producer's last claim.
    Reserved,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the topic's max message size {max}")
            }
            PublishError::Full => {
                write!(f, "ring full: the slowest subscriber has not released room")
            }
            PublishError::Flush(e) => write!(f, "published, but flushing the topic file failed: {e}"),
            PublishError::Unaligned { align } => write!(
                f,
                "a value aligned to {align} bytes cannot be built in place (payloads are aligned to {} bytes)",
                crate::MAX_VALUE_ALIGN
            ),
            PublishError::Reserved => write!(
                f,
                "a reservation from reserve_raw is outstanding: commit_raw or abort_raw it before publishing again"
            ),
            PublishError::Lost => {
                write!(f, "claim lost: a subscriber skipped it after the liveness timeout; nothing was published")
            }
            PublishError::CommitTooLarge { len, reserved } => write!(
                f,
                "commit of {len} bytes exceeds the {reserved} bytes reserved; nothing was published \
                 (reserve at least as much as you write)"
            ),
            PublishError::InvalidType(t) => {
                write!(f, "message type {t:#x} is not below 2^31 (the top bit is reserved); nothing was published")
            }
        }
    }
}
impl std::error::Error for PublishError {}

/// Why [`crate::Producer::publish_batch`] (or `try_publish_batch`)
/// stopped before the end of its batch: the leading `published` messages
/// were published, in order; the next one met `error` and it and the rest
/// were not (except for [`PublishError::Flush`], which a message that was
/// published reports: then `published` counts it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    /// Messages of the batch published (the leading ones).
    pub published: usize,
    /// What the next message met.
    pub error: PublishError,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch stopped after {} message(s): {}", self.published, self.error)
    }
}
impl std::error::Error for BatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Why a subscriber could not be attached.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeError {
    /// Every subscriber slot is held by a live subscriber.
    NoFreeSlot {
        /// Number of slots in the topic.
        max: u32,
    },
    /// The handle was opened read-only.
    ReadOnly,
    /// The kernel gave no lock to attach with (out of file descriptors).
    Attach(String),
    /// A live process already holds this durable subscriber.
    NameTaken {
        /// The durable name.
        name: String,
        /// Its holder's pid (0 if it was just being taken).
        pid: u32,
    },
    /// This durable subscriber held a blocked producer for longer than the
    /// topic's durable expiry and was dropped: the messages after its last
    /// release may be gone. Its name is free now; subscribing again starts
    /// afresh from the newest message.
    Expired {
        /// The durable name.
        name: String,
    },
    /// A durable or group name must be 1 to 32 bytes of `A-Z a-z 0-9 . _ -`.
    InvalidName(String),
    /// Consumer groups need a `Block` topic: on an `Overwrite` topic the
    /// producer would overwrite messages a member holds.
    GroupNeedsBlock,
    /// The consumer group still has this many live members.
    GroupInUse {
        /// Live members.
        members: usize,
    },
    /// [`crate::Start::Time`] on a topic whose messages carry no publish
    /// time ([`crate::Options::timestamps`]).
    NoTimestamps,
    /// The consumer group exists with another `max_deliveries`.
    GroupSettings {
        /// The group's name.
        group: String,
        /// The group's value (0: no limit).
        max_deliveries: u32,
    },
    /// The dead-letter topic cannot take this group's poison messages (it
    /// could not be opened or created, is not multi-producer, or its
    /// messages are too small), or the group moves poison messages and no
    /// dead-letter topic was given.
    DeadLetter(String),
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeError::NoFreeSlot { max } => {
                write!(f, "all {max} subscriber slots are in use (recreate the topic with more max_subscribers)")
            }
            SubscribeError::ReadOnly => write!(f, "topic was opened read-only"),
            SubscribeError::Attach(why) => write!(f, "cannot attach a subscriber: {why}"),
            SubscribeError::NameTaken { name, pid } => {
                write!(f, "durable subscriber {name:?} is held by live process {pid}")
            }
            SubscribeError::Expired { name } => write!(
                f,
                "durable subscriber {name:?} expired (it held the producer past the topic's durable expiry); \
                 subscribe again to start from the newest message"
            ),
            SubscribeError::InvalidName(why) => write!(f, "invalid durable subscriber or group name: {why}"),
            SubscribeError::GroupNeedsBlock => write!(f, "consumer groups need a Block topic"),
            SubscribeError::GroupInUse { members } => {
                write!(f, "the consumer group still has {members} live member(s)")
            }
            SubscribeError::NoTimestamps => write!(
                f,
                "this topic's messages carry no publish time, so it cannot be replayed by time \
                 (create it with timestamps: Options::timestamps(true), shmq create --timestamps, \
                 SHMQ_FLAG_TIMESTAMPS)"
            ),
            SubscribeError::GroupSettings { group, max_deliveries } => write!(
                f,
                "consumer group {group:?} moves a message to its dead-letter topic after {max_deliveries} deliveries \
                 (0: never); join it with the same setting"
            ),
            SubscribeError::DeadLetter(why) => write!(f, "dead-letter topic: {why}"),
        }
    }
}
impl std::error::Error for SubscribeError {}

/// Why nothing was received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// `try_recv`: no message is waiting.
    Empty,
    /// `recv_timeout`: the timeout passed with no message.
    Timeout,
    /// `Overwrite` topic: the producer lapped this subscriber, which lost
    /// this many messages; the next receive returns the oldest message the
    /// ring still holds.
    Lagged(u64),
    /// The ring holds a value no correct producer writes (another process
    /// corrupted the shared memory). The subscriber cannot go on.
    Corrupt(String),
    /// This subscriber's slot was reclaimed (reaped as dead or by `shmq
    /// repair`); subscribe again.
    Evicted,
    /// The stream is closed ([`crate::Producer::close`], `shmq close`, or
    /// its last producer gone on a `close_on_exit` topic) and this
    /// subscriber has received every message published before the close.
    /// Every receive says so until a producer publishes again (which
    /// reopens the stream: receives then go on with its messages).
    Closed,
    /// [`crate::Subscriber::recv_ahead_raw`] on a subscriber that cannot
    /// read ahead: a consumer-group member (it holds one message at a
    /// time) or a subscriber of an `Overwrite` topic (it receives copies
    /// into one buffer).
    NoReadAhead,
    /// The system refused something the call needed:
    /// `Subscriber::arm` (feature `async`) found no file descriptor for its
    /// eventfd (the process's open-file limit). Nothing was received and
    /// the subscriber is unchanged; close descriptors, or raise the limit,
    /// and call again.
    Resource(String),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => write!(f, "no message waiting"),
            RecvError::Timeout => write!(f, "timed out waiting for a message"),
            RecvError::Lagged(n) => write!(f, "subscriber lagged: {n} messages were overwritten before it read them"),
            RecvError::Corrupt(r) => write!(f, "corrupt ring: {r}"),
            RecvError::Evicted => write!(f, "subscriber slot was reclaimed; subscribe again"),
            RecvError::Closed => {
                write!(f, "the stream is closed: every message published before the close was received")
            }
            RecvError::NoReadAhead => write!(
                f,
                "reading ahead needs a plain or durable subscriber of a Block topic \
                 (a group member holds one message at a time; Overwrite receives copies)"
            ),
            RecvError::Resource(r) => write!(f, "out of a system resource: {r}"),
        }
    }
}
impl std::error::Error for RecvError {}

/// Why a payload cannot be read as a typed value
/// ([`crate::Message::value`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// The payload's length is not the type's size.
    Size {
        /// The type's size.
        expected: usize,
        /// The payload's length.
        found: usize,
    },
    /// The payload is not aligned for the type (read it with `read_value`,
    /// which copies, or align the type to at most 32 bytes).
    Misaligned {
        /// The type's alignment.
        align: usize,
        /// The payload's address.
        addr: usize,
    },
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Size { expected, found } => {
                write!(f, "payload of {found} bytes is not a value of the requested type ({expected} bytes)")
            }
            ValueError::Misaligned { align, addr } => {
                write!(f, "payload at {addr:#x} is not aligned to {align} bytes for the requested type")
            }
        }
    }
}

impl std::error::Error for ValueError {}

/// Why [`crate::Message::reject`] could not send a message to a
/// dead-letter topic (it was put back: the next receive returns it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectError {
    /// The subscriber is not a consumer group member with a dead-letter
    /// topic.
    NoDeadLetterTopic,
}

impl fmt::Display for RejectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no dead-letter topic: subscribe to a consumer group with GroupOptions::dead_letter_topic to reject")
    }
}

impl std::error::Error for RejectError {}
