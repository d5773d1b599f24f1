//! The bridge against plain async-nats, in one run: shmq topic → `out` →
//! JetStream (R1, file storage) → `in` → shmq topic, against a JetStream
//! publisher and pull consumer with the same window and no shmq. Every
//! byte is checked on both paths.
//!
//! `NATS_SERVER=... cargo bench -p shmq-bridge [-- --repeat 5 --quick]`
//! (`bash test-all.sh` leaves one in target/py/bin). Prints a table of
//! medians and the paired ratios (bridge / baseline) per round.
//!
//! - Throughput: N messages pushed as fast as the path takes them, from
//!   the first publish to the last message checked at the far end.
//! - Latency: one message at a time (the next is sent when the previous
//!   arrived), from the publish call to its receipt at the far end.

#[path = "../tests/common/mod.rs"]
mod common;
use common::*;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;

const WINDOW: usize = 1024;

/// Payload `i` of `size` bytes: index, then a pattern of it.
fn fill(i: u64, size: usize, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&i.to_le_bytes());
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while buf.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.push(x as u8);
    }
}

fn verify(i: u64, size: usize, got: &[u8], buf: &mut Vec<u8>) {
    fill(i, size, buf);
    assert!(got == &buf[..], "message {i} corrupted ({} bytes)", got.len());
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p) as usize]
}

