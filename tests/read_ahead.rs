//! Reading ahead (pipelined acknowledgement): messages received without
//! being released stay in the ring and hold a `Block` producer back until
//! `release_through` publishes a position past them.

mod common;
use common::TestDir;
use shmq::{PublishError, RecvError, Topic, Wait};

fn payload(i: u32, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

#[test]
fn held_messages_hold_the_producer_back_until_released_in_order() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts().capacity(4096).max_message(256)).unwrap();
    let mut sub = t.subscribe().unwrap();
    let mut p = t.producer().unwrap();
    // Fill the ring: 200-byte payloads, 232-byte frames, so the ring wraps
    // with padding while messages are held.
    let mut sent = 0u32;
    while p.try_publish(&payload(sent, 200)).is_ok() {
        sent += 1;
    }
    assert!(sent >= 10, "{sent}");
    // Read everything ahead: the producer still finds the ring full.
    let mut held = Vec::new();
    for _ in 0..sent {
        held.push(sub.recv_ahead_raw(Wait::Now).unwrap());
    }
    assert_eq!(sub.recv_ahead_raw(Wait::Now).unwrap_err(), RecvError::Empty);
    assert_eq!(p.try_publish(&payload(sent, 200)), Err(PublishError::Full));
    assert_eq!(sub.released_position(), 0);
    assert_eq!(t.info().subscribers[0].cursor, 0);

    // Release the first half: room comes back and is reused while the
    // second half is still held.
    let half = sent as usize / 2;
    assert!(sub.release_through(held[half - 1].1));
    assert_eq!(sub.released_position(), held[half - 1].1.position());
    assert_eq!(t.info().subscribers[0].cursor, held[half - 1].1.position());
    assert!(!sub.release_through(held[0].1), "already released");
    let mut more = 0u32;
    while p.try_publish(&payload(sent + more, 200)).is_ok() {
        more += 1;
    }
    assert!(more >= 1 && more as usize <= half, "{more} of {half}");
    // The held messages were not overwritten.
    for (i, (m, _)) in held.iter().enumerate().skip(half) {
        // SAFETY: not released: the payload stays in the mapping, unwritten.
        let data = unsafe { std::slice::from_raw_parts(m.data, m.len) };
        assert_eq!(data, payload(i as u32, 200), "held message {i}");
    }
    // The new ones follow them, and releasing the last releases them all.
    let mut last = None;
    for i in 0..more {
        let (ok, ack) = sub.recv_ahead(Wait::Now, |m| m == payload(sent + i, 200)).unwrap();
        assert!(ok, "new message {i}");
        last = Some(ack);
    }
    assert!(sub.release_through(last.unwrap()));
    assert_eq!(t.info().subscribers[0].cursor, sub.position());
    p.try_publish(b"room again").unwrap();
}

#[test]
fn a_durable_subscriber_resumes_at_the_first_unreleased_message() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts().capacity(64 << 10)).unwrap();
    let mut sub = t.subscribe_durable("bridge").unwrap();
    let mut p = t.producer().unwrap();
    for i in 0..10u32 {
        p.publish(&i.to_le_bytes()).unwrap();
    }
    let mut acks = Vec::new();
    for i in 0..8u32 {
        let (v, ack) = sub.recv_ahead(Wait::Now, |m| u32::from_le_bytes(m.try_into().unwrap())).unwrap();
        assert_eq!(v, i);
        acks.push(ack);
    }
    // Confirmed through message 4 (index 4); 5..7 were read but not confirmed.
    assert!(sub.release_through(acks[4]));
    drop(sub); // as if the process died
    let mut sub = t.subscribe_durable("bridge").unwrap();
    for i in 5..10u32 {
        let m = sub.recv_timeout(std::time::Duration::from_secs(1)).unwrap();
        assert_eq!(u32::from_le_bytes((&*m).try_into().unwrap()), i);
    }
}

#[test]
fn ordinary_receives_while_holding_stay_held_until_released_through() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts().capacity(64 << 10)).unwrap();
    let mut sub = t.subscribe().unwrap();
    let mut p = t.producer().unwrap();
    for i in 0..4u8 {
        p.publish(&[i]).unwrap();
    }
    let (_, first) = sub.recv_ahead(Wait::Now, |_| ()).unwrap();
    assert_eq!(&*sub.try_recv().unwrap(), [1]); // released on drop, but held behind `first`
    assert_eq!(sub.released_position(), 0);
    let (_, third) = sub.recv_ahead(Wait::Now, |_| ()).unwrap();
    assert!(sub.release_through(first));
    assert_eq!(t.info().subscribers[0].cursor, first.position());
    assert!(sub.release_through(third));
    assert_eq!(sub.released_position(), sub.position());
    // Nothing held any more: ordinary receives publish at once again.
    drop(sub.try_recv().unwrap());
    assert_eq!(t.info().subscribers[0].cursor, sub.position());
}

#[test]
fn group_members_and_overwrite_subscribers_cannot_read_ahead() {
    let d = TestDir::new();
    let t = Topic::create("b", &d.opts().capacity(64 << 10)).unwrap();
    let mut member = t.subscribe_group("g").unwrap();
    assert!(!member.can_read_ahead());
    assert_eq!(member.recv_ahead_raw(Wait::Now).unwrap_err(), RecvError::NoReadAhead);
    let o = Topic::create("o", &d.opts().capacity(64 << 10).policy(shmq::Policy::Overwrite)).unwrap();
    let mut sub = o.subscribe().unwrap();
    assert!(!sub.can_read_ahead());
    let err = sub.recv_ahead_raw(Wait::Now).unwrap_err();
    assert_eq!(err, RecvError::NoReadAhead);
    assert!(err.to_string().contains("group member"), "{err}");
}
