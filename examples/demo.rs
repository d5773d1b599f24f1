//! The main job: one producer and several subscribers, each its own process,
//! on one shmq topic; then round-trip latency between two processes. Prints
//! what it measured.
//!
//! ```text
//! cargo run --release --example demo                 # 2 subscribers, 2,000,000 messages
//! cargo run --release --example demo -- --subscribers 3 --messages 5000000
//! ```
//!
//! Every subscriber checks every byte of every message (sizes 16 B..1 KiB,
//! contents derived from the sequence number) and that nothing is missing
//! or out of order. Times are `CLOCK_MONOTONIC`, shared by all processes.

use shmq::{Options, Policy, RecvError, Topic};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIN: usize = 16;
const MAX: usize = 1024;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Message `k`: its length and bytes follow from `k` alone.
fn fill(k: u64, buf: &mut Vec<u8>) {
    let len = MIN + (mix(k) % (MAX - MIN + 1) as u64) as usize;
    buf.resize(len, 0);
    let seed = mix(k ^ 0xABCD);
    for (i, c) in buf.chunks_mut(8).enumerate() {
        let w = seed.wrapping_add(i as u64 * 0x9E37_79B9);
        c.copy_from_slice(&w.to_le_bytes()[..c.len()]);
    }
    buf[..8].copy_from_slice(&k.to_le_bytes());
}

fn now_ns() -> u64 {
    shmq::monotonic_ns()
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.windows(2).find(|w| w[0] == name).and_then(|w| w[1].parse().ok()).unwrap_or(default)
}

fn opts(dir: &str) -> Options {
    Options::new().dir(dir)
}

