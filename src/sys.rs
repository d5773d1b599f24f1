//! Thin, checked wrappers over the Linux calls shmq needs: futex, the
//! monotonic clock, open-file-description locks (how a topic knows who is
//! alive: see `segment`), and process identity (for display only).

use std::sync::atomic::AtomicU32;
use std::sync::OnceLock;
use std::time::Duration;

/// `CLOCK_MONOTONIC` in nanoseconds (vDSO: no syscall).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A stable 64-bit hash of this boot (`/proc/sys/kernel/random/boot_id`),
/// 0 if unknown: a topic file seen under another boot id outlived a restart.
pub fn boot_id() -> u64 {
    // FNV-1a of the kernel's random boot id; 0 if unavailable.
    std::fs::read("/proc/sys/kernel/random/boot_id").map_or(0, |b| {
        b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| (h ^ c as u64).wrapping_mul(0x0100_0000_01b3)).max(1)
    })
}

/// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`), for display.
pub fn unix_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Sleeps while `*word == expected`, at most `timeout`. Shared (not
/// `FUTEX_PRIVATE_FLAG`), so wakes cross processes.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // Errors (EAGAIN, ETIMEDOUT, EINTR) all mean "look again", which every
    // caller does.
    // SAFETY: `word` is a valid aligned u32 the kernel only reads; `ts_ptr` is null or points to live `ts`.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, ts_ptr, 0usize, 0u32);
    }
}

/// Wakes every waiter on `word`, in any process.
pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not access
    // memory beyond looking up the futex key.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0usize, 0usize, 0u32);
    }
}

const MEMBARRIER_CMD_QUERY: libc::c_int = 0;
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

fn membarrier(cmd: libc::c_int) -> libc::c_long {
    // SAFETY: membarrier takes two integer arguments and touches no memory.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0u32, 0i32) }
}

/// Registers this process for `MEMBARRIER_CMD_GLOBAL_EXPEDITED` (once) and
/// says whether asymmetric fences are available: true when the kernel
/// supports the command and this process is registered, so other
/// processes' heavy fences reach its CPUs. The registration belongs to the
/// address space and a forked child keeps it (a test checks that), so
/// topics a child inherits keep their fences.
pub fn membarrier_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        if std::env::var_os("SHMQ_NO_MEMBARRIER").is_some() {
            return false;
        }
        let mask = membarrier(MEMBARRIER_CMD_QUERY);
        mask >= 0
            && mask as libc::c_int & MEMBARRIER_CMD_GLOBAL_EXPEDITED != 0
            && membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0
    })
}

/// The heavy half of an asymmetric fence: a full barrier on every CPU that
/// runs a registered process (and on ours). Falls back to a local `SeqCst`
/// fence if the call fails (it cannot once registration succeeded).
pub fn heavy_fence() {
    if membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0 {
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }
}

