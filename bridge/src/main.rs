//! `shmq-bridge`: carries shmq topics across hosts over NATS JetStream.
//!
//! ```text
//!  host A                                              host B
//!  producer ─▶ topic ─▶ [out] ══ JetStream stream ══▶ [in] ─▶ topic ─▶ subscribers
//!              (durable   publish, Nats-Msg-Id,       pull consumer,
//!               subscriber; release after the         ack after the local
//!               stream's ack)                         publish; applied
//!                                                     record beside the topic
//! ```
//!
//! - [`outbound`]: reads the topic ahead through a durable subscriber,
//!   publishes a window of messages, releases each only once JetStream
//!   has acknowledged it and everything before it.
//! - [`inbound`]: a durable pull consumer; each message is published into
//!   the local topic, recorded ([`record`]), then acknowledged.
//! - [`status`]: counters, the status file `shmq bridge status` reads, the
//!   progress line.
//!
//! docs/BRIDGE.md has the guarantees and the failure behaviour.

mod cli;
mod conn;
mod inbound;
mod outbound;
mod record;
mod resync;
mod status;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::sync::watch;

use cli::{Cli, Cmd};
use status::{Stats, StatusFile};

const EXIT_RUNTIME: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NOT_FOUND: u8 = 3;

/// Why the bridge stops: an exit code and what to tell the user.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub msg: String,
}

impl Fail {
    pub fn runtime(msg: impl Into<String>) -> Fail {
        Fail { code: EXIT_RUNTIME, msg: msg.into() }
    }
    pub fn usage(msg: impl Into<String>) -> Fail {
        Fail { code: EXIT_USAGE, msg: msg.into() }
    }
    pub fn open(topic: &str, e: shmq::OpenError) -> Fail {
        let code = if matches!(e, shmq::OpenError::NotFound { .. }) { EXIT_NOT_FOUND } else { EXIT_RUNTIME };
        Fail { code, msg: format!("topic {topic:?}: {e}") }
    }
}

/// Set to `true` once SIGINT or SIGTERM arrives.
pub type Stop = watch::Receiver<bool>;

/// Sleeps `d` (a back-off); true if a stop came first.
pub async fn wait_or_stop(d: Duration, stop: &mut Stop) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.changed() => true,
    }
}

/// The topic directory: `--dir`, else $SHMQ_DIR, else the library's default.
fn topic_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(shmq::default_dir)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = topic_dir(cli.dir);
    let r = match cli.cmd {
        Cmd::Status { json } => status::read_all(&dir).map(|s| status::print(&s, json)).map_err(Fail::runtime),
        Cmd::Out(a) => run(&dir, a.nats.clone(), "out", a.topic.clone(), a.to.clone(), |stats, stop| {
            outbound::run(a, dir.clone(), stats, stop)
        }),
        Cmd::In(a) => run(&dir, a.nats.clone(), "in", a.topic.clone(), a.from.clone(), |stats, stop| {
            inbound::run(a, dir.clone(), stats, stop)
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("shmq-bridge: {}", f.msg);
            ExitCode::from(f.code)
        }
    }
}

/// Runs one direction on a single-threaded runtime (the topic side runs on
/// its own thread where it blocks), with the status file, the progress
/// line and the signals around it.
fn run<F, Fut>(
    dir: &std::path::Path,
    nats: cli::Nats,
    direction: &'static str,
    topic: String,
    server: String,
    body: F,
) -> Result<(), Fail>
where
    F: FnOnce(Arc<Stats>, Stop) -> Fut,
    Fut: std::future::Future<Output = Result<(), Fail>>,
{
    conn::check_subject(&nats.subject)?;
    check_durable(&nats.durable)?;
    conn::parse_urls(&server)?;
    let stream = nats.stream.clone().unwrap_or_else(|| conn::default_stream(&nats.subject));
    let ident = status::Ident {
        name: format!("{direction}-{topic}-{}", nats.durable),
        direction,
        topic,
        server,
        stream,
        subject: nats.subject.clone(),
    };
    let sf = Arc::new(StatusFile::create(dir, ident).map_err(Fail::runtime)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::runtime(format!("cannot start the runtime: {e}")))?;
    let stats = Arc::new(Stats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let progress = !nats.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let r = rt.block_on(async {
        tokio::spawn(signals(stop_tx));
        let reporter = tokio::spawn(report(stats.clone(), sf.clone(), progress));
        let r = body(stats.clone(), stop_rx).await;
        reporter.abort();
        r
    });
    if let Err(f) = &r {
        stats.error(&f.msg);
    }
    sf.write(&stats, if r.is_ok() { "stopped" } else { "failed" });
    if progress {
        eprintln!();
    }
    r
}

/// A durable name names a topic slot, a JetStream consumer and the
/// bridge's state files, so it is kept to what all three take.
fn check_durable(d: &str) -> Result<(), Fail> {
    let ok = !d.is_empty() && d.len() <= 32 && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Fail::usage(format!("durable name {d:?}: 1 to 32 of A-Z, a-z, 0-9, '_' and '-'")))
    }
}

async fn signals(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        eprintln!("shmq-bridge: cannot install signal handlers; stop it with SIGKILL");
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let _ = stop.send(true);
}

async fn report(stats: Arc<Stats>, sf: Arc<StatusFile>, progress: bool) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        sf.write(&stats, "running");
        if progress {
            eprint!("{}", status::progress_line(&sf.snapshot(&stats, "running")));
        }
    }
}
