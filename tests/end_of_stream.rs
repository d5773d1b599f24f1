//! End of stream (issue #19): a close after the messages already published;
//! `RecvError::Closed` from every receive at the end, blocking ones
//! included; a new message reopens; a close-on-exit topic closes when its
//! last producer is gone, SIGKILL included. Real processes: this test
//! binary in a child role, and the `shmq` CLI.

mod common;
use common::{child_env as env, Child, TestDir};
use shmq::{Options, Policy, RecvError, Topic};
use std::time::Duration;

#[test]
#[ignore = "run by the tests in this file as a child process"]
fn child() {
    let t = Topic::open("s", &Options::new().dir(env("SHMQ_TEST_DIR"))).expect("open");
    match env("SHMQ_ROLE").as_str() {
        // Receives until the end of the stream; says how many it got.
        "until-closed" => {
            let mut s = t.subscribe().expect("subscribe");
            println!("READY");
            let mut got = 0u64;
            loop {
                match s.recv() {
                    Ok(m) => {
                        assert_eq!(u64::from_le_bytes(m[..8].try_into().unwrap()), got, "in order");
                        got += 1;
                    }
                    Err(RecvError::Closed) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            println!("DONE got={got}");
        }
        // Publishes SHMQ_N messages, then waits (to be killed, or for stdin
        // to close: then it exits without closing the stream).
        "producer" => {
            let mut p = t.producer().expect("producer");
            for k in 0..env("SHMQ_N").parse::<u64>().expect("n") {
                p.publish(&k.to_le_bytes()).expect("publish");
            }
            println!("DONE got=0");
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {}
        }
        r => panic!("unknown role {r}"),
    }
}

fn child_env(d: &TestDir, n: u64) -> Vec<(&'static str, String)> {
    vec![("SHMQ_TEST_DIR", d.path().display().to_string()), ("SHMQ_N", n.to_string())]
}

#[test]
fn a_close_ends_a_sleeping_subscriber_in_another_process_after_every_message() {
    let d = TestDir::new();
    let t = Topic::create("s", &d.opts().capacity(4096)).expect("create");
    let mut c = Child::spawn("until-closed", &child_env(&d, 0));
    c.expect("READY");
    let mut p = t.producer().expect("producer");
    for k in 0..1000u64 {
        p.publish(&k.to_le_bytes()).expect("publish");
    }
    p.close();
    assert_eq!(common::field(&c.expect("DONE"), "got"), 1000, "every message before the close");
    c.finish();
    assert!(t.info().closed);
}

#[test]
fn every_receive_says_closed_until_a_new_message_reopens() {
    for policy in [Policy::Block, Policy::Overwrite] {
        let d = TestDir::new();
        let t = Topic::create("s", &d.opts().capacity(4096).policy(policy)).expect("create");
        let mut s = t.subscribe().expect("subscribe");
        let mut p = t.producer().expect("producer");
        p.publish(b"1").expect("publish");
        p.publish(b"2").expect("publish");
        p.close();
        assert!(t.info().closed);
        assert_eq!(&*s.try_recv().expect("1"), b"1");
        assert_eq!(&*s.recv().expect("2"), b"2");
        assert_eq!(s.try_recv().unwrap_err(), RecvError::Closed);
        assert_eq!(s.recv().unwrap_err(), RecvError::Closed, "a blocking receive returns");
        assert_eq!(s.recv_timeout(Duration::from_secs(30)).unwrap_err(), RecvError::Closed);
        assert_eq!(s.drain(10, |_| {}).unwrap_err(), RecvError::Closed);
        // A subscriber that joins after the close is at the end too.
        let mut late = t.subscribe().expect("subscribe");
        assert_eq!(late.try_recv().unwrap_err(), RecvError::Closed);
        // Another producer (this one gone) publishes: the stream reopens.
        drop(p);
        t.producer().expect("producer").publish(b"3").expect("publish");
        assert!(!t.info().closed);
        assert_eq!(&*s.recv().expect("3"), b"3");
        assert_eq!(&*late.recv().expect("3"), b"3");
        assert_eq!(s.try_recv().unwrap_err(), RecvError::Empty, "open again");
    }
}

#[test]
fn close_on_exit_ends_the_stream_when_the_producer_is_killed_or_exits() {
    for kill in [true, false] {
        let d = TestDir::new();
        let t = Topic::create("s", &d.opts().capacity(64 << 10).close_on_exit(true)).expect("create");
        let mut s = t.subscribe().expect("subscribe");
        // Never had a producer: not closed.
        assert_eq!(s.try_recv().unwrap_err(), RecvError::Empty);
        assert!(!t.info().closed);
        let mut c = Child::spawn("producer", &child_env(&d, 100));
        c.expect("DONE");
        for k in 0..100u64 {
            let m = s.recv_timeout(Duration::from_secs(30)).expect("message");
            assert_eq!(u64::from_le_bytes(m[..8].try_into().unwrap()), k);
        }
        // Its producer lives: waiting times out, the stream is open.
        assert_eq!(s.recv_timeout(Duration::from_millis(100)).unwrap_err(), RecvError::Timeout);
        if kill {
            c.kill(); // SIGKILL: nothing of it runs
        } else {
            c.finish(); // exits (stdin closed) without closing the stream
        }
        // The blocking receive notices within a sleep slice.
        assert_eq!(s.recv_timeout(Duration::from_secs(30)).unwrap_err(), RecvError::Closed, "kill={kill}");
        assert!(t.info().closed);
        // A producer that attaches reopens it.
        let mut p = t.producer().expect("producer");
        assert!(!t.info().closed);
        p.publish(b"again").expect("publish");
        assert_eq!(&*s.recv().expect("again"), b"again");
    }
}

#[test]
fn group_members_see_the_end_once_the_group_has_taken_everything() {
    let d = TestDir::new();
    let t = Topic::create("s", &d.opts().capacity(4096)).expect("create");
    let mut a = t.subscribe_group("g").expect("member");
    let mut b = t.subscribe_group("g").expect("member");
    let mut p = t.producer().expect("producer");
    for k in 0..3u64 {
        p.publish(&k.to_le_bytes()).expect("publish");
    }
    p.close();
    let mut got = 0;
    for s in [&mut a, &mut b] {
        loop {
            match s.recv() {
                Ok(_) => got += 1,
                Err(RecvError::Closed) => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert_eq!(got, 3);
}

#[test]
fn the_cli_closes_and_shows_the_end_and_tail_follow_ends() {
    let d = TestDir::new();
    let shmq = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_shmq"))
            .arg("--dir")
            .arg(d.path())
            .args(args)
            .output()
            .expect("run")
    };
    assert!(shmq(&["create", "s", "--capacity", "4096"]).status.success());
    let follower = std::process::Command::new(env!("CARGO_BIN_EXE_shmq"))
        .arg("--dir")
        .arg(d.path())
        .args(["tail", "-f", "--subscribe", "--from", "oldest", "s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("tail -f");
    assert!(shmq(&["pub", "s", "one", "two"]).status.success());
    let o = shmq(&["close", "s"]);
    assert!(o.status.success(), "{o:?}");
    // tail -f ends at the end of the stream, having printed everything.
    let out = follower.wait_with_output().expect("tail ends");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("one") && text.contains("two"), "{text}");
    let info = String::from_utf8_lossy(&shmq(&["info", "s"]).stdout).to_string();
    assert!(info.contains("stream       closed"), "{info}");
    let ls = String::from_utf8_lossy(&shmq(&["ls"]).stdout).to_string();
    assert!(ls.contains("closed"), "{ls}");
    let json = String::from_utf8_lossy(&shmq(&["info", "--json", "s"]).stdout).to_string();
    assert!(json.contains("\"closed\":true"), "{json}");
    // create --close-on-exit is stored and shown.
    assert!(shmq(&["create", "x", "--close-on-exit"]).status.success());
    let info = String::from_utf8_lossy(&shmq(&["info", "x"]).stdout).to_string();
    assert!(info.contains("closes when its last producer is gone"), "{info}");
}
