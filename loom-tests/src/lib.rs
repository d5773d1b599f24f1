//! Helpers for the loom scenarios in `tests/`: a small ring over
//! [`shmq::__private::loom_mem::LoomMem`] running the production algorithm
//! ([`shmq::__private::ring::Ring`]), and message patterns that make a torn read
//! visible.

use loom::sync::Arc;
use shmq::__private::loom_mem::LoomMem;
use shmq::__private::mem::Memory;
use shmq::__private::ring::{FrameView, ProducerState, Ring, SubState, Wait};
use shmq::layout::{Layout, Policy, HEADER_LINES, LINE, SLOT_SIZE};
use shmq::Start;

/// The stamp key used in the models (any value works).
pub const KEY: u64 = 0x5EED_0000_0000_0001;

/// Capacity of the model rings: two 64-byte frames (8-byte payloads), so a
/// third message wraps, fills or laps the ring.
pub const CAP: u64 = 128;
/// Largest payload in the models (a 64-byte frame: half the ring).
pub const MAX: u32 = 32;

/// A [`CAP`]-byte ring over loom memory. Real topics have at least 256
/// bytes and a 4096-byte aligned data region; both only cost the model
/// time, so the layout is built for 256 bytes and then shrunk (the ring
/// code reads only the validated fields, which stay consistent).
pub fn ring(subscribers: u32, policy: Policy, multi: bool) -> Arc<Ring<LoomMem>> {
    make_ring(subscribers, policy, multi, LoomMem::new)
}

/// As [`ring`], over memory whose waiters sleep at once
/// ([`LoomMem::with_no_spin`]): a missing wake strands them.
pub fn ring_no_spin(subscribers: u32, policy: Policy, multi: bool) -> Arc<Ring<LoomMem>> {
    make_ring(subscribers, policy, multi, LoomMem::with_no_spin)
}

/// As [`ring`], for a topic whose stream closes when its last producer is
/// gone (`Options::close_on_exit`).
pub fn ring_close_on_exit(subscribers: u32, policy: Policy) -> Arc<Ring<LoomMem>> {
    build(subscribers, policy, false, LoomMem::new, true)
}

/// As [`ring`], over memory where every peer looks dead and every clock
/// read is a second later ([`LoomMem::with_dead_peers`]).
pub fn ring_dead_peers(subscribers: u32, policy: Policy, multi: bool) -> Arc<Ring<LoomMem>> {
    make_ring(subscribers, policy, multi, LoomMem::with_dead_peers)
}

/// As [`ring`], over memory whose clock runs fast
/// ([`LoomMem::with_fast_clock`]): every liveness check is due.
pub fn ring_fast_clock(subscribers: u32, policy: Policy, multi: bool) -> Arc<Ring<LoomMem>> {
    make_ring(subscribers, policy, multi, LoomMem::with_fast_clock)
}

fn make_ring(subscribers: u32, policy: Policy, multi: bool, mem: fn(usize, usize) -> LoomMem) -> Arc<Ring<LoomMem>> {
    build(subscribers, policy, multi, mem, false)
}

fn build(
    subscribers: u32,
    policy: Policy,
    multi: bool,
    mem: fn(usize, usize) -> LoomMem,
    close_on_exit: bool,
) -> Arc<Ring<LoomMem>> {
    let mut layout = Layout::new(256, MAX, subscribers, policy, multi, KEY).expect("valid layout");
    layout.close_on_exit = close_on_exit;
    layout.capacity = CAP;
    layout.data_offset = HEADER_LINES * LINE + subscribers as usize * SLOT_SIZE;
    let mem = mem(layout.data_offset + CAP as usize, layout.data_offset);
    let mut ring = Ring::new(mem, layout);
    // One oldest-frame segment per lap (real rings have 64), so the second
    // frame of a lap takes the producer's fast path and the models check it.
    ring.mark_shift = CAP.trailing_zeros();
    Arc::new(ring)
}

/// Runs `f` under loom with the preemption bound from `LOOM_MAX_PREEMPTIONS`
/// (default 2).
pub fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    b.check(f);
}

/// Payload of message `id` with `len` bytes: every byte is `id`, so a
/// torn or stale read shows as a mixed pattern.
pub fn payload(id: u8, len: usize) -> Vec<u8> {
    vec![id; len]
}

/// Publishes `data` as message `id`, waiting for room.
pub fn publish(r: &Ring<LoomMem>, st: &mut ProducerState, data: &[u8]) {
    let c = r.claim(st, data.len(), Wait::Forever).expect("claim");
    r.write_payload(&c, data);
    r.commit(st, &c, data.len() as u32, 0);
}

/// Publishes `msgs` in order as `Producer::publish_batch` does: runs that
/// fit one fast claim through [`Ring::publish_batch_fast`], the others
/// one by one (waiting for room).
pub fn publish_batch(r: &Ring<LoomMem>, st: &mut ProducerState, msgs: &[Vec<u8>]) {
    let mut rest = msgs;
    while let Some(first) = rest.first() {
        match r.publish_batch_fast(st, rest, 0) {
            0 => {
                publish(r, st, first);
                rest = &rest[1..];
            }
            n => rest = &rest[n..],
        }
    }
}

/// Block: waits for the next frame, copies its payload out (a tracked,
/// non-atomic read of the ring's cells), releases it.
pub fn recv_block(r: &Ring<LoomMem>, st: &mut SubState) -> Vec<u8> {
    let v: FrameView = r.wait_frame(st, &mut [], Wait::Forever).expect("read").expect("a frame");
    let mut out = vec![0; v.len as usize];
    // SAFETY: `v` is a committed frame at this subscriber's cursor; loom
    // reports the read if it is not ordered after the producer's write.
    unsafe { r.mem.read(v.payload_off, &mut out) };
    r.release(st, &v);
    out
}

/// Block: receives the next message as a draining subscriber does
/// (`Ring::drain_fast`, then the cursor published with `release_to`), or,
/// when the fast path finds nothing it handles, as [`recv_block`] does.
pub fn recv_drain(r: &Ring<LoomMem>, st: &mut SubState) -> Vec<u8> {
    let mut out = None;
    let n = r.drain_fast(st, 1, |v| {
        let mut m = vec![0; v.len as usize];
        // SAFETY: `v` is a committed frame at this subscriber's cursor,
        // which still covers it (the cursor is published below); loom
        // reports the read if it is not ordered after the producer's write.
        unsafe { r.mem.read(v.payload_off, &mut m) };
        out = Some(m);
    });
    match out {
        Some(m) if n == 1 => {
            let next = st.cursor();
            r.release_to(st, next);
            m
        }
        _ => recv_block(r, st),
    }
}

/// Asserts `msg` is an intact pattern message and returns its id (0 for an
/// empty message).
pub fn intact(msg: &[u8]) -> u8 {
    let id = msg.first().copied().unwrap_or(0);
    assert!(msg.iter().all(|&b| b == id), "torn message: {msg:?}");
    id
}

/// Joins a subscriber from the newest message.
pub fn join(r: &Ring<LoomMem>) -> SubState {
    r.join(Start::Newest, b"").expect("free slot")
}
