//! In-process behaviour of one topic: the basics every other test builds on.

mod common;
use common::TestDir;
use shmq::{Policy, PublishError, RecvError, Start, Topic};
use std::time::Duration;

#[test]
fn publish_then_receive_in_order() {
    let d = TestDir::new();
    let topic = Topic::create("t", &d.opts().capacity(4096).max_message(100)).unwrap();
    let mut sub = topic.subscribe().unwrap();
    let mut p = topic.producer().unwrap();
    for round in 0..50u32 {
        for i in 0..20u32 {
            let v = round * 100 + i;
            let len = (v % 90) as usize;
            let mut msg = vec![(v & 0xff) as u8; len + 4];
            msg[..4].copy_from_slice(&v.to_le_bytes());
            p.publish(&msg).unwrap();
        }
        for i in 0..20u32 {
            let v = round * 100 + i;
            let m = sub.try_recv().unwrap();
            assert_eq!(u32::from_le_bytes(m[..4].try_into().unwrap()), v);
            assert_eq!(m.len(), (v % 90) as usize + 4);
            assert!(m[4..].iter().all(|&b| b == (v & 0xff) as u8));
        }
        assert_eq!(sub.try_recv().unwrap_err(), RecvError::Empty);
    }
}

#[test]
fn block_full_ring_returns_full_and_resumes() {
    let d = TestDir::new();
    let topic = Topic::create("t", &d.opts().capacity(1024).max_message(64)).unwrap();
    let mut sub = topic.subscribe().unwrap();
    let mut p = topic.producer().unwrap();
    let mut sent = 0u32;
    loop {
        match p.try_publish(&sent.to_le_bytes()) {
            Ok(()) => sent += 1,
            Err(PublishError::Full) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // 1024-byte ring, 64-byte frames: 16 fit.
    assert_eq!(sent, 16);
    assert_eq!(p.publish_timeout(b"x", Duration::from_millis(20)), Err(PublishError::Full));
    for i in 0..sent {
        assert_eq!(sub.try_recv().unwrap()[..], i.to_le_bytes());
    }
    p.try_publish(b"again").unwrap();
    assert_eq!(&*sub.try_recv().unwrap(), b"again");
}

/// On a 64 KiB ring most claims take the single producer's fast path (one
/// comparison against a limit computed at the last slow claim). Full must
/// still come exactly when the slowest cursor is a ring behind, lap after
/// lap, whatever the subscriber released in between.
#[test]
fn full_is_exact_when_claims_take_the_fast_path() {
    let d = TestDir::new();
    let topic = Topic::create("t", &d.opts().capacity(64 << 10).max_message(1024)).unwrap();
    let mut sub = topic.subscribe().unwrap();
    let mut p = topic.producer().unwrap();
    // 24-byte payloads: 64-byte frames, 1024 to a lap, no padding ever.
    let (mut sent, mut got) = (0u64, 0u64);
    for release in [0u64, 1, 7, 100, 333, 1024, 5, 512] {
        for _ in 0..release {
            let m = sub.try_recv().unwrap();
            assert_eq!(m[..8], got.to_le_bytes());
            got += 1;
        }
        loop {
            let mut msg = [0u8; 24];
            msg[..8].copy_from_slice(&sent.to_le_bytes());
            match p.try_publish(&msg) {
                Ok(()) => sent += 1,
                Err(PublishError::Full) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(sent - got, 1024, "after releasing {release}: the ring holds exactly one lap");
    }
}

/// Overwrite, fast path: the oldest frame the producer advertises (kept in
/// 64 segments a lap, off the fast path) is never a frame already
/// overwritten, stays within two segments of the true oldest, and reading
/// from it gives contiguous messages.
#[test]
fn oldest_stays_close_behind_on_the_fast_path() {
    let d = TestDir::new();
    let cap = 64u64 << 10;
    let topic = Topic::create("t", &d.opts().capacity(cap).max_message(1024).policy(Policy::Overwrite)).unwrap();
    let mut p = topic.producer().unwrap();
    let total = 10_000u64;
    for k in 0..total {
        p.publish(&k.to_le_bytes()).unwrap(); // 40-byte frames padded to 64: 1024 a lap
        let (tail, oldest) = ((k + 1) * 64, topic.tail(Start::Oldest).unwrap().position());
        // Segments of 1 KiB: at most two (and the frame in flight) behind.
        let lo = tail.saturating_sub(cap);
        assert!((lo..=lo + 2048 + 64).contains(&oldest), "after {k}: oldest {oldest}, tail {tail}");
    }
    let mut old = topic.subscribe_from_oldest().unwrap();
    let first = u64::from_le_bytes(old.try_recv().unwrap()[..8].try_into().unwrap());
    assert!((total - 1024..=total - 1024 + 32).contains(&first), "oldest is message {first}");
    for k in first + 1..total {
        assert_eq!(old.try_recv().unwrap()[..8], k.to_le_bytes());
    }
    assert_eq!(old.try_recv().unwrap_err(), RecvError::Empty);
}

#[test]
fn overwrite_reports_lagged_and_counts_add_up() {
    let d = TestDir::new();
    let topic = Topic::create("t", &d.opts().capacity(1024).max_message(64).policy(Policy::Overwrite)).unwrap();
    let mut sub = topic.subscribe().unwrap();
    let mut p = topic.producer().unwrap();
    for i in 0..100u32 {
        p.try_publish(&i.to_le_bytes()).unwrap();
    }
    let mut got = Vec::new();
    let mut lost = 0;
    loop {
        match sub.try_recv() {
            Ok(m) => got.push(u32::from_le_bytes(m[..4].try_into().unwrap())),
            Err(RecvError::Lagged(n)) => lost += n,
            Err(RecvError::Empty) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(lost > 0);
    assert_eq!(got.len() as u64 + lost, 100);
    assert_eq!(*got.last().unwrap(), 99);
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(got[0] as u64, lost);
}

#[test]
fn overwrite_copies_every_length_exactly() {
    // Overwrite readers copy short payloads word by word and long ones in
    // bulk: every length around the switch, and odd tails, arrive exact.
    let d = TestDir::new();
    let topic = Topic::create("t", &d.opts().capacity(1 << 16).max_message(2048).policy(Policy::Overwrite)).unwrap();
    let mut sub = topic.subscribe().unwrap();
    let mut p = topic.producer().unwrap();
    for len in (0..=2048).step_by(13).chain(240..=264) {
        let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        p.publish(&msg).unwrap();
        let m = sub.try_recv().unwrap();
        assert_eq!(&*m, &msg[..], "length {len}");
    }
}

#[test]
fn too_large_and_zero_length_and_exact_max() {
    let d = TestDir::new();
    let topic = Topic::create("t", &d.opts().capacity(4096).max_message(1000)).unwrap();
    let mut sub = topic.subscribe().unwrap();
    let mut p = topic.producer().unwrap();
    assert_eq!(p.publish(&[0; 1001]), Err(PublishError::TooLarge { len: 1001, max: 1000 }));
    p.publish(b"").unwrap();
    p.publish(&[7; 1000]).unwrap();
    assert_eq!(sub.try_recv().unwrap().len(), 0);
    let m = sub.try_recv().unwrap();
    assert_eq!(m.len(), 1000);
    assert!(m.iter().all(|&b| b == 7));
}

#[test]
fn recv_timeout_expires_with_nothing_published() {
    let d = TestDir::new();
    let topic = Topic::create("t", &d.opts()).unwrap();
    let mut sub = topic.subscribe().unwrap();
    assert_eq!(sub.recv_timeout(Duration::from_millis(30)).unwrap_err(), RecvError::Timeout);
}

#[test]
fn grant_commit_and_drop() {
    let d = TestDir::new();
    let topic = Topic::create("t", &d.opts().capacity(4096).max_message(256)).unwrap();
    let mut sub = topic.subscribe().unwrap();
    let mut p = topic.producer().unwrap();
    {
        let mut g = p.reserve(200).unwrap();
        g[..3].copy_from_slice(b"abc");
        g.set_type(9);
        g.commit(3).unwrap();
    }
    drop(p.reserve(100).unwrap());
    p.publish(b"after").unwrap();
    let m = sub.try_recv().unwrap();
    assert_eq!((&*m, m.msg_type()), (&b"abc"[..], 9));
    drop(m);
    assert_eq!(&*sub.try_recv().unwrap(), b"after");
    assert_eq!(sub.try_recv().unwrap_err(), RecvError::Empty);
}

#[test]
fn nothing_else_is_published_while_a_raw_claim_is_outstanding() {
    let d = TestDir::new();
    let topic = Topic::create("t", &d.opts().capacity(4096).max_message(256)).unwrap();
    let mut sub = topic.subscribe().unwrap();
    let mut p = topic.producer().unwrap();
    p.publish(b"warm").unwrap(); // the fast path is open before the raw claim
    let ptr = p.reserve_raw(4, shmq::Wait::Forever).unwrap().unwrap();
    // SAFETY: `ptr` points at the 4 bytes just reserved, ours until commit_raw.
    unsafe { std::ptr::copy_nonoverlapping(b"raw!".as_ptr(), ptr, 4) };
    assert!(p.reserve_raw(4, shmq::Wait::Now).unwrap().is_none());
    assert_eq!(p.publish(b"x").unwrap_err(), PublishError::Reserved);
    assert_eq!(p.try_publish(b"x").unwrap_err(), PublishError::Reserved);
    assert_eq!(p.publish_batch(&[b"y", b"z"]).unwrap_err().error, PublishError::Reserved);
    assert_eq!(p.publish_batch_with(2, 8, |_, _| {}).unwrap_err().error, PublishError::Reserved);
    assert_eq!(p.reserve(8).err(), Some(PublishError::Reserved));
    assert!(p.commit_raw(4, 0).unwrap());
    p.publish(b"after").unwrap();
    for want in [&b"warm"[..], b"raw!", b"after"] {
        assert_eq!(&*sub.try_recv().unwrap(), want);
    }
    assert_eq!(sub.try_recv().unwrap_err(), RecvError::Empty);
}

#[test]
fn instance_id_is_stable_per_creation_and_new_after_recreate() {
    let d = TestDir::new();
    let a = Topic::create("t", &d.opts().capacity(4096)).unwrap();
    let again = Topic::open("t", &d.opts()).unwrap();
    assert_eq!(a.instance_id(), again.instance_id(), "every handle of one file sees one id");
    let first = a.instance_id();
    drop((a, again));
    Topic::unlink_in(d.path(), "t").unwrap();
    let b = Topic::create("t", &d.opts().capacity(4096)).unwrap();
    assert_ne!(b.instance_id(), first, "a topic created again under the same name is another instance");
}
