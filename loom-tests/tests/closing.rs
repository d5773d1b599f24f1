//! Loom scenarios over the end of stream (`src/ring/closing.rs`): a close
//! wakes a subscriber that sleeps at the end, and on a close-on-exit topic
//! a producer that is attaching is never taken for gone. Racing parties
//! run in spawned threads (see "A lesson for writing scenarios" in
//! README.md).

use loom::thread;
use shmq::__private::ring::{ReadError, Wait};

use shmq::layout::Policy;
use shmq_loom_tests::{intact, join, model, payload, publish, ring_close_on_exit, ring_no_spin};

/// A producer publishes message 1 and closes the stream while a subscriber
/// waits (spins once, then sleeps on the data futex): it receives message 1
/// intact, then `Closed`, and is never left asleep (a lost wake is a
/// deadlock, which loom reports). Mutations `close_no_wake` (the close does
/// not wake) and `close_fence` (no fence between the mark and the wake:
/// the sleeper can read the bumped futex word and a stale mark).
#[test]
fn close_wakes_a_sleeping_subscriber() {
    model(|| {
        // Waiters sleep without a spin step, so the subscriber can be asleep
        // before the close (see `LoomMem::with_no_spin`).
        let r = ring_no_spin(1, Policy::Block, false);
        let mut s = join(&r);
        let rp = r.clone();
        let producer = thread::spawn(move || {
            let mut st = rp.producer_state();
            publish(&rp, &mut st, &payload(1, 8));
            rp.close();
        });
        let rs = r.clone();
        let subscriber = thread::spawn(move || {
            let v = rs.wait_frame(&mut s, &mut [], Wait::Forever).expect("read").expect("message 1");
            let mut out = vec![0; v.len as usize];
            // SAFETY: a committed frame at our cursor; loom checks the read.
            unsafe { shmq::__private::mem::Memory::read(&rs.mem, v.payload_off, &mut out) };
            assert_eq!(intact(&out), 1);
            rs.release(&mut s, &v);
            match rs.wait_frame(&mut s, &mut [], Wait::Forever) {
                Err(ReadError::Closed) => {}
                other => panic!("expected the end of the stream, got {other:?}"),
            }
        });
        producer.join().unwrap();
        subscriber.join().unwrap();
    });
}

/// On a close-on-exit topic, a producer attaches and publishes message 1
/// while a subscriber waits at the (empty) end. The subscriber must get
/// message 1, never `Closed`: a producer was attached all along. The flag
/// "a producer attached" is stored with `Release` after the producer took
/// the producers lock, and loaded with `Acquire` before the lock is tested
/// (mutation `had_producer_relaxed`: the subscriber can see the flag but
/// not the lock, and take the stream for closed by its producer's exit).
#[test]
fn an_attaching_producer_is_never_taken_for_gone() {
    model(|| {
        let r = ring_close_on_exit(1, Policy::Block);
        let mut s = join(&r);
        let rp = r.clone();
        let producer = thread::spawn(move || {
            let mut st = rp.attach_producer().expect("attach");
            publish(&rp, &mut st, &payload(1, 8));
            st
        });
        let rs = r.clone();
        let subscriber = thread::spawn(move || match rs.wait_frame(&mut s, &mut [], Wait::Forever) {
            Ok(Some(v)) => assert_eq!(v.seq, 0),
            other => panic!("a live producer's stream was taken for closed: {other:?}"),
        });
        subscriber.join().unwrap();
        let st = producer.join().unwrap();
        r.detach_producer(&st);
    });
}
