//! `shmq`: see and drive shmq topics. `shmq --help`, and docs/CLI.md.
//!
//! Exit codes: 0 ok, 1 runtime error, 2 usage error (bad arguments, topic
//! names or options), 3 topic not found.
//! Inspection (`ls`, `info`, `tail` without `--subscribe`, `watch`) maps
//! topics read-only and never changes a ring.

mod bench;
mod create;
mod gc;
mod info;
mod ls;
mod output;
mod publish;
mod repair;
mod rm;
mod tail;
mod units;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use shmq::{OpenError, Options, Start};

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
        /// The stream counts as closed once its last producer is gone (exit,
        /// crash or SIGKILL): subscribers then end instead of waiting
        #[arg(long)]
        close_on_exit: bool,
    },
    /// End of stream: subscribers receive what was published, then end
    #[command(after_help = "Example:
  shmq close md.quotes   # tail -f and every subscriber end after the last message

A producer that publishes again reopens the stream.")]
    Close { topic: String },
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
    /// Carry topics across hosts over NATS JetStream (runs `shmq-bridge`)
    #[command(
        disable_help_flag = true,
        after_help = "Runs the shmq-bridge binary (beside this one, else on PATH) with these arguments;\n`shmq bridge --help` shows its help. See docs/BRIDGE.md."
    )]
    Bridge {
        /// out | in | status, and their options
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
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
        only: Vec<bench::Section>,
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

/// `shmq bridge ...`: replaces this process with `shmq-bridge` (so tokio
/// and async-nats stay out of this binary), found beside this executable,
/// else on PATH. Returns only if the exec failed.
fn bridge(dir: Option<&Path>, args: &[std::ffi::OsString]) -> Result<(), Fail> {
    use std::os::unix::process::CommandExt;
    let beside = std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("shmq-bridge")));
    let exe = beside.filter(|p| p.is_file()).unwrap_or_else(|| PathBuf::from("shmq-bridge"));
    let mut cmd = std::process::Command::new(&exe);
    if let Some(d) = dir {
        cmd.arg("--dir").arg(d);
    }
    let e = cmd.args(args).exec();
    Err(Fail(
        EXIT_RUNTIME,
        format!("cannot run {} ({e}); build it with `cargo build --release -p shmq-bridge`", exe.display()),
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = cli.dir.clone().unwrap_or_else(shmq::default_dir);
    let opts = Options::new().dir(&dir);
    let res = match cli.cmd {
        Cmd::Ls { json } => ls::run(&dir, &opts, json),
        Cmd::Info { topic, json } => info::run(&topic, &opts, json),
        Cmd::Tail { topic, follow, lines, from, format, count, subscribe, durable, group } => {
            tail::run(&topic, &opts, follow, lines, from, format, count, subscribe, durable, group)
        }
        Cmd::Pub { topic, messages, stdin, file, timeout, r#type } => {
            publish::run(&topic, &opts, messages, stdin, file, timeout, r#type)
        }
        Cmd::Create {
            topic,
            capacity,
            max_message,
            policy,
            max_subscribers,
            multi_producer,
            mode,
            timestamps,
            close_on_exit,
        } => create::run(
            &topic,
            opts.timestamps(timestamps).close_on_exit(close_on_exit),
            capacity,
            max_message,
            policy,
            max_subscribers,
            multi_producer,
            &mode,
        ),
        Cmd::Rm { topics, force } => rm::run(&dir, &opts, &topics, force),
        Cmd::Gc { dry_run } => gc::run(&dir, &opts, dry_run),
        Cmd::Repair { topic } => repair::run(&topic, &opts),
        Cmd::Close { topic } => repair::close(&topic, &opts),
        Cmd::Watch { topics, interval, once, json } => watch::run(&dir, &opts, &topics, interval, once, json),
        Cmd::Bridge { args } => bridge(cli.dir.as_deref(), &args),
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
    only: &[bench::Section],
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
    let only = only.to_vec();
    let sizes = sizes.iter().map(|&s| s as usize).collect();
    Ok(bench::Plan { quick, cpus: (a, b), dir: dir.to_path_buf(), only, sizes, repeat: repeat as usize, json_out })
}
