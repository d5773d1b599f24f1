//! Loom scenarios over the production ring. Each "process" is a loom thread.
//! Run with `cargo test -p shmq-loom-tests --release` (see README.md here).
//!
//! The ring holds two 64-byte frames (8-byte payloads); a 0-byte message
//! takes a 32-byte frame, which is how the scenarios force a padding frame.

use loom::thread;
use shmq::__private::mem::Memory;
use shmq::__private::ring::{ClaimError, Wait};

use shmq::layout::Policy;
use shmq::Start;
use shmq_loom_tests::{
    intact, join, model, payload, publish, publish_batch, recv_block, recv_drain, ring, ring_dead_peers,
};

/// One producer, two subscribers, Block. Message 1 (8 B) and message 2
/// (0 B) fill 96 bytes; message 3 (8 B) does not fit in the last 32, so the
/// producer writes a padding frame and wraps, which it may only do once
/// both subscribers have released message 1.
#[test]
fn block_spmc_wrap_full_and_gating() {
    model(|| {
        let r = ring(2, Policy::Block, false);
        let mut a = join(&r);
        let mut b = join(&r);
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut st = rp.producer_state();
            for (id, len) in [(1u8, 8), (2, 0), (3, 8)] {
                publish(&rp, &mut st, &payload(id, len));
            }
        });
        let rb = r.clone();
        let sb = thread::spawn(move || {
            for (id, len) in [(1u8, 8), (0, 0), (3, 8)] {
                let m = recv_block(&rb, &mut b);
                assert_eq!((intact(&m), m.len()), (id, len));
            }
        });
        for (id, len) in [(1u8, 8), (0, 0), (3, 8)] {
            let m = recv_block(&r, &mut a);
            assert_eq!((intact(&m), m.len()), (id, len));
        }
        p.join().unwrap();
        sb.join().unwrap();
    });
}

/// The single producer's fast path (`fast_limit`), one subscriber: five
/// messages of 8, 0, 0, 8 and 0 bytes (64- and 32-byte frames) through the
/// 128-byte ring. Messages 2, 3 and 5 stay inside a segment already marked,
/// so each is claimed with one comparison against the limit computed at
/// the slow claims of messages 1 and 4. Message 5 lands on message 2's
/// bytes, so its fast claim is only safe if that limit respected the
/// subscriber's cursor as message 4 saw it (mutation `fast_gate`: the
/// subscriber then finds message 2 overwritten and waits forever).
#[test]
fn fast_claims_respect_the_gating_cursor() {
    const MSGS: [(u8, usize); 5] = [(1, 8), (2, 0), (3, 0), (4, 8), (5, 0)];
    model(|| {
        let r = ring(1, Policy::Block, false);
        let mut s = join(&r);
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut st = rp.producer_state();
            for (id, len) in MSGS {
                publish(&rp, &mut st, &payload(id, len));
            }
        });
        for (id, len) in MSGS {
            let m = recv_block(&r, &mut s);
            assert_eq!((intact(&m), m.len()), (if len > 0 { id } else { 0 }, len));
        }
        p.join().unwrap();
    });
}

