//! Loom scenarios over ownership: who holds a slot, a name or the producer
//! line, and how it passes on when its holder leaves or dies (attachments
//! and their kernel locks, modelled by `LoomMem`: see its docs).
//!
//! A thread that tests another's lock runs in a thread spawned for it:
//! loom did not explore a stale read by the model's main thread after it
//! had spawned (see "A lesson for writing scenarios" in README.md), and a
//! stale lock read is the failure these scenarios look for.

use loom::thread;
use shmq::__private::mem::Memory;
use shmq::__private::ring::{DeadLetters, FrameView, JoinError, Sink, Wait};
use std::sync::atomic::Ordering::Relaxed;

use shmq::__private::loom_mem::{set_pid, LoomMem};
use shmq::__private::ring::Ring;
use shmq::layout::{self, Policy};
use shmq_loom_tests::{intact, join, model, payload, publish, recv_block, ring, ring_fast_clock};

/// A durable subscriber's hand-over: its first owner receives message 1,
/// releases it and leaves (detaches); a second process attaching under the
/// same name at the same time gets the slot only after that, and resumes
/// at message 2 (mutation `durable_relaxed`: the take-over CAS no longer
/// acquires the first owner's cursor, and message 1 is delivered again).
#[test]
fn durable_subscriber_resumes_where_its_owner_left() {
    model(|| {
        let r = ring(2, Policy::Block, false);
        let mut a = r.join_durable(b"d").expect("first owner");
        let mut st = r.producer_state();
        publish(&r, &mut st, &payload(1, 8));
        publish(&r, &mut st, &payload(2, 8));
        let ra = r.clone();
        let first = thread::spawn(move || {
            assert_eq!(intact(&recv_block(&ra, &mut a)), 1);
            ra.leave(&a);
        });
        let mut b = loop {
            match r.join_durable(b"d") {
                Ok(b) => break b,
                Err(JoinError::Taken(_)) => thread::yield_now(),
                Err(e) => panic!("{e:?}"),
            }
        };
        assert_eq!(intact(&recv_block(&r, &mut b)), 2, "resumes after the last released message");
        first.join().unwrap();
    });
}

/// A detached durable subscriber is taken over by two processes at once:
/// exactly one gets it, the other is told it is taken. The winner's CAS
/// publishes its attachment (whose lock it took first) with `Release`
/// (mutation `takeover_publish`), the loser loads the owner with `Acquire`
/// (mutation `takeover_owner_acquire`) and finds the lock held; without
/// either, the loser can see the winner's id but not its lock, take it for
/// dead and take the slot too.
#[test]
fn durable_take_over_is_exclusive() {
    model(|| {
        let r = ring(2, Policy::Block, false);
        let first = r.join_durable(b"d").expect("create");
        r.leave(&first); // detached: owner none, cursor kept
        let takers: Vec<_> = (0..2)
            .map(|_| {
                let rt = r.clone();
                thread::spawn(move || rt.join_durable(b"d").is_ok())
            })
            .collect();
        let got: Vec<bool> = takers.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(got[0] ^ got[1], "exactly one takes the slot over: {got:?}");
    });
}

/// A group member dies holding a message; a member that has just joined and
/// one that was there before look for dead members at once. Exactly one
/// adopts and redelivers it: the adopter's CAS publishes its attachment
/// with `Release` (mutation `adopt_publish`), the other loads the owner
/// with `Acquire` (mutation `adopt_owner_acquire`) and finds it alive;
/// without either, the other can see the newcomer's id in the dead
/// member's slot but not its lock, and deliver the message a second time.
#[test]
fn adoption_is_exclusive() {
    model(|| {
        let r = ring_fast_clock(4, Policy::Block, false);
        let mut dying = r.join_group(b"g").expect("slot");
        let mut old = r.join_group(b"g").expect("slot");
        let mut st = r.producer_state();
        publish(&r, &mut st, &payload(1, 8));
        let held = r.peek(&mut dying).expect("read").expect("message 1");
        assert_eq!(held.seq, 0);
        r.mem.kill(dying.attachment());
        let rn = r.clone();
        let newcomer = thread::spawn(move || {
            let mut x = rn.join_group(b"g").expect("slot");
            rn.peek(&mut x).expect("read").map(|v| v.seq)
        });
        let ro = r.clone();
        let before = thread::spawn(move || ro.peek(&mut old).expect("read").map(|v| v.seq));
        let (a, b) = (newcomer.join().unwrap(), before.join().unwrap());
        assert!(!(a == Some(0) && b == Some(0)), "message 1 was redelivered to both members");
    });
}

