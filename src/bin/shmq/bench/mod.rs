//! `shmq bench`: shmq against the hardware's limits and the usual
//! alternatives, measured side by side in one run, one pair of processes at
//! a time, pinned to two CPUs.
//!
//! Latency is a round trip (reported one-way, i.e. halved) between a
//! pinger on CPU A and a ponger on CPU B; the ponger reads every byte of the
//! ping and sends it back. Throughput is one producer and one consumer; the
//! consumer checks every byte of every message against the pattern the
//! producer wrote. The baselines:
//! - `raw`: one cache line each way, spin-waited: the latency floor;
//! - `futex`: a shared word each way, every wait a futex sleep: the floor
//!   for a blocking wake-up;
//! - `bare ring`: a fixed-slot SPSC ring in shared memory with cached
//!   indices, no headers, no features: the throughput ceiling;
//! - `unix socket`, `pipe`, `posix mq`: what people use today.
//!
//! The child side is this binary again (`shmq bench-child`, hidden).
//!
//! Files: `peers.rs` (the shared memory, sockets, pipes and queues both
//! sides use, and the child process), `child.rs` (the child's side of
//! each measurement), `measure.rs` (the parent's side), `report.rs` (the
//! tables, the JSON and the targets).

mod child;
mod measure;
mod peers;
mod report;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use child::child;
use measure::{fanout, latency, throughput};
use report::{size_name, Progress};

/// What to measure, where, and how long.
pub struct Plan {
    pub quick: bool,
    pub cpus: (usize, usize),
    /// Parent of the bench's own topic directory. A tmpfs (the default
    /// `/dev/shm/shmq`): on a disk-backed directory the kernel's write-back
    /// makes pages fault again, and the percentiles measure the file system.
    pub dir: PathBuf,
    /// Sections to run; empty: all.
    pub only: Vec<Section>,
    /// Message sizes to run; empty: the default sizes of each section.
    pub sizes: Vec<usize>,
    /// Each measurement is repeated this many times (interleaved with the
    /// others, so a noisy neighbour hits them alike); the median is kept.
    pub repeat: usize,
    /// Also write the JSON report here (with the tables on stdout).
    pub json_out: Option<PathBuf>,
}

impl Plan {
    fn rounds(&self, size: usize) -> u64 {
        let base = if self.quick { 20_000 } else { 200_000 };
        if size > 4096 {
            base / 20
        } else {
            base
        }
    }
    fn messages(&self, size: usize) -> u64 {
        let bytes: u64 = if self.quick { 128 << 20 } else { 1 << 30 };
        (bytes / size as u64).clamp(64, 4_000_000)
    }
    fn runs(&self, section: Section) -> bool {
        self.only.is_empty() || self.only.contains(&section)
    }
    fn sizes(&self, defaults: &[usize]) -> Vec<usize> {
        if self.sizes.is_empty() {
            defaults.to_vec()
        } else {
            self.sizes.clone()
        }
    }
}

/// A section of the bench (`--only`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Round-trip latency.
    Latency,
    /// One producer, one consumer, every byte checked.
    Throughput,
    /// One producer, k subscriber processes.
    Fanout,
}

/// What is measured: shmq in its modes, the floors and ceilings it is
/// compared with, and what people use instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One cache line each way, spin-waited: the latency floor.
    Raw,
    /// A bare ring of frames (stamp and payload, nothing else).
    Frames,
    /// shmq, busy-polling `try_recv`.
    Shmq,
    /// shmq on a topic with timestamps.
    ShmqTs,
    /// shmq, the producer publishing runs of [`BATCH`] messages with
    /// `publish_batch`.
    ShmqBatch,
    /// shmq, the producer writing runs of [`BATCH`] messages in place with
    /// `publish_batch_with`.
    ShmqBatchWith,
    /// shmq on a multi-producer topic (one producer process).
    ShmqMulti,
    /// shmq on an `Overwrite` topic: what the subscriber gets, losses
    /// counted.
    ShmqOver,
    /// shmq, blocking `recv`.
    ShmqBlock,
    /// A futex ping-pong: the floor for a blocking wake-up.
    Futex,
    /// A Unix socket pair.
    Unix,
    /// A pair of pipes.
    Pipe,
    /// POSIX message queues.
    Mq,
    /// A fixed-slot SPSC ring with cached indices: the throughput ceiling.
    Bare,
    /// shmq through its C API (`--c-pingpong`).
    C,
}

