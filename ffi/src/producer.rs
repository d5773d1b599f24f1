//! Producers: copy-in publish, zero-copy reserve/commit/abort, flush.

use std::ffi::{c_int, c_void};

use shmq_rs::{ProducerError, Wait};

use crate::*;

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
            Err(ProducerError::Attach(_)) => -libc::EMFILE,
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

/// A `shmq_buf` whose bytes `shmq_publish_batch` has checked it may read:
/// only made there, by casting the caller's array, after every entry was
/// validated, and only used during that call.
#[repr(transparent)]
struct CheckedBuf(shmq_buf);

impl AsRef<[u8]> for CheckedBuf {
    fn as_ref(&self) -> &[u8] {
        if self.0.len == 0 {
            return &[];
        }
        // SAFETY: validated non-null with `len` readable bytes, which the
        // caller keeps valid and unwritten for the call (its contract);
        // a `CheckedBuf` lives no longer than that call.
        unsafe { std::slice::from_raw_parts(self.0.data.cast::<u8>(), self.0.len) }
    }
}

/// Publishes `n` messages (`msgs[i]`), in order, with one claim and one
/// commit per run of them that fits one frame of the topic's max message
/// size, waiting up to `timeout_ns` in all for room. `*published` (if not
/// NULL) gets how many leading messages went out. Returns 0 when all did;
/// -ETIMEDOUT (or -EAGAIN with timeout 0) when the ring stayed full;
/// -EINVAL (nothing published) for a NULL handle, a NULL `msgs` with
/// `n > 0` or an entry with NULL data and a length; -EBUSY a reservation
/// is outstanding; -EMSGSIZE a message too large (the ones before it went
/// out); -ECANCELED as for `shmq_publish`.
#[no_mangle]
pub unsafe extern "C" fn shmq_publish_batch(
    p: *mut shmq_producer,
    msgs: *const shmq_buf,
    n: usize,
    timeout_ns: i64,
    published: *mut usize,
) -> c_int {
    let mut done = 0;
    let rc = guard(|| {
        if p.is_null() || (msgs.is_null() && n > 0) {
            return -libc::EINVAL;
        }
        let bufs = if n == 0 {
            &[][..]
        } else {
            // SAFETY: `msgs` is non-null with `n` readable entries (caller).
            unsafe { std::slice::from_raw_parts(msgs, n) }
        };
        if bufs.iter().any(|b| b.data.is_null() && b.len > 0) {
            return -libc::EINVAL;
        }
        // SAFETY: `CheckedBuf` is a transparent `shmq_buf`, and every
        // entry was just validated.
        let bufs = unsafe { &*(bufs as *const [shmq_buf] as *const [CheckedBuf]) };
        // SAFETY: `p` is a live producer handle, used by one thread at a time.
        let prod = unsafe { &mut (*p).0 };
        if prod.has_reservation() {
            return -libc::EBUSY;
        }
        let r = match timeout(timeout_ns) {
            Wait::Now => prod.try_publish_batch(bufs),
            Wait::Forever => prod.publish_batch(bufs).map(|()| bufs.len()),
            Wait::For(t) => prod.publish_batch_timeout(bufs, t),
        };
        match r {
            Ok(k) => {
                done = k;
                if k == n {
                    0
                } else if timeout_ns == 0 {
                    -libc::EAGAIN
                } else {
                    -libc::ETIMEDOUT
                }
            }
            Err(e) => {
                done = e.published;
                publish_err(&e.error)
            }
        }
    });
    if !published.is_null() {
        // SAFETY: non-null, writable by the caller's contract.
        unsafe { published.write(done) };
    }
    rc
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

/// Closes the stream after the messages published so far (see
/// `Producer::close`): subscribers receive them, then -EPIPE. Publishing
/// again reopens it. -EINVAL NULL.
#[no_mangle]
pub unsafe extern "C" fn shmq_close_stream(p: *mut shmq_producer) -> c_int {
    guard(|| {
        if p.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live producer handle, one thread at a time.
        unsafe { &mut (*p).0 }.close();
        0
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
