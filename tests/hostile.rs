//! Hostile and corrupt shared memory: a seeded random harness (cargo-fuzz
//! needs a nightly toolchain, which these machines cannot install).
//!
//! 1. Arbitrary files, and valid topic files with random header fields
//!    overwritten, opened as topics: a typed error or a working topic.
//! 2. A topic with traffic whose control lines, subscriber slots and frames
//!    get random values, then read by subscribers, passive tails and
//!    producers: errors or skips, never a panic, a hang or an access outside
//!    the mapping (the mapping is exactly the file; an access outside it
//!    would fault).
//! 3. The same while a second thread keeps scribbling random words into the
//!    live mapping.
//!
//! Every operation is bounded (try_* calls, bounded loops), so a hang
//! shows as a test timeout. Seeds are fixed: a failure reproduces. Regression
//! cases found by this harness are kept at the bottom.

mod common;
use common::{mix, TestDir};
use shmq::{Policy, RecvError, Start, TailEvent, Topic};
use std::os::unix::fs::PermissionsExt;

/// `SHMQ_FUZZ_SCALE=N` multiplies every loop (default 1, as in CI), and
/// `SHMQ_FUZZ_SEED=S` shifts every seed, for deeper runs.
fn scale(n: u64) -> u64 {
    n * std::env::var("SHMQ_FUZZ_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}
fn seed(s: u64) -> Rng {
    Rng(s + std::env::var("SHMQ_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0) * 1000)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn write_file(d: &TestDir, name: &str, bytes: &[u8]) {
    let p = d.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Whatever `open` returned, use the topic a little; nothing may panic.
fn exercise(topic: &Topic, rng: &mut Rng) {
    let _ = topic.info();
    let mut tail = topic.tail(Start::Oldest).expect("Oldest needs no timestamps");
    for _ in 0..64 {
        if let Ok(Some(TailEvent::Message(m))) = tail.next_event() {
            assert!(m.data.len() <= topic.max_message());
        }
    }
    if let Ok(mut sub) = topic.subscribe_with(if rng.below(2) == 0 { Start::Oldest } else { Start::Newest }, "fz") {
        for _ in 0..64 {
            match sub.try_recv() {
                Ok(m) => assert!(m.len() <= topic.max_message()),
                Err(RecvError::Empty) => break,
                Err(_) => {}
            }
        }
        let _ = sub.drain(64, |m| assert!(m.len() <= topic.max_message()));
    }
    if let Ok(mut p) = topic.producer() {
        for _ in 0..16 {
            let _ = p.try_publish(&[0xAB; 40]);
        }
    }
    // Named slots, seeks and the blocking paths (stuck-claim recovery,
    // dead-member adoption) over the same corrupt memory.
    let max = topic.max_message();
    if let Ok(mut d) = topic.subscribe_durable("fzd") {
        for _ in 0..16 {
            match d.try_recv() {
                Ok(m) => assert!(m.len() <= max),
                Err(_) => break,
            }
        }
    }
    let _ = topic.unsubscribe_durable("fzd");
    if let Ok(mut g) = topic.subscribe_group("fzg") {
        for _ in 0..16 {
            match g.try_recv() {
                Ok(m) => assert!(m.len() <= max),
                Err(_) => break,
            }
        }
        for _ in 0..3 {
            if let Ok(m) = g.recv_timeout(std::time::Duration::from_millis(2)) {
                assert!(m.len() <= max);
            }
        }
    }
    let _ = topic.remove_group("fzg");
    let seek = if rng.below(2) == 0 { Start::Seq(rng.below(1000)) } else { Start::Time(rng.next()) };
    if let Ok(mut sub) = topic.subscribe_with(seek, "fzs") {
        for _ in 0..3 {
            if let Ok(m) = sub.recv_timeout(std::time::Duration::from_millis(2)) {
                assert!(m.len() <= max);
            }
        }
    }
    let _ = topic.repair();
}

#[test]
fn arbitrary_files_open_as_typed_errors() {
    let d = TestDir::new();
    let mut rng = seed(1);
    for i in 0..scale(300) {
        let len = match i % 4 {
            0 => rng.below(200) as usize,
            1 => rng.below(5000) as usize,
            2 => 4096 + rng.below(70_000) as usize,
            _ => 8192,
        };
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        write_file(&d, "f", &bytes);
        if let Ok(t) = Topic::open("f", &d.opts().ready_timeout(std::time::Duration::ZERO)) {
            exercise(&t, &mut rng);
        }
    }
}

#[test]
fn corrupted_headers_are_refused_or_work() {
    let d = TestDir::new();
    let mut rng = seed(2);
    for policy in [Policy::Block, Policy::Overwrite] {
        let t = Topic::create(
            &format!("good-{policy}"),
            &d.opts().capacity(4096).max_message(500).max_subscribers(4).policy(policy),
        )
        .unwrap();
        let mut p = t.producer().unwrap();
        for i in 0..100u32 {
            p.publish(&i.to_le_bytes()).unwrap();
        }
        drop(p);
        let good = std::fs::read(t.path()).unwrap();
        drop(t);
        for _ in 0..scale(300) {
            let mut bytes = good.clone();
            // Overwrite 1-4 header words (first 128 bytes) with random or
            // boundary values.
            for _ in 0..1 + rng.below(4) {
                let off = (rng.below(16) * 8) as usize;
                let v = match rng.below(5) {
                    0 => 0,
                    1 => u64::MAX,
                    2 => 1 << rng.below(64),
                    3 => u64::from_le_bytes(bytes[off..off + 8].try_into().unwrap()) ^ (1 << rng.below(64)),
                    _ => rng.next(),
                };
                bytes[off..off + 8].copy_from_slice(&v.to_le_bytes());
            }
            write_file(&d, "bad", &bytes);
            if let Ok(t) = Topic::open("bad", &d.opts().ready_timeout(std::time::Duration::ZERO)) {
                exercise(&t, &mut rng);
            }
        }
    }
}

/// Overwrites random words after the static header (control lines, slots,
/// frames) of the topic file through a second, writable mapping.
fn scribble(map: &mut memmap2::MmapMut, rng: &mut Rng, words: u64) {
    let n = map.len() / 8;
    for _ in 0..words {
        // Skip the static header: it is validated once at open, and a
        // change there is covered by the test above.
        let i = 16 + rng.below(n as u64 - 16) as usize;
        let v = match rng.below(6) {
            0 => 0,
            1 => u64::MAX,
            2 => rng.below(1 << 16),
            3 => rng.next() & !31,
            4 => u64::from_le_bytes(map[i * 8..i * 8 + 8].try_into().unwrap()).wrapping_add(rng.below(4096)),
            _ => rng.next(),
        };
        map[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
}

fn mapping(t: &Topic) -> memmap2::MmapMut {
    let f = std::fs::OpenOptions::new().read(true).write(true).open(t.path()).unwrap();
    // SAFETY: the test owns the file; concurrent writes by this mapping are
    // the point of the test (the library must cope with them).
    unsafe { memmap2::MmapMut::map_mut(&f).unwrap() }
}

#[test]
fn corrupt_rings_are_read_without_panics() {
    let d = TestDir::new();
    let mut rng = seed(3);
    for (i, policy) in [Policy::Block, Policy::Overwrite, Policy::Block].into_iter().enumerate() {
        for round in 0..scale(60) {
            let name = format!("t{i}-{round}");
            let opts = d
                .opts()
                .capacity(4096)
                .max_message(300)
                .max_subscribers(6)
                .policy(policy)
                .multi_producer(i == 2)
                .liveness_timeout(std::time::Duration::from_millis(1));
            let t = Topic::create(&name, &opts).unwrap();
            let mut sub = t.subscribe().unwrap();
            let mut p = t.producer().unwrap();
            for k in 0..rng.below(200) {
                let _ = p.try_publish(&vec![k as u8; rng.below(300) as usize]);
            }
            let mut map = mapping(&t);
            let words = 1 + rng.below(200);
            scribble(&mut map, &mut rng, words);
            for _ in 0..200 {
                match sub.try_recv() {
                    Ok(m) => assert!(m.len() <= 300),
                    Err(RecvError::Empty) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Corrupt(_)) | Err(RecvError::Evicted) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            for _ in 0..50 {
                let _ = p.try_publish(&[1; 100]);
            }
            exercise(&t, &mut rng);
            // Sometimes as if the machine restarted: the reopen recovers a
            // corrupt ring.
            if rng.below(3) == 0 {
                map[shmq::layout::hdr::BOOT_ID..shmq::layout::hdr::BOOT_ID + 8].copy_from_slice(&7u64.to_le_bytes());
            }
            if let Ok(again) = Topic::open(&name, &d.opts()) {
                exercise(&again, &mut rng);
            }
            drop((sub, p, map, t));
            Topic::unlink_in(d.path(), &name).unwrap();
        }
    }
}

#[test]
fn live_scribbling_while_reading_and_writing() {
    let d = TestDir::new();
    for (i, policy) in [Policy::Block, Policy::Overwrite].into_iter().enumerate() {
        let t = Topic::create(&format!("live{i}"), &d.opts().capacity(8192).max_message(500).policy(policy)).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut map = mapping(&t);
        let s2 = stop.clone();
        let scribbler = std::thread::spawn(move || {
            let mut rng = seed(40 + i as u64);
            while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                scribble(&mut map, &mut rng, 8);
                std::thread::yield_now();
            }
        });
        let mut rng = seed(50 + i as u64);
        for _ in 0..scale(300) {
            exercise(&t, &mut rng);
        }
        let mut p = t.producer().ok();
        let mut sub = t.subscribe().ok();
        for k in 0..20_000u32 {
            if let Some(p) = p.as_mut() {
                let _ = p.try_publish(&k.to_le_bytes());
            }
            if let Some(s) = sub.as_mut() {
                if let Ok(m) = s.try_recv() {
                    assert!(m.len() <= 500);
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        scribbler.join().unwrap();
    }
}

// ---------------------------------------------------------------- regressions

/// Found by `corrupt_rings_are_read_without_panics` (seed 1, scale 5): an
/// unaligned tail on a multi-producer topic made every claim's
/// compare-exchange fail, so `try_publish` never returned.
#[test]
fn regression_unaligned_tail_on_multi_producer_topic() {
    let d = TestDir::new();
    let t = Topic::create("mp", &d.opts().capacity(4096).max_message(100).multi_producer(true)).unwrap();
    let mut sub = t.subscribe().unwrap();
    let mut map = mapping(&t);
    // The tail is the first word of the producer line (offset 128).
    map[128..136].copy_from_slice(&12345u64.to_le_bytes());
    let mut p = t.producer().unwrap();
    // It returns (before the fix it spun forever): Full, since the
    // subscriber's cursor is far behind the corrupted tail.
    assert_eq!(p.try_publish(b"after"), Err(shmq::PublishError::Full));
    for _ in 0..10 {
        let _ = sub.try_recv();
    }
    // Without a gating subscriber the producer goes on from a sane tail.
    drop(sub);
    map[128..136].copy_from_slice(&12345u64.to_le_bytes());
    p.try_publish(b"after").unwrap();
    let tail = u64::from_le_bytes(map[128..136].try_into().unwrap());
    assert_eq!(tail % 32, 0, "the corrupt tail was replaced by an aligned one");
}

/// Found by the same harness: a position read from shared memory (here
/// `oldest`) was used unaligned, making atomic loads misaligned.
#[test]
fn regression_unaligned_oldest_for_tail_and_subscribe_from_oldest() {
    let d = TestDir::new();
    for policy in [Policy::Block, Policy::Overwrite] {
        let t = Topic::create(&format!("t{policy}"), &d.opts().capacity(4096).max_message(100).policy(policy)).unwrap();
        let mut p = t.producer().unwrap();
        for i in 0..200u32 {
            p.try_publish(&i.to_le_bytes()).ok();
        }
        let mut map = mapping(&t);
        map[136..144].copy_from_slice(&6521u64.to_le_bytes()); // oldest
        let mut tail = t.tail(Start::Oldest).expect("Oldest needs no timestamps");
        for _ in 0..100 {
            let _ = tail.next_event();
        }
        let mut sub = t.subscribe_from_oldest().unwrap();
        for _ in 0..100 {
            let _ = sub.try_recv();
        }
    }
}

/// Found by `corrupt_rings_are_read_without_panics` once it exercised
/// consumer groups: a group cursor holding an unaligned value, or a value
/// past the largest position, made a member's receive loop forever (its
/// CAS compared the sanitised value; at the clamp it skipped the same
/// frame again and again).
#[test]
fn regression_corrupt_group_cursor_never_hangs_a_member() {
    let d = TestDir::new();
    let t = Topic::create("g", &d.opts().capacity(4096).max_message(300).max_subscribers(4)).unwrap();
    for bad in [u64::MAX, (1 << 62) + 5, 7] {
        let mut m = t.subscribe_group("grp").unwrap();
        let mut p = t.producer().unwrap();
        p.publish(b"x").unwrap();
        let group_slot = t.info().subscribers.iter().find(|s| s.kind == shmq::SlotKind::Group).unwrap().slot;
        let mut map = mapping(&t);
        let slots = shmq::layout::HEADER_LINES * shmq::layout::LINE;
        let cursor = slots + group_slot * shmq::layout::SLOT_SIZE + shmq::layout::slot::CURSOR;
        map[cursor..cursor + 8].copy_from_slice(&bad.to_le_bytes());
        for _ in 0..4 {
            match m.try_recv() {
                Ok(msg) => assert!(msg.len() <= 300),
                Err(RecvError::Empty) | Err(RecvError::Corrupt(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        drop((m, p));
        t.remove_group("grp").unwrap();
    }
}
