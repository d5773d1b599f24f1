//! Liveness that never lies (issue #15): whether a producer or subscriber
//! is alive is the kernel's answer (a lock held through its own
//! descriptor of the topic file), not a pid's. Each test runs real
//! processes: this test binary again in a child role, some of them in
//! another pid namespace (`unshare --pid --fork`, with and without
//! `--mount-proc`: CI runs as root), some that `exec` after attaching, and
//! fork-and-exit daemons. Nothing waits on a sleep: children print
//! `READY`, and a blocked producer's timeout is the only clock.

mod common;
use common::{Child, TestDir};
use shmq::{Options, ProducerError, PublishError, Topic};
use std::io::BufRead as _;
use std::time::Duration;

const NS: &[&str] = &["unshare", "--pid", "--fork", "--kill-child"];
const NS_PROC: &[&str] = &["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"];

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("child needs {k}"))
}

/// Whether this machine lets us make pid namespaces (root, or user
/// namespaces); CI runs as root, so there the tests always run.
fn namespaces() -> bool {
    let ok = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!("CI must be able to make pid namespaces (unshare --pid)");
    }
    if !ok {
        eprintln!("skipped: cannot make a pid namespace here");
    }
    ok
}

#[test]
#[ignore = "run by the tests in this file as a child process"]
fn child() {
    let opts = Options::new().dir(env("SHMQ_TEST_DIR"));
    let topic = Topic::open(&env("SHMQ_TOPIC"), &opts).expect("open topic");
    let role = env("SHMQ_ROLE");
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    match role.as_str() {
        // Subscribes; on `recv N` receives N messages and prints DONE.
        "sub" | "daemon-sub" => {
            let mut sub = topic.subscribe().expect("subscribe");
            if role == "daemon-sub" {
                daemonize();
            }
            println!("READY pid={}", std::process::id());
            while stdin.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(n) = line.trim().strip_prefix("recv ") {
                    let n: u64 = n.parse().expect("count");
                    for k in 0..n {
                        let m = sub.recv_timeout(Duration::from_secs(10)).expect("message");
                        assert_eq!(u64::from_le_bytes(m[..8].try_into().unwrap()), k, "in order, none lost");
                    }
                    println!("DONE got={n}");
                }
                line.clear();
            }
            park(); // only a signal ends it: a clean exit would leave, not die
        }
        // Holds the producer; exits when stdin closes.
        "producer" | "daemon-producer" => {
            let _p = topic.producer().expect("producer");
            if role == "daemon-producer" {
                daemonize();
            }
            println!("READY pid={}", std::process::id());
            while stdin.read_line(&mut line).unwrap_or(0) > 0 {}
            park();
        }
        // Attaches, then replaces itself with `sleep`: same pid, no handle.
        "exec-sub" | "exec-producer" => {
            let _sub = (role == "exec-sub").then(|| topic.subscribe().expect("subscribe"));
            let _p = (role == "exec-producer").then(|| topic.producer().expect("producer"));
            println!("READY pid={}", std::process::id());
            use std::os::unix::process::CommandExt;
            let e = std::process::Command::new("sleep").arg("60").exec();
            panic!("exec failed: {e}");
        }
        // Multi-producer: reserves a message, writes half of it, prints
        // READY and holds the claim until told `commit`.
        "claimer" => {
            let mut p = topic.producer().expect("producer");
            let mut g = p.reserve(64).expect("reserve");
            g[..32].fill(0xA1);
            println!("READY pid={}", std::process::id());
            loop {
                if stdin.read_line(&mut line).unwrap_or(0) == 0 {
                    park(); // stdin closed: about to be killed; never commit
                }
                if line.trim() == "commit" {
                    break;
                }
                line.clear();
            }
            g[32..].fill(0xA1);
            g.commit(64).expect("a live claim is never aborted");
            println!("DONE got=1");
            while stdin.read_line(&mut line).unwrap_or(0) > 0 {}
            park();
        }
        r => panic!("unknown role {r}"),
    }
}

/// Waits to be killed.
fn park() -> ! {
    loop {
        std::thread::park();
    }
}

/// The daemon pattern: fork, the parent exits at once (without running
/// destructors, as daemons do), the child goes on with the handles.
fn daemonize() {
    // SAFETY: the child only continues this single-threaded test role; the
    // parent `_exit`s without touching anything.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid > 0 {
        // SAFETY: ends the parent at once, as a daemon's parent does.
        unsafe { libc::_exit(0) };
    }
}

/// Waits (bounded) until `cond` holds: a process killed through `unshare
/// --kill-child` dies a moment after the wrapper, and one told to `exec`
/// does so a moment after it said READY.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The pid a child's READY line names, in our pid namespace.
fn ready_pid(line: &str) -> u32 {
    common::field(line, "pid") as u32
}

