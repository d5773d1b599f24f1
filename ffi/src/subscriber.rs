//! Subscribers: plain, replaying, durable and group; zero-copy receive
//! and release, or receive by copy.

use std::ffi::{c_char, c_int, c_void};

use shmq_rs::{Start, SubscribeError, Wait};

use crate::*;

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
        SubscribeError::NoFreeSlot { .. } => libc::EUSERS,
        SubscribeError::Attach(_) => libc::EMFILE,
        SubscribeError::ReadOnly => libc::EROFS,
        SubscribeError::NameTaken { .. } => libc::EBUSY,
        SubscribeError::Expired { .. } => libc::ESTALE,
        SubscribeError::InvalidName(_) => libc::EINVAL,
        SubscribeError::GroupNeedsBlock => libc::EINVAL,
        SubscribeError::GroupInUse { .. } => libc::EBUSY,
        SubscribeError::NoTimestamps => libc::EOPNOTSUPP,
        SubscribeError::GroupSettings { .. } => libc::EEXIST,
        SubscribeError::DeadLetter(_) => libc::ENOENT,
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
    // SAFETY: forwarded contract; no limit and no dead-letter topic.
    unsafe { shmq_subscribe_group_dlq(t, group, 0, std::ptr::null(), 0, out) }
}

/// Joins consumer group `group` with poison-message handling (see
/// `GroupOptions`): a message delivered `max_deliveries` times (0: no
/// limit) without being released moves to topic `dead_letter` (NULL: none),
/// created if `create` is non-zero.
#[no_mangle]
pub unsafe extern "C" fn shmq_subscribe_group_dlq(
    t: *mut shmq_topic,
    group: *const c_char,
    max_deliveries: u32,
    dead_letter: *const c_char,
    create: c_int,
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
        let mut opts = shmq_rs::GroupOptions::new();
        if max_deliveries > 0 {
            opts = opts.max_deliveries(max_deliveries);
        }
        if !dead_letter.is_null() {
            // SAFETY: a non-null `dead_letter` is a NUL-terminated string by contract.
            let Some(name) = (unsafe { str_arg(dead_letter) }) else {
                return -libc::EINVAL;
            };
            opts = opts.dead_letter_topic(name, create != 0);
        }
        // SAFETY: live topic handle.
        let topic = unsafe { &(*t).0 };
        new_subscriber(topic.subscribe_group_with(group, &opts), out)
    })
}

/// How many times the message from the last receive was delivered (a
/// consumer group's redeliveries count; 1 otherwise). -EINVAL none held.
#[no_mangle]
pub unsafe extern "C" fn shmq_msg_deliveries(s: *mut shmq_subscriber) -> i64 {
    if s.is_null() {
        return -(libc::EINVAL as i64);
    }
    // SAFETY: live subscriber handle, one thread at a time. Reads one
    // field of the handle: nothing here can panic.
    match unsafe { &(*s).0 }.held_deliveries() {
        Some(n) => n as i64,
        None => -(libc::EINVAL as i64),
    }
}