/// Pins the calling thread to CPU `cpu` (for benchmarks and latency-critical
/// processes). Returns whether the kernel accepted it.
pub fn pin_to_cpu(cpu: usize) -> bool {
    if cpu >= libc::CPU_SETSIZE as usize {
        return false;
    }
    // SAFETY: a zeroed cpu_set_t is valid and `cpu` is below CPU_SETSIZE, so CPU_SET stays inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// `fcntl` commands for open-file-description locks (Linux 3.15+; the same
/// numbers on every architecture).
const F_OFD_GETLK: libc::c_int = 36;
const F_OFD_SETLK: libc::c_int = 37;

/// An OFD lock request on the one byte at `offset` of a file.
fn one_byte(kind: libc::c_int, offset: u64) -> libc::flock {
    // SAFETY: flock is plain data; zero is a valid value of every field.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = offset.min(i64::MAX as u64) as libc::off_t;
    fl.l_len = 1;
    // l_pid must be 0 for OFD locks.
    fl
}

/// Takes an open-file-description lock (`F_OFD_SETLK`, never waits) on
/// the byte at `offset` through `fd`: a write (exclusive) lock, or with
/// `shared` a read lock. `Ok(false)` if another open file description
/// holds a conflicting lock. The kernel drops the lock when the last
/// descriptor of that open file description is closed: at the holder's
/// exit or `exec` (descriptors are `O_CLOEXEC`), never at a fork whose
/// child keeps the descriptor.
pub fn ofd_lock(fd: std::os::fd::RawFd, offset: u64, shared: bool) -> std::io::Result<bool> {
    let fl = one_byte(if shared { libc::F_RDLCK } else { libc::F_WRLCK }, offset);
    // SAFETY: `fd` is open (the caller owns it); `fl` is a valid flock the
    // kernel only reads for F_OFD_SETLK.
    if unsafe { libc::fcntl(fd, F_OFD_SETLK, &fl) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

/// Releases the lock `fd` holds on the byte at `offset`.
pub fn ofd_unlock(fd: std::os::fd::RawFd, offset: u64) {
    let fl = one_byte(libc::F_UNLCK, offset);
    // SAFETY: as in `ofd_lock`. An error leaves the lock to be dropped
    // when the descriptor closes, which every caller does next.
    unsafe { libc::fcntl(fd, F_OFD_SETLK, &fl) };
}

/// Whether an open file description other than `fd`'s holds a lock on
/// the byte at `offset` that would conflict with a write lock (any lock),
/// or with `shared` with a read lock (a write lock). Any process of any
/// user and pid namespace that has the file open can ask.
pub fn ofd_held(fd: std::os::fd::RawFd, offset: u64, shared: bool) -> std::io::Result<bool> {
    let mut fl = one_byte(if shared { libc::F_RDLCK } else { libc::F_WRLCK }, offset);
    // SAFETY: as in `ofd_lock`; F_OFD_GETLK writes the answer into `fl`.
    if unsafe { libc::fcntl(fd, F_OFD_GETLK, &mut fl) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Pids of the processes (other than this one) that have `path` mapped,
/// found by scanning `/proc/*/maps`. Processes whose maps this user cannot
/// read are not seen.
pub fn processes_mapping(path: &std::path::Path) -> Vec<u32> {
    let Ok(canon) = std::fs::canonicalize(path) else {
        return Vec::new();
    };
    let want = canon.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            continue;
        };
        // The path is the last field (it may contain spaces).
        if maps.lines().any(|l| l.strip_suffix(want.as_str()).is_some_and(|rest| rest.ends_with(' '))) {
            pids.push(pid);
        }
    }
    pids
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// What liveness rests on: a lock taken through one open file
    /// description is seen through another (of this process too), not
    /// through its own; it goes when released or when its descriptor closes.
    #[test]
    fn ofd_locks_are_seen_by_other_descriptions_only() {
        let path = std::env::temp_dir().join(format!("shmq-ofd-{}", std::process::id()));
        let open = || std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
        let (holder, tester) = (open().expect("open"), open().expect("open"));
        let byte = 1 << 49;
        assert!(!ofd_held(tester.as_raw_fd(), byte, false).expect("getlk"));
        assert!(ofd_lock(holder.as_raw_fd(), byte, false).expect("setlk"));
        assert!(ofd_held(tester.as_raw_fd(), byte, false).expect("getlk"), "another description sees it");
        assert!(!ofd_held(holder.as_raw_fd(), byte, false).expect("getlk"), "its own does not");
        assert!(!ofd_lock(tester.as_raw_fd(), byte, false).expect("setlk"), "and cannot take it");
        ofd_unlock(holder.as_raw_fd(), byte);
        assert!(!ofd_held(tester.as_raw_fd(), byte, false).expect("getlk"));
        // Shared locks: many holders; a write-lock test sees them all.
        assert!(ofd_lock(holder.as_raw_fd(), byte + 1, true).expect("setlk"));
        assert!(ofd_lock(tester.as_raw_fd(), byte + 1, true).expect("setlk"));
        assert!(ofd_held(tester.as_raw_fd(), byte + 1, false).expect("getlk"));
        drop(holder); // closing drops its locks
        assert!(!ofd_held(tester.as_raw_fd(), byte + 1, false).expect("getlk"), "only its own shared lock is left");
        let _ = std::fs::remove_file(&path);
    }

    /// A forked child stays registered for membarrier, as the light
    /// fences of the topics it inherits need (`membarrier_ready`).
    #[test]
    fn forked_child_is_registered_for_membarrier() {
        const GET_REGISTRATIONS: libc::c_int = 1 << 9; // Linux 6.3
        if !membarrier_ready() || membarrier(GET_REGISTRATIONS) < 0 {
            eprintln!("skipped: no membarrier, or a kernel that cannot report registrations");
            return;
        }
        assert_ne!(membarrier(GET_REGISTRATIONS) as libc::c_int & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0);
        // SAFETY: the child makes one syscall and `_exit`s.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork failed");
        if child == 0 {
            let ok = membarrier(GET_REGISTRATIONS) as libc::c_int & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED != 0;
            // SAFETY: ends the forked child without running exit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child is not registered");
    }
}
