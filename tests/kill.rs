//! Processes killed at random moments (issue #7, items 1 and 2).
//!
//! Every test runs real processes: this test binary re-run in a child role
//! (the ignored `child` test, selected by `SHMQ_ROLE`). Producers publish
//! checksummed messages of random sizes numbered per producer; a verifying
//! subscriber process checks every byte, that each producer's messages
//! arrive in order with no gap (`Block`: nothing committed is lost), and
//! that it never waits more than 10 s for the next one (no hang). The
//! parent SIGKILLs producers or subscribers after a random delay, so the
//! kill lands anywhere: inside `reserve`/`commit`, in the claim's wait for
//! room, while a subscriber holds a zero-copy message.
//!
//! `SHMQ_KILL_TRIALS` scales the number of trials (default 24 per test);
//! `SHMQ_KILL_SEED` picks the random delays. The figures each test prints
//! (`--nocapture`) are the ones quoted in docs/RELIABILITY.md.

mod common;
use common::{check, field, fill, ident, mix, msg_len, Child, TestDir};
use shmq::{Options, PublishError, Topic};
use std::collections::HashMap;
use std::io::BufRead as _;
use std::time::{Duration, Instant};

/// Message type of the last message, published by the parent.
const END: u32 = 7;
const MIN: usize = 12;
const MAX: usize = 2048;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("child needs {k}"))
}

