//! `shmq`: see and drive shmq topics. `shmq --help`, and docs/CLI.md.
//!
//! Exit codes: 0 ok, 1 runtime error, 2 usage error (bad arguments, topic
//! names or options), 3 topic not found.
//! Inspection (`ls`, `info`, `tail` without `--subscribe`, `watch`) maps
//! topics read-only and never changes a ring.

mod bench;
mod json;
mod units;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use json::J;
use shmq::{OpenError, Options, Policy, PublishError, RecvError, Start, TailEvent, Topic, TopicInfo};

const EXIT_RUNTIME: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NOT_FOUND: u8 = 3;

#[derive(Parser)]
#[command(name = "shmq", version, about = "See and drive shmq shared-memory topics")]
#[command(after_help = "Examples:
  shmq create md.quotes --capacity 64MiB --max-message 4KiB
  shmq pub md.quotes 'hello' 'world'
  shmq tail -f md.quotes
  shmq info md.quotes --json
  shmq watch --once

Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 topic not found.")]
struct Cli {
    /// Topic directory (default: $SHMQ_DIR, else /dev/shm/shmq)
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    Block,
    Overwrite,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum BenchSection {
    Latency,
    Throughput,
    Fanout,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Format {
    Text,
    Hex,
    Json,
    Raw,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum FromArg {
    Oldest,
    Newest,
    Seq(u64),
    /// `CLOCK_MONOTONIC` ns.
    Time(u64),
}

/// `--from`: `oldest`, `newest`, a sequence number, `-DURATION` (that long
/// ago) or `@NS` (a `CLOCK_MONOTONIC` time in ns, as printed by `--format json`).
fn parse_from(s: &str) -> Result<FromArg, String> {
    match s {
        "oldest" => Ok(FromArg::Oldest),
        "newest" => Ok(FromArg::Newest),
        _ => {
            if let Some(ago) = s.strip_prefix('-') {
                let d = units::parse_duration(ago)?;
                Ok(FromArg::Time(shmq::__private::sys::monotonic_ns().saturating_sub(d.as_nanos() as u64)))
            } else if let Some(ns) = s.strip_prefix('@') {
                ns.parse().map(FromArg::Time).map_err(|_| format!("bad time {s:?}: expected @NANOSECONDS"))
            } else {
                s.parse().map(FromArg::Seq).map_err(|_| {
                    format!("bad --from {s:?}: expected oldest, newest, a sequence number, -10s (ago) or @NS")
                })
            }
        }
    }
}

impl FromArg {
    fn start(self) -> Start {
        match self {
            FromArg::Oldest => Start::Oldest,
            FromArg::Newest => Start::Newest,
            FromArg::Seq(n) => Start::Seq(n),
            FromArg::Time(t) => Start::Time(t),
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// List the topics in the directory
    #[command(after_help = "Example:\n  shmq ls --json | jq '.[] | select(.stale)'")]
    Ls {
        /// Print JSON (an array of topic objects; see docs/CLI.md)
        #[arg(long)]
        json: bool,
    },
    /// Show a topic's header, counters and subscribers
    #[command(after_help = "Example:\n  shmq info md.quotes --json | jq .subscribers")]
    Info {
        topic: String,
        /// Print JSON (see docs/CLI.md)
        #[arg(long)]
        json: bool,
    },
    /// Print messages (passive by default: no slot, never slows a producer)
    #[command(after_help = "Examples:
  shmq tail md.quotes                 # the last 10 messages the ring holds
  shmq tail -f md.quotes              # ... then follow
  shmq tail --from oldest --format json md.quotes
  shmq tail -f --subscribe md.quotes  # as a real (Block-gating) subscriber")]
    Tail {
        topic: String,
        /// Keep printing new messages
        #[arg(short, long)]
        follow: bool,
        /// Show the last N messages the ring holds (ignored with --from)
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
        /// Start at: oldest, newest, a sequence number (first retained
        /// message with seq >= N), -DURATION (published at most that long
        /// ago, e.g. -10s) or @NS (CLOCK_MONOTONIC ns)
        #[arg(long, value_parser = parse_from, allow_hyphen_values = true)]
        from: Option<FromArg>,
        /// Output format
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Exit after printing this many messages
        #[arg(short, long)]
        count: Option<u64>,
        /// Read as a real subscriber (takes a slot; gates Block producers)
        #[arg(long)]
        subscribe: bool,
        /// Read as the durable subscriber NAME: resume where it stopped;
        /// each printed message is acknowledged (implies --subscribe)
        #[arg(long, value_name = "NAME")]
        durable: Option<String>,
        /// Read as a member of consumer group GROUP: take only the messages
        /// no other member takes (implies --subscribe)
        #[arg(long, value_name = "GROUP", conflicts_with = "durable")]
        group: Option<String>,
    },
    /// Publish messages
    #[command(after_help = "Examples:
  shmq pub md.quotes 'EURUSD 1.0842' 'EURUSD 1.0843'
  tail -F app.log | shmq pub logs --stdin
  shmq pub blobs --file image.png --timeout 2s")]
    Pub {
        topic: String,
        /// Messages (one message each)
        messages: Vec<String>,
        /// Read messages from standard input, one per line
        #[arg(long, conflicts_with = "file")]
        stdin: bool,
        /// Publish the whole file as one message
        #[arg(long)]
        file: Option<PathBuf>,
        /// How long to wait for room on a full Block topic
        #[arg(long, default_value = "5s", value_parser = units::parse_duration)]
        timeout: Duration,
        /// User message type (0..2^31)
        #[arg(long, default_value_t = 0)]
        r#type: u32,
    },
    /// Create a topic
    #[command(
        after_help = "Example:\n  shmq create md.quotes --capacity 64MiB --max-message 1MiB --policy overwrite --mode 0660"
    )]
    Create {
        topic: String,
        /// Ring capacity (rounded up to a power of two), e.g. 64MiB
        #[arg(long, default_value = "1MiB", value_parser = units::parse_size)]
        capacity: u64,
        /// Largest message, e.g. 64KiB (default: 64 KiB or what the ring allows)
        #[arg(long, value_parser = units::parse_size)]
        max_message: Option<u64>,
        /// Loss policy
        #[arg(long, value_enum, default_value = "block")]
        policy: PolicyArg,
        /// Subscriber slots
        #[arg(long, default_value_t = 64)]
        max_subscribers: u32,
        /// Allow several producers at once (block topics)
        #[arg(long)]
        multi_producer: bool,
        /// File mode, octal (e.g. 0660 to share with the group)
        #[arg(long, default_value = "0600")]
        mode: String,
        /// Stamp every message with its publish time (costs a clock read per
        /// message; needed to replay by time: tail --from -10s)
        #[arg(long)]
        timestamps: bool,
    },
    /// Remove topics (refuses topics that live processes use)
    #[command(after_help = "Example:\n  shmq rm old.topic other.topic")]
    Rm {
        #[arg(required = true)]
        topics: Vec<String>,
        /// Remove even if live processes map it (they keep their mapping)
        #[arg(long)]
        force: bool,
    },
    /// Remove topics no live process uses, and files left by crashed creators
    #[command(after_help = "Example:\n  shmq gc --dry-run")]
    Gc {
        /// Only say what would be removed
        #[arg(long)]
        dry_run: bool,
    },
    /// Reclaim dead subscribers' slots and recover a dead producer's stuck frame
    #[command(after_help = "Example:\n  shmq repair md.quotes")]
    Repair { topic: String },
    /// Live view of rates, subscribers and lag (q or Ctrl-C quits)
    #[command(
        after_help = "Examples:\n  shmq watch\n  shmq watch md.quotes --interval 500ms\n  shmq watch --once --json"
    )]
    Watch {
        /// Topics to watch (default: all)
        topics: Vec<String>,
        /// Refresh interval
        #[arg(long, default_value = "1s", value_parser = units::parse_duration)]
        interval: Duration,
        /// Print one sample (over one interval) and exit
        #[arg(long)]
        once: bool,
        /// With --once: print JSON
        #[arg(long)]
        json: bool,
    },
    /// Measure shmq against the hardware's limits and the alternatives
    #[command(after_help = "Examples:
  shmq bench --quick                 # under a minute; the README's figures
  shmq bench --json > bench.json     # full run, machine-readable
  shmq bench --c-pingpong target/release/c-tests/pingpong   # add the C API
  shmq bench --quick --only latency --size 64 --repeat 5    # one table, median of 5

Processes are pinned to two CPUs (--cpus A,B). Topics live in a directory
under --dir (default /dev/shm/shmq): keep it on a tmpfs, or page faults
from write-back show up in the tail percentiles. See docs/BENCHMARKS.md.")]
    Bench {
        /// Fewer rounds and bytes (about a minute)
        #[arg(long)]
        quick: bool,
        /// Print JSON instead of tables
        #[arg(long)]
        json: bool,
        /// The two CPUs to pin the processes to
        #[arg(long, default_value = "0,1")]
        cpus: String,
        /// A C ping-pong binary (ffi/examples/pingpong.c) to measure the C API
        #[arg(long, value_name = "PATH")]
        c_pingpong: Option<PathBuf>,
        /// Run only these sections
        #[arg(long, value_delimiter = ',', value_name = "SECTION")]
        only: Vec<BenchSection>,
        /// Run only these message sizes (bytes; e.g. 64,4KiB)
        #[arg(long = "size", value_delimiter = ',', value_name = "BYTES", value_parser = units::parse_size)]
        sizes: Vec<u64>,
        /// Run every measurement N times, interleaved, and report the median
        #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: u32,
        /// Also write the JSON report to this file (tables still on stdout)
        #[arg(long, value_name = "PATH")]
        json_out: Option<PathBuf>,
    },
    /// (internal) the child side of a benchmark
    #[command(hide = true)]
    BenchChild { args: Vec<String> },
    /// Print a shell completion script
    #[command(after_help = "Example:\n  shmq completions bash > ~/.local/share/bash-completion/completions/shmq")]
    Completions { shell: clap_complete::Shell },
}

/// An error with the exit code it maps to.
struct Fail(u8, String);

impl From<OpenError> for Fail {
    fn from(e: OpenError) -> Fail {
        let code = match e {
            OpenError::NotFound { .. } => EXIT_NOT_FOUND,
            OpenError::InvalidName { .. } | OpenError::InvalidOptions(_) => EXIT_USAGE,
            _ => EXIT_RUNTIME,
        };
        Fail(code, e.to_string())
    }
}

fn fail(msg: impl Into<String>) -> Fail {
    Fail(EXIT_RUNTIME, msg.into())
}

/// A subscribe error; asking for something the topic cannot do (replay by
/// time without timestamps) is a usage error.
fn sub_fail(e: shmq::SubscribeError) -> Fail {
    let code = if e == shmq::SubscribeError::NoTimestamps { EXIT_USAGE } else { EXIT_RUNTIME };
    Fail(code, e.to_string())
}

type R = Result<(), Fail>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = cli.dir.clone().unwrap_or_else(shmq::default_dir);
    let opts = Options::new().dir(&dir);
    let res = match cli.cmd {
        Cmd::Ls { json } => ls(&dir, &opts, json),
        Cmd::Info { topic, json } => info(&topic, &opts, json),
        Cmd::Tail { topic, follow, lines, from, format, count, subscribe, durable, group } => {
            tail(&topic, &opts, follow, lines, from, format, count, subscribe, durable, group)
        }
        Cmd::Pub { topic, messages, stdin, file, timeout, r#type } => {
            publish(&topic, &opts, messages, stdin, file, timeout, r#type)
        }
        Cmd::Create { topic, capacity, max_message, policy, max_subscribers, multi_producer, mode, timestamps } => {
            create(
                &topic,
                opts.timestamps(timestamps),
                capacity,
                max_message,
                policy,
                max_subscribers,
                multi_producer,
                &mode,
            )
        }
        Cmd::Rm { topics, force } => rm(&dir, &opts, &topics, force),
        Cmd::Gc { dry_run } => gc(&dir, &opts, dry_run),
        Cmd::Repair { topic } => repair(&topic, &opts),
        Cmd::Watch { topics, interval, once, json } => watch(&dir, &opts, &topics, interval, once, json),
        Cmd::Bench { quick, json, cpus, c_pingpong, only, sizes, repeat, json_out } => {
            bench_plan(&dir, quick, &cpus, &only, &sizes, repeat, json_out)
                .and_then(|plan| bench::run(plan, json, c_pingpong).map_err(fail))
        }
        Cmd::BenchChild { args } => bench::child(&args).map_err(fail),
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "shmq", &mut std::io::stdout());
            Ok(())
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code, msg)) => {
            eprintln!("shmq: {msg}");
            ExitCode::from(code)
        }
    }
}