/// Moves the message from the last receive to the group's dead-letter
/// topic at once, waiting for room, and releases it. -EINVAL none held,
/// -EOPNOTSUPP no dead-letter topic (the message is put back: the next
/// receive returns it again).
#[no_mangle]
pub unsafe extern "C" fn shmq_reject(s: *mut shmq_subscriber) -> c_int {
    guard(|| {
        if s.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live subscriber handle, one thread at a time.
        match unsafe { &mut (*s).0 }.reject_raw() {
            Some(Ok(())) => 0,
            Some(Err(_)) => -libc::EOPNOTSUPP,
            None => -libc::EINVAL,
        }
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

/// Frees a subscriber and its slot (releasing a held message).
#[no_mangle]
pub unsafe extern "C" fn shmq_subscriber_close(s: *mut shmq_subscriber) {
    if !s.is_null() {
        // SAFETY: `s` came from shmq_subscribe* and is closed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(s) })));
    }
}

/// A message lent by the library, as C sees it.
fn c_msg(m: &shmq_rs::RawMessage) -> shmq_msg {
    shmq_msg {
        data: m.data.cast(),
        len: m.len,
        timestamp_ns: m.timestamp_ns,
        seq: m.seq,
        position: m.position,
        lost: m.lost,
        msg_type: m.msg_type,
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
                let msg = c_msg(&m);
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

/// Reading ahead: receives the next message like `shmq_recv`, but the
/// next receive does not release it: its data stays valid (and in the
/// ring) until `shmq_release_through` with `*ack` or a later ack. Plain and
/// durable subscribers of Block topics; -EOPNOTSUPP for group members and
/// Overwrite subscribers. Other errors as `shmq_recv`.
#[no_mangle]
pub unsafe extern "C" fn shmq_recv_ahead(
    s: *mut shmq_subscriber,
    out: *mut shmq_msg,
    ack: *mut crate::shmq_ack,
    timeout_ns: i64,
) -> c_int {
    guard(|| {
        if s.is_null() || out.is_null() || ack.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live subscriber handle, one thread at a time.
        let sub = unsafe { &mut (*s).0 };
        match sub.recv_ahead_raw(timeout(timeout_ns)) {
            Ok((m, a)) => {
                let msg = c_msg(&m);
                // SAFETY: `out` and `ack` are non-null and writable.
                unsafe {
                    out.write(msg);
                    ack.write(crate::shmq_ack { position: a.position(), next_seq: a.next_seq() });
                }
                0
            }
            Err(e) => recv_err(&e),
        }
    })
}

/// Releases every message read ahead up to and including the one `ack`
/// came with, publishing the cursor once. -EINVAL for NULL, or if that
/// message is already released or `ack` is not one this subscriber read.
#[no_mangle]
pub unsafe extern "C" fn shmq_release_through(s: *mut shmq_subscriber, ack: *const crate::shmq_ack) -> c_int {
    guard(|| {
        if s.is_null() || ack.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: non-null, readable (caller's contract).
        let a = unsafe { ack.read() };
        // SAFETY: live subscriber handle, one thread at a time.
        let sub = unsafe { &mut (*s).0 };
        if sub.release_through(shmq_rs::Ack::from_parts(a.position, a.next_seq)) {
            0
        } else {
            -libc::EINVAL
        }
    })
}

/// Receives without waiting: -EAGAIN if nothing is new.
#[no_mangle]
pub unsafe extern "C" fn shmq_try_recv(s: *mut shmq_subscriber, out: *mut shmq_msg) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { recv_with(s, out, Wait::Now) }
}

/// A descriptor for event loops (epoll, poll, libuv, asyncio): readable
/// once `shmq_subscriber_arm` returned 0 and a message may be waiting.
/// Owned by the subscriber (closed by `shmq_subscriber_close`); the same
/// every call. Errors: -EINVAL, or the errno of `eventfd`.
#[no_mangle]
pub unsafe extern "C" fn shmq_subscriber_fd(s: *mut shmq_subscriber) -> c_int {
    guard(|| {
        if s.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live subscriber handle, one thread at a time.
        match unsafe { &mut (*s).0 }.readiness_fd() {
            Ok(fd) => fd,
            Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
        }
    })
}

/// Releases the message from the last receive, clears the descriptor of
/// `shmq_subscriber_fd` and arms it: 1 if a message is waiting now
/// (receive it; nothing armed), 0 once armed. Errors as `shmq_recv`.
#[no_mangle]
pub unsafe extern "C" fn shmq_subscriber_arm(s: *mut shmq_subscriber) -> c_int {
    guard(|| {
        if s.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live subscriber handle, one thread at a time.
        match unsafe { &mut (*s).0 }.arm() {
            Ok(true) => 1,
            Ok(false) => 0,
            Err(e) => recv_err(&e),
        }
    })
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
