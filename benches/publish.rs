//! Criterion benchmarks of shmq's hot paths.
//!
//! - `publish/{block,overwrite}-{single,multi}/SIZE`: cost of one publish
//!   (copy in, commit) by message size, with one subscriber kept drained
//!   outside the timed region;
//! - `publish_subscribers/{overwrite,block}/N`: cost of one 64-byte publish
//!   with N registered subscribers;
//! - `producer_alone/{shmq-reserve,shmq-publish,bare-slot}/64`: the
//!   producer's half of `shmq bench`'s 64-byte throughput run on one core:
//!   shmq filling a message in place (`reserve`/`commit`, what the bench's
//!   producer does) or copying it in (`publish`), against the bare ring's
//!   producer (fill a fixed slot, store the index), same fill;
//! - `thread_pair/SIZE`: producer and consumer threads in one process,
//!   every byte read (throughput);
//! - `process_round_trip/64`: round trip to a child process (this bench
//!   binary re-run as an echo server), via `iter_custom`.
//!
//! Run: `cargo bench --bench publish` (add `-- --quick` for a short run).
//! Cross-process comparisons against other transports: `shmq bench`.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use shmq::{Options, Policy, RecvError, Subscriber, Topic};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shmq-crit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn drain(subs: &mut [Subscriber]) {
    for s in subs {
        while s.drain(4096, |m| assert!(m.len() < 1 << 20)).unwrap() > 0 {}
    }
}

/// Publishes `iters` messages of `msg`, draining `subs` every `batch`
/// messages outside the timed region. Returns the time spent publishing.
fn timed_publish(p: &mut shmq::Producer, subs: &mut [Subscriber], msg: &[u8], iters: u64, batch: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(batch);
        let t = Instant::now();
        for _ in 0..n {
            p.try_publish(std::hint::black_box(msg)).unwrap();
        }
        total += t.elapsed();
        drain(subs);
        left -= n;
    }
    total
}

fn publish(c: &mut Criterion) {
    let d = dir("pub");
    let mut g = c.benchmark_group("publish");
    for (policy, multi, name) in [
        (Policy::Block, false, "block-single"),
        (Policy::Block, true, "block-multi"),
        (Policy::Overwrite, false, "overwrite-single"),
    ] {
        for size in [8usize, 64, 512, 4096, 65536] {
            let topic_name = format!("{name}-{size}");
            let t = Topic::create(
                &topic_name,
                &Options::new().dir(&d).capacity(16 << 20).max_message(65536).policy(policy).multi_producer(multi),
            )
            .unwrap();
            let mut subs = vec![t.subscribe().unwrap()];
            let mut p = t.producer().unwrap();
            let msg = vec![7u8; size];
            let batch = ((8 << 20) / (size as u64 + 64)).max(1);
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter_custom(|iters| timed_publish(&mut p, &mut subs, &msg, iters, batch))
            });
        }
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&d);
}

fn publish_subscribers(c: &mut Criterion) {
    let d = dir("subs");
    let mut g = c.benchmark_group("publish_subscribers");
    for policy in [Policy::Overwrite, Policy::Block] {
        for n in [1usize, 4, 16, 64] {
            let t = Topic::create(
                &format!("{policy}-{n}"),
                &Options::new().dir(&d).capacity(16 << 20).max_message(1024).max_subscribers(64).policy(policy),
            )
            .unwrap();
            let mut subs: Vec<Subscriber> = (0..n).map(|_| t.subscribe().unwrap()).collect();
            let mut p = t.producer().unwrap();
            let msg = [1u8; 64];
            g.bench_function(BenchmarkId::new(policy.to_string(), n), |b| {
                b.iter_custom(|iters| timed_publish(&mut p, &mut subs, &msg, iters, 100_000))
            });
        }
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&d);
}

/// Fills `buf` with words derived from `k`, as `shmq bench`'s producers do.
#[inline(always)]
fn fill(k: u64, buf: &mut [u8]) {
    let seed = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for (i, c) in buf.chunks_exact_mut(8).enumerate() {
        c.copy_from_slice(&(seed ^ i as u64).to_le_bytes());
    }
}

/// Runs `iters` steps of `step`, draining `sub` every `batch` steps
/// outside the timed region. Returns the time spent in `step`.
fn timed_steps(sub: &mut [Subscriber], iters: u64, batch: u64, mut step: impl FnMut(u64)) -> Duration {
    let (mut total, mut k) = (Duration::ZERO, 0u64);
    while k < iters {
        let n = (iters - k).min(batch);
        let t = Instant::now();
        for _ in 0..n {
            step(k);
            k += 1;
        }
        total += t.elapsed();
        drain(sub);
    }
    total
}

