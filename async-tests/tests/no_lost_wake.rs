//! No wake is lost: with the liveness slice set to an hour, a parked wait
//! ends only when its futex word moves, so a lost wake-up would hang (and
//! the timeout fail the test) instead of being hidden by the 50 ms slice.
//! Producers and subscribers in another process pause at random, so tasks
//! park and unpark many thousands of times. Alone in its binary: the slice
//! is per process.

use shmq::Topic;
use shmq_async_tests::{payload, producer_env, take_all, topics, Child, TestDir};
use std::time::Duration;

#[test]
#[ignore = "run by the tests in this file as a child process"]
fn child() {
    shmq_async_tests::child_main();
}

#[test]
fn no_wake_is_lost_under_random_pauses() {
    shmq::park::set_liveness_slice(Duration::from_secs(3600));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");

    // Receiving: 4 topics fed by a producer process that pauses at random.
    let d = TestDir::new();
    let (n, msgs) = (4, 5000);
    let (_topics, subs) = topics(&d, n, 4096);
    let mut child = Child::spawn("producer", &producer_env(&d, n, msgs, 300));
    child.expect("READY");
    rt.block_on(async {
        let tasks: Vec<_> =
            subs.into_iter().enumerate().map(|(t, s)| tokio::spawn(take_all(t as u64, s, msgs))).collect();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(120), t).await.expect("a wake was lost (receive)").expect("task");
        }
    });
    child.finish();

    // Publishing: an async producer held back by a subscriber process that
    // pauses at random.
    let d = TestDir::new();
    let t = Topic::create("t0", &d.opts().capacity(2048).max_message(256)).expect("create");
    let mut child = Child::spawn(
        "subscriber",
        &[("SHMQ_DIR", d.path().display().to_string()), ("SHMQ_PAUSE_US", "300".to_string())],
    );
    child.expect("READY");
    child.say(&format!("recv {msgs}"));
    let mut p = t.producer().expect("producer");
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), async {
            for k in 0..msgs {
                p.publish_async(&payload(0, k)).await.expect("publish");
            }
        })
        .await
        .expect("a wake was lost (publish)");
    });
    assert_eq!(child.expect("DONE"), format!("DONE {msgs}"));
    child.finish();
}
