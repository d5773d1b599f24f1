//! Options: the settings of a topic, for creating it, and the settings an
//! opener requires of it; the defaults; where topics live.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::OpenError;
use crate::layout::{Layout, Policy};
use crate::segment;

/// Directory used when neither [`Options::dir`] nor `SHMQ_DIR` says otherwise.
pub const DEFAULT_DIR: &str = "/dev/shm/shmq";

/// The topic directory: `SHMQ_DIR` if set and not empty, else [`DEFAULT_DIR`].
pub fn default_dir() -> PathBuf {
    match std::env::var_os("SHMQ_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(DEFAULT_DIR),
    }
}

/// Settings of a topic, for creating it, and the settings an opener
/// requires of it.
///
/// Every setting is optional: `create` fills in the defaults (1 MiB ring,
/// 64 KiB max message, 64 subscribers, `Block`, single producer, mode
/// 0600); `open` checks only the settings that were set and reports the
/// first that differs as [`OpenError::Incompatible`].
///
/// # Examples
/// ```
/// use shmq::{Options, Policy};
/// let opts = Options::new()
///     .capacity(1 << 20)
///     .max_message(4096)
///     .policy(Policy::Overwrite);
/// assert_eq!(opts.capacity_value(), 1 << 20);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub(crate) capacity: Option<u64>,
    pub(crate) max_message: Option<u32>,
    pub(crate) max_subscribers: Option<u32>,
    pub(crate) policy: Option<Policy>,
    pub(crate) multi_producer: Option<bool>,
    pub(crate) mode: Option<u32>,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) ready_timeout: Option<Duration>,
    pub(crate) allow_foreign_owner: bool,
    pub(crate) timestamps: Option<bool>,
    pub(crate) liveness: Option<Duration>,
    pub(crate) durable_expiry: Option<Duration>,
    pub(crate) close_on_exit: Option<bool>,
    pub(crate) dead_letters: bool,
}

/// Default ring capacity (1 MiB).
pub const DEFAULT_CAPACITY: u64 = 1 << 20;
/// Default largest message (64 KiB, or what the ring allows).
pub const DEFAULT_MAX_MESSAGE: u32 = 64 << 10;
/// Default number of subscriber slots.
pub const DEFAULT_MAX_SUBSCRIBERS: u32 = 64;
/// Default file mode (owner read/write only).
pub const DEFAULT_MODE: u32 = 0o600;

