//! # shmq — a lock-free shared-memory message queue for processes on one host
//!
//! A **topic** is a ring buffer in a file (by default under `/dev/shm/shmq`),
//! mapped by every process that uses it. A producer writes each message once;
//! every subscriber reads it in place through its own cursor. No broker, no
//! syscall and no allocation per message.
//!
//! ```
//! use shmq::{Options, Policy, Topic};
//! # let dir = std::env::temp_dir().join(format!("shmq-doc-lib-{}", std::process::id()));
//! let opts = Options::new().dir(&dir).capacity(1 << 20).policy(Policy::Block);
//! let topic = Topic::open_or_create("prices", &opts)?;
//!
//! let mut sub = topic.subscribe()?;        // usually in another process
//! let mut producer = topic.producer()?;
//! producer.publish(b"EURUSD 1.0842")?;
//!
//! let msg = sub.recv()?;                   // zero-copy: borrows the ring
//! assert_eq!(&*msg, b"EURUSD 1.0842");
//! # drop(msg); drop((sub, producer, topic)); std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The public API is [`Topic`] (and its [`Options`]), [`Producer`] and
//! [`Grant`], [`Subscriber`] and [`Message`], [`Tail`], the info types,
//! the errors, and [`layout`], the file format. Underneath, from the bottom
//! up: `mem` (the seam where atomics and bytes live), `ring` (the protocol,
//! one file per mechanism, model-checked by `loom-tests/`), `segment`
//! (files and mappings) and `sys` (the Linux calls).
//!
//! Those internals are crate-private. The loom crate and the CLI reach
//! them through [`__private`], which is `#[doc(hidden)]` and carries no
//! stability promise. That path was chosen over tokio's (loom scenarios
//! inside the crate under `cfg(loom)`) because the CLI's benchmark needs
//! the same internals (CPU pinning, raw futexes), and because a separate
//! loom crate keeps loom and its `--cfg` out of every normal build.
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]

mod dead_letter;
pub mod error;
mod info;
pub mod layout;
#[cfg(feature = "loom")]
mod loom_mem;
mod mem;
mod name;
mod options;
#[cfg(feature = "async")]
pub mod park;
mod producer;
mod ring;
mod segment;
mod start;
mod subscriber;
mod sys;
mod tail;
mod topic;
mod value;

/// The crate typed payloads are proven with (`#[derive(Pod, Zeroable)]` needs it as a dependency of your own, with its `derive` feature).
pub use bytemuck;
pub use dead_letter::{DeadLetter, GroupOptions, Reason as DeadLetterReason, ENVELOPE as DEAD_LETTER_ENVELOPE};
pub use error::{
    BatchError, OpenError, ProducerError, PublishError, RecvError, RejectError, SubscribeError, ValueError,
};
pub use info::{SlotKind, SubscriberInfo, TopicInfo};
pub use layout::Policy;
pub use name::{validate_name, MAX_NAME_LEN};
pub use options::{
    default_dir, Options, DEFAULT_CAPACITY, DEFAULT_DIR, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_SUBSCRIBERS, DEFAULT_MODE,
};
#[cfg(feature = "async")]
pub use park::{MessageStream, OwnedMessage};
pub use producer::{Grant, Producer};
pub use ring::Wait;
pub use start::Start;
pub use subscriber::{Ack, Message, MessageRef, RawMessage, Subscriber};
pub use tail::{Tail, TailEvent, TailMessage};
pub use topic::Topic;
pub use value::{ValueGrant, MAX_VALUE_ALIGN};

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock of
/// [`Message::timestamp_ns`] and [`Start::Time`].
///
/// # Examples
/// ```
/// let a = shmq::monotonic_ns();
/// assert!(shmq::monotonic_ns() >= a);
/// ```
pub fn monotonic_ns() -> u64 {
    sys::monotonic_ns()
}

/// Internals for the loom model-checking crate (`loom-tests/`) and the
/// `shmq` CLI's benchmark. Not part of the API: no stability promise, not
/// documented on docs.rs.
#[doc(hidden)]
pub mod __private {
    /// The ring protocol (`src/ring/`).
    pub mod ring {
        pub use crate::ring::*;
    }
    /// The memory seam.
    pub mod mem {
        pub use crate::mem::*;
    }
    /// The Linux calls.
    pub mod sys {
        pub use crate::sys::*;
    }
    /// The loom implementation of the memory seam.
    #[cfg(feature = "loom")]
    pub mod loom_mem {
        pub use crate::loom_mem::*;
    }
}
