//! The two ways a bridge may lose messages, each counted exactly at the far
//! end: `--on-down drop` while the server is away (`Shmq-Dropped`), and an
//! `Overwrite` topic lapping the bridge's subscriber (`Shmq-Lagged`).

mod common;
use common::*;

use std::time::{Duration, Instant};

fn status(dir: &std::path::Path) -> serde_json::Value {
    let out = bridge_cmd(&["--dir", dir.to_str().unwrap(), "status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].clone()
}

/// Polls a status field until `ok`, at most `t`.
fn wait_status(dir: &std::path::Path, field: &str, ok: impl Fn(u64) -> bool, t: Duration) -> u64 {
    let deadline = Instant::now() + t;
    loop {
        let v = status(dir)[field].as_u64().unwrap_or(0);
        if ok(v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{field} stuck at {v}: {}", status(dir));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Receives on `sub` until nothing comes for `quiet`; the indexes, in order.
fn drain(sub: &mut shmq::Subscriber, quiet: Duration) -> Vec<u64> {
    let mut got = Vec::new();
    while let Ok(m) = sub.recv_timeout(quiet) {
        got.push(u64::from_le_bytes(m[..8].try_into().unwrap()));
    }
    got
}

fn publish(p: &mut shmq::Producer, range: std::ops::Range<u64>) {
    let mut buf = Vec::new();
    for i in range {
        message(i, 900, &mut buf);
        p.publish_timeout(&buf, Duration::from_secs(30)).unwrap_or_else(|e| panic!("publish {i}: {e}"));
    }
}

#[test]
fn on_down_drop_releases_and_the_far_side_counts_the_gap() {
    let trip = Trip::new("drop");
    let mut server = Server::start(&trip.scratch.0);
    let url = server.url();
    let drop_args = ["--create-stream", "--on-down", "drop", "--window", "8", "--drop-after", "200ms"];
    let _out = Bridge::spawn(&strs(&trip.out_args(&url, &drop_args)));
    wait_stream(&url, &trip.stream);
    let _in = Bridge::spawn(&strs(&trip.in_args(&url, &[])));
    let mut sub = trip.topic_b.subscribe_from_oldest().unwrap();
    let mut p = trip.topic_a.producer().unwrap();
    publish(&mut p, 0..10);
    wait_status(&trip.b, "acknowledged", |n| n >= 10, Duration::from_secs(30));

    // The server goes away: 3,000 messages (about 3 MB) into a 1 MiB Block
    // ring can only get through if the bridge drops.
    server.kill();
    publish(&mut p, 10..3_010);
    let dropped = wait_status(&trip.a, "dropped", |n| n > 0, Duration::from_secs(30));
    server.restart();

    // Until the bridge is back: publish one more at a time until one arrives
    // (while the window is still full, the bridge drops these too).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = drain(&mut sub, Duration::from_millis(200));
    let mut next = 3_010;
    while got.last() != Some(&(next - 1)) {
        assert!(Instant::now() < deadline, "nothing arrives after the restart: {} got", got.len());
        publish(&mut p, next..next + 1);
        next += 1;
        got.extend(drain(&mut sub, Duration::from_millis(300)));
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, none twice");
    let dropped_total = status(&trip.a)["dropped"].as_u64().unwrap();
    assert!(dropped_total >= dropped);
    assert_eq!(got.len() as u64 + dropped_total, next, "every message arrived or was counted as dropped");
    let lost = wait_status(&trip.b, "lost", |n| n == dropped_total, Duration::from_secs(10));
    assert_eq!(lost, dropped_total, "the far side counts exactly what was dropped");
}

#[test]
fn an_overwrite_topic_that_laps_the_bridge_reports_the_exact_loss() {
    let s = Scratch::new("lagged");
    let (a, b) = (s.sub("host-a"), s.sub("host-b"));
    let src =
        shmq::Topic::create("t", &shmq::Options::new().dir(&a).capacity(16 << 10).policy(shmq::Policy::Overwrite))
            .unwrap();
    let dst = shmq::Topic::create("t", &shmq::Options::new().dir(&b).capacity(4 << 20)).unwrap();
    let server = Server::start(&s.0);
    let url = server.url();
    let (ad, bd) = (a.to_str().unwrap(), b.to_str().unwrap());
    let mut out =
        Bridge::spawn(&["--dir", ad, "out", "t", "--to", &url, "--subject", "lag.t", "--create-stream", "-q"]);
    wait_stream(&url, "SHMQ_lag_t");
    let _in = Bridge::spawn(&["--dir", bd, "in", "t", "--from", &url, "--subject", "lag.t", "-q"]);
    let mut sub = dst.subscribe_from_oldest().unwrap();
    let mut p = src.producer().unwrap();
    publish(&mut p, 0..20);
    wait_status(&a, "acknowledged", |n| n >= 20, Duration::from_secs(30));

    // Freeze the bridge while the producer laps the 16 KiB ring many times.
    out.signal(libc::SIGSTOP);
    publish(&mut p, 20..2_000);
    out.signal(libc::SIGCONT);
    publish(&mut p, 2_000..2_010);

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while got.last() != Some(&2_009) {
        assert!(Instant::now() < deadline, "the last message never arrived: {:?}", got.last());
        got.extend(drain(&mut sub, Duration::from_millis(500)));
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, none twice");
    let lost_out = status(&a)["lost"].as_u64().unwrap();
    assert!(lost_out > 0, "the ring lapped the bridge");
    assert_eq!(got.len() as u64 + lost_out, 2_010, "received + lost = published");
    let lost_in = wait_status(&b, "lost", |n| n == lost_out, Duration::from_secs(10));
    assert_eq!(lost_in, lost_out, "Shmq-Lagged carried the loss to the far side");
    // Each gap in the indexes is exactly where the loss was reported.
    let gaps: u64 = got.windows(2).map(|w| w[1] - w[0] - 1).sum::<u64>() + got[0];
    assert_eq!(gaps, lost_out);
}
