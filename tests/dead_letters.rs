//! Poison messages and dead letters (issue #19): worker processes of a
//! consumer group SIGKILL themselves on a poison message; it lands in the
//! dead-letter topic after exactly `max_deliveries` deliveries, every other
//! message is processed exactly once; `reject` sends one at once; a full
//! dead-letter topic holds the poison message rather than losing it.

mod common;
use common::{child_env as env, TestDir};
use shmq::{DeadLetter, DeadLetterReason, GroupOptions, Options, RecvError, Start, TailEvent, Topic};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Message `k`: its number, then a flag (1: poison).
fn job(k: u64, poison: bool) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[..8].copy_from_slice(&k.to_le_bytes());
    m[8] = poison as u8;
    m
}

#[test]
#[ignore = "run by the tests in this file as a child process"]
fn child() {
    let t = Topic::open("jobs", &Options::new().dir(env("SHMQ_TEST_DIR"))).expect("open");
    let max: u32 = env("SHMQ_MAX").parse().expect("max");
    let opts = GroupOptions::new().max_deliveries(max).dead_letter_topic("jobs.dead", true);
    let mut w = t.subscribe_group_with("workers", &opts).expect("join");
    println!("READY");
    loop {
        match w.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => {
                let k = u64::from_le_bytes(m[..8].try_into().unwrap());
                if m[8] == 1 {
                    println!("POISON deliveries={}", m.deliveries());
                    // SAFETY: kill and getpid have no memory effects.
                    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
                }
                println!("DONE got={k}");
            }
            Err(RecvError::Timeout | RecvError::Closed) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// A worker process, its output lines sent to `tx` (with `None` at its end).
fn worker(d: &TestDir, max: u32, tx: mpsc::Sender<Option<String>>) -> std::process::Child {
    let mut c = Command::new(std::env::current_exe().expect("exe"))
        .args(["child", "--exact", "--ignored", "--nocapture", "--test-threads=1", "-q"])
        .env("SHMQ_TEST_DIR", d.path())
        .env("SHMQ_MAX", max.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn worker");
    let out = std::io::BufReader::new(c.stdout.take().expect("stdout"));
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            if l.starts_with("READY") || l.starts_with("POISON") || l.starts_with("DONE") {
                let _ = tx.send(Some(l));
            }
        }
        let _ = tx.send(None);
    });
    c
}

/// The dead letters in `jobs.dead` so far, read passively (the topic's
/// keeper holds them).
fn dead_letters(d: &TestDir) -> Vec<(DeadLetter, Vec<u8>)> {
    let Ok(t) = Topic::open_read_only("jobs.dead", &Options::new().dir(d.path())) else {
        return Vec::new();
    };
    let mut tail = t.tail(Start::Oldest).expect("tail");
    let mut out = Vec::new();
    while let Ok(Some(TailEvent::Message(m))) = tail.next_event() {
        // The filler of the full-topic test has no envelope.
        if let Some((env, payload)) = DeadLetter::decode(m.data) {
            out.push((env, payload.to_vec()));
        }
    }
    out
}

/// Runs three workers (restarting each that dies) over `n` jobs, one of
/// them poison, until `finished(jobs processed so far)` says so. Returns
/// (jobs processed, poison deliveries seen).
fn run_group(
    d: &TestDir,
    n: u64,
    poison: u64,
    max: u32,
    mut finished: impl FnMut(usize) -> bool,
) -> (Vec<u64>, Vec<u32>) {
    let t = Topic::create("jobs", &d.opts().capacity(64 << 10).max_message(64)).expect("create");
    let (tx, rx) = mpsc::channel();
    let mut workers: Vec<_> = (0..3).map(|_| worker(d, max, tx.clone())).collect();
    let mut ready = 0;
    while ready < 3 {
        if let Some(l) = rx.recv_timeout(Duration::from_secs(30)).expect("worker start") {
            ready += l.starts_with("READY") as usize;
        }
    }
    let mut p = t.producer().expect("producer");
    for k in 0..n {
        p.publish(&job(k, k == poison)).expect("publish");
    }
    let (mut done, mut deliveries) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !finished(done.len()) {
        assert!(Instant::now() < deadline, "stalled: {} done, poison seen {deliveries:?}", done.len());
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(l)) if l.starts_with("DONE") => done.push(common::field(&l, "got")),
            Ok(Some(l)) if l.starts_with("POISON") => deliveries.push(common::field(&l, "deliveries") as u32),
            Ok(Some(_)) => {}
            Ok(None) => workers.push(worker(d, max, tx.clone())), // a worker died: start another
            Err(_) => {}
        }
    }
    for mut w in workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    done.sort_unstable();
    (done, deliveries)
}

