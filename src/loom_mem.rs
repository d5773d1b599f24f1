//! The loom implementation of the [`Memory`] seam, for `loom-tests/`.
//!
//! Every 8-byte word of the segment has a loom `AtomicU64` and every 4-byte
//! word a loom `AtomicU32` (the ring never accesses one offset with both
//! sizes); every payload word has a `loom::cell::UnsafeCell`, so a payload
//! read that is not ordered after the write that filled it is reported as a
//! data race. `Overwrite` payloads go through the atomic words (the seqlock
//! copy), as in production.
//!
//! Modelling differences from the real mapping, on purpose: payload bytes
//! written through the cells do not alias the stamp words (so the model
//! does not exercise stale payload bytes spelling a stamp, which the stamp
//! key makes improbable in production); `wait` has no timeout, so a lost
//! wake-up shows as a deadlock; time stands still and every process is
//! alive, except in memory made by [`LoomMem::with_dead_peers`], where
//! every peer looks dead and each clock read jumps a second (so every
//! liveness timeout has passed: the worst case for stuck-claim recovery).
//!
//! Attachments and their locks: the kernel's lock table is a word of the
//! model per attachment id (below 63), and one for the names lock (separate
//! words, so taking one lock orders nothing about another). Taking a lock
//! is an `AcqRel` read-modify-write, dropping it a `Release` and testing it
//! an `Acquire` load, as the kernel's own locking orders them in
//! production; so what an attachment's holder wrote before it died
//! ([`LoomMem::kill`] drops its lock) is visible to whoever sees it dead.
//! Every loom thread is pid 1 unless it calls [`set_pid`] (pids are for
//! display only).

use std::sync::atomic::Ordering;
use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU32, AtomicU64};
use loom::sync::{Condvar, Mutex};

use crate::mem::Memory;

loom::thread_local! {
    static PID: std::cell::Cell<u32> = std::cell::Cell::new(1);
}

/// Makes the calling loom thread the process `pid` (for [`LoomMem::kill`]).
pub fn set_pid(pid: u32) {
    PID.with(|p| p.set(pid));
}

/// A segment of `len` bytes whose payload region starts at `data_offset`.
#[derive(Debug)]
pub struct LoomMem {
    words: Vec<AtomicU64>,
    halves: Vec<AtomicU32>,
    cells: Vec<UnsafeCell<u64>>,
    data_offset: usize,
    lock: Mutex<()>,
    cv: Condvar,
    dead_peers: bool,
    /// Each clock read is a second later (every liveness timeout passes).
    fast_clock: bool,
    /// Waiters sleep at once instead of yielding first (see
    /// [`LoomMem::with_no_spin`]).
    no_spin: bool,
    /// The kernel's lock table: word `id` is 1 while attachment `id`'s
    /// holder lives; word 0 is the names lock.
    locks: Vec<AtomicU32>,
    /// The producers lock: bit `id` set while attachment `id` holds it.
    producers: AtomicU64,
    clock: std::sync::atomic::AtomicU64,
}