/// Batches (`publish_batch_fast`), one subscriber: message 1 (8 B, a
/// 64-byte frame), the run of messages 2 and 3 (0 B, two 32-byte frames
/// under one claim and one commit), message 4 (8 B, the next lap's first
/// frame, on message 1's bytes: a slow claim that waits for the subscriber
/// to release message 1), then the run of 5 and 6, which lands on the
/// bytes of messages 2 and 3: its one fast claim is only safe under a
/// limit that respected the subscriber's cursor as message 4's claim saw
/// it. Every message arrives intact, in order, numbered densely. The
/// subscriber reads as a draining one does (`drain_fast`, falling back
/// to the general path). Fails with `commit_relaxed` (a run's stamps
/// publish its frames), `stamp_acquire` (the drain's stamp load) and
/// `fast_gate` (a run claimed past the subscriber's cursor).
#[test]
fn batch_frames_arrive_in_order() {
    const MSGS: [(u8, usize); 6] = [(1, 8), (0, 0), (0, 0), (4, 8), (0, 0), (0, 0)];
    model(|| {
        let r = ring(1, Policy::Block, false);
        let mut s = join(&r);
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut st = rp.producer_state();
            publish(&rp, &mut st, &payload(1, 8));
            publish_batch(&rp, &mut st, &[payload(2, 0), payload(3, 0)]);
            publish(&rp, &mut st, &payload(4, 8));
            publish_batch(&rp, &mut st, &[payload(5, 0), payload(6, 0)]);
        });
        for (seq, (id, len)) in MSGS.into_iter().enumerate() {
            let m = recv_drain(&r, &mut s);
            assert_eq!((intact(&m), m.len()), (id, len));
            assert_eq!(s.expected_seq(), seq as u64 + 1, "message {seq} misnumbered");
        }
        p.join().unwrap();
    });
}

/// Two producers, one subscriber on a multi-producer ring: every message
/// arrives once, intact, in each producer's order. Producer 10 sends one
/// 0-byte message (a 32-byte frame), producer 20 two 8-byte messages
/// (64-byte frames): 160 bytes through the 128-byte ring, so the last
/// claim waits for the subscriber, and when 10 claims first the third
/// frame needs a padding frame at the wrap. (Three messages, not four:
/// with the claim marks of stuck-claim recovery, four took loom 10 minutes.)
#[test]
fn mpsc_claims_are_disjoint_and_ordered() {
    model(|| {
        let r = ring(1, Policy::Block, true);
        let mut s = join(&r);
        let producers: Vec<_> = [(10u8, 0usize, 1u8), (20u8, 8usize, 2u8)]
            .into_iter()
            .map(|(base, len, count)| {
                let r = r.clone();
                // Attached before the thread runs: the claim marks carry it.
                let mut st = r.attach_producer().expect("attach");
                thread::spawn(move || {
                    for i in 0..count {
                        publish(&r, &mut st, &payload(base + i, len));
                    }
                })
            })
            .collect();
        let mut from20 = Vec::new();
        let mut empties = 0;
        for _ in 0..3 {
            let m = recv_block(&r, &mut s);
            if m.is_empty() {
                empties += 1;
            } else {
                from20.push(intact(&m));
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(empties, 1);
        assert_eq!(from20, [20, 21]);
    });
}

/// Overwrite: the producer laps a subscriber that is reading; the
/// subscriber never returns a torn message, and received + lost is exactly
/// what was published.
#[test]
fn overwrite_lapped_reader_never_tears_and_counts_exactly() {
    model(|| {
        let r = ring(1, Policy::Overwrite, false);
        let mut s = join(&r);
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut st = rp.producer_state();
            for id in 1..=3u8 {
                publish(&rp, &mut st, &payload(id, 8));
            }
        });
        let mut buf = [0u8; 8];
        let mut last = 0u8;
        let mut received = 0u64;
        while last < 3 {
            match r.read_copy(&mut s, &mut buf).expect("read") {
                Some(v) => {
                    let id = intact(&buf[..v.len as usize]);
                    assert!(id > last, "out of order: {id} after {last}");
                    assert_eq!(v.lost, (id - last - 1) as u64, "loss count");
                    last = id;
                    received += 1;
                }
                None => thread::yield_now(),
            }
        }
        assert_eq!(received + s.lost(), 3);
        p.join().unwrap();
    });
}

/// A subscriber going to sleep while the producer publishes never misses
/// the wake (a lost wake is a deadlock, which loom reports).
#[test]
fn subscriber_sleep_never_misses_a_wake() {
    model(|| {
        let r = ring(1, Policy::Block, false);
        let mut s = join(&r);
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut st = rp.producer_state();
            publish(&rp, &mut st, &payload(7, 8));
        });
        assert_eq!(intact(&recv_block(&r, &mut s)), 7);
        p.join().unwrap();
    });
}

