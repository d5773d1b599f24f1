//! The publish and receive paths allocate nothing per message, proven with
//! a counting global allocator (this file is its own test binary, with one
//! test, so no other test allocates while it counts).

mod common;
use shmq::{Policy, Topic};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

#[test]
fn steady_state_publish_and_receive_do_not_allocate() {
    let d = common::TestDir::new();
    for policy in [Policy::Block, Policy::Overwrite] {
        let t = Topic::create(&format!("t{policy}"), &d.opts().capacity(64 << 10).max_message(1024).policy(policy))
            .unwrap();
        let mut sub = t.subscribe().unwrap();
        let mut p = t.producer().unwrap();
        let msg = [7u8; 700];
        let mut run = |n: usize| {
            for i in 0..n {
                p.publish(&msg[..i % 700]).unwrap();
                {
                    let mut g = p.reserve(64).unwrap();
                    g[0] = 1;
                    g.commit(8).unwrap();
                }
                assert_eq!(sub.recv().unwrap().len(), i % 700);
                assert_eq!(sub.try_recv().unwrap().len(), 8);
                let _ = sub.drain(4, |m| assert!(m.len() < 700));
            }
        };
        run(100); // warm-up: lazy statics, first-time paths
        let before = allocs();
        run(20_000); // laps the 64 KiB ring many times
        assert_eq!(allocs() - before, 0, "{policy}: allocations on the message path");
    }
}
