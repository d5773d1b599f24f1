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

use shmq_rs::{
    OpenError, Options, Policy, Producer, ProducerError, PublishError, RecvError, Start, SubscribeError, Subscriber,
    Topic, Wait,
};

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
        OpenError::PermissionDenied(_) => libc::EACCES,
        OpenError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        _ => libc::EIO,
    }
}

fn publish_err(e: &PublishError) -> c_int {
    -match e {
        PublishError::TooLarge { .. } => libc::EMSGSIZE,
        PublishError::Full => libc::EAGAIN,
        PublishError::Lost => libc::ECANCELED,
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

/// Builds Rust options from C ones; `for_open` maps 0 / `SHMQ_ANY` to "not
/// required".
///
/// # Safety
/// `o` is NULL or points to a `shmq_options` filled by `shmq_options_init*`.
unsafe fn options(o: *const shmq_options, for_open: bool) -> Result<Options, c_int> {
    let mut opts = Options::new();
    if o.is_null() {
        return Ok(opts);
    }
    // SAFETY: non-null, and the caller's contract says it is a shmq_options.
    let o = unsafe { &*o };
    if (o.size as usize) < OPTIONS_V1_SIZE {
        return Err(-libc::EINVAL);
    }
    if o.size as usize >= std::mem::size_of::<shmq_options>() {
        if o.liveness_ms != 0 {
            opts = opts.liveness_timeout(Duration::from_millis(o.liveness_ms as u64));
        }
        if o.durable_expiry_ms != 0 {
            opts = opts.durable_expiry(Duration::from_millis(o.durable_expiry_ms as u64));
        }
    }
    if !o.dir.is_null() {
        // SAFETY: a non-null `dir` is a NUL-terminated string by contract.
        let dir = unsafe { str_arg(o.dir) }.ok_or(-libc::EINVAL)?;
        opts = opts.dir(dir);
    }
    if o.capacity != 0 {
        opts = opts.capacity(o.capacity);
    }
    if o.max_message != 0 {
        opts = opts.max_message(o.max_message);
    }
    if o.max_subscribers != 0 {
        opts = opts.max_subscribers(o.max_subscribers);
    }
    match o.policy {
        SHMQ_POLICY_BLOCK => opts = opts.policy(Policy::Block),
        SHMQ_POLICY_OVERWRITE => opts = opts.policy(Policy::Overwrite),
        SHMQ_ANY if for_open => {}
        _ => return Err(-libc::EINVAL),
    }
    match o.multi_producer {
        0 => opts = opts.multi_producer(false),
        1 => opts = opts.multi_producer(true),
        SHMQ_ANY if for_open => {}
        _ => return Err(-libc::EINVAL),
    }
    if o.mode != 0 {
        opts = opts.mode(o.mode);
    }
    let (ts, no_ts) = (o.flags & SHMQ_FLAG_TIMESTAMPS != 0, o.flags & SHMQ_FLAG_NO_TIMESTAMPS != 0);
    if o.flags & !(SHMQ_FLAG_TIMESTAMPS | SHMQ_FLAG_NO_TIMESTAMPS) != 0 || (ts && no_ts) {
        return Err(-libc::EINVAL);
    }
    // Create: timestamps only when asked. Open: checked only when a flag
    // says which.
    if !for_open || ts || no_ts {
        opts = opts.timestamps(ts);
    }
    Ok(opts)
}

/// Fills `opts` with the defaults for creating a topic.
#[no_mangle]
pub unsafe extern "C" fn shmq_options_init(opts: *mut shmq_options) {
    if opts.is_null() {
        return;
    }
    let v = shmq_options {
        size: std::mem::size_of::<shmq_options>() as u32,
        max_message: shmq_rs::DEFAULT_MAX_MESSAGE,
        capacity: shmq_rs::DEFAULT_CAPACITY,
        max_subscribers: shmq_rs::DEFAULT_MAX_SUBSCRIBERS,
        policy: SHMQ_POLICY_BLOCK,
        multi_producer: 0,
        mode: 0o600,
        flags: 0,
        dir: std::ptr::null(),
        liveness_ms: 0,
        durable_expiry_ms: 0,
    };
    // SAFETY: non-null and points to a shmq_options by contract.
    unsafe { opts.write(v) };
}

/// Fills `opts` so that `shmq_topic_open` accepts any topic settings (set
/// `dir` or single fields afterwards to require them).
#[no_mangle]
pub unsafe extern "C" fn shmq_options_init_any(opts: *mut shmq_options) {
    if opts.is_null() {
        return;
    }
    let v = shmq_options {
        size: std::mem::size_of::<shmq_options>() as u32,
        max_message: 0,
        capacity: 0,
        max_subscribers: 0,
        policy: SHMQ_ANY,
        multi_producer: SHMQ_ANY,
        mode: 0,
        flags: 0,
        dir: std::ptr::null(),
        liveness_ms: 0,
        durable_expiry_ms: 0,
    };
    // SAFETY: non-null and points to a shmq_options by contract.
    unsafe { opts.write(v) };
}

type OpenFn = fn(&str, &Options) -> Result<Topic, OpenError>;

unsafe fn topic_open_with(
    name: *const c_char,
    opts: *const shmq_options,
    out: *mut *mut shmq_topic,
    for_open: bool,
    f: OpenFn,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: caller passes NULL or a NUL-terminated name.
        let Some(name) = (unsafe { str_arg(name) }) else {
            return -libc::EINVAL;
        };
        // SAFETY: caller passes NULL or an initialised shmq_options.
        let opts = match unsafe { options(opts, for_open) } {
            Ok(o) => o,
            Err(e) => return e,
        };
        match f(name, &opts) {
            Ok(t) => {
                // SAFETY: `out` is non-null and writable by contract.
                unsafe { out.write(Box::into_raw(Box::new(shmq_topic(t)))) };
                0
            }
            Err(e) => open_err(&e),
        }
    })
}

