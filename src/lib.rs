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
//! Modules, from the bottom up: [`layout`] (the file format), [`mem`] (the
//! seam where atomics and bytes live), [`ring`] (the protocol, model-checked
//! by `loom-tests/`), `segment` (files and mappings), then the API:
//! [`Topic`], [`Producer`], [`Subscriber`].
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod error;
mod info;
pub mod layout;
#[cfg(feature = "loom")]
pub mod loom_mem;
pub mod mem;
mod name;
mod producer;
pub mod ring;
mod segment;
mod subscriber;
pub mod sys;
mod tail;
mod topic;

pub use error::{OpenError, ProducerError, PublishError, RecvError, SubscribeError};
pub use info::{SlotKind, SubscriberInfo, TopicInfo};
pub use layout::Policy;
pub use name::{validate_name, MAX_NAME_LEN};
pub use producer::{Grant, Producer};
pub use ring::Start;
pub use subscriber::{Message, MessageRef, RawMessage, Subscriber};
pub use tail::{Tail, TailEvent, TailMessage};
pub use topic::{
    default_dir, Options, Topic, DEFAULT_CAPACITY, DEFAULT_DIR, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_SUBSCRIBERS,
    DEFAULT_MODE,
};
