//! The C ABI of shmq: `libshmq.so` / `libshmq.a` and `include/shmq.h`.
//!
//! Every function returns 0 or a negative errno value (see `shmq.h` for
//! each function's codes), never unwinds into C (each body runs under
//! `catch_unwind`; a panic becomes `-EFAULT`), and answers NULL or invalid
//! arguments with `-EINVAL`. Handles are opaque boxes: `*_open`/`*_create`
//! allocate them, the matching `*_close` frees them.
//!
//! The zero-copy paths (`shmq_reserve`/`shmq_commit`,
//! `shmq_recv`/`shmq_release`) map onto `Producer::reserve_raw` and
//! `Subscriber::recv_raw`, which keep the one outstanding claim or message
//! inside the handle, so a C program cannot commit a claim it does not hold.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![allow(non_camel_case_types, clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

mod producer;
mod subscriber;
mod topic;

pub use producer::*;
pub use subscriber::*;
pub use topic::*;

use shmq_rs::{OpenError, Options, Producer, PublishError, RecvError, Subscriber, Topic, Wait};

/// Opaque topic handle.
#[derive(Debug)]
pub struct shmq_topic(Topic);
/// Opaque producer handle.
#[derive(Debug)]
pub struct shmq_producer(Producer);
/// Opaque subscriber handle.
#[derive(Debug)]
pub struct shmq_subscriber(Subscriber);

/// `policy` value: lossless, producers wait for the slowest subscriber.
pub const SHMQ_POLICY_BLOCK: c_int = 0;
/// `policy` value: lossy, producers never wait.
pub const SHMQ_POLICY_OVERWRITE: c_int = 1;
/// `policy` / `multi_producer` value for `open`: accept whatever the topic has.
pub const SHMQ_ANY: c_int = -1;

/// Topic settings. Mirrors `shmq_options` in `shmq.h` (checked by a test).
#[repr(C)]
#[derive(Debug)]
pub struct shmq_options {
    /// `sizeof(shmq_options)`, set by `shmq_options_init`: lets the struct grow.
    pub size: u32,
    /// Largest message in bytes (0: default / any).
    pub max_message: u32,
    /// Ring capacity in bytes, rounded up to a power of two (0: default / any).
    pub capacity: u64,
    /// Subscriber slots (0: default / any).
    pub max_subscribers: u32,
    /// `SHMQ_POLICY_BLOCK`, `SHMQ_POLICY_OVERWRITE` or `SHMQ_ANY` (open only).
    pub policy: c_int,
    /// 1 for several producers, 0 for one, `SHMQ_ANY` (open only).
    pub multi_producer: c_int,
    /// File mode of a created topic (0: 0600).
    pub mode: u32,
    /// `SHMQ_FLAG_*` bits.
    pub flags: u32,
    /// Topic directory, or NULL for `SHMQ_DIR` / `/dev/shm/shmq`.
    pub dir: *const c_char,
    /// Liveness timeout for dead multi-producers' claims, ms (0: default 1 s).
    pub liveness_ms: u32,
    /// Durable subscriber expiry, ms (0: never).
    pub durable_expiry_ms: u32,
}

/// `sizeof(shmq_options)` before `liveness_ms` was added: accepted, with
/// the later fields at their defaults.
const OPTIONS_V1_SIZE: usize = std::mem::offset_of!(shmq_options, liveness_ms);

/// `flags` bit: messages carry no publish timestamp (saves a clock read per
/// publish; `timestamp_ns` reads 0).
pub const SHMQ_FLAG_NO_TIMESTAMPS: u32 = 1;
/// Mirrors `SHMQ_FLAG_TIMESTAMPS` in `shmq.h`.
pub const SHMQ_FLAG_TIMESTAMPS: u32 = 2;
/// Mirrors `SHMQ_FLAG_CLOSE_ON_EXIT` in `shmq.h`.
pub const SHMQ_FLAG_CLOSE_ON_EXIT: u32 = 4;

/// A received message. Mirrors `shmq_msg` in `shmq.h`.
#[repr(C)]
#[derive(Debug)]
pub struct shmq_msg {
    /// Payload; valid until `shmq_release` or the next receive.
    pub data: *const c_void,
    /// Payload length.
    pub len: usize,
    /// Publish time, `CLOCK_MONOTONIC` nanoseconds.
    pub timestamp_ns: u64,
    /// Sequence number (dense on single-producer topics).
    pub seq: u64,
    /// Absolute byte position in the topic's stream.
    pub position: u64,
    /// Messages lost just before this one (`Overwrite` topics).
    pub lost: u64,
    /// User type given at publish.
    pub msg_type: u32,
}

/// One message of a batch for `shmq_publish_batch`. Mirrors `shmq_buf`
/// in `shmq.h`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shmq_buf {
    /// The message's bytes (may be NULL when `len` is 0).
    pub data: *const c_void,
    /// Its length.
    pub len: usize,
}

/// Where a message read ahead ends (`shmq_recv_ahead`), to release it and
/// every one before it (`shmq_release_through`). Mirrors `shmq_ack` in
/// `shmq.h`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct shmq_ack {
    /// Position just past the message.
    pub position: u64,
    /// Sequence number expected there.
    pub next_seq: u64,
}