/// Creates a topic. Errors: -EINVAL (bad name or options), -EEXIST,
/// -ENOSPC (no room in the directory), -EACCES, other -errno from the OS.
#[no_mangle]
pub unsafe extern "C" fn shmq_topic_create(
    name: *const c_char,
    opts: *const shmq_options,
    out: *mut *mut shmq_topic,
) -> c_int {
    // SAFETY: the caller's contract is forwarded unchanged.
    unsafe { topic_open_with(name, opts, out, false, Topic::create) }
}

/// Opens a topic, checking the settings `opts` requires (NULL: any).
/// Errors: -EINVAL (bad name, or settings differ), -ENOENT, -EBADMSG
/// (corrupt file), -EPROTO (layout version), -EAGAIN (not ready), -EACCES.
#[no_mangle]
pub unsafe extern "C" fn shmq_topic_open(
    name: *const c_char,
    opts: *const shmq_options,
    out: *mut *mut shmq_topic,
) -> c_int {
    // SAFETY: the caller's contract is forwarded unchanged.
    unsafe { topic_open_with(name, opts, out, true, Topic::open) }
}

/// Opens the topic, or creates it with `opts`.
#[no_mangle]
pub unsafe extern "C" fn shmq_topic_open_or_create(
    name: *const c_char,
    opts: *const shmq_options,
    out: *mut *mut shmq_topic,
) -> c_int {
    // SAFETY: the caller's contract is forwarded unchanged.
    unsafe { topic_open_with(name, opts, out, false, Topic::open_or_create) }
}

/// Closes a topic handle (producers and subscribers made from it stay valid).
#[no_mangle]
pub unsafe extern "C" fn shmq_topic_close(t: *mut shmq_topic) {
    if !t.is_null() {
        // SAFETY: `t` came from Box::into_raw in a shmq_topic_* call and is
        // closed once, by contract.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(t) })));
    }
}

