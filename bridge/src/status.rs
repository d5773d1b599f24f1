//! What a running bridge shows: its counters ([`Stats`]), a status file
//! that `shmq bridge status` reads, and a progress line on a terminal.
//!
//! Each bridge owns two files in `<topic dir>/.shmq-bridge/` (hidden, so
//! `shmq ls` skips them): `NAME.json`, rewritten whole (write, then rename)
//! twice a second and at exit, and `NAME.lock`, which the bridge holds an
//! exclusive `flock` on while it runs. `status` calls a bridge running
//! when that lock is held; the kernel drops it when the bridge dies, so a
//! killed bridge shows as stopped whatever its last file says.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::Serialize;

/// A bridge's counters. Relaxed atomics: each is read on its own, for display.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages taken from the source (topic for out, stream for in).
    pub read: AtomicU64,
    /// Out: published and not yet acknowledged. In: delivered, not yet applied.
    pub in_flight: AtomicU64,
    /// Out: acknowledged by JetStream and released in the topic.
    /// In: published into the topic and acknowledged to JetStream.
    pub acknowledged: AtomicU64,
    /// Out: publishes JetStream reported as duplicates (already stored).
    /// In: redeliveries recognised as already applied, not published again.
    pub duplicates: AtomicU64,
    /// Out: messages skipped at a resync because the stream held them.
    pub resynced: AtomicU64,
    /// Out (`--on-down drop`): messages released without being sent.
    pub dropped: AtomicU64,
    /// Messages the far side reported lost before reaching it (in: the
    /// sum of `Shmq-Lagged` and `Shmq-Dropped` headers; out: Overwrite
    /// laps of this bridge's own subscriber).
    pub lost: AtomicU64,
    /// Connections re-established after a loss.
    pub reconnects: AtomicU64,
    /// Publish or fetch attempts retried after an error.
    pub retries: AtomicU64,
    pub last_error: Mutex<String>,
}

impl Stats {
    pub fn error(&self, e: impl std::fmt::Display) {
        if let Ok(mut s) = self.last_error.lock() {
            *s = e.to_string();
        }
    }
}

/// One line of `shmq bridge status`.
#[derive(Debug, Serialize, serde::Deserialize, Clone)]
pub struct Snapshot {
    pub name: String,
    pub direction: String,
    pub topic: String,
    pub server: String,
    pub stream: String,
    pub subject: String,
    pub pid: u32,
    #[serde(default)]
    pub running: bool,
    pub state: String,
    pub read: u64,
    pub in_flight: u64,
    pub acknowledged: u64,
    pub duplicates: u64,
    pub resynced: u64,
    pub dropped: u64,
    pub lost: u64,
    pub reconnects: u64,
    pub retries: u64,
    pub last_error: String,
    pub updated_unix_ms: u64,
}

/// The identity part of a snapshot, fixed for the bridge's life.
#[derive(Debug, Clone)]
pub struct Ident {
    pub name: String,
    pub direction: &'static str,
    pub topic: String,
    pub server: String,
    pub stream: String,
    pub subject: String,
}

/// The status files of one running bridge.
#[derive(Debug)]
pub struct StatusFile {
    json: PathBuf,
    /// Holds the `flock` for the bridge's life.
    _lock: File,
    ident: Ident,
}

pub fn state_dir(topic_dir: &Path) -> PathBuf {
    topic_dir.join(".shmq-bridge")
}

fn flock(f: &File, op: libc::c_int) -> bool {
    // SAFETY: flock on a descriptor this File owns; no memory is passed.
    unsafe { libc::flock(f.as_raw_fd(), op) == 0 }
}