/// Whether process `pid` now runs `sleep` (it has exec'd).
fn runs_sleep(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
}

fn topic(d: &TestDir) -> (Topic, Vec<(&'static str, String)>) {
    // Small: 16 messages of 64 bytes fill it.
    let t = Topic::create("live", &d.opts().capacity(2048).max_message(64)).expect("create");
    let env = vec![("SHMQ_TEST_DIR", d.path().display().to_string()), ("SHMQ_TOPIC", "live".to_string())];
    (t, env)
}

/// Publishes numbered 64-byte messages until the ring is full (a
/// subscriber holds it) or `max` are out; returns how many went out and
/// whether it ended full.
fn fill_up(p: &mut shmq::Producer, max: u64) -> (u64, bool) {
    let mut msg = [0u8; 64];
    for k in 0..max {
        msg[..8].copy_from_slice(&k.to_le_bytes());
        match p.publish_timeout(&msg, Duration::from_millis(300)) {
            Ok(()) => {}
            Err(PublishError::Full) => return (k, true),
            Err(e) => panic!("publish: {e}"),
        }
    }
    (max, false)
}

/// A live subscriber that does not read holds a Block producer, wherever
/// it lives; once it reads, it gets every message, in order.
fn live_subscriber_holds_the_producer(wrapper: &[&str], role: &str) {
    let d = TestDir::new();
    let (t, env) = topic(&d);
    let mut c = Child::spawn_in(wrapper, role, &env);
    let ready = c.expect("READY");
    let mut p = t.producer().expect("producer");
    // Several liveness checks pass while the producer waits: a subscriber
    // wrongly judged dead would be reaped and the producer would go on.
    let (sent, full) = fill_up(&mut p, 64);
    assert!(full, "a live subscriber was reaped: {sent} messages went out");
    let info = t.info();
    assert_eq!(info.subscribers.len(), 1);
    assert!(info.subscribers[0].alive, "{info:?}");
    assert_eq!(info.reaped, 0);
    c.say(&format!("recv {sent}"));
    assert_eq!(common::field(&c.expect("DONE"), "got"), sent);
    end(c, &ready);
}

/// Kills a child, and a daemon by the pid it printed (its parent, our
/// child, has exited already).
fn end(c: Child, ready: &str) {
    let pid = ready_pid(ready);
    if pid > 1 && pid != c.proc.id() {
        // SAFETY: kill has no memory effects; the pid is our daemon's.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    c.kill();
}

/// A subscriber whose process is gone (killed, or exec'd into another
/// program) is reaped by the blocked producer, which goes on.
fn gone_subscriber_is_reaped(wrapper: &[&str], role: &str) {
    let d = TestDir::new();
    let (t, env) = topic(&d);
    let mut c = Child::spawn_in(wrapper, role, &env);
    let ready = c.expect("READY");
    if role == "sub" {
        c.kill();
        wait_until("the killed subscriber is dead", || !t.info().subscribers.iter().any(|s| s.alive));
    } else {
        let pid = ready_pid(&ready);
        wait_until("the subscriber has exec'd", || runs_sleep(pid));
        assert!(!t.info().subscribers[0].alive, "a process that exec'd is no subscriber any more");
        c.kill(); // the `sleep` it became
    }
    let mut p = t.producer().expect("producer");
    let (sent, full) = fill_up(&mut p, 64);
    assert!(!full && sent == 64, "a dead subscriber held the producer ({sent} sent)");
    assert_eq!(t.info().reaped, 1);
}

#[test]
fn a_subscriber_in_another_pid_namespace_is_alive() {
    if namespaces() {
        live_subscriber_holds_the_producer(NS, "sub");
        live_subscriber_holds_the_producer(NS_PROC, "sub");
    }
}

#[test]
fn a_killed_subscriber_in_another_pid_namespace_is_reaped() {
    if namespaces() {
        gone_subscriber_is_reaped(NS, "sub");
        gone_subscriber_is_reaped(NS_PROC, "sub");
    }
}

#[test]
fn a_subscriber_that_execs_is_reaped_though_its_pid_lives() {
    gone_subscriber_is_reaped(&[], "exec-sub");
}

#[test]
fn a_fork_and_exit_daemon_keeps_its_subscriber() {
    live_subscriber_holds_the_producer(&[], "daemon-sub");
}

/// While a single producer lives (in another pid namespace, or as a
/// daemon's child) nobody else may produce; once it is gone (killed, or
/// exec'd), the next producer takes over.
fn single_producer(wrapper: &[&str], role: &str, then_gone: bool) {
    let d = TestDir::new();
    let (t, env) = topic(&d);
    let mut c = Child::spawn_in(wrapper, role, &env);
    let ready = c.expect("READY");
    if role.starts_with("exec") {
        let pid = ready_pid(&ready);
        wait_until("the producer has exec'd", || runs_sleep(pid));
        assert!(t.producer().is_ok(), "a producer that exec'd still held the topic");
        c.kill();
        return;
    }
    match t.producer() {
        Err(ProducerError::Busy { .. }) => {}
        other => panic!("a second producer beside a live one: {other:?}"),
    }
    assert!(t.info().producer_alive);
    if then_gone {
        c.kill();
        wait_until("the killed producer is dead", || !t.info().producer_alive);
        let p = t.producer().expect("the dead producer's topic is taken over");
        drop(p);
    } else {
        end(c, &ready);
    }
}

#[test]
fn a_single_producer_in_another_pid_namespace_keeps_the_topic() {
    if namespaces() {
        single_producer(NS, "producer", true);
        single_producer(NS_PROC, "producer", true);
    }
}

#[test]
fn a_producer_that_execs_gives_the_topic_up() {
    single_producer(&[], "exec-producer", true);
}

#[test]
fn a_fork_and_exit_daemon_keeps_its_producer() {
    single_producer(&[], "daemon-producer", false);
}

#[test]
fn in_use_is_seen_across_pid_namespaces_and_rm_gc_respect_it() {
    if !namespaces() {
        return;
    }
    let d = TestDir::new();
    let (t, env) = topic(&d);
    drop(t);
    let look = Topic::open_read_only("live", &d.opts()).expect("open");
    assert!(!look.in_use());
    let mut c = Child::spawn_in(NS_PROC, "sub", &env);
    c.expect("READY");
    assert!(look.in_use(), "a user in another pid namespace is seen");
    let shmq = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_shmq"))
            .arg("--dir")
            .arg(d.path())
            .args(args)
            .output()
            .expect("run shmq")
    };
    let o = shmq(&["rm", "live"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("in use"), "{o:?}");
    let o = shmq(&["gc"]);
    assert!(o.status.success() && d.path().join("live").exists(), "{o:?}");
    c.kill();
    wait_until("the killed user's lock is gone", || !look.in_use());
    let o = shmq(&["rm", "live"]);
    assert!(o.status.success(), "{o:?}");
}

/// A multi-producer topic whose liveness timeout is short; 64-byte messages.
fn multi_topic(d: &TestDir) -> (Topic, Vec<(&'static str, String)>) {
    let opts = d.opts().capacity(4096).max_message(64).multi_producer(true).liveness_timeout(Duration::from_millis(20));
    let t = Topic::create("live", &opts).expect("create");
    let env = vec![("SHMQ_TEST_DIR", d.path().display().to_string()), ("SHMQ_TOPIC", "live".to_string())];
    (t, env)
}

/// A producer in another pid namespace holds a claim far longer than the
/// liveness timeout: subscribers wait for it (its lock says it lives)
/// rather than abort it, and then get its message intact before the one
/// published after it. Killed instead, its claim is skipped and the later
/// message arrives.
fn multi_producer_claim(wrapper: &[&str], then_killed: bool) {
    let d = TestDir::new();
    let (t, env) = multi_topic(&d);
    let mut s = t.subscribe().expect("subscribe");
    let mut c = Child::spawn_in(wrapper, "claimer", &env);
    let ready = c.expect("READY");
    t.producer().expect("producer").publish(&[0xB2; 64]).expect("publish after the claim");
    // 25 liveness timeouts pass: a claim judged by a pid from another
    // namespace was aborted here, and its late write corrupted this one.
    match s.recv_timeout(Duration::from_millis(500)) {
        Err(shmq::RecvError::Timeout) => {}
        other => panic!("the live producer's claim was not waited for: {:?}", other.map(|m| m.to_vec())),
    }
    if then_killed {
        end(c, &ready);
        let m = s.recv_timeout(Duration::from_secs(10)).expect("the later message, past the dead claim");
        assert_eq!(&*m, &[0xB2; 64]);
        return;
    }
    c.say("commit");
    c.expect("DONE");
    let first = s.recv_timeout(Duration::from_secs(10)).expect("the claimed message").to_vec();
    assert_eq!(first, [0xA1; 64], "the claimed message arrives whole");
    let second = s.recv_timeout(Duration::from_secs(10)).expect("the later message").to_vec();
    assert_eq!(second, [0xB2; 64]);
    assert_eq!(t.info().subscribers[0].lost, 0);
    end(c, &ready);
}

#[test]
fn a_multi_producer_claim_in_another_pid_namespace_is_waited_for() {
    if namespaces() {
        multi_producer_claim(NS, false);
        multi_producer_claim(NS_PROC, false);
    }
}

#[test]
fn a_killed_multi_producer_claim_in_another_pid_namespace_is_skipped() {
    if namespaces() {
        multi_producer_claim(NS, true);
    }
}
