//! `shmq watch`: live rates, subscribers and lag of every topic (or the
//! ones named), refreshed in place; `--once --json` for scripts.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use shmq::{Options, Topic, TopicInfo};

use crate::ls::{scan_dir, worst_lag};
use crate::output::table;
use crate::{units, Fail, R};

struct Sample {
    at: Instant,
    infos: Vec<TopicInfo>,
}

fn sample(dir: &Path, opts: &Options, topics: &[String]) -> Result<Sample, Fail> {
    let names = if topics.is_empty() { scan_dir(dir)?.0 } else { topics.to_vec() };
    let mut infos = Vec::new();
    for n in names {
        match Topic::open_read_only(&n, opts) {
            Ok(t) => infos.push(t.info()),
            Err(e) if !topics.is_empty() => return Err(e.into()),
            Err(_) => {}
        }
    }
    Ok(Sample { at: Instant::now(), infos })
}

fn rates(a: &Sample, b: &Sample) -> Vec<(TopicInfo, f64, f64)> {
    let secs = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    b.infos
        .iter()
        .map(|i| {
            let prev = a.infos.iter().find(|p| p.name == i.name);
            let dm = prev.map_or(0, |p| i.published_messages.saturating_sub(p.published_messages));
            let db = prev.map_or(0, |p| i.published_bytes.saturating_sub(p.published_bytes));
            (i.clone(), dm as f64 / secs, db as f64 / secs)
        })
        .collect()
}

fn render(rows: &[(TopicInfo, f64, f64)]) {
    let mut out = Vec::new();
    for (i, mps, bps) in rows {
        out.push(vec![
            i.name.clone(),
            format!("{mps:.0}"),
            format!("{:.2}", bps / 1e6),
            format!("{}/{}", i.subscribers.len(), i.max_subscribers),
            units::human(worst_lag(i)),
            i.subscribers.iter().map(|s| s.lost).sum::<u64>().to_string(),
            i.published_messages.to_string(),
        ]);
        for s in &i.subscribers {
            out.push(vec![
                format!("  └ slot {} pid {}{}", s.slot, s.pid, if s.alive { "" } else { " DEAD" }),
                String::new(),
                String::new(),
                String::new(),
                units::human(s.lag_bytes),
                s.lost.to_string(),
                s.received.to_string(),
            ]);
        }
    }
    table(&["TOPIC", "MSG/S", "MB/S", "SUBS", "LAG", "LOST", "MESSAGES"], &out);
}

pub fn run(dir: &Path, opts: &Options, topics: &[String], interval: Duration, once: bool, json: bool) -> R {
    if once {
        let a = sample(dir, opts, topics)?;
        std::thread::sleep(interval);
        let b = sample(dir, opts, topics)?;
        let r = rates(&a, &b);
        if json {
            let v: Vec<serde_json::Value> = r
                .iter()
                .map(|(i, m, by)| {
                    serde_json::json!({
                        "name": i.name,
                        "interval_s": b.at.duration_since(a.at).as_secs_f64(),
                        "messages_per_s": m,
                        "bytes_per_s": by,
                        "published_messages": i.published_messages,
                        "subscribers": i.subscribers.len(),
                        "worst_lag_bytes": worst_lag(i),
                        "lost": i.subscribers.iter().map(|s| s.lost).sum::<u64>(),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(v));
        } else {
            render(&r);
        }
        return Ok(());
    }
    let _raw = RawTerminal::enter();
    let mut prev = sample(dir, opts, topics)?;
    loop {
        if wait_for_quit(interval) {
            return Ok(());
        }
        let next = sample(dir, opts, topics)?;
        print!("\x1b[H\x1b[2J");
        println!("shmq watch  {}  every {:?}  (q quits)\r", dir.display(), interval);
        render(&rates(&prev, &next));
        let _ = std::io::stdout().flush();
        prev = next;
    }
}

/// Puts a terminal on stdin into non-canonical, no-echo mode (so `q`
/// arrives without Enter); restores it on drop. Ctrl-C still works.
struct RawTerminal(Option<libc::termios>);

impl RawTerminal {
    fn enter() -> RawTerminal {
        // SAFETY: isatty/tcgetattr/tcsetattr on fd 0 with a valid termios.
        unsafe {
            if libc::isatty(0) == 0 {
                return RawTerminal(None);
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return RawTerminal(None);
            }
            let saved = t;
            t.c_lflag &= !(libc::ICANON | libc::ECHO);
            libc::tcsetattr(0, libc::TCSANOW, &t);
            libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
            RawTerminal(Some(saved))
        }
    }
}

static QUIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restores the attributes saved in `enter`.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
    }
}

/// Waits `d`, returning true early if `q` was typed or Ctrl-C pressed.
fn wait_for_quit(d: Duration) -> bool {
    let deadline = Instant::now() + d;
    loop {
        if QUIT.load(std::sync::atomic::Ordering::SeqCst) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut pfd = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd; timeout in ms.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(100) as libc::c_int) };
        if n > 0 && pfd.revents & libc::POLLIN != 0 {
            let mut b = [0u8; 16];
            // SAFETY: reads at most 16 bytes into `b`.
            let r = unsafe { libc::read(0, b.as_mut_ptr().cast(), b.len()) };
            if r == 0 {
                // stdin closed: keep watching until Ctrl-C, but stop polling it.
                std::thread::sleep(left.min(Duration::from_millis(100)));
            } else if b[..r.max(0) as usize].iter().any(|&c| c == b'q' || c == b'Q') {
                return true;
            }
        }
    }
}

extern "C" fn on_sigint(_: libc::c_int) {
    QUIT.store(true, std::sync::atomic::Ordering::SeqCst);
}
