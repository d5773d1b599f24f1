//! `shmq bench`: shmq against the hardware's limits and the usual
//! alternatives, measured side by side in one run, one pair of processes at
//! a time, pinned to two CPUs.
//!
//! Latency is a round trip (reported one-way, i.e. halved) between a
//! pinger on CPU A and a ponger on CPU B; the ponger reads every byte of the
//! ping and sends it back. Throughput is one producer and one consumer; the
//! consumer checks every byte of every message against the pattern the
//! producer wrote. The baselines:
//! - `raw`: one cache line each way, spin-waited: the latency floor;
//! - `futex`: a shared word each way, every wait a futex sleep: the floor
//!   for a blocking wake-up;
//! - `bare ring`: a fixed-slot SPSC ring in shared memory with cached
//!   indices, no headers, no features: the throughput ceiling;
//! - `unix socket`, `pipe`, `posix mq`: what people use today.
//!
//! The child side is this binary again (`shmq bench-child`, hidden).

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::json::J;
use shmq::{Options, RecvError, Topic};

/// What to measure, where, and how long.
pub struct Plan {
    pub quick: bool,
    pub cpus: (usize, usize),
    /// Parent of the bench's own topic directory. A tmpfs (the default
    /// `/dev/shm/shmq`): on a disk-backed directory the kernel's write-back
    /// makes pages fault again, and the percentiles measure the file system.
    pub dir: PathBuf,
    /// Sections to run (`latency`, `throughput`, `fanout`); empty: all.
    pub only: Vec<String>,
    /// Message sizes to run; empty: the default sizes of each section.
    pub sizes: Vec<usize>,
    /// Each measurement is repeated this many times (interleaved with the
    /// others, so a noisy neighbour hits them alike); the median is kept.
    pub repeat: usize,
    /// Also write the JSON report here (with the tables on stdout).
    pub json_out: Option<PathBuf>,
}

