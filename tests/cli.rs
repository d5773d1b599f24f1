//! End-to-end tests of the `shmq` binary: each runs the built CLI against a
//! private topic directory.

mod common;
use common::TestDir;
use serde_json::Value;
use shmq::{Options, Topic};
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

fn shmq(d: &TestDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shmq")).arg("--dir").arg(d.path()).args(args).output().expect("run shmq")
}

fn ok(d: &TestDir, args: &[&str]) -> String {
    let o = shmq(d, args);
    assert!(o.status.success(), "shmq {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn json(d: &TestDir, args: &[&str]) -> Value {
    serde_json::from_str(&ok(d, args)).expect("valid JSON")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn create_pub_tail_round_trip() {
    let d = TestDir::new();
    ok(&d, &["create", "t", "--capacity", "64KiB", "--max-message", "1KiB"]);
    ok(&d, &["pub", "t", "hello", "wörld", "third"]);
    let out = ok(&d, &["tail", "--format", "json", "t"]);
    let msgs: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let texts: Vec<&str> = msgs.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["hello", "wörld", "third"]);
    assert_eq!(msgs[1]["seq"], 1);
    assert_eq!(msgs[1]["len"], "wörld".len());
    // -n limits to the last N; raw prints the bytes only.
    assert_eq!(ok(&d, &["tail", "-n", "1", "--format", "raw", "t"]), "third");
    // --stdin: one message per line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_shmq"))
        .arg("--dir")
        .arg(d.path())
        .args(["pub", "t", "--stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"l1\nl2\n").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(ok(&d, &["tail", "-n", "2", "--format", "raw", "t"]), "l1l2");
    let hex = ok(&d, &["tail", "-n", "1", "--format", "hex", "t"]);
    assert!(hex.contains("6c 32") && hex.contains("l2"), "{hex}");
}

#[test]
fn tail_follow_sees_a_separate_producer_process() {
    let d = TestDir::new();
    ok(&d, &["create", "t"]);
    ok(&d, &["pub", "t", "first"]);
    let mut tail = Command::new(env!("CARGO_BIN_EXE_shmq"))
        .arg("--dir")
        .arg(d.path())
        .args(["tail", "-f", "--from", "oldest", "--count", "3", "--format", "raw", "t"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Raw output has no separators; read what is there as it comes.
    let mut out = tail.stdout.take().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    use std::io::Read;
    while got.len() < 5 {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "tail exited early");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"first");
    // Now tail is following: another process publishes.
    ok(&d, &["pub", "t", "second", "third"]);
    out.read_to_end(&mut got).unwrap();
    assert!(tail.wait().unwrap().success());
    assert_eq!(String::from_utf8(got).unwrap(), "firstsecondthird");
}

#[test]
fn info_and_ls_json_carry_the_counters() {
    let d = TestDir::new();
    ok(&d, &["create", "t", "--capacity", "64KiB", "--policy", "overwrite", "--max-subscribers", "8"]);
    let topic = Topic::open("t", &Options::new().dir(d.path())).unwrap();
    let mut sub = topic.subscribe_with(shmq::Start::Newest, "reader-1").unwrap();
    ok(&d, &["pub", "t", "a", "bb", "ccc", "dddd", "eeeee"]);
    for _ in 0..2 {
        sub.try_recv().unwrap();
    }
    let v = json(&d, &["info", "t", "--json"]);
    assert_eq!(v["name"], "t");
    assert_eq!(v["capacity"], 65536);
    assert_eq!(v["policy"], "overwrite");
    assert_eq!(v["max_subscribers"], 8);
    assert_eq!(v["published_messages"], 5);
    assert_eq!(v["published_bytes"], 15);
    assert_eq!(v["stale"], false);
    assert_eq!(v["users"].as_array().unwrap().len(), 1); // this test process
    let s = &v["subscribers"][0];
    assert_eq!(s["name"], "reader-1");
    assert_eq!(s["pid"], std::process::id());
    assert_eq!(s["alive"], true);
    assert_eq!(s["received"], 2);
    assert_eq!(s["lag_messages"], 3);
    assert_eq!(s["lost"], 0);
    let l = json(&d, &["ls", "--json"]);
    assert_eq!(l.as_array().unwrap().len(), 1);
    assert_eq!(l[0]["published_messages"], 5);
    assert_eq!(l[0]["subscribers"].as_array().unwrap().len(), 1);
}

#[test]
fn killed_subscriber_shows_dead_and_repair_reclaims_it() {
    let d = TestDir::new();
    ok(&d, &["create", "t"]);
    ok(&d, &["pub", "t", "x"]);
    let mut sub = Command::new(env!("CARGO_BIN_EXE_shmq"))
        .arg("--dir")
        .arg(d.path())
        .args(["tail", "-f", "--subscribe", "--from", "oldest", "t"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it printed the message, it holds a slot.
    let mut line = String::new();
    BufReader::new(sub.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains(" x"), "{line}");
    let pid = sub.id();
    let v = json(&d, &["info", "t", "--json"]);
    assert_eq!(v["subscribers"][0]["pid"], pid);
    assert_eq!(v["subscribers"][0]["alive"], true);
    sub.kill().unwrap();
    sub.wait().unwrap();
    let v = json(&d, &["info", "t", "--json"]);
    assert_eq!(v["subscribers"][0]["alive"], false);
    assert!(ok(&d, &["info", "t"]).contains("DEAD"));
    let out = ok(&d, &["repair", "t"]);
    assert!(out.contains("reclaimed 1 dead subscriber slot"), "{out}");
    let v = json(&d, &["info", "t", "--json"]);
    assert_eq!(v["subscribers"].as_array().unwrap().len(), 0);
    assert_eq!(v["reaped_subscribers"], 1);
}

#[test]
fn rm_refuses_a_live_topic_and_gc_removes_dead_ones() {
    let d = TestDir::new();
    ok(&d, &["create", "live"]);
    ok(&d, &["create", "dead"]);
    let live = Topic::open("live", &Options::new().dir(d.path())).unwrap();
    let o = shmq(&d, &["rm", "live"]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("in use"));
    // A temporary file from a creation that never finished (the fallback
    // path without O_TMPFILE), abandoned two minutes ago; and one that is
    // fresh (a creation under way), which gc leaves alone.
    let half = std::fs::File::create(d.path().join(".half.0123456789abcdef.tmp")).unwrap();
    half.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(120)).unwrap();
    std::fs::write(d.path().join(".fresh.0123456789abcdef.tmp"), b"x").unwrap();
    let out = ok(&d, &["gc", "--dry-run"]);
    assert!(out.contains("would remove dead") && out.contains("would remove .half"), "{out}");
    assert!(!out.contains(".fresh"), "{out}");
    assert!(d.path().join("dead").exists());
    let out = ok(&d, &["gc"]);
    assert!(out.contains("removed dead") && !out.contains("removed live"), "{out}");
    assert!(!d.path().join("dead").exists() && !d.path().join(".half.0123456789abcdef.tmp").exists());
    assert!(d.path().join(".fresh.0123456789abcdef.tmp").exists());
    assert!(d.path().join("live").exists());
    drop(live);
    ok(&d, &["rm", "live"]);
    assert!(!d.path().join("live").exists());
}

#[test]
fn watch_once_rates_match_the_counters() {
    let d = TestDir::new();
    ok(&d, &["create", "t"]);
    let topic = Topic::open("t", &Options::new().dir(d.path())).unwrap();
    let mut p = topic.producer().unwrap();
    for _ in 0..100 {
        p.publish(b"before").unwrap();
    }
    let child = Command::new(env!("CARGO_BIN_EXE_shmq"))
        .arg("--dir")
        .arg(d.path())
        .args(["watch", "--once", "--json", "--interval", "300ms"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..1000 {
        p.publish(b"during").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &v[0];
    assert_eq!(t["name"], "t");
    assert_eq!(t["published_messages"], 1100);
    // The rate covers the messages published between the two samples:
    // a whole number, at most the 1000 published while watch ran.
    let during = t["messages_per_s"].as_f64().unwrap() * t["interval_s"].as_f64().unwrap();
    assert!((during - during.round()).abs() < 1e-6 && (0.0..=1000.0).contains(&during), "{during}");
    // Without traffic, the rate is zero.
    let v = json(&d, &["watch", "--once", "--json", "--interval", "50ms", "t"]);
    assert_eq!(v[0]["messages_per_s"], 0.0);
    assert!(ok(&d, &["watch", "--once", "--interval", "10ms"]).contains("MSG/S"));
}

#[test]
fn bad_input_gives_documented_exit_codes() {
    let d = TestDir::new();
    ok(&d, &["create", "t"]);
    let o = shmq(&d, &["info", "nope"]);
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
    assert_eq!(code(&shmq(&d, &["tail", "nope"])), 3);
    assert_eq!(code(&shmq(&d, &["create", "x", "--capacity", "12XB"])), 2);
    assert_eq!(code(&shmq(&d, &["create", "../x"])), 2);
    assert_eq!(code(&shmq(&d, &["info", "a/b"])), 2);
    assert_eq!(code(&shmq(&d, &["create", "x", "--max-message", "1MiB", "--capacity", "4KiB"])), 2);
    assert_eq!(code(&shmq(&d, &["frobnicate"])), 2);
    std::fs::write(d.path().join("junk"), vec![0u8; 8192]).unwrap();
    let o = shmq(&d, &["info", "junk"]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a valid topic"));
    // ls shows the corrupt file with its reason, and still lists the rest.
    let out = ok(&d, &["ls"]);
    assert!(out.contains("junk") && out.contains("unreadable") && out.contains("t "), "{out}");
    // A Block topic that stays full: a clear error, exit 1.
    ok(&d, &["create", "full", "--capacity", "4KiB", "--max-message", "1KiB"]);
    let topic = Topic::open("full", &Options::new().dir(d.path())).unwrap();
    let _sub = topic.subscribe().unwrap();
    let big = "x".repeat(1000);
    let args: Vec<&str> =
        ["pub", "full", "--timeout", "100ms"].into_iter().chain(std::iter::repeat_n(big.as_str(), 6)).collect();
    let o = shmq(&d, &args);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("stayed full"));
}

#[test]
fn help_has_examples_and_completions_generate() {
    let d = TestDir::new();
    for sub in ["ls", "info", "tail", "pub", "create", "rm", "gc", "repair", "watch", "completions"] {
        let out = ok(&d, &[sub, "--help"]);
        assert!(out.contains("Example"), "{sub} --help has no example");
    }
    for shell in ["bash", "zsh", "fish"] {
        assert!(ok(&d, &["completions", shell]).contains("shmq"));
    }
}

#[test]
fn tail_from_a_sequence_or_a_time_and_as_a_durable_subscriber() {
    let d = TestDir::new();
    ok(&d, &["create", "t", "--capacity", "64KiB", "--max-message", "1KiB", "--timestamps"]);
    ok(&d, &["pub", "t", "m0", "m1", "m2", "m3", "m4"]);
    let raw = |args: &[&str]| ok(&d, args);
    assert_eq!(raw(&["tail", "--from", "3", "--format", "raw", "t"]), "m3m4");
    // Without timestamps (the default) there is nothing to replay by time.
    ok(&d, &["create", "nots", "--capacity", "64KiB"]);
    let out = shmq(&d, &["tail", "--from", "-60m", "nots"]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timestamps"), "{out:?}");
    assert_eq!(raw(&["tail", "--from", "-60m", "--format", "raw", "t"]), "m0m1m2m3m4");
    assert_eq!(raw(&["tail", "--from", "@0", "--count", "1", "--format", "raw", "t"]), "m0");
    assert_eq!(code(&shmq(&d, &["tail", "--from", "soon", "t"])), 2);
    // A durable subscriber made by the CLI starts at the newest, then
    // resumes where the previous run stopped.
    assert_eq!(raw(&["tail", "--durable", "audit", "--format", "raw", "t"]), "");
    ok(&d, &["pub", "t", "a", "b", "c"]);
    assert_eq!(raw(&["tail", "--durable", "audit", "--count", "2", "--format", "raw", "t"]), "ab");
    let info = json(&d, &["info", "--json", "t"]);
    let sub = &info["subscribers"][0];
    assert_eq!(
        (sub["name"].as_str(), sub["durable"].as_bool(), sub["alive"].as_bool()),
        (Some("audit"), Some(true), Some(false))
    );
    assert_eq!(raw(&["tail", "--durable", "audit", "--format", "raw", "t"]), "c");
    assert!(ok(&d, &["info", "t"]).contains("detached, durable"));
    // A consumer group made by the CLI: each run takes what the last left.
    ok(&d, &["create", "g", "--capacity", "64KiB", "--max-message", "1KiB"]);
    assert_eq!(raw(&["tail", "--group", "workers", "--format", "raw", "g"]), "");
    ok(&d, &["pub", "g", "j1", "j2", "j3"]);
    assert_eq!(raw(&["tail", "--group", "workers", "--count", "1", "--format", "raw", "g"]), "j1");
    assert_eq!(raw(&["tail", "--group", "workers", "--format", "raw", "g"]), "j2j3");
    let info = json(&d, &["info", "--json", "g"]);
    assert_eq!(info["subscribers"][0]["kind"].as_str(), Some("group"));
    assert_eq!(code(&shmq(&d, &["tail", "--group", "w", "--from", "oldest", "g"])), 2);
}

/// `shmq bench`: one short table as JSON. Its consumers check every byte,
/// so a run that completes moved intact messages through every transport.
#[test]
fn bench_runs_a_table_as_json_and_rejects_bad_arguments() {
    let d = TestDir::new();
    let v = json(&d, &["bench", "--quick", "--only", "throughput", "--size", "4KiB", "--json"]);
    let rows = v["throughput"].as_array().unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    // POSIX mq is left out where the machine has none.
    assert_eq!(
        kinds[..9],
        [
            "bare",
            "shmq",
            "shmq-batch",
            "shmq-batch-in-place",
            "shmq-multi",
            "shmq-overwrite",
            "shmq-ts",
            "unix",
            "pipe"
        ],
        "{kinds:?}"
    );
    for r in rows {
        assert_eq!(r["size"].as_u64(), Some(4096));
        assert!(r["msgs_per_s"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(v["latency_one_way_ns"].as_array().unwrap().is_empty(), "only the throughput table ran");
    let target = v["targets"].as_array().unwrap().iter().find(|t| t["name"] == "4 KiB throughput / bare ring").unwrap();
    assert!(target["ratio"].as_f64().unwrap() > 0.0);
    let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "the bench removes its topics: {left:?}");
    for bad in [&["bench", "--size", "12"][..], &["bench", "--cpus", "0"], &["bench", "--only", "nothing"]] {
        assert_eq!(code(&shmq(&d, bad)), 2, "{bad:?}");
    }
}
