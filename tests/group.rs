//! Consumer groups (issue #8, item 2): members share the stream, each
//! message goes to exactly one member; a member killed while holding a
//! message has it redelivered to another (at-least-once).

mod common;
use common::{mix, Child, TestDir};
use shmq::{Options, Policy, RecvError, SubscribeError, Topic};
use std::time::Duration;

const END: u32 = 3;

fn num(m: &[u8]) -> u64 {
    u64::from_le_bytes(m[..8].try_into().unwrap())
}

#[test]
fn members_share_and_plain_subscribers_see_everything() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts().capacity(64 << 10).max_message(1024)).unwrap();
    let mut a = t.subscribe_group("g").unwrap();
    let mut b = t.subscribe_group("g").unwrap();
    let mut other = t.subscribe_group("h").unwrap(); // another group: its own position
    let mut plain = t.subscribe().unwrap();
    let mut p = t.producer().unwrap();
    for i in 0..100u64 {
        p.publish(&i.to_le_bytes()).unwrap();
    }
    let mut got = Vec::new();
    loop {
        let mut progress = false;
        for s in [&mut a, &mut b] {
            if let Ok(m) = s.try_recv() {
                got.push(num(&m));
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    got.sort();
    assert_eq!(got, (0..100).collect::<Vec<_>>(), "each message to exactly one member of g");
    assert!(a.received() > 0 && b.received() > 0, "both members worked: {} {}", a.received(), b.received());
    assert_eq!(other.drain(1000, |_| {}).unwrap(), 100, "group h gets every message once");
    assert_eq!(plain.drain(1000, |_| {}).unwrap(), 100, "a plain subscriber gets every message");
    let info = t.info();
    assert_eq!(info.subscribers.len(), 6, "2 records, 3 members, 1 plain: {:?}", info.subscribers);
}

#[test]
fn a_group_holds_the_producer_until_removed_and_names_are_checked() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts().capacity(4096).max_message(256)).unwrap();
    let m = t.subscribe_group("g").unwrap();
    assert!(matches!(t.remove_group("g"), Err(SubscribeError::GroupInUse { members: 1 })));
    drop(m); // no member left: the group's position still holds the producer
    let mut p = t.producer().unwrap();
    let mut sent = 0;
    while p.try_publish(&[1; 200]).is_ok() {
        sent += 1;
    }
    assert!(sent > 0 && sent < 20);
    let mut late = t.subscribe_group("g").unwrap();
    assert_eq!(late.drain(100, |_| {}).unwrap(), sent, "a member joining later gets what waited");
    drop(late);
    assert_eq!(t.remove_group("g"), Ok(true));
    assert_eq!(t.remove_group("g"), Ok(false));
    for _ in 0..100 {
        p.publish_timeout(&[2; 200], Duration::from_secs(5)).expect("no group holds it now");
    }
    assert!(matches!(t.subscribe_group("bad name"), Err(SubscribeError::InvalidName(_))));
    let ow = Topic::create("ow", &d.opts().policy(Policy::Overwrite)).unwrap();
    assert_eq!(ow.subscribe_group("g").unwrap_err(), SubscribeError::GroupNeedsBlock);
}

/// Child: a group member. With `SHMQ_PRINT`, prints every message number
/// before releasing it; else prints its count and checksums at the end.
#[test]
#[ignore = "run by the tests in this file as a child process"]
fn child() {
    let t = Topic::open("w", &Options::new().dir(std::env::var("SHMQ_TEST_DIR").unwrap())).unwrap();
    let print = std::env::var("SHMQ_PRINT").is_ok();
    let mut s = t.subscribe_group("workers").unwrap();
    println!("READY");
    let (mut n, mut sum, mut hash) = (0u64, 0u64, 0u64);
    loop {
        let m = match s.recv_timeout(Duration::from_secs(30)) {
            Ok(m) => m,
            Err(RecvError::Timeout) => panic!("nothing for 30 s"),
            Err(e) => panic!("{e}"),
        };
        if m.msg_type() == END {
            break;
        }
        let k = num(&m);
        assert!(m[8..].iter().all(|&b| b == k as u8), "message {k} intact");
        if print {
            println!("DONE {k}");
        }
        n += 1;
        sum = sum.wrapping_add(k);
        hash = hash.wrapping_add(mix(k));
    }
    println!("DONE n={n} sum={sum} hash={hash}");
}

fn publish_all(t: Topic, n: u64, workers: u64) -> std::thread::JoinHandle<()> {
    let (_more, rx) = std::sync::mpsc::channel::<()>();
    publish_all_then(t, n, workers, rx)
}

