//! Every way opening or creating a topic can go wrong gives a typed error.

mod common;
use common::TestDir;
use shmq::{OpenError, Policy, ProducerError, Start, SubscribeError, Topic};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;

#[test]
fn bad_names_are_rejected_before_touching_files() {
    let d = TestDir::new();
    for name in ["", "../x", "a/b", "x\0y", "..", ".hidden", "white space"] {
        for r in [Topic::create(name, &d.opts()), Topic::open(name, &d.opts())] {
            assert!(matches!(r, Err(OpenError::InvalidName { .. })), "{name:?}: {r:?}");
        }
    }
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
}

#[test]
fn create_twice_and_open_missing() {
    let d = TestDir::new();
    assert!(matches!(Topic::open("t", &d.opts()), Err(OpenError::NotFound { .. })));
    let _t = Topic::create("t", &d.opts()).unwrap();
    assert!(matches!(Topic::create("t", &d.opts()), Err(OpenError::AlreadyExists { .. })));
    // open_or_create opens the existing one.
    Topic::open_or_create("t", &d.opts()).unwrap();
}

#[test]
fn incompatible_options_name_the_field() {
    let d = TestDir::new();
    let _t = Topic::create("t", &d.opts().capacity(64 << 10).max_message(1000)).unwrap();
    let cases = [
        (d.opts().capacity(128 << 10), "capacity"),
        (d.opts().capacity(100_000), "capacity"),
        (d.opts().max_message(999), "max_message"),
        (d.opts().max_subscribers(3), "max_subscribers"),
        (d.opts().policy(Policy::Overwrite), "policy"),
        (d.opts().multi_producer(true), "producer mode"),
    ];
    for (opts, want) in cases {
        match Topic::open("t", &opts) {
            Err(OpenError::Incompatible { field, .. }) => assert_eq!(field, want),
            other => panic!("{want}: {other:?}"),
        }
    }
    // A capacity that rounds to the topic's is compatible.
    Topic::open("t", &d.opts().capacity(60_000)).unwrap();
}

#[test]
fn invalid_options_are_refused() {
    let d = TestDir::new();
    for opts in [
        d.opts().capacity(4096).max_message(4096),
        d.opts().max_subscribers(0),
        d.opts().policy(Policy::Overwrite).multi_producer(true),
        d.opts().capacity(1 << 50),
    ] {
        assert!(matches!(Topic::create("t", &opts), Err(OpenError::InvalidOptions(_))), "{opts:?}");
    }
}

#[test]
fn truncated_and_garbage_files_are_corrupt() {
    let d = TestDir::new();
    let t = Topic::create("good", &d.opts().capacity(4096)).unwrap();
    let good = std::fs::read(t.path()).unwrap();
    drop(t);
    let write = |name: &str, bytes: &[u8]| {
        let p = d.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    write("empty", b"");
    write("short", &good[..100]);
    write("truncated", &good[..good.len() - 1]);
    let mut garbage = good.clone();
    garbage[..8].copy_from_slice(b"NOTSHMQ!");
    write("magic", &garbage);
    let mut cap = good.clone();
    cap[24..32].copy_from_slice(&3000u64.to_le_bytes()); // not a power of two
    write("capacity", &cap);
    let mut big = good.clone();
    big[24..32].copy_from_slice(&(1u64 << 39).to_le_bytes()); // claims 512 GiB
    write("huge", &big);
    let mut pol = good.clone();
    pol[40..44].copy_from_slice(&7u32.to_le_bytes());
    write("policy", &pol);
    let mut off = good.clone();
    off[16..24].copy_from_slice(&64u64.to_le_bytes()); // data inside the header
    write("offset", &off);
    let mut subs = good.clone();
    subs[36..40].copy_from_slice(&u32::MAX.to_le_bytes());
    write("subs", &subs);
    for name in ["empty", "short", "truncated", "magic", "capacity", "huge", "policy", "offset", "subs"] {
        let r = Topic::open(name, &d.opts());
        assert!(matches!(r, Err(OpenError::Corrupt { .. })), "{name}: {r:?}");
    }
    let mut ver = good.clone();
    ver[8..12].copy_from_slice(&99u32.to_le_bytes());
    write("version", &ver);
    assert!(matches!(Topic::open("version", &d.opts()), Err(OpenError::VersionMismatch { found: 99, .. })));
}

#[test]
fn not_ready_file_times_out_with_a_typed_error() {
    let d = TestDir::new();
    let t = Topic::create("good", &d.opts().capacity(4096)).unwrap();
    let mut bytes = std::fs::read(t.path()).unwrap();
    bytes[12..16].copy_from_slice(&0u32.to_le_bytes()); // state = INIT
    let p = d.path().join("half");
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(&bytes).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let opts = d.opts().ready_timeout(std::time::Duration::from_millis(20));
    assert!(matches!(Topic::open("half", &opts), Err(OpenError::NotReady)));
}

#[test]
fn symlink_at_topic_path_is_refused() {
    let d = TestDir::new();
    let t = Topic::create("real", &d.opts()).unwrap();
    std::os::unix::fs::symlink(t.path(), d.path().join("link")).unwrap();
    assert!(matches!(Topic::open("link", &d.opts()), Err(OpenError::PermissionDenied(_))));
    // create does not follow it either.
    assert!(matches!(Topic::create("link", &d.opts()), Err(OpenError::AlreadyExists { .. })));
}

#[test]
fn topic_files_of_another_user_are_refused_unless_allowed() {
    let d = TestDir::new();
    let t = Topic::create("theirs", &d.opts()).unwrap();
    let path = std::ffi::CString::new(t.path().as_os_str().as_encoded_bytes()).unwrap();
    drop(t);
    // Hand the file to `nobody` (65534); only root may, as CI runs.
    // SAFETY: chown on a NUL-terminated path.
    if unsafe { libc::chown(path.as_ptr(), 65534, 65534) } != 0 {
        eprintln!("skipped: cannot chown here (not root): {}", std::io::Error::last_os_error());
        return;
    }
    match Topic::open("theirs", &d.opts()) {
        Err(OpenError::PermissionDenied(why)) => assert!(why.contains("65534"), "{why}"),
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    let t = Topic::open("theirs", &d.opts().allow_foreign_owner(true)).expect("allowed when asked");
    assert!(t.subscribe().is_ok());
}

#[test]
fn files_are_created_0600_unless_asked() {
    let d = TestDir::new();
    let a = Topic::create("a", &d.opts()).unwrap();
    let b = Topic::create("b", &d.opts().mode(0o660)).unwrap();
    let mode = |t: &Topic| std::fs::metadata(t.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&a), 0o600);
    assert_eq!(mode(&b), 0o660);
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
}

#[test]
fn read_only_topics_refuse_to_take_part() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts()).unwrap();
    t.producer().unwrap().publish(b"x").unwrap();
    let ro = Topic::open_read_only("t", &d.opts()).unwrap();
    assert_eq!(ro.info().published_messages, 1);
    assert_eq!(ro.producer().unwrap_err(), ProducerError::ReadOnly);
    assert_eq!(ro.subscribe().unwrap_err(), SubscribeError::ReadOnly);
}