#[test]
fn a_poison_message_is_dead_lettered_after_exactly_max_deliveries() {
    let d = TestDir::new();
    let (n, poison, max) = (300, 150, 3);
    let (done, deliveries) =
        run_group(&d, n, poison, max, |done| done == n as usize - 1 && !dead_letters(&d).is_empty());
    let others: Vec<u64> = (0..n).filter(|&k| k != poison).collect();
    assert_eq!(done, others, "every other message exactly once");
    assert_eq!(deliveries, [1, 2, 3], "delivered exactly max times, counted");
    let dead = dead_letters(&d);
    assert_eq!(dead.len(), 1);
    let (env, payload) = &dead[0];
    assert_eq!(env.reason, DeadLetterReason::MaxDeliveries);
    assert_eq!((env.seq, env.deliveries, env.group.as_str()), (poison, max, "workers"));
    assert_eq!(payload.as_slice(), job(poison, true));
    let t = Topic::open("jobs", &d.opts()).expect("open");
    let g = t.info().subscribers.into_iter().find(|s| s.kind == shmq::SlotKind::Group).expect("group record");
    assert_eq!((g.dead_lettered, g.max_deliveries), (1, max));
    // The CLI shows the count, and the envelope on the dead-letter topic.
    let shmq = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_shmq")).arg("--dir").arg(d.path()).args(args).output();
    let info = String::from_utf8_lossy(&shmq(&["info", "jobs"]).expect("info").stdout).to_string();
    assert!(info.contains("1 dead-lettered (after 3 deliveries)"), "{info}");
    let tail = String::from_utf8_lossy(&shmq(&["tail", "jobs.dead"]).expect("tail").stdout).to_string();
    assert!(
        tail.contains("dead letter from group \"workers\": max-deliveries after 3 deliveries; original #150"),
        "{tail}"
    );
}

#[test]
fn a_full_dead_letter_topic_holds_the_poison_message_rather_than_lose_it() {
    let d = TestDir::new();
    // The dead-letter topic, made small and filled up; a subscriber that
    // does not read holds it full (Block).
    let need = (64 + shmq::DEAD_LETTER_ENVELOPE) as u32;
    let dlq = Topic::create("jobs.dead", &d.opts().capacity(4096).max_message(need).multi_producer(true)).expect("dlq");
    let mut reader = dlq.subscribe().expect("subscribe");
    let mut filler = dlq.producer().expect("producer");
    let mut filled = 0;
    while filler.try_publish(&[0u8; 100]).is_ok() {
        filled += 1;
    }
    let (n, poison) = (50, 10);
    let mut drained = false;
    let (done, deliveries) = run_group(&d, n, poison, 1, |done| {
        if done == n as usize - 1 && !drained {
            // Every other job is done, and the poison (delivered once: the
            // maximum) has met the full topic: it is held, not lost, and
            // not counted.
            let t = Topic::open("jobs", &Options::new().dir(d.path())).expect("open");
            let g = t.info().subscribers.into_iter().find(|s| s.kind == shmq::SlotKind::Group).expect("group");
            if g.dead_lettered == 0 && dead_letters(&d).iter().all(|(e, _)| e.group != "workers") {
                for _ in 0..filled {
                    reader.recv_timeout(Duration::from_secs(30)).expect("filler");
                }
                drained = true;
            }
        }
        drained && dead_letters(&d).iter().any(|(e, _)| e.group == "workers")
    });
    assert_eq!(done.len(), n as usize - 1);
    assert_eq!(deliveries, [1]);
    let dead: Vec<_> = dead_letters(&d).into_iter().filter(|(e, _)| e.group == "workers").collect();
    assert_eq!(dead.len(), 1, "stored once room came, not lost");
    assert_eq!(dead[0].0.seq, poison);
}

#[test]
fn reject_sends_a_message_to_the_dead_letter_topic_at_once() {
    let d = TestDir::new();
    let t = Topic::create("jobs", &d.opts().capacity(64 << 10).max_message(64)).expect("create");
    let mut w =
        t.subscribe_group_with("workers", &GroupOptions::new().dead_letter_topic("jobs.dead", true)).expect("join");
    let mut plain = t.subscribe_group("others").expect("another group");
    let mut p = t.producer().expect("producer");
    for k in 0..3 {
        p.publish(&job(k, false)).expect("publish");
    }
    let m = w.recv().expect("job 0");
    assert_eq!(m.deliveries(), 1);
    m.reject().expect("reject");
    assert_eq!(u64::from_le_bytes(w.recv().expect("job 1")[..8].try_into().unwrap()), 1, "the group went on");
    // Without a dead-letter topic, reject puts the message back.
    let m = plain.recv().expect("job 0");
    assert_eq!(m.reject(), Err(shmq::RejectError::NoDeadLetterTopic));
    assert_eq!(u64::from_le_bytes(plain.recv().expect("again")[..8].try_into().unwrap()), 0, "put back, not lost");
    let dead = dead_letters(&d);
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].0.reason, dead[0].0.seq, dead[0].0.deliveries), (DeadLetterReason::Rejected, 0, 1));
    // A group that moves poison needs a dead-letter topic from each member.
    let _g = t
        .subscribe_group_with("strict", &GroupOptions::new().max_deliveries(2).dead_letter_topic("jobs.dead", false))
        .expect("join");
    assert!(matches!(t.subscribe_group("strict"), Err(shmq::SubscribeError::DeadLetter(_))), "it could not bury");
    assert!(matches!(
        t.subscribe_group_with("strict", &GroupOptions::new().max_deliveries(5).dead_letter_topic("jobs.dead", false)),
        Err(shmq::SubscribeError::GroupSettings { max_deliveries: 2, .. })
    ));
    assert!(matches!(t.subscribe_group_with("strict", &GroupOptions::new()), Err(shmq::SubscribeError::DeadLetter(_))));
}
