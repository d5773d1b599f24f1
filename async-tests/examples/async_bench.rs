//! Async receive against the blocking and busy-poll receives and against
//! tokio's `UnixStream`, between two processes pinned to two CPUs, in one
//! run (issue #18's measurements; results in docs/BENCHMARKS.md).
//!
//!   cargo run --release -p shmq-async-tests --example async_bench -- [ROUNDS] [MSGS] [REPEAT]
//!
//! Latency: a 64-byte ping-pong, both sides receiving the same way; one
//! way = round trip / 2, p50 and p99 over ROUNDS (default 100 000).
//! Throughput: MSGS (default 5 000 000) 64-byte messages from one process
//! to the other, timed by the receiver from its first message to its last.
//! Each method runs REPEAT times (default 3), interleaved; the table gives
//! the median of the repeats and the ratio to the blocking `recv`.
//! The async methods run on tokio's current-thread runtime.
//! `ASYNC_BENCH_ONLY=recv_async` runs one method (to count its system
//! calls: `strace -f -c`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use shmq::{Options, Topic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SIZE: usize = 64;
const METHODS: [&str; 4] = ["try_recv", "recv", "recv_async", "tokio-unix"];

fn now() -> u64 {
    shmq::monotonic_ns()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Receives one message on `s` the way `method` says, copying it to `out`.
fn recv_sync(method: &str, s: &mut shmq::Subscriber, out: &mut [u8]) {
    let m = match method {
        "try_recv" => loop {
            match s.try_recv() {
                Ok(m) => break m,
                Err(shmq::RecvError::Empty) => std::hint::spin_loop(),
                Err(e) => panic!("{e}"),
            }
        },
        _ => s.recv().expect("recv"),
    };
    out.copy_from_slice(&m[..SIZE]);
}

fn open(dir: &Path) -> (Topic, Topic) {
    let o = Options::new().dir(dir);
    (Topic::open("ping", &o).expect("ping"), Topic::open("pong", &o).expect("pong"))
}

/// The child: answers pings (lat) or receives MSGS messages (tput).
fn child(method: &str, mode: &str, n: u64, dir: &Path) {
    shmq::__private::sys::pin_to_cpu(1);
    let mut buf = [0u8; SIZE];
    if method == "tokio-unix" {
        rt().block_on(async {
            let mut sock = tokio::net::UnixStream::connect(dir.join("sock")).await.expect("connect");
            println!("READY");
            let t0 = now();
            let mut first = 0;
            for i in 0..n {
                sock.read_exact(&mut buf).await.expect("read");
                if i == 0 {
                    first = now();
                }
                if mode == "lat" {
                    sock.write_all(&buf).await.expect("write");
                }
            }
            println!("DONE ns={}", now() - first.max(t0));
        });
        return;
    }
    let (ping, pong) = open(dir);
    let mut s = ping.subscribe().expect("subscribe");
    let mut p = pong.producer().expect("producer");
    println!("READY");
    let mut first = 0;
    if method == "recv_async" {
        rt().block_on(async {
            for i in 0..n {
                {
                    let m = s.recv_async().await.expect("recv_async");
                    buf.copy_from_slice(&m[..SIZE]);
                }
                if i == 0 {
                    first = now();
                }
                if mode == "lat" {
                    p.publish_async(&buf).await.expect("publish");
                }
            }
        });
    } else {
        for i in 0..n {
            recv_sync(method, &mut s, &mut buf);
            if i == 0 {
                first = now();
            }
            if mode == "lat" {
                p.publish(&buf).expect("publish");
            }
        }
    }
    println!("DONE ns={}", now() - first);
}

struct Peer {
    proc: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Peer {
    fn start(method: &str, mode: &str, n: u64, dir: &Path) -> Peer {
        let mut proc = Command::new(std::env::current_exe().expect("exe"))
            .args(["child", method, mode, &n.to_string()])
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let out = BufReader::new(proc.stdout.take().expect("stdout"));
        Peer { proc, out }
    }
    fn line(&mut self, marker: &str) -> String {
        let mut l = String::new();
        while self.out.read_line(&mut l).unwrap_or(0) > 0 {
            if l.starts_with(marker) {
                return l.trim().to_string();
            }
            l.clear();
        }
        panic!("child ended before {marker}");
    }
    fn done_ns(mut self) -> u64 {
        let l = self.line("DONE");
        let _ = self.proc.wait();
        l.rsplit('=').next().and_then(|v| v.parse().ok()).expect("ns")
    }
}

/// One latency run: one-way (p50, p99) ns.
fn latency(method: &str, rounds: u64, dir: &Path) -> (u64, u64) {
    let mut rtt = Vec::with_capacity(rounds as usize);
    let mut buf = [7u8; SIZE];
    if method == "tokio-unix" {
        let listener = std::os::unix::net::UnixListener::bind(dir.join("sock")).expect("bind");
        let peer = Peer::start(method, "lat", rounds, dir);
        let (s, _) = listener.accept().expect("accept");
        s.set_nonblocking(true).expect("nonblocking");
        rt().block_on(async {
            let mut sock = tokio::net::UnixStream::from_std(s).expect("tokio socket");
            for _ in 0..rounds {
                let t = now();
                sock.write_all(&buf).await.expect("write");
                sock.read_exact(&mut buf).await.expect("read");
                rtt.push(now() - t);
            }
        });
        peer.done_ns();
        let _ = std::fs::remove_file(dir.join("sock"));
    } else {
        let (ping, pong) = open(dir);
        let mut p = ping.producer().expect("producer");
        let mut s = pong.subscribe().expect("subscribe");
        let mut peer = Peer::start(method, "lat", rounds, dir);
        peer.line("READY");
        if method == "recv_async" {
            rt().block_on(async {
                for _ in 0..rounds {
                    let t = now();
                    p.publish_async(&buf).await.expect("publish");
                    let m = s.recv_async().await.expect("recv");
                    buf.copy_from_slice(&m[..SIZE]);
                    drop(m);
                    rtt.push(now() - t);
                }
            });
        } else {
            for _ in 0..rounds {
                let t = now();
                p.publish(&buf).expect("publish");
                recv_sync(method, &mut s, &mut buf);
                rtt.push(now() - t);
            }
        }
        peer.done_ns();
    }
    rtt.sort_unstable();
    let q = |f: f64| rtt[((rtt.len() - 1) as f64 * f) as usize] / 2;
    (q(0.5), q(0.99))
}

/// One throughput run: messages per second.
fn throughput(method: &str, msgs: u64, dir: &Path) -> f64 {
    let buf = [9u8; SIZE];
    let ns = if method == "tokio-unix" {
        let listener = std::os::unix::net::UnixListener::bind(dir.join("sock")).expect("bind");
        let peer = Peer::start(method, "tput", msgs, dir);
        let (s, _) = listener.accept().expect("accept");
        s.set_nonblocking(true).expect("nonblocking");
        rt().block_on(async {
            let mut sock = tokio::net::UnixStream::from_std(s).expect("tokio socket");
            let batch = [9u8; SIZE * 64];
            for _ in 0..msgs / 64 {
                sock.write_all(&batch).await.expect("write");
            }
            sock.write_all(&batch[..(msgs % 64) as usize * SIZE]).await.expect("write");
        });
        let ns = peer.done_ns();
        let _ = std::fs::remove_file(dir.join("sock"));
        ns
    } else {
        let (ping, _) = open(dir);
        let mut p = ping.producer().expect("producer");
        let mut peer = Peer::start(method, "tput", msgs, dir);
        peer.line("READY");
        for _ in 0..msgs {
            p.publish(&buf).expect("publish");
        }
        peer.done_ns()
    };
    msgs as f64 * 1e9 / ns.max(1) as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        let n = args[4].parse().expect("n");
        child(&args[2], &args[3], n, &PathBuf::from(&args[5]));
        return;
    }
    let num = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (rounds, msgs, repeat) = (num(1, 100_000), num(2, 5_000_000), num(3, 3));
    shmq::__private::sys::pin_to_cpu(0);
    let dir = std::env::temp_dir().join(format!("shmq-async-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let o = Options::new().dir(&dir).capacity(1 << 20).max_message(1024);
    let _ping = Topic::create("ping", &o).expect("ping");
    let _pong = Topic::create("pong", &o).expect("pong");
    let mut res: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> = vec![Default::default(); METHODS.len()];
    let started = Instant::now();
    // ASYNC_BENCH_ONLY=recv_async (say) runs one method: for `strace -c`.
    let only = std::env::var("ASYNC_BENCH_ONLY").ok();
    for r in 0..repeat {
        for (i, m) in METHODS.iter().enumerate() {
            if only.as_deref().is_some_and(|o| o != *m) {
                continue;
            }
            let (p50, p99) = latency(m, rounds, &dir);
            let tput = throughput(m, msgs, &dir);
            res[i].0.push(p50 as f64);
            res[i].1.push(p99 as f64);
            res[i].2.push(tput);
            eprintln!("repeat {r}: {m:>10}: one-way p50 {p50} ns p99 {p99} ns, 64 B {:.2} M msg/s", tput / 1e6);
        }
    }
    if only.is_some() {
        return;
    }
    let mut med: Vec<(f64, f64, f64)> = res.iter_mut().map(|(a, b, c)| (median(a), median(b), median(c))).collect();
    let base = med[1];
    println!(
        "# 64-byte messages, two processes pinned to CPUs 0 and 1; medians of {repeat} repeats ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    println!("| method | one-way p50 ns | p99 ns | p50 / recv | 64 B M msg/s | tput / recv |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (m, (p50, p99, t)) in METHODS.iter().zip(med.iter_mut()) {
        println!("| {m} | {p50:.0} | {p99:.0} | {:.2} | {:.2} | {:.2} |", *p50 / base.0, *t / 1e6, *t / base.2);
    }
    let _ = std::io::stdout().flush();
    let _ = std::fs::remove_dir_all(&dir);
}