/// Removes the topic `name` from `SHMQ_DIR` (or /dev/shm/shmq).
/// Errors: -EINVAL, -ENOENT, -EACCES.
#[no_mangle]
pub unsafe extern "C" fn shmq_topic_unlink(name: *const c_char) -> c_int {
    // SAFETY: caller passes NULL or a NUL-terminated name.
    unsafe { shmq_topic_unlink_in(std::ptr::null(), name) }
}

/// Removes the topic `name` from `dir` (NULL: the default directory).
#[no_mangle]
pub unsafe extern "C" fn shmq_topic_unlink_in(dir: *const c_char, name: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: caller passes NULL or a NUL-terminated name.
        let Some(name) = (unsafe { str_arg(name) }) else {
            return -libc::EINVAL;
        };
        let dir = if dir.is_null() {
            shmq_rs::default_dir()
        } else {
            // SAFETY: non-null, NUL-terminated by contract.
            match unsafe { str_arg(dir) } {
                Some(d) => d.into(),
                None => return -libc::EINVAL,
            }
        };
        match Topic::unlink_in(&dir, name) {
            Ok(()) => 0,
            Err(e) => open_err(&e),
        }
    })
}

/// Attaches a producer. Errors: -EINVAL, -EBUSY (a live process holds a
/// single-producer topic), -EROFS.
#[no_mangle]
pub unsafe extern "C" fn shmq_producer_open(t: *mut shmq_topic, out: *mut *mut shmq_producer) -> c_int {
    guard(|| {
        if t.is_null() || out.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: `t` is a live topic handle by contract.
        let topic = unsafe { &(*t).0 };
        match topic.producer() {
            Ok(p) => {
                // SAFETY: `out` is non-null and writable.
                unsafe { out.write(Box::into_raw(Box::new(shmq_producer(p)))) };
                0
            }
            Err(ProducerError::Busy { .. }) => -libc::EBUSY,
            Err(_) => -libc::EROFS,
        }
    })
}

/// Frees a producer (aborting an uncommitted reservation).
#[no_mangle]
pub unsafe extern "C" fn shmq_producer_close(p: *mut shmq_producer) {
    if !p.is_null() {
        // SAFETY: `p` came from shmq_producer_open and is closed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(p) })));
    }
}

unsafe fn publish_with(p: *mut shmq_producer, data: *const c_void, len: usize, wait: Wait) -> c_int {
    guard(|| {
        if p.is_null() || (data.is_null() && len > 0) {
            return -libc::EINVAL;
        }
        // SAFETY: `p` is a live producer handle, used by one thread at a time.
        let prod = unsafe { &mut (*p).0 };
        if prod.has_reservation() {
            return -libc::EBUSY;
        }
        let bytes = if len == 0 {
            &[][..]
        } else {
            // SAFETY: `data` is non-null with `len` readable bytes (caller),
            // not written while we copy them.
            unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }
        };
        // The same publish as Rust's (its fast path included).
        let r = match wait {
            Wait::Now => prod.try_publish(bytes),
            Wait::Forever => prod.publish(bytes),
            Wait::For(t) => prod.publish_timeout(bytes, t),
        };
        match r {
            Ok(()) => 0,
            Err(e) => publish_err(&e),
        }
    })
}

/// Publishes a copy of `data`, waiting up to `timeout_ns` for room on a
/// full Block topic (negative: forever; 0: not at all). Errors: -EINVAL,
/// -EMSGSIZE, -ETIMEDOUT (still full after the timeout), -EAGAIN (full,
/// with timeout 0), -EBUSY (a reservation is outstanding).
#[no_mangle]
pub unsafe extern "C" fn shmq_publish(
    p: *mut shmq_producer,
    data: *const c_void,
    len: usize,
    timeout_ns: i64,
) -> c_int {
    // SAFETY: forwarded contract.
    let rc = unsafe { publish_with(p, data, len, timeout(timeout_ns)) };
    if rc == -libc::EAGAIN && timeout_ns != 0 {
        -libc::ETIMEDOUT
    } else {
        rc
    }
}

