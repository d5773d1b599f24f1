//! The file format is a contract: topics made by an earlier build of
//! layout version 1 open in this one. `tests/fixtures/` holds three topic
//! files made by the build before the ring was split into `src/ring/`
//! (`shmq create` and `shmq pub`, 4 KiB rings, 4 slots):
//!
//! - `v1-block`: single producer, timestamps, messages "first message" and
//!   "second" (type 7) and "third: the last" (type 0); a durable
//!   subscriber `keeper` that released the first and left;
//! - `v1-multi`: multi-producer, messages alpha, beta, gamma;
//! - `v1-overwrite`: messages "msg 1" to "msg 100" (the ring keeps the last).
//!
//! Each test copies a fixture into a private directory and zeroes its boot
//! id word (so the copy is not mistaken for a file-backed topic that
//! outlived a machine restart, which would be recovered to its last flush).

mod common;

use std::time::Duration;

use common::TestDir;
use shmq::{layout, Options, Policy, SlotKind, Start, TailEvent, Topic};

fn fixture(dir: &TestDir, name: &str) -> Options {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let mut bytes = std::fs::read(&src).expect("fixture");
    let boot = layout::hdr::BOOT_ID;
    bytes[boot..boot + 8].fill(0);
    let dst = dir.path().join(name);
    std::fs::write(&dst, &bytes).expect("copy");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).expect("mode");
    dir.opts()
}

/// Every message a passive tail sees from the oldest, as (type, payload).
fn tail_all(topic: &Topic) -> Vec<(u32, Vec<u8>)> {
    let mut t = topic.tail(Start::Oldest).expect("tail");
    let mut out = Vec::new();
    while let Some(ev) = t.next_event().expect("event") {
        if let TailEvent::Message(m) = ev {
            out.push((m.msg_type, m.data.to_vec()));
        }
    }
    out
}

#[test]
fn v1_block_topic_with_a_durable_subscriber_opens_and_resumes() {
    let dir = TestDir::new();
    let opts = fixture(&dir, "v1-block");
    let topic = Topic::open("v1-block", &opts).expect("a v1 file opens");
    let info = topic.info();
    assert_eq!((info.capacity, info.max_message, info.max_subscribers), (4096, 256, 4));
    assert_eq!((info.policy, info.multi_producer, info.timestamps), (Policy::Block, false, true));
    assert_eq!((info.published_messages, info.published_bytes), (3, 34));
    let keeper = info.subscribers.iter().find(|s| s.name == "keeper").expect("durable slot decoded");
    assert_eq!((keeper.kind, keeper.cursor, keeper.received), (SlotKind::Durable, 64, 1));
    assert_eq!(
        tail_all(&topic),
        vec![(7, b"first message".to_vec()), (7, b"second".to_vec()), (0, b"third: the last".to_vec())]
    );
    // The durable subscriber resumes after the message it released.
    let mut sub = topic.subscribe_durable("keeper").expect("take over the detached durable slot");
    let m = sub.recv_timeout(Duration::from_secs(5)).expect("second");
    assert_eq!((&*m, m.msg_type(), m.seq()), (&b"second"[..], 7, 1));
    drop(m);
    assert_eq!(&*sub.recv_timeout(Duration::from_secs(5)).expect("third"), b"third: the last");
    // The producer picks up the sequence numbers where the old one stopped.
    let mut p = topic.producer().expect("producer");
    p.publish(b"fourth, from the new build").expect("publish");
    let m = sub.recv_timeout(Duration::from_secs(5)).expect("fourth");
    assert_eq!((&*m, m.seq()), (&b"fourth, from the new build"[..], 3));
    assert!(m.timestamp_ns() > 0, "the topic's timestamps flag is honoured");
}

#[test]
fn v1_multi_producer_topic_opens_and_carries_new_messages() {
    let dir = TestDir::new();
    let opts = fixture(&dir, "v1-multi");
    let topic = Topic::open("v1-multi", &opts).expect("a v1 file opens");
    let info = topic.info();
    assert_eq!((info.multi_producer, info.published_messages, info.published_bytes), (true, 3, 14));
    let mut sub = topic.subscribe().expect("subscribe");
    let mut a = topic.producer().expect("producer a");
    let mut b = topic.producer().expect("producer b");
    a.publish(b"delta").expect("publish");
    b.publish(b"epsilon").expect("publish");
    let m = sub.recv_timeout(Duration::from_secs(5)).expect("delta");
    assert_eq!((&*m, m.seq()), (&b"delta"[..], 3), "sequence numbers continue after the old build's");
    drop(m);
    assert_eq!(&*sub.recv_timeout(Duration::from_secs(5)).expect("epsilon"), b"epsilon");
}

#[test]
fn v1_overwrite_topic_opens_with_what_its_ring_kept() {
    let dir = TestDir::new();
    let opts = fixture(&dir, "v1-overwrite");
    let topic = Topic::open("v1-overwrite", &opts).expect("a v1 file opens");
    assert_eq!((topic.policy(), topic.info().published_messages), (Policy::Overwrite, 100));
    let kept = tail_all(&topic);
    assert!(kept.len() > 10, "the ring keeps the newest messages: {}", kept.len());
    let first = 101 - kept.len();
    for (i, (_, m)) in kept.iter().enumerate() {
        assert_eq!(m, format!("msg {}", first + i).as_bytes());
    }
    let mut sub = topic.subscribe_from_oldest().expect("subscribe");
    let m = sub.try_recv().expect("the oldest kept message");
    assert_eq!((&*m, m.seq()), (format!("msg {first}").as_bytes(), first as u64 - 1));
}

#[test]
fn a_new_topic_has_the_v1_header_geometry() {
    // The new build writes the same static header: magic, version, and the
    // geometry words at the same offsets as the fixture made by the old one.
    let dir = TestDir::new();
    let opts = fixture(&dir, "v1-block");
    Topic::create("fresh", &opts.clone().capacity(4096).max_message(256).max_subscribers(4).timestamps(true))
        .expect("create");
    let old = std::fs::read(dir.path().join("v1-block")).expect("old");
    let new = std::fs::read(dir.path().join("fresh")).expect("new");
    assert_eq!(old.len(), new.len());
    let same = |off: usize, len: usize| assert_eq!(old[off..off + len], new[off..off + len], "header word at {off}");
    use layout::hdr;
    for (off, len) in [
        (hdr::MAGIC, 8),
        (hdr::VERSION, 4),
        (hdr::STATE, 4),
        (hdr::DATA_OFFSET, 8),
        (hdr::CAPACITY, 8),
        (hdr::MAX_MESSAGE, 4),
        (hdr::MAX_SUBSCRIBERS, 4),
        (hdr::POLICY, 4),
        (hdr::MULTI_PRODUCER, 4),
        (hdr::LIVENESS_MS, 4),
        (hdr::FILE_LEN, 8),
        (hdr::TIMESTAMPS, 4),
        (hdr::DURABLE_EXPIRY_MS, 4),
    ] {
        same(off, len);
    }
}
