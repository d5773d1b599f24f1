//! Durable subscribers (issue #8, item 1): the cursor outlives the process;
//! releasing a message acknowledges it; a restarted subscriber resumes at
//! the first message it had not released.

mod common;
use common::{Child, TestDir};
use shmq::{Options, PublishError, SubscribeError, Topic};
use std::time::{Duration, Instant};

fn num(m: &[u8]) -> u64 {
    u64::from_le_bytes(m[..8].try_into().unwrap())
}

#[test]
fn resumes_at_the_first_unreleased_message() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts().capacity(64 << 10)).unwrap();
    let mut s = t.subscribe_durable("billing").unwrap();
    let mut p = t.producer().unwrap();
    for i in 0..10u64 {
        p.publish(&i.to_le_bytes()).unwrap();
    }
    for i in 0..4 {
        assert_eq!(num(&s.recv().unwrap()), i); // dropped: released
    }
    // Received but not released when the subscriber goes away (as when
    // its process dies holding it): delivered again.
    let held = s.recv().unwrap();
    assert_eq!(num(&held), 4);
    std::mem::forget(held);
    drop(s);
    let info = t.info();
    assert_eq!(info.subscribers.len(), 1);
    assert!(info.subscribers[0].durable && !info.subscribers[0].alive, "{:?}", info.subscribers);
    let mut s = t.subscribe_durable("billing").unwrap();
    for i in 4..10 {
        assert_eq!(num(&s.recv_timeout(Duration::from_secs(5)).unwrap()), i);
    }
    assert_eq!(s.received(), 10, "the counters carry over");
}

#[test]
fn one_live_holder_per_name_and_names_are_checked() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts()).unwrap();
    let _a = t.subscribe_durable("a").unwrap();
    assert_eq!(
        t.subscribe_durable("a").unwrap_err(),
        SubscribeError::NameTaken { name: "a".into(), pid: std::process::id() }
    );
    assert!(matches!(t.unsubscribe_durable("a"), Err(SubscribeError::NameTaken { .. })));
    let _b = t.subscribe_durable("b").unwrap(); // another name is fine
    for bad in ["", "has space", "x/y", &"n".repeat(33)] {
        assert!(matches!(t.subscribe_durable(bad), Err(SubscribeError::InvalidName(_))), "{bad:?}");
    }
    assert_eq!(t.unsubscribe_durable("nobody"), Ok(false));
}

#[test]
fn a_detached_durable_subscriber_holds_a_block_producer_until_removed() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts().capacity(4096).max_message(256)).unwrap();
    drop(t.subscribe_durable("slow").unwrap());
    let mut p = t.producer().unwrap();
    let mut sent = 0;
    while p.try_publish(&[7; 200]).is_ok() {
        sent += 1;
    }
    assert!(sent > 0 && sent < 20, "the detached cursor gates: {sent}");
    assert_eq!(p.publish_timeout(&[7; 200], Duration::from_millis(100)), Err(PublishError::Full));
    assert_eq!(t.unsubscribe_durable("slow"), Ok(true));
    p.publish_timeout(&[8; 200], Duration::from_secs(5)).expect("room once the durable subscriber is gone");
    assert!(t.info().subscribers.is_empty());
}

#[test]
fn an_expired_durable_subscriber_is_told_once_then_starts_afresh() {
    let d = TestDir::new();
    let opts = d.opts().capacity(4096).max_message(256).durable_expiry(Duration::from_millis(50));
    let t = Topic::create("t", &opts).unwrap();
    drop(t.subscribe_durable("late").unwrap());
    let mut p = t.producer().unwrap();
    // The producer fills the ring, waits, and expires the detached
    // subscriber once it has been gone for 50 ms.
    for _ in 0..100 {
        p.publish_timeout(&[1; 200], Duration::from_secs(10)).expect("the expired subscriber stops gating");
    }
    assert_eq!(t.subscribe_durable("late").unwrap_err(), SubscribeError::Expired { name: "late".into() });
    let mut s = t.subscribe_durable("late").expect("afresh");
    p.publish(b"new").unwrap();
    assert_eq!(&*s.recv_timeout(Duration::from_secs(5)).unwrap(), b"new");
}

