//! Faults against a real nats-server: the server SIGKILLed and restarted
//! mid-stream; each bridge SIGKILLed at random moments over many trials,
//! with a 1 s de-duplication window so that the resync (not JetStream's
//! de-duplication) is what keeps the stream free of doubles; a 3-node
//! cluster losing its stream leader. After each: every message arrived
//! once, in order, byte for byte; the stream holds each exactly once.

mod common;
use common::*;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

const SPREAD: u64 = 1000;

#[test]
fn server_killed_and_restarted_mid_stream() {
    const N: u64 = 150_000;
    let trip = Trip::new("server-kill");
    let mut server = Server::start(&trip.scratch.0);
    let url = server.url();
    let _out = Bridge::spawn(&strs(&trip.out_args(&url, &["--create-stream"])));
    wait_stream(&url, &trip.stream);
    let _in = Bridge::spawn(&strs(&trip.in_args(&url, &[])));
    let seen = Arc::new(AtomicU64::new(0));
    let consumer = trip.consume(N, SPREAD, Duration::from_secs(180), seen.clone());
    let producer = trip.produce(N, SPREAD);
    for at in [N / 4, N / 2] {
        Trip::wait_for(&seen, at, Duration::from_secs(120));
        server.kill();
        std::thread::sleep(Duration::from_millis(300)); // down for a while: both bridges see it
        server.restart();
    }
    producer.join().unwrap();
    consumer.join().unwrap();
    assert_eq!(stream_state(&url, &trip.stream).0, N);
    assert_eq!(trip.topic_b.info().published_messages, N);
}

/// A small xorshift: random kill moments, reproducible from the printed seed.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn bridges_killed_at_random_moments_store_and_apply_each_message_once() {
    const N: u64 = 120_000;
    const TRIALS: u64 = 10;
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("kill seed {seed}");
    let trip = Trip::new("bridge-kill");
    let server = Server::start(&trip.scratch.0);
    let url = server.url();
    // A 1 s de-duplication window: a retry after it must still store nothing twice.
    let out_args = trip.out_args(&url, &["--create-stream", "--duplicate-window", "1s", "--window", "512"]);
    let in_args = trip.in_args(&url, &["--window", "512"]);
    let mut out = Bridge::spawn(&strs(&out_args));
    wait_stream(&url, &trip.stream);
    let mut inb = Bridge::spawn(&strs(&in_args));
    let seen = Arc::new(AtomicU64::new(0));
    let consumer = trip.consume(N, SPREAD, Duration::from_secs(240), seen.clone());
    let producer = trip.produce(N, SPREAD);
    for trial in 0..TRIALS {
        // Somewhere in this trial's tenth of the run, after a random extra delay.
        Trip::wait_for(&seen, trial * N / TRIALS + rng(&mut seed) % (N / TRIALS / 2), Duration::from_secs(120));
        std::thread::sleep(Duration::from_micros(rng(&mut seed) % 20_000));
        let which = rng(&mut seed) % 3; // out, in, or both
        if which != 1 {
            out.kill();
        }
        if which != 0 {
            inb.kill();
        }
        // Sometimes stay down past the de-duplication window.
        if rng(&mut seed) % 2 == 0 {
            std::thread::sleep(Duration::from_millis(1200));
        }
        if which != 1 {
            out = Bridge::spawn(&strs(&out_args));
        }
        if which != 0 {
            inb = Bridge::spawn(&strs(&in_args));
        }
    }
    producer.join().unwrap();
    consumer.join().unwrap();
    assert_eq!(stream_state(&url, &trip.stream).0, N, "nothing stored twice (seed {seed})");
    assert_eq!(trip.topic_b.info().published_messages, N, "nothing applied twice (seed {seed})");
    drop((out, inb));
}