/// Publishes without waiting: -EAGAIN if the ring is full.
#[no_mangle]
pub unsafe extern "C" fn shmq_try_publish(p: *mut shmq_producer, data: *const c_void, len: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { publish_with(p, data, len, Wait::Now) }
}

/// Reserves `len` bytes in the ring (waiting for room as long as it takes)
/// and stores a pointer to them in `*buf`; write the message there, then
/// `shmq_commit` or `shmq_abort`. Errors: -EINVAL, -EMSGSIZE, -EBUSY (a
/// reservation is already outstanding).
#[no_mangle]
pub unsafe extern "C" fn shmq_reserve(p: *mut shmq_producer, len: usize, buf: *mut *mut c_void) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { reserve_with(p, len, buf, Wait::Forever) }
}

/// As `shmq_reserve`, without waiting: -EAGAIN if the ring is full.
#[no_mangle]
pub unsafe extern "C" fn shmq_try_reserve(p: *mut shmq_producer, len: usize, buf: *mut *mut c_void) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { reserve_with(p, len, buf, Wait::Now) }
}

unsafe fn reserve_with(p: *mut shmq_producer, len: usize, buf: *mut *mut c_void, wait: Wait) -> c_int {
    guard(|| {
        if p.is_null() || buf.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live producer handle, one thread at a time.
        let prod = unsafe { &mut (*p).0 };
        match prod.reserve_raw(len, wait) {
            Ok(Some(ptr)) => {
                // SAFETY: `buf` is non-null and writable.
                unsafe { buf.write(ptr.cast()) };
                0
            }
            Ok(None) => -libc::EBUSY,
            Err(e) => publish_err(&e),
        }
    })
}

/// Publishes the first `len` bytes of the outstanding reservation (the
/// rest becomes padding). Errors: -EINVAL (no reservation).
#[no_mangle]
pub unsafe extern "C" fn shmq_commit(p: *mut shmq_producer, len: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { shmq_commit_typed(p, len, 0) }
}

/// As `shmq_commit`, with a user type (0..2^31).
#[no_mangle]
pub unsafe extern "C" fn shmq_commit_typed(p: *mut shmq_producer, len: usize, msg_type: u32) -> c_int {
    guard(|| {
        if p.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live producer handle, one thread at a time.
        match unsafe { &mut (*p).0 }.commit_raw(len, msg_type) {
            Ok(true) => 0,
            Ok(false) => -libc::EINVAL,
            Err(e) => publish_err(&e),
        }
    })
}

/// Gives the outstanding reservation back (subscribers skip it).
/// Errors: -EINVAL (no reservation).
#[no_mangle]
pub unsafe extern "C" fn shmq_abort(p: *mut shmq_producer) -> c_int {
    guard(|| {
        if p.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live producer handle, one thread at a time.
        if unsafe { &mut (*p).0 }.abort_raw() {
            0
        } else {
            -libc::EINVAL
        }
    })
}

/// Subscribes from the newest message. Errors: -EINVAL, -ENOSPC (no free
/// subscriber slot), -EROFS.
#[no_mangle]
pub unsafe extern "C" fn shmq_subscribe(t: *mut shmq_topic, out: *mut *mut shmq_subscriber) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { shmq_subscribe_from(t, 0, out) }
}

/// Subscribes from the newest (`from_oldest` 0) or oldest (1) message.
#[no_mangle]
pub unsafe extern "C" fn shmq_subscribe_from(
    t: *mut shmq_topic,
    from_oldest: c_int,
    out: *mut *mut shmq_subscriber,
) -> c_int {
    let from = if from_oldest != 0 { SHMQ_FROM_OLDEST } else { SHMQ_FROM_NEWEST };
    // SAFETY: forwarded contract.
    unsafe { shmq_subscribe_at(t, from, 0, out) }
}

