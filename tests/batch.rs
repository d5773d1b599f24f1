//! `Producer::publish_batch` and `try_publish_batch`: a run of messages
//! under one claim and one commit arrives as separate messages, in order,
//! every byte intact, with dense sequence numbers; a full ring, a message
//! too large and an `Overwrite` lap are reported exactly.

mod common;
use common::{check, fill, ident, mix, msg_len, Child, TestDir};
use shmq::{BatchError, Options, Policy, PublishError, RecvError, Topic};
use std::time::Duration;

const MIN: usize = 12;
const MAX: usize = 300;
/// Size of the in-place records.
const RECORD: usize = 40;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("child needs {k}"))
}

/// Message `k` of producer 1, as the tests number them.
fn message(k: u64) -> Vec<u8> {
    let mut m = vec![0u8; msg_len(1, k, MIN, MAX)];
    fill(1, k, &mut m);
    m
}

#[test]
#[ignore = "run by the tests below as a child process"]
fn child() {
    let Ok(role) = std::env::var("SHMQ_ROLE") else { return };
    let topic = Topic::open("b", &Options::new().dir(env("SHMQ_TEST_DIR"))).expect("open");
    match role.as_str() {
        // Publishes `SHMQ_COUNT` messages in batches of 1-64, waiting for
        // room whenever the ring is full.
        "batcher" => {
            let count: u64 = env("SHMQ_COUNT").parse().unwrap();
            let mut p = topic.producer().expect("producer");
            println!("READY");
            let mut k = 0;
            while k < count {
                let n = (1 + mix(k) % 64).min(count - k);
                let batch: Vec<Vec<u8>> = (k..k + n).map(message).collect();
                p.publish_batch(&batch).expect("publish_batch");
                k += n;
            }
            println!("DONE published={k}");
        }
        // The same, written in place: `publish_batch_with`, fixed-size
        // messages of RECORD bytes.
        "in-place" => {
            let count: u64 = env("SHMQ_COUNT").parse().unwrap();
            let mut p = topic.producer().expect("producer");
            println!("READY");
            let mut k = 0;
            while k < count {
                let n = (1 + mix(k) % 64).min(count - k);
                p.publish_batch_with(n as usize, RECORD, |i, buf| fill(1, k + i as u64, buf)).expect("with");
                k += n;
            }
            println!("DONE published={k}");
        }
        other => panic!("unknown role {other}"),
    }
}

/// A child publishes `COUNT` messages in `role`'s batches through a 16 KiB
/// ring (runs wrap with padding at the ring's end, and are cut at one
/// largest frame); this process receives each, checks it with `check(k,
/// message)`, in order and densely numbered, and that the ring filled.
fn across_processes(role: &str, max_message: u32, mut check: impl FnMut(u64, &[u8])) {
    const COUNT: u64 = 200_000;
    let d = TestDir::new();
    let t = Topic::create("b", &d.opts().capacity(16 << 10).max_message(max_message)).unwrap();
    let mut sub = t.subscribe().unwrap();
    let mut child =
        Child::spawn(role, &[("SHMQ_TEST_DIR", d.path().display().to_string()), ("SHMQ_COUNT", COUNT.to_string())]);
    child.expect("READY");
    for k in 0..COUNT {
        let m = sub.recv_timeout(Duration::from_secs(20)).expect("the next message within 20 s");
        check(k, &m);
        assert_eq!(m.seq(), k, "sequence numbers are dense");
    }
    assert_eq!(child.expect("DONE"), format!("DONE published={COUNT}"));
    child.finish();
    assert_eq!(sub.try_recv().unwrap_err(), RecvError::Empty);
    let info = t.info();
    assert_eq!(info.published_messages, COUNT);
    assert!(info.producer_waits > 0, "the ring should have filled: {}", info.producer_waits);
}

#[test]
fn batches_arrive_in_order_across_processes_through_a_small_ring() {
    let mut scratch = Vec::new();
    across_processes("batcher", 1024, |k, m| {
        assert_eq!(ident(m), (1, k), "message {k} out of order");
        check(1, k, m, MIN, MAX, &mut scratch).unwrap();
    });
}

#[test]
fn records_written_in_place_arrive_in_order_across_processes() {
    let mut want = [0u8; RECORD];
    across_processes("in-place", 256, |k, m| {
        fill(1, k, &mut want);
        assert_eq!(m, &want[..], "record {k}");
    });
}

#[test]
fn a_writer_that_panics_mid_run_leaves_nothing_stuck_and_no_gap_in_numbers() {
    let d = TestDir::new();
    for policy in [Policy::Block, Policy::Overwrite] {
        let t = Topic::create(&format!("b{policy:?}"), &d.opts().capacity(64 << 10).max_message(512).policy(policy))
            .unwrap();
        let mut sub = t.subscribe().unwrap();
        let mut p = t.producer().unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.publish_batch_with(10, 8, |i, buf| {
                assert!(i < 4, "the writer fails at message {i}");
                buf.copy_from_slice(&[i as u8; 8]);
            })
        }));
        assert!(r.is_err(), "the panic goes on");
        p.publish(b"after").unwrap();
        for i in 0..4u8 {
            let m = sub.try_recv().unwrap();
            assert_eq!((&*m, m.seq()), (&[i; 8][..], i as u64));
        }
        let m = sub.try_recv().unwrap();
        assert_eq!((&*m, m.seq()), (&b"after"[..], 4), "{policy:?}: the given-back run is skipped, numbering goes on");
        drop(m);
        assert_eq!(sub.try_recv().unwrap_err(), RecvError::Empty);
        assert_eq!(sub.lost(), 0);
    }
}

