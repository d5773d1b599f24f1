//! The inbound bridge's `--start` (where a new consumer begins) and
//! `--create` (the local topic made if missing), a local topic too small
//! for a message, and `shmq bridge` reaching this binary through the CLI.

mod common;
use common::*;

use std::path::Path;
use std::time::Duration;

/// Fills stream `S` (subject `opt.s`) with messages 0..10 through an out bridge.
fn stream_of_ten(s: &Scratch, url: &str) {
    let a = s.sub("host-a");
    let topic = shmq::Topic::create("src", &shmq::Options::new().dir(&a).capacity(1 << 20)).unwrap();
    topic.subscribe_durable("bridge").unwrap();
    let mut p = topic.producer().unwrap();
    let mut buf = Vec::new();
    for i in 0..10 {
        message(i, 100, &mut buf);
        p.publish(&buf).unwrap();
    }
    let mut out = Bridge::spawn(&[
        "--dir",
        a.to_str().unwrap(),
        "out",
        "src",
        "--to",
        url,
        "--subject",
        "opt.s",
        "--stream",
        "S",
        "--create-stream",
        "-q",
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stream_state(url, "S").0 < 10 {
        assert!(std::time::Instant::now() < deadline, "the stream never held 10");
        std::thread::sleep(Duration::from_millis(50));
    }
    out.signal(libc::SIGTERM);
    assert!(out.wait(Duration::from_secs(20)).0.success());
}

/// Runs an inbound bridge into `dir`/`topic` (created by it) until `want`
/// messages arrived there; returns their indexes.
fn inbound(dir: &Path, url: &str, topic: &str, start: &str, want: usize) -> Vec<u64> {
    let durable = format!("d-{topic}");
    let mut b = Bridge::spawn(&[
        "--dir",
        dir.to_str().unwrap(),
        "in",
        topic,
        "--from",
        url,
        "--subject",
        "opt.s",
        "--stream",
        "S",
        "--start",
        start,
        "--durable",
        &durable,
        "--create",
        "--capacity",
        "1MiB",
        "--max-message",
        "4KiB",
        "-q",
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let t = loop {
        match shmq::Topic::open(topic, &shmq::Options::new().dir(dir)) {
            Ok(t) => break t,
            Err(_) => {
                assert!(std::time::Instant::now() < deadline, "--create made no topic");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let mut sub = t.subscribe_from_oldest().unwrap();
    let mut got = Vec::new();
    let mut buf = Vec::new();
    while got.len() < want {
        let m = sub.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|e| panic!("{start}: after {got:?}: {e}"));
        let i = u64::from_le_bytes(m[..8].try_into().unwrap());
        check(i, 100, &m, &mut buf);
        got.push(i);
    }
    assert!(sub.recv_timeout(Duration::from_millis(300)).is_err(), "{start}: more than {want} arrived");
    b.signal(libc::SIGINT);
    let (st, err) = b.wait(Duration::from_secs(20));
    assert!(st.success(), "SIGINT stops it cleanly: {st} {err}");
    got
}

#[test]
fn start_and_create_choose_where_a_new_consumer_begins() {
    let s = Scratch::new("start");
    let server = Server::start(&s.0);
    let url = server.url();
    stream_of_ten(&s, &url);
    let b = s.sub("host-b");
    assert_eq!(inbound(&b, &url, "all", "all", 10), (0..10).collect::<Vec<_>>());
    assert_eq!(inbound(&b, &url, "seq6", "seq:6", 5), (5..10).collect::<Vec<_>>(), "stream sequence 6 is message 5");
    assert_eq!(inbound(&b, &url, "hour", "time:-1h", 10), (0..10).collect::<Vec<_>>());
    assert_eq!(inbound(&b, &url, "new", "new", 0), Vec::<u64>::new());
    // A bridge that ran before goes on after what it applied, whatever
    // --start says: the topic holds the ten from its first run, no more.
    assert_eq!(inbound(&b, &url, "all", "new", 10), (0..10).collect::<Vec<_>>());
}

#[test]
fn a_stream_message_larger_than_the_topic_takes_stops_the_bridge_unacknowledged() {
    let s = Scratch::new("small-topic");
    let server = Server::start(&s.0);
    let url = server.url();
    stream_of_ten(&s, &url);
    let b = s.sub("host-b");
    shmq::Topic::create("tiny", &shmq::Options::new().dir(&b).capacity(4096).max_message(16)).unwrap();
    let (code, err) = run_bridge(
        &["--dir", b.to_str().unwrap(), "in", "tiny", "--from", &url, "--subject", "opt.s", "--stream", "S", "-q"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("stream sequence 1") && err.contains("unacknowledged"), "{err}");
}

#[test]
fn the_shmq_cli_runs_the_bridge() {
    // `shmq` is built beside `shmq-bridge` by the workspace build.
    let shmq = Path::new(env!("CARGO_BIN_EXE_shmq-bridge")).with_file_name("shmq");
    assert!(shmq.is_file(), "build the workspace first: {} is missing", shmq.display());
    let s = Scratch::new("cli");
    let out = std::process::Command::new(&shmq)
        .args(["--dir", s.0.to_str().unwrap(), "bridge", "status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(), serde_json::json!([]));
    let out = std::process::Command::new(&shmq).args(["bridge", "out"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error from shmq-bridge itself");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--to"));
}