/// `shmq_subscribe_at`: from the newest message.
pub const SHMQ_FROM_NEWEST: c_int = 0;
/// `shmq_subscribe_at`: from the oldest message the ring holds.
pub const SHMQ_FROM_OLDEST: c_int = 1;
/// `shmq_subscribe_at`: from the first retained message with seq >= value.
pub const SHMQ_FROM_SEQ: c_int = 2;
/// `shmq_subscribe_at`: from the first retained message published at or
/// after value (`CLOCK_MONOTONIC` ns, see `shmq_now_ns`).
pub const SHMQ_FROM_TIME: c_int = 3;

fn sub_err(e: &SubscribeError) -> c_int {
    -match e {
        SubscribeError::NoFreeSlot { .. } => libc::ENOSPC,
        SubscribeError::ReadOnly => libc::EROFS,
        SubscribeError::NameTaken { .. } => libc::EBUSY,
        SubscribeError::Expired { .. } => libc::ESTALE,
        SubscribeError::InvalidName(_) => libc::EINVAL,
        SubscribeError::GroupNeedsBlock => libc::EINVAL,
        SubscribeError::GroupInUse { .. } => libc::EBUSY,
        SubscribeError::NoTimestamps => libc::EOPNOTSUPP,
        _ => libc::EIO,
    }
}

fn new_subscriber(r: Result<shmq_rs::Subscriber, SubscribeError>, out: *mut *mut shmq_subscriber) -> c_int {
    match r {
        Ok(s) => {
            // SAFETY: callers check `out` is non-null; it is writable by contract.
            unsafe { out.write(Box::into_raw(Box::new(shmq_subscriber(s)))) };
            0
        }
        Err(e) => sub_err(&e),
    }
}

/// Subscribes at `from` (`SHMQ_FROM_*`), with `value` the sequence number
/// or time for `SHMQ_FROM_SEQ` / `SHMQ_FROM_TIME`.
#[no_mangle]
pub unsafe extern "C" fn shmq_subscribe_at(
    t: *mut shmq_topic,
    from: c_int,
    value: u64,
    out: *mut *mut shmq_subscriber,
) -> c_int {
    guard(|| {
        if t.is_null() || out.is_null() {
            return -libc::EINVAL;
        }
        let start = match from {
            SHMQ_FROM_NEWEST => Start::Newest,
            SHMQ_FROM_OLDEST => Start::Oldest,
            SHMQ_FROM_SEQ => Start::Seq(value),
            SHMQ_FROM_TIME => Start::Time(value),
            _ => return -libc::EINVAL,
        };
        // SAFETY: live topic handle.
        let topic = unsafe { &(*t).0 };
        new_subscriber(topic.subscribe_with(start, ""), out)
    })
}

/// Attaches the durable subscriber `name` (see `Topic::subscribe_durable`).
#[no_mangle]
pub unsafe extern "C" fn shmq_subscribe_durable(
    t: *mut shmq_topic,
    name: *const c_char,
    out: *mut *mut shmq_subscriber,
) -> c_int {
    guard(|| {
        if t.is_null() || out.is_null() || name.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: a non-null `name` is a NUL-terminated string by contract.
        let Some(name) = (unsafe { str_arg(name) }) else {
            return -libc::EINVAL;
        };
        // SAFETY: live topic handle.
        let topic = unsafe { &(*t).0 };
        new_subscriber(topic.subscribe_durable(name), out)
    })
}