impl StatusFile {
    /// Takes the bridge's lock; fails if another bridge of the same name runs.
    pub fn create(topic_dir: &Path, ident: Ident) -> Result<StatusFile, String> {
        let dir = state_dir(topic_dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let lock_path = dir.join(format!("{}.lock", ident.name));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        if !flock(&lock, libc::LOCK_EX | libc::LOCK_NB) {
            return Err(format!("bridge {:?} is already running ({} is locked)", ident.name, lock_path.display()));
        }
        Ok(StatusFile { json: dir.join(format!("{}.json", ident.name)), _lock: lock, ident })
    }

    pub fn snapshot(&self, stats: &Stats, state: &str) -> Snapshot {
        let i = &self.ident;
        Snapshot {
            name: i.name.clone(),
            direction: i.direction.into(),
            topic: i.topic.clone(),
            server: i.server.clone(),
            stream: i.stream.clone(),
            subject: i.subject.clone(),
            pid: std::process::id(),
            running: true,
            state: state.into(),
            read: stats.read.load(Relaxed),
            in_flight: stats.in_flight.load(Relaxed),
            acknowledged: stats.acknowledged.load(Relaxed),
            duplicates: stats.duplicates.load(Relaxed),
            resynced: stats.resynced.load(Relaxed),
            dropped: stats.dropped.load(Relaxed),
            lost: stats.lost.load(Relaxed),
            reconnects: stats.reconnects.load(Relaxed),
            retries: stats.retries.load(Relaxed),
            last_error: stats.last_error.lock().map(|s| s.clone()).unwrap_or_default(),
            updated_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }

    /// Rewrites the JSON file (a crash mid-write leaves the old one).
    pub fn write(&self, stats: &Stats, state: &str) {
        let snap = self.snapshot(stats, state);
        let tmp = self.json.with_extension("json.tmp");
        let ok = serde_json::to_vec_pretty(&snap)
            .ok()
            .and_then(|body| File::create(&tmp).and_then(|mut f| f.write_all(&body)).ok())
            .is_some();
        if ok {
            let _ = std::fs::rename(&tmp, &self.json);
        }
    }
}

/// The progress line, redrawn in place on a terminal.
pub fn progress_line(s: &Snapshot) -> String {
    format!(
        "\r{} {}: read {} | in flight {} | acked {} | dup {} | dropped {} | lost {} | reconnects {}{}\x1b[K",
        s.direction,
        s.topic,
        s.read,
        s.in_flight,
        s.acknowledged,
        s.duplicates,
        s.dropped,
        s.lost,
        s.reconnects,
        if s.last_error.is_empty() { String::new() } else { format!(" | last error: {}", s.last_error) }
    )
}

/// Every bridge recorded in `topic_dir`, running or not.
pub fn read_all(topic_dir: &Path) -> Result<Vec<Snapshot>, String> {
    let dir = state_dir(topic_dir);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let Ok(body) = std::fs::read(&p) else { continue };
        // A file another user or a crash left half-written is skipped, not fatal.
        let Ok(mut snap) = serde_json::from_slice::<Snapshot>(&body) else { continue };
        snap.running =
            File::open(p.with_extension("lock")).map(|f| !flock(&f, libc::LOCK_SH | libc::LOCK_NB)).unwrap_or(false);
        if !snap.running {
            snap.in_flight = 0;
            snap.state = "stopped".into();
        }
        out.push(snap);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn print(snaps: &[Snapshot], json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(snaps).unwrap_or_else(|_| "[]".into()));
        return;
    }
    if snaps.is_empty() {
        println!("no bridges recorded here");
        return;
    }
    println!(
        "{:<28} {:<4} {:<9} {:>10} {:>9} {:>12} {:>6} {:>8} {:>6} {:>5}  last error",
        "NAME", "DIR", "STATE", "READ", "INFLIGHT", "ACKED", "DUP", "DROPPED", "LOST", "RECON"
    );
    for s in snaps {
        println!(
            "{:<28} {:<4} {:<9} {:>10} {:>9} {:>12} {:>6} {:>8} {:>6} {:>5}  {}",
            s.name,
            s.direction,
            s.state,
            s.read,
            s.in_flight,
            s.acknowledged,
            s.duplicates,
            s.dropped,
            s.lost,
            s.reconnects,
            s.last_error
        );
    }
}