/// The bench's plan from its arguments (a usage error for bad ones).
fn bench_plan(
    dir: &Path,
    quick: bool,
    cpus: &str,
    only: &[BenchSection],
    sizes: &[u64],
    repeat: u32,
    json_out: Option<PathBuf>,
) -> Result<bench::Plan, Fail> {
    let (a, b) = match cpus.split(',').map(|c| c.trim().parse::<usize>()).collect::<Vec<_>>()[..] {
        [Ok(a), Ok(b)] => (a, b),
        _ => return Err(Fail(EXIT_USAGE, format!("invalid --cpus {cpus:?}: expected two CPU numbers, e.g. 0,1"))),
    };
    if let Some(e) = sizes.iter().find_map(|&s| bench::check_size(s).err()) {
        return Err(Fail(EXIT_USAGE, e));
    }
    let only = only
        .iter()
        .map(|s| match s {
            BenchSection::Latency => "latency",
            BenchSection::Throughput => "throughput",
            BenchSection::Fanout => "fanout",
        })
        .map(String::from)
        .collect();
    let sizes = sizes.iter().map(|&s| s as usize).collect();
    Ok(bench::Plan { quick, cpus: (a, b), dir: dir.to_path_buf(), only, sizes, repeat: repeat as usize, json_out })
}

