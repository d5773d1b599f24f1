//! Replay and seek (issue #8, item 3): subscribe from the oldest retained
//! message, from a sequence number, or from a point in time.

mod common;
use common::{Child, TestDir};
use shmq::{Options, Policy, RecvError, Start, SubscribeError, Topic};
use std::time::Duration;

fn num(m: &[u8]) -> u64 {
    u64::from_le_bytes(m[..8].try_into().unwrap())
}

#[test]
fn seek_by_sequence_on_block() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts().capacity(64 << 10).max_message(1024)).unwrap();
    let mut p = t.producer().unwrap();
    for i in 0..100u64 {
        p.publish(&i.to_le_bytes()).unwrap();
    }
    let mut s = t.subscribe_with(Start::Seq(40), "from-40").unwrap();
    for i in 40..100 {
        let m = s.try_recv().unwrap();
        assert_eq!((num(&m), m.seq()), (i, i));
    }
    assert_eq!(s.try_recv().unwrap_err(), RecvError::Empty);
    // Beyond the newest: starts at the newest, i.e. with what comes next.
    let mut later = t.subscribe_with(Start::Seq(1000), "").unwrap();
    assert_eq!(later.try_recv().unwrap_err(), RecvError::Empty);
    p.publish(&100u64.to_le_bytes()).unwrap();
    assert_eq!(num(&later.try_recv().unwrap()), 100);
}

#[test]
fn seek_by_time_on_block_and_overwrite() {
    for policy in [Policy::Block, Policy::Overwrite] {
        let d = TestDir::new();
        let t =
            Topic::create("t", &d.opts().capacity(64 << 10).max_message(1024).policy(policy).timestamps(true)).unwrap();
        let mut p = t.producer().unwrap();
        for i in 0..50u64 {
            p.publish(&i.to_le_bytes()).unwrap();
        }
        let cut = shmq::monotonic_ns();
        for i in 50..80u64 {
            p.publish(&i.to_le_bytes()).unwrap();
        }
        let mut s = t.subscribe_with(Start::Time(cut), "").unwrap();
        let m = s.try_recv().unwrap();
        assert_eq!(num(&m), 50, "{policy}: the first message published at or after the cut");
        assert!(m.timestamp_ns() >= cut);
        drop(m);
        let mut all = t.subscribe_from_oldest().unwrap();
        let m49 = (0..50).map(|_| all.try_recv().unwrap().timestamp_ns()).last().unwrap();
        assert!(m49 < cut, "{policy}: message 49 came before the cut");
    }
}

/// Timestamps are opt-in: without them every message reads as published
/// at 0, so replay by time is refused rather than starting somewhere
/// arbitrary.
#[test]
fn replay_by_time_needs_a_topic_with_timestamps() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts().capacity(64 << 10).max_message(1024)).unwrap();
    assert!(!t.info().timestamps);
    let mut s = t.subscribe().unwrap();
    t.producer().unwrap().publish(b"x").unwrap();
    assert_eq!(s.try_recv().unwrap().timestamp_ns(), 0);
    let now = shmq::monotonic_ns();
    assert_eq!(t.subscribe_with(Start::Time(now), "").unwrap_err(), SubscribeError::NoTimestamps);
    assert_eq!(t.tail(Start::Time(now)).err(), Some(SubscribeError::NoTimestamps));
    assert!(t.tail(Start::Seq(0)).is_ok());
    // Opening with the other setting is refused too.
    let e = Topic::open("t", &d.opts().timestamps(true)).unwrap_err();
    assert!(matches!(e, shmq::OpenError::Incompatible { field: "timestamps", .. }), "{e}");
}

#[test]
fn seek_to_a_sequence_already_overwritten_reports_the_loss() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts().capacity(4096).max_message(256).policy(Policy::Overwrite)).unwrap();
    let mut p = t.producer().unwrap();
    for i in 0..1000u64 {
        p.publish(&i.to_le_bytes()).unwrap();
    }
    let mut s = t.subscribe_with(Start::Seq(0), "").unwrap();
    let lost = match s.try_recv() {
        Err(RecvError::Lagged(n)) => n,
        other => panic!("expected Lagged, got {other:?}"),
    };
    let first = num(&s.try_recv().unwrap());
    assert!(first > 900, "only the newest ~100 fit in 4 KiB: {first}");
    assert_eq!(lost, first, "messages 0..first are reported lost");
}

/// Child: publishes messages 0..50, prints the time, publishes 50..100.
#[test]
#[ignore = "run by replay_from_a_timestamp_across_processes as a child process"]
fn child() {
    let t = Topic::open("x", &Options::new().dir(std::env::var("SHMQ_TEST_DIR").unwrap())).unwrap();
    let mut p = t.producer().unwrap();
    for i in 0..50u64 {
        p.publish(&i.to_le_bytes()).unwrap();
    }
    println!("READY cut={}", shmq::monotonic_ns());
    for i in 50..100u64 {
        p.publish(&i.to_le_bytes()).unwrap();
    }
    println!("DONE");
}

#[test]
fn replay_from_a_timestamp_across_processes() {
    let d = TestDir::new();
    let t = Topic::create("x", &d.opts().capacity(64 << 10).max_message(1024).timestamps(true)).unwrap();
    let mut c = Child::spawn("-", &[("SHMQ_TEST_DIR", d.path().display().to_string())]);
    let cut: u64 = c.expect("READY").trim_start_matches("READY cut=").parse().unwrap();
    c.expect("DONE");
    c.finish();
    let mut s = t.subscribe_with(Start::Time(cut), "replay").unwrap();
    for i in 50..100 {
        assert_eq!(num(&s.recv_timeout(Duration::from_secs(5)).unwrap()), i);
    }
}
