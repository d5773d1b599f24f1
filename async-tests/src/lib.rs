//! Helpers for the async tests: a topic directory per test, deterministic
//! payloads, and child processes (this test binary again, in a role).

use shmq::{Options, Subscriber, Topic};
use std::io::{BufRead, Write};
use std::time::Duration;

// The core crate's test helpers: a topic directory per test, removed on
// drop, and the splitmix64 behind the payloads.
#[path = "../../tests/common/mod.rs"]
mod common;
pub use common::{mix, TestDir};

/// Message `k` of topic `t`: 16..=200 bytes, starting with `t` and `k`,
/// the rest derived from both (a torn or misplaced read shows).
pub fn payload(t: u64, k: u64) -> Vec<u8> {
    let len = 16 + (mix(t << 32 ^ k) % 185) as usize;
    let mut v: Vec<u8> = (0..len).map(|i| mix(t ^ k << 20 ^ i as u64) as u8).collect();
    v[..8].copy_from_slice(&t.to_le_bytes());
    v[8..16].copy_from_slice(&k.to_le_bytes());
    v
}

/// Checks that `msg` is message `k` of topic `t`.
pub fn check(t: u64, k: u64, msg: &[u8]) {
    if msg != payload(t, k).as_slice() {
        let got = (msg.len() >= 16).then(|| (ident(msg).0, ident(msg).1));
        panic!("topic {t}: expected message {k}, got {} bytes (topic, k) = {got:?}", msg.len());
    }
}

/// (topic, k) of a message.
pub fn ident(msg: &[u8]) -> (u64, u64) {
    let w = |i: usize| u64::from_le_bytes(msg[i..i + 8].try_into().unwrap_or_default());
    (w(0), w(8))
}

/// A child process: this test binary's ignored test `child`, with
/// `SHMQ_ROLE` and the given environment; talked to one line at a time.
#[derive(Debug)]
pub struct Child {
    pub proc: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Child {
    pub fn spawn(role: &str, env: &[(&str, String)]) -> Child {
        let exe = std::env::current_exe().expect("test binary");
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["child", "--exact", "--ignored", "--nocapture", "--test-threads=1", "-q"])
            .env("SHMQ_ROLE", role)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut proc = cmd.spawn().expect("spawn child");
        let out = std::io::BufReader::new(proc.stdout.take().expect("stdout"));
        Child { proc, out }
    }

    /// The next line starting with READY or DONE (skipping harness noise).
    pub fn expect(&mut self, marker: &str) -> String {
        loop {
            let mut l = String::new();
            if self.out.read_line(&mut l).unwrap_or(0) == 0 {
                panic!("child ended before {marker}");
            }
            if let Some(i) = l.find(marker) {
                return l[i..].trim().to_string();
            }
        }
    }

    pub fn say(&mut self, line: &str) {
        let stdin = self.proc.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to child");
        stdin.flush().expect("flush");
    }

    /// Waits for the child to exit; panics unless it succeeded.
    pub fn finish(mut self) {
        drop(self.proc.stdin.take());
        let st = self.proc.wait().expect("wait");
        assert!(st.success(), "child failed: {st}");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

/// Reads `k` from the environment (children only).
pub fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("child needs {k}"))
}

/// The roles of the child processes the tests start (each test binary's
/// ignored `child` test calls this).
pub fn child_main() {
    let opts = Options::new().dir(env("SHMQ_DIR"));
    let role = env("SHMQ_ROLE");
    let pause_us: u64 = std::env::var("SHMQ_PAUSE_US").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut rng = std::process::id() as u64;
    let mut pause = move || {
        rng = mix(rng);
        if pause_us > 0 && rng.is_multiple_of(16) {
            std::thread::sleep(Duration::from_micros(rng % pause_us));
        }
    };
    match role.as_str() {
        // Publishes SHMQ_MSGS messages to each of topics t0..t{SHMQ_TOPICS},
        // round by round in a shuffled topic order, pausing at random.
        "producer" => {
            let n: u64 = env("SHMQ_TOPICS").parse().expect("topics");
            let msgs: u64 = env("SHMQ_MSGS").parse().expect("msgs");
            let topics: Vec<Topic> = (0..n).map(|t| Topic::open(&format!("t{t}"), &opts).expect("open")).collect();
            let mut ps: Vec<_> = topics.iter().map(|t| t.producer().expect("producer")).collect();
            println!("READY");
            for k in 0..msgs {
                let mut order: Vec<u64> = (0..n).collect();
                order.sort_by_key(|t| mix(t ^ k << 16));
                for t in order {
                    ps[t as usize].publish(&payload(t, k)).expect("publish");
                    pause();
                }
            }
            println!("DONE");
        }
        // Subscribes to t0; on `recv N` receives the next N messages.
        "subscriber" => {
            let t = Topic::open("t0", &opts).expect("open");
            let mut s = t.subscribe().expect("subscribe");
            println!("READY");
            let mut next = 0u64;
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(n) = line.trim().strip_prefix("recv ") {
                    for _ in 0..n.parse::<u64>().expect("count") {
                        let m = s.recv_timeout(Duration::from_secs(30)).expect("message");
                        check(0, next, &m);
                        next += 1;
                        drop(m);
                        pause();
                    }
                    println!("DONE {next}");
                }
                line.clear();
            }
        }
        // Arms a subscriber of t0 with no file descriptor left for its
        // eventfd, then again with descriptors: prints both results.
        "arm-nofile" => {
            let t = Topic::open("t0", &opts).expect("open");
            let mut s = t.subscribe().expect("subscribe");
            let limit = |n: u64| {
                let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
                unsafe {
                    assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur), 0);
                    cur.rlim_cur = n.min(cur.rlim_max);
                    assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &cur), 0);
                }
            };
            limit(0);
            let first = s.arm();
            limit(1 << 16);
            println!("RESULT {first:?} then {:?}", s.arm());
        }
        r => panic!("unknown role {r}"),
    }
}

/// Topics t0..t{n}, each subscribed from the newest message.
pub fn topics(d: &TestDir, n: usize, capacity: u64) -> (Vec<Topic>, Vec<Subscriber>) {
    let topics: Vec<Topic> = (0..n)
        .map(|t| Topic::create(&format!("t{t}"), &d.opts().capacity(capacity).max_message(256)).expect("create"))
        .collect();
    let subs = topics.iter().map(|t| t.subscribe().expect("subscribe")).collect();
    (topics, subs)
}

pub fn producer_env(d: &TestDir, n: usize, msgs: u64, pause_us: u64) -> Vec<(&'static str, String)> {
    vec![
        ("SHMQ_DIR", d.path().display().to_string()),
        ("SHMQ_TOPICS", n.to_string()),
        ("SHMQ_MSGS", msgs.to_string()),
        ("SHMQ_PAUSE_US", pause_us.to_string()),
    ]
}

/// Receives `msgs` messages of topic `t` with `recv_async`, checking each.
pub async fn take_all(t: u64, mut s: Subscriber, msgs: u64) -> Subscriber {
    for k in 0..msgs {
        let m = s.recv_async().await.expect("recv_async");
        check(t, k, &m);
    }
    s
}