/// Sizes the header's tests compare against (C `sizeof`/`offsetof`).
#[no_mangle]
pub unsafe extern "C" fn shmq_abi_layout(out: *mut u64, n: usize) -> c_int {
    let vals = [
        std::mem::size_of::<shmq_options>() as u64,
        std::mem::offset_of!(shmq_options, capacity) as u64,
        std::mem::offset_of!(shmq_options, dir) as u64,
        std::mem::offset_of!(shmq_options, durable_expiry_ms) as u64,
        std::mem::size_of::<shmq_msg>() as u64,
        std::mem::offset_of!(shmq_msg, lost) as u64,
        std::mem::offset_of!(shmq_msg, msg_type) as u64,
    ];
    if out.is_null() || n < vals.len() {
        return -libc::EINVAL;
    }
    // SAFETY: the caller passes an array of at least `n >= vals.len()` u64.
    unsafe { std::ptr::copy_nonoverlapping(vals.as_ptr(), out, vals.len()) };
    0
}

fn guard(f: impl FnOnce() -> c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(-libc::EFAULT)
}

fn open_err(e: &OpenError) -> c_int {
    -match e {
        OpenError::InvalidName { .. } | OpenError::InvalidOptions(_) => libc::EINVAL,
        OpenError::NotFound { .. } => libc::ENOENT,
        OpenError::AlreadyExists { .. } => libc::EEXIST,
        OpenError::Incompatible { .. } => libc::EINVAL,
        OpenError::Corrupt { .. } => libc::EBADMSG,
        OpenError::VersionMismatch { .. } => libc::EPROTO,
        OpenError::NotReady => libc::EAGAIN,
        OpenError::NoSpace { .. } => libc::ENOSPC,
        OpenError::PermissionDenied(_) | OpenError::UnsafeDirectory { .. } => libc::EACCES,
        OpenError::NotATopic { .. } => libc::EBADMSG,
        OpenError::LocksUnsupported { .. } => libc::ENOLCK,
        OpenError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        _ => libc::EIO,
    }
}

fn publish_err(e: &PublishError) -> c_int {
    -match e {
        PublishError::TooLarge { .. } => libc::EMSGSIZE,
        PublishError::Full => libc::EAGAIN,
        PublishError::Lost => libc::ECANCELED,
        PublishError::CommitTooLarge { .. } => libc::EMSGSIZE,
        PublishError::InvalidType(_) => libc::EINVAL,
        PublishError::Reserved => libc::EBUSY,
        _ => libc::EIO,
    }
}

fn recv_err(e: &RecvError) -> c_int {
    -match e {
        RecvError::Empty => libc::EAGAIN,
        RecvError::Timeout => libc::ETIMEDOUT,
        RecvError::Lagged(_) => libc::EAGAIN,
        RecvError::Corrupt(_) => libc::EBADMSG,
        RecvError::Evicted => libc::ECONNRESET,
        RecvError::Closed => libc::EPIPE,
        RecvError::NoReadAhead => libc::EOPNOTSUPP,
        RecvError::Resource(_) => libc::EMFILE,
        _ => libc::EIO,
    }
}

/// A negative timeout waits forever; 0 does not wait.
fn timeout(ns: i64) -> Wait {
    if ns < 0 {
        Wait::Forever
    } else if ns == 0 {
        Wait::Now
    } else {
        Wait::For(Duration::from_nanos(ns as u64))
    }
}

/// # Safety
/// `p` is NULL or a valid NUL-terminated string.
unsafe fn str_arg<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

type OpenFn = fn(&str, &Options) -> Result<Topic, OpenError>;

/// `CLOCK_MONOTONIC` now, in ns: the clock of message timestamps.
#[no_mangle]
pub extern "C" fn shmq_now_ns() -> u64 {
    shmq_rs::monotonic_ns()
}

/// The message for a return code (a static string; never NULL).
#[no_mangle]
pub extern "C" fn shmq_strerror(rc: c_int) -> *const c_char {
    let s: &'static CStr = match -rc {
        0 => c"success",
        libc::EAGAIN => c"would block: nothing to read, or the ring is full",
        libc::ETIMEDOUT => c"timed out",
        libc::EINVAL => c"invalid argument (NULL handle, bad name, options or message type, or settings differ from the topic's)",
        libc::ENOENT => c"no such topic",
        libc::EEXIST => c"topic already exists",
        libc::EMSGSIZE => c"message larger than the topic's max message size, the buffer, or the reservation",
        libc::ENOSPC => c"no space: the topic directory's file system is full",
        libc::EUSERS => c"no free subscriber slot (recreate the topic with more subscriber slots)",
        libc::ENOLCK => c"the topic directory's file system has no open file description locks (use /dev/shm)",
        libc::EMFILE => c"out of file descriptors (each producer and subscriber holds one)",
        libc::EBUSY => c"busy: another live process holds this single-producer topic or durable name, or a reservation is outstanding",
        libc::EBADMSG => c"not a valid topic file (corrupt, or not a regular file), or a corrupt ring",
        libc::EPROTO => c"topic layout version not supported",
        libc::EACCES => c"permission denied (a symlink or a foreign owner at the topic path, or a topic directory others can change)",
        libc::EROFS => c"topic handle is read-only",
        libc::ECONNRESET => c"subscriber slot was reclaimed; subscribe again",
        libc::EPIPE => c"end of stream: the stream is closed and every message before the close was received",
        libc::ECANCELED => c"claim lost: skipped after the liveness timeout while this process looked dead; publish again",
        libc::ESTALE => c"durable subscriber expired; subscribe again to start from the newest message",
        libc::EOPNOTSUPP => c"not supported by this topic: replay by time needs a topic created with SHMQ_FLAG_TIMESTAMPS",
        libc::EFAULT => c"internal error (a bug in shmq: please report it)",
        _ => c"unknown error",
    };
    s.as_ptr()
}
