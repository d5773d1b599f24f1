//! The main path between two "hosts" (two topic directories) through a
//! real nats-server: a million messages of random sizes, every byte and
//! the order checked, exact counts, then a clean SIGTERM of both bridges.

mod common;
use common::*;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_million_messages_of_random_sizes_arrive_once_in_order() {
    const N: u64 = 1_000_000;
    const SPREAD: u64 = 504; // 8..=512 bytes
    let trip = Trip::new("million");
    let server = Server::start(&trip.scratch.0);
    let url = server.url();
    let out = Bridge::spawn(&strs(&trip.out_args(&url, &["--create-stream", "--window", "4096"])));
    wait_stream(&url, &trip.stream);
    let inb = Bridge::spawn(&strs(&trip.in_args(&url, &["--window", "4096"])));
    let seen = Arc::new(AtomicU64::new(0));
    let consumer = trip.consume(N, SPREAD, Duration::from_secs(240), seen.clone());
    trip.produce(N, SPREAD).join().unwrap();
    consumer.join().unwrap();
    assert_eq!(seen.load(Relaxed), N);

    // Exact counts everywhere: the stream, the far topic, the status.
    assert_eq!(stream_state(&url, &trip.stream).0, N, "the stream holds each message once");
    assert_eq!(trip.topic_b.info().published_messages, N, "host b's topic got each message once");

    // SIGTERM: both stop cleanly (exit 0), the out bridge having released
    // everything JetStream confirmed: its durable subscriber has no lag.
    let mut out = out;
    let mut inb = inb;
    out.signal(libc::SIGTERM);
    inb.signal(libc::SIGTERM);
    let (st, err) = out.wait(Duration::from_secs(20));
    assert!(st.success(), "out: {st} {err}");
    let (st, err) = inb.wait(Duration::from_secs(20));
    assert!(st.success(), "in: {st} {err}");
    let info = trip.topic_a.info();
    let durable = info.subscribers.iter().find(|s| s.name == "bridge").expect("the bridge's durable subscriber stays");
    assert_eq!(durable.lag_messages, 0, "every acknowledged message was released");

    let out = bridge_cmd(&["--dir", trip.a.to_str().unwrap(), "status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["direction"], "out");
    assert_eq!(v[0]["acknowledged"], N);
    assert_eq!(v[0]["running"], false);
    assert_eq!(v[0]["state"], "stopped");
}