impl Kind {
    const ALL: [Kind; 15] = [
        Kind::Raw,
        Kind::Frames,
        Kind::Shmq,
        Kind::ShmqTs,
        Kind::ShmqBatch,
        Kind::ShmqBatchWith,
        Kind::ShmqMulti,
        Kind::ShmqOver,
        Kind::ShmqBlock,
        Kind::Futex,
        Kind::Unix,
        Kind::Pipe,
        Kind::Mq,
        Kind::Bare,
        Kind::C,
    ];

    /// The short name in JSON and on the child's command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::Frames => "frames",
            Kind::Shmq => "shmq",
            Kind::ShmqTs => "shmq-ts",
            Kind::ShmqBatch => "shmq-batch",
            Kind::ShmqBatchWith => "shmq-batch-in-place",
            Kind::ShmqMulti => "shmq-multi",
            Kind::ShmqOver => "shmq-overwrite",
            Kind::ShmqBlock => "shmq-block",
            Kind::Futex => "futex",
            Kind::Unix => "unix",
            Kind::Pipe => "pipe",
            Kind::Mq => "mq",
            Kind::Bare => "bare",
            Kind::C => "c",
        }
    }

    /// The kind named `s` ([`Kind::name`]).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The row label in the tables.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Raw => "raw cache line (floor)",
            Kind::Frames => "bare ring of frames (floor)",
            Kind::Shmq => "shmq busy-poll",
            Kind::Futex => "futex ping-pong (floor)",
            Kind::ShmqBlock => "shmq blocking recv",
            Kind::Unix => "unix socket",
            Kind::Pipe => "pipe",
            Kind::Mq => "posix mq",
            Kind::Bare => "bare SPSC ring (ceiling)",
            Kind::C => "shmq C API busy-poll",
            Kind::ShmqTs => "shmq, with timestamps",
            Kind::ShmqBatch => "shmq publish_batch (32)",
            Kind::ShmqBatchWith => "shmq batch in place (32)",
            Kind::ShmqMulti => "shmq multi-producer",
            Kind::ShmqOver => "shmq Overwrite (received)",
        }
    }
}

/// Which half of a measurement a child runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The ponger of a latency round trip.
    Lat,
    /// The consumer of a throughput run.
    Tput,
}

impl Mode {
    /// The name on the child's command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Lat => "lat",
            Mode::Tput => "tput",
        }
    }
    /// The mode named `s`.
    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::Lat, Mode::Tput].into_iter().find(|m| m.name() == s)
    }
}

/// In measuring order: each target's pair is measured back to back (the
/// C API, when asked for, right after `shmq`), so both see the machine in
/// the same state.
const LAT_KINDS: [Kind; 9] =
    [Kind::Raw, Kind::Frames, Kind::Shmq, Kind::ShmqTs, Kind::ShmqBlock, Kind::Futex, Kind::Unix, Kind::Pipe, Kind::Mq];
const LAT_SIZES: [usize; 3] = [64, 1024, 64 << 10];
const TPUT_KINDS: [Kind; 10] = [
    Kind::Bare,
    Kind::Shmq,
    Kind::ShmqBatch,
    Kind::ShmqBatchWith,
    Kind::ShmqMulti,
    Kind::ShmqOver,
    Kind::ShmqTs,
    Kind::Unix,
    Kind::Pipe,
    Kind::Mq,
];
/// Messages per `publish_batch` call in the [`Kind::ShmqBatch`] runs.
pub const BATCH: usize = 32;
const TPUT_SIZES: [usize; 3] = [64, 4096, 1 << 20];

/// Checks a `--size`: the patterns are written and checked in 8-byte words.
pub fn check_size(size: u64) -> Result<(), String> {
    if (8..=1 << 20).contains(&size) && size % 8 == 0 {
        Ok(())
    } else {
        Err(format!("invalid --size {size}: sizes are multiples of 8 from 8 B to 1 MiB"))
    }
}