#[test]
fn cluster_loses_its_stream_leader_mid_stream() {
    const N: u64 = 100_000;
    let trip = Trip::new("leader-kill");
    let mut nodes = Server::cluster(&trip.scratch.0);
    let all = urls(&nodes);
    let _out = Bridge::spawn(&strs(&trip.out_args(&all, &["--create-stream", "--replicas", "3"])));
    let (_, leader) = stream_state(&nodes[0].url(), &trip.stream);
    assert!(!leader.is_empty(), "an R3 stream has a leader");
    let _in = Bridge::spawn(&strs(&trip.in_args(&all, &[])));
    let seen = Arc::new(AtomicU64::new(0));
    let consumer = trip.consume(N, SPREAD, Duration::from_secs(240), seen.clone());
    let producer = trip.produce(N, SPREAD);
    Trip::wait_for(&seen, N / 3, Duration::from_secs(120));
    let (_, leader) = stream_state(&nodes[0].url(), &trip.stream);
    let victim = nodes.iter().position(|n| n.name == leader).expect("the leader is one of ours");
    nodes[victim].kill();
    producer.join().unwrap();
    consumer.join().unwrap();
    let survivor = nodes.iter().find(|n| n.name != leader).unwrap().url();
    let (count, new_leader) = stream_state(&survivor, &trip.stream);
    assert_eq!(count, N, "nothing lost, nothing doubled in the stream");
    assert_ne!(new_leader, leader, "another node leads now");
    assert_eq!(trip.topic_b.info().published_messages, N);
}

/// A publish the stream refuses (here: another writer got in between, so
/// the bridge's expected last sequence is wrong) must leave a replicated
/// stream working: the bridge resyncs and goes on. An expected last
/// *message id* refused this way stops an R3 stream on nats-server 2.15.1
/// (every replica takes the refusal for a write error), which is why the
/// bridge chains on sequences. Messages in flight behind the refused one
/// may meet the expectations meant for it: then it is dropped, and both
/// sides say so (the outbound counts it dropped, the inbound lost).
#[test]
fn a_refused_publish_leaves_a_replicated_stream_working() {
    let trip = Trip::new("refused-r3");
    let nodes = Server::cluster(&trip.scratch.0);
    let (url, all) = (nodes[0].url(), urls(&nodes));
    let _out = Bridge::spawn(&strs(&trip.out_args(&all, &["--create-stream", "--replicas", "3"])));
    let mut p = trip.topic_a.producer().unwrap();
    let mut buf = Vec::new();
    let mut publish = |range: std::ops::Range<u64>| {
        for i in range {
            message(i, SPREAD, &mut buf);
            p.publish_timeout(&buf, Duration::from_secs(30)).unwrap();
        }
    };
    let out = || status_of(&trip.a, "out-t-bridge");
    publish(0..10);
    wait_until(|| out()["acknowledged"] == 10, || bridge_status(std::slice::from_ref(&trip.a)));
    // Another writer: the bridge's next publish expects sequence 10, finds 11.
    // Retried while the cluster has no responder for the subject (it moves
    // its stream leader now and then); the message id keeps it one message.
    rt().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let m = async_nats::jetstream::message::PublishMessage::build()
                .payload("not the bridge's".into())
                .message_id("other");
            match js.send_publish(trip.subject.clone(), m).await {
                Ok(f) => match f.await {
                    Ok(_) => break,
                    Err(e) => assert!(std::time::Instant::now() < deadline, "the other writer's publish: {e}"),
                },
                Err(e) => assert!(std::time::Instant::now() < deadline, "the other writer's publish: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    publish(10..20);
    wait_until(
        || out()["acknowledged"].as_u64().unwrap() + out()["dropped"].as_u64().unwrap() == 20,
        || bridge_status(std::slice::from_ref(&trip.a)),
    );
    let dropped = out()["dropped"].as_u64().unwrap();
    eprintln!("{dropped} dropped behind the refused publish");
    let (count, leader) = stream_state(&url, &trip.stream);
    assert!(!leader.is_empty(), "the stream still has a leader");
    assert_eq!(count, 21 - dropped, "each message stored once, or dropped and counted ({dropped} dropped)");
    // The far side gets what the stream holds and counts what was dropped.
    let _in = Bridge::spawn(&strs(&trip.in_args(&all, &[])));
    let inb = || status_of(&trip.b, "in-t-bridge");
    wait_until(|| trip.topic_b.info().published_messages == count, || bridge_status(std::slice::from_ref(&trip.b)));
    wait_until(|| inb()["lost"] == dropped, || bridge_status(std::slice::from_ref(&trip.b)));
}

/// A bridge's status file, parsed.
fn status_of(dir: &std::path::Path, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(".shmq-bridge").join(format!("{name}.json"))).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// Until `done` (a minute at most; `why` says what was there instead).
fn wait_until(done: impl Fn() -> bool, why: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "not done after a minute:\n{}", why());
        std::thread::sleep(Duration::from_millis(50));
    }
}