/// Joins consumer group `group` (see `Topic::subscribe_group`).
#[no_mangle]
pub unsafe extern "C" fn shmq_subscribe_group(
    t: *mut shmq_topic,
    group: *const c_char,
    out: *mut *mut shmq_subscriber,
) -> c_int {
    guard(|| {
        if t.is_null() || out.is_null() || group.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: a non-null `group` is a NUL-terminated string by contract.
        let Some(group) = (unsafe { str_arg(group) }) else {
            return -libc::EINVAL;
        };
        // SAFETY: live topic handle.
        let topic = unsafe { &(*t).0 };
        new_subscriber(topic.subscribe_group(group), out)
    })
}

/// Removes consumer group `group`: 0 removed, -ENOENT none, -EBUSY live
/// members remain.
#[no_mangle]
pub unsafe extern "C" fn shmq_remove_group(t: *mut shmq_topic, group: *const c_char) -> c_int {
    guard(|| {
        if t.is_null() || group.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: as in shmq_subscribe_group.
        let Some(group) = (unsafe { str_arg(group) }) else {
            return -libc::EINVAL;
        };
        // SAFETY: live topic handle.
        match unsafe { &(*t).0 }.remove_group(group) {
            Ok(true) => 0,
            Ok(false) => -libc::ENOENT,
            Err(e) => sub_err(&e),
        }
    })
}

/// Removes the durable subscriber `name`: 0 removed, -ENOENT none, -EBUSY
/// a live process holds it.
#[no_mangle]
pub unsafe extern "C" fn shmq_unsubscribe_durable(t: *mut shmq_topic, name: *const c_char) -> c_int {
    guard(|| {
        if t.is_null() || name.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: as in shmq_subscribe_durable.
        let Some(name) = (unsafe { str_arg(name) }) else {
            return -libc::EINVAL;
        };
        // SAFETY: live topic handle.
        match unsafe { &(*t).0 }.unsubscribe_durable(name) {
            Ok(true) => 0,
            Ok(false) => -libc::ENOENT,
            Err(e) => sub_err(&e),
        }
    })
}

/// Writes everything published so far to the topic's file and waits until
/// it is on disk (see `Producer::flush`). -EIO (or another errno) if msync
/// failed.
#[no_mangle]
pub unsafe extern "C" fn shmq_flush(p: *mut shmq_producer) -> c_int {
    guard(|| {
        if p.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live producer handle, one thread at a time.
        match unsafe { &mut (*p).0 }.flush() {
            Ok(()) => 0,
            Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
        }
    })
}

/// `CLOCK_MONOTONIC` now, in ns: the clock of message timestamps.
#[no_mangle]
pub extern "C" fn shmq_now_ns() -> u64 {
    shmq_rs::monotonic_ns()
}

/// Frees a subscriber and its slot (releasing a held message).
#[no_mangle]
pub unsafe extern "C" fn shmq_subscriber_close(s: *mut shmq_subscriber) {
    if !s.is_null() {
        // SAFETY: `s` came from shmq_subscribe* and is closed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(s) })));
    }
}

unsafe fn recv_with(s: *mut shmq_subscriber, out: *mut shmq_msg, wait: Wait) -> c_int {
    guard(|| {
        if s.is_null() || out.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live subscriber handle, one thread at a time.
        let sub = unsafe { &mut (*s).0 };
        match sub.recv_raw(wait) {
            Ok(m) => {
                let msg = shmq_msg {
                    data: m.data.cast(),
                    len: m.len,
                    timestamp_ns: m.timestamp_ns,
                    seq: m.seq,
                    position: m.position,
                    lost: m.lost,
                    msg_type: m.msg_type,
                };
                // SAFETY: `out` is non-null and writable.
                unsafe { out.write(msg) };
                0
            }
            Err(e) => recv_err(&e),
        }
    })
}

/// Receives the next message in place, waiting up to `timeout_ns`
/// (negative: forever; 0: not at all). The data stays valid until
/// `shmq_release` or the next receive on this subscriber (which releases
/// it). Errors: -EINVAL, -ETIMEDOUT, -EAGAIN (timeout 0, nothing new),
/// -EBADMSG (corrupt ring), -ECONNRESET (slot reclaimed: subscribe again).
#[no_mangle]
pub unsafe extern "C" fn shmq_recv(s: *mut shmq_subscriber, out: *mut shmq_msg, timeout_ns: i64) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { recv_with(s, out, timeout(timeout_ns)) }
}