/// Where victim number `i` runs: every other one in a pid namespace of its
/// own (`unshare --pid --fork --kill-child`: the victim dies with the
/// wrapper we kill), so liveness is tested across namespaces too (issue
/// #15). Where pid namespaces cannot be made (not root), all run here.
fn wrapper(i: u64) -> &'static [&'static str] {
    static NS_OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *NS_OK.get_or_init(|| {
        std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "true"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if ok && i % 2 == 1 {
        &["unshare", "--pid", "--fork", "--kill-child"]
    } else {
        &[]
    }
}

/// Waits (bounded) until `cond`: a victim in a pid namespace dies a moment
/// after the wrapper we killed.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn trials() -> u64 {
    std::env::var("SHMQ_KILL_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
}

/// Random delays in microseconds, from `SHMQ_KILL_SEED` (or the clock).
struct Delays(u64);
impl Delays {
    fn new() -> Delays {
        let seed = std::env::var("SHMQ_KILL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        });
        println!("SHMQ_KILL_SEED={seed}");
        Delays(seed)
    }
    fn below_us(&mut self, max_us: u64) -> Duration {
        self.0 = mix(self.0);
        Duration::from_micros(self.0 % max_us)
    }
}

#[test]
#[ignore = "run by the tests in this file as a child process"]
fn child() {
    let role = env("SHMQ_ROLE");
    let topic = || Topic::open(&env("SHMQ_TOPIC"), &Options::new().dir(env("SHMQ_TEST_DIR"))).expect("open topic");
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    match role.as_str() {
        // Publishes messages of producer `SHMQ_PRODUCER` until killed, in
        // turn by copy-in publish, zero-copy reserve/commit and batches of
        // 1-8 (`publish_batch`: a kill inside one leaves a claim whose
        // first frames are committed).
        "spray" => {
            let topic = topic();
            let me: u64 = env("SHMQ_PRODUCER").parse().unwrap();
            let mut p = topic.producer().expect("producer");
            let mut buf = vec![0u8; MAX];
            let mut batch: Vec<Vec<u8>> = Vec::new();
            println!("READY");
            let mut k = 0;
            loop {
                let len = msg_len(me, k, MIN, MAX);
                match k % 3 {
                    0 => {
                        fill(me, k, &mut buf[..len]);
                        p.publish(&buf[..len]).expect("publish");
                    }
                    1 => {
                        let mut g = p.reserve(len).expect("reserve");
                        fill(me, k, &mut g[..len]);
                        g.commit(len).expect("commit");
                    }
                    _ => {
                        let n = 1 + mix(k) % 8;
                        batch.clear();
                        for j in k..k + n {
                            let mut m = vec![0u8; msg_len(me, j, MIN, MAX)];
                            fill(me, j, &mut m);
                            batch.push(m);
                        }
                        p.publish_batch(&batch).expect("publish_batch");
                        k += n;
                        continue;
                    }
                }
                k += 1;
            }
        }
        // Receives until the END message; checks every message.
        "verify" => {
            let topic = topic();
            let mut sub = topic.subscribe().expect("subscribe");
            println!("READY");
            let mut next: HashMap<u64, u64> = HashMap::new();
            let (mut received, mut max_stall) = (0u64, Duration::ZERO);
            let mut scratch = Vec::new();
            let mut last = Instant::now();
            let mut prev_seq: Option<u64> = None;
            let dense = !topic.info().multi_producer;
            loop {
                let m = match sub.recv_timeout(Duration::from_secs(10)) {
                    Ok(m) => m,
                    Err(e) => {
                        println!("ERR {e} after received={received} (a hang: nothing for 10 s)");
                        std::process::exit(1);
                    }
                };
                max_stall = max_stall.max(last.elapsed());
                last = Instant::now();
                // One producer at a time: sequence numbers stay dense
                // across kills (the next producer numbers on after the
                // last frame its dead predecessor committed).
                if dense {
                    if let Some(s) = prev_seq.filter(|&s| m.seq() != s + 1) {
                        println!("ERR sequence number {} after {s}", m.seq());
                        std::process::exit(1);
                    }
                    prev_seq = Some(m.seq());
                }
                if m.msg_type() == END {
                    break;
                }
                let (p, k) = ident(&m);
                let want = next.entry(p).or_insert(0);
                if k != *want {
                    println!("ERR producer {p}: got message {k}, expected {want} (lost or reordered)");
                    std::process::exit(1);
                }
                if let Err(e) = check(p, k, &m, MIN, MAX, &mut scratch) {
                    println!("ERR {e}");
                    std::process::exit(1);
                }
                *want += 1;
                received += 1;
            }
            println!("DONE received={received} producers={} max_stall_ms={}", next.len(), max_stall.as_millis());
        }
        // Reads like a real consumer, holding each zero-copy message while
        // it checks it, until killed.
        "holder" => {
            let topic = topic();
            let mut sub = topic.subscribe().expect("subscribe");
            println!("READY");
            let mut scratch = Vec::new();
            let mut next = None;
            loop {
                let m = sub.recv_timeout(Duration::from_secs(30)).expect("holder recv");
                let (p, k) = ident(&m);
                assert!(next.is_none_or(|n| n == k), "holder: message {k} after {next:?}");
                check(p, k, &m, MIN, MAX, &mut scratch).expect("holder check");
                next = Some(k + 1);
            }
        }
        // Creates and removes topics in a loop until killed.
        "creator" => {
            println!("READY");
            let opts = Options::new().dir(env("SHMQ_TEST_DIR")).capacity(4 << 20);
            for i in 0.. {
                let name = format!("c{}", i % 3);
                let _ = Topic::unlink_in(std::path::Path::new(&env("SHMQ_TEST_DIR")), &name);
                Topic::create(&name, &opts).expect("create");
            }
        }
        // Multi-producer: claims a frame, then waits to be killed.
        "claim_and_wait" => {
            let topic = topic();
            let mut p = topic.producer().expect("producer");
            let mut g = p.reserve(100).expect("reserve");
            g[..4].copy_from_slice(b"torn");
            println!("READY");
            stdin.read_line(&mut line).unwrap();
            let _ = g.commit(100); // never reached: the parent kills us
        }
        other => panic!("unknown role {other}"),
    }
}

fn child_env(d: &TestDir, topic: &str, producer: u64) -> Vec<(&'static str, String)> {
    vec![
        ("SHMQ_TEST_DIR", d.path().display().to_string()),
        ("SHMQ_TOPIC", topic.to_string()),
        ("SHMQ_PRODUCER", producer.to_string()),
    ]
}

/// Publishes the END marker with a fresh producer, which must attach.
fn publish_end(t: &Topic) {
    let mut p = t.producer().expect("a new producer attaches after the kills");
    p.publish_typed(END, b"end").expect("publish END");
}

/// Kills `producers_per_trial` spraying producers per trial at random
/// moments; a verifying subscriber must get every committed message.
fn producer_kill_harness(multi: bool, producers_per_trial: u64) {
    let d = TestDir::new();
    let opts = d
        .opts()
        .capacity(4 << 20)
        .max_message(MAX as u32)
        .multi_producer(multi)
        .liveness_timeout(Duration::from_millis(100));
    let t = Topic::create("k", &opts).unwrap();
    let mut verify = Child::spawn("verify", &child_env(&d, "k", 0));
    verify.expect("READY");
    let mut delays = Delays::new();
    let n = trials();
    let mut id = 0;
    for _ in 0..n {
        let mut ps = Vec::new();
        for _ in 0..producers_per_trial {
            let mut p = Child::spawn_in(wrapper(id), "spray", &child_env(&d, "k", id));
            p.expect("READY");
            ps.push(p);
            id += 1;
        }
        for p in ps {
            std::thread::sleep(delays.below_us(3000)); // the kill moment, not synchronisation
            p.kill();
        }
        if !multi {
            // The next single producer may attach only once this one is dead.
            wait_until("the killed producer is dead", || !t.info().producer_alive);
        }
    }
    publish_end(&t);
    let done = verify.expect("DONE");
    verify.finish();
    let info = t.info();
    println!(
        "{} producer(s) per trial, {n} trials: {done}; frames repaired (kill landed inside a claim) = {}",
        producers_per_trial, info.repaired
    );
    assert!(field(&done, "received") > 0);
    assert!(field(&done, "producers") <= id);
    assert!(info.repaired <= id, "at most one repaired claim per killed producer");
}

#[test]
fn single_producer_killed_at_random_points_loses_nothing_committed() {
    producer_kill_harness(false, 1);
}

#[test]
fn multi_producers_killed_at_random_points_lose_nothing_committed() {
    producer_kill_harness(true, 2);
}

#[test]
fn subscribers_killed_at_random_points_never_stop_the_producer() {
    let d = TestDir::new();
    let t = Topic::create("s", &d.opts().capacity(64 << 10).max_message(MAX as u32)).unwrap();
    let mut verify = Child::spawn("verify", &child_env(&d, "s", 0));
    verify.expect("READY");
    let mut p = t.producer().unwrap();
    let mut buf = vec![0u8; MAX];
    let mut k = 0u64;
    let mut publish = |p: &mut shmq::Producer| -> Duration {
        let len = msg_len(0, k, MIN, MAX);
        fill(0, k, &mut buf[..len]);
        let t0 = Instant::now();
        match p.publish_timeout(&buf[..len], Duration::from_secs(10)) {
            Ok(()) => {}
            Err(PublishError::Full) => panic!("producer stuck behind a killed subscriber for 10 s"),
            Err(e) => panic!("{e}"),
        }
        k += 1;
        t0.elapsed()
    };
    let mut delays = Delays::new();
    let n = trials();
    let mut max_stall = Duration::ZERO;
    for trial in 0..n {
        let mut h = Child::spawn_in(wrapper(trial), "holder", &child_env(&d, "s", 0));
        h.expect("READY");
        let burst = delays.below_us(2000).as_micros() as u64;
        for _ in 0..burst {
            publish(&mut p);
        }
        h.kill();
        wait_until("the killed holder is dead", || t.info().subscribers.iter().any(|s| !s.alive));
        // Until a reap, the killed holder shows as dead in the counters.
        let dead: Vec<_> = t.info().subscribers.into_iter().filter(|s| !s.alive).collect();
        assert_eq!(dead.len(), 1, "the killed holder shows as dead: {dead:?}");
        // 200 messages (~200 KB) overrun the 64 KiB ring, so the dead
        // holder's cursor gates the producer, which must reap it and go on.
        for _ in 0..200 {
            max_stall = max_stall.max(publish(&mut p));
        }
        assert_eq!(t.info().reaped, trial + 1, "the producer reclaimed the dead holder's slot");
    }
    let info = t.info();
    assert_eq!(info.subscribers.len(), 1, "only the verifier is left: {:?}", info.subscribers);
    assert!(info.subscribers[0].alive);
    assert_eq!(info.reaped, n, "every killed holder's slot was reclaimed");
    p.publish_typed(END, b"end").unwrap();
    let done = verify.expect("DONE");
    verify.finish();
    assert_eq!(field(&done, "received"), k, "the surviving subscriber lost nothing");
    println!("{n} subscribers killed: {done}; longest publish after a kill {max_stall:?}");
}

fn multi_topic(d: &TestDir, name: &str, liveness_ms: u64) -> Topic {
    let opts = d.opts().capacity(64 << 10).max_message(1024).multi_producer(true);
    Topic::create(name, &opts.liveness_timeout(Duration::from_millis(liveness_ms))).unwrap()
}

#[test]
fn claim_of_a_killed_multi_producer_is_skipped_and_counted() {
    let d = TestDir::new();
    let t = multi_topic(&d, "dead", 100);
    let mut sub = t.subscribe().unwrap();
    let mut holder = Child::spawn("claim_and_wait", &child_env(&d, "dead", 0));
    holder.expect("READY");
    let mut p = t.producer().unwrap();
    p.publish(b"behind the claim").unwrap();
    // The claim's owner lives: the subscriber waits at its frame.
    assert_eq!(sub.try_recv().unwrap_err(), shmq::RecvError::Empty);
    holder.kill();
    // Within the liveness timeout (plus a sleep slice) the subscriber
    // aborts the dead claim and reads on; "torn" is never delivered.
    assert_eq!(&*sub.recv_timeout(Duration::from_secs(10)).unwrap(), b"behind the claim");
    assert_eq!(t.info().repaired, 1);
    p.publish(b"next").unwrap();
    assert_eq!(&*sub.recv_timeout(Duration::from_secs(10)).unwrap(), b"next");
}

#[test]
fn claim_of_a_live_producer_is_never_skipped() {
    let d = TestDir::new();
    let t = multi_topic(&d, "live", 20);
    let mut sub = t.subscribe().unwrap();
    let mut slow = t.producer().unwrap();
    let mut fast = t.producer().unwrap();
    let mut g = slow.reserve(5).unwrap();
    fast.publish(b"fast").unwrap();
    // Fifteen liveness timeouts: the slow producer's process is alive, so
    // its claim is waited for, not aborted.
    assert_eq!(sub.recv_timeout(Duration::from_millis(300)).unwrap_err(), shmq::RecvError::Timeout);
    g.copy_from_slice(b"slow!");
    g.commit(5).expect("a live producer's claim is never lost");
    assert_eq!(&*sub.recv_timeout(Duration::from_secs(10)).unwrap(), b"slow!");
    assert_eq!(&*sub.recv_timeout(Duration::from_secs(10)).unwrap(), b"fast");
    assert_eq!(t.info().repaired, 0);
}

#[test]
fn claim_never_marked_by_a_dead_producer_is_skipped() {
    // A producer killed between its tail CAS and its first mark leaves a
    // claim with no owner on record. Simulate one: move the tail on by a
    // 64-byte frame, as that producer's CAS did, and never write the frame.
    let d = TestDir::new();
    let t = multi_topic(&d, "unmarked", 50);
    let mut sub = t.subscribe().unwrap();
    let f = std::fs::OpenOptions::new().read(true).write(true).open(t.path()).unwrap();
    // SAFETY: a test mapping of a file this test owns; the tail word is
    // written atomically below and the ring validates everything it reads.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&f).unwrap() };
    let tail_off = shmq::layout::prod::TAIL;
    let tail = u64::from_le_bytes(map[tail_off..tail_off + 8].try_into().unwrap());
    map[tail_off..tail_off + 8].copy_from_slice(&(tail + 64).to_le_bytes());
    let mut p = t.producer().unwrap();
    p.publish(b"after the hole").unwrap();
    assert_eq!(&*sub.recv_timeout(Duration::from_secs(10)).unwrap(), b"after the hole");
    assert_eq!(t.info().repaired, 1);
    drop(map);
}

#[test]
fn creators_killed_mid_create_leave_nothing_an_opener_trips_on() {
    let d = TestDir::new();
    let mut delays = Delays::new();
    let n = trials();
    let mut opened = 0;
    for _ in 0..n {
        let mut c = Child::spawn("creator", &child_env(&d, "-", 0));
        c.expect("READY");
        std::thread::sleep(delays.below_us(20_000)); // the kill moment
        c.kill();
        // Every name present is a complete topic: a half-built one only
        // ever exists under a hidden temporary name.
        for e in std::fs::read_dir(d.path()).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                let t = Topic::open(&name, &d.opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(t.info().capacity, 4 << 20);
                opened += 1;
            }
        }
    }
    // `shmq gc` removes the temporaries of the killed creators (and the
    // topics nobody uses); afterwards the directory is empty.
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_shmq")).arg("--dir").arg(d.path()).arg("gc").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    println!(
        "{n} creators killed; {opened} complete topics opened after kills; \
         gc removed {} unfinished temporaries and {} finished topics",
        said.matches("never finished").count(),
        said.matches("no live process").count()
    );
    let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
    assert!(left.is_empty(), "gc left {left:?}");
    let t = Topic::open_or_create("c0", &d.opts()).unwrap();
    let mut sub = t.subscribe().unwrap();
    t.producer().unwrap().publish(b"works").unwrap();
    assert_eq!(&*sub.try_recv().unwrap(), b"works");
}
