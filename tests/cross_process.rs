//! Behaviour across real processes. Each test spawns this test binary again
//! in a child role (the ignored `child` test below, selected by
//! `SHMQ_ROLE`), and synchronises with it over pipes: a child prints
//! `READY` once subscribed, the parent says `go`; nothing waits on a sleep.

mod common;
use common::{check, field, fill, ident, msg_len, Child, TestDir};
use shmq::{Options, Policy, PublishError, RecvError, Topic};
use std::io::BufRead as _;
use std::time::Duration;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("child needs {k}"))
}
fn env_n(k: &str) -> u64 {
    env(k).parse().unwrap()
}

fn child_opts() -> Options {
    Options::new().dir(env("SHMQ_TEST_DIR"))
}

/// Entry point of every child process (ignored in normal runs).
#[test]
#[ignore = "run by the cross-process tests as a child process"]
fn child() {
    let role = env("SHMQ_ROLE");
    let topic = Topic::open(&env("SHMQ_TOPIC"), &child_opts()).expect("open topic");
    let n = env_n("SHMQ_N");
    let (min, max) = (env_n("SHMQ_MIN") as usize, env_n("SHMQ_MAX") as usize);
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    match role.as_str() {
        "publish" => {
            let me = env_n("SHMQ_PRODUCER");
            let mut p = topic.producer().expect("producer");
            let mut buf = vec![0u8; max];
            // Report the first full ring only when asked (then block).
            let mut said_full = std::env::var("SHMQ_REPORT_FULL").is_err();
            for k in 0..n {
                let len = msg_len(me, k, min, max);
                fill(me, k, &mut buf[..len]);
                if !said_full {
                    match p.try_publish(&buf[..len]) {
                        Ok(()) => continue,
                        Err(PublishError::Full) => {
                            println!("FULL at={k}");
                            said_full = true;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                p.publish(&buf[..len]).expect("publish");
            }
            println!("DONE published={n}");
        }
        "subscribe" => {
            let producers = env_n("SHMQ_PRODUCERS");
            let mut sub = topic.subscribe().expect("subscribe");
            println!("READY");
            if std::env::var("SHMQ_WAIT_GO").is_ok() {
                stdin.read_line(&mut line).unwrap();
            }
            let mut next = vec![0u64; producers as usize];
            let (mut received, mut lost) = (0u64, 0u64);
            let mut scratch = Vec::new();
            let total = n * producers;
            while received + lost < total {
                let m = match sub.recv_timeout(Duration::from_secs(60)) {
                    Ok(m) => m,
                    Err(RecvError::Lagged(l)) => {
                        lost += l;
                        continue;
                    }
                    Err(e) => {
                        println!("ERR {e} after received={received} lost={lost}");
                        std::process::exit(1);
                    }
                };
                let (p, k) = if producers == 1 { (0, m.seq()) } else { ident(&m) };
                // Per-producer order: message k follows k-1 (or a reported gap).
                if k < next[p as usize] || (k != next[p as usize] && topic.policy() == Policy::Block) {
                    println!("ERR producer {p}: got message {k}, expected {}", next[p as usize]);
                    std::process::exit(1);
                }
                if let Err(e) = check(p, k, &m, min, max, &mut scratch) {
                    println!("ERR {e}");
                    std::process::exit(1);
                }
                next[p as usize] = k + 1;
                received += 1;
            }
            println!("DONE received={received} lost={lost}");
        }
        "hold" => {
            // Subscribes and never reads: holds a Block producer back.
            let _sub = topic.subscribe().expect("subscribe");
            println!("READY");
            stdin.read_line(&mut line).unwrap();
        }
        "reserve_hold" => {
            // Claims a frame and never commits it (killed while holding it).
            let mut p = topic.producer().expect("producer");
            p.publish(b"before").unwrap();
            let mut g = p.reserve(64).expect("reserve");
            g[..4].copy_from_slice(b"torn");
            println!("READY");
            stdin.read_line(&mut line).unwrap();
            let _ = g.commit(64); // never reached: the parent kills us
        }
        other => panic!("unknown role {other}"),
    }
}

fn child_env(d: &TestDir, topic: &str, n: u64, min: usize, max: usize) -> Vec<(&'static str, String)> {
    vec![
        ("SHMQ_TEST_DIR", d.path().display().to_string()),
        ("SHMQ_TOPIC", topic.to_string()),
        ("SHMQ_N", n.to_string()),
        ("SHMQ_MIN", min.to_string()),
        ("SHMQ_MAX", max.to_string()),
        ("SHMQ_PRODUCERS", "1".into()),
        ("SHMQ_PRODUCER", "0".into()),
    ]
}

fn with(mut env: Vec<(&'static str, String)>, k: &'static str, v: &str) -> Vec<(&'static str, String)> {
    env.retain(|(key, _)| *key != k);
    env.push((k, v.to_string()));
    env
}

#[test]
fn one_producer_three_subscribers_million_messages() {
    let d = TestDir::new();
    let _t = Topic::create("fan", &d.opts().capacity(1 << 20).max_message(4096)).unwrap();
    let n = if cfg!(debug_assertions) { 50_000 } else { 1_000_000 };
    let env = child_env(&d, "fan", n, 1, 4096);
    let mut subs: Vec<Child> = (0..3).map(|_| Child::spawn("subscribe", &env)).collect();
    for s in &mut subs {
        s.expect("READY");
    }
    let mut p = Child::spawn("publish", &env);
    assert_eq!(field(&p.expect("DONE"), "published"), n);
    for mut s in subs {
        let done = s.expect("DONE");
        assert_eq!((field(&done, "received"), field(&done, "lost")), (n, 0));
        s.finish();
    }
    p.finish();
}

#[test]
fn two_producer_processes_one_subscriber_multi_producer() {
    let d = TestDir::new();
    let _t = Topic::create("mp", &d.opts().capacity(256 << 10).max_message(2048).multi_producer(true)).unwrap();
    let n = if cfg!(debug_assertions) { 20_000 } else { 200_000 };
    let env = with(child_env(&d, "mp", n, 12, 2048), "SHMQ_PRODUCERS", "2");
    let mut sub = Child::spawn("subscribe", &env);
    sub.expect("READY");
    let producers: Vec<Child> =
        (0..2).map(|i| Child::spawn("publish", &with(env.clone(), "SHMQ_PRODUCER", &i.to_string()))).collect();
    for mut p in producers {
        p.expect("DONE");
        p.finish();
    }
    let done = sub.expect("DONE");
    assert_eq!((field(&done, "received"), field(&done, "lost")), (2 * n, 0));
    sub.finish();
}

#[test]
fn slow_subscriber_holds_block_producer_back_and_loses_nothing() {
    let d = TestDir::new();
    let _t = Topic::create("slow", &d.opts().capacity(16 << 10).max_message(1024)).unwrap();
    let n = 5_000; // ~2.5 MB through a 16 KiB ring
    let env = with(with(child_env(&d, "slow", n, 1, 1024), "SHMQ_WAIT_GO", "1"), "SHMQ_REPORT_FULL", "1");
    let mut sub = Child::spawn("subscribe", &env);
    sub.expect("READY");
    let mut p = Child::spawn("publish", &env);
    // The producer reports the ring full while the subscriber has not read.
    let full = p.expect("FULL");
    assert!(field(&full, "at") < n);
    sub.say("go");
    assert_eq!(field(&p.expect("DONE"), "published"), n);
    let done = sub.expect("DONE");
    assert_eq!((field(&done, "received"), field(&done, "lost")), (n, 0));
    sub.finish();
    p.finish();
}

#[test]
fn slow_subscriber_on_overwrite_is_told_what_it_lost() {
    let d = TestDir::new();
    let _t = Topic::create("ow", &d.opts().capacity(16 << 10).max_message(1024).policy(Policy::Overwrite)).unwrap();
    let n = 5_000;
    let env = with(child_env(&d, "ow", n, 1, 1024), "SHMQ_WAIT_GO", "1");
    let mut sub = Child::spawn("subscribe", &env);
    sub.expect("READY");
    let mut p = Child::spawn("publish", &env);
    p.expect("DONE"); // never waits on an Overwrite topic
    p.finish();
    sub.say("go");
    let done = sub.expect("DONE");
    let (received, lost) = (field(&done, "received"), field(&done, "lost"));
    assert!(lost > 0, "a 16 KiB ring cannot hold 2.5 MB");
    assert!(received > 0);
    assert_eq!(received + lost, n);
    sub.finish();
}

#[test]
fn blocked_recv_wakes_on_publish_from_another_process() {
    let d = TestDir::new();
    let _t = Topic::create("wake", &d.opts()).unwrap();
    let env = child_env(&d, "wake", 3, 1, 100);
    let mut sub = Child::spawn("subscribe", &env);
    sub.expect("READY");
    let mut p = Child::spawn("publish", &env);
    p.expect("DONE");
    let done = sub.expect("DONE");
    assert_eq!(field(&done, "received"), 3);
    sub.finish();
    p.finish();
}

#[test]
fn killed_subscriber_does_not_block_the_producer() {
    let d = TestDir::new();
    let t = Topic::create("dead", &d.opts().capacity(4096).max_message(256)).unwrap();
    let mut holder = Child::spawn("hold", &child_env(&d, "dead", 0, 1, 1));
    holder.expect("READY");
    let mut p = t.producer().unwrap();
    let mut sent = 0;
    while p.try_publish(&[1; 200]).is_ok() {
        sent += 1;
    }
    assert!(sent > 0 && sent < 20, "the holder gates the producer");
    assert_eq!(t.info().subscribers.len(), 1);
    holder.kill();
    // The dead subscriber is reaped and the producer goes on; the bound
    // is generous, the reap happens on the first liveness check.
    for _ in 0..100 {
        p.publish_timeout(&[2; 200], Duration::from_secs(5)).unwrap();
    }
    let info = t.info();
    assert_eq!(info.reaped, 1);
    assert!(info.subscribers.is_empty());
}

#[test]
fn killed_producer_mid_claim_is_repaired_by_the_next_producer() {
    let d = TestDir::new();
    let t = Topic::create("stuck", &d.opts().capacity(4096).max_message(256)).unwrap();
    let mut sub = t.subscribe().unwrap();
    let mut holder = Child::spawn("reserve_hold", &child_env(&d, "stuck", 0, 1, 1));
    holder.expect("READY");
    assert_eq!(&*sub.recv_timeout(Duration::from_secs(10)).unwrap(), b"before");
    // The claimed frame is not committed: nothing more to read.
    assert_eq!(sub.try_recv().unwrap_err(), RecvError::Empty);
    // While the holder lives, nobody else may produce on a single-producer topic.
    assert!(matches!(t.producer(), Err(shmq::ProducerError::Busy { .. })));
    holder.kill();
    let mut p = t.producer().expect("take over from the dead producer");
    p.publish(b"after").unwrap();
    // The stuck frame became padding: the subscriber never sees "torn".
    assert_eq!(&*sub.recv_timeout(Duration::from_secs(10)).unwrap(), b"after");
    assert_eq!(t.info().repaired, 1);
}
