//! Soak test (issue #7, item 7): several producer and subscriber processes
//! on a `Block` topic (two multi-producers) and an `Overwrite` topic (one
//! producer) for a configurable time, with random subscriber restarts and
//! producer kills (SIGKILL, so some land inside a claim). At the end it
//! checks, for every subscriber: every message intact (checksummed),
//! received + reported losses = the span of sequence numbers it saw, no
//! gap at all on `Block`, each long-lived `Block` subscriber got exactly
//! what every cleanly finished producer published; no file leaked; the
//! long-lived processes' memory flat.
//!
//! ```sh
//! cargo run --release --example soak -- --secs 60     # CI runs this
//! cargo run --release --example soak                  # 10 minutes
//! ```
//!
//! Exits non-zero (and says why) if any check fails.

use shmq::{Options, Policy, RecvError, Topic};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const END: u32 = 9;
const MIN: usize = 16;
const MAX: usize = 4000;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Message `k` of producer `id`: `id` (u32), `k` (u64), then bytes derived
/// from both; its length is derived from both too.
fn fill(id: u64, k: u64, buf: &mut Vec<u8>) {
    let len = MIN + (mix(id << 40 ^ k) % (MAX - MIN) as u64) as usize;
    buf.clear();
    buf.extend_from_slice(&(id as u32).to_le_bytes());
    buf.extend_from_slice(&k.to_le_bytes());
    let seed = mix(k ^ id << 50);
    while buf.len() < len {
        buf.push((mix(seed ^ buf.len() as u64) & 0xff) as u8);
    }
}

fn ident(m: &[u8]) -> Option<(u64, u64)> {
    let id = u32::from_le_bytes(m.get(..4)?.try_into().ok()?) as u64;
    let k = u64::from_le_bytes(m.get(4..12)?.try_into().ok()?);
    Some((id, k))
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn opts(dir: &Path) -> Options {
    Options::new().dir(dir)
}

/// `producer DIR TOPIC ID SECS`: publishes until the deadline, then prints
/// `DONE id=.. published=..`. Overwrite producers pace themselves (they
/// never wait for subscribers, and the machine has two cores).
fn producer(dir: &Path, topic: &str, id: u64, until: Instant) -> Result<(), String> {
    let t = Topic::open(topic, &opts(dir)).map_err(|e| e.to_string())?;
    let overwrite = t.policy() == Policy::Overwrite;
    let mut p = t.producer().map_err(|e| e.to_string())?;
    println!("READY");
    let mut buf = Vec::new();
    let mut k = 0;
    while Instant::now() < until {
        for _ in 0..256 {
            fill(id, k, &mut buf);
            p.publish_timeout(&buf, Duration::from_secs(30)).map_err(|e| format!("producer {id}: {e}"))?;
            k += 1;
        }
        if overwrite {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    println!("DONE id={id} published={k}");
    Ok(())
}

/// `subscriber DIR TOPIC`: reads until the END message, checking every
/// message; prints its accounting.
fn subscriber(dir: &Path, topic: &str) -> Result<(), String> {
    let t = Topic::open(topic, &opts(dir)).map_err(|e| e.to_string())?;
    let block = t.policy() == Policy::Block;
    let mut sub = t.subscribe().map_err(|e| e.to_string())?;
    println!("READY");
    let mut next: HashMap<u64, u64> = HashMap::new();
    let (mut received, mut lost, mut first_seq, mut last_seq) = (0u64, 0u64, None, 0u64);
    let mut lost_before_first = 0u64;
    let mut want = Vec::new();
    let mut rss_early = 0;
    loop {
        let m = match sub.recv_timeout(Duration::from_secs(30)) {
            Ok(m) => m,
            Err(RecvError::Lagged(n)) => {
                // Losses before the first message lie before `first_seq`.
                if first_seq.is_some() {
                    lost += n;
                } else {
                    lost_before_first += n;
                }
                continue;
            }
            Err(e) => return Err(format!("{topic} subscriber: {e} (nothing for 30 s: a hang)")),
        };
        if m.msg_type() == END {
            break;
        }
        let (id, k) = ident(&m).ok_or("short message")?;
        fill(id, k, &mut want);
        if *m != want[..] {
            return Err(format!("{topic}: message {k} of producer {id} is corrupt"));
        }
        if let Some(n) = next.get(&id) {
            if block && k != *n {
                return Err(format!("{topic}: producer {id} message {k} after {}: a gap on Block", n - 1));
            }
        }
        next.insert(id, k + 1);
        first_seq.get_or_insert(m.seq());
        last_seq = m.seq();
        received += 1;
        if received == 10_000 {
            rss_early = rss_kb();
        }
    }
    let per: Vec<String> = next.iter().map(|(id, n)| format!("{id}:{n}")).collect();
    println!(
        "DONE received={received} lost={lost} lost_before_first={lost_before_first} first_seq={} last_seq={last_seq} rss_early_kb={rss_early} rss_end_kb={} per={}",
        first_seq.unwrap_or(0),
        rss_kb(),
        per.join(",")
    );
    Ok(())
}

struct Proc {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
    topic: &'static str,
    role: &'static str,
    id: u64,
}

impl Proc {
    fn spawn(dir: &Path, role: &'static str, topic: &'static str, id: u64, secs: f64) -> Proc {
        let exe = std::env::current_exe().expect("own path");
        // Every other churned process, except the Overwrite topic's single
        // producers (whose successor must find the predecessor dead at
        // once), runs in a pid namespace of its own: liveness must hold
        // across namespaces (it is a kernel lock, not a pid). It dies with
        // the `unshare` we kill (--kill-child).
        let in_ns = id % 2 == 1 && !(role == "producer" && topic == "over") && namespaces();
        let mut cmd = if in_ns {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--kill-child"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let mut child = cmd
            .args([role, &dir.display().to_string(), topic, &id.to_string(), &secs.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut p = Proc { child, out, topic, role, id };
        let l = p.line();
        assert!(l.starts_with("READY"), "{role} on {topic} said {l:?}");
        p
    }
    fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap_or(0);
        l.trim().to_string()
    }
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    fn finish(mut self) -> Result<String, String> {
        let l = self.line();
        let st = self.child.wait().map_err(|e| e.to_string())?;
        if !st.success() || !l.starts_with("DONE") {
            return Err(format!("{} {} on {} ended with {st}: {l:?}", self.role, self.id, self.topic));
        }
        Ok(l)
    }
}

/// Whether pid namespaces can be made here (root, as in CI).
fn namespaces() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        Command::new("unshare").args(["--pid", "--fork", "--kill-child", "true"]).status().is_ok_and(|s| s.success())
    })
}

fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok()).unwrap_or(0)
}