/// Plain async-nats: a publisher with WINDOW in flight and a pull consumer
/// acking each, on two connections. `BASE_IDS=1` adds a `Nats-Msg-Id` to
/// each publish, to show what the server's de-duplication costs;
/// `BASE_IDS=2` every header the bridge sends (the id, the expected last
/// id, `Shmq-Seq`, `Shmq-Prev`), to separate the cost of the guarantees
/// from the bridge's own.
fn baseline(url: &str, tag: &str, size: usize, n: u64, lat_n: u64) -> (f64, Vec<f64>) {
    rt().block_on(async {
        // Two connections, as the bridge's two processes have (and two hosts would).
        let client = async_nats::connect(url).await.unwrap();
        let cjs = jetstream::new(
            async_nats::ConnectOptions::new()
                .event_callback(|e| async move { eprintln!("baseline consumer connection: {e}") })
                .connect(url)
                .await
                .unwrap(),
        );
        let js = jetstream::context::ContextBuilder::new()
            .timeout(Duration::from_secs(30))
            .max_ack_inflight(WINDOW * 2)
            .backpressure_on_inflight(true)
            .build(client);
        let subject = format!("base.{tag}");
        let _created = js
            .create_stream(stream::Config {
                name: format!("BASE_{tag}"),
                subjects: vec![subject.clone()],
                ..Default::default()
            })
            .await
            .unwrap();
        let s = cjs.get_stream(format!("BASE_{tag}")).await.unwrap();
        let c = s
            .create_consumer(pull::Config {
                durable_name: Some("bench".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                max_ack_pending: WINDOW as i64,
                ..Default::default()
            })
            .await
            .unwrap();
        // As the inbound bridge pulls: at most 16 MiB a batch (a server
        // disconnects a client with 64 MiB pending).
        let mut msgs =
            c.stream().max_messages_per_batch(WINDOW).max_bytes_per_batch(16 << 20).messages().await.unwrap();

        // Throughput.
        let start = Instant::now();
        let pubjs = js.clone();
        let subj = subject.clone();
        let producer = tokio::spawn(async move {
            let mut q = std::collections::VecDeque::new();
            let ids = std::env::var("BASE_IDS").ok();
            let mut buf = Vec::new();
            for i in 0..n {
                fill(i, size, &mut buf);
                let payload = bytes::Bytes::copy_from_slice(&buf);
                let f = match ids.as_deref() {
                    Some("1") | Some("2") => {
                        let id = format!("{i:016x}:{i}");
                        let mut m = jetstream::message::PublishMessage::build().payload(payload).message_id(&id);
                        if ids.as_deref() == Some("2") {
                            // The bridge's other headers: the chain (a new
                            // stream: message i follows sequence i) and its own two.
                            m = m
                                .expected_last_sequence(i)
                                .header("Shmq-Seq", i.to_string().as_str())
                                .header("Shmq-Prev", i.to_string().as_str());
                        }
                        pubjs.send_publish(subj.clone(), m).await.unwrap()
                    }
                    _ => pubjs.publish(subj.clone(), payload).await.unwrap(),
                };
                q.push_back(f);
                if q.len() >= WINDOW {
                    if let Err(e) = q.pop_front().unwrap().await {
                        eprintln!("baseline publish {i}: {e}");
                        std::process::exit(1);
                    }
                }
            }
            for f in q {
                f.await.unwrap();
            }
        });
        let mut buf = Vec::new();
        let mut i = 0;
        while i < n {
            let m = msgs.next().await.unwrap().unwrap();
            let got = u64::from_le_bytes(m.payload[..8].try_into().unwrap());
            if got < i {
                // A plain consumer gets redeliveries (its ack wait passed
                // while 64 MB were pending): skip them, as a careful user would.
                m.ack().await.unwrap();
                continue;
            }
            verify(i, size, &m.payload, &mut buf);
            m.ack().await.unwrap();
            i += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        producer.await.unwrap();

        // Latency, one at a time.
        let mut lat = Vec::new();
        for i in n..n + lat_n {
            fill(i, size, &mut buf);
            let t = Instant::now();
            let f = js.publish(subject.clone(), bytes::Bytes::copy_from_slice(&buf)).await.unwrap();
            let m = msgs.next().await.unwrap().unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            verify(i, size, &m.payload, &mut buf);
            m.ack().await.unwrap();
            f.await.unwrap();
        }
        (n as f64 / secs, lat)
    })
}

/// shmq topic → out → JetStream → in → shmq topic, bridges as processes.
fn bridged(url: &str, scratch: &Scratch, tag: &str, size: usize, n: u64, lat_n: u64) -> (f64, Vec<f64>) {
    let (a, b) = (scratch.sub(&format!("a-{tag}")), scratch.sub(&format!("b-{tag}")));
    let opts = |d: &std::path::Path| shmq::Options::new().dir(d).capacity(64 << 20).max_message(size.max(1024) as u32);
    let ta = shmq::Topic::create("t", &opts(&a)).unwrap();
    let tb = shmq::Topic::create("t", &opts(&b)).unwrap();
    ta.subscribe_durable("bridge").unwrap(); // made now: the bridge starts with the first message
    let subject = format!("bridge.{tag}");
    let w = WINDOW.to_string();
    let out = Bridge::spawn(&[
        "--dir",
        a.to_str().unwrap(),
        "out",
        "t",
        "--to",
        url,
        "--subject",
        &subject,
        "--create-stream",
        "--window",
        &w,
        "-q",
    ]);
    let stream_name = format!("SHMQ_bridge_{tag}");
    wait_stream(url, &stream_name);
    let inb = Bridge::spawn(&[
        "--dir",
        b.to_str().unwrap(),
        "in",
        "t",
        "--from",
        url,
        "--subject",
        &subject,
        "--window",
        &w,
        "-q",
    ]);
    let mut sub = tb.subscribe_from_oldest().unwrap();
    let mut p = ta.producer().unwrap();
    let start = Instant::now();
    let producer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for i in 0..n {
            fill(i, size, &mut buf);
            p.publish_timeout(&buf, Duration::from_secs(60)).unwrap();
        }
        p
    });
    let mut buf = Vec::new();
    for i in 0..n {
        let m = sub.recv_timeout(Duration::from_secs(60)).unwrap();
        verify(i, size, &m, &mut buf);
    }
    let secs = start.elapsed().as_secs_f64();
    let mut p = producer.join().unwrap();
    let mut lat = Vec::new();
    for i in n..n + lat_n {
        fill(i, size, &mut buf);
        let t = Instant::now();
        p.publish(&buf).unwrap();
        let m = sub.recv_timeout(Duration::from_secs(60)).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        verify(i, size, &m, &mut buf);
    }
    drop((out, inb));
    (n as f64 / secs, lat)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let quick = args.iter().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let scratch = Arc::new(Scratch::new("bench"));
    let server = Server::start(&scratch.0);
    let url = server.url();
    println!("bridge vs plain async-nats JetStream (R1, file storage), window {WINDOW}, {repeat} rounds, nats-server on loopback, unpinned");
    println!(
        "{:>7} {:>8} | {:>12} {:>12} {:>7} | {:>9} {:>9} {:>7} | {:>9} {:>9} | ratios per round (tput; p50)",
        "size", "msgs", "base msg/s", "bridge msg/s", "ratio", "base p50", "br p50", "ratio", "base p99", "br p99"
    );
    for (size, n) in sizes(&args) {
        let n = n / scale;
        let lat_n = 1000 / scale as u64;
        let (mut bt, mut brt, mut bl, mut brl, mut bl99, mut brl99, mut ratios) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for r in 0..repeat {
            let tag = format!("{size}_{r}");
            let (t0, mut l0) = baseline(&url, &tag, size, n, lat_n);
            let (t1, mut l1) = bridged(&url, &scratch, &tag, size, n, lat_n);
            let (p0, p1) = (percentile(&mut l0, 0.5), percentile(&mut l1, 0.5));
            ratios.push(format!("{:.2}; {:.2}", t1 / t0, p1 / p0));
            bt.push(t0);
            brt.push(t1);
            bl.push(p0);
            brl.push(p1);
            bl99.push(percentile(&mut l0, 0.99));
            brl99.push(percentile(&mut l1, 0.99));
        }
        let m = |v: &mut Vec<f64>| percentile(v, 0.5);
        let (t0, t1, p0, p1) = (m(&mut bt), m(&mut brt), m(&mut bl), m(&mut brl));
        println!(
            "{:>7} {:>8} | {:>12.0} {:>12.0} {:>7.2} | {:>7.0}µs {:>7.0}µs {:>7.2} | {:>7.0}µs {:>7.0}µs | {}",
            size,
            n,
            t0,
            t1,
            t1 / t0,
            p0,
            p1,
            p1 / p0,
            m(&mut bl99),
            m(&mut brl99),
            ratios.join(", ")
        );
    }
}

/// `--size N` (repeatable) picks sizes; default 64 B, 1 KiB, 64 KiB.
fn sizes(args: &[String]) -> Vec<(usize, u64)> {
    let all = [(64usize, 200_000u64), (1024, 100_000), (65536, 5_000)];
    let picked: Vec<usize> = args.windows(2).filter(|w| w[0] == "--size").filter_map(|w| w[1].parse().ok()).collect();
    if picked.is_empty() {
        return all.to_vec();
    }
    picked
        .iter()
        .map(|&s| all.iter().copied().find(|a| a.0 == s).unwrap_or((s, (20_000_000 / s as u64).clamp(1000, 200_000))))
        .collect()
}
