//! The system calls the waker thread makes: `futex_waitv` (Linux 5.16+),
//! which waits on up to 128 futex words at once, with a one-word
//! `FUTEX_WAIT` for older kernels; a private futex for the thread's own
//! control word; and the `eventfd` the C API hands to event loops.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;

/// The kernel's limit on the words of one `futex_waitv` call.
pub const WAITV_MAX: usize = 128;

/// `struct futex_waitv` (include/uapi/linux/futex.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WaitV {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

const FUTEX_32: u32 = 2;
const FUTEX_PRIVATE: u32 = 128;
/// `__NR_futex_waitv`: the same number on every architecture (it was added
/// after the syscall tables were unified).
const SYS_FUTEX_WAITV: libc::c_long = 449;

impl WaitV {
    /// Waits while `*word == val`. `shared`: the word is in a mapping other
    /// processes wake (a topic); else it is this process's own.
    pub fn new(word: &AtomicU32, val: u32, shared: bool) -> WaitV {
        let flags = if shared { FUTEX_32 } else { FUTEX_32 | FUTEX_PRIVATE };
        WaitV { val: val as u64, uaddr: word.as_ptr() as u64, flags, reserved: 0 }
    }
}

/// What a wait on many words can do on this kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// `futex_waitv`: many words per call.
    Many,
    /// Only `FUTEX_WAIT`: one word per call (kernels before 5.16).
    One,
}

/// Whether the kernel has `futex_waitv` (asked once per process).
pub fn support() -> Support {
    static S: std::sync::OnceLock<Support> = std::sync::OnceLock::new();
    *S.get_or_init(|| {
        // An empty call: EINVAL where the syscall exists, ENOSYS where not.
        // SAFETY: a null list of zero entries; the kernel reads nothing.
        let r = unsafe {
            libc::syscall(
                SYS_FUTEX_WAITV,
                std::ptr::null::<WaitV>(),
                0u32,
                0u32,
                std::ptr::null::<libc::timespec>(),
                libc::CLOCK_MONOTONIC,
            )
        };
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            Support::One
        } else {
            Support::Many
        }
    })
}

/// Sleeps until one of `list`'s words is woken or differs from its value,
/// or `CLOCK_MONOTONIC` reaches `deadline_ns`. Every outcome (woken,
/// EAGAIN, ETIMEDOUT, EINTR) means "look at the words", which the caller
/// does; so nothing is returned.
pub fn wait_many(list: &[WaitV], deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    let n = list.len().min(WAITV_MAX) as u32;
    // SAFETY: `list` holds `n` valid entries whose words live in mappings
    // the caller keeps alive for the call; `ts` is a live timespec.
    unsafe {
        libc::syscall(SYS_FUTEX_WAITV, list.as_ptr(), n, 0u32, &ts as *const libc::timespec, libc::CLOCK_MONOTONIC);
    }
}

/// Sleeps while the one word `w` names holds its value, at most `timeout`
/// (`FUTEX_WAIT`, for kernels without `futex_waitv`).
pub fn wait_one(w: &WaitV, timeout: std::time::Duration) {
    let op = if w.flags & FUTEX_PRIVATE != 0 { libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG } else { libc::FUTEX_WAIT };
    let ts =
        libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
    // SAFETY: `w.uaddr` is a live, aligned u32 (the caller keeps its
    // mapping alive for the call); `ts` is a live timespec.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.uaddr as usize as *const u32,
            op,
            w.val as u32,
            &ts as *const libc::timespec,
            0usize,
            0u32,
        );
    }
}

/// Wakes the waker thread sleeping on its own control word.
pub fn wake_private(word: &AtomicU32) {
    // SAFETY: a valid, aligned u32 of this process; FUTEX_WAKE reads nothing.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
            0usize,
            0usize,
            0u32,
        );
    }
}

/// A non-blocking, close-on-exec `eventfd` with count 0.
pub fn eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: eventfd takes two integers and returns a new descriptor.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `fd` readable (adds 1 to its count). A full count (never, in
/// practice) leaves it readable anyway.
pub fn signal(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to a descriptor we own.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// Empties `fd`'s count (it stops being readable).
pub fn drain(fd: &OwnedFd) {
    let mut n: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64; non-blocking, so an empty
    // count returns EAGAIN at once.
    unsafe { libc::read(fd.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
}