fn producer_alone(c: &mut Criterion) {
    const SIZE: usize = 64;
    let d = dir("alone");
    let mut g = c.benchmark_group("producer_alone");
    g.throughput(Throughput::Elements(1));
    let t = Topic::create("alone", &Options::new().dir(&d).capacity(8 << 20).max_message(4096)).unwrap();
    let mut subs = vec![t.subscribe().unwrap()];
    let mut p = t.producer().unwrap();
    let batch = (8 << 20) / 128;
    g.bench_function(BenchmarkId::new("shmq-reserve", SIZE), |b| {
        b.iter_custom(|iters| {
            timed_steps(&mut subs, iters, batch, |k| {
                let mut grant = p.reserve(SIZE).unwrap();
                fill(k, &mut grant);
                grant.commit(SIZE).unwrap();
            })
        })
    });
    let mut buf = [0u8; SIZE];
    g.bench_function(BenchmarkId::new("shmq-publish", SIZE), |b| {
        b.iter_custom(|iters| {
            timed_steps(&mut subs, iters, batch, |k| {
                fill(k, &mut buf);
                p.publish(&buf).unwrap();
            })
        })
    });
    // The bare ring's producer: a fixed slot, then the index (its consumer's
    // side is measured by `shmq bench`).
    let mut ring = vec![0u8; 8 << 20];
    let head = std::sync::atomic::AtomicU64::new(0);
    let slots = (ring.len() / SIZE) as u64;
    g.bench_function(BenchmarkId::new("bare-slot", SIZE), |b| {
        b.iter_custom(|iters| {
            timed_steps(&mut [], iters, batch, |k| {
                let off = (k % slots) as usize * SIZE;
                fill(k, &mut ring[off..off + SIZE]);
                head.store(k + 1, std::sync::atomic::Ordering::Release);
            })
        })
    });
    std::hint::black_box(&ring);
    g.finish();
    drop((p, subs, t));
    let _ = std::fs::remove_dir_all(&d);
}

fn thread_pair(c: &mut Criterion) {
    let d = dir("pair");
    let mut g = c.benchmark_group("thread_pair");
    for size in [64usize, 4096] {
        let t =
            Topic::create(&format!("p{size}"), &Options::new().dir(&d).capacity(8 << 20).max_message(4096)).unwrap();
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_custom(|iters| {
                let mut sub = t.subscribe().unwrap();
                let mut p = t.producer().unwrap();
                let consumer = std::thread::spawn(move || {
                    let mut got = 0u64;
                    let mut sum = 0u64;
                    while got < iters {
                        got += sub
                            .drain(1024, |m| sum = sum.wrapping_add(m.iter().map(|&b| b as u64).sum::<u64>()))
                            .unwrap() as u64;
                    }
                    sum
                });
                let msg = vec![3u8; size];
                let start = Instant::now();
                for _ in 0..iters {
                    p.publish(&msg).unwrap();
                }
                let sum = consumer.join().unwrap();
                let el = start.elapsed();
                assert_eq!(sum, iters * size as u64 * 3);
                el
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&d);
}

fn echo_server(dir: &str) {
    let opts = Options::new().dir(dir);
    let ping = Topic::open("ping", &opts).unwrap();
    let pong = Topic::open("pong", &opts).unwrap();
    let mut sub = ping.subscribe().unwrap();
    let mut p = pong.producer().unwrap();
    println!("READY");
    loop {
        match sub.try_recv() {
            Ok(m) => {
                if m.is_empty() {
                    return;
                }
                p.publish(&m).unwrap();
            }
            Err(RecvError::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
}

fn process_round_trip(c: &mut Criterion) {
    let d = dir("rt");
    let opts = Options::new().dir(&d).capacity(1 << 20).max_message(1024);
    let ping = Topic::create("ping", &opts).unwrap();
    let pong = Topic::create("pong", &opts).unwrap();
    let mut sub = pong.subscribe().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("SHMQ_BENCH_ECHO", &d)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "READY");
    let mut p = ping.producer().unwrap();
    let msg = [9u8; 64];
    c.bench_function("process_round_trip/64", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                p.publish(&msg).unwrap();
                loop {
                    match sub.try_recv() {
                        Ok(m) => {
                            assert_eq!(m.len(), 64);
                            break;
                        }
                        Err(RecvError::Empty) => std::hint::spin_loop(),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            t.elapsed()
        })
    });
    p.publish(b"").unwrap(); // stop the echo server
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

criterion_group!(benches, publish, publish_subscribers, producer_alone, thread_pair, process_round_trip);

fn main() {
    if let Ok(d) = std::env::var("SHMQ_BENCH_ECHO") {
        echo_server(&d);
        return;
    }
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