impl Plan {
    fn rounds(&self, size: usize) -> u64 {
        let base = if self.quick { 20_000 } else { 200_000 };
        if size > 4096 {
            base / 20
        } else {
            base
        }
    }
    fn messages(&self, size: usize) -> u64 {
        let bytes: u64 = if self.quick { 128 << 20 } else { 1 << 30 };
        (bytes / size as u64).clamp(64, 4_000_000)
    }
    fn runs(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
    fn sizes(&self, defaults: &[usize]) -> Vec<usize> {
        if self.sizes.is_empty() {
            defaults.to_vec()
        } else {
            self.sizes.clone()
        }
    }
}

// ------------------------------------------------------------ shared memory

/// A shared-memory file mapped by both processes.
struct Shm {
    map: memmap2::MmapRaw,
}

impl Shm {
    fn create(path: &Path, len: usize) -> std::io::Result<Shm> {
        let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        f.set_len(len as u64)?;
        Ok(Shm { map: memmap2::MmapOptions::new().populate().map_raw(&f)? })
    }
    fn open(path: &Path) -> std::io::Result<Shm> {
        let f = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Shm { map: memmap2::MmapOptions::new().populate().map_raw(&f)? })
    }
    fn u64(&self, off: usize) -> &AtomicU64 {
        assert!(off + 8 <= self.map.len() && off % 8 == 0);
        // SAFETY: in bounds and aligned (checked); the mapping outlives the
        // reference; both processes access the word only atomically.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(off).cast()) }
    }
    fn u32(&self, off: usize) -> &AtomicU32 {
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
    unsafe fn bytes(&self, off: usize, len: usize) -> &mut [u8] {
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
struct Frames<'a> {
    shm: &'a Shm,
    base: usize,
    frame: usize,
    slots: u64,
}

impl<'a> Frames<'a> {
    /// About as many bytes per ring as the shmq topics of the latency runs.
    const BYTES: usize = 1 << 20;
    /// Ring `which` (0: ping, 1: pong) for `size`-byte messages.
    fn new(shm: &'a Shm, which: usize, size: usize) -> Frames<'a> {
        let frame = (8 + size + 31) & !31;
        let slots = (Self::BYTES / frame).max(1) as u64;
        Frames { shm, base: 4096 + which * Self::ring_len(size), frame, slots }
    }
    /// Bytes of one ring: whole frames only.
    fn ring_len(size: usize) -> usize {
        let frame = (8 + size + 31) & !31;
        (Self::BYTES / frame).max(1) * frame
    }
    /// Length of the shared file holding both rings.
    fn shm_len(size: usize) -> usize {
        4096 + 2 * Self::ring_len(size)
    }
    fn off(&self, k: u64) -> usize {
        self.base + (k % self.slots) as usize * self.frame
    }
    fn send(&self, k: u64, data: &[u8]) {
        let off = self.off(k);
        // SAFETY: the frame of message k is ours until its stamp is stored
        // (one message in flight per direction).
        unsafe { self.shm.bytes(off + 8, data.len()) }.copy_from_slice(data);
        // Release: publishes the payload to the reader's Acquire load.
        self.shm.u64(off).store(k + 1, Ordering::Release);
    }
    fn recv(&self, k: u64, out: &mut [u8]) {
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
fn prefetch(shm: &Shm, off: usize) {
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
fn fill(k: u64, buf: &mut [u8]) {
    let seed = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for (i, c) in buf.chunks_exact_mut(8).enumerate() {
        c.copy_from_slice(&(seed ^ i as u64).to_le_bytes());
    }
}

/// Checks every word of message `k`.
fn verify(k: u64, buf: &[u8]) -> bool {
    let seed = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut bad = 0u64;
    for (i, c) in buf.chunks_exact(8).enumerate() {
        bad |= u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) ^ (seed ^ i as u64);
    }
    bad == 0
}

fn futex_wait(w: &AtomicU32, v: u32) {
    shmq::__private::sys::futex_wait(w, v, Some(Duration::from_millis(100)));
}

fn percentiles(mut rtt: Vec<u64>) -> [u64; 5] {
    rtt.sort_unstable();
    let q = |f: f64| rtt[((rtt.len() as f64 * f) as usize).min(rtt.len() - 1)] / 2;
    [q(0.5), q(0.9), q(0.99), q(0.999), rtt[rtt.len() - 1] / 2]
}

fn socketpair() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors. Not CLOEXEC: the child inherits one end.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

fn pipe() -> std::io::Result<(RawFd, RawFd)> {
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

fn close(fd: RawFd) {
    // SAFETY: closes a descriptor this process owns and no longer uses.
    unsafe { libc::close(fd) };
}

/// A stream over an inherited descriptor.
fn stream(fd: RawFd) -> std::fs::File {
    // SAFETY: `fd` is an open descriptor handed to us, owned from here on.
    unsafe { std::fs::File::from_raw_fd(fd) }
}

struct Mq(libc::mqd_t, std::ffi::CString);

impl Mq {
    fn open(name: &str, size: usize, create: bool) -> std::io::Result<Mq> {
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
    fn send(&self, buf: &[u8]) -> std::io::Result<()> {
        // SAFETY: `buf` is valid for its length.
        if unsafe { libc::mq_send(self.0, buf.as_ptr().cast(), buf.len(), 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: `buf` is valid and writable for its length.
        let n = unsafe { libc::mq_receive(self.0, buf.as_mut_ptr().cast(), buf.len(), std::ptr::null_mut()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }
    fn unlink(&self) {
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
fn mq_usable(size: usize) -> bool {
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

fn mq_max() -> usize {
    std::fs::read_to_string("/proc/sys/fs/mqueue/msgsize_max").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(8192)
}

// ------------------------------------------------------------ the child

/// Runs the child side of one measurement: `args` = kind, mode (lat|tput),
/// size, count, dir, fd-a, fd-b, cpu.
pub fn child(args: &[String]) -> Result<(), String> {
    let kind = args.first().ok_or("kind")?.as_str();
    let mode = args.get(1).ok_or("mode")?.as_str();
    let num = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok()).ok_or(format!("argument {i}"));
    let size = num(2)? as usize;
    let count = num(3)?;
    let dir = PathBuf::from(args.get(4).ok_or("dir")?);
    let fda = num(5)? as RawFd;
    let fdb = num(6)? as RawFd;
    shmq::__private::sys::pin_to_cpu(num(7)? as usize);
    let e = |x: std::io::Error| x.to_string();
    let mut buf = vec![0u8; size.max(8)];
    match (kind, mode) {
        ("raw", "lat") => {
            let shm = Shm::open(&dir.join("shm")).map_err(e)?;
            ready();
            let (a, b) = (shm.u64(0), shm.u64(128));
            for i in 1..=count {
                while a.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                b.store(i, Ordering::Release);
            }
        }
        ("frames", "lat") => {
            let shm = Shm::open(&dir.join("shm")).map_err(e)?;
            ready();
            let (ping, pong) = (Frames::new(&shm, 0, size), Frames::new(&shm, 1, size));
            for k in 0..count {
                ping.recv(k, &mut buf[..size]);
                pong.send(k, &buf[..size]);
            }
        }
        ("futex", "lat") => {
            let shm = Shm::open(&dir.join("shm")).map_err(e)?;
            ready();
            let (a, b) = (shm.u32(0), shm.u32(128));
            for i in 1..=count as u32 {
                loop {
                    let v = a.load(Ordering::Acquire);
                    if v == i {
                        break;
                    }
                    futex_wait(a, v);
                }
                b.store(i, Ordering::Release);
                shmq::__private::sys::futex_wake(b);
            }
        }
        ("shmq" | "shmq-ts" | "shmq-block", "lat") => {
            let opts = Options::new().dir(&dir);
            let ping = Topic::open("ping", &opts).map_err(|x| x.to_string())?;
            let pong = Topic::open("pong", &opts).map_err(|x| x.to_string())?;
            let mut sub = ping.subscribe().map_err(|x| x.to_string())?;
            let mut p = pong.producer().map_err(|x| x.to_string())?;
            ready();
            let block = kind == "shmq-block";
            let mut done = 0;
            while done < count {
                let r = if block { sub.recv() } else { sub.try_recv() };
                match r {
                    Ok(m) => {
                        // Reply first, release the ping after: the order a
                        // `p.publish(&sub.recv()?)` echo loop has.
                        let mut g = p.reserve(m.len()).map_err(|x| x.to_string())?;
                        g.copy_from_slice(&m);
                        g.commit(size).map_err(|x| x.to_string())?;
                        drop(m);
                        done += 1;
                    }
                    Err(RecvError::Empty) => std::hint::spin_loop(),
                    Err(x) => return Err(x.to_string()),
                }
            }
        }
        ("unix" | "pipe", "lat") => {
            let mut rd = stream(fda);
            // A socket is one descriptor for both directions.
            let mut wr = if fda == fdb { rd.try_clone().map_err(e)? } else { stream(fdb) };
            ready();
            for _ in 0..count {
                rd.read_exact(&mut buf[..size]).map_err(e)?;
                wr.write_all(&buf[..size]).map_err(e)?;
            }
        }
        ("mq", "lat") => {
            let a = Mq::open(&format!("/shmq-bench-{fda}-a"), size, false).map_err(e)?;
            let b = Mq::open(&format!("/shmq-bench-{fda}-b"), size, false).map_err(e)?;
            ready();
            for _ in 0..count {
                let n = a.recv(&mut buf).map_err(e)?;
                b.send(&buf[..n]).map_err(e)?;
            }
        }
        (_, "tput") => return consume(kind, size, count, &dir, fda, &mut buf),
        _ => return Err(format!("unknown child {kind} {mode}")),
    }
    Ok(())
}

/// What a busy-polling consumer does when it finds nothing: a short burst
/// of `pause`s, so it does not pull the producer's next cache line away
/// between the producer's stores. The same for every busy-poll consumer here.
/// `SHMQ_BENCH_BACKOFF` sets how many `pause`s (default 64), to see how
/// much a consumer that polls less often disturbs its producer less.
fn idle_backoff() {
    static N: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let n = *N.get_or_init(|| std::env::var("SHMQ_BENCH_BACKOFF").ok().and_then(|v| v.parse().ok()).unwrap_or(64));
    for _ in 0..n {
        std::hint::spin_loop();
    }
}

fn ready() {
    println!("READY");
    let _ = std::io::stdout().flush();
}

/// Throughput consumer: receives `count` messages of `size` bytes and
/// checks every byte; prints `DONE bad=N`.
fn consume(kind: &str, size: usize, count: u64, dir: &Path, fd: RawFd, buf: &mut [u8]) -> Result<(), String> {
    let e = |x: std::io::Error| x.to_string();
    let mut bad = 0u64;
    match kind {
        "bare" => {
            let shm = Shm::open(&dir.join("shm")).map_err(e)?;
            ready();
            let slots = bare_slots(size);
            let (head, tail) = (shm.u64(0), shm.u64(128));
            let mut cached_head = 0u64;
            for k in 0..count {
                while cached_head <= k {
                    // Acquire: pairs with the producer's Release head store.
                    cached_head = head.load(Ordering::Acquire);
                    if cached_head <= k {
                        idle_backoff();
                    }
                }
                // SAFETY: slot k is published (head > k) and not reused
                // until our tail passes it.
                let slot = unsafe { shm.bytes(BARE_DATA + (k % slots) as usize * size, size) };
                bad += !verify(k, slot) as u64;
                // Release: our reads happen before the producer reuses the slot.
                tail.store(k + 1, Ordering::Release);
            }
        }
        "shmq" => {
            let topic = Topic::open("tput", &Options::new().dir(dir)).map_err(|x| x.to_string())?;
            let mut sub = topic.subscribe().map_err(|x| x.to_string())?;
            ready();
            let mut k = 0u64;
            while k < count {
                let n = sub
                    .drain(1024, |m| {
                        bad += !(m.len() == size && verify(k, m)) as u64;
                        k += 1;
                    })
                    .map_err(|x| x.to_string())?;
                if n == 0 {
                    idle_backoff();
                }
            }
        }
        "unix" | "pipe" => {
            let mut rd = stream(fd);
            ready();
            for k in 0..count {
                rd.read_exact(&mut buf[..size]).map_err(e)?;
                bad += !verify(k, &buf[..size]) as u64;
            }
        }
        "mq" => {
            let q = Mq::open(&format!("/shmq-bench-{fd}-t"), size, false).map_err(e)?;
            ready();
            for k in 0..count {
                let n = q.recv(buf).map_err(e)?;
                bad += !(n == size && verify(k, &buf[..n])) as u64;
            }
        }
        other => return Err(format!("unknown throughput kind {other}")),
    }
    println!("DONE bad={bad}");
    Ok(())
}

const BARE_DATA: usize = 4096;
const RING_BYTES: usize = 8 << 20;

fn bare_slots(size: usize) -> u64 {
    (RING_BYTES / size).max(4) as u64
}

// ------------------------------------------------------------ the parent

struct Peer {
    child: Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Peer {
    /// Starts the child side of a measurement, pinned to `cpu`.
    fn start(
        cpu: usize,
        kind: &str,
        mode: &str,
        size: usize,
        count: u64,
        dir: &Path,
        fds: (RawFd, RawFd),
    ) -> Result<Peer, String> {
        let mut child = Command::new(std::env::current_exe().map_err(|x| x.to_string())?)
            .arg("bench-child")
            .args([kind, mode, &size.to_string(), &count.to_string()])
            .arg(dir)
            .args([fds.0.to_string(), fds.1.to_string(), cpu.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|x| x.to_string())?;
        let out = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut p = Peer { child, out };
        let l = p.line();
        if l != "READY" {
            return Err(format!("{kind} child did not start: {l:?}"));
        }
        Ok(p)
    }
    fn line(&mut self) -> String {
        let mut l = String::new();
        let _ = std::io::BufRead::read_line(&mut self.out, &mut l);
        l.trim().to_string()
    }
    fn finish(mut self) -> Result<String, String> {
        let l = self.line();
        let st = self.child.wait().map_err(|x| x.to_string())?;
        if !st.success() {
            return Err(format!("child failed: {st}"));
        }
        Ok(l)
    }
}

/// One latency measurement: one-way p50, p90, p99, p99.9, max in ns.
fn latency(plan: &Plan, kind: &str, size: usize, dir: &Path) -> Result<Option<[u64; 5]>, String> {
    let rounds = plan.rounds(size);
    let e = |x: std::io::Error| x.to_string();
    let mut rtt = Vec::with_capacity(rounds as usize);
    let mut buf = vec![0u8; size.max(8)];
    match kind {
        "frames" => {
            let shm = Shm::create(&dir.join("shm"), Frames::shm_len(size)).map_err(e)?;
            let peer = Peer::start(plan.cpus.1, kind, "lat", size, rounds, dir, (0, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            let (ping, pong) = (Frames::new(&shm, 0, size), Frames::new(&shm, 1, size));
            let mut back = vec![0u8; size];
            for k in 0..rounds {
                fill(k, &mut buf[..size]);
                let t = Instant::now();
                ping.send(k, &buf[..size]);
                pong.recv(k, &mut back);
                rtt.push(t.elapsed().as_nanos() as u64);
                if !verify(k, &back) {
                    return Err(format!("frames: corrupt pong {k}"));
                }
            }
            peer.finish()?;
        }
        "raw" | "futex" => {
            let shm = Shm::create(&dir.join("shm"), 4096).map_err(e)?;
            let peer = Peer::start(plan.cpus.1, kind, "lat", size, rounds, dir, (0, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            if kind == "raw" {
                let (a, b) = (shm.u64(0), shm.u64(128));
                for i in 1..=rounds {
                    let t = Instant::now();
                    a.store(i, Ordering::Release);
                    while b.load(Ordering::Acquire) != i {
                        std::hint::spin_loop();
                    }
                    rtt.push(t.elapsed().as_nanos() as u64);
                }
            } else {
                let (a, b) = (shm.u32(0), shm.u32(128));
                for i in 1..=rounds as u32 {
                    let t = Instant::now();
                    a.store(i, Ordering::Release);
                    shmq::__private::sys::futex_wake(a);
                    loop {
                        let v = b.load(Ordering::Acquire);
                        if v == i {
                            break;
                        }
                        futex_wait(b, v);
                    }
                    rtt.push(t.elapsed().as_nanos() as u64);
                }
            }
            peer.finish()?;
        }
        "shmq" | "shmq-ts" | "shmq-block" => {
            let opts = Options::new()
                .dir(dir)
                .capacity((1u64 << 20).max(4 * size as u64).next_power_of_two())
                .max_message((64 << 10).max(size as u32))
                .timestamps(kind == "shmq-ts");
            let ping = Topic::create("ping", &opts).map_err(|x| x.to_string())?;
            let pong = Topic::create("pong", &opts).map_err(|x| x.to_string())?;
            let mut sub = pong.subscribe().map_err(|x| x.to_string())?;
            let peer = Peer::start(plan.cpus.1, kind, "lat", size, rounds, dir, (0, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            let mut p = ping.producer().map_err(|x| x.to_string())?;
            let block = kind == "shmq-block";
            for i in 0..rounds {
                fill(i, &mut buf[..size]);
                let t = Instant::now();
                p.publish(&buf[..size]).map_err(|x| x.to_string())?;
                loop {
                    let r = if block { sub.recv() } else { sub.try_recv() };
                    match r {
                        Ok(m) => {
                            if !verify(i, &m) {
                                return Err(format!("{kind}: corrupt pong {i}"));
                            }
                            break;
                        }
                        Err(RecvError::Empty) => std::hint::spin_loop(),
                        Err(x) => return Err(x.to_string()),
                    }
                }
                rtt.push(t.elapsed().as_nanos() as u64);
            }
            peer.finish()?;
            drop((sub, p, ping, pong));
            let _ = std::fs::remove_file(dir.join("ping"));
            let _ = std::fs::remove_file(dir.join("pong"));
        }
        "unix" | "pipe" => {
            let ((my_rd, their_wr), (their_rd, my_wr)) = if kind == "unix" {
                let (a, b) = socketpair().map_err(e)?;
                ((a, b), (b, a))
            } else {
                (pipe().map_err(e)?, pipe().map_err(e)?)
            };
            let peer = Peer::start(plan.cpus.1, kind, "lat", size, rounds, dir, (their_rd, their_wr))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            if kind == "pipe" {
                close(their_rd);
                close(their_wr);
            } else {
                close(their_wr); // == my_wr's peer end; the pair is (my_rd=a, b) with the child on b
            }
            let (mut rd, mut wr) = if kind == "unix" {
                let f = stream(my_rd);
                let g = f.try_clone().map_err(e)?;
                (f, g)
            } else {
                (stream(my_rd), stream(my_wr))
            };
            for i in 0..rounds {
                fill(i, &mut buf[..size]);
                let t = Instant::now();
                wr.write_all(&buf[..size]).map_err(e)?;
                rd.read_exact(&mut buf[..size]).map_err(e)?;
                rtt.push(t.elapsed().as_nanos() as u64);
                if !verify(i, &buf[..size]) {
                    return Err(format!("{kind}: corrupt pong {i}"));
                }
            }
            drop((rd, wr));
            peer.finish()?;
        }
        "mq" => {
            if !mq_usable(size) {
                return Ok(None);
            }
            let tag = std::process::id() as RawFd;
            let a = Mq::open(&format!("/shmq-bench-{tag}-a"), size, true).map_err(e)?;
            let b = Mq::open(&format!("/shmq-bench-{tag}-b"), size, true).map_err(e)?;
            let peer = Peer::start(plan.cpus.1, kind, "lat", size, rounds, dir, (tag, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            for i in 0..rounds {
                fill(i, &mut buf[..size]);
                let t = Instant::now();
                a.send(&buf[..size]).map_err(e)?;
                let n = b.recv(&mut buf).map_err(e)?;
                rtt.push(t.elapsed().as_nanos() as u64);
                if n != size || !verify(i, &buf[..size]) {
                    return Err("mq: corrupt pong".into());
                }
            }
            peer.finish()?;
            a.unlink();
            b.unlink();
        }
        other => return Err(format!("unknown latency kind {other}")),
    }
    Ok(Some(percentiles(rtt)))
}

/// One throughput measurement: messages per second, with every byte checked.
fn throughput(plan: &Plan, kind: &str, size: usize, dir: &Path) -> Result<Option<f64>, String> {
    let count = plan.messages(size);
    let e = |x: std::io::Error| x.to_string();
    let mut buf = vec![0u8; size];
    let t;
    let peer;
    match kind {
        "bare" => {
            let slots = bare_slots(size);
            let shm = Shm::create(&dir.join("shm"), BARE_DATA + slots as usize * size).map_err(e)?;
            peer = Peer::start(plan.cpus.1, kind, "tput", size, count, dir, (0, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            let (head, tail) = (shm.u64(0), shm.u64(128));
            let mut cached_tail = 0u64;
            t = Instant::now();
            for k in 0..count {
                while k - cached_tail >= slots {
                    // Acquire: pairs with the consumer's Release tail store.
                    cached_tail = tail.load(Ordering::Acquire);
                    if k - cached_tail >= slots {
                        std::hint::spin_loop();
                    }
                }
                // SAFETY: slot k is free (the consumer's tail passed k - slots).
                fill(k, unsafe { shm.bytes(BARE_DATA + (k % slots) as usize * size, size) });
                // Release: publishes the slot's bytes to the consumer.
                head.store(k + 1, Ordering::Release);
            }
        }
        "shmq" | "shmq-ts" => {
            let opts = Options::new()
                .dir(dir)
                .capacity(RING_BYTES as u64)
                .max_message((1 << 20) + 64)
                .timestamps(kind == "shmq-ts");
            let topic = Topic::create("tput", &opts).map_err(|x| x.to_string())?;
            peer = Peer::start(plan.cpus.1, "shmq", "tput", size, count, dir, (0, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            let mut p = topic.producer().map_err(|x| x.to_string())?;
            t = Instant::now();
            for k in 0..count {
                let mut g = p.reserve(size).map_err(|x| x.to_string())?;
                fill(k, &mut g);
                g.commit(size).map_err(|x| x.to_string())?;
            }
            drop(p);
            drop(topic);
        }
        "unix" | "pipe" => {
            let (rd, wr) = if kind == "unix" { socketpair().map_err(e)? } else { pipe().map_err(e)? };
            // The child reads one end; we write the other.
            let (theirs, mine) = (rd, wr);
            peer = Peer::start(plan.cpus.1, kind, "tput", size, count, dir, (theirs, 0))?;
            close(theirs);
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            let mut w = stream(mine);
            t = Instant::now();
            for k in 0..count {
                fill(k, &mut buf);
                w.write_all(&buf).map_err(e)?;
            }
        }
        "mq" => {
            if !mq_usable(size) {
                return Ok(None);
            }
            let tag = std::process::id() as RawFd;
            let q = Mq::open(&format!("/shmq-bench-{tag}-t"), size, true).map_err(e)?;
            peer = Peer::start(plan.cpus.1, kind, "tput", size, count, dir, (tag, 0))?;
            shmq::__private::sys::pin_to_cpu(plan.cpus.0);
            t = Instant::now();
            for k in 0..count {
                fill(k, &mut buf);
                q.send(&buf).map_err(e)?;
            }
            let done = peer.finish()?;
            let secs = t.elapsed().as_secs_f64();
            q.unlink();
            return check_done(kind, &done).map(|()| Some(count as f64 / secs));
        }
        other => return Err(format!("unknown throughput kind {other}")),
    }
    let done = peer.finish()?;
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(dir.join("tput"));
    let _ = std::fs::remove_file(dir.join("shm"));
    check_done(kind, &done)?;
    Ok(Some(count as f64 / secs))
}

fn check_done(kind: &str, done: &str) -> Result<(), String> {
    if done != "DONE bad=0" {
        return Err(format!("{kind}: consumer reported {done:?}"));
    }
    Ok(())
}

/// Fan-out: one producer, `k` subscriber processes (not pinned: with more
/// processes than CPUs the scheduler shares them), 64-byte messages,
/// every byte checked. Returns delivered messages per second (all
/// subscribers together).
fn fanout(plan: &Plan, k: usize, dir: &Path) -> Result<f64, String> {
    let size = 64;
    let count = plan.messages(size) / 4;
    let opts = Options::new().dir(dir).capacity(RING_BYTES as u64).max_message(1024);
    let topic = Topic::create("tput", &opts).map_err(|x| x.to_string())?;
    let mut peers = Vec::new();
    for i in 0..k {
        let cpu = if i % 2 == 0 { plan.cpus.1 } else { plan.cpus.0 };
        peers.push(Peer::start(cpu, "shmq", "tput", size, count, dir, (0, 0))?);
    }
    shmq::__private::sys::pin_to_cpu(plan.cpus.0);
    let mut p = topic.producer().map_err(|x| x.to_string())?;
    let t = Instant::now();
    for m in 0..count {
        let mut g = p.reserve(size).map_err(|x| x.to_string())?;
        fill(m, &mut g);
        g.commit(size).map_err(|x| x.to_string())?;
    }
    for peer in peers {
        check_done("fanout", &peer.finish()?)?;
    }
    let secs = t.elapsed().as_secs_f64();
    drop((p, topic));
    let _ = std::fs::remove_file(dir.join("tput"));
    Ok((count * k as u64) as f64 / secs)
}

// ------------------------------------------------------------ report

struct Progress {
    total: usize,
    done: usize,
    tty: bool,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.done += 1;
        let width = 30;
        let filled = width * self.done / self.total.max(1);
        let bar =
            format!("[{}{}] {:>2}/{} {what}", "#".repeat(filled), " ".repeat(width - filled), self.done, self.total);
        if self.tty {
            eprint!("\r\x1b[2K{bar}");
        } else {
            eprintln!("{bar}");
        }
        let _ = std::io::stderr().flush();
    }
    fn end(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// In measuring order: each target's pair is measured back to back (the
/// C API, when asked for, right after `shmq`), so both see the machine in
/// the same state.
const LAT_KINDS: [&str; 9] = ["raw", "frames", "shmq", "shmq-ts", "shmq-block", "futex", "unix", "pipe", "mq"];
const LAT_SIZES: [usize; 3] = [64, 1024, 64 << 10];
const TPUT_KINDS: [&str; 6] = ["bare", "shmq", "shmq-ts", "unix", "pipe", "mq"];
const TPUT_SIZES: [usize; 3] = [64, 4096, 1 << 20];

fn label(kind: &str) -> &'static str {
    match kind {
        "raw" => "raw cache line (floor)",
        "frames" => "bare ring of frames (floor)",
        "shmq" => "shmq busy-poll",
        "futex" => "futex ping-pong (floor)",
        "shmq-block" => "shmq blocking recv",
        "unix" => "unix socket",
        "pipe" => "pipe",
        "mq" => "posix mq",
        "bare" => "bare SPSC ring (ceiling)",
        "c" => "shmq C API busy-poll",
        "shmq-ts" => "shmq, with timestamps",
        _ => "?",
    }
}

fn size_name(s: usize) -> String {
    if s >= 1 << 20 {
        format!("{} MiB", s >> 20)
    } else if s >= 1024 {
        format!("{} KiB", s >> 10)
    } else {
        format!("{s} B")
    }
}

/// Checks a `--size`: the patterns are written and checked in 8-byte words.
pub fn check_size(size: u64) -> Result<(), String> {
    if (8..=1 << 20).contains(&size) && size % 8 == 0 {
        Ok(())
    } else {
        Err(format!("invalid --size {size}: sizes are multiples of 8 from 8 B to 1 MiB"))
    }
}

/// Runs the whole comparison and prints it (table, or JSON).
pub fn run(plan: Plan, json: bool, c_binary: Option<PathBuf>) -> Result<(), String> {
    let dir = plan.dir.join(format!(".bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|x| format!("creating {}: {x}", dir.display()))?;
    if !on_tmpfs(&dir) {
        eprintln!(
            "warning: {} is not on a tmpfs; write-back page faults will show in the tail percentiles",
            dir.display()
        );
    }
    let result = run_in(&plan, json, c_binary, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Whether `dir` lies on a tmpfs (as `/dev/shm` does).
fn on_tmpfs(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a zeroed statfs is a valid out-parameter; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; statfs writes only into `st`.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type == libc::TMPFS_MAGIC }
}

fn run_c(path: &Path, plan: &Plan, size: usize, dir: &Path) -> Result<[u64; 5], String> {
    let out = Command::new(path)
        .args([&plan.rounds(size).to_string(), &size.to_string(), &plan.cpus.0.to_string(), &plan.cpus.1.to_string()])
        .env("SHMQ_DIR", dir)
        .output()
        .map_err(|x| format!("running {}: {x}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<u64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    if !out.status.success() || nums.len() < 5 {
        return Err(format!("C ping-pong failed: {text} {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok([nums[0], nums[1], nums[2], nums[3], nums[4]])
}

/// The median over repetitions of `a[i] / b[i]`: each ratio compares two
/// measurements taken back to back, so a change in the machine's state
/// between repetitions (a neighbour, the host moving our vCPUs) cancels.
fn paired_ratio(a: Option<Vec<f64>>, b: Option<Vec<f64>>) -> Option<f64> {
    let (a, b) = (a?, b?);
    let r: Vec<f64> = a.iter().zip(&b).filter(|(_, &y)| y > 0.0).map(|(x, y)| x / y).collect();
    (!r.is_empty()).then(|| median_by(r, |x| *x))
}

/// The median of `runs` by `key` (the upper one of an even count).
fn median_by<T: Copy>(mut runs: Vec<T>, key: impl Fn(&T) -> f64) -> T {
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    runs[runs.len() / 2]
}

fn run_in(plan: &Plan, json: bool, c_binary: Option<PathBuf>, dir: &Path) -> Result<(), String> {
    let fan_ks: Vec<usize> = if plan.runs("fanout") { vec![1, 2, 3] } else { Vec::new() };
    let lat_sizes = if plan.runs("latency") { plan.sizes(&LAT_SIZES) } else { Vec::new() };
    let tput_sizes = if plan.runs("throughput") { plan.sizes(&TPUT_SIZES) } else { Vec::new() };
    let c_lat = c_binary.as_ref().filter(|_| lat_sizes.contains(&64));
    let reps = plan.repeat.max(1);
    let total = reps
        * (LAT_KINDS.len() * lat_sizes.len()
            + TPUT_KINDS.len() * tput_sizes.len()
            + fan_ks.len()
            + c_lat.map_or(0, |_| 1));
    // SAFETY: isatty has no preconditions.
    let mut prog = Progress { total, done: 0, tty: unsafe { libc::isatty(2) } == 1 };
    let mut lat_runs: Vec<(String, usize, Vec<[u64; 5]>)> = Vec::new();
    let mut tput_runs: Vec<(String, usize, Vec<f64>)> = Vec::new();
    let mut fan_runs: Vec<(usize, Vec<f64>)> = fan_ks.iter().map(|&k| (k, Vec::new())).collect();
    fn record<K: PartialEq, V>(runs: &mut Vec<(K, usize, Vec<V>)>, kind: K, size: usize, v: V) {
        match runs.iter_mut().find(|r| r.0 == kind && r.1 == size) {
            Some(r) => r.2.push(v),
            None => runs.push((kind, size, vec![v])),
        }
    }
    // Repeats are interleaved: every measurement once, then again, so a
    // noisy neighbour on the machine hits all of them alike.
    for _ in 0..reps {
        for &size in &lat_sizes {
            for kind in LAT_KINDS {
                prog.step(&format!("latency {} {}", label(kind), size_name(size)));
                if let Some(p) = latency(plan, kind, size, dir)? {
                    record(&mut lat_runs, kind.to_string(), size, p);
                }
                if let (Some(c), "shmq", 64) = (c_lat, kind, size) {
                    prog.step("latency shmq C API 64 B");
                    record(&mut lat_runs, "c".to_string(), 64, run_c(c, plan, 64, dir)?);
                }
            }
        }
        for &size in &tput_sizes {
            for kind in TPUT_KINDS {
                prog.step(&format!("throughput {} {}", label(kind), size_name(size)));
                if let Some(r) = throughput(plan, kind, size, dir)? {
                    record(&mut tput_runs, kind.to_string(), size, r);
                }
            }
        }
        for (k, runs) in &mut fan_runs {
            prog.step(&format!("fan-out to {k} subscriber(s)"));
            runs.push(fanout(plan, *k, dir)?);
        }
    }
    prog.end();

    // Per repetition, one figure of a measurement (p50s, or msgs/s).
    let lat_reps = |kind: &str, size: usize, q: usize| {
        lat_runs.iter().find(|x| x.0 == kind && x.1 == size).map(|x| x.2.iter().map(|p| p[q] as f64).collect())
    };
    let tput_reps =
        |kind: &str, size: usize| tput_runs.iter().find(|x| x.0 == kind && x.1 == size).map(|x| x.2.clone());
    let lat_ratio = |a: &str, b: &str, size: usize| paired_ratio(lat_reps(a, size, 0), lat_reps(b, size, 0));
    let tput_ratio = |a: &str, b: &str, size: usize| paired_ratio(tput_reps(a, size), tput_reps(b, size));
    let targets: Vec<(&str, Option<f64>, &str, f64)> = vec![
        ("one-way p50 / raw cache line p50 (64 B)", lat_ratio("shmq", "raw", 64), "<=", 1.25),
        ("shmq p99.9 / shmq p50 (64 B)", paired_ratio(lat_reps("shmq", 64, 3), lat_reps("shmq", 64, 0)), "<=", 3.0),
        ("64 B throughput / bare ring", tput_ratio("shmq", "bare", 64), ">=", 0.7),
        ("64 B throughput / unix socket", tput_ratio("shmq", "unix", 64), ">=", 30.0),
        ("4 KiB throughput / bare ring", tput_ratio("shmq", "bare", 4096), ">=", 0.9),
        ("blocking round trip p50 / futex ping-pong p50", lat_ratio("shmq-block", "futex", 64), "<=", 1.1),
        ("C API p50 / Rust API p50 (64 B)", lat_ratio("c", "shmq", 64), "<=", 1.1),
    ];
    let lat: Vec<(String, usize, [u64; 5])> =
        lat_runs.iter().map(|(k, s, runs)| (k.clone(), *s, median_by(runs.clone(), |p| p[0] as f64))).collect();
    let tput: Vec<(String, usize, f64)> =
        tput_runs.iter().map(|(k, s, runs)| (k.clone(), *s, median_by(runs.clone(), |r| *r))).collect();
    let fan: Vec<(usize, f64)> = fan_runs.into_iter().map(|(k, runs)| (k, median_by(runs, |r| *r))).collect();
    let met = |v: f64, op: &str, t: f64| if op == "<=" { v <= t } else { v >= t };

    if json || plan.json_out.is_some() {
        let v = J::O(vec![
            ("cpus", J::A(vec![J::U(plan.cpus.0 as u64), J::U(plan.cpus.1 as u64)])),
            ("quick", J::Bool(plan.quick)),
            ("repeat", J::U(reps as u64)),
            (
                "latency_one_way_ns",
                J::A(
                    lat.iter()
                        .map(|(k, s, p)| {
                            J::O(vec![
                                ("kind", J::s(k.as_str())),
                                ("size", J::U(*s as u64)),
                                ("p50", J::U(p[0])),
                                ("p90", J::U(p[1])),
                                ("p99", J::U(p[2])),
                                ("p999", J::U(p[3])),
                                ("max", J::U(p[4])),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "throughput",
                J::A(
                    tput.iter()
                        .map(|(k, s, r)| {
                            J::O(vec![
                                ("kind", J::s(k.as_str())),
                                ("size", J::U(*s as u64)),
                                ("msgs_per_s", J::F(*r)),
                                ("gb_per_s", J::F(r * *s as f64 / 1e9)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "fanout_64b",
                J::A(
                    fan.iter()
                        .map(|(k, r)| J::O(vec![("subscribers", J::U(*k as u64)), ("delivered_msgs_per_s", J::F(*r))]))
                        .collect(),
                ),
            ),
            ("shmq_over_frames_p50_64b", lat_ratio("shmq", "frames", 64).map_or(J::Null, J::F)),
            (
                "targets",
                J::A(
                    targets
                        .iter()
                        .map(|(n, v, op, t)| {
                            J::O(vec![
                                ("name", J::s(*n)),
                                ("ratio", v.map_or(J::Null, J::F)),
                                ("op", J::s(*op)),
                                ("target", J::F(*t)),
                                ("met", v.map_or(J::Null, |v| J::Bool(met(v, op, *t)))),
                            ])
                        })
                        .collect(),
                ),
            ),
        ]);
        if let Some(path) = &plan.json_out {
            std::fs::write(path, format!("{v}\n")).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        if json {
            println!("{v}");
            return Ok(());
        }
    }

    println!(
        "shmq bench: processes pinned to CPUs {} and {}{}",
        plan.cpus.0,
        plan.cpus.1,
        if plan.quick { " (quick)" } else { "" }
    );
    if reps > 1 {
        println!("each figure: the median of {reps} runs (by p50, or by msgs/s); each ratio: the median");
        println!("of the {reps} ratios of two measurements taken back to back");
    }
    for &size in &lat_sizes {
        println!("\nround-trip latency, {} messages, reported one-way (ns)", size_name(size));
        println!("  {:<26} {:>8} {:>8} {:>8} {:>9} {:>10} {:>9}", "", "p50", "p90", "p99", "p99.9", "max", "p50/raw");
        for (k, _, p) in lat.iter().filter(|x| x.1 == size) {
            let r = lat_ratio(k, "raw", size).map_or(String::from("-"), |r| format!("{r:.2}x"));
            println!("  {:<26} {:>8} {:>8} {:>8} {:>9} {:>10} {:>9}", label(k), p[0], p[1], p[2], p[3], p[4], r);
        }
    }
    for &size in &tput_sizes {
        println!("\nthroughput, {} messages, every byte checked", size_name(size));
        println!("  {:<26} {:>13} {:>9} {:>10} {:>10}", "", "msgs/s", "GB/s", "vs bare", "vs unix");
        for (k, _, r) in tput.iter().filter(|x| x.1 == size) {
            let vb = tput_ratio(k, "bare", size).map_or("-".into(), |b| format!("{b:.2}x"));
            let vu = tput_ratio(k, "unix", size).map_or("-".into(), |u| format!("{u:.1}x"));
            println!("  {:<26} {:>13.0} {:>9.3} {:>10} {:>10}", label(k), r, r * size as f64 / 1e9, vb, vu);
        }
    }
    if !fan.is_empty() {
        println!("\nfan-out, 64 B messages, one producer (CPU {}) and k subscriber processes", plan.cpus.0);
    }
    for (k, r) in &fan {
        println!("  k = {k}: {r:>12.0} messages/s delivered in total ({:.0} per subscriber)", r / *k as f64);
    }
    if let Some(r) = lat_ratio("shmq", "frames", 64) {
        println!(
            "\nshmq's one-way p50 over the bare ring of frames (the same two cache lines, nothing else), 64 B: {r:.2}x"
        );
    }
    println!("\ntargets (ratios from this run)");
    for (n, v, op, t) in &targets {
        match v {
            Some(v) => {
                println!("  {} {:<48} {:>7.2} (target {op} {t})", if met(*v, op, *t) { "met " } else { "MISS" }, n, v)
            }
            None => println!("  n/a  {n:<48} (not measured)"),
        }
    }
    Ok(())
}