/// As `publish_all`, then one more END for each `()` received on `more`
/// (until it is dropped).
fn publish_all_then(
    t: Topic,
    n: u64,
    workers: u64,
    more: std::sync::mpsc::Receiver<()>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut p = t.producer().unwrap();
        let mut msg = [0u8; 64];
        for k in 0..n {
            msg[..8].copy_from_slice(&k.to_le_bytes());
            msg[8..].fill(k as u8);
            p.publish_timeout(&msg, Duration::from_secs(30)).expect("publish");
        }
        for _ in 0..workers {
            p.publish_typed(END, b"end").unwrap(); // one for each worker
        }
        for () in more {
            p.publish_typed(END, b"end").unwrap();
        }
    })
}

#[test]
fn three_worker_processes_handle_a_million_messages_exactly_once() {
    let d = TestDir::new();
    let t = Topic::create("w", &d.opts().capacity(1 << 20).max_message(1024)).unwrap();
    let n = if cfg!(debug_assertions) { 50_000 } else { 1_000_000 };
    let env = [("SHMQ_TEST_DIR", d.path().display().to_string())];
    let mut workers: Vec<Child> = (0..3).map(|_| Child::spawn("-", &env)).collect();
    for w in &mut workers {
        w.expect("READY");
    }
    let producer = publish_all(t, n, 3);
    let (mut total, mut sum, mut hash) = (0u64, 0u64, 0u64);
    let mut shares = Vec::new();
    for mut w in workers {
        let l = w.expect("DONE n=");
        let f = |k: &str| common::field(&l, k);
        shares.push(f("n"));
        total += f("n");
        sum = sum.wrapping_add(f("sum"));
        hash = hash.wrapping_add(f("hash"));
        w.finish();
    }
    producer.join().unwrap();
    assert_eq!(total, n, "every message handled once: {shares:?}");
    assert_eq!(sum, (0..n).fold(0u64, |a, k| a.wrapping_add(k)));
    assert_eq!(hash, (0..n).fold(0u64, |a, k| a.wrapping_add(mix(k))), "the very same messages");
    println!("{n} messages over 3 worker processes: {shares:?}");
}

#[test]
fn a_worker_killed_mid_message_has_it_redelivered() {
    let d = TestDir::new();
    let t = Topic::create("w", &d.opts().capacity(64 << 10).max_message(1024)).unwrap();
    let n = 200_000u64;
    let env = [("SHMQ_TEST_DIR", d.path().display().to_string()), ("SHMQ_PRINT", "1".into())];
    let mut steady = Child::spawn("-", &env);
    steady.expect("READY");
    // Read the steady worker's output all along (a full pipe would stop it
    // while it holds a message, and with it the whole group).
    let steady = std::thread::spawn(move || {
        let mut ks = Vec::new();
        loop {
            let l = steady.line();
            match l.strip_prefix("DONE ").and_then(|v| v.parse::<usize>().ok()) {
                Some(k) => ks.push(k),
                None => break,
            }
        }
        steady.finish();
        ks
    });
    let mut victim = Child::spawn("-", &env);
    victim.expect("READY");
    let (more_ends, more) = std::sync::mpsc::channel();
    let producer = publish_all_then(t, n, 2, more);
    let mut seen = vec![0u32; n as usize];
    let mut kills = 0;
    let mut rng = 99u64;
    // Kill the victim after a random number of its messages, then replace it.
    let record = |l: &str, seen: &mut Vec<u32>| -> bool {
        if let Some(k) = l.strip_prefix("DONE ").and_then(|v| v.parse::<usize>().ok()) {
            seen[k] += 1;
            false
        } else {
            l.starts_with("DONE n=")
        }
    };
    let mut victim_done = false;
    while kills < 50 && !victim_done {
        rng = mix(rng);
        for _ in 0..rng % 100 {
            if record(&victim.line(), &mut seen) {
                victim_done = true;
                break;
            }
        }
        if victim_done {
            break;
        }
        let _ = victim.proc.kill();
        let _ = victim.proc.wait();
        kills += 1;
        // The killed victim may have taken (and released) an END before
        // printing its last line: one more END for its replacement, or it
        // would wait for a message that never comes (and this loop with it).
        more_ends.send(()).unwrap();
        loop {
            let l = victim.line();
            if l == "EOF" {
                break;
            }
            record(&l, &mut seen);
        }
        victim = Child::spawn("-", &env);
        victim.expect("READY");
    }
    // The last victim and the steady worker may still need an END each
    // (ENDs taken by killed victims were replaced above); the surplus stays
    // unread.
    for _ in 0..2 {
        more_ends.send(()).unwrap();
    }
    drop(more_ends);
    // Drain both to the end.
    loop {
        let l = victim.line();
        if l == "EOF" || record(&l, &mut seen) {
            break;
        }
    }
    victim.finish();
    for k in steady.join().unwrap() {
        seen[k] += 1;
    }
    producer.join().unwrap();
    let missing = seen.iter().filter(|&&c| c == 0).count();
    let twice: u32 = seen.iter().map(|&c| c.saturating_sub(1)).sum();
    assert_eq!(missing, 0, "no message lost");
    assert!(twice <= kills, "at most one redelivery per kill: {twice} > {kills}");
    println!("{n} messages, {kills} workers killed, {twice} redelivered");
}
