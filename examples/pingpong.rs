//! Round-trip latency between two processes over two shmq topics: the
//! parent publishes a 64-byte ping, the child answers with a pong; prints
//! percentiles of the round trip and its half (one-way).
//!
//! ```text
//! cargo run --release --example pingpong [ROUNDS] [--block]
//! ```
//! By default both sides busy-poll (`try_recv`); `--block` uses the
//! blocking `recv` (spin, then futex sleep).

use shmq::{Options, RecvError, Subscriber, Topic};
use std::time::Instant;

/// Waits for the next message and copies it into `out`.
fn wait(sub: &mut Subscriber, block: bool, out: &mut [u8; 64]) {
    loop {
        let r = if block { sub.recv() } else { sub.try_recv() };
        match r {
            Ok(m) => {
                out[..m.len()].copy_from_slice(&m);
                return;
            }
            Err(RecvError::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("receive failed: {e}"),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let block = args.iter().any(|a| a == "--block");
    let rounds: usize = args.iter().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200_000);
    let dir = std::env::var("PINGPONG_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| shmq::default_dir().join(format!(".pingpong-{}", std::process::id())));
    let opts = Options::new().dir(&dir).capacity(1 << 16).max_message(64);
    if std::env::var("PINGPONG_CHILD").is_ok() {
        let ping = Topic::open("ping", &opts)?;
        let pong = Topic::open("pong", &opts)?;
        let mut sub = ping.subscribe()?;
        let mut p = pong.producer()?;
        println!("ready");
        let mut m = [0u8; 64];
        for _ in 0..rounds {
            wait(&mut sub, block, &mut m);
            p.publish(&m)?;
        }
        return Ok(());
    }
    let ping = Topic::create("ping", &opts)?;
    let pong = Topic::create("pong", &opts)?;
    let mut sub = pong.subscribe()?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(&args[1..])
        .env("PINGPONG_CHILD", "1")
        .env("PINGPONG_DIR", &dir)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?), &mut line)?;
    let mut p = ping.producer()?;
    let mut rtt = Vec::with_capacity(rounds);
    let mut msg = [0u8; 64];
    for i in 0..rounds {
        msg[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let t = Instant::now();
        p.publish(&msg)?;
        let mut back = [0u8; 64];
        wait(&mut sub, block, &mut back);
        rtt.push(t.elapsed().as_nanos() as u64);
        assert_eq!(back[..8], msg[..8], "pong carries the ping");
    }
    child.wait()?;
    rtt.sort_unstable();
    let q = |f: f64| rtt[((rtt.len() as f64 * f) as usize).min(rtt.len() - 1)];
    println!(
        "{} round trips of 64 B ({}): one-way p50 {} ns  p99 {} ns  p99.9 {} ns  max {} ns",
        rounds,
        if block { "blocking recv" } else { "busy-poll" },
        q(0.5) / 2,
        q(0.99) / 2,
        q(0.999) / 2,
        rtt[rtt.len() - 1] / 2
    );
    drop((ping, pong));
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