impl LoomMem {
    /// Zeroed memory of `len` bytes (a multiple of 8) with payload cells
    /// from `data_offset` on.
    pub fn new(len: usize, data_offset: usize) -> LoomMem {
        LoomMem {
            words: (0..len / 8).map(|_| AtomicU64::new(0)).collect(),
            halves: (0..len / 4).map(|_| AtomicU32::new(0)).collect(),
            cells: (0..(len - data_offset) / 8).map(|_| UnsafeCell::new(0)).collect(),
            data_offset,
            lock: Mutex::new(()),
            cv: Condvar::new(),
            dead_peers: false,
            fast_clock: false,
            no_spin: false,
            locks: (0..63).map(|_| AtomicU32::new(0)).collect(),
            producers: AtomicU64::new(0),
            clock: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// As [`LoomMem::new`], but every peer looks dead and time runs fast
    /// (see the module docs).
    pub fn with_dead_peers(len: usize, data_offset: usize) -> LoomMem {
        LoomMem { dead_peers: true, fast_clock: true, ..LoomMem::new(len, data_offset) }
    }

    /// As [`LoomMem::new`], but each clock read is a second later, so every
    /// liveness check is due and every timeout has passed; peers are alive
    /// until [`LoomMem::kill`]ed.
    pub fn with_fast_clock(len: usize, data_offset: usize) -> LoomMem {
        LoomMem { fast_clock: true, ..LoomMem::new(len, data_offset) }
    }

    /// As [`LoomMem::new`], but a waiter that finds nothing goes to sleep
    /// without its spin step. That step is a loom yield, after which loom
    /// runs every other runnable thread first; so without this a waiter
    /// can never be asleep before a peer's next step, and a missing wake
    /// (which only strands a sleeper) goes unnoticed.
    pub fn with_no_spin(len: usize, data_offset: usize) -> LoomMem {
        LoomMem { no_spin: true, ..LoomMem::new(len, data_offset) }
    }

    /// The process holding attachment `id` dies: the kernel drops its lock.
    pub fn kill(&self, id: u64) {
        self.detach(id);
    }

    fn w(&self, off: usize) -> &AtomicU64 {
        assert!(off % 8 == 0, "unaligned u64 access at {off}");
        &self.words[off / 8]
    }

    fn h(&self, off: usize) -> &AtomicU32 {
        assert!(off % 4 == 0, "unaligned u32 access at {off}");
        &self.halves[off / 4]
    }

    fn cell(&self, off: usize) -> &UnsafeCell<u64> {
        &self.cells[(off - self.data_offset) / 8]
    }
}

impl Memory for LoomMem {
    fn load64(&self, off: usize, order: Ordering) -> u64 {
        self.w(off).load(order)
    }
    fn store64(&self, off: usize, val: u64, order: Ordering) {
        self.w(off).store(val, order)
    }
    fn cas64(&self, off: usize, cur: u64, new: u64, ok: Ordering, err: Ordering) -> Result<u64, u64> {
        self.w(off).compare_exchange(cur, new, ok, err)
    }
    fn swap64(&self, off: usize, val: u64, order: Ordering) -> u64 {
        self.w(off).swap(val, order)
    }
    fn add64(&self, off: usize, val: u64, order: Ordering) -> u64 {
        self.w(off).fetch_add(val, order)
    }
    fn load32(&self, off: usize, order: Ordering) -> u32 {
        self.h(off).load(order)
    }
    fn store32(&self, off: usize, val: u32, order: Ordering) {
        self.h(off).store(val, order)
    }
    fn cas32(&self, off: usize, cur: u32, new: u32, ok: Ordering, err: Ordering) -> Result<u32, u32> {
        self.h(off).compare_exchange(cur, new, ok, err)
    }
    fn add32(&self, off: usize, val: u32, order: Ordering) -> u32 {
        self.h(off).fetch_add(val, order)
    }
    fn sub32(&self, off: usize, val: u32, order: Ordering) -> u32 {
        self.h(off).fetch_sub(val, order)
    }
    fn fence(&self, order: Ordering) {
        loom::sync::atomic::fence(order)
    }
    unsafe fn write(&self, off: usize, src: &[u8]) {
        for (i, chunk) in src.chunks(8).enumerate() {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            // SAFETY: loom checks that no other thread accesses this cell
            // concurrently; that check is the point of the model.
            self.cell(off + 8 * i).with_mut(|p| unsafe { *p = u64::from_le_bytes(b) });
        }
    }
    unsafe fn read(&self, off: usize, dst: &mut [u8]) {
        for (i, chunk) in dst.chunks_mut(8).enumerate() {
            // SAFETY: as in `write`: loom reports an unordered access.
            let w = self.cell(off + 8 * i).with(|p| unsafe { *p });
            chunk.copy_from_slice(&w.to_le_bytes()[..chunk.len()]);
        }
    }
    unsafe fn write_racy(&self, off: usize, src: &[u8]) {
        for (i, chunk) in src.chunks(8).enumerate() {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.w(off + 8 * i).store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
    }
    fn read_racy(&self, off: usize, dst: &mut [u8]) {
        for (i, chunk) in dst.chunks_mut(8).enumerate() {
            let w = self.w(off + 8 * i).load(Ordering::Relaxed);
            chunk.copy_from_slice(&w.to_le_bytes()[..chunk.len()]);
        }
    }
    fn wait(&self, off: usize, expected: u32, _timeout: Option<Duration>) {
        // A futex: the check and the sleep are atomic with respect to wake.
        let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.h(off).load(Ordering::SeqCst) == expected {
            let _g = self.cv.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }
    fn wake(&self, _off: usize) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.cv.notify_all();
    }
    fn snooze(&self, _step: u32) {
        loom::thread::yield_now();
    }
    fn spin_steps(&self) -> u32 {
        if self.no_spin {
            0
        } else {
            1
        }
    }
    fn now_ns(&self) -> u64 {
        if self.fast_clock {
            // Not a loom atomic: the model's clock, not shared state under test.
            self.clock.fetch_add(1_000_000_000, Ordering::Relaxed)
        } else {
            1
        }
    }
    fn attach(&self) -> Result<u64, String> {
        let id = self.add64(crate::layout::hdr::ATTACH_SEQ, 1, Ordering::Relaxed) + 1;
        assert!(id < 63, "model attachment ids are below 63");
        let before = self.locks[id as usize].swap(1, Ordering::AcqRel);
        assert_eq!(before, 0, "a fresh id's lock is free");
        Ok(id)
    }
    fn detach(&self, id: u64) {
        if id != 0 && id < 63 {
            // Dropping a kernel lock: Release (and the producers lock with it).
            self.producers.fetch_and(!(1 << id), Ordering::Release);
            self.locks[id as usize].store(0, Ordering::Release);
        }
    }
    fn alive(&self, id: u64) -> bool {
        !self.dead_peers && id != 0 && id < 63 && self.locks[id as usize].load(Ordering::Acquire) == 1
    }
    fn hold_producer(&self, id: u64) {
        if id < 63 {
            // As taking a kernel lock: AcqRel.
            self.producers.fetch_or(1 << id, Ordering::AcqRel);
        }
    }
    fn producers_alive(&self) -> bool {
        // As testing a kernel lock: Acquire.
        self.producers.load(Ordering::Acquire) != 0
    }
    fn try_lock_names(&self) -> bool {
        // A compare-exchange: it reads the lock's latest state and writes
        // only when it takes it (a waiter that wrote, or read a stale state,
        // every time round its spin would grow the model without bound).
        self.locks[0].compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }
    fn unlock_names(&self) {
        self.locks[0].store(0, Ordering::Release);
    }
    fn pid(&self) -> u32 {
        PID.with(|p| p.get())
    }
}