fn coordinator(secs: f64, dir: PathBuf) -> Result<(), String> {
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let block_opts = opts(&dir)
        .capacity(256 << 10)
        .max_message(MAX as u32)
        .multi_producer(true)
        .liveness_timeout(Duration::from_millis(200));
    let over_opts = opts(&dir).capacity(256 << 10).max_message(MAX as u32).policy(Policy::Overwrite);
    let block = Topic::create("block", &block_opts).map_err(|e| e.to_string())?;
    let over = Topic::create("over", &over_opts).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let left = |s: &Instant| (secs - s.elapsed().as_secs_f64()).max(0.0);
    // Long-lived subscribers (never killed), then the churned ones.
    let steady =
        vec![Proc::spawn(&dir, "subscriber", "block", 0, 0.0), Proc::spawn(&dir, "subscriber", "over", 0, 0.0)];
    let mut churned =
        vec![Proc::spawn(&dir, "subscriber", "block", 1, 0.0), Proc::spawn(&dir, "subscriber", "over", 1, 0.0)];
    let mut next_id = 0;
    let mut producers: Vec<Proc> = ["block", "block", "over"]
        .into_iter()
        .map(|t| {
            next_id += 1;
            Proc::spawn(&dir, "producer", t, next_id, left(&start))
        })
        .collect();
    let (mut producer_kills, mut subscriber_restarts) = (0u64, 0u64);
    let mut rng = mix(start.elapsed().as_nanos() as u64 ^ std::process::id() as u64);
    let mut finished_producers = Vec::new();
    let mut last_report = Instant::now();
    while left(&start) > 1.0 {
        rng = mix(rng);
        std::thread::sleep(Duration::from_millis(100 + rng % 400)); // pacing of the faults
        rng = mix(rng);
        if rng % 3 == 0 {
            let i = (rng >> 8) as usize % churned.len();
            let old = churned.swap_remove(i);
            let topic = old.topic;
            old.kill();
            churned.push(Proc::spawn(&dir, "subscriber", topic, 1, 0.0));
            subscriber_restarts += 1;
        } else {
            let i = (rng >> 8) as usize % producers.len();
            let old = producers.swap_remove(i);
            let topic = old.topic;
            old.kill();
            next_id += 1;
            producers.push(Proc::spawn(&dir, "producer", topic, next_id, left(&start)));
            producer_kills += 1;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "soak: {:.0}/{secs:.0} s, {producer_kills} producer kills, {subscriber_restarts} subscriber restarts",
                start.elapsed().as_secs_f64()
            );
        }
    }
    for p in producers {
        finished_producers.push((p.topic, p.id, p.finish()?));
    }
    // Everything published is now followed by END on each topic.
    for t in [&block, &over] {
        let mut p = t.producer().map_err(|e| format!("a producer attaches at the end: {e}"))?;
        p.publish_typed(END, b"end").map_err(|e| e.to_string())?;
    }
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for (kind, procs) in [("long-lived", steady), ("churned", churned)] {
        for s in procs {
            let topic = s.topic;
            let line = match s.finish() {
                Ok(l) => l,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            let (rx, lost) = (field(&line, "received"), field(&line, "lost"));
            let span = field(&line, "last_seq") - field(&line, "first_seq") + 1;
            if rx > 0 && topic == "over" && rx + lost != span {
                failures.push(format!("{kind} {topic}: received {rx} + lost {lost} != {span} sequence numbers"));
            }
            if topic == "block" && lost != 0 {
                failures.push(format!("{kind} block subscriber lost {lost}"));
            }
            if kind == "long-lived" && topic == "block" {
                for (t, id, done) in &finished_producers {
                    if *t == "block" {
                        let per = line.split("per=").nth(1).unwrap_or("");
                        let got = per
                            .split(',')
                            .find_map(|kv| kv.strip_prefix(&format!("{id}:"))?.parse::<u64>().ok())
                            .unwrap_or(0);
                        if got != field(done, "published") {
                            failures
                                .push(format!("block producer {id} published {}, got {got}", field(done, "published")));
                        }
                    }
                }
            }
            let (early, end) = (field(&line, "rss_early_kb"), field(&line, "rss_end_kb"));
            if kind == "long-lived" && early > 0 && end > early + 2048 {
                failures.push(format!("{topic} subscriber memory grew from {early} to {end} KiB"));
            }
            report.push(format!("{kind:>10} {topic:>5}: received {rx:>9}, lost {lost:>8}, rss {early} -> {end} KiB"));
        }
    }
    let (bi, oi) = (block.info(), over.info());
    drop((block, over));
    Topic::unlink_in(&dir, "block").map_err(|e| e.to_string())?;
    Topic::unlink_in(&dir, "over").map_err(|e| e.to_string())?;
    let leftovers: Vec<_> = std::fs::read_dir(&dir).map_err(|e| e.to_string())?.filter_map(|e| e.ok()).collect();
    if !leftovers.is_empty() {
        failures.push(format!("files left in {}: {leftovers:?}", dir.display()));
    }
    let _ = std::fs::remove_dir(&dir);
    println!(
        "soak: {secs:.0} s, {producer_kills} producer kills, {subscriber_restarts} subscriber restarts, \
         {} repaired claims, {} reaped subscribers",
        bi.repaired + oi.repaired,
        bi.reaped + oi.reaped
    );
    for r in &report {
        println!("  {r}");
    }
    if failures.is_empty() {
        println!("soak: all checks passed");
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("producer") => {
            let secs: f64 = args[5].parse().unwrap_or(0.0);
            producer(
                Path::new(&args[2]),
                &args[3],
                args[4].parse().unwrap_or(0),
                Instant::now() + Duration::from_secs_f64(secs),
            )
        }
        Some("subscriber") => subscriber(Path::new(&args[2]), &args[3]),
        _ => {
            let mut secs = 600.0;
            let mut dir = std::env::temp_dir().join(format!("shmq-soak-{}", std::process::id()));
            let mut it = args.iter().skip(1);
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--secs" => secs = it.next().and_then(|v| v.parse().ok()).unwrap_or(secs),
                    "--dir" => dir = it.next().map(PathBuf::from).unwrap_or(dir),
                    other => {
                        eprintln!("usage: soak [--secs N] [--dir DIR] (unknown argument {other})");
                        std::process::exit(2);
                    }
                }
            }
            coordinator(secs, dir)
        }
    };
    if let Err(e) = result {
        println!("soak FAILED: {e}");
        eprintln!("soak FAILED: {e}");
        std::process::exit(1);
    }
}