/// Runs the whole comparison and prints it (table, or JSON).
pub fn run(plan: Plan, json: bool, c_binary: Option<PathBuf>) -> Result<(), String> {
    let dir = plan.dir.join(format!(".bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|x| format!("creating {}: {x}", dir.display()))?;
    if !on_tmpfs(&dir) {
        eprintln!(
            "warning: {} is not on a tmpfs; write-back page faults will show in the tail percentiles",
            dir.display()
        );
    }
    let result = run_in(&plan, json, c_binary, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Whether `dir` lies on a tmpfs (as `/dev/shm` does).
fn on_tmpfs(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a zeroed statfs is a valid out-parameter; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; statfs writes only into `st`.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type == libc::TMPFS_MAGIC }
}

fn run_c(path: &Path, plan: &Plan, size: usize, dir: &Path) -> Result<[u64; 5], String> {
    let out = Command::new(path)
        .args([&plan.rounds(size).to_string(), &size.to_string(), &plan.cpus.0.to_string(), &plan.cpus.1.to_string()])
        .env("SHMQ_DIR", dir)
        .output()
        .map_err(|x| format!("running {}: {x}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<u64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    if !out.status.success() || nums.len() < 5 {
        return Err(format!("C ping-pong failed: {text} {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok([nums[0], nums[1], nums[2], nums[3], nums[4]])
}

/// Measures everything the plan asks for, `plan.repeat` times over,
/// interleaved, then hands the runs to [`report::print`].
fn run_in(plan: &Plan, json: bool, c_binary: Option<PathBuf>, dir: &Path) -> Result<(), String> {
    let fan_ks: Vec<usize> = if plan.runs(Section::Fanout) { vec![1, 2, 3] } else { Vec::new() };
    let lat_sizes = if plan.runs(Section::Latency) { plan.sizes(&LAT_SIZES) } else { Vec::new() };
    let tput_sizes = if plan.runs(Section::Throughput) { plan.sizes(&TPUT_SIZES) } else { Vec::new() };
    let c_lat = c_binary.as_ref().filter(|_| lat_sizes.contains(&64));
    let reps = plan.repeat.max(1);
    let total = reps
        * (LAT_KINDS.len() * lat_sizes.len()
            + TPUT_KINDS.len() * tput_sizes.len()
            + fan_ks.len()
            + c_lat.map_or(0, |_| 1));
    // SAFETY: isatty has no preconditions.
    let mut prog = Progress { total, done: 0, tty: unsafe { libc::isatty(2) } == 1 };
    let mut lat_runs: Vec<(Kind, usize, Vec<[u64; 5]>)> = Vec::new();
    let mut tput_runs: Vec<(Kind, usize, Vec<f64>)> = Vec::new();
    let mut fan_runs: Vec<(usize, Vec<f64>)> = fan_ks.iter().map(|&k| (k, Vec::new())).collect();
    fn record<K: PartialEq, V>(runs: &mut Vec<(K, usize, Vec<V>)>, kind: K, size: usize, v: V) {
        match runs.iter_mut().find(|r| r.0 == kind && r.1 == size) {
            Some(r) => r.2.push(v),
            None => runs.push((kind, size, vec![v])),
        }
    }
    // Repeats are interleaved: every measurement once, then again, so a
    // noisy neighbour on the machine hits all of them alike.
    for _ in 0..reps {
        for &size in &lat_sizes {
            for kind in LAT_KINDS {
                prog.step(&format!("latency {} {}", kind.label(), size_name(size)));
                if let Some(p) = latency(plan, kind, size, dir)? {
                    record(&mut lat_runs, kind, size, p);
                }
                if let (Some(c), Kind::Shmq, 64) = (c_lat, kind, size) {
                    prog.step("latency shmq C API 64 B");
                    record(&mut lat_runs, Kind::C, 64, run_c(c, plan, 64, dir)?);
                }
            }
        }
        for &size in &tput_sizes {
            for kind in TPUT_KINDS {
                prog.step(&format!("throughput {} {}", kind.label(), size_name(size)));
                if let Some(r) = throughput(plan, kind, size, dir)? {
                    record(&mut tput_runs, kind, size, r);
                }
            }
        }
        for (k, runs) in &mut fan_runs {
            prog.step(&format!("fan-out to {k} subscriber(s)"));
            runs.push(fanout(plan, *k, dir)?);
        }
    }
    prog.end();
    report::print(plan, json, reps, &lat_sizes, &tput_sizes, lat_runs, tput_runs, fan_runs)
}