/// Receives without waiting: -EAGAIN if nothing is new.
#[no_mangle]
pub unsafe extern "C" fn shmq_try_recv(s: *mut shmq_subscriber, out: *mut shmq_msg) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { recv_with(s, out, Wait::Now) }
}

/// Releases the message from the last receive (lets the producer reuse its
/// bytes). Errors: -EINVAL (no message held).
#[no_mangle]
pub unsafe extern "C" fn shmq_release(s: *mut shmq_subscriber) -> c_int {
    guard(|| {
        if s.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live subscriber handle, one thread at a time.
        if unsafe { &mut (*s).0 }.release_raw() {
            0
        } else {
            -libc::EINVAL
        }
    })
}

/// Receives the next message into `buf` (capacity `cap`), stores its length
/// in `*len`, and releases it. Errors as `shmq_recv`, plus -EMSGSIZE when
/// the message does not fit (`*len` then holds its length; the message is
/// not consumed).
#[no_mangle]
pub unsafe extern "C" fn shmq_recv_copy(
    s: *mut shmq_subscriber,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    timeout_ns: i64,
) -> c_int {
    guard(|| {
        if s.is_null() || len.is_null() || (buf.is_null() && cap > 0) {
            return -libc::EINVAL;
        }
        // SAFETY: live subscriber handle, one thread at a time.
        let sub = unsafe { &mut (*s).0 };
        let m = match sub.recv_raw(timeout(timeout_ns)) {
            Ok(m) => m,
            Err(e) => return recv_err(&e),
        };
        // SAFETY: `len` is non-null and writable.
        unsafe { len.write(m.len) };
        if m.len > cap {
            // Keep it for the next receive: put the message back.
            sub.unrelease_raw();
            return -libc::EMSGSIZE;
        }
        // SAFETY: `m.data` has `m.len` readable bytes until release; `buf`
        // has `cap >= m.len` writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(m.data, buf.cast::<u8>(), m.len) };
        sub.release_raw();
        0
    })
}

/// The message for a return code (a static string; never NULL).
#[no_mangle]
pub extern "C" fn shmq_strerror(rc: c_int) -> *const c_char {
    let s: &'static CStr = match -rc {
        0 => c"success",
        libc::EAGAIN => c"would block: nothing to read, or the ring is full",
        libc::ETIMEDOUT => c"timed out",
        libc::EINVAL => c"invalid argument (NULL handle, bad name or options, or settings differ from the topic's)",
        libc::ENOENT => c"no such topic",
        libc::EEXIST => c"topic already exists",
        libc::EMSGSIZE => c"message larger than the topic's max message size (or the buffer)",
        libc::ENOSPC => c"no space: no free subscriber slot, or the topic directory is full",
        libc::EBUSY => c"busy: another live process holds this single-producer topic or durable name, or a reservation is outstanding",
        libc::EBADMSG => c"corrupt topic file or ring",
        libc::EPROTO => c"topic layout version not supported",
        libc::EACCES => c"permission denied (or a symlink / foreign owner at the topic path)",
        libc::EROFS => c"topic handle is read-only",
        libc::ECONNRESET => c"subscriber slot was reclaimed; subscribe again",
        libc::ECANCELED => c"claim lost: skipped after the liveness timeout while this process looked dead; publish again",
        libc::ESTALE => c"durable subscriber expired; subscribe again to start from the newest message",
        libc::EOPNOTSUPP => c"not supported by this topic: replay by time needs a topic created with SHMQ_FLAG_TIMESTAMPS",
        libc::EFAULT => c"internal error (a bug in shmq: please report it)",
        _ => c"unknown error",
    };
    s.as_ptr()
}
