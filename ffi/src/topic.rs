//! Topics: options, create, open, close, unlink.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use shmq_rs::{Options, Policy, Topic};

use crate::*;

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
    if o.flags & !(SHMQ_FLAG_TIMESTAMPS | SHMQ_FLAG_NO_TIMESTAMPS | SHMQ_FLAG_CLOSE_ON_EXIT) != 0 || (ts && no_ts) {
        return Err(-libc::EINVAL);
    }
    // Create: as asked. Open: required only when set.
    let close_on_exit = o.flags & SHMQ_FLAG_CLOSE_ON_EXIT != 0;
    if !for_open || close_on_exit {
        opts = opts.close_on_exit(close_on_exit);
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
