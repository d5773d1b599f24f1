//! The command line: `shmq-bridge out|in|status` (also reached as
//! `shmq bridge ...`, which execs this binary).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

// Sizes and durations read as the `shmq` CLI reads them: one definition.
#[allow(dead_code)] // `human` is the CLI's only
#[path = "../../src/bin/shmq/units.rs"]
mod units;
pub use units::{parse_duration, parse_size as parse_bytes};

#[derive(Parser, Debug)]
#[command(name = "shmq-bridge", version, about = "Carry shmq topics across hosts over NATS JetStream")]
#[command(after_help = "Examples:
  shmq bridge out md.quotes --to nats://10.0.0.5:4222 --subject md.quotes --create-stream
  shmq bridge in md.quotes --from nats://10.0.0.5:4222 --stream MD --subject md.quotes --create
  shmq bridge status --json

Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 topic not found.
See docs/BRIDGE.md for the guarantees and the failure behaviour.")]
pub struct Cli {
    /// Topic directory (default: $SHMQ_DIR, else /dev/shm/shmq)
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Read a topic as a durable subscriber and publish it to a JetStream stream
    Out(OutArgs),
    /// Consume a JetStream stream and publish it into a local topic
    In(InArgs),
    /// Show the bridges of the topic directory: in flight, acknowledged, errors
    Status {
        /// Print JSON (an array, one object per bridge)
        #[arg(long)]
        json: bool,
    },
}

/// What both directions share: the server and the stream.
#[derive(Args, Debug, Clone)]
pub struct Nats {
    /// JetStream stream name (default: SHMQ_ and the subject, '.' as '_')
    #[arg(long)]
    pub stream: Option<String>,
    /// Subject the messages travel on
    #[arg(long)]
    pub subject: String,
    /// Messages in flight: published and not yet acknowledged (out), or
    /// delivered and not yet applied (in)
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub window: u32,
    /// Seconds to wait for the first connection before giving up
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Name of this bridge's durable (the topic's durable subscriber for
    /// out, the JetStream consumer for in)
    #[arg(long, default_value = "bridge")]
    pub durable: String,
    /// No progress line on a terminal
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct OutArgs {
    /// The local topic to read
    pub topic: String,
    /// Server URL(s): nats://HOST:PORT[,nats://HOST:PORT...]
    #[arg(long, value_name = "URLS")]
    pub to: String,
    #[command(flatten)]
    pub nats: Nats,
    /// Create the stream if it does not exist (subjects: the --subject)
    #[arg(long)]
    pub create_stream: bool,
    /// Replicas of a stream created here (R1-R5)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: u8,
    /// Oldest age a created stream keeps (e.g. 24h; 0: no limit)
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub max_age: Duration,
    /// Most bytes a created stream keeps (e.g. 10GiB; 0: no limit)
    #[arg(long, default_value = "0", value_parser = parse_bytes)]
    pub max_bytes: u64,
    /// De-duplication window of a created stream
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub duplicate_window: Duration,
    /// Storage of a created stream
    #[arg(long, value_enum, default_value_t = StorageArg::File)]
    pub storage: StorageArg,
    /// When the window is full (server down or slow): `block` stops
    /// reading, so the topic holds a Block producer back; `drop` releases
    /// and counts what it cannot send
    #[arg(long, value_enum, default_value_t = OnDown::Block)]
    pub on_down: OnDown,
    /// With --on-down drop: how long a full window waits before dropping
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub drop_after: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct InArgs {
    /// The local topic to publish into
    pub topic: String,
    /// Server URL(s): nats://HOST:PORT[,nats://HOST:PORT...]
    #[arg(long, value_name = "URLS")]
    pub from: String,
    #[command(flatten)]
    pub nats: Nats,
    /// Where a new consumer starts: new, all, seq:N or time:-10m
    #[arg(long, default_value = "all", value_parser = parse_start)]
    pub start: StartAt,
    /// Create the local topic if it does not exist
    #[arg(long)]
    pub create: bool,
    /// Ring capacity of a topic created here
    #[arg(long, default_value = "64MiB", value_parser = parse_bytes)]
    pub capacity: u64,
    /// Largest message of a topic created here
    #[arg(long, default_value = "1MiB", value_parser = parse_bytes)]
    pub max_message: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum StorageArg {
    File,
    Memory,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OnDown {
    Block,
    Drop,
}

/// `--start`: where a consumer made for the first time begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    New,
    All,
    Seq(u64),
    /// This long before now.
    Ago(Duration),
}

fn parse_start(s: &str) -> Result<StartAt, String> {
    match s {
        "new" => Ok(StartAt::New),
        "all" => Ok(StartAt::All),
        _ => {
            if let Some(n) = s.strip_prefix("seq:") {
                let n: u64 = n.parse().map_err(|_| format!("bad sequence in {s:?}"))?;
                if n == 0 {
                    return Err("stream sequences start at 1".into());
                }
                Ok(StartAt::Seq(n))
            } else if let Some(t) = s.strip_prefix("time:-") {
                Ok(StartAt::Ago(parse_duration(t)?))
            } else {
                Err(format!("expected new, all, seq:N or time:-DURATION, got {s:?}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_help_shows() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_bytes("64KiB").unwrap(), 65536);
        assert_eq!(parse_start("seq:42").unwrap(), StartAt::Seq(42));
        assert_eq!(parse_start("time:-10m").unwrap(), StartAt::Ago(Duration::from_secs(600)));
        for bad in ["10x", "", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for bad in ["seq:0", "seq:x", "later", "time:10m"] {
            assert!(parse_start(bad).is_err(), "{bad}");
        }
        assert!(parse_bytes("99999999999TiB").is_err());
    }
}