#[test]
fn subscriber_slots_run_out_and_come_back() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts().max_subscribers(2)).unwrap();
    let a = t.subscribe().unwrap();
    let _b = t.subscribe_with(Start::Newest, "named").unwrap();
    assert_eq!(t.subscribe().unwrap_err(), SubscribeError::NoFreeSlot { max: 2 });
    assert_eq!(t.info().subscribers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["", "named"]);
    drop(a);
    t.subscribe().unwrap();
}

#[test]
fn single_producer_topic_has_one_producer_at_a_time() {
    let d = TestDir::new();
    let t = Topic::create("t", &d.opts()).unwrap();
    let p = t.producer().unwrap();
    assert!(matches!(t.producer(), Err(ProducerError::Busy { pid }) if pid == std::process::id()));
    drop(p);
    let mut p2 = t.producer().unwrap();
    p2.publish(b"ok").unwrap();
    let m = Topic::create("m", &d.opts().multi_producer(true)).unwrap();
    let _x = m.producer().unwrap();
    let _y = m.producer().unwrap();
}

#[test]
fn subscribe_from_oldest_on_a_small_ring_with_large_messages_sees_what_it_holds() {
    // Largest message half the ring: a claim from the tail cannot reach
    // these frames, so nothing is skipped (it once started at the tail).
    let d = TestDir::new();
    let t = Topic::create("big", &d.opts().capacity(4096).max_message(2016)).unwrap();
    let mut p = t.producer().unwrap();
    p.publish(b"one").unwrap();
    p.publish(b"two").unwrap();
    let mut s = t.subscribe_from_oldest().unwrap();
    assert_eq!(&s.try_recv().unwrap()[..], b"one");
    assert_eq!(&s.try_recv().unwrap()[..], b"two");
}

#[test]
fn subscribe_from_oldest_replays_what_the_ring_holds() {
    let d = TestDir::new();
    for policy in [Policy::Block, Policy::Overwrite] {
        let name = format!("t{policy}");
        let t = Topic::create(&name, &d.opts().capacity(1024).max_message(64).policy(policy)).unwrap();
        let mut p = t.producer().unwrap();
        // No subscriber: Block does not gate; 40 messages lap the ring.
        for i in 0..40u32 {
            p.publish(&i.to_le_bytes()).unwrap();
        }
        let mut old = t.subscribe_from_oldest().unwrap();
        let mut new = t.subscribe().unwrap();
        let first =
            u32::from_le_bytes(old.try_recv().unwrap_or_else(|e| panic!("{policy}: {e:?}"))[..4].try_into().unwrap());
        // 1024-byte ring, 64-byte frames: the last 16 are still there. A
        // Block subscriber skips what one more max-size frame (96 bytes
        // here) from a producer which has not yet seen it might overwrite.
        let expect = if policy == Policy::Block { 26 } else { 24 };
        assert_eq!(first, expect, "{policy}: oldest");
        let mut next = first + 1;
        while let Ok(m) = old.try_recv() {
            assert_eq!(u32::from_le_bytes(m[..4].try_into().unwrap()), next);
            next += 1;
        }
        assert_eq!(next, 40);
        assert_eq!(new.try_recv().unwrap_err(), shmq::RecvError::Empty);
        p.publish(&40u32.to_le_bytes()).unwrap();
        assert_eq!(&old.try_recv().unwrap()[..], 40u32.to_le_bytes());
        assert_eq!(&new.try_recv().unwrap()[..], 40u32.to_le_bytes());
    }
}