#[test]
fn overwrite_durable_subscriber_is_told_what_it_lost_while_away() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts().capacity(4096).max_message(256).policy(shmq::Policy::Overwrite)).unwrap();
    let mut s = t.subscribe_durable("ow").unwrap();
    let mut p = t.producer().unwrap();
    p.publish(&0u64.to_le_bytes()).unwrap();
    assert_eq!(num(&s.recv().unwrap()), 0);
    drop(s);
    for i in 1..1000u64 {
        p.publish(&i.to_le_bytes()).unwrap(); // laps the ring many times
    }
    let mut s = t.subscribe_durable("ow").unwrap();
    let lost = match s.recv() {
        Err(shmq::RecvError::Lagged(n)) => n,
        other => panic!("expected Lagged, got {other:?}"),
    };
    let first = num(&s.recv().unwrap());
    assert_eq!(lost, first - 1, "exactly the messages between its last and the oldest kept");
}

/// Child: the durable subscriber "d" reading until killed; prints each
/// message number before releasing it.
#[test]
#[ignore = "run by durable_subscriber_killed_at_random_points_loses_nothing as a child process"]
fn child() {
    let dir = std::env::var("SHMQ_TEST_DIR").unwrap();
    let t = Topic::open("k", &Options::new().dir(dir)).unwrap();
    let mut s = t.subscribe_durable("d").expect("the previous holder is dead");
    println!("READY");
    loop {
        let m = s.recv_timeout(Duration::from_secs(30)).expect("recv");
        println!("DONE {}", num(&m)); // `DONE` is a marker `Child::line` returns
    }
}

#[test]
fn durable_subscriber_killed_at_random_points_loses_nothing() {
    let d = TestDir::new();
    // 1 MiB ring, 20,000 messages of 1 KiB: the producer waits for the
    // durable subscriber while it is dead.
    let t = Topic::create("k", &d.opts().capacity(1 << 20).max_message(2048)).unwrap();
    let n = 20_000u64;
    let env = [("SHMQ_TEST_DIR", d.path().display().to_string())];
    let mut c = Child::spawn("-", &env);
    c.expect("READY");
    let producer = std::thread::spawn(move || {
        let mut p = t.producer().unwrap();
        let mut msg = vec![0u8; 1024];
        for i in 0..n {
            msg[..8].copy_from_slice(&i.to_le_bytes());
            msg[8..].fill(i as u8);
            p.publish_timeout(&msg, Duration::from_secs(30)).expect("the durable subscriber comes back");
        }
    });
    let mut seen = vec![0u32; n as usize];
    let (mut kills, mut redelivered) = (0, 0);
    let mut last: Option<u64> = None;
    // At least once, in order: the next message, or the last one again
    // right after a restart (the killed process had not released it).
    let mut got = |l: &str| -> bool {
        let Some(k) = l.strip_prefix("DONE ").and_then(|v| v.parse::<u64>().ok()) else {
            panic!("child said {l:?}");
        };
        match last {
            Some(p) if k == p => redelivered += 1,
            Some(p) => assert_eq!(k, p + 1, "gap or reorder after {p}"),
            None => assert_eq!(k, 0),
        }
        seen[k as usize] += 1;
        last = Some(k);
        k == n - 1
    };
    let mut rng = 0x1234_5678u64;
    let started = Instant::now();
    'run: loop {
        rng = common::mix(rng);
        // Read a random number of messages, then kill the subscriber.
        for _ in 0..rng % 50 {
            if got(&c.line()) {
                break 'run;
            }
        }
        let _ = c.proc.kill();
        let _ = c.proc.wait();
        kills += 1;
        // What it printed before dying still counts.
        loop {
            let l = c.line();
            if l == "EOF" {
                break;
            }
            if got(&l) {
                break 'run;
            }
        }
        c = Child::spawn("-", &env);
        c.expect("READY");
        assert!(started.elapsed() < Duration::from_secs(120), "too slow");
    }
    c.kill();
    producer.join().unwrap();
    assert!(seen.iter().all(|&c| c >= 1), "every message delivered at least once");
    assert!(redelivered <= kills, "at most the one unreleased message per kill comes again");
    println!("{n} messages, {kills} kills, {redelivered} redelivered");
}
