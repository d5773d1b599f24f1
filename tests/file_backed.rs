//! File-backed topics (issue #8, item 4): a topic in a directory on a disk
//! survives every process being killed (the page cache keeps what was
//! committed) and a machine restart (recovered to the last flush).

mod common;
use common::{check, fill, msg_len, Child, TestDir};
use shmq::{Options, Topic};
use std::time::Duration;

const MAX: usize = 2000;

/// Child: publishes messages 0.. of producer 0 until killed, flushing
/// every 100 messages; prints how far the last flush got.
#[test]
#[ignore = "run by the tests in this file as a child process"]
fn child() {
    let t = Topic::open("disk", &Options::new().dir(std::env::var("SHMQ_TEST_DIR").unwrap())).unwrap();
    let mut p = t.producer().unwrap();
    let mut buf = vec![0u8; MAX];
    println!("READY");
    for k in 0..2000u64 {
        let len = msg_len(0, k, 12, MAX);
        fill(0, k, &mut buf[..len]);
        p.publish(&buf[..len]).unwrap();
        if k % 100 == 99 {
            p.flush().unwrap();
            println!("DONE flushed={}", k + 1);
        }
    }
    println!("DONE all");
    std::io::stdin().read_line(&mut String::new()).unwrap(); // wait to be killed
}

/// Reads every retained message from the oldest; checks each is intact and
/// in order; returns how many.
fn read_all(t: &Topic) -> u64 {
    let mut s = t.subscribe_from_oldest().unwrap();
    let mut scratch = Vec::new();
    let mut k = 0;
    while let Ok(m) = s.try_recv() {
        check(0, k, &m, 12, MAX, &mut scratch).unwrap();
        k += 1;
    }
    k
}

#[test]
fn everything_committed_survives_all_processes_being_killed() {
    let d = TestDir::new(); // under the system temp dir: a disk, not tmpfs
    let t = Topic::create("disk", &d.opts().capacity(8 << 20).max_message(MAX as u32)).unwrap();
    drop(t);
    let mut c = Child::spawn("-", &[("SHMQ_TEST_DIR", d.path().display().to_string())]);
    c.expect("READY");
    while c.line() != "DONE all" {}
    c.kill(); // every process using the topic is gone now
    let t = Topic::open("disk", &d.opts()).unwrap();
    assert_eq!(read_all(&t), 2000, "every committed message is there and intact");
    // A new producer carries on where the dead one stopped.
    let mut p = t.producer().unwrap();
    let mut buf = vec![0u8; MAX];
    let len = msg_len(0, 2000, 12, MAX);
    fill(0, 2000, &mut buf[..len]);
    p.publish(&buf[..len]).unwrap();
    drop(p);
    assert_eq!(read_all(&t), 2001);
}

/// Simulates a machine restart: another boot id in the header. The pages
/// after the last flush are still intact here; recovery drops them anyway,
/// since after a real power cut they may be torn or missing.
fn simulate_restart(d: &TestDir) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(d.path().join("disk")).unwrap();
    f.write_all_at(&7u64.to_le_bytes(), shmq::layout::hdr::BOOT_ID as u64).unwrap();
}

#[test]
fn flush_every_n_messages_bounds_what_a_restart_loses() {
    let d = TestDir::new();
    let t = Topic::create("disk", &d.opts().capacity(1 << 20).max_message(MAX as u32)).unwrap();
    let mut p = t.producer().unwrap();
    p.flush_every(10, Duration::from_secs(3600));
    let mut buf = vec![0u8; MAX];
    for k in 0..25u64 {
        let len = msg_len(0, k, 12, MAX);
        fill(0, k, &mut buf[..len]);
        p.publish(&buf[..len]).unwrap();
    }
    std::mem::forget(p);
    drop(t);
    simulate_restart(&d);
    let t = Topic::open("disk", &d.opts()).unwrap();
    assert_eq!(read_all(&t), 20, "flushed after messages 10 and 20");
}

#[test]
fn after_a_restart_the_topic_is_recovered_to_its_last_flush() {
    let d = TestDir::new();
    let t = Topic::create("disk", &d.opts().capacity(8 << 20).max_message(MAX as u32)).unwrap();
    let mut sub = t.subscribe().unwrap(); // a subscriber of the old boot
    let durable = t.subscribe_durable("audit").unwrap();
    drop(durable);
    let mut p = t.producer().unwrap();
    let mut buf = vec![0u8; MAX];
    for k in 0..500u64 {
        let len = msg_len(0, k, 12, MAX);
        fill(0, k, &mut buf[..len]);
        p.publish(&buf[..len]).unwrap();
        if k == 299 {
            p.flush().unwrap();
        }
    }
    assert!(sub.try_recv().is_ok());
    std::mem::forget((sub, p)); // as if the machine went down with them
    drop(t);
    simulate_restart(&d);
    let t = Topic::open("disk", &d.opts()).unwrap();
    assert_eq!(read_all(&t), 300, "exactly the flushed messages are kept");
    let info = t.info();
    assert_eq!(info.subscribers.len(), 1, "the old boot's plain subscriber is gone: {:?}", info.subscribers);
    assert!(info.subscribers[0].durable && !info.subscribers[0].alive);
    // The durable subscriber (it had read nothing) resumes at message 0,
    // the stream goes on from message 300, and a second open does not
    // recover again.
    let mut audit = t.subscribe_durable("audit").unwrap();
    let mut p = t.producer().expect("the old boot's producer is gone");
    let len = msg_len(0, 300, 12, MAX);
    fill(0, 300, &mut buf[..len]);
    p.publish(&buf[..len]).unwrap();
    p.flush().unwrap();
    let seqs: Vec<u64> = (0..301).map(|_| audit.recv_timeout(Duration::from_secs(5)).unwrap().seq()).collect();
    assert_eq!(seqs, (0..301).collect::<Vec<_>>());
    drop((audit, p, t));
    let t = Topic::open("disk", &d.opts()).unwrap();
    assert_eq!(read_all(&t), 301);
}
