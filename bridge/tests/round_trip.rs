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

#[test]
fn end_of_stream_travels_and_a_later_message_reopens_it() {
    let trip = Trip::new("eos");
    let server = Server::start(&trip.scratch.0);
    let url = server.url();
    // A 1 s de-duplication window, so that the restart below is checked by
    // the resync, not by JetStream's memory of ids.
    let _out = Bridge::spawn(&strs(&trip.out_args(&url, &["--create-stream", "--duplicate-window", "1s"])));
    wait_stream(&url, &trip.stream);
    let _in = Bridge::spawn(&strs(&trip.in_args(&url, &[])));
    let mut sub = trip.topic_b.subscribe_from_oldest().unwrap();
    let mut p = trip.topic_a.producer().unwrap();
    let mut buf = Vec::new();
    for round in 0..2u64 {
        for i in round * 100..round * 100 + 100 {
            message(i, 300, &mut buf);
            p.publish_typed((i % 5) as u32, &buf).unwrap(); // the type travels too
        }
        p.close();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        for i in round * 100..round * 100 + 100 {
            let m = loop {
                match sub.recv_timeout(Duration::from_secs(30)) {
                    Ok(m) => break m,
                    // Still the end of the last round, until the reopening message comes.
                    Err(shmq::RecvError::Closed) if i == round * 100 && std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(e) => panic!("message {i}: {e}"),
                }
            };
            check(i, 300, &m, &mut buf);
            assert_eq!(m.msg_type(), (i % 5) as u32, "message {i}: its type");
        }
        // The far topic is closed once it has everything: Closed, not a timeout.
        assert_eq!(sub.recv_timeout(Duration::from_secs(30)).unwrap_err(), shmq::RecvError::Closed, "round {round}");
    }
    // The stream holds the 200 messages and one end of stream per close.
    assert_eq!(stream_state(&url, &trip.stream).0, 202);

    // A new out bridge finds the topic closed and the stream ending with
    // that very end: its resync skips it (its status counts the skip; the
    // server may still remember the id past its window, so the count, not
    // the stream, shows it). Then one more message and a close make 204.
    let mut out = _out;
    out.kill();
    std::thread::sleep(Duration::from_millis(1100)); // past the de-duplication window
    let _out = Bridge::spawn(&strs(&trip.out_args(&url, &[])));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = bridge_cmd(&["--dir", trip.a.to_str().unwrap(), "status", "--json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if v[0]["running"] == true && v[0]["resynced"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted bridge did not skip the stored end of stream: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    message(200, 300, &mut buf);
    p.publish(&buf).unwrap();
    p.close();
    let m = loop {
        match sub.recv_timeout(Duration::from_secs(30)) {
            Ok(m) => break m,
            Err(shmq::RecvError::Closed) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => panic!("message 200: {e}"),
        }
    };
    check(200, 300, &m, &mut buf);
    drop(m);
    assert_eq!(sub.recv_timeout(Duration::from_secs(30)).unwrap_err(), shmq::RecvError::Closed);
    assert_eq!(stream_state(&url, &trip.stream).0, 204);
}
