//! What both sides of a measurement share: the shared-memory file, the
//! bare ring of frames, the byte patterns, sockets, pipes and POSIX message
//! queues, and the parent's handle on its child process.

use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::{Kind, Mode};

// ------------------------------------------------------------ shared memory

/// A shared-memory file mapped by both processes.
pub(super) struct Shm {
    map: memmap2::MmapRaw,
}

impl Shm {
    pub(super) fn create(path: &Path, len: usize) -> std::io::Result<Shm> {
        let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        f.set_len(len as u64)?;
        Ok(Shm { map: memmap2::MmapOptions::new().populate().map_raw(&f)? })
    }
    pub(super) fn open(path: &Path) -> std::io::Result<Shm> {
        let f = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Shm { map: memmap2::MmapOptions::new().populate().map_raw(&f)? })
    }
    pub(super) fn u64(&self, off: usize) -> &AtomicU64 {
        assert!(off + 8 <= self.map.len() && off % 8 == 0);
        // SAFETY: in bounds and aligned (checked); the mapping outlives the
        // reference; both processes access the word only atomically.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(off).cast()) }
    }
    pub(super) fn u32(&self, off: usize) -> &AtomicU32 {
        assert!(off + 4 <= self.map.len() && off % 4 == 0);
        // SAFETY: as in `u64`.
        unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().add(off).cast()) }
    }
    /// The bytes at `off..off + len`.
    ///
    /// # Safety
    /// The caller owns the range (the bare ring's protocol hands each slot
    /// to one side at a time).
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn bytes(&self, off: usize, len: usize) -> &mut [u8] {
        assert!(off + len <= self.map.len());
        // SAFETY: in bounds (checked); exclusivity is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(off), len) }
    }
}

/// The floor for a framed ring: shmq's frame geometry (an 8-byte commit
/// stamp before the payload, frames padded to 32 bytes, so a 64-byte
/// message spans two cache lines) and its reader's prefetch of the next
/// line while waiting, with nothing else: no header words, no claims, no
/// cursors (a ping-pong has one message in flight). Frames never wrap.
pub(super) struct Frames<'a> {
    shm: &'a Shm,
    base: usize,
    frame: usize,
    slots: u64,
}

impl<'a> Frames<'a> {
    /// About as many bytes per ring as the shmq topics of the latency runs.
    const BYTES: usize = 1 << 20;
    /// Ring `which` (0: ping, 1: pong) for `size`-byte messages.
    pub(super) fn new(shm: &'a Shm, which: usize, size: usize) -> Frames<'a> {
        let frame = (8 + size + 31) & !31;
        let slots = (Self::BYTES / frame).max(1) as u64;
        Frames { shm, base: 4096 + which * Self::ring_len(size), frame, slots }
    }
    /// Bytes of one ring: whole frames only.
    pub(super) fn ring_len(size: usize) -> usize {
        let frame = (8 + size + 31) & !31;
        (Self::BYTES / frame).max(1) * frame
    }
    /// Length of the shared file holding both rings.
    pub(super) fn shm_len(size: usize) -> usize {
        4096 + 2 * Self::ring_len(size)
    }
    pub(super) fn off(&self, k: u64) -> usize {
        self.base + (k % self.slots) as usize * self.frame
    }
    pub(super) fn send(&self, k: u64, data: &[u8]) {
        let off = self.off(k);
        // SAFETY: the frame of message k is ours until its stamp is stored
        // (one message in flight per direction).
        unsafe { self.shm.bytes(off + 8, data.len()) }.copy_from_slice(data);
        // Release: publishes the payload to the reader's Acquire load.
        self.shm.u64(off).store(k + 1, Ordering::Release);
    }
    pub(super) fn recv(&self, k: u64, out: &mut [u8]) {
        let off = self.off(k);
        // Acquire: pairs with the writer's Release stamp store.
        while self.shm.u64(off).load(Ordering::Acquire) != k + 1 {
            prefetch(self.shm, off + 64);
            std::hint::spin_loop();
        }
        // SAFETY: committed (stamp seen) and not rewritten until we reply.
        out.copy_from_slice(unsafe { self.shm.bytes(off + 8, out.len()) });
    }
}

/// A read prefetch of the cache line at `off` (a hint; never faults).
pub(super) fn prefetch(shm: &Shm, off: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and changes no memory.
    unsafe {
        std::arch::asm!("prefetcht0 [{}]", in(reg) shm.map.as_ptr().wrapping_add(off), options(nostack, readonly, preserves_flags))
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (shm, off);
}

// ------------------------------------------------------------ helpers

/// Fills `buf` with message `k`'s pattern (one word per 8 bytes).
pub(super) fn fill(k: u64, buf: &mut [u8]) {
    let seed = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for (i, c) in buf.chunks_exact_mut(8).enumerate() {
        c.copy_from_slice(&(seed ^ i as u64).to_le_bytes());
    }
}

/// Checks every word of message `k`.
pub(super) fn verify(k: u64, buf: &[u8]) -> bool {
    let seed = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut bad = 0u64;
    for (i, c) in buf.chunks_exact(8).enumerate() {
        bad |= u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) ^ (seed ^ i as u64);
    }
    bad == 0
}

pub(super) fn futex_wait(w: &AtomicU32, v: u32) {
    shmq::__private::sys::futex_wait(w, v, Some(Duration::from_millis(100)));
}

pub(super) fn percentiles(mut rtt: Vec<u64>) -> [u64; 5] {
    rtt.sort_unstable();
    let q = |f: f64| rtt[((rtt.len() as f64 * f) as usize).min(rtt.len() - 1)] / 2;
    [q(0.5), q(0.9), q(0.99), q(0.999), rtt[rtt.len() - 1] / 2]
}

pub(super) fn socketpair() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors. Not CLOEXEC: the child inherits one end.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

pub(super) fn pipe() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // Larger pipe buffers, as a throughput-minded user would set.
    // SAFETY: F_SETPIPE_SZ on our own pipe; failure is harmless.
    unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 1 << 20) };
    Ok((fds[0], fds[1]))
}