/// A producer waiting for space never misses the subscriber's release.
#[test]
fn producer_sleep_never_misses_a_release() {
    model(|| {
        let r = ring(1, Policy::Block, false);
        let mut s = join(&r);
        let mut st = r.producer_state();
        // Two 64-byte frames fill the ring.
        publish(&r, &mut st, &payload(1, 8));
        publish(&r, &mut st, &payload(2, 8));
        assert_eq!(r.claim(&mut st, 8, Wait::Now).unwrap_err(), ClaimError::Full);
        let rs = r.clone();
        let c = thread::spawn(move || {
            assert_eq!(intact(&recv_block(&rs, &mut s)), 1);
            s
        });
        publish(&r, &mut st, &payload(3, 8)); // sleeps until the release
        let mut s = c.join().unwrap();
        assert_eq!(intact(&recv_block(&r, &mut s)), 2);
        assert_eq!(intact(&recv_block(&r, &mut s)), 3);
    });
}

/// A subscriber joins (and then leaves) while the producer publishes with
/// no other subscriber: whatever it receives is intact and contiguous, and
/// the producer never overwrites bytes it is reading (loom reports a race
/// on the payload cells). This scenario found the Relaxed epoch load
/// (see `Ring::gate_ok`).
#[test]
fn join_and_leave_while_publishing() {
    model(|| {
        let r = ring(1, Policy::Block, false);
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut st = rp.producer_state();
            for id in 1..=4u8 {
                publish(&rp, &mut st, &payload(id, 8));
            }
        });
        let mut s = r.join(Start::Newest, b"late").expect("slot");
        let mut prev = None;
        for _ in 0..2 {
            match r.peek(&mut s).expect("read") {
                Some(v) => {
                    let mut out = vec![0; v.len as usize];
                    // SAFETY: committed frame at our cursor; loom checks it.
                    unsafe { r.mem.read(v.payload_off, &mut out) };
                    let id = intact(&out);
                    if let Some(p) = prev {
                        assert_eq!(id, p + 1);
                    }
                    prev = Some(id);
                    r.release(&mut s, &v);
                }
                None => thread::yield_now(),
            }
        }
        r.leave(&s);
        p.join().unwrap();
    });
}

/// A grant dropped without commit becomes padding: the subscriber skips
/// it and receives the next messages, across a wrap.
#[test]
fn aborted_claim_becomes_padding() {
    model(|| {
        let r = ring(1, Policy::Block, false);
        let mut s = join(&r);
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut st = rp.producer_state();
            let c = rp.claim(&mut st, 8, Wait::Now).expect("room");
            rp.abort(&mut st, &c);
            publish(&rp, &mut st, &payload(5, 8));
            publish(&rp, &mut st, &payload(6, 8));
        });
        assert_eq!(intact(&recv_block(&r, &mut s)), 5);
        assert_eq!(intact(&recv_block(&r, &mut s)), 6);
        p.join().unwrap();
    });
}

/// The same on a multi-producer topic, where a dropped grant becomes
/// padding through a CAS from the producer's claim mark: the subscriber
/// that finds the padding stamp must see its length word (mutation
/// `abort_relaxed`: it reads the old word instead and delivers an empty
/// message that was never published).
#[test]
fn mp_dropped_grant_becomes_padding() {
    model(|| {
        let r = ring(1, Policy::Block, true);
        let mut s = join(&r);
        let rp = r.clone();
        let mut st = r.attach_producer().expect("attach");
        let p = thread::spawn(move || {
            let c = rp.claim(&mut st, 8, Wait::Now).expect("room");
            rp.abort(&mut st, &c);
            publish(&rp, &mut st, &payload(5, 8));
        });
        let m = recv_block(&r, &mut s);
        assert_eq!((intact(&m), m.len()), (5, 8), "the dropped grant is skipped, not delivered");
        p.join().unwrap();
    });
}