#[test]
fn try_publish_batch_publishes_what_fits_and_says_how_many() {
    let d = TestDir::new();
    let t = Topic::create("b", &d.opts().capacity(4096).max_message(512)).unwrap();
    let mut sub = t.subscribe().unwrap();
    let mut p = t.producer().unwrap();
    let msgs: Vec<Vec<u8>> = (0..1000).map(message).collect();
    let n = p.try_publish_batch(&msgs).unwrap();
    assert!(n > 0 && n < msgs.len(), "{n} of {}", msgs.len());
    // Nothing more fits: 0, not an error, at once or after a wait.
    assert_eq!(p.try_publish_batch(&msgs[n..]).unwrap(), 0);
    assert_eq!(p.publish_batch_timeout(&msgs[n..], Duration::from_millis(20)).unwrap(), 0);
    let mut scratch = Vec::new();
    for k in 0..n as u64 {
        let m = sub.try_recv().unwrap();
        check(1, k, &m, MIN, MAX, &mut scratch).unwrap();
    }
    assert_eq!(sub.try_recv().unwrap_err(), RecvError::Empty);
    // Room again: the rest goes on from where the batch stopped.
    let more = p.try_publish_batch(&msgs[n..]).unwrap();
    assert!(more > 0);
    for k in n as u64..(n + more) as u64 {
        check(1, k, &sub.try_recv().unwrap(), MIN, MAX, &mut scratch).unwrap();
    }
    assert_eq!(t.info().published_messages, (n + more) as u64);
}

#[test]
fn a_message_too_large_stops_the_batch_after_the_ones_before_it() {
    let d = TestDir::new();
    let t = Topic::create("b", &d.opts().capacity(64 << 10).max_message(512)).unwrap();
    let mut sub = t.subscribe().unwrap();
    let mut p = t.producer().unwrap();
    let msgs = [vec![1u8; 10], vec![2u8; 512], vec![3u8; 30], vec![4u8; 513], vec![5u8; 1]];
    let err = p.publish_batch(&msgs).unwrap_err();
    assert_eq!(err, BatchError { published: 3, error: PublishError::TooLarge { len: 513, max: 512 } });
    assert!(err.to_string().contains("after 3 message(s)"), "{err}");
    for m in &msgs[..3] {
        assert_eq!(&*sub.try_recv().unwrap(), &m[..]);
    }
    assert_eq!(sub.try_recv().unwrap_err(), RecvError::Empty);
    // An empty batch publishes nothing and is not an error.
    p.publish_batch::<&[u8]>(&[]).unwrap();
    assert_eq!(t.info().published_messages, 3);
}

#[test]
fn overwrite_batches_count_every_lost_message() {
    let d = TestDir::new();
    let opts = d.opts().capacity(8192).max_message(512).policy(Policy::Overwrite);
    let t = Topic::create("b", &opts).unwrap();
    let mut sub = t.subscribe().unwrap();
    let mut p = t.producer().unwrap();
    let total = 5000u64;
    let msgs: Vec<Vec<u8>> = (0..total).map(message).collect();
    p.publish_batch(&msgs).unwrap();
    let (mut received, mut lost, mut next) = (0u64, 0u64, 0u64);
    let mut scratch = Vec::new();
    loop {
        match sub.try_recv() {
            Ok(m) => {
                let (_, k) = ident(&m);
                assert_eq!(k, next, "after the gap, in order");
                check(1, k, &m, MIN, MAX, &mut scratch).unwrap();
                assert_eq!(m.seq(), k);
                next += 1;
                received += 1;
            }
            Err(RecvError::Lagged(n)) => {
                lost += n;
                next += n;
            }
            Err(RecvError::Empty) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(lost > 0 && received > 0, "lost {lost}, received {received}");
    assert_eq!(received + lost, total);
}

#[test]
fn multi_producer_topics_take_a_batch_message_by_message() {
    let d = TestDir::new();
    let t = Topic::create("b", &d.opts().capacity(64 << 10).max_message(512).multi_producer(true)).unwrap();
    let mut sub = t.subscribe().unwrap();
    let mut p = t.producer().unwrap();
    let msgs: Vec<Vec<u8>> = (0..100).map(message).collect();
    p.publish_batch(&msgs).unwrap();
    let mut scratch = Vec::new();
    for k in 0..100 {
        check(1, k, &sub.try_recv().unwrap(), MIN, MAX, &mut scratch).unwrap();
    }
    assert_eq!(sub.try_recv().unwrap_err(), RecvError::Empty);
}

#[test]
fn a_run_shares_one_publish_time() {
    let d = TestDir::new();
    let t = Topic::create("b", &d.opts().capacity(64 << 10).max_message(512).timestamps(true)).unwrap();
    let mut sub = t.subscribe().unwrap();
    let mut p = t.producer().unwrap();
    p.publish(b"before").unwrap();
    p.publish_batch(&[b"a", b"b", b"c"]).unwrap();
    let first = sub.try_recv().unwrap().timestamp_ns();
    let times: Vec<u64> = (0..3).map(|_| sub.try_recv().unwrap().timestamp_ns()).collect();
    assert!(first > 0);
    assert!(times[0] >= first);
    assert!(times.iter().all(|&t| t == times[0]), "{times:?}");
}