/// A process takes over a detached durable subscriber while a blocked
/// producer reaps: the reaper must see the new owner alive and leave it
/// attached. The taker's CAS publishes its attachment (whose lock it took
/// first) with `Release` (mutation `takeover_publish`), the reaper loads
/// the owner with `Acquire` (mutation `reap_owner_acquire`).
#[test]
fn reaping_never_detaches_a_live_durable_owner() {
    model(|| {
        let r = ring(1, Policy::Block, false);
        let first = r.join_durable(b"d").expect("create");
        r.leave(&first); // detached: owner none
        let rt = r.clone();
        let taker = thread::spawn(move || rt.join_durable(b"d").expect("take over"));
        let rr = r.clone();
        thread::spawn(move || rr.reap_dead()).join().unwrap();
        let st = taker.join().unwrap();
        let s = r.layout.slot(st.slot());
        assert_eq!(r.mem.load64(s + layout::slot::OWNER, Relaxed), st.attachment(), "a live owner was detached");
    });
}

/// `shmq rm`-style removal of a durable subscriber races a process taking
/// it over: the remover must see the new owner alive and refuse, so the
/// taker never holds a slot that was freed under it (mutation
/// `remove_owner_acquire`: the remover loads the owner with `Relaxed`, can
/// see the taker's id but not its lock, and frees the slot).
#[test]
fn removal_never_frees_a_live_durable_subscriber() {
    model(|| {
        let r = ring(1, Policy::Block, false);
        let first = r.join_durable(b"d").expect("create");
        r.leave(&first); // detached: owner none
        let rt = r.clone();
        let taker = thread::spawn(move || rt.join_durable(b"d").expect("take over or create"));
        let rr = r.clone();
        thread::spawn(move || {
            let _ = rr.remove_durable(b"d");
        })
        .join()
        .unwrap();
        let st = taker.join().unwrap();
        let s = r.layout.slot(st.slot());
        assert_eq!(r.mem.load32(s + layout::slot::STATE, Relaxed), layout::slot::state::ACTIVE, "its slot was freed");
        assert_eq!(r.mem.load64(s + layout::slot::OWNER, Relaxed), st.attachment(), "it was detached");
    });
}

/// Two processes create the same durable subscriber at once: the names
/// lock makes find-or-create atomic, so exactly one holds the name and the
/// other is told it is taken (mutation `names_unlocked`: without the lock
/// both can search before either creates, and both succeed with two slots
/// of one name).
#[test]
fn named_slots_are_created_once() {
    model(|| {
        let r = ring(2, Policy::Block, false);
        let rb = r.clone();
        let other = thread::spawn(move || rb.join_durable(b"n").is_ok());
        let mine = r.join_durable(b"n").is_ok();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one holds the name (here: {mine}, there: {theirs})");
    });
}

/// A blocked producer reaps dead subscribers while a new subscriber takes
/// the slot another left (its attachment, now dead, still in the slot's
/// owner word). The reaper must see the new owner, alive, and leave the
/// slot alone (mutation `reap_acquire`: it can see the slot active but the
/// dead attachment, and free a live subscriber's slot).
#[test]
fn reaping_never_frees_a_live_subscriber() {
    model(|| {
        let r = ring(1, Policy::Block, false);
        set_pid(9);
        let old = join(&r);
        r.leave(&old); // the slot is free again; its owner word still names old's attachment
        r.mem.kill(old.attachment());
        set_pid(1);
        let rs = r.clone();
        let joiner = thread::spawn(move || {
            set_pid(2);
            join(&rs).slot()
        });
        r.reap_dead();
        let slot = r.layout.slot(joiner.join().unwrap());
        assert_eq!(
            r.mem.load32(slot + layout::slot::STATE, Relaxed),
            layout::slot::state::ACTIVE,
            "a live subscriber was reaped"
        );
        assert_eq!(r.mem.load64(slot + layout::slot::PID, Relaxed) as u32, 2, "the display pid is the joiner's");
    });
}