/// A subscriber that looks for a corrupt frame (`skip_corrupt_single`:
/// not committed at its cursor while a later one is) while the producer
/// commits must never take a frame that is merely slow to show for a
/// corrupt one: both messages arrive (mutation `corrupt_no_recheck`: its
/// first look at the cursor can be older than the look that found the
/// later frame committed, and it pads over message 1).
#[test]
fn a_slow_frame_is_never_taken_for_a_corrupt_one() {
    model(|| {
        let r = ring(1, Policy::Block, false);
        let mut s = join(&r);
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut st = rp.producer_state();
            publish(&rp, &mut st, &payload(1, 8));
            publish(&rp, &mut st, &payload(2, 8));
        });
        r.skip_corrupt_single(&mut s);
        assert_eq!(intact(&recv_block(&r, &mut s)), 1, "message 1 was padded over");
        assert_eq!(intact(&recv_block(&r, &mut s)), 2);
        p.join().unwrap();
    });
}

/// A multi-producer died holding a claim; one subscriber aborts it (every
/// peer looks dead here, and each clock read is a second later, so its
/// third look aborts) while another looks at the same frame a few times.
/// Whenever the other one moves on, it has skipped the aborted claim
/// whole: the `Release` of the `ABORTED` stamp publishes the skip length
/// to its `Acquire` load (mutation `aborted_relaxed`: it can find the
/// stamp but the claim's old length word, and skip 32 bytes instead of 64).
#[test]
fn another_subscriber_skips_an_aborted_claim() {
    model(|| {
        let r = ring_dead_peers(2, Policy::Block, true);
        let mut a = join(&r);
        let mut b = join(&r);
        let mut st = r.producer_state();
        let _dead = r.claim(&mut st, 8, Wait::Now).expect("room"); // never committed
        let rb = r.clone();
        let other = thread::spawn(move || {
            // A bounded look: no spinning on a peer.
            for _ in 0..2 {
                assert_eq!(rb.peek(&mut b).expect("an aborted claim is skipped, not corrupt"), None);
                if b.cursor() != 0 {
                    assert_eq!(b.cursor(), 64, "the aborted claim is skipped whole");
                    break;
                }
                thread::yield_now();
            }
        });
        let mut looks = 0;
        while !r.unstick(&mut a) {
            looks += 1;
            assert!(looks < 3, "aborted on the third look");
        }
        assert_eq!(r.peek(&mut a).expect("skip"), None);
        assert_eq!(a.cursor(), 64, "the aborted claim is skipped whole");
        other.join().unwrap();
    });
}

/// Overwrite: a subscriber joins from the oldest message while the
/// producer publishes and laps the ring. Positioning reads the header of
/// the frame it starts at to learn that message's sequence number, which
/// every later loss count is measured from. Every frame here is 64 bytes
/// with no padding, so the message at position `p` has sequence `p / 64`:
/// the subscriber's cursor and expected sequence must agree, and whatever
/// it then receives is intact, in order and counted exactly (mutations
/// `header_acquire`, `header_fence`: the header read is stale or torn and
/// the starting sequence wrong).
#[test]
fn overwrite_subscriber_joins_while_publishing() {
    model(|| {
        let r = ring(1, Policy::Overwrite, false);
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut st = rp.producer_state();
            for id in 1..=3u8 {
                publish(&rp, &mut st, &payload(id, 8));
            }
        });
        let mut s = r.join(Start::Oldest, b"late").expect("slot");
        assert_eq!(s.expected_seq(), s.cursor() / 64, "positioned at {} with the wrong sequence", s.cursor());
        let mut buf = [0u8; 8];
        let mut first: Option<(u8, u64)> = None;
        let mut last = 0u8;
        for _ in 0..3 {
            match r.read_copy(&mut s, &mut buf).expect("read") {
                Some(v) => {
                    let id = intact(&buf[..v.len as usize]);
                    assert_eq!(v.seq, id as u64 - 1, "message {id} carries its sequence number");
                    assert!(id > last, "out of order: {id} after {last}");
                    if first.is_none() {
                        first = Some((id, v.lost));
                    } else {
                        assert_eq!(v.lost, (id - last - 1) as u64, "loss count");
                    }
                    last = id;
                }
                None => thread::yield_now(),
            }
        }
        if let Some((id, lost)) = first {
            // The first message's loss count is measured from where the
            // subscriber was placed: never more than the messages before it.
            assert!(lost < id as u64, "lost {lost} before message {id}");
        }
        p.join().unwrap();
    });
}