// ---------------------------------------------------------------- listing

/// Topic names in `dir` (visible files), sorted, and hidden temporary
/// files left by creators.
fn scan_dir(dir: &Path) -> Result<(Vec<String>, Vec<String>), Fail> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Fail(EXIT_NOT_FOUND, format!("topic directory {} does not exist (no topics yet?)", dir.display()))
        } else {
            fail(format!("cannot read {}: {e}", dir.display()))
        }
    })?;
    let (mut names, mut temps) = (Vec::new(), Vec::new());
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            if name.ends_with(".tmp") {
                temps.push(name);
            }
        } else {
            names.push(name);
        }
    }
    names.sort();
    temps.sort();
    Ok((names, temps))
}

fn worst_lag(i: &TopicInfo) -> u64 {
    i.subscribers.iter().map(|s| s.lag_bytes).max().unwrap_or(0)
}

fn info_json(i: &TopicInfo, users: &[u32]) -> J {
    J::O(vec![
        ("name", J::s(&i.name)),
        ("capacity", J::U(i.capacity)),
        ("max_message", J::U(i.max_message as u64)),
        ("max_subscribers", J::U(i.max_subscribers as u64)),
        ("policy", J::s(i.policy.to_string())),
        ("multi_producer", J::Bool(i.multi_producer)),
        ("timestamps", J::Bool(i.timestamps)),
        ("created_unix_ns", J::U(i.created_unix_ns)),
        ("creator_pid", J::U(i.creator_pid as u64)),
        ("producer_pid", J::opt_u(i.producer_pid.map(u64::from))),
        ("published_messages", J::U(i.published_messages)),
        ("published_bytes", J::U(i.published_bytes)),
        ("tail_position", J::U(i.tail)),
        ("producer_waits", J::U(i.producer_waits)),
        ("reaped_subscribers", J::U(i.reaped)),
        ("repaired_frames", J::U(i.repaired)),
        ("users", J::A(users.iter().map(|&p| J::U(p as u64)).collect())),
        ("stale", J::Bool(users.is_empty())),
        (
            "subscribers",
            J::A(
                i.subscribers
                    .iter()
                    .map(|s| {
                        J::O(vec![
                            ("slot", J::U(s.slot as u64)),
                            ("name", J::s(&s.name)),
                            ("pid", J::U(s.pid as u64)),
                            ("alive", J::Bool(s.alive)),
                            ("durable", J::Bool(s.durable)),
                            ("kind", J::s(s.kind.to_string())),
                            ("cursor", J::U(s.cursor)),
                            ("lag_bytes", J::U(s.lag_bytes)),
                            ("lag_messages", J::U(s.lag_messages)),
                            ("received", J::U(s.received)),
                            ("lost", J::U(s.lost)),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

fn ls(dir: &Path, opts: &Options, json: bool) -> R {
    let (names, temps) = scan_dir(dir)?;
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for name in &names {
        match Topic::open_read_only(name, opts) {
            Ok(t) => {
                let i = t.info();
                let users = t.users();
                out.push(info_json(&i, &users));
                rows.push(vec![
                    name.clone(),
                    units::human(i.capacity),
                    i.policy.to_string(),
                    if i.multi_producer { "multi" } else { "single" }.into(),
                    format!("{}/{}", i.subscribers.len(), i.max_subscribers),
                    i.published_messages.to_string(),
                    units::human(worst_lag(&i)),
                    if users.is_empty() { "stale".into() } else { format!("{} users", users.len()) },
                ]);
            }
            Err(e) => {
                out.push(J::O(vec![("name", J::s(name)), ("error", J::s(e.to_string()))]));
                rows.push(vec![
                    name.clone(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    format!("unreadable: {e}"),
                ]);
            }
        }
    }
    if json {
        println!("{}", J::A(out));
        return Ok(());
    }
    if rows.is_empty() {
        println!("no topics in {}", dir.display());
    } else {
        table(&["TOPIC", "CAPACITY", "POLICY", "PRODUCER", "SUBS", "PUBLISHED", "WORST LAG", "STATE"], &rows);
    }
    if !temps.is_empty() {
        println!("{} unfinished topic file(s) from interrupted creations: `shmq gc` removes them", temps.len());
    }
    Ok(())
}

fn table(head: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = w[i])).collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

fn info(topic: &str, opts: &Options, json: bool) -> R {
    let t = Topic::open_read_only(topic, opts)?;
    let i = t.info();
    let users = t.users();
    if json {
        println!("{}", info_json(&i, &users));
        return Ok(());
    }
    let now_unix = shmq::__private::sys::unix_ns();
    println!("topic        {}  ({})", i.name, t.path().display());
    println!(
        "layout       version {}, capacity {}, max message {}",
        shmq::layout::VERSION,
        units::human(i.capacity),
        units::human(i.max_message as u64)
    );
    println!(
        "policy       {}, {} producer, {}",
        i.policy,
        if i.multi_producer { "multi" } else { "single" },
        if i.timestamps { "messages timestamped" } else { "no timestamps" }
    );
    println!(
        "created      {} s ago by pid {}",
        now_unix.saturating_sub(i.created_unix_ns) / 1_000_000_000,
        i.creator_pid
    );
    match i.producer_pid {
        Some(p) => println!(
            "producer     pid {p} ({})",
            if shmq::__private::sys::is_alive(p, 0) { "alive" } else { "dead: `shmq repair` recovers" }
        ),
        None if i.multi_producer => {
            println!("producer     (multi-producer topics do not register producers)")
        }
        None => println!("producer     none attached"),
    }
    println!("published    {} messages, {}", i.published_messages, units::human(i.published_bytes));
    println!(
        "counters     producer waits {}, reaped subscribers {}, repaired frames {}",
        i.producer_waits, i.reaped, i.repaired
    );
    println!("users        {}", if users.is_empty() { "none (stale)".to_string() } else { format!("{users:?}") });
    if i.subscribers.is_empty() {
        println!("subscribers  none ({} slots)", i.max_subscribers);
        return Ok(());
    }
    println!("subscribers  {} of {} slots:", i.subscribers.len(), i.max_subscribers);
    let rows: Vec<Vec<String>> = i
        .subscribers
        .iter()
        .map(|s| {
            vec![
                s.slot.to_string(),
                if s.name.is_empty() { "-".into() } else { s.name.clone() },
                s.pid.to_string(),
                match (s.kind, s.alive) {
                    (shmq::SlotKind::Group, _) => "group".into(),
                    (shmq::SlotKind::Member, true) => "alive, member".into(),
                    (shmq::SlotKind::Member, false) => "DEAD member".into(),
                    (shmq::SlotKind::Durable, true) => "alive, durable".into(),
                    (shmq::SlotKind::Durable, false) => "detached, durable".into(),
                    (_, true) => "alive".into(),
                    (_, false) => "DEAD".into(),
                },
                s.cursor.to_string(),
                units::human(s.lag_bytes),
                s.lag_messages.to_string(),
                s.received.to_string(),
                s.lost.to_string(),
            ]
        })
        .collect();
    table(&["SLOT", "NAME", "PID", "STATE", "CURSOR", "LAG", "LAG MSGS", "RECEIVED", "LOST"], &rows);
    Ok(())
}

// ---------------------------------------------------------------- tail

struct Printer {
    format: Format,
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

impl Printer {
    fn message(&mut self, data: &[u8], seq: u64, pos: u64, ts: u64, ty: u32) -> std::io::Result<()> {
        let o = &mut self.out;
        match self.format {
            Format::Text => {
                let text: String = String::from_utf8_lossy(data)
                    .chars()
                    .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
                    .collect();
                writeln!(
                    o,
                    "{:>12}.{:06} #{seq} @{pos} type {ty} {}B  {text}",
                    ts / 1_000_000_000,
                    ts % 1_000_000_000 / 1000,
                    data.len()
                )?;
            }
            Format::Hex => {
                writeln!(o, "#{seq} @{pos} type {ty} {} bytes, t={ts}", data.len())?;
                for (i, chunk) in data.chunks(16).enumerate() {
                    let ascii: String = chunk
                        .iter()
                        .map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' })
                        .collect();
                    let hx: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
                    writeln!(o, "  {:08x}  {:<48} {ascii}", i * 16, hx.join(" "))?;
                }
            }
            Format::Json => {
                let v = J::O(vec![
                    ("seq", J::U(seq)),
                    ("position", J::U(pos)),
                    ("timestamp_ns", J::U(ts)),
                    ("type", J::U(ty as u64)),
                    ("len", J::U(data.len() as u64)),
                    ("text", std::str::from_utf8(data).map_or(J::Null, J::s)),
                    ("hex", J::S(hex(data))),
                ]);
                writeln!(o, "{v}")?;
            }
            Format::Raw => o.write_all(data)?,
        }
        Ok(())
    }

    fn gap(&mut self, messages: Option<u64>, bytes: u64) -> std::io::Result<()> {
        let what = messages.map_or_else(|| format!("{bytes} bytes"), |m| format!("{m} messages ({bytes} bytes)"));
        match self.format {
            Format::Json => {
                writeln!(self.out, "{}", J::O(vec![("gap_messages", J::opt_u(messages)), ("gap_bytes", J::U(bytes))]))
            }
            Format::Raw => {
                eprintln!("shmq: gap: {what} overwritten before tail read them");
                Ok(())
            }
            _ => writeln!(self.out, "-- gap: {what} overwritten before tail read them --"),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn tail(
    topic: &str,
    opts: &Options,
    follow: bool,
    lines: usize,
    from: Option<FromArg>,
    format: Format,
    count: Option<u64>,
    subscribe: bool,
    durable: Option<String>,
    group: Option<String>,
) -> R {
    let mut p = Printer { format, out: std::io::BufWriter::new(std::io::stdout().lock()) };
    let io = |e: std::io::Error| fail(format!("writing output: {e}"));
    let limit = count.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    if subscribe || durable.is_some() || group.is_some() {
        let t = Topic::open(topic, opts)?;
        if (durable.is_some() || group.is_some()) && from.is_some() {
            return Err(Fail(
                EXIT_USAGE,
                "--durable and --group resume where they stopped; they take no --from".into(),
            ));
        }
        let mut sub = match (&durable, &group) {
            (Some(name), _) => t.subscribe_durable(name),
            (_, Some(g)) => t.subscribe_group(g),
            _ => t.subscribe_with(from.map_or(Start::Newest, FromArg::start), "shmq tail"),
        }
        .map_err(sub_fail)?;
        while printed < limit {
            match sub.recv_timeout(Duration::from_millis(200)) {
                Ok(m) => {
                    p.message(&m, m.seq(), m.position(), m.timestamp_ns(), m.msg_type()).map_err(io)?;
                    printed += 1;
                }
                Err(RecvError::Lagged(n)) => p.gap(Some(n), 0).map_err(io)?,
                Err(RecvError::Timeout) => {
                    p.out.flush().map_err(io)?;
                    if !follow {
                        break;
                    }
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        p.out.flush().map_err(io)?;
        return Ok(());
    }
    let t = Topic::open_read_only(topic, opts)?;
    let mut tail = t.tail(from.map_or(Start::Oldest, FromArg::start)).map_err(sub_fail)?;
    if from.is_none() {
        // The last `lines` messages the ring holds.
        let mut last: std::collections::VecDeque<(Vec<u8>, u64, u64, u64, u32)> = std::collections::VecDeque::new();
        loop {
            match tail.next_event() {
                Ok(Some(TailEvent::Message(m))) => {
                    last.push_back((m.data.to_vec(), m.seq, m.position, m.timestamp_ns, m.msg_type));
                    if last.len() > lines {
                        last.pop_front();
                    }
                }
                Ok(Some(TailEvent::Gap { .. })) => {}
                Ok(None) => break,
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        for (d, seq, pos, ts, ty) in last {
            if printed >= limit {
                break;
            }
            p.message(&d, seq, pos, ts, ty).map_err(io)?;
            printed += 1;
        }
    }
    let mut idle = 0u32;
    while printed < limit {
        match tail.next_event() {
            Ok(Some(TailEvent::Message(m))) => {
                p.message(m.data, m.seq, m.position, m.timestamp_ns, m.msg_type).map_err(io)?;
                printed += 1;
                idle = 0;
            }
            Ok(Some(TailEvent::Gap { messages, bytes })) => p.gap(messages, bytes).map_err(io)?,
            Ok(None) => {
                p.out.flush().map_err(io)?;
                if !follow {
                    break;
                }
                // Passive readers cannot register for wake-ups (that would
                // write to the ring): poll, backing off to 10 ms.
                idle = (idle + 1).min(10);
                std::thread::sleep(Duration::from_millis(idle as u64));
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    p.out.flush().map_err(io)
}

// ---------------------------------------------------------------- pub / create / rm / gc / repair

fn publish(
    topic: &str,
    opts: &Options,
    messages: Vec<String>,
    stdin: bool,
    file: Option<PathBuf>,
    timeout: Duration,
    ty: u32,
) -> R {
    let t = Topic::open(topic, opts)?;
    let mut p = t.producer().map_err(|e| fail(e.to_string()))?;
    let mut send = |data: &[u8]| -> R {
        let r = match p.reserve_timeout(data.len(), timeout) {
            Ok(mut g) => {
                g[..data.len()].copy_from_slice(data);
                g.set_type(ty);
                g.commit(data.len())
            }
            Err(e) => Err(e),
        };
        r.map_err(|e| match e {
            PublishError::Full => fail(format!(
                "topic {topic} stayed full for {timeout:?}: its slowest subscriber is not reading \
                 (see `shmq info {topic}`; `shmq repair {topic}` reclaims dead ones)"
            )),
            e => fail(e.to_string()),
        })
    };
    let mut n = 0u64;
    if let Some(f) = file {
        let data = std::fs::read(&f).map_err(|e| fail(format!("reading {}: {e}", f.display())))?;
        send(&data)?;
        n += 1;
    } else if stdin {
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| fail(format!("reading standard input: {e}")))?;
            send(line.as_bytes())?;
            n += 1;
        }
    } else {
        if messages.is_empty() {
            return Err(Fail(EXIT_USAGE, "nothing to publish: give MESSAGE arguments, --stdin or --file".into()));
        }
        for m in &messages {
            send(m.as_bytes())?;
            n += 1;
        }
    }
    eprintln!("published {n} message(s) to {topic}");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn create(
    topic: &str,
    opts: Options,
    capacity: u64,
    max_message: Option<u64>,
    policy: PolicyArg,
    subs: u32,
    multi: bool,
    mode: &str,
) -> R {
    let mode = u32::from_str_radix(mode.trim_start_matches("0o"), 8)
        .map_err(|_| Fail(EXIT_USAGE, format!("invalid --mode {mode:?}: expected octal, e.g. 0660")))?;
    let mut o = opts.capacity(capacity).max_subscribers(subs).multi_producer(multi).mode(mode).policy(match policy {
        PolicyArg::Block => Policy::Block,
        PolicyArg::Overwrite => Policy::Overwrite,
    });
    if let Some(m) = max_message {
        o = o.max_message(u32::try_from(m).map_err(|_| fail("--max-message is too large"))?);
    }
    let t = Topic::create(topic, &o)?;
    println!(
        "created {} ({} ring, max message {}, {}, {} slots{})",
        t.path().display(),
        units::human(t.capacity()),
        units::human(t.max_message() as u64),
        t.policy(),
        t.max_subscribers(),
        if t.info().timestamps { ", timestamps" } else { "" }
    );
    Ok(())
}

fn rm(dir: &Path, opts: &Options, topics: &[String], force: bool) -> R {
    let mut result = Ok(());
    for name in topics {
        let users = match Topic::open_read_only(name, opts) {
            Ok(t) => t.users(),
            Err(OpenError::NotFound { .. }) => {
                eprintln!("shmq: topic {name} not found in {}", dir.display());
                result = Err(Fail(EXIT_NOT_FOUND, format!("{name}: not found")));
                continue;
            }
            Err(_) => Vec::new(), // corrupt or foreign files can be removed
        };
        if !users.is_empty() && !force {
            eprintln!("shmq: {name} is in use by pid(s) {users:?}; stop them first or use --force");
            result = Err(fail(format!("{name}: in use")));
            continue;
        }
        Topic::unlink_in(dir, name)?;
        println!("removed {name}");
    }
    result
}

fn temp_creator(name: &str) -> Option<u32> {
    // .NAME.PID.NANOS.tmp
    let parts: Vec<&str> = name.trim_end_matches(".tmp").rsplitn(3, '.').collect();
    parts.get(1)?.parse().ok()
}

fn gc(dir: &Path, opts: &Options, dry_run: bool) -> R {
    let (names, temps) = scan_dir(dir)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut n = 0;
    for name in names {
        let Ok(t) = Topic::open_read_only(&name, opts) else {
            println!("kept {name}: not a readable shmq topic");
            continue;
        };
        let users = t.users();
        // Live subscribers, and durable ones that will come back.
        let live_subs =
            t.info().subscribers.iter().filter(|s| s.alive || s.durable || s.kind == shmq::SlotKind::Group).count();
        drop(t);
        if users.is_empty() && live_subs == 0 {
            if !dry_run {
                Topic::unlink_in(dir, &name)?;
            }
            println!("{verb} {name}: no live process uses it");
            n += 1;
        }
    }
    for tmp in temps {
        let dead = temp_creator(&tmp).is_none_or(|pid| shmq::__private::sys::process_start(pid).is_none());
        if dead {
            if !dry_run {
                std::fs::remove_file(dir.join(&tmp)).map_err(|e| fail(format!("removing {tmp}: {e}")))?;
            }
            println!("{verb} {tmp}: left by a creation that never finished");
            n += 1;
        }
    }
    if n == 0 {
        println!("nothing to remove");
    }
    Ok(())
}

fn repair(topic: &str, opts: &Options) -> R {
    let t = Topic::open(topic, opts)?;
    let dead: Vec<u32> = t
        .info()
        .subscribers
        .iter()
        .filter(|s| !s.alive && matches!(s.kind, shmq::SlotKind::Subscriber))
        .map(|s| s.pid)
        .collect();
    let (reaped, repaired) = t.repair();
    println!(
        "{topic}: reclaimed {reaped} dead subscriber slot(s){}; repaired {repaired} stuck frame(s)",
        if dead.is_empty() { String::new() } else { format!(" (pids {dead:?})") }
    );
    Ok(())
}

// ---------------------------------------------------------------- watch

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

fn watch(dir: &Path, opts: &Options, topics: &[String], interval: Duration, once: bool, json: bool) -> R {
    if once {
        let a = sample(dir, opts, topics)?;
        std::thread::sleep(interval);
        let b = sample(dir, opts, topics)?;
        let r = rates(&a, &b);
        if json {
            let v: Vec<J> = r
                .iter()
                .map(|(i, m, by)| {
                    J::O(vec![
                        ("name", J::s(&i.name)),
                        ("interval_s", J::F(b.at.duration_since(a.at).as_secs_f64())),
                        ("messages_per_s", J::F(*m)),
                        ("bytes_per_s", J::F(*by)),
                        ("published_messages", J::U(i.published_messages)),
                        ("subscribers", J::U(i.subscribers.len() as u64)),
                        ("worst_lag_bytes", J::U(worst_lag(i))),
                        ("lost", J::U(i.subscribers.iter().map(|s| s.lost).sum())),
                    ])
                })
                .collect();
            println!("{}", J::A(v));
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

extern "C" fn on_sigint(_: libc::c_int) {
    QUIT.store(true, std::sync::atomic::Ordering::SeqCst);
}

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
