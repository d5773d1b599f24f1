//! Bad input gives a clear error and a non-zero exit, never a hang or a
//! panic: a URL that does not parse, no server, a server that does not
//! answer, a subject the stream does not take, a message larger than the
//! server's max_payload (which stays in the topic, unreleased), a topic or
//! a stream that does not exist.

mod common;
use common::*;

use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn no_panic(err: &str) {
    assert!(!err.contains("panicked"), "the bridge panicked: {err}");
}

#[test]
fn urls_that_do_not_parse_are_usage_errors() {
    let s = Scratch::new("bad-url");
    shmq::Topic::create("t", &shmq::Options::new().dir(&s.0).capacity(1 << 16)).unwrap();
    let dir = s.0.to_str().unwrap();
    for url in ["nats://[::1", "127.0.0.1:4222", ""] {
        let (code, err) = run_bridge(&["--dir", dir, "out", "t", "--to", url, "--subject", "a.b"], T);
        assert_eq!(code, 2, "{url:?}: {err}");
        assert!(err.contains("URL") || err.contains("no server"), "{url:?}: {err}");
        no_panic(&err);
    }
    let (code, err) = run_bridge(&["--dir", dir, "out", "t", "--to", "nats://127.0.0.1:1", "--subject", "a.*"], T);
    assert_eq!(code, 2, "a wildcard subject: {err}");
    assert!(err.contains("subject"), "{err}");
    for durable in ["../../etc/x", "a.b", "", "x".repeat(33).as_str()] {
        let (code, err) = run_bridge(
            &["--dir", dir, "in", "t", "--from", "nats://127.0.0.1:1", "--subject", "a.b", "--durable", durable],
            T,
        );
        assert_eq!(code, 2, "durable {durable:?}: {err}");
        assert!(err.contains("durable name"), "{err}");
    }
    assert!(!s.0.join(".shmq-bridge").exists(), "a refused bridge leaves no state files");
}

#[test]
fn no_server_and_a_silent_server_fail_within_the_connect_timeout() {
    let s = Scratch::new("no-server");
    shmq::Topic::create("t", &shmq::Options::new().dir(&s.0).capacity(1 << 16)).unwrap();
    let dir = s.0.to_str().unwrap();
    let closed = format!("nats://127.0.0.1:{}", free_port());
    let (code, err) =
        run_bridge(&["--dir", dir, "out", "t", "--to", &closed, "--subject", "a.b", "--connect-timeout", "1s"], T);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    no_panic(&err);

    // Accepts the connection and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("nats://{}", silent.local_addr().unwrap());
    let (code, err) =
        run_bridge(&["--dir", dir, "in", "t", "--from", &url, "--subject", "a.b", "--connect-timeout", "1s"], T);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    no_panic(&err);
}

#[test]
fn missing_topic_stream_or_subject_are_named() {
    let s = Scratch::new("missing");
    let server = Server::start(&s.0);
    let url = server.url();
    let dir = s.0.to_str().unwrap();
    let (code, err) = run_bridge(&["--dir", dir, "out", "nope", "--to", &url, "--subject", "a.b"], T);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("nope"), "{err}");

    shmq::Topic::create("t", &shmq::Options::new().dir(&s.0).capacity(1 << 16)).unwrap();
    let (code, err) =
        run_bridge(&["--dir", dir, "in", "t", "--from", &url, "--subject", "a.b", "--stream", "NOSUCH"], T);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("NOSUCH") && err.contains("does not exist"), "{err}");

    // A stream that takes other subjects.
    rt().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "OTHER".into(),
            subjects: vec!["other.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    });
    let (code, err) = run_bridge(&["--dir", dir, "out", "t", "--to", &url, "--subject", "a.b", "--stream", "OTHER"], T);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not take subject") && err.contains("other.>"), "{err}");
    no_panic(&err);
}

#[test]
fn a_message_over_max_payload_stops_the_bridge_and_stays_in_the_topic() {
    let s = Scratch::new("max-payload");
    let server = Server::start_with(&s.0, "small", "max_payload: 4096");
    let url = server.url();
    let dir = s.0.to_str().unwrap();
    let topic =
        shmq::Topic::create("t", &shmq::Options::new().dir(&s.0).capacity(1 << 20).max_message(64 << 10)).unwrap();
    topic.subscribe_durable("bridge").unwrap(); // the bridge's durable, made now so it sees every message
    let mut p = topic.producer().unwrap();
    for i in 0..3u8 {
        p.publish(&[i; 100]).unwrap();
    }
    p.publish(&vec![7u8; 10_000]).unwrap();
    let (code, err) = run_bridge(&["--dir", dir, "out", "t", "--to", &url, "--subject", "big.t", "--create-stream"], T);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("10000 bytes") && err.contains("max_payload"), "{err}");
    no_panic(&err);
    assert_eq!(stream_state(&url, "SHMQ_big_t").0, 3, "the three before it were stored");
    let info = topic.info();
    let durable = info.subscribers.iter().find(|s| s.name == "bridge").unwrap();
    assert_eq!(durable.lag_messages, 1, "the large message stays unreleased in the topic");
}