impl Options {
    /// All settings unset.
    pub fn new() -> Self {
        Self::default()
    }
    /// Ring capacity in bytes; rounded up to a power of two (at least 256).
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity = Some(bytes);
        self
    }
    /// Largest message in bytes; at most half the capacity minus 32.
    pub fn max_message(mut self, bytes: u32) -> Self {
        self.max_message = Some(bytes);
        self
    }
    /// Number of subscriber slots (1..=4096).
    pub fn max_subscribers(mut self, n: u32) -> Self {
        self.max_subscribers = Some(n);
        self
    }
    /// Loss policy.
    pub fn policy(mut self, p: Policy) -> Self {
        self.policy = Some(p);
        self
    }
    /// Several producers at once (`Block` topics only).
    pub fn multi_producer(mut self, yes: bool) -> Self {
        self.multi_producer = Some(yes);
        self
    }
    /// Whether producers stamp every message with its publish time
    /// (`CLOCK_MONOTONIC`, [`crate::Message::timestamp_ns`]); default
    /// false. The clock read is the largest single cost of a publish (25 ns
    /// on the VMs we measure on, against about 15 ns for the rest of it), so
    /// topics pay for it only when asked. Without it timestamps read 0, and
    /// the topic cannot be replayed by time ([`crate::Start::Time`] gives
    /// [`crate::SubscribeError::NoTimestamps`]).
    pub fn timestamps(mut self, yes: bool) -> Self {
        self.timestamps = Some(yes);
        self
    }
    /// How long a frame may stay claimed by a producer process that died
    /// between claiming and committing it (multi-producer topics) before a
    /// waiting subscriber turns it into padding and goes on (default 1 s,
    /// at most one hour). A *live* producer is never skipped while its
    /// process exists. Stored in the topic; `open` does not check it.
    pub fn liveness_timeout(mut self, t: Duration) -> Self {
        self.liveness = Some(t);
        self
    }
    /// `Block` topics: how long a durable subscriber whose process is gone
    /// may hold a blocked producer before it is dropped (and told so, with
    /// [`crate::SubscribeError::Expired`], when it returns). Default: never; the
    /// producer then waits for it, which is the point of a durable
    /// subscriber. Stored in the topic; `open` does not check it.
    pub fn durable_expiry(mut self, t: Duration) -> Self {
        self.durable_expiry = Some(t);
        self
    }
    /// Whether the stream counts as closed once its last producer is gone
    /// (default false): subscribers then receive every message published,
    /// then [`crate::RecvError::Closed`], whether the producer process
    /// closed, exited or was killed (SIGKILL included: a producer holds a
    /// kernel lock, which dies with it). A topic that never had a producer
    /// is not closed; a producer that attaches later reopens it. Without
    /// it, only [`crate::Producer::close`] (or `shmq close`) closes the
    /// stream. Stored in the topic; `open` checks it when given.
    pub fn close_on_exit(mut self, yes: bool) -> Self {
        self.close_on_exit = Some(yes);
        self
    }
    /// File mode of a created topic, e.g. `0o660` to share with the group.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }
    /// Topic directory (default: `SHMQ_DIR`, else `/dev/shm/shmq`). A
    /// directory on a disk gives a file-backed topic.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
    /// How long `open` waits for a topic still being initialised (default 1 s).
    pub fn ready_timeout(mut self, t: Duration) -> Self {
        self.ready_timeout = Some(t);
        self
    }
    /// Accept topic files owned by another user (refused by default).
    pub fn allow_foreign_owner(mut self, yes: bool) -> Self {
        self.allow_foreign_owner = yes;
        self
    }

    /// The capacity `create` would use (rounded up to a power of two).
    pub fn capacity_value(&self) -> u64 {
        self.capacity.unwrap_or(DEFAULT_CAPACITY).max(crate::layout::MIN_CAPACITY).next_power_of_two()
    }

    /// The directory these options point at.
    pub fn dir_value(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(default_dir)
    }

    /// The directory, refusing an empty path (which would silently mean
    /// the current directory).
    pub(crate) fn dir_checked(&self) -> Result<PathBuf, OpenError> {
        match &self.dir {
            Some(d) if d.as_os_str().is_empty() => Err(OpenError::InvalidOptions(
                "the topic directory is an empty path (write \".\" for the current directory)".into(),
            )),
            _ => Ok(self.dir_value()),
        }
    }

    pub(crate) fn layout(&self) -> Result<Layout, OpenError> {
        if let Some(mode) = self.mode {
            if mode & !0o777 != 0 {
                return Err(OpenError::InvalidOptions(format!(
                    "mode {mode:04o}: only the permission bits 0..=0777 are allowed (no setuid, setgid or sticky bit)"
                )));
            }
        }
        if self.max_message == Some(0) {
            return Err(OpenError::InvalidOptions(
                "max message 0 would make a topic that carries only empty messages: give at least 1 byte".into(),
            ));
        }
        self.dir_checked()?;
        let raw_cap = self.capacity.unwrap_or(DEFAULT_CAPACITY);
        if raw_cap > crate::layout::MAX_CAPACITY {
            return Err(OpenError::InvalidOptions(format!("capacity {raw_cap} exceeds 1 TiB")));
        }
        let capacity = self.capacity_value();
        let max_message =
            self.max_message.unwrap_or_else(|| DEFAULT_MAX_MESSAGE.min(Layout::max_message_for(capacity) as u32));
        let mut layout = Layout::new(
            capacity,
            max_message,
            self.max_subscribers.unwrap_or(DEFAULT_MAX_SUBSCRIBERS),
            self.policy.unwrap_or(Policy::Block),
            self.multi_producer.unwrap_or(false),
            segment::new_stamp_key(),
        )
        .map_err(OpenError::InvalidOptions)?;
        // Hot paths use asymmetric fences when this process can take part
        // in membarrier; every process of the topic must then too.
        layout.asymmetric_fences = crate::sys::membarrier_ready();
        layout.timestamps = self.timestamps.unwrap_or(false);
        layout.close_on_exit = self.close_on_exit.unwrap_or(false);
        layout.dead_letters = self.dead_letters;
        if let Some(t) = self.liveness {
            let ms = t.as_millis();
            if ms == 0 || ms > crate::layout::MAX_LIVENESS_MS as u128 {
                return Err(OpenError::InvalidOptions(format!(
                    "liveness timeout {t:?} must be between 1 ms and one hour"
                )));
            }
            layout.liveness_ms = ms as u32;
        }
        if let Some(t) = self.durable_expiry {
            let ms = t.as_millis().clamp(1, u32::MAX as u128);
            layout.durable_expiry_ms = ms as u32;
        }
        Ok(layout)
    }

    pub(crate) fn check(&self, l: &Layout) -> Result<(), OpenError> {
        let differ = |field, expected: String, found: String| Err(OpenError::Incompatible { field, expected, found });
        if self.capacity.is_some() && self.capacity_value() != l.capacity {
            return differ("capacity", self.capacity_value().to_string(), l.capacity.to_string());
        }
        if let Some(m) = self.max_message {
            if m != l.max_message {
                return differ("max_message", m.to_string(), l.max_message.to_string());
            }
        }
        if let Some(n) = self.max_subscribers {
            if n != l.max_subscribers {
                return differ("max_subscribers", n.to_string(), l.max_subscribers.to_string());
            }
        }
        if let Some(p) = self.policy {
            if p != l.policy {
                return differ("policy", p.to_string(), l.policy.to_string());
            }
        }
        if let Some(t) = self.timestamps {
            if t != l.timestamps {
                return differ("timestamps", t.to_string(), l.timestamps.to_string());
            }
        }
        if let Some(c) = self.close_on_exit {
            if c != l.close_on_exit {
                return differ("close_on_exit", c.to_string(), l.close_on_exit.to_string());
            }
        }
        if let Some(m) = self.multi_producer {
            if m != l.multi_producer {
                let s = |b: bool| if b { "multi-producer" } else { "single-producer" }.to_string();
                return differ("producer mode", s(m), s(l.multi_producer));
            }
        }
        Ok(())
    }
}