/// One single producer publishes and detaches while another attaches as
/// soon as it may, and publishes: the second picks up the tail and the
/// sequence numbers the first left, so the subscriber receives both
/// messages intact, numbered 0 and 1 (mutation `owner_acquire`: the
/// second can start from a stale tail and write over the first's frame).
#[test]
fn producer_handover_keeps_the_stream() {
    model(|| {
        let r = ring(1, Policy::Block, false);
        let mut s = join(&r);
        let attach = |r: &Ring<LoomMem>| loop {
            match r.attach_producer() {
                Ok(st) => break st,
                Err(_) => thread::yield_now(),
            }
        };
        let ra = r.clone();
        let first = thread::spawn(move || {
            let mut st = attach(&ra);
            publish(&ra, &mut st, &payload(1, 8));
            ra.detach_producer(&st);
        });
        let mut st = attach(&r);
        publish(&r, &mut st, &payload(2, 8));
        r.detach_producer(&st);
        first.join().unwrap();
        let mut ids = Vec::new();
        for seq in 0..2 {
            let v = r.wait_frame(&mut s, &mut [], Wait::Forever).expect("read").expect("a frame");
            assert_eq!(v.seq, seq, "sequence numbers continue across producers");
            let mut out = vec![0; v.len as usize];
            // SAFETY: a committed frame at our cursor; loom checks the read.
            unsafe { r.mem.read(v.payload_off, &mut out) };
            ids.push(intact(&out));
            r.release(&mut s, &v);
        }
        ids.sort();
        assert_eq!(ids, [1, 2]);
    });
}

/// A group member takes message 1 and dies holding it; the other member
/// adopts it (the clock runs fast, so its liveness check is due), reads it
/// and releases it, which frees the dead member's slot. The producer, which
/// needs that space for message 3, may overwrite message 1 only after the
/// adopter has read it (mutation `scan_state_acquire`: the producer's scan
/// sees the slot free without the adopter's reads ordered before it).
/// The scenario both tests below share: a member of group "g" (with
/// `max_deliveries`) dies holding message 1; the other member, with `sink`
/// as its dead-letter sink, takes `want` messages while the producer
/// publishes messages 2 and 3 (3 reuses message 1's bytes), releasing each.
/// Returns what it got, sorted.
fn dead_member_then_take(max_deliveries: Option<u32>, sink: Option<Sink>, want: usize) -> Vec<u8> {
    let r = ring_fast_clock(3, Policy::Block, false);
    set_pid(7);
    let mut dying = r.join_group_with(b"g", max_deliveries).expect("slot");
    set_pid(1);
    let mut other = r.join_group_with(b"g", max_deliveries).expect("slot");
    other.set_dead_letters(sink);
    let mut st = r.producer_state();
    publish(&r, &mut st, &payload(1, 8));
    set_pid(7);
    let held = r.peek(&mut dying).expect("read").expect("message 1");
    assert_eq!(held.seq, 0);
    r.mem.kill(dying.attachment()); // dies holding message 1
    set_pid(1);
    let rp = r.clone();
    let p = thread::spawn(move || {
        publish(&rp, &mut st, &payload(2, 8));
        publish(&rp, &mut st, &payload(3, 8)); // reuses message 1's bytes
    });
    let mut got = Vec::new();
    while got.len() < want {
        match r.peek(&mut other).expect("read") {
            Some(v) => {
                let mut out = vec![0; v.len as usize];
                // SAFETY: a frame this member holds; loom checks the read.
                unsafe { r.mem.read(v.payload_off, &mut out) };
                got.push(intact(&out));
                r.release(&mut other, &v);
            }
            None => thread::yield_now(),
        }
    }
    p.join().unwrap();
    got.sort();
    got
}

#[test]
fn group_redelivers_a_dead_members_message_before_reusing_it() {
    model(|| {
        let got = dead_member_then_take(None, None, 3);
        assert_eq!(got, [1, 2, 3], "each message once, message 1 redelivered");
    });
}

/// A dead-letter sink that keeps what it was given (checked intact).
struct Keep(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl DeadLetters for Keep {
    fn bury(&mut self, _: &FrameView, payload: &[u8], deliveries: u32, rejected: bool, _: bool) -> bool {
        assert_eq!((deliveries, rejected), (1, false));
        self.0.lock().expect("not poisoned").push(intact(payload));
        true
    }
}

/// Poison burial: a member of a group with `max_deliveries` 1 dies
/// holding message 1; the other member, instead of redelivering it, copies
/// it to its dead-letter sink and frees the dead slot, while the producer
/// publishes messages 2 and 3 (3 reuses message 1's bytes). The sink gets
/// message 1 intact, the member gets 2 and 3 (mutation `bury_free_relaxed`:
/// the free no longer orders the copy before the producer's overwrite).
#[test]
fn group_buries_a_poison_message_before_reusing_it() {
    model(|| {
        let buried = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let got = dead_member_then_take(Some(1), Some(Sink(Box::new(Keep(buried.clone())))), 2);
        assert_eq!(got, [2, 3], "message 1 buried, not redelivered");
        assert_eq!(*buried.lock().expect("not poisoned"), [1]);
    });
}