/// Multi-producer stuck-claim recovery racing a live producer that looks
/// dead (every peer does here, and each clock read is a second later, so
/// the subscriber aborts whatever it finds unfinished, marked or not): the
/// claim is either committed and then delivered intact, or lost and
/// reported to its producer; never committed behind a skip, never torn.
#[test]
fn stuck_claim_abort_races_commit() {
    model(|| {
        let r = ring_dead_peers(1, Policy::Block, true);
        let mut s = join(&r);
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut st = rp.producer_state();
            match rp.claim(&mut st, 8, Wait::Now) {
                Ok(c) => {
                    rp.write_payload(&c, &payload(4, 8));
                    rp.commit(&mut st, &c, 8, 0)
                }
                Err(ClaimError::Lost) => false,
                Err(e) => panic!("claim: {e:?}"),
            }
        });
        // First look records the stuck position, the second finds the
        // timeout passed (a marked claim is aborted), the third confirms an
        // unmarked claim's end and aborts it.
        for _ in 0..3 {
            r.unstick(&mut s);
        }
        let committed = p.join().unwrap();
        match r.peek(&mut s).expect("read") {
            Some(v) => {
                assert!(committed, "a frame the producer was told is lost was delivered");
                let mut out = vec![0; v.len as usize];
                // SAFETY: a committed frame at our cursor (see recv_block).
                unsafe { r.mem.read(v.payload_off, &mut out) };
                assert_eq!(intact(&out), 4);
            }
            None => {
                assert!(!committed, "a committed frame was skipped: cursor {}", s.cursor());
                assert_eq!(s.cursor(), 64, "the aborted claim is skipped whole");
            }
        }
    });
}

/// Consumer group: two members (threads) share a stream through the
/// two-frame ring: message 1, then one end marker (id 9) per member. Each
/// message is taken by exactly one member and read intact; the producer,
/// gated by the group cursor and the members' announced frames, never
/// overwrites a message a member holds (loom reports that as a causality
/// violation on the payload cells); a member waiting for the next message
/// is always woken.
#[test]
fn group_members_take_each_message_once() {
    // Three threads over a wrapping ring: bound 1 keeps it to about a
    // minute; it still finds the lost wake this scenario was written for.
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(1);
    b.check(|| {
        let r = ring(3, Policy::Block, false);
        let mut a = r.join_group(b"g").expect("slot");
        let mut b = r.join_group(b"g").expect("slot");
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut st = rp.producer_state();
            for id in [1u8, 9, 9] {
                publish(&rp, &mut st, &payload(id, 8));
            }
        });
        let rb = r.clone();
        let other = thread::spawn(move || take_until_end(&rb, &mut b));
        let mut all = take_until_end(&r, &mut a);
        all.extend(other.join().unwrap());
        p.join().unwrap();
        all.sort();
        assert_eq!(all, [1, 9, 9], "each message exactly once");
    });
}

fn take_until_end(
    r: &shmq::__private::ring::Ring<shmq::__private::loom_mem::LoomMem>,
    st: &mut shmq::__private::ring::SubState,
) -> Vec<u8> {
    let mut mine = Vec::new();
    loop {
        let id = intact(&recv_block(r, st));
        mine.push(id);
        if id == 9 {
            return mine;
        }
    }
}