fn subscriber(dir: &str, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let topic = Topic::open("demo.fanout", &opts(dir))?;
    let mut sub = topic.subscribe()?;
    println!("READY");
    std::io::stdout().flush()?;
    let mut expect = Vec::with_capacity(MAX);
    let (mut next, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    let mut first_ns = 0;
    let mut lat = Vec::with_capacity(n as usize / 64 + 1);
    while next < n {
        let got = sub.drain(256, |m| {
            fill(next, &mut expect);
            if m[..] != expect[..] {
                errors += 1;
            }
            if next % 64 == 0 {
                lat.push(now_ns().saturating_sub(m.timestamp_ns()));
            }
            bytes += m.len() as u64;
            next += 1;
        })?;
        if got == 0 {
            match sub.recv_timeout(Duration::from_secs(30)) {
                Ok(m) => {
                    fill(next, &mut expect);
                    if m[..] != expect[..] {
                        errors += 1;
                    }
                    if first_ns == 0 {
                        first_ns = m.timestamp_ns();
                    }
                    bytes += m.len() as u64;
                    next += 1;
                }
                Err(RecvError::Timeout) => return Err("no message for 30 s".into()),
                Err(e) => return Err(e.into()),
            }
        } else if first_ns == 0 {
            first_ns = now_ns();
        }
    }
    let secs = (now_ns() - first_ns) as f64 / 1e9;
    lat.sort_unstable();
    let q = |f: f64| lat.get(((lat.len() as f64 * f) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "DONE received={next} lost={} errors={errors} bytes={bytes} secs={secs:.6} p50={} p99={} p999={}",
        sub.lost(),
        q(0.5),
        q(0.99),
        q(0.999)
    );
    Ok(())
}

fn producer(dir: &str, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let topic = Topic::open("demo.fanout", &opts(dir))?;
    let mut p = topic.producer()?;
    let mut buf = Vec::with_capacity(MAX);
    let t = Instant::now();
    for k in 0..n {
        fill(k, &mut buf);
        p.publish(&buf)?;
    }
    println!("DONE secs={:.3}", t.elapsed().as_secs_f64());
    Ok(())
}

fn pong(dir: &str, rounds: u64, block: bool) -> Result<(), Box<dyn std::error::Error>> {
    pin_to_cpu(1);
    let ping = Topic::open("demo.ping", &opts(dir))?;
    let pong = Topic::open("demo.pong", &opts(dir))?;
    let mut sub = ping.subscribe()?;
    let mut p = pong.producer()?;
    println!("READY");
    std::io::stdout().flush()?;
    let mut done = 0;
    while done < rounds {
        let r = if block { sub.recv() } else { sub.try_recv() };
        match r {
            Ok(m) => {
                // Echo in place: reserve, copy, commit.
                let mut g = p.reserve(m.len())?;
                g.copy_from_slice(&m);
                let len = g.len();
                g.commit(len)?;
                done += 1;
            }
            Err(RecvError::Empty) => std::hint::spin_loop(),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn spawn(
    role: &str,
    dir: &str,
    extra: &[String],
) -> std::io::Result<(std::process::Child, BufReader<std::process::ChildStdout>)> {
    let mut c = Command::new(std::env::current_exe()?)
        .arg(role)
        .args(extra)
        .env("DEMO_DIR", dir)
        .stdout(Stdio::piped())
        .spawn()?;
    let out = BufReader::new(c.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?);
    Ok((c, out))
}

fn line(r: &mut BufReader<std::process::ChildStdout>) -> String {
    let mut l = String::new();
    let _ = r.read_line(&mut l);
    l.trim().to_string()
}

fn field(l: &str, k: &str) -> f64 {
    l.split_whitespace()
        .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn latency(dir: &str, rounds: u64, block: bool) -> Result<[u64; 4], Box<dyn std::error::Error>> {
    let o = opts(dir).capacity(1 << 16).max_message(64);
    let ping = Topic::create("demo.ping", &o)?;
    let pong = Topic::create("demo.pong", &o)?;
    let mut sub = pong.subscribe()?;
    let mode = if block { "block" } else { "busy" };
    let (mut child, mut out) = spawn("pong", dir, &[rounds.to_string(), mode.to_string()])?;
    if line(&mut out) != "READY" {
        return Err("pong process failed to start".into());
    }
    pin_to_cpu(0);
    let mut p = ping.producer()?;
    let mut rtt = Vec::with_capacity(rounds as usize);
    let msg = [0x5Au8; 64];
    for _ in 0..rounds {
        let t = Instant::now();
        p.publish(&msg)?;
        loop {
            let r = if block { sub.recv() } else { sub.try_recv() };
            match r {
                Ok(m) => {
                    assert_eq!(&m[..], &msg[..]);
                    break;
                }
                Err(RecvError::Empty) => std::hint::spin_loop(),
                Err(e) => return Err(e.into()),
            }
        }
        rtt.push(t.elapsed().as_nanos() as u64);
    }
    child.wait()?;
    drop((ping, pong, p, sub));
    Topic::unlink_in(std::path::Path::new(dir), "demo.ping")?;
    Topic::unlink_in(std::path::Path::new(dir), "demo.pong")?;
    rtt.sort_unstable();
    let q = |f: f64| rtt[((rtt.len() as f64 * f) as usize).min(rtt.len() - 1)] / 2;
    Ok([q(0.5), q(0.99), q(0.999), rtt[rtt.len() - 1] / 2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let Ok(dir) = std::env::var("DEMO_DIR") {
        let n = arg(&args, "--messages", 2_000_000);
        return match args.get(1).map(String::as_str) {
            Some("sub") => subscriber(&dir, n),
            Some("pub") => producer(&dir, n),
            Some("pong") => {
                let rounds = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
                pong(&dir, rounds, args.get(3).is_some_and(|m| m == "block"))
            }
            _ => Err("unknown role".into()),
        };
    }
    let subs = arg(&args, "--subscribers", 2);
    let n = arg(&args, "--messages", 2_000_000);
    // A directory of its own in the default topic directory (a tmpfs:
    // /dev/shm/shmq unless SHMQ_DIR says otherwise), removed at the end.
    let dir = shmq::default_dir().join(format!(".demo-{}", std::process::id()));
    let dir_s = dir.display().to_string();
    println!("shmq demo: 1 producer process -> {subs} subscriber processes, {n} messages of {MIN}..{MAX} B (Block, 8 MiB ring)");
    println!(
        "every subscriber checks every byte of every message; {} CPUs",
        std::thread::available_parallelism()?.get()
    );
    let _topic =
        // With timestamps: the subscribers measure publish-to-receive time.
        Topic::create(
            "demo.fanout",
            &opts(&dir_s).capacity(8 << 20).max_message(MAX as u32).policy(Policy::Block).timestamps(true),
        )?;
    let extra = vec!["--messages".to_string(), n.to_string()];
    let mut children = Vec::new();
    for _ in 0..subs {
        let (c, mut out) = spawn("sub", &dir_s, &extra)?;
        if line(&mut out) != "READY" {
            return Err("subscriber process failed to start".into());
        }
        children.push((c, out));
    }
    let (mut pc, mut pout) = spawn("pub", &dir_s, &extra)?;
    let pdone = line(&mut pout);
    pc.wait()?;
    println!("\n  producer: {n} messages published in {:.3} s", field(&pdone, "secs"));
    println!(
        "  {:<12} {:>10} {:>6} {:>7} {:>12} {:>9} {:>11} {:>11} {:>11}",
        "subscriber", "received", "lost", "errors", "msgs/s", "MB/s", "lat p50", "lat p99", "lat p99.9"
    );
    let mut ok = true;
    for (i, (mut c, mut out)) in children.into_iter().enumerate() {
        let l = line(&mut out);
        c.wait()?;
        let secs = field(&l, "secs");
        let received = field(&l, "received");
        ok &= received as u64 == n && field(&l, "errors") == 0.0 && field(&l, "lost") == 0.0;
        println!(
            "  {:<12} {:>10} {:>6} {:>7} {:>12.0} {:>9.1} {:>9.1}µs {:>9.1}µs {:>9.1}µs",
            format!("process {}", i + 1),
            received,
            field(&l, "lost"),
            field(&l, "errors"),
            received / secs,
            field(&l, "bytes") / secs / 1e6,
            field(&l, "p50") / 1e3,
            field(&l, "p99") / 1e3,
            field(&l, "p999") / 1e3
        );
    }
    println!("  (latency = publish to receive under full load, sampled every 64th message)");
    drop(_topic);
    Topic::unlink_in(&dir, "demo.fanout")?;

    println!("\n  round trip between two processes pinned to CPUs 0 and 1, 64-byte messages, reported one-way:");
    for (block, rounds) in [(false, 200_000), (true, 50_000)] {
        let [p50, p99, p999, max] = latency(&dir_s, rounds, block)?;
        println!(
            "  {:<22} p50 {:>6} ns   p99 {:>7} ns   p99.9 {:>8} ns   max {:>9} ns   ({rounds} rounds)",
            if block { "blocking recv (futex)" } else { "busy-poll try_recv" },
            p50,
            p99,
            p999,
            max
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    if !ok {
        return Err("a subscriber missed or mis-read messages".into());
    }
    println!("\n  all {subs} subscribers received all {n} messages intact and in order.");
    Ok(())
}

/// Pins the calling process to CPU `cpu`, so the two ends of the ping-pong
/// do not share one (a measurement choice, not something shmq needs).
fn pin_to_cpu(cpu: usize) -> bool {
    if cpu >= libc::CPU_SETSIZE as usize {
        return false;
    }
    // SAFETY: a zeroed cpu_set_t is valid, `cpu` is below CPU_SETSIZE so
    // CPU_SET stays inside it, and the set outlives the call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}