pub(super) fn close(fd: RawFd) {
    // SAFETY: closes a descriptor this process owns and no longer uses.
    unsafe { libc::close(fd) };
}

/// A stream over an inherited descriptor.
pub(super) fn stream(fd: RawFd) -> std::fs::File {
    // SAFETY: `fd` is an open descriptor handed to us, owned from here on.
    unsafe { std::fs::File::from_raw_fd(fd) }
}

pub(super) struct Mq(libc::mqd_t, std::ffi::CString);

impl Mq {
    pub(super) fn open(name: &str, size: usize, create: bool) -> std::io::Result<Mq> {
        let c = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
        // SAFETY: zeroed mq_attr is valid; fields set below.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        attr.mq_maxmsg = 10;
        attr.mq_msgsize = size as libc::c_long;
        let flags = libc::O_RDWR | if create { libc::O_CREAT } else { 0 };
        // SAFETY: valid name and attributes.
        let q = unsafe { libc::mq_open(c.as_ptr(), flags, 0o600 as libc::mode_t, &attr as *const libc::mq_attr) };
        if q == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mq(q, c))
    }
    pub(super) fn send(&self, buf: &[u8]) -> std::io::Result<()> {
        // SAFETY: `buf` is valid for its length.
        if unsafe { libc::mq_send(self.0, buf.as_ptr().cast(), buf.len(), 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    pub(super) fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: `buf` is valid and writable for its length.
        let n = unsafe { libc::mq_receive(self.0, buf.as_mut_ptr().cast(), buf.len(), std::ptr::null_mut()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }
    pub(super) fn unlink(&self) {
        // SAFETY: valid name.
        unsafe { libc::mq_unlink(self.1.as_ptr()) };
    }
}

impl Drop for Mq {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this value owns.
        unsafe { libc::mq_close(self.0) };
    }
}

/// Whether POSIX message queues of `size`-byte messages work here: within
/// the kernel's size limit, and available at all (a container may lack
/// `/dev/mqueue`). The bench leaves them out otherwise.
pub(super) fn mq_usable(size: usize) -> bool {
    static PROBE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    size <= mq_max()
        && *PROBE.get_or_init(|| match Mq::open(&format!("/shmq-bench-probe-{}", std::process::id()), 8, true) {
            Ok(q) => {
                q.unlink();
                true
            }
            Err(e) => {
                eprintln!("note: POSIX message queues are not available here ({e}); they are left out");
                false
            }
        })
}

pub(super) fn mq_max() -> usize {
    std::fs::read_to_string("/proc/sys/fs/mqueue/msgsize_max").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(8192)
}

/// What a busy-polling consumer does when it finds nothing: a short burst
/// of `pause`s, so it does not pull the producer's next cache line away
/// between the producer's stores. The same for every busy-poll consumer here.
/// `SHMQ_BENCH_BACKOFF` sets how many `pause`s (default 64), to see how
/// much a consumer that polls less often disturbs its producer less.
pub(super) fn idle_backoff() {
    static N: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let n = *N.get_or_init(|| std::env::var("SHMQ_BENCH_BACKOFF").ok().and_then(|v| v.parse().ok()).unwrap_or(64));
    for _ in 0..n {
        std::hint::spin_loop();
    }
}

pub(super) fn ready() {
    println!("READY");
    let _ = std::io::stdout().flush();
}

/// Where the bare ring's slots start in its shared-memory file.
pub(super) const BARE_DATA: usize = 4096;
pub(super) const RING_BYTES: usize = 8 << 20;

pub(super) fn bare_slots(size: usize) -> u64 {
    (RING_BYTES / size).max(4) as u64
}

// ------------------------------------------------------------ the parent

pub(super) struct Peer {
    pub(super) child: Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Peer {
    /// Starts the child side of a measurement, pinned to `cpu`.
    pub(super) fn start(
        cpu: usize,
        kind: Kind,
        mode: Mode,
        size: usize,
        count: u64,
        dir: &Path,
        fds: (RawFd, RawFd),
    ) -> Result<Peer, String> {
        let mut child = Command::new(std::env::current_exe().map_err(|x| x.to_string())?)
            .arg("bench-child")
            .args([kind.name(), mode.name(), &size.to_string(), &count.to_string()])
            .arg(dir)
            .args([fds.0.to_string(), fds.1.to_string(), cpu.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|x| x.to_string())?;
        let out = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut p = Peer { child, out };
        let l = p.line();
        if l != "READY" {
            return Err(format!("{} child did not start: {l:?}", kind.name()));
        }
        Ok(p)
    }
    pub(super) fn line(&mut self) -> String {
        let mut l = String::new();
        let _ = std::io::BufRead::read_line(&mut self.out, &mut l);
        l.trim().to_string()
    }
    pub(super) fn finish(mut self) -> Result<String, String> {
        let l = self.line();
        let st = self.child.wait().map_err(|x| x.to_string())?;
        if !st.success() {
            return Err(format!("child failed: {st}"));
        }
        Ok(l)
    }
}
